//! Liveness and readiness.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::domain::ratelimit::shared::RedisStatus;
use crate::http::bodies::{Health, NotReady, Ready};
use crate::http::code::ApiCode;
use crate::state::AppState;

/// Longest a readiness check waits for the database: an unreachable database answers 503 well
/// within a second, even when its connections hang rather than fail.
const READY_PING_TIMEOUT: Duration = Duration::from_millis(800);

/// 200 while the process runs.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "The process runs", body = Health))
)]
pub async fn health() -> impl IntoResponse {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// 200 when the database answers, 503 (with `Retry-After`) otherwise.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = Ready),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database did not answer within a second", body = NotReady),
    )
)]
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
        Json(NotReady {
            status: "unavailable".to_owned(),
            error: "Database unreachable".to_owned(),
            code: ApiCode::ServiceUnavailable,
        }),
    )
        .into_response()
}

/// Ready, and whether per-key limits are shared: with Redis configured but unreachable the
/// service is degraded (limits per instance), not down.
fn ready_body(state: &AppState) -> Ready {
    let (redis, degraded) = match state
        .ingestion
        .key_limits
        .shared()
        .map(|shared| shared.status())
    {
        None => (None, None),
        Some(RedisStatus::Up) => (Some("up"), None),
        Some(RedisStatus::Unreachable) => (
            Some("unreachable"),
            Some("per-key rate limits are per instance until Redis answers"),
        ),
    };
    Ready {
        status: "ready".to_owned(),
        redis: redis.map(str::to_owned),
        degraded: degraded.map(str::to_owned),
    }
}
