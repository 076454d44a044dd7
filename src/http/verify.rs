//! `POST /api/v1/verify`: may this key make a call now? Every answer carries `valid`; a reused
//! event id that is not a retry of its verify is 409.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::SecondsFormat;
use serde_json::json;

use crate::domain::error::DomainError;
use crate::domain::ingest::{self, Route, Verified, VerifyAnswer};
use crate::http::caller::{Caller, IngestRoute};
use crate::http::error::{rest_parts, with_retry_after};
use crate::http::ingest::signature;
use crate::state::AppState;

pub struct Verify;

impl IngestRoute for Verify {
    const ROUTE: Route = Route::Verify;

    fn refusal(err: DomainError) -> Response {
        refuse(err)
    }
}

pub async fn verify(
    State(state): State<AppState>,
    caller: Caller<Verify>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match ingest::verify(&state.ingestion, &caller.key, &body, signature(&headers)).await {
        Ok(answer) => {
            let response = match answer {
                VerifyAnswer::Allowed(verified) => allowed_response(&verified),
                VerifyAnswer::EventIdReused => (
                    StatusCode::CONFLICT,
                    Json(json!({ "valid": false, "error": "Event id reused" })),
                )
                    .into_response(),
            };
            (caller.limit_headers(&state, None).await, response).into_response()
        }
        Err(err) => caller.refuse(&state, err).await,
    }
}

fn allowed_response(verified: &Verified) -> Response {
    Json(json!({
        "valid": true,
        "account_id": verified.account_id,
        "key_id": verified.key_id,
        "plan": verified.plan,
        "limit": verified.limit,
        "used": verified.used,
        "remaining": verified.remaining(),
        "reset": verified.period.end.to_rfc3339_opts(SecondsFormat::Secs, true),
        "overage": verified.overage,
    }))
    .into_response()
}

/// The error's usual response with `"valid": false` added.
fn refuse(err: DomainError) -> Response {
    let (status, mut body, retry_after) = rest_parts(&err);
    if let Some(object) = body.as_object_mut() {
        object.insert("valid".to_owned(), false.into());
    }
    with_retry_after((status, Json(body)).into_response(), retry_after)
}
