//! REST error responses, in one place: a [`DomainError`] becomes a status, a JSON body
//! `{"error": ...}` (with `details` for bad fields, the quota figures for an exhausted quota) and
//! `Retry-After` where retrying helps. Error responses no handler wrote (axum's 404 and 405, the
//! request timeout's 408, an extractor's rejection) get the same JSON body; their status and
//! headers (`Allow` of a 405, for instance) are kept.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::error::DomainError;

impl IntoResponse for DomainError {
    fn into_response(self) -> Response {
        let (status, body, retry_after) = rest_parts(&self);
        with_retry_after((status, Json(body)).into_response(), retry_after)
    }
}

/// The REST status, JSON body and `Retry-After` seconds of an error. Logs internal causes.
pub fn rest_parts(err: &DomainError) -> (StatusCode, serde_json::Value, Option<u64>) {
    err.log_cause();
    let message = err.to_string();
    let (status, body) = match err {
        DomainError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, json!({ "error": message })),
        DomainError::Forbidden(_) => (StatusCode::FORBIDDEN, json!({ "error": message })),
        DomainError::NotFound(_) => (StatusCode::NOT_FOUND, json!({ "error": message })),
        DomainError::BadInput { fields, .. } if fields.is_empty() => {
            (StatusCode::BAD_REQUEST, json!({ "error": message }))
        }
        DomainError::BadInput { fields, .. } => (
            StatusCode::BAD_REQUEST,
            json!({ "error": "Invalid payload", "details": fields }),
        ),
        DomainError::RateLimited { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, json!({ "error": message }))
        }
        DomainError::QuotaExceeded {
            limit,
            used,
            reset,
            upgrade_url,
            ..
        } => (
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "error": message,
                "limit": limit,
                "used": used,
                "reset": reset.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "upgrade_url": upgrade_url,
            }),
        ),
        DomainError::Unavailable(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, json!({ "error": message }))
        }
        DomainError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": message }),
        ),
    };
    let retry_after = match err {
        DomainError::RateLimited {
            retry_after_secs, ..
        }
        | DomainError::QuotaExceeded {
            retry_after_secs, ..
        } => Some(*retry_after_secs),
        DomainError::Unavailable(_) => Some(1),
        _ => None,
    };
    (status, body, retry_after)
}

/// Adds `Retry-After` when there is one.
pub fn with_retry_after(mut response: Response, retry_after: Option<u64>) -> Response {
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}

pub async fn json_error_bodies(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = json!({ "error": message(status) }).to_string();
    Response::from_parts(parts, Body::from(body))
}

/// The JSON error response of `status` with its usual message, for code that answers one itself.
pub fn json_error(status: StatusCode) -> Response {
    let mut response = Response::new(Body::from(json!({ "error": message(status) }).to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"))
}

fn message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "Bad request",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::REQUEST_TIMEOUT => "Request timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "Payload too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::UNPROCESSABLE_ENTITY => "Invalid JSON",
        StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
        status if status.is_server_error() => "Internal error",
        status => status.canonical_reason().unwrap_or("Request refused"),
    }
}
