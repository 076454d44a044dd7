//! `POST /api/v1/verify` and `POST /api/v1/events`: what gateways and backends see.

use crate::common;

use axum::http::StatusCode;
use chrono::Duration;
use common::ingest::rfc3339;
use common::tables;
use common::TestApp;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use tally::clock::Clock;
use tally::domain::histogram::{bucket_of, Counts};
use tally::entity::usage_daily_endpoint;

fn call(app: &TestApp, id: Option<&str>, status: u16, ms: u64) -> Value {
    let mut event = json!({
        "endpoint": "/v1/things",
        "method": "get",
        "status_code": status,
        "response_time_ms": ms,
        "ts": rfc3339(app.clock.now()),
    });
    if let Some(id) = id {
        event["event_id"] = json!(id);
    }
    event
}

async fn verify(app: &TestApp, key: &str, body: Value) -> common::TestResponse {
    app.post_json("/api/v1/verify", Some(key), &body).await
}

async fn events(app: &TestApp, key: &str, events: Vec<Value>) -> common::TestResponse {
    app.post_json("/api/v1/events", Some(key), &json!({ "events": events }))
        .await
}

#[tokio::test]
async fn every_field_of_a_call_is_stored_in_its_own_column() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    // The event happened after the account was opened and before it is reported.
    app.clock.advance(Duration::minutes(10));
    let at = app.clock.now() - Duration::minutes(2);
    let finished = json!({
        "event_id": "finished-1",
        "endpoint": "/v1/columns",
        "method": "POST",
        "status_code": 201,
        "response_time_ms": 42,
        "ts": rfc3339(at),
    });
    assert_eq!(
        events(&app, &m.key, vec![finished]).await.status,
        StatusCode::OK
    );
    let verified =
        json!({ "event_id": "verified-1", "endpoint": "/v1/costly", "method": "PUT", "cost": 3 });
    assert_eq!(verify(&app, &m.key, verified).await.status, StatusCode::OK);

    let stored = tables::all_events(&app.state.db).await;
    assert_eq!(stored.len(), 2);
    let (finished, verified) = (&stored[0], &stored[1]);
    for event in [finished, verified] {
        assert_eq!(event.account_id.as_deref(), Some(m.account_id.as_str()));
        assert_eq!(event.api_key_id.as_deref(), Some(m.key_id.as_str()));
        assert_eq!(event.kind, "API_CALL");
        assert_eq!(
            (event.skill_id.as_deref(), event.tool_name.as_deref()),
            (None, None)
        );
        assert_eq!(event.hook_event, None);
        assert_eq!(
            (
                event.input_snippet.as_deref(),
                event.output_snippet.as_deref()
            ),
            (None, None)
        );
        assert!(!event.expired_key);
        assert_eq!(event.received_at, app.clock.now().timestamp_millis());
    }
    assert_eq!(finished.event_id.as_deref(), Some("finished-1"));
    assert_eq!(finished.endpoint.as_deref(), Some("/v1/columns"));
    assert_eq!(finished.method.as_deref(), Some("POST"));
    assert_eq!(finished.status_code, Some(201));
    assert_eq!(finished.response_time_ms, Some(42));
    assert_eq!(finished.metadata, None);
    assert_eq!(finished.cost, 1);
    assert_eq!(finished.occurred_at, at.timestamp_millis());

    assert_eq!(verified.event_id.as_deref(), Some("verified-1"));
    assert_eq!(verified.endpoint.as_deref(), Some("/v1/costly"));
    assert_eq!(verified.method.as_deref(), Some("PUT"));
    assert_eq!(
        (verified.status_code, verified.response_time_ms),
        (None, None)
    );
    let metadata: Value = serde_json::from_str(
        verified
            .metadata
            .as_deref()
            .expect("a verified call's metadata"),
    )
    .expect("metadata is JSON");
    assert_eq!(metadata["endpoint"], "/v1/costly");
    assert_eq!(metadata["method"], "PUT");
    assert_eq!(verified.cost, 3);
    assert_eq!(verified.occurred_at, app.clock.now().timestamp_millis());
}

#[tokio::test]
async fn an_allowed_verify_answers_the_quota_state_and_counts_the_call() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let response = app
        .post_raw("/api/v1/verify", Some(&m.key), &[], Vec::new())
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.json(),
        json!({
            "valid": true,
            "code": "VALID",
            "account_id": m.account_id,
            "key_id": m.key_id,
            "plan": "FREE",
            "limit": 1000,
            "used": 1,
            "remaining": 999,
            "reset": "2026-12-01T00:00:00Z",
            "overage": false,
        })
    );
    assert_eq!(response.header("x-ratelimit-remaining"), Some("999"));
    let costly = verify(
        &app,
        &m.key,
        json!({ "endpoint": "/v1/search", "method": "POST", "cost": 5 }),
    )
    .await;
    assert_eq!(costly.json()["used"], 6);
    assert_eq!(app.counted_calls(&m.account_id).await, 6);
    assert_eq!(app.stored_events(&m.account_id).await, 2);
}

#[tokio::test]
async fn verify_refusals_say_valid_false() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let missing = app.post_json("/api/v1/verify", None, &json!({})).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.json(),
        json!({ "valid": false, "error": "Missing authorization", "code": "MISSING_AUTHORIZATION" })
    );
    let invalid = app
        .post_json("/api/v1/verify", Some("tly_nope"), &json!({}))
        .await;
    assert_eq!(invalid.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        invalid.json(),
        json!({ "valid": false, "error": "Invalid key", "code": "INVALID_KEY" })
    );
    for cost in [json!(0), json!(1001), json!("3"), json!(1.5)] {
        let bad = verify(&app, &m.key, json!({ "cost": cost })).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{cost}");
        assert!(bad.json()["details"]["cost"].is_array());
    }
    let not_json = app.post_raw("/api/v1/verify", Some(&m.key), &[], "{").await;
    assert_eq!(not_json.json()["error"], "Invalid JSON");
    assert_eq!(app.counted_calls(&m.account_id).await, 0);

    app.update_plan("FREE", json!({ "monthlyQuota": 3 })).await;
    let too_costly = verify(&app, &m.key, json!({ "cost": 4 })).await;
    assert_eq!(too_costly.status, StatusCode::TOO_MANY_REQUESTS);
    let body = too_costly.json();
    assert_eq!(body["valid"], false);
    assert_eq!(body["error"], "Quota exceeded");
    assert_eq!(body["limit"], 3);
    assert_eq!(body["used"], 0);
    assert!(too_costly.header("retry-after").is_some());
    assert_eq!(app.counted_calls(&m.account_id).await, 0);
}

#[tokio::test]
async fn verify_is_rate_limited_per_key() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    app.update_plan("FREE", json!({ "rateLimitPerMinute": 5 }))
        .await;
    for _ in 0..5 {
        let ok = verify(&app, &m.key, json!({})).await;
        assert_eq!(ok.status, StatusCode::OK);
    }
    let limited = verify(&app, &m.key, json!({})).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited.json(),
        json!({ "valid": false, "error": "Rate limited", "code": "RATE_LIMITED" })
    );
    // One request comes back every 12 s at 5 a minute.
    assert_eq!(limited.header("retry-after"), Some("12"));
    assert_eq!(
        limited.header("ratelimit-policy"),
        Some("\"minute\";q=5;w=60, \"monthly\";q=1000;w=2592000")
    );
    assert_eq!(app.counted_calls(&m.account_id).await, 5);
}

#[tokio::test]
async fn a_hundred_concurrent_verifies_with_one_call_left_allow_exactly_one() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    app.update_plan(
        "FREE",
        json!({ "monthlyQuota": 5, "rateLimitPerMinute": 1000 }),
    )
    .await;
    for _ in 0..4 {
        let ok = verify(&app, &m.key, json!({})).await;
        assert_eq!(ok.status, StatusCode::OK);
    }
    let responses =
        futures::future::join_all((0..100).map(|_| verify(&app, &m.key, json!({})))).await;
    let allowed = responses
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let exceeded = responses
        .iter()
        .filter(|r| {
            r.status == StatusCode::TOO_MANY_REQUESTS && r.json()["error"] == "Quota exceeded"
        })
        .count();
    assert_eq!((allowed, exceeded), (1, 99));
    assert_eq!(app.counted_calls(&m.account_id).await, 5);
    assert_eq!(app.stored_events(&m.account_id).await, 5);
}

/// What another instance on the same database would do: calls committed behind this instance's
/// in-memory gate. The database's count decides, and the gate takes it up.
#[tokio::test]
async fn calls_committed_behind_the_gate_count_against_the_quota() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    app.update_plan("FREE", json!({ "monthlyQuota": 5 })).await;
    assert_eq!(verify(&app, &m.key, json!({})).await.status, StatusCode::OK);
    app.state
        .db
        .execute_unprepared(&format!(
            "UPDATE usage_periods SET calls = 5 WHERE account_id = '{}'",
            m.account_id
        ))
        .await
        .unwrap();

    // The gate still counts 1 and lets it through; the recorder refuses it under the row lock.
    let refused = verify(&app, &m.key, json!({})).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.json()["error"], "Quota exceeded");
    assert_eq!(app.counted_calls(&m.account_id).await, 5);
    assert_eq!(app.stored_events(&m.account_id).await, 1);

    // Now the gate refuses it too, and tells the database's count.
    let again = verify(&app, &m.key, json!({})).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(again.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(app.stored_events(&m.account_id).await, 1);
}

#[tokio::test]
async fn unlimited_and_overage_plans_answer_accordingly() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    app.set_plan(&m.account_id, "ENTERPRISE").await;
    let unlimited = verify(&app, &m.key, json!({})).await;
    let body = unlimited.json();
    assert_eq!(body["plan"], "ENTERPRISE");
    assert_eq!(body["limit"], Value::Null);
    assert_eq!(body["remaining"], Value::Null);
    assert_eq!(body["used"], 1);
    assert!(unlimited.header("x-ratelimit-limit").is_none());

    app.set_plan(&m.account_id, "PRO").await;
    app.update_plan("PRO", json!({ "monthlyQuota": 1 })).await;
    let past = verify(&app, &m.key, json!({})).await;
    assert_eq!(past.status, StatusCode::OK);
    let body = past.json();
    assert_eq!(body["used"], 2);
    assert_eq!(body["remaining"], 0);
    assert_eq!(body["overage"], true);
}

#[tokio::test]
async fn a_batch_is_stored_counted_and_rolled_up() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let batch = vec![
        call(&app, Some("a"), 200, 10),
        call(&app, Some("b"), 302, 30),
        call(&app, None, 503, 200),
    ];
    let response = events(&app, &m.key, batch.clone()).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.json(),
        json!({ "accepted": 3, "completed": 0, "duplicates": 0 })
    );
    assert!(response.header("ratelimit").is_some());
    assert_eq!(app.counted_calls(&m.account_id).await, 3);
    let rollups = app.endpoint_rollups(&m.account_id).await;
    let rollup = rollups
        .iter()
        .find(|row| row.method == "GET" && row.endpoint == "/v1/things")
        .expect("a rollup row");
    assert_eq!(rollup.calls, 3);
    assert_eq!(rollup.successes, 2);
    assert_eq!(rollup.failures, 1);
    assert_eq!(rollup.latency_sum_ms, 240);
    assert_eq!(
        app.stored_histogram(&m.account_id, "/v1/things").await,
        Counts::from([(bucket_of(10), 1), (bucket_of(30), 1), (bucket_of(200), 1)])
    );

    // The same batch again: the two events with ids are duplicates, the third is new.
    let again = events(&app, &m.key, batch).await;
    assert_eq!(
        again.json(),
        json!({ "accepted": 1, "completed": 0, "duplicates": 2 })
    );
    assert_eq!(app.counted_calls(&m.account_id).await, 4);
    // A repeated id inside one batch counts once.
    let twice = events(
        &app,
        &m.key,
        vec![call(&app, Some("c"), 200, 1), call(&app, Some("c"), 200, 1)],
    )
    .await;
    assert_eq!(
        twice.json(),
        json!({ "accepted": 1, "completed": 0, "duplicates": 1 })
    );
    assert_eq!(app.counted_calls(&m.account_id).await, 5);
    // Later batches add to the stored histogram bucket by bucket.
    assert_eq!(
        app.stored_histogram(&m.account_id, "/v1/things").await,
        Counts::from([
            (bucket_of(1), 1),
            (bucket_of(10), 1),
            (bucket_of(30), 1),
            (bucket_of(200), 2)
        ])
    );
}

#[tokio::test]
async fn an_invalid_event_refuses_the_whole_batch_with_indexed_details() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let mut broken = call(&app, None, 200, 5);
    broken["status_code"] = json!("200");
    let mut no_method = call(&app, None, 200, 5);
    no_method.as_object_mut().unwrap().remove("method");
    let response = events(
        &app,
        &m.key,
        vec![call(&app, None, 200, 5), broken, no_method, json!("x")],
    )
    .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    let body = response.json();
    assert_eq!(body["error"], "Invalid payload");
    let details = body["details"].as_object().unwrap();
    assert!(details.contains_key("events[1].status_code"), "{body}");
    assert_eq!(details["events[2].method"], json!(["is required"]));
    assert!(details.contains_key("events[3]"));
    assert_eq!(details.len(), 3);
    assert_eq!(app.stored_events(&m.account_id).await, 0);

    let empty = events(&app, &m.key, vec![]).await;
    assert!(empty.json()["details"]["events"].is_array());
    let too_many = events(&app, &m.key, vec![call(&app, None, 200, 1); 1001]).await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
    let not_a_list = app
        .post_json("/api/v1/events", Some(&m.key), &json!({ "events": {} }))
        .await;
    assert_eq!(not_a_list.status, StatusCode::BAD_REQUEST);
    let huge = app
        .post_raw(
            "/api/v1/events",
            Some(&m.key),
            &[],
            vec![b' '; 1024 * 1024 + 1],
        )
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        huge.json(),
        json!({ "error": "Payload too large", "code": "PAYLOAD_TOO_LARGE" })
    );
    assert_eq!(app.stored_events(&m.account_id).await, 0);
}

#[tokio::test]
async fn a_batch_past_a_blocking_quota_is_refused_whole() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    app.update_plan("FREE", json!({ "monthlyQuota": 3 })).await;
    let four = (0..4).map(|_| call(&app, None, 200, 1)).collect();
    let response = events(&app, &m.key, four).await;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.json()["error"], "Quota exceeded");
    assert_eq!(app.stored_events(&m.account_id).await, 0);
    let three = (0..3).map(|_| call(&app, None, 200, 1)).collect();
    assert_eq!(events(&app, &m.key, three).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_verified_call_reported_later_is_completed_not_counted_again() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    app.update_plan("FREE", json!({ "monthlyQuota": 1 })).await;
    let verified = verify(
        &app,
        &m.key,
        json!({ "event_id": "call-1", "endpoint": "/v1/things", "method": "GET" }),
    )
    .await;
    assert_eq!(verified.status, StatusCode::OK);
    // The quota is used up, yet the report of the verified call goes through.
    let reported = events(&app, &m.key, vec![call(&app, Some("call-1"), 404, 42)]).await;
    assert_eq!(reported.status, StatusCode::OK);
    assert_eq!(
        reported.json(),
        json!({ "accepted": 0, "completed": 1, "duplicates": 0 })
    );
    assert_eq!(app.counted_calls(&m.account_id).await, 1);
    assert_eq!(app.stored_events(&m.account_id).await, 1);
    let status = tables::stored_status_codes(&app.state.db, &m.account_id).await;
    assert_eq!(status, [Some(404)]);
    let rollups = app.endpoint_rollups(&m.account_id).await;
    let sum =
        |column: fn(&usage_daily_endpoint::Model) -> i64| rollups.iter().map(column).sum::<i64>();
    assert_eq!(sum(|row| row.calls), 1);
    assert_eq!(sum(|row| row.failures), 1);
    assert_eq!(sum(|row| row.latency_sum_ms), 42);
    assert_eq!(
        app.stored_histogram(&m.account_id, "/v1/things").await,
        Counts::from([(bucket_of(42), 1)])
    );
    // Reported twice: the second is a duplicate.
    let again = events(&app, &m.key, vec![call(&app, Some("call-1"), 404, 42)]).await;
    assert_eq!(
        again.json(),
        json!({ "accepted": 0, "completed": 0, "duplicates": 1 })
    );
    // A retry of the verify (same call, within 10 minutes) is allowed without counting, even
    // after its call was completed.
    let repeat = verify(
        &app,
        &m.key,
        json!({ "event_id": "call-1", "endpoint": "/v1/things", "method": "GET" }),
    )
    .await;
    assert_eq!(repeat.status, StatusCode::OK);
    assert_eq!(app.counted_calls(&m.account_id).await, 1);
}

#[tokio::test]
async fn a_reported_call_moves_to_its_real_endpoint() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    verify(&app, &m.key, json!({ "event_id": "x" })).await;
    events(&app, &m.key, vec![call(&app, Some("x"), 200, 7)]).await;
    let rollups = app.endpoint_rollups(&m.account_id).await;
    let calls_to = |endpoint: &str| {
        rollups
            .iter()
            .find(|row| row.endpoint == endpoint)
            .expect("a rollup row")
            .calls
    };
    assert_eq!(calls_to("/v1/things"), 1);
    assert_eq!(calls_to(""), 0);
}

#[tokio::test]
async fn while_the_database_is_gone_verify_and_events_answer_503() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    assert_eq!(verify(&app, &m.key, json!({})).await.status, StatusCode::OK);
    app.state.db.close_by_ref().await.unwrap();
    let refused = verify(&app, &m.key, json!({})).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.json()["valid"], false);
    assert!(refused.header("retry-after").is_some());
    let batch = events(&app, &m.key, vec![call(&app, None, 200, 1)]).await;
    assert_eq!(batch.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(batch.header("retry-after").is_some());
}

#[tokio::test]
async fn a_batch_answer_says_what_was_new_completed_and_repeated() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let verified = verify(&app, &m.key, json!({ "event_id": "v-1" })).await;
    assert_eq!(verified.status, StatusCode::OK);
    let batch = vec![
        call(&app, Some("v-1"), 200, 10),
        call(&app, Some("n-1"), 200, 10),
        call(&app, Some("n-1"), 200, 10),
        call(&app, None, 500, 10),
    ];
    let first = events(&app, &m.key, batch.clone()).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.json(),
        json!({ "accepted": 2, "completed": 1, "duplicates": 1 })
    );
    // `accepted` is exactly what was newly counted: 1 verified + 2 new.
    assert_eq!(app.counted_calls(&m.account_id).await, 3);
    let again = events(&app, &m.key, batch).await;
    assert_eq!(
        again.json(),
        json!({ "accepted": 1, "completed": 0, "duplicates": 3 })
    );
    assert_eq!(app.counted_calls(&m.account_id).await, 4);
}

#[tokio::test]
async fn finished_calls_dated_before_their_account_refuse_the_batch() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let mut early = call(&app, Some("early"), 200, 5);
    early["ts"] = json!(rfc3339(app.clock.now() - Duration::minutes(1)));
    let response = events(&app, &m.key, vec![call(&app, Some("ok"), 200, 5), early]).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json(),
        json!({
            "error": "Invalid payload", "code": "INVALID_PAYLOAD",
            "details": { "events[1].ts": ["must not be before the account was created"] }
        })
    );
    assert_eq!(app.stored_events(&m.account_id).await, 0);
    assert_eq!(app.counted_calls(&m.account_id).await, 0);
}

#[tokio::test]
async fn a_verify_retry_within_ten_minutes_gets_the_original_answer_and_counts_nothing() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let request =
        json!({ "event_id": "r-1", "endpoint": "/v1/search", "method": "post", "cost": 3 });
    let original = verify(&app, &m.key, request.clone()).await;
    assert_eq!(original.status, StatusCode::OK);
    let mut expected = original.json();
    assert_eq!(expected["used"], 3);
    // Another call meanwhile: the retry reports the counts as they are now.
    verify(&app, &m.key, json!({})).await;
    expected["used"] = json!(4);
    expected["remaining"] = json!(996);
    app.clock.advance(Duration::minutes(10));
    // The method is compared as stored (upper case), so "POST" asks the same.
    let mut same = request.clone();
    same["method"] = json!("POST");
    let retry = verify(&app, &m.key, same).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.json(), expected);
    assert_eq!(retry.header("x-ratelimit-remaining"), Some("996"));
    assert_eq!(app.counted_calls(&m.account_id).await, 4);
    assert_eq!(app.stored_events(&m.account_id).await, 2);

    // On a blocking plan with nothing left, the retry is still the original decision.
    app.update_plan("FREE", json!({ "monthlyQuota": 4 })).await;
    let full = verify(&app, &m.key, request.clone()).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.json()["remaining"], 0);
    assert_eq!(
        verify(&app, &m.key, json!({})).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(app.counted_calls(&m.account_id).await, 4);
}

#[tokio::test]
async fn a_reused_event_id_that_is_not_a_verify_retry_is_409_and_counts_nothing() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let asked = json!({ "event_id": "v-1", "endpoint": "/v1/search", "method": "GET" });
    assert_eq!(
        verify(&app, &m.key, asked.clone()).await.status,
        StatusCode::OK
    );
    let tracked = common::ingest::track_body(&app.now_rfc3339(), Some("t-1"));
    assert_eq!(app.track(&m.key, &tracked).await.status, StatusCode::OK);
    let reported = events(&app, &m.key, vec![call(&app, Some("e-1"), 200, 5)]).await;
    assert_eq!(reported.status, StatusCode::OK);
    let counted = app.counted_calls(&m.account_id).await;
    assert_eq!(counted, 3);

    let mut other_endpoint = asked.clone();
    other_endpoint["endpoint"] = json!("/v1/other");
    let mut other_cost = asked.clone();
    other_cost["cost"] = json!(2);
    let mut no_method = asked.clone();
    no_method.as_object_mut().unwrap().remove("method");
    let reused = [
        other_endpoint,
        other_cost,
        no_method,
        json!({ "event_id": "t-1" }),
        json!({ "event_id": "e-1", "endpoint": "/v1/things", "method": "GET" }),
    ];
    for body in reused {
        let response = verify(&app, &m.key, body.clone()).await;
        assert_eq!(response.status, StatusCode::CONFLICT, "{body}");
        assert_eq!(
            response.json(),
            json!({ "valid": false, "error": "Event id reused", "code": "EVENT_ID_REUSED" })
        );
        // Past authentication: the rate-limit headers come with it, and show nothing counted.
        assert_eq!(response.header("x-ratelimit-remaining"), Some("997"));
        assert!(response.header("ratelimit").is_some());
        assert!(response.header("retry-after").is_none());
    }
    // Too late for a retry.
    app.clock
        .advance(Duration::minutes(10) + Duration::seconds(1));
    let late = verify(&app, &m.key, asked).await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert_eq!(app.counted_calls(&m.account_id).await, counted);
    assert_eq!(app.stored_events(&m.account_id).await, 3);
}

#[tokio::test]
async fn a_rate_limited_answer_names_one_wait_in_both_headers() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    app.update_plan("FREE", json!({ "rateLimitPerMinute": 5 }))
        .await;
    for _ in 0..5 {
        assert_eq!(verify(&app, &m.key, json!({})).await.status, StatusCode::OK);
    }
    app.clock.advance(Duration::milliseconds(1500));
    for route in ["/api/v1/verify", "/api/track", "/api/v1/events"] {
        let body = match route {
            "/api/track" => common::ingest::track_body(&app.now_rfc3339(), None),
            "/api/v1/events" => json!({ "events": [call(&app, None, 200, 1)] }),
            _ => json!({}),
        };
        let limited = app.post_json(route, Some(&m.key), &body).await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{route}");
        // One request comes back every 12 s; 1.5 s have passed since the last one.
        assert_eq!(limited.header("retry-after"), Some("11"), "{route}");
        let ratelimit = limited.header("ratelimit").unwrap();
        assert!(
            ratelimit.starts_with("\"minute\";r=0;t=11,"),
            "{route}: {ratelimit}"
        );
    }
    // Waiting exactly that long is enough.
    app.clock.advance(Duration::seconds(11));
    assert_eq!(verify(&app, &m.key, json!({})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn nul_characters_are_refused_by_verify_and_events_alike() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let response = verify(&app, &m.key, json!({ "endpoint": "/a\u{0}" })).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json(),
        json!({
            "valid": false,
            "error": "Invalid payload", "code": "INVALID_PAYLOAD",
            "details": { "endpoint": ["must not contain NUL characters"] }
        })
    );
    let mut bad = call(&app, Some("id\u{0}"), 200, 1);
    bad["method"] = json!("GET\u{0}");
    let batch = events(&app, &m.key, vec![call(&app, Some("fine"), 200, 1), bad]).await;
    assert_eq!(batch.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        batch.json()["details"],
        json!({
            "events[1].event_id": ["must not contain NUL characters"],
            "events[1].method": ["must not contain NUL characters"],
        })
    );
    assert!(batch.header("retry-after").is_none());
    assert_eq!(app.stored_events(&m.account_id).await, 0);
    assert_eq!(app.counted_calls(&m.account_id).await, 0);
}
