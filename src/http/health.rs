//! Liveness and readiness.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::ratelimit::shared::RedisStatus;
use crate::state::AppState;

/// Longest a readiness check waits for the database: an unreachable database answers 503 well
/// within a second, even when its connections hang rather than fail.
const READY_PING_TIMEOUT: Duration = Duration::from_millis(800);

/// 200 while the process runs.
pub async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// 200 when the database answers, 503 (with `Retry-After`) otherwise.
pub async fn ready(State(state): State<AppState>) -> Response {
    let error = match tokio::time::timeout(READY_PING_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => return Json(ready_body(&state)).into_response(),
        Ok(Err(err)) => err.to_string(),
        Err(_) => format!("no answer within {READY_PING_TIMEOUT:?}"),
    };
    tracing::warn!(error, "readiness check: database unreachable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        Json(json!({ "status": "unavailable", "error": "Database unreachable" })),
    )
        .into_response()
}

/// Ready, and whether per-key limits are shared: with Redis configured but unreachable the
/// service is degraded (limits per instance), not down.
fn ready_body(state: &AppState) -> serde_json::Value {
    match state
        .ingestion
        .key_limits
        .shared()
        .map(|shared| shared.status())
    {
        None => json!({ "status": "ready" }),
        Some(RedisStatus::Up) => json!({ "status": "ready", "redis": "up" }),
        Some(RedisStatus::Unreachable) => json!({
            "status": "ready",
            "redis": "unreachable",
            "degraded": "per-key rate limits are per instance until Redis answers",
        }),
    }
}
