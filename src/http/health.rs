//! Liveness and readiness.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::domain::ratelimit::shared::RedisStatus;
use crate::http::code::ApiCode;
use crate::http::response_bodies::{Health, NotReady, Ready};
use crate::state::AppState;

/// Longest a readiness check waits for the database: an unreachable database answers 503 well
/// within a second, even when its connections hang rather than fail.
const READY_PING_TIMEOUT: Duration = Duration::from_millis(800);

/// Longest a readiness check waits for Redis, asked at the same time as the database.
const READY_REDIS_TIMEOUT: Duration = Duration::from_millis(300);

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

/// 200 when the database answers, 503 (with `Retry-After`) otherwise. Redis is asked too, when
/// configured, and reported as it answers now; a Redis that does not answer leaves the service
/// degraded (per-key limits per instance), not down: still 200.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers; `redis` says whether Redis does, and `degraded` why the service is degraded when it is not", body = Ready),
        (status = 503, description = "`SERVICE_UNAVAILABLE`: the database did not answer within a second", body = NotReady),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    let database = tokio::time::timeout(READY_PING_TIMEOUT, state.db.ping());
    let (database, redis) = tokio::join!(database, redis_status(&state));
    let error = match database {
        Ok(Ok(())) => return Json(ready_body(redis)).into_response(),
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
            redis: redis.map(redis_word),
        }),
    )
        .into_response()
}

/// Redis as it answers now, when limits are shared through it.
async fn redis_status(state: &AppState) -> Option<RedisStatus> {
    match state.ingestion.key_limits.shared() {
        Some(shared) => Some(shared.ping(READY_REDIS_TIMEOUT).await),
        None => None,
    }
}

fn redis_word(status: RedisStatus) -> String {
    match status {
        RedisStatus::Up => "up",
        RedisStatus::Unreachable => "unreachable",
    }
    .to_owned()
}

/// Ready, and whether per-key limits are shared: with Redis configured but unreachable the
/// service is degraded (limits per instance), not down.
fn ready_body(redis: Option<RedisStatus>) -> Ready {
    let degraded = (redis == Some(RedisStatus::Unreachable))
        .then(|| "per-key rate limits are per instance until Redis answers".to_owned());
    Ready {
        status: "ready".to_owned(),
        redis: redis.map(redis_word),
        degraded,
    }
}
