//! `POST /api/install-callback`: an install script reports an install, with or without a key.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::ingest;
use crate::http::client::ClientAddress;
use crate::http::ingest::{bearer, signature};
use crate::http::response_bodies::{ErrorBody, InstallRecorded};
use crate::state::AppState;

// Describes the body for the OpenAPI document; `domain::payload::install` reads it.
/// One install; optional (an empty body is `{}`). Unknown fields are ignored; an optional field of
/// the wrong type or length is dropped (named in the answer's `ignored`) and the install recorded.
///
/// The fields are described as any JSON value on purpose: whatever is sent, the install is
/// recorded, so no value of these fields is refused.
#[derive(ToSchema)]
pub struct InstallRequest {
    /// A string of at most 200 characters; any other value is dropped.
    #[schema(example = "code-review")]
    pub skill_id: Option<Value>,
    /// A string of at most 50 characters; any other value is dropped.
    #[schema(example = "linux")]
    pub platform: Option<Value>,
    /// A string of at most 50 characters; any other value is dropped.
    #[schema(example = "1.4.2")]
    pub version: Option<Value>,
}

/// Records an install; a valid key attributes it to its account, a missing or invalid one
/// records it anonymously. A key that requires signatures attributes only a signed body.
#[utoipa::path(
    post,
    path = "/api/install-callback",
    tag = "hooks",
    security((), ("bearer" = [])),
    params(("X-Tally-Signature" = Option<String>, Header,
        description = "`sha256=<hex>`: HMAC-SHA256 of the raw body keyed with the API key. Without it, a key that requires signatures does not attribute the install (recorded anonymously); a wrong one never does")),
    request_body(content = InstallRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded; `ignored` names optional fields dropped for a wrong type or length", body = InstallRecorded),
        (status = 400, description = "`INVALID_JSON`, or `INVALID_PAYLOAD` with `details` (a body that is not an object, or a NUL character)", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: body over 64 KiB", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED`: too many installs from this client address", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database cannot be reached; retry", body = ErrorBody),
    )
)]
pub async fn install_callback(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let install = ingest::install(
        &state.ingestion,
        bearer(&headers),
        signature(&headers),
        &client,
        &body,
    );
    match install.await {
        Ok(ignored) => Json(InstallRecorded {
            recorded: true,
            ignored,
        })
        .into_response(),
        Err(err) => err.into_response(),
    }
}
