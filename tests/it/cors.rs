//! CORS on `/graphql`: only origins on `TALLY_CORS_ORIGINS` get the allow headers; no origin is
//! allowed by default, and routes other than `/graphql` never answer CORS.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tally::config::Config;

use crate::common::{TestApp, TestResponse};

const ALLOWED: &str = "https://dash.example.com";

async fn app_allowing(origins: &[&str]) -> TestApp {
    TestApp::with_config(Config {
        cors_origins: origins.iter().map(|origin| origin.to_string()).collect(),
        ..Config::default()
    })
    .await
}

async fn preflight(app: &TestApp, path: &str, origin: &str) -> TestResponse {
    app.request(
        Request::options(path)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn preflight_from_an_allowed_origin_gets_the_allow_headers() {
    let app = app_allowing(&[ALLOWED, "http://localhost:3000"]).await;
    let response = preflight(&app, "/graphql", ALLOWED).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some(ALLOWED)
    );
    let methods = response.header("access-control-allow-methods").unwrap();
    assert!(
        methods.contains("GET") && methods.contains("POST"),
        "{methods}"
    );
    let headers = response.header("access-control-allow-headers").unwrap();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert_eq!(response.header("access-control-max-age"), Some("3600"));
    assert_eq!(response.header("access-control-allow-credentials"), None);
}

/// `{ plans { code } }` POSTed to /graphql from a page of `origin`.
async fn post_plans_query(app: &TestApp, origin: &str) -> TestResponse {
    app.request(
        Request::post("/graphql")
            .header("origin", origin)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"query":"{ plans { code } }"}"#))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn an_allowed_origin_can_read_the_answer_of_a_post() {
    let app = app_allowing(&[ALLOWED]).await;
    let response = post_plans_query(&app, ALLOWED).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some(ALLOWED)
    );
    assert_eq!(response.json()["data"]["plans"][0]["code"], "FREE");
}

#[tokio::test]
async fn a_preflight_from_another_origin_gets_no_cors_headers_at_all() {
    let app = app_allowing(&[ALLOWED]).await;
    for origin in ["https://evil.example.com", "https://dash.example.com:8443"] {
        let response = preflight(&app, "/graphql", origin).await;
        let cors: Vec<_> = response
            .headers
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{origin} got {cors:?}");
        // Answered as if CORS were off: OPTIONS is a method /graphql does not have.
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{origin}");
        assert_eq!(response.json()["error"], "Method not allowed");
    }
}

#[tokio::test]
async fn a_post_from_another_origin_gets_no_cors_headers() {
    let app = app_allowing(&[ALLOWED]).await;
    let response = post_plans_query(&app, "https://evil.example.com").await;
    assert!(
        !response
            .headers
            .keys()
            .any(|name| name.as_str().starts_with("access-control-")),
        "{:?}",
        response.headers
    );
}

#[tokio::test]
async fn no_origin_is_allowed_by_default() {
    let app = TestApp::new().await;
    let response = preflight(&app, "/graphql", ALLOWED).await;
    assert_eq!(response.header("access-control-allow-origin"), None);
    assert_eq!(response.header("access-control-allow-methods"), None);
    // Without CORS an OPTIONS request is just a method /graphql does not have.
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.json()["error"], "Method not allowed");
}

#[tokio::test]
async fn other_routes_never_answer_cors() {
    let app = app_allowing(&[ALLOWED]).await;
    for path in ["/api/v1/verify", "/api/track", "/health", "/dashboard"] {
        let response = preflight(&app, path, ALLOWED).await;
        assert_eq!(
            response.header("access-control-allow-origin"),
            None,
            "{path}"
        );
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
}
