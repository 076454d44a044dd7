//! `POST /api/webhooks/billing`: the billing provider reports plan and subscription changes.
//! Checks run in this order: configured (503), body size (413, at once for a declared
//! `Content-Length` over the limit), signature (400), JSON (400),
//! event shape (400); then the event is applied (`domain::billing::webhook`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::billing::webhook::{self, Outcome};
use crate::domain::error::messages;
use crate::http::code::ApiCode;
use crate::http::error::error_response;
use crate::http::limited_body::{payload_too_large, read_within, BodyRefusal};
use crate::http::response_bodies::{ErrorBody, WebhookReceived};
use crate::state::AppState;

// Describes the body for the OpenAPI document; `domain::billing::webhook` reads it.
/// A billing-provider event, in Stripe's shape.
#[derive(ToSchema)]
pub struct BillingEvent {
    /// The provider's event id; each is applied once.
    #[schema(min_length = 1, max_length = 255, example = "evt_1Q2w3E")]
    pub id: String,
    /// `checkout.session.completed`, `customer.subscription.updated`,
    /// `customer.subscription.deleted`; any other type is ignored.
    #[schema(
        rename = "type",
        min_length = 1,
        max_length = 255,
        example = "checkout.session.completed"
    )]
    pub kind: String,
    /// Unix seconds, the provider's clock; an event older than the last one applied to the
    /// account changes nothing.
    #[schema(example = 1764446400)]
    pub created: i64,
    pub data: BillingEventData,
}

#[derive(ToSchema)]
pub struct BillingEventData {
    /// The session or subscription: `metadata.account_id`, `metadata.plan`, `customer`,
    /// `current_period_start`, `current_period_end`.
    pub object: Value,
}

/// Largest webhook body; the provider's events are a few kilobytes.
pub const BILLING_WEBHOOK_BODY_LIMIT: usize = 64 * 1024;

const SIGNATURE_HEADER: &str = "stripe-signature";

/// Applies a plan or subscription change from the billing provider.
#[utoipa::path(
    post,
    path = "/api/webhooks/billing",
    tag = "billing",
    params(("Stripe-Signature" = String, Header,
        description = "`t=<unix>,v1=<hex>[,v1=<hex>]`: HMAC-SHA256 of `<t>.<raw body>` with the webhook secret; 300 s tolerance")),
    request_body(content = BillingEvent, content_type = "application/json"),
    responses(
        (status = 200, description = "Applied, ignored (unknown type, account or customer; older than the last applied) or a duplicate (`duplicate: true`)", body = WebhookReceived),
        (status = 400, description = "`INVALID_SIGNATURE` (bad, missing or stale `Stripe-Signature`), `INVALID_JSON`, or `INVALID_PAYLOAD` with `details`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: body over 64 KiB", body = ErrorBody),
        (status = 500, description = "`INTERNAL`: processing failed; the provider retries", body = ErrorBody),
        (status = 503, description = "`WEBHOOK_NOT_CONFIGURED` (no secret configured), or `SERVICE_UNAVAILABLE` (database unreachable; the provider retries)", body = ErrorBody),
    )
)]
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(secret) = state
        .config
        .billing_webhook_secret
        .as_deref()
        .filter(|secret| !secret.is_empty())
    else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiCode::WebhookNotConfigured,
            "Billing webhook not configured",
        );
    };
    let body = match read_within(&headers, body, BILLING_WEBHOOK_BODY_LIMIT).await {
        Ok(body) => body,
        Err(BodyRefusal::TooLarge) => return payload_too_large(),
        Err(BodyRefusal::Unreadable) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ApiCode::InvalidJson,
                messages::INVALID_JSON,
            )
        }
    };
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    let now = state.clock.now();
    let result = async {
        webhook::verify_signature(secret.as_bytes(), signature, &body, now)?;
        let event = webhook::parse_event(&body)?;
        // A change of period moves each key's counted calls too: the rollups of every event
        // acknowledged so far are applied first, so that the move finds them.
        state.ingestion.recorder.flush().await;
        webhook::apply_event(&state.db, &state.invalidation, &event, now).await
    }
    .await;
    if let Ok(Outcome::Ignored(reason)) = result {
        state.metrics.billing_event_ignored(reason.as_str());
    }
    match result {
        Ok(outcome) => Json(WebhookReceived {
            received: true,
            duplicate: matches!(outcome, Outcome::Duplicate).then_some(true),
        })
        .into_response(),
        Err(err) => err.into_response(),
    }
}
