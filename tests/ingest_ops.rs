//! `POST /api/install-callback` and `GET /metrics`.

mod common;

use axum::http::StatusCode;
use common::ingest::tool_use;
use common::TestApp;
use serde_json::json;
use tally::config::Config;

#[tokio::test]
async fn an_anonymous_install_is_recorded_without_an_account() {
    let app = TestApp::new().await;
    let response = app
        .post_json(
            "/api/install-callback",
            None,
            &json!({ "skill_id": "code-review", "platform": "linux", "version": "1.2.0" }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!({ "recorded": true }));
    let stored = app
        .scalar(
            "SELECT COUNT(*) FROM usage_events WHERE account_id IS NULL AND kind = 'INSTALL' \
             AND tool_name = 'install_confirmed' AND metadata LIKE '%install-script%'",
        )
        .await;
    assert_eq!(stored, 1);
    // An empty body is an install with nothing more to say; an invalid key is ignored.
    let empty = app
        .post_raw("/api/install-callback", Some("tly_nope"), &[], Vec::new())
        .await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM usage_events WHERE account_id IS NULL")
            .await,
        2
    );
}

#[tokio::test]
async fn a_keyed_install_is_attributed_and_never_counted() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let response = app
        .post_json(
            "/api/install-callback",
            Some(&m.key),
            &json!({ "skill_id": "code-review" }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(app.stored_events(&m.account_id).await, 1);
    assert_eq!(app.counted_calls(&m.account_id).await, 0);
    let installs = app
        .scalar(&format!(
            "SELECT calls FROM usage_daily_tools WHERE account_id = '{}' AND kind = 'INSTALL'",
            m.account_id
        ))
        .await;
    assert_eq!(installs, 1);
}

#[tokio::test]
async fn install_bodies_that_are_not_json_or_break_rules_are_400() {
    let app = TestApp::new().await;
    let bad = app.post_raw("/api/install-callback", None, &[], "{").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json(), json!({ "error": "Invalid JSON" }));
    let long = app
        .post_json(
            "/api/install-callback",
            None,
            &json!({ "platform": "x".repeat(51) }),
        )
        .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    assert!(long.json()["details"]["platform"].is_array());
}

#[tokio::test]
async fn installs_are_rate_limited_per_client_address() {
    let app = TestApp::with_config(Config {
        install_rate_limit_per_minute: 3,
        ..Config::default()
    })
    .await;
    for _ in 0..3 {
        let ok = app
            .post_json("/api/install-callback", None, &json!({}))
            .await;
        assert_eq!(ok.status, StatusCode::OK);
    }
    let limited = app
        .post_json("/api/install-callback", None, &json!({}))
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json(), json!({ "error": "Rate limited" }));
    assert_eq!(limited.header("retry-after"), Some("20"));
}

#[tokio::test]
async fn metrics_count_requests_events_batches_and_database_errors() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let ok = app.track(&m.key, &tool_use(&app.now_rfc3339(), None)).await;
    assert_eq!(ok.status, StatusCode::OK);
    app.track("tly_nope", &json!({})).await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status, StatusCode::OK);
    let text = String::from_utf8(response.body).unwrap();
    assert!(
        text.contains("tally_http_requests_total{route=\"/api/track\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("tally_http_requests_total{route=\"/api/track\",status=\"401\"} 1"));
    assert!(text.contains("tally_events_stored_total 1"));
    assert!(text.contains("tally_recorder_batch_events_bucket"));
    assert!(text.contains("tally_recorder_write_seconds_bucket"));

    app.state.db.close_by_ref().await.unwrap();
    app.track(&m.key, &tool_use(&app.now_rfc3339(), None)).await;
    let text = String::from_utf8(app.get("/metrics").await.body).unwrap();
    assert!(text.contains("tally_database_errors_total"), "{text}");
}
