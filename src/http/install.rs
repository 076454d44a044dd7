//! `POST /api/install-callback`: an install script reports an install, with or without a key.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::ingest;
use crate::http::client::ClientAddress;
use crate::http::ingest::bearer;
use crate::state::AppState;

pub async fn install_callback(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match ingest::install(&state.ingestion, bearer(&headers), &client, &body).await {
        Ok(()) => Json(json!({ "recorded": true })).into_response(),
        Err(err) => err.into_response(),
    }
}
