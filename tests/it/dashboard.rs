//! The built-in web UI: the dashboard page at `/` and on every `/dashboard/...` path (the
//! browser routes its screens), its files under `/assets/`, GraphiQL on `GET /graphql`, all
//! from files in the binary; any other path stays a JSON 404.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::common::TestApp;

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[tokio::test]
async fn the_dashboard_page_is_served_at_the_root_and_on_every_screen_path() {
    let app = TestApp::new().await;
    for path in [
        "/",
        "/dashboard",
        "/dashboard/keys",
        "/dashboard/invoices/some-id",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        let csp = response.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let html = text(&response.body);
        assert!(html.contains(r#"<script type="module" src="/assets/app.js">"#));
    }
}

#[tokio::test]
async fn assets_have_their_content_types_and_revalidate() {
    let app = TestApp::new().await;
    for (path, content_type) in [
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/paging.js", "text/javascript; charset=utf-8"),
        (
            "/assets/screens/admin/index.js",
            "text/javascript; charset=utf-8",
        ),
        ("/assets/style.css", "text/css; charset=utf-8"),
        (
            "/assets/vendor/chart.umd.js",
            "text/javascript; charset=utf-8",
        ),
        ("/assets/favicon.svg", "image/svg+xml"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{path}"
        );
        assert_eq!(response.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert!(!response.body.is_empty());
    }

    let first = app.get("/assets/app.js").await;
    let etag = first.header("etag").unwrap().to_owned();
    let again = app
        .request(
            Request::get("/assets/app.js")
                .header("if-none-match", &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
}

#[tokio::test]
async fn unknown_paths_stay_json_404s() {
    let app = TestApp::new().await;
    for path in [
        "/nope",
        "/assets/missing.js",
        "/assets/",
        "/dashboardx",
        "/api/v2/verify",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.json()["error"], "Not found", "{path}");
    }
}

#[tokio::test]
async fn graphiql_loads_nothing_from_another_origin() {
    let app = TestApp::new().await;
    let response = app.get("/graphql").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(response
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'self'"));
    let html = text(&response.body);
    assert!(html.contains("/assets/vendor/graphiql.min.js"));
    for attribute in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!html.contains(attribute), "GraphiQL page has {attribute}");
    }
    // The files it loads are there.
    for asset in [
        "/assets/vendor/react.production.min.js",
        "/assets/vendor/react-dom.production.min.js",
        "/assets/vendor/graphiql.min.js",
        "/assets/vendor/graphiql.min.css",
        "/assets/graphiql.js",
    ] {
        assert_eq!(app.get(asset).await.status, StatusCode::OK, "{asset}");
    }
}

#[tokio::test]
async fn pages_are_served_only_at_their_own_paths_and_never_framed() {
    let app = TestApp::new().await;
    // Under /assets they would be pages without their Content-Security-Policy.
    for path in [
        "/assets/index.html",
        "/assets/graphiql.html",
        "/assets/./index.html",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.json()["error"], "Not found", "{path}");
    }
    for path in ["/", "/dashboard/keys", "/graphql"] {
        let response = app.get(path).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        let csp = response.header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    }
}
