//! `POST /api/webhooks/billing`: the billing provider reports plan and subscription changes.
//! Checks run in this order: configured (503), body size (413, at once for a declared
//! `Content-Length` over the limit), signature (400), JSON (400),
//! event shape (400); then the event is applied (`domain::billing::webhook`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::billing::webhook::{self, Outcome};
use crate::domain::error::DomainError;
use crate::http::body::{payload_too_large, read_within, BodyRefusal};
use crate::state::AppState;

/// Largest webhook body; the provider's events are a few kilobytes.
pub const BILLING_WEBHOOK_BODY_LIMIT: usize = 64 * 1024;

const SIGNATURE_HEADER: &str = "stripe-signature";

pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(secret) = state
        .config
        .billing_webhook_secret
        .as_deref()
        .filter(|secret| !secret.is_empty())
    else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "Billing webhook not configured" })),
        )
            .into_response();
    };
    let body = match read_within(&headers, body, BILLING_WEBHOOK_BODY_LIMIT).await {
        Ok(body) => body,
        Err(BodyRefusal::TooLarge) => return payload_too_large(),
        Err(BodyRefusal::Unreadable) => {
            return DomainError::bad_input("Invalid JSON").into_response()
        }
    };
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    let now = state.clock.now();
    let result = async {
        webhook::verify_signature(secret.as_bytes(), signature, &body, now)?;
        let event = webhook::parse_event(&body)?;
        webhook::apply_event(&state.db, &state.invalidation, &event, now).await
    }
    .await;
    match result {
        Ok(Outcome::Duplicate) => {
            Json(json!({ "received": true, "duplicate": true })).into_response()
        }
        Ok(_) => Json(json!({ "received": true })).into_response(),
        Err(err) => err.into_response(),
    }
}
