//! CORS for `/graphql`: dashboards served from another origin may call the API when their origin
//! is on the allow-list (`TALLY_CORS_ORIGINS`). Callers authenticate with a Bearer token, never a
//! cookie, so credentials are not allowed; preflights are cached for an hour. A request from any
//! other origin is answered as if CORS were off: no `access-control-*` header at all.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may reuse a preflight's answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(3600);

/// The CORS answer for the listed origins; see [`answer_listed_origins`].
#[derive(Clone)]
pub struct GraphqlCors {
    origins: Arc<[HeaderValue]>,
    layer: CorsLayer,
}

/// The CORS of `/graphql` for the allowed origins, or `None` when there are none (no CORS
/// headers at all).
pub fn graphql_cors(origins: &[String]) -> Option<GraphqlCors> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.clone()))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(PREFLIGHT_MAX_AGE);
    Some(GraphqlCors {
        origins: origins.into(),
        layer,
    })
}

/// Hands a request from a listed origin to the CORS layer; every other request skips it.
/// tower-http's layer answers every preflight with the allowed methods, headers and max age
/// whatever its origin, leaving out only `access-control-allow-origin`; an unlisted origin
/// must learn nothing, and its preflight gets what it would get with CORS off (405).
pub async fn answer_listed_origins(
    State(cors): State<GraphqlCors>,
    request: Request,
    next: Next,
) -> Response {
    let listed = request
        .headers()
        .get(header::ORIGIN)
        .is_some_and(|origin| cors.origins.contains(origin));
    if !listed {
        let mut response = next.run(request).await;
        // The answer depends on the origin: a cache must not hand it to a listed one.
        response.headers_mut().append(
            header::VARY,
            HeaderValue::from_static(
                "origin, access-control-request-method, access-control-request-headers",
            ),
        );
        return response;
    }
    match cors.layer.layer(next).oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}
