//! The machine-readable `code` of every REST error row of the contract, route by route, and of
//! every verify decision: status, `error` message and `code` together, as a client sees them.

use crate::common;

use axum::http::{Request, StatusCode};
use common::ingest::{track_body, Member};
use common::{TestApp, TestResponse};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tally::clock::Clock;
use tally::config::Config;

/// Asserts an error answer: its status, `error` and `code`.
#[track_caller]
fn assert_error(response: &TestResponse, status: StatusCode, error: &str, code: &str) {
    assert_eq!(
        response.status,
        status,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let body = response.json();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["code"], code, "{body}");
}

/// The same for verify, whose refusals also say `"valid": false`.
#[track_caller]
fn assert_refused(response: &TestResponse, status: StatusCode, error: &str, code: &str) {
    assert_error(response, status, error, code);
    assert_eq!(response.json()["valid"], false);
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

async fn post(app: &TestApp, path: &str, key: &str, body: &Value) -> TestResponse {
    app.post_json(path, Some(key), body).await
}

async fn member(app: &TestApp) -> Member {
    app.member_with_key(false).await
}

fn now_call(app: &TestApp) -> Value {
    json!({ "endpoint": "/v1/search", "method": "GET", "status_code": 200,
            "response_time_ms": 12, "ts": app.now_rfc3339() })
}

// ---- POST /api/track (every row of 3.1, in the contract's order) ----

#[tokio::test]
async fn track_without_authorization_is_missing_authorization() {
    let app = TestApp::new().await;
    let body = track_body(&app.now_rfc3339(), None);
    let response = app.post_json("/api/track", None, &body).await;
    assert_error(
        &response,
        StatusCode::UNAUTHORIZED,
        "Missing authorization",
        "MISSING_AUTHORIZATION",
    );
}

#[tokio::test]
async fn track_with_an_unknown_key_is_invalid_key() {
    let app = TestApp::new().await;
    let body = track_body(&app.now_rfc3339(), None);
    let response = post(&app, "/api/track", "tly_notakey", &body).await;
    assert_error(
        &response,
        StatusCode::UNAUTHORIZED,
        "Invalid key",
        "INVALID_KEY",
    );
}

#[tokio::test]
async fn track_over_the_minute_limit_is_rate_limited() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    app.update_plan("FREE", json!({ "rateLimitPerMinute": 1 }))
        .await;
    assert_eq!(app.track_now(&m.key).await.status, StatusCode::OK);
    let response = app.track_now(&m.key).await;
    assert_error(
        &response,
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limited",
        "RATE_LIMITED",
    );
    assert!(response.header("retry-after").is_some());
}

#[tokio::test]
async fn track_with_a_body_that_is_not_json_is_invalid_json() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    let response = app
        .post_raw("/api/track", Some(&m.key), &[], "{\"skill_id\":")
        .await;
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        "Invalid JSON",
        "INVALID_JSON",
    );
}

#[tokio::test]
async fn track_with_a_broken_rule_is_invalid_payload_with_details() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    let body = json!({ "skill_id": "", "tool_name": "Read", "ts": app.now_rfc3339() });
    let response = post(&app, "/api/track", &m.key, &body).await;
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        "Invalid payload",
        "INVALID_PAYLOAD",
    );
    assert!(response.json()["details"]["skill_id"].is_array());
}

#[tokio::test]
async fn track_with_a_wrong_signature_is_invalid_signature() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    let body = track_body(&app.now_rfc3339(), None).to_string();
    let response = app
        .post_raw(
            "/api/track",
            Some(&m.key),
            &[("x-tally-signature", "sha256=00")],
            body,
        )
        .await;
    assert_error(
        &response,
        StatusCode::FORBIDDEN,
        "Invalid signature",
        "INVALID_SIGNATURE",
    );
}

#[tokio::test]
async fn track_past_a_blocking_quota_is_quota_exceeded() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    app.update_plan("FREE", json!({ "monthlyQuota": 1 })).await;
    assert_eq!(app.track_now(&m.key).await.status, StatusCode::OK);
    let response = app.track_now(&m.key).await;
    assert_error(
        &response,
        StatusCode::TOO_MANY_REQUESTS,
        "Quota exceeded",
        "QUOTA_EXCEEDED",
    );
    let body = response.json();
    assert_eq!(
        (body["limit"].as_i64(), body["used"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(body["reset"].is_string() && body["upgrade_url"].is_string());
}

#[tokio::test]
async fn track_with_a_body_over_64_kib_is_payload_too_large() {
    let app = TestApp::new().await;
    let response = app
        .post_raw("/api/track", Some("tly_notakey"), &[], vec![b' '; 70_000])
        .await;
    assert_error(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Payload too large",
        "PAYLOAD_TOO_LARGE",
    );
}

#[tokio::test]
async fn track_while_the_database_is_gone_is_service_unavailable() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    assert_eq!(app.track_now(&m.key).await.status, StatusCode::OK);
    app.state.db.close_by_ref().await.unwrap();
    let response = app.track_now(&m.key).await;
    assert_error(
        &response,
        StatusCode::SERVICE_UNAVAILABLE,
        "Service unavailable",
        "SERVICE_UNAVAILABLE",
    );
    assert!(response.header("retry-after").is_some());
}

// ---- POST /api/install-callback (3.2) ----

#[tokio::test]
async fn install_with_a_body_that_is_not_json_is_invalid_json() {
    let app = TestApp::new().await;
    let response = app
        .post_raw("/api/install-callback", None, &[], "not json")
        .await;
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        "Invalid JSON",
        "INVALID_JSON",
    );
}

#[tokio::test]
async fn install_with_a_broken_rule_is_invalid_payload() {
    let app = TestApp::new().await;
    let body = json!({ "platform": "x".repeat(51) });
    let response = app.post_json("/api/install-callback", None, &body).await;
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        "Invalid payload",
        "INVALID_PAYLOAD",
    );
    assert!(response.json()["details"]["platform"].is_array());
}

#[tokio::test]
async fn installs_over_the_address_limit_are_rate_limited() {
    let app = TestApp::with_config(Config {
        install_rate_limit_per_minute: 1,
        ..Config::default()
    })
    .await;
    let first = app
        .post_json("/api/install-callback", None, &json!({}))
        .await;
    assert_eq!(first.json(), json!({ "recorded": true }));
    let response = app
        .post_json("/api/install-callback", None, &json!({}))
        .await;
    assert_error(
        &response,
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limited",
        "RATE_LIMITED",
    );
}

// ---- POST /api/v1/verify (3.3): every decision ----

#[tokio::test]
async fn an_allowed_verify_is_valid() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    let response = post(
        &app,
        "/api/v1/verify",
        &m.key,
        &json!({ "event_id": "v-1" }),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json()["valid"], true);
    assert_eq!(response.json()["code"], "VALID");
    // A retry answers the original decision, code included.
    let retry = post(
        &app,
        "/api/v1/verify",
        &m.key,
        &json!({ "event_id": "v-1" }),
    )
    .await;
    assert_eq!(
        (retry.status, retry.json()["code"].clone()),
        (StatusCode::OK, json!("VALID"))
    );
}

#[tokio::test]
async fn verify_without_authorization_is_missing_authorization() {
    let app = TestApp::new().await;
    let response = app.post_json("/api/v1/verify", None, &json!({})).await;
    assert_refused(
        &response,
        StatusCode::UNAUTHORIZED,
        "Missing authorization",
        "MISSING_AUTHORIZATION",
    );
}

#[tokio::test]
async fn verify_with_a_revoked_key_is_invalid_key() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    app.graphql_ok(
        Some(&m.token),
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        json!({ "id": m.key_id }),
    )
    .await;
    let response = post(&app, "/api/v1/verify", &m.key, &json!({})).await;
    assert_refused(
        &response,
        StatusCode::UNAUTHORIZED,
        "Invalid key",
        "INVALID_KEY",
    );
}

#[tokio::test]
async fn verify_over_the_minute_limit_is_rate_limited() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    app.update_plan("FREE", json!({ "rateLimitPerMinute": 1 }))
        .await;
    assert_eq!(
        post(&app, "/api/v1/verify", &m.key, &json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let response = post(&app, "/api/v1/verify", &m.key, &json!({})).await;
    assert_refused(
        &response,
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limited",
        "RATE_LIMITED",
    );
}

#[tokio::test]
async fn verify_past_a_blocking_quota_is_usage_exceeded() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    app.update_plan("FREE", json!({ "monthlyQuota": 1 })).await;
    assert_eq!(
        post(&app, "/api/v1/verify", &m.key, &json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let response = post(&app, "/api/v1/verify", &m.key, &json!({})).await;
    assert_refused(
        &response,
        StatusCode::TOO_MANY_REQUESTS,
        "Quota exceeded",
        "USAGE_EXCEEDED",
    );
    assert_eq!(response.json()["limit"], 1);
}

#[tokio::test]
async fn verify_reusing_an_event_id_is_event_id_reused() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    let first = json!({ "event_id": "v-1", "endpoint": "/a", "method": "GET" });
    assert_eq!(
        post(&app, "/api/v1/verify", &m.key, &first).await.status,
        StatusCode::OK
    );
    let other = json!({ "event_id": "v-1", "endpoint": "/b", "method": "GET" });
    let response = post(&app, "/api/v1/verify", &m.key, &other).await;
    assert_refused(
        &response,
        StatusCode::CONFLICT,
        "Event id reused",
        "EVENT_ID_REUSED",
    );
}

#[tokio::test]
async fn verify_with_bad_bodies_is_invalid_json_or_invalid_payload() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    let not_json = app.post_raw("/api/v1/verify", Some(&m.key), &[], "{").await;
    assert_refused(
        &not_json,
        StatusCode::BAD_REQUEST,
        "Invalid JSON",
        "INVALID_JSON",
    );
    let zero_cost = post(&app, "/api/v1/verify", &m.key, &json!({ "cost": 0 })).await;
    assert_refused(
        &zero_cost,
        StatusCode::BAD_REQUEST,
        "Invalid payload",
        "INVALID_PAYLOAD",
    );
    assert!(zero_cost.json()["details"]["cost"].is_array());
}

#[tokio::test]
async fn verify_with_a_key_that_requires_signatures_and_none_is_invalid_signature() {
    let app = TestApp::new().await;
    let m = app.member_with_key(true).await;
    let response = post(&app, "/api/v1/verify", &m.key, &json!({})).await;
    assert_refused(
        &response,
        StatusCode::FORBIDDEN,
        "Invalid signature",
        "INVALID_SIGNATURE",
    );
}

#[tokio::test]
async fn verify_while_the_database_is_gone_is_service_unavailable() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    assert_eq!(
        post(&app, "/api/v1/verify", &m.key, &json!({}))
            .await
            .status,
        StatusCode::OK
    );
    app.state.db.close_by_ref().await.unwrap();
    let response = post(&app, "/api/v1/verify", &m.key, &json!({})).await;
    assert_refused(
        &response,
        StatusCode::SERVICE_UNAVAILABLE,
        "Service unavailable",
        "SERVICE_UNAVAILABLE",
    );
    assert!(response.header("retry-after").is_some());
}

// ---- POST /api/v1/events (3.4) ----

#[tokio::test]
async fn a_batch_without_authorization_is_missing_authorization() {
    let app = TestApp::new().await;
    let body = json!({ "events": [now_call(&app)] });
    let response = app.post_json("/api/v1/events", None, &body).await;
    assert_error(
        &response,
        StatusCode::UNAUTHORIZED,
        "Missing authorization",
        "MISSING_AUTHORIZATION",
    );
}

#[tokio::test]
async fn a_batch_over_the_minute_limit_is_rate_limited() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    app.update_plan("FREE", json!({ "rateLimitPerMinute": 1 }))
        .await;
    let body = json!({ "events": [now_call(&app)] });
    assert_eq!(
        post(&app, "/api/v1/events", &m.key, &body).await.status,
        StatusCode::OK
    );
    let response = post(&app, "/api/v1/events", &m.key, &body).await;
    assert_error(
        &response,
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limited",
        "RATE_LIMITED",
    );
}

#[tokio::test]
async fn a_batch_with_a_wrong_signature_is_invalid_signature() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    let body = json!({ "events": [now_call(&app)] }).to_string();
    let wrong = format!("sha256={}", hmac_hex(b"not the key", &[body.as_bytes()]));
    let response = app
        .post_raw(
            "/api/v1/events",
            Some(&m.key),
            &[("x-tally-signature", wrong.as_str())],
            body,
        )
        .await;
    assert_error(
        &response,
        StatusCode::FORBIDDEN,
        "Invalid signature",
        "INVALID_SIGNATURE",
    );
}

#[tokio::test]
async fn a_batch_with_an_invalid_event_is_invalid_payload_by_index() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    let mut bad = now_call(&app);
    bad["status_code"] = json!("200");
    let body = json!({ "events": [now_call(&app), bad] });
    let response = post(&app, "/api/v1/events", &m.key, &body).await;
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        "Invalid payload",
        "INVALID_PAYLOAD",
    );
    assert!(response.json()["details"]["events[1].status_code"].is_array());
}

#[tokio::test]
async fn a_batch_past_a_blocking_quota_is_quota_exceeded() {
    let app = TestApp::new().await;
    let m = member(&app).await;
    app.update_plan("FREE", json!({ "monthlyQuota": 1 })).await;
    let body = json!({ "events": [now_call(&app), now_call(&app)] });
    let response = post(&app, "/api/v1/events", &m.key, &body).await;
    assert_error(
        &response,
        StatusCode::TOO_MANY_REQUESTS,
        "Quota exceeded",
        "QUOTA_EXCEEDED",
    );
}

#[tokio::test]
async fn a_batch_over_1_mib_is_payload_too_large() {
    let app = TestApp::new().await;
    let response = app
        .post_raw("/api/v1/events", None, &[], vec![b' '; 1024 * 1024 + 1])
        .await;
    assert_error(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Payload too large",
        "PAYLOAD_TOO_LARGE",
    );
}

#[tokio::test]
async fn a_batch_with_a_malformed_key_is_invalid_key() {
    let app = TestApp::new().await;
    let body = json!({ "events": [now_call(&app)] });
    let response = post(&app, "/api/v1/events", "not-a-key", &body).await;
    assert_error(
        &response,
        StatusCode::UNAUTHORIZED,
        "Invalid key",
        "INVALID_KEY",
    );
}

// ---- POST /api/webhooks/billing (3.5) ----

const WEBHOOK_SECRET: &str = "whsec_codes";

async fn webhook_app() -> TestApp {
    TestApp::with_config(Config {
        billing_webhook_secret: Some(WEBHOOK_SECRET.to_owned()),
        ..Config::default()
    })
    .await
}

async fn deliver(app: &TestApp, signature: &str, body: &str) -> TestResponse {
    let headers = [
        ("content-type", "application/json"),
        ("stripe-signature", signature),
    ];
    app.post_raw("/api/webhooks/billing", None, &headers, body.to_owned())
        .await
}

fn signed(app: &TestApp, body: &str) -> String {
    let t = app.clock.now().timestamp().to_string();
    let v1 = hmac_hex(
        WEBHOOK_SECRET.as_bytes(),
        &[t.as_bytes(), b".", body.as_bytes()],
    );
    format!("t={t},v1={v1}")
}

#[tokio::test]
async fn a_webhook_with_a_bad_signature_is_invalid_signature() {
    let app = webhook_app().await;
    let body = r#"{"id":"evt_1","type":"ping","created":1,"data":{"object":{}}}"#;
    let response = deliver(&app, "t=1,v1=00", body).await;
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        "Invalid signature",
        "INVALID_SIGNATURE",
    );
}

#[tokio::test]
async fn a_signed_webhook_that_is_not_json_or_not_an_event_is_refused_with_its_code() {
    let app = webhook_app().await;
    let not_json = deliver(&app, &signed(&app, "{"), "{").await;
    assert_error(
        &not_json,
        StatusCode::BAD_REQUEST,
        "Invalid JSON",
        "INVALID_JSON",
    );
    let no_id = deliver(&app, &signed(&app, "{}"), "{}").await;
    assert_error(
        &no_id,
        StatusCode::BAD_REQUEST,
        "Invalid payload",
        "INVALID_PAYLOAD",
    );
}

#[tokio::test]
async fn a_webhook_over_64_kib_is_payload_too_large() {
    let app = webhook_app().await;
    let body = " ".repeat(70_000);
    let response = deliver(&app, "t=1,v1=00", &body).await;
    assert_error(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Payload too large",
        "PAYLOAD_TOO_LARGE",
    );
}

#[tokio::test]
async fn a_webhook_without_a_configured_secret_is_webhook_not_configured() {
    let app = TestApp::new().await;
    let response = deliver(&app, "t=1,v1=00", "{}").await;
    assert_error(
        &response,
        StatusCode::SERVICE_UNAVAILABLE,
        "Billing webhook not configured",
        "WEBHOOK_NOT_CONFIGURED",
    );
}

// ---- Every route: the errors no handler writes, and readiness (3, 3.7) ----

#[tokio::test]
async fn an_unknown_path_is_not_found() {
    let app = TestApp::new().await;
    let response = app.get("/api/nothing-here").await;
    assert_error(&response, StatusCode::NOT_FOUND, "Not found", "NOT_FOUND");
}

#[tokio::test]
async fn a_wrong_method_is_method_not_allowed() {
    let app = TestApp::new().await;
    let response = app.get("/api/track").await;
    assert_error(
        &response,
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "METHOD_NOT_ALLOWED",
    );
}

#[tokio::test]
async fn a_method_no_route_has_is_method_not_implemented() {
    let app = TestApp::new().await;
    let request = Request::builder()
        .method(axum::http::Method::from_bytes(b"BREW").unwrap())
        .uri("/api/track")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.request(request).await;
    assert_error(
        &response,
        StatusCode::NOT_IMPLEMENTED,
        "Method not implemented",
        "METHOD_NOT_IMPLEMENTED",
    );
}

#[tokio::test]
async fn a_request_over_the_timeout_is_request_timeout() {
    let app = TestApp::with_config(Config {
        request_timeout: std::time::Duration::from_millis(300),
        body_read_timeout: std::time::Duration::from_secs(30),
        ..Config::default()
    })
    .await;
    let request = Request::post("/api/install-callback")
        .body(common::stalled_body("{\"skill"))
        .unwrap();
    let response = app.request(request).await;
    assert_error(
        &response,
        StatusCode::REQUEST_TIMEOUT,
        "Request timeout",
        "REQUEST_TIMEOUT",
    );
}

#[tokio::test]
async fn a_body_that_never_finishes_is_request_timeout() {
    let app = TestApp::with_config(Config {
        body_read_timeout: std::time::Duration::from_millis(200),
        ..Config::default()
    })
    .await;
    let response = app
        .post_stalled("/api/install-callback", 100, "{\"skill")
        .await;
    assert_error(
        &response,
        StatusCode::REQUEST_TIMEOUT,
        "Request body timeout",
        "REQUEST_TIMEOUT",
    );
}

#[tokio::test]
async fn graphql_bodies_over_the_limit_are_payload_too_large() {
    let app = TestApp::new().await;
    let response = app
        .post_raw(
            "/graphql",
            None,
            &[("content-type", "application/json")],
            vec![b' '; 300 * 1024],
        )
        .await;
    assert_error(
        &response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Payload too large",
        "PAYLOAD_TOO_LARGE",
    );
}

#[tokio::test]
async fn ready_without_a_database_is_service_unavailable() {
    let app = TestApp::new().await;
    app.state.db.close_by_ref().await.unwrap();
    let response = app.get("/ready").await;
    assert_error(
        &response,
        StatusCode::SERVICE_UNAVAILABLE,
        "Database unreachable",
        "SERVICE_UNAVAILABLE",
    );
    assert_eq!(response.json()["status"], "unavailable");
}
