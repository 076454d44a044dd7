//! REST error responses, in one place: a [`DomainError`] becomes a status, a JSON body
//! `{"error": ..., "code": ...}` ([`ErrorBody`]: `details` for bad fields, the quota figures for an
//! exhausted quota; codes in `http::code`) and
//! `Retry-After` where retrying helps. Error responses no handler wrote (axum's 404 and 405, the
//! request timeout's 408, an extractor's rejection) get the same JSON body; their status and
//! headers (`Allow` of a 405, for instance) are kept.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::domain::error::{
    messages, BadInputReason, DomainError, ForbiddenReason, UnauthenticatedReason,
};
use crate::http::code::ApiCode;
use crate::http::response_bodies::ErrorBody;

impl IntoResponse for DomainError {
    fn into_response(self) -> Response {
        let (status, body, retry_after) = rest_parts(&self);
        with_retry_after((status, Json(body)).into_response(), retry_after)
    }
}

/// The REST status, JSON body and `Retry-After` seconds of an error. Logs internal causes.
pub fn rest_parts(err: &DomainError) -> (StatusCode, ErrorBody, Option<u64>) {
    err.log_cause();
    let mut body = ErrorBody::new(code_of(err), err.to_string());
    let status = match err {
        DomainError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        DomainError::Forbidden { .. } => StatusCode::FORBIDDEN,
        DomainError::NotFound(_) => StatusCode::NOT_FOUND,
        DomainError::BadInput { fields, .. } => {
            if !fields.is_empty() {
                body.error = messages::INVALID_PAYLOAD.to_owned();
                body.details = Some(fields.clone());
            }
            StatusCode::BAD_REQUEST
        }
        DomainError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        DomainError::QuotaExceeded {
            limit,
            used,
            reset,
            upgrade_url,
            ..
        } => {
            body.limit = Some(*limit);
            body.used = Some(*used);
            body.reset = Some(reset.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            body.upgrade_url = Some(upgrade_url.clone());
            StatusCode::TOO_MANY_REQUESTS
        }
        DomainError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        DomainError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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

/// The code of an error: the variant, or for the variants that stand for several situations
/// their reason. Never the message, so rewording one cannot change a code.
pub fn code_of(err: &DomainError) -> ApiCode {
    match err {
        DomainError::Unauthenticated { reason, .. } => match reason {
            UnauthenticatedReason::MissingCredentials => ApiCode::MissingAuthorization,
            UnauthenticatedReason::InvalidCredentials => ApiCode::InvalidKey,
        },
        DomainError::Forbidden { reason, .. } => match reason {
            ForbiddenReason::InvalidSignature => ApiCode::InvalidSignature,
            // No REST route asks for a role; a 403 without a code of its own reads as a refused
            // request, as axum's own 403s do (`generic`).
            ForbiddenReason::RoleRequired => ApiCode::BadRequest,
        },
        DomainError::NotFound(_) => ApiCode::NotFound,
        DomainError::BadInput { reason, .. } => match reason {
            BadInputReason::InvalidJson => ApiCode::InvalidJson,
            BadInputReason::InvalidPayload => ApiCode::InvalidPayload,
            BadInputReason::InvalidSignature => ApiCode::InvalidSignature,
            BadInputReason::Other => ApiCode::BadRequest,
        },
        DomainError::RateLimited { .. } => ApiCode::RateLimited,
        DomainError::QuotaExceeded { .. } => ApiCode::QuotaExceeded,
        DomainError::Unavailable(_) => ApiCode::ServiceUnavailable,
        DomainError::Internal(_) => ApiCode::Internal,
    }
}

/// An error response a handler writes itself, for a refusal that is no [`DomainError`].
pub fn error_response(status: StatusCode, code: ApiCode, message: &str) -> Response {
    (status, Json(ErrorBody::new(code, message))).into_response()
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
    Response::from_parts(parts, Body::from(generic_body(status)))
}

/// The JSON error response of `status` with its usual message, for code that answers one itself.
pub fn json_error(status: StatusCode) -> Response {
    let mut response = Response::new(Body::from(generic_body(status)));
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

/// The body of an error response no handler wrote.
fn generic_body(status: StatusCode) -> String {
    let (code, message) = generic(status);
    serde_json::to_string(&ErrorBody::new(code, message)).unwrap_or_default()
}

fn generic(status: StatusCode) -> (ApiCode, &'static str) {
    match status {
        StatusCode::NOT_FOUND => (ApiCode::NotFound, "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => (ApiCode::MethodNotAllowed, "Method not allowed"),
        StatusCode::NOT_IMPLEMENTED => (ApiCode::MethodNotImplemented, "Method not implemented"),
        StatusCode::REQUEST_TIMEOUT => (ApiCode::RequestTimeout, "Request timeout"),
        StatusCode::PAYLOAD_TOO_LARGE => (ApiCode::PayloadTooLarge, "Payload too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::UNPROCESSABLE_ENTITY => {
            (ApiCode::InvalidJson, messages::INVALID_JSON)
        }
        StatusCode::SERVICE_UNAVAILABLE => (ApiCode::ServiceUnavailable, "Service unavailable"),
        status if status.is_server_error() => (ApiCode::Internal, "Internal error"),
        StatusCode::BAD_REQUEST => (ApiCode::BadRequest, "Bad request"),
        status => (
            ApiCode::BadRequest,
            status.canonical_reason().unwrap_or("Request refused"),
        ),
    }
}
