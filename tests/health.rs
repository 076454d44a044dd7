//! `GET /health`, `GET /ready` and the headers every response carries.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::json;

#[tokio::test]
async fn health_answers_ok_while_the_process_runs() {
    let app = TestApp::new().await;
    let response = app.get("/health").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!({ "status": "ok" }));
}

#[tokio::test]
async fn ready_answers_200_with_a_database_and_503_without() {
    let app = TestApp::new().await;
    assert_eq!(app.get("/ready").await.status, StatusCode::OK);
    app.state.db.close_by_ref().await.unwrap();
    let response = app.get("/ready").await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json()["error"], "Database unreachable");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_clients() {
    let app = TestApp::new().await;
    let generated = app.get("/health").await;
    assert!(generated
        .header("x-request-id")
        .is_some_and(|id| !id.is_empty()));

    let request = axum::http::Request::get("/health")
        .header("x-request-id", "trace-me-123")
        .body(axum::body::Body::empty())
        .unwrap();
    let echoed = app.request(request).await;
    assert_eq!(echoed.header("x-request-id"), Some("trace-me-123"));

    let not_found = app.get("/nope").await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    assert!(not_found.header("x-request-id").is_some());
}
