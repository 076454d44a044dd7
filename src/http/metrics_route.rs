//! `GET /metrics` (Prometheus text) and the layer that counts and times requests by route.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::methods;
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

/// Counts and times every answered request by route, unknown paths (404), refused methods and
/// timeouts included: it runs outside the router and reads the route [`name_route`] left on the
/// response (`unmatched` when no route took the request).
pub async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = methods::label(request.method());
    let response = next.run(request).await;
    state.metrics.request(
        route_of(&response),
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Leaves the matched route on the response, for the layers outside the router (metrics, access
/// log), which cannot see it on the request.
pub async fn name_route(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}

/// The route a response was answered on, as [`name_route`] left it.
pub fn route_of(response: &Response) -> &str {
    response
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}
