//! `POST /api/v1/verify`: may this key make a call now? Every answer carries `valid` and a `code`
//! (`VALID`, or why not); a reused event id that is not a retry of its verify is 409.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::SecondsFormat;
use utoipa::ToSchema;

use crate::domain::error::DomainError;
use crate::domain::ingest::{self, Route, Verified, VerifyAnswer};
use crate::http::authenticated_key::{AuthenticatedKey, IngestRoute};
use crate::http::code::ApiCode;
use crate::http::error::{rest_parts, with_retry_after};
use crate::http::ingest::signature;
use crate::http::response_bodies::{ErrorBody, VerifyAllowed, VerifyRefusal};
use crate::state::AppState;

// Describes the body for the OpenAPI document; the handler reads it field by field
// (`domain::payload::verify_request`) so that every problem is reported at once.
/// The call to check; optional (an empty body is `{}`). Unknown fields are ignored.
#[derive(ToSchema)]
pub struct VerifyRequest {
    /// The endpoint the call is for, recorded with it.
    #[schema(max_length = 500, example = "/v1/search")]
    pub endpoint: Option<String>,
    #[schema(max_length = 16, example = "GET")]
    pub method: Option<String>,
    /// Idempotency: a retry within 10 minutes with the same endpoint, method and cost answers
    /// the original decision and counts nothing.
    #[schema(max_length = 128)]
    pub event_id: Option<String>,
    /// Calls this one is worth (default 1).
    #[schema(minimum = 1, maximum = 1000)]
    pub cost: Option<i64>,
}

pub struct Verify;

impl IngestRoute for Verify {
    const ROUTE: Route = Route::Verify;

    fn refusal(err: DomainError) -> Response {
        refuse(err)
    }
}

/// Checks key, rate limit and quota in one step and, when allowed, counts the call.
#[utoipa::path(
    post,
    path = "/api/v1/verify",
    tag = "gateways",
    security(("bearer" = [])),
    request_body(content = VerifyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Allowed (`code` `VALID`): the call is counted, or this is a retry of an allowed verify", body = VerifyAllowed),
        (status = 400, description = "`INVALID_JSON` or `INVALID_PAYLOAD` (with `details`)", body = VerifyRefusal),
        (status = 401, description = "`MISSING_AUTHORIZATION`, or `INVALID_KEY` (unknown, malformed, revoked or expired)", body = VerifyRefusal),
        (status = 403, description = "`INVALID_SIGNATURE`: `X-Tally-Signature` wrong, or absent while the key requires it", body = VerifyRefusal),
        (status = 409, description = "`EVENT_ID_REUSED`: the `event_id` was used by something this request is not a retry of; nothing counted", body = VerifyRefusal),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: body over 64 KiB", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED`, or `USAGE_EXCEEDED` (error `Quota exceeded`, with `limit`, `used`, `reset`, `upgrade_url`)", body = VerifyRefusal),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database cannot be reached; retry", body = VerifyRefusal),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    key: AuthenticatedKey<Verify>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match ingest::verify(&state.ingestion, &key.caller, &body, signature(&headers)).await {
        Ok(answer) => {
            let response = match answer {
                VerifyAnswer::Allowed(verified) => Json(allowed(&verified)).into_response(),
                VerifyAnswer::EventIdReused => (
                    StatusCode::CONFLICT,
                    Json(VerifyRefusal {
                        valid: false,
                        body: ErrorBody::new(ApiCode::EventIdReused, "Event id reused"),
                    }),
                )
                    .into_response(),
            };
            (key.limit_headers(&state, None).await, response).into_response()
        }
        Err(err) => key.refuse(&state, err).await,
    }
}

fn allowed(verified: &Verified) -> VerifyAllowed {
    VerifyAllowed {
        valid: true,
        code: ApiCode::Valid,
        account_id: verified.account_id.clone(),
        key_id: verified.key_id.clone(),
        plan: verified.plan.clone(),
        limit: verified.limit,
        used: verified.used,
        remaining: verified.remaining(),
        reset: verified
            .period
            .end
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        overage: verified.overage,
    }
}

/// The error's usual response with `"valid": false` added. A quota refusal is `USAGE_EXCEEDED`
/// here, the word gateways know from other key services; its `error` stays "Quota exceeded".
fn refuse(err: DomainError) -> Response {
    let (status, mut body, retry_after) = rest_parts(&err);
    if body.code == ApiCode::QuotaExceeded {
        body.code = ApiCode::UsageExceeded;
    }
    let refusal = VerifyRefusal { valid: false, body };
    with_retry_after((status, Json(refusal)).into_response(), retry_after)
}
