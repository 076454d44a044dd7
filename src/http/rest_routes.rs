//! The REST routes, each declared once: `routes!` takes a handler's method, path and OpenAPI
//! operation from its `#[utoipa::path]`, so a route and its entry in `/openapi.json` cannot
//! drift. `router` adds GraphQL, the dashboard and the layers every route shares.

use std::sync::OnceLock;

use axum::http::header;
use axum::middleware;
use axum::response::IntoResponse;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::http::{
    billing_webhook, events, health, ingest, install, metrics_route, openapi, track, verify,
};
use crate::state::AppState;

/// The REST routes with their OpenAPI operations, in the order the document lists them.
pub fn rest_routes() -> OpenApiRouter<AppState> {
    // Every body is read within its route's limit before anything else (413 before any
    // authentication, at once for a declared length over the limit): ingestion routes through
    // a route layer that hands the handler the whole body, GraphQL and the webhook themselves.
    let single_event = middleware::from_fn(ingest::buffer_within::<{ ingest::SINGLE_EVENT_LIMIT }>);
    let batch = middleware::from_fn(ingest::buffer_within::<{ ingest::BATCH_LIMIT }>);
    OpenApiRouter::default()
        .routes(routes!(track::track).layer(single_event.clone()))
        .routes(routes!(install::install_callback).layer(single_event.clone()))
        .routes(routes!(verify::verify).layer(single_event))
        .routes(routes!(events::events).layer(batch))
        .routes(routes!(billing_webhook::receive))
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(metrics_route::metrics))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of [`rest_routes`], built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| openapi::render(rest_routes().into_openapi()))
}

/// Serves the OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}
