//! `POST /api/track`: a hook reports one tool use.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::domain::ingest::{self, Route};
use crate::http::ingest::{
    bearer, read_body, signature, with_limit_headers, Refused, SINGLE_EVENT_LIMIT,
};
use crate::state::AppState;

pub async fn track(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&headers, body, SINGLE_EVENT_LIMIT).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let caller = match ingest::authenticate(&state, bearer(&headers), Route::Track).await {
        Ok(caller) => caller,
        Err(err) => return err.into_response(),
    };
    let (minute, allowed) = ingest::spend_rate_limit(&state, &caller);
    let result = match allowed {
        Ok(()) => ingest::track(&state, &caller, &body, signature(&headers)).await,
        Err(err) => Err(err),
    };
    let (response, refused) = match result {
        Ok(()) => (StatusCode::OK.into_response(), None),
        Err(err) => {
            let refused = Refused::by(&err);
            (err.into_response(), refused)
        }
    };
    with_limit_headers(&state, &caller, minute, refused, response).await
}
