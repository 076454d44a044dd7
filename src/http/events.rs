//! `POST /api/v1/events`: a backend reports finished calls in a batch.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::ingest::{self, Route};
use crate::http::ingest::{bearer, read_body, signature, with_limit_headers, Refused, BATCH_LIMIT};
use crate::state::AppState;

pub async fn events(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&headers, body, BATCH_LIMIT).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let caller = match ingest::authenticate(&state, bearer(&headers), Route::Events).await {
        Ok(caller) => caller,
        Err(err) => return err.into_response(),
    };
    let (minute, allowed) = ingest::spend_rate_limit(&state, &caller);
    let result = match allowed {
        Ok(()) => ingest::events(&state, &caller, &body, signature(&headers)).await,
        Err(err) => Err(err),
    };
    let (response, refused) = match result {
        Ok(outcome) => (
            Json(json!({
                "accepted": outcome.accepted,
                "completed": outcome.completed,
                "duplicates": outcome.duplicates,
            }))
            .into_response(),
            None,
        ),
        Err(err) => {
            let refused = Refused::by(&err);
            (err.into_response(), refused)
        }
    };
    with_limit_headers(&state, &caller, minute, refused, response).await
}
