//! `POST /api/track`: a hook reports one tool use.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::domain::ingest::{self, Route};
use crate::http::caller::{Caller, IngestRoute};
use crate::http::ingest::signature;
use crate::state::AppState;

/// Accepts expired (not revoked) keys and marks their events.
pub struct Track;

impl IngestRoute for Track {
    const ROUTE: Route = Route::Track;
}

pub async fn track(
    State(state): State<AppState>,
    caller: Caller<Track>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match ingest::track(&state.ingestion, &caller.key, &body, signature(&headers)).await {
        Ok(()) => (caller.limit_headers(&state, None).await, StatusCode::OK).into_response(),
        Err(err) => caller.refuse(&state, err).await,
    }
}
