//! `POST /api/v1/events`: a backend reports finished calls in a batch.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::ToSchema;

use crate::domain::ingest::{self, Route};
use crate::http::authenticated_key::{AuthenticatedKey, IngestRoute};
use crate::http::ingest::signature;
use crate::http::response_bodies::{ErrorBody, EventsAccepted};
use crate::state::AppState;

// Describes the body for the OpenAPI document; the handler reads it field by field
// (`domain::payload::finished_calls`).
/// A batch of finished calls, stored all or nothing: one invalid event refuses the batch.
#[derive(ToSchema)]
pub struct EventsRequest {
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<FinishedCall>,
}

/// One finished API call.
#[derive(ToSchema)]
pub struct FinishedCall {
    /// Idempotency; the `event_id` of an earlier verify completes that call instead.
    #[schema(max_length = 128)]
    pub event_id: Option<String>,
    #[schema(min_length = 1, max_length = 500, example = "/v1/search")]
    pub endpoint: String,
    #[schema(min_length = 1, max_length = 16, example = "GET")]
    pub method: String,
    #[schema(minimum = 100, maximum = 599, example = 200)]
    pub status_code: i64,
    #[schema(minimum = 0, maximum = 86_400_000, example = 42)]
    pub response_time_ms: i64,
    /// When the call happened (RFC 3339): at most 5 minutes ahead, at most 35 days old.
    #[schema(format = DateTime, example = "2026-11-29T20:00:00Z")]
    pub ts: String,
}

pub struct Events;

impl IngestRoute for Events {
    const ROUTE: Route = Route::Events;
}

/// Records a batch of finished calls, all or nothing.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "gateways",
    security(("bearer" = [])),
    request_body(content = EventsRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored: counts of new, completed and duplicate events", body = EventsAccepted),
        (status = 400, description = "`INVALID_JSON`, or `INVALID_PAYLOAD` with `details` keyed `events[<index>].<field>`; nothing stored", body = ErrorBody),
        (status = 401, description = "`MISSING_AUTHORIZATION` or `INVALID_KEY`", body = ErrorBody),
        (status = 403, description = "`INVALID_SIGNATURE`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: body over 1 MiB", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED`, or `QUOTA_EXCEEDED` (the batch would take a blocking plan past its quota; nothing stored)", body = ErrorBody),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database cannot be reached; retry", body = ErrorBody),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    key: AuthenticatedKey<Events>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match ingest::events(&state.ingestion, &key.caller, &body, signature(&headers)).await {
        Ok(outcome) => {
            let answer = Json(EventsAccepted {
                accepted: outcome.accepted,
                completed: outcome.completed,
                duplicates: outcome.duplicates,
            });
            (key.limit_headers(&state, None).await, answer).into_response()
        }
        Err(err) => key.refuse(&state, err).await,
    }
}
