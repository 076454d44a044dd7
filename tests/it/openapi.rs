//! The OpenAPI document: served at `/openapi.json` as OpenAPI 3.1, naming every REST route and
//! every status it answers with; the checked-in `openapi.json` fails this when it drifts.

use crate::common::TestApp;

use axum::http::StatusCode;
use serde_json::Value;

#[test]
fn openapi_json_matches_the_code() {
    let expected = tally::http::rest_routes::document();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == expected,
        "openapi.json is out of date: run `cargo run -- openapi > openapi.json`"
    );
}

/// Every route with the statuses the contract gives it.
const ROUTES: &[(&str, &str, &[&str])] = &[
    (
        "post",
        "/api/track",
        &["200", "400", "401", "403", "413", "429", "503"],
    ),
    (
        "post",
        "/api/install-callback",
        &["200", "400", "413", "429", "503"],
    ),
    (
        "post",
        "/api/v1/verify",
        &["200", "400", "401", "403", "409", "413", "429", "503"],
    ),
    (
        "post",
        "/api/v1/events",
        &["200", "400", "401", "403", "413", "429", "503"],
    ),
    (
        "post",
        "/api/webhooks/billing",
        &["200", "400", "413", "500", "503"],
    ),
    ("get", "/health", &["200"]),
    ("get", "/ready", &["200", "503"]),
    ("get", "/metrics", &["200"]),
    ("get", "/openapi.json", &["200"]),
    ("post", "/graphql", &["200", "400", "413"]),
    ("get", "/graphql", &["200"]),
];

#[tokio::test]
async fn openapi_json_is_openapi_3_1_naming_every_route_and_status() {
    let app = TestApp::new().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let document = response.json();
    let version = document["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "openapi: {version}");
    for (method, path, statuses) in ROUTES {
        let operation = &document["paths"][path][method];
        let documented: Vec<&String> = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} is not documented"))
            .keys()
            .collect();
        assert_eq!(documented, *statuses, "{method} {path}");
    }
}

#[tokio::test]
async fn metered_routes_document_bearer_auth_signatures_and_limit_headers() {
    let document: Value = serde_json::from_str(tally::http::rest_routes::document()).unwrap();
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let track = &document["paths"]["/api/track"]["post"];
    assert_eq!(track["security"][0]["bearer"], serde_json::json!([]));
    assert_eq!(track["parameters"][0]["name"], "X-Tally-Signature");
    let limited = &track["responses"]["429"]["headers"];
    for header in [
        "Retry-After",
        "RateLimit",
        "RateLimit-Policy",
        "X-RateLimit-Remaining",
        "x-request-id",
    ] {
        assert!(
            limited[header].is_object(),
            "429 of /api/track lacks {header}"
        );
    }
    assert_eq!(limited["Retry-After"]["required"], true);
    assert_eq!(limited["x-request-id"]["required"], true);
    let graphql_ok = &document["paths"]["/graphql"]["post"]["responses"]["200"];
    assert_eq!(graphql_ok["headers"]["x-request-id"]["required"], true);
    // Refused before the key is known: no limits to report.
    assert!(track["responses"]["401"]["headers"]["RateLimit"].is_null());
    let webhook = &document["paths"]["/api/webhooks/billing"]["post"];
    assert_eq!(webhook["parameters"][0]["name"], "Stripe-Signature");
    let codes = &document["components"]["schemas"]["ApiCode"]["enum"];
    for code in [
        "VALID",
        "INVALID_KEY",
        "USAGE_EXCEEDED",
        "WEBHOOK_NOT_CONFIGURED",
        "INTERNAL",
    ] {
        assert!(
            codes.as_array().unwrap().iter().any(|c| c == code),
            "{code}"
        );
    }
}
