//! `POST /api/v1/verify`: may this key make a call now? Every answer carries `valid`; a reused
//! event id that is not a retry of its verify is 409.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::SecondsFormat;
use serde_json::json;

use crate::domain::ingest::{self, Route, Verified, VerifyAnswer};
use crate::error::AppError;
use crate::http::ingest::{
    bearer, read_body, signature, with_limit_headers, Refused, SINGLE_EVENT_LIMIT,
};
use crate::state::AppState;

pub async fn verify(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&headers, body, SINGLE_EVENT_LIMIT).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let caller = match ingest::authenticate(&state, bearer(&headers), Route::Verify).await {
        Ok(caller) => caller,
        Err(err) => return refuse(err),
    };
    let (minute, allowed) = ingest::spend_rate_limit(&state, &caller);
    let result = match allowed {
        Ok(()) => ingest::verify(&state, &caller, &body, signature(&headers)).await,
        Err(err) => Err(err),
    };
    let (response, refused) = match result {
        Ok(VerifyAnswer::Allowed(verified)) => (allowed_response(&verified), None),
        Ok(VerifyAnswer::EventIdReused) => (
            (
                StatusCode::CONFLICT,
                Json(json!({ "valid": false, "error": "Event id reused" })),
            )
                .into_response(),
            None,
        ),
        Err(err) => {
            let refused = Refused::by(&err);
            (refuse(err), refused)
        }
    };
    with_limit_headers(&state, &caller, minute, refused, response).await
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
fn refuse(err: AppError) -> Response {
    let (status, mut body, retry_after) = err.rest_parts();
    if let Some(object) = body.as_object_mut() {
        object.insert("valid".to_owned(), false.into());
    }
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}
