//! `POST /api/v1/events`: a backend reports finished calls in a batch.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::ingest::{self, Route};
use crate::http::caller::{Caller, IngestRoute};
use crate::http::ingest::signature;
use crate::state::AppState;

pub struct Events;

impl IngestRoute for Events {
    const ROUTE: Route = Route::Events;
}

pub async fn events(
    State(state): State<AppState>,
    caller: Caller<Events>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match ingest::events(&state.ingestion, &caller.key, &body, signature(&headers)).await {
        Ok(outcome) => {
            let answer = Json(json!({
                "accepted": outcome.accepted,
                "completed": outcome.completed,
                "duplicates": outcome.duplicates,
            }));
            (caller.limit_headers(&state, None).await, answer).into_response()
        }
        Err(err) => caller.refuse(&state, err).await,
    }
}
