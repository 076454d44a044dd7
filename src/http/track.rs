//! `POST /api/track`: a hook reports one tool use.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;

use crate::domain::ingest::{self, Route};
use crate::http::authenticated_key::{AuthenticatedKey, IngestRoute};
use crate::http::ingest::signature;
use crate::http::response_bodies::ErrorBody;
use crate::state::AppState;

// Describes the body for the OpenAPI document; the handler reads it field by field
// (`domain::payload::tool_use`) so that every problem is reported at once.
/// One tool use. Unknown fields are ignored; an optional field sent empty (`""`) is absent.
#[derive(ToSchema)]
pub struct TrackRequest {
    #[schema(min_length = 1, max_length = 200, example = "code-review")]
    pub skill_id: String,
    #[schema(min_length = 1, max_length = 200, example = "Bash")]
    pub tool_name: String,
    /// When the tool ran (RFC 3339): at most 5 minutes ahead of the server, at most 35 days old.
    #[schema(format = DateTime, example = "2026-11-29T20:00:00Z")]
    pub ts: String,
    #[schema(max_length = 100, example = "PostToolUse")]
    pub hook_event: Option<String>,
    #[schema(max_length = 1000)]
    pub tool_input_snippet: Option<String>,
    #[schema(max_length = 1000)]
    pub tool_output_snippet: Option<String>,
    /// Idempotency: an account never stores two events with one `event_id`.
    #[schema(max_length = 128)]
    pub event_id: Option<String>,
}

/// Accepts expired (not revoked) keys and marks their events.
pub struct Track;

impl IngestRoute for Track {
    const ROUTE: Route = Route::Track;
}

/// Records one tool use; 200 means it is committed and counted once.
#[utoipa::path(
    post,
    path = "/api/track",
    tag = "hooks",
    security(("bearer" = [])),
    request_body(content = TrackRequest, content_type = "application/json",
        description = "Read as JSON whatever the `Content-Type` says"),
    responses(
        (status = 200, description = "Stored and counted (or a repeated `event_id`: nothing new); empty body"),
        (status = 400, description = "`INVALID_JSON`, or `INVALID_PAYLOAD` with `details` per field", body = ErrorBody),
        (status = 401, description = "`MISSING_AUTHORIZATION`, or `INVALID_KEY` (unknown, malformed, bad checksum or revoked)", body = ErrorBody),
        (status = 403, description = "`INVALID_SIGNATURE`: `X-Tally-Signature` wrong, or absent while the key requires it", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: body over 64 KiB", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED`, or `QUOTA_EXCEEDED` with `limit`, `used`, `reset`, `upgrade_url`", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database cannot be reached; retry", body = ErrorBody),
    )
)]
pub async fn track(
    State(state): State<AppState>,
    key: AuthenticatedKey<Track>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match ingest::track(&state.ingestion, &key.caller, &body, signature(&headers)).await {
        Ok(()) => (key.limit_headers(&state, None).await, StatusCode::OK).into_response(),
        Err(err) => key.refuse(&state, err).await,
    }
}
