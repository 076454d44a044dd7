//! `GET /metrics` (Prometheus text) and the layer that counts and times requests by route.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Prometheus text exposition.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Requests by route and status, events stored, batch sizes, write latency, database errors",
        body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

pub async fn count_requests(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let mut response = next.run(request).await;
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    state.metrics.request(
        route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    // The access log, outside the router, names the route from here.
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}
