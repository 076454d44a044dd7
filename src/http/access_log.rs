//! One INFO line per request, written when its response head is ready: method, matched route
//! (`unmatched` for unknown paths, so raw paths never fill the log), status, latency in
//! milliseconds as a number, and the request id that the response carries (a client's own only
//! when it is short and of a safe alphabet: `http::request_id`).

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use crate::http::methods;
use crate::http::metrics_route::route_of;
use crate::http::request_id::REQUEST_ID;

pub async fn log_request(request: Request, next: Next) -> Response {
    // With the line filtered out (`TALLY_LOG=warn`), skip reading and copying what it would say.
    if !tracing::enabled!(target: "tally::access", tracing::Level::INFO) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = methods::label(request.method());
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let response = next.run(request).await;
    let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
    let route = route_of(&response);
    tracing::info!(
        target: "tally::access",
        method,
        route,
        status = response.status().as_u16(),
        latency_ms,
        // Quoted in human lines (a `&str` field is), whatever it holds.
        request_id = request_id.as_str(),
        "request"
    );
    response
}
