//! Per-key usage on `ApiKey`: calls this billing period and per day, for the keys page.

use crate::common;

use chrono::{TimeZone, Utc};
use common::ingest::{rfc3339, track_body};
use common::TestApp;
use serde_json::{json, Value};

const KEY_USAGE: &str = "query($d: Int!) { apiKeys { id callsThisPeriod usageHistory(days: $d) { date calls failedCalls } } }";

/// Each key's `(callsThisPeriod, usageHistory)`, once the analytics caught up.
async fn key_usage(app: &TestApp, token: &str, days: i64) -> Vec<(String, i64, Vec<Value>)> {
    let data = app
        .graphql_ok(Some(token), KEY_USAGE, json!({ "d": days }))
        .await;
    data["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            (
                key["id"].as_str().unwrap().to_owned(),
                key["callsThisPeriod"].as_i64().unwrap(),
                key["usageHistory"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

fn usage_of<'a>(
    usage: &'a [(String, i64, Vec<Value>)],
    key_id: &str,
) -> &'a (String, i64, Vec<Value>) {
    usage
        .iter()
        .find(|(id, ..)| id == key_id)
        .expect("the key is listed")
}

fn finished_call(app: &TestApp, event_id: Option<&str>, status: i64) -> Value {
    let mut call = json!({
        "endpoint": "/v1/items", "method": "GET", "status_code": status,
        "response_time_ms": 12, "ts": app.now_rfc3339(),
    });
    if let Some(id) = event_id {
        call["event_id"] = json!(id);
    }
    call
}

#[tokio::test]
async fn each_key_shows_the_calls_made_with_it_this_period_and_per_day() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let (other_key, other_key_id) = app.create_key(&m.token, false).await;

    for body in [json!({}), json!({}), json!({ "cost": 5 })] {
        let response = app.post_json("/api/v1/verify", Some(&m.key), &body).await;
        assert_eq!(response.status, 200, "{}", response.json());
    }
    let failed = [
        finished_call(&app, None, 500),
        finished_call(&app, None, 404),
    ];
    let response = app
        .post_json("/api/v1/events", Some(&m.key), &json!({ "events": failed }))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(app.track_now(&m.key).await.status, 200);
    assert_eq!(
        app.post_json("/api/v1/verify", Some(&other_key), &json!({}))
            .await
            .status,
        200
    );

    let usage = key_usage(&app, &m.token, 3).await;
    // 1 + 1 + 5 verified, 2 finished calls, 1 tool use.
    let (_, calls, days) = usage_of(&usage, &m.key_id);
    assert_eq!(*calls, 10);
    assert_eq!(days.len(), 3, "one entry per day: {days:?}");
    let today = app.now_rfc3339()[..10].to_owned();
    assert_eq!(
        days[2],
        json!({ "date": today, "calls": 10, "failedCalls": 2 })
    );
    for day in &days[..2] {
        assert_eq!(
            (day["calls"].as_i64(), day["failedCalls"].as_i64()),
            (Some(0), Some(0))
        );
    }
    let (_, other_calls, other_days) = usage_of(&usage, &other_key_id);
    assert_eq!(*other_calls, 1);
    assert_eq!(other_days[2]["calls"], 1);
    // Together they are what the account's period counted.
    let account = app
        .graphql_ok(Some(&m.token), "{ currentUsage { calls } }", json!({}))
        .await;
    assert_eq!(account["currentUsage"]["calls"], 11);
}

#[tokio::test]
async fn a_verified_call_reported_failed_counts_once_and_as_failed_for_its_key() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let verify =
        json!({ "event_id": "call-1", "cost": 3, "endpoint": "/v1/items", "method": "GET" });
    assert_eq!(
        app.post_json("/api/v1/verify", Some(&m.key), &verify)
            .await
            .status,
        200
    );
    let report = json!({ "events": [finished_call(&app, Some("call-1"), 503)] });
    let answer = app
        .post_json("/api/v1/events", Some(&m.key), &report)
        .await
        .json();
    assert_eq!(answer["completed"], 1, "{answer}");

    let usage = key_usage(&app, &m.token, 1).await;
    let (_, calls, days) = usage_of(&usage, &m.key_id);
    assert_eq!(*calls, 3);
    assert_eq!(days[0]["calls"], 3);
    assert_eq!(days[0]["failedCalls"], 3);
}

#[tokio::test]
async fn calls_of_the_last_period_are_in_the_history_but_not_in_this_period() {
    let app = TestApp::new().await;
    let token = app.sign_up("late@example.com").await.token;
    let (key, key_id) = app.create_key(&token, false).await;
    // The account was made on 10 November; on 2 December a tool use of 30 November arrives.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap());
    let late = Utc.with_ymd_and_hms(2026, 11, 30, 18, 0, 0).unwrap();
    let response = app.track(&key, &track_body(&rfc3339(late), None)).await;
    assert_eq!(response.status, 200);
    assert_eq!(app.track_now(&key).await.status, 200);

    let token = app.login("late@example.com").await;
    let usage = key_usage(&app, &token, 3).await;
    let (_, calls, days) = usage_of(&usage, &key_id);
    assert_eq!(*calls, 1, "only December's call is in this period");
    let by_day: Vec<(&str, i64)> = days
        .iter()
        .map(|d| (d["date"].as_str().unwrap(), d["calls"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        by_day,
        [("2026-11-30", 1), ("2026-12-01", 0), ("2026-12-02", 1)]
    );
}

#[tokio::test]
async fn a_history_window_outside_1_to_366_days_is_bad_input() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    for days in [0, 367] {
        let body = app
            .graphql(Some(&m.token), KEY_USAGE, json!({ "d": days }))
            .await;
        assert_eq!(
            common::error_code(&body),
            "BAD_USER_INPUT",
            "{days}: {body}"
        );
    }
}

#[tokio::test]
async fn every_key_of_a_long_list_shows_its_own_usage() {
    // Thirty keys, each with a different number of calls: the batched loads keep them apart.
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let mut keys = vec![(m.key.clone(), m.key_id.clone())];
    for _ in 0..29 {
        keys.push(app.create_key(&m.token, false).await);
    }
    for (n, (key, _)) in keys.iter().enumerate() {
        let body = json!({ "cost": n + 1 });
        assert_eq!(
            app.post_json("/api/v1/verify", Some(key), &body)
                .await
                .status,
            200
        );
    }
    let usage = key_usage(&app, &m.token, 30).await;
    for (n, (_, key_id)) in keys.iter().enumerate() {
        let (_, calls, days) = usage_of(&usage, key_id);
        assert_eq!(*calls, n as i64 + 1);
        assert_eq!(days.len(), 30);
    }
}
