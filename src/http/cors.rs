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

/// Reads one `TALLY_CORS_ORIGINS` entry: `scheme://host[:port]`, as a browser sends it in
/// `Origin` (http or https, no path, no trailing slash). Returned as the browser writes it
/// (lower-case, default port left out); an empty entry (an empty variable, a trailing comma) is
/// returned empty and skipped.
pub fn parse_cors_origin(entry: &str) -> Result<String, String> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Ok(String::new());
    }
    let refuse = |why: &str| {
        Err(format!(
            "`{entry}` is not an origin ({why}); write scheme://host[:port], e.g. \
             https://dashboard.example.com"
        ))
    };
    if entry == "*" {
        return refuse("a wildcard would let any site call the API; list the origins");
    }
    let url = match url::Url::parse(entry) {
        Ok(url) => url,
        Err(err) => return refuse(&err.to_string()),
    };
    if url.scheme() != "http" && url.scheme() != "https" {
        return refuse("the scheme must be http or https");
    }
    // The parser reads `https://host` and `https://host/` alike; an origin has neither path nor
    // trailing slash.
    if url.path() != "/"
        || entry.ends_with('/')
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return refuse("an origin has no path, not even a trailing slash");
    }
    if url.port() == Some(0) {
        return refuse("the port must be a number from 1 to 65535");
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::parse_cors_origin;

    #[test]
    fn accepts_origins_as_browsers_send_them() {
        for origin in [
            "https://dash.example.com",
            "http://localhost:3000",
            "http://127.0.0.1:8081",
            "http://[::1]:8080",
            "HTTPS://Dash.Example.com",
        ] {
            let parsed = parse_cors_origin(origin).expect(origin);
            assert_eq!(parsed, origin.to_ascii_lowercase());
        }
        assert_eq!(parse_cors_origin(" ").as_deref(), Ok(""));
    }

    #[test]
    fn refuses_what_is_not_an_origin() {
        for bad in [
            "*",
            "example.com",
            "ftp://example.com",
            "https://example.com/",
            "https://example.com/app",
            "https://exa mple.com",
            "https://example.com:0",
            "https://example.com:99999",
            "https://:8080",
            "http://::1:8080",
        ] {
            assert!(parse_cors_origin(bad).is_err(), "{bad} was accepted");
        }
    }
}
