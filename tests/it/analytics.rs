//! The caller's own analytics: current usage, daily history, endpoint and tool statistics, read
//! from the rollups the recorder's follower writes (at most a second behind the events), and
//! unchanged when old raw events are pruned.

use crate::common;

use chrono::Duration;
use common::analytics::{
    api_call, app, at, compare_endpoint_stats, compare_with_raw_events, install,
    naive_endpoint_stats, tool_use,
};
use common::tables;
use common::{error_code, TestApp};
use serde_json::{json, Value};
use tally::clock::Clock;
use tally::domain::recorder::{self, NewEvent};
use tally::domain::retention;

/// A known set of events of one account, around the default clock (2026-11-10T12:00Z).
fn known_events(account: &str) -> Vec<NewEvent> {
    let t = |s: &str| at(s);
    vec![
        api_call(
            account,
            t("2026-11-10T08:00:00Z"),
            "GET",
            "/v1/items",
            200,
            10,
        ),
        api_call(
            account,
            t("2026-11-10T08:01:00Z"),
            "GET",
            "/v1/items",
            201,
            20,
        ),
        api_call(
            account,
            t("2026-11-10T08:02:00Z"),
            "GET",
            "/v1/items",
            304,
            30,
        ),
        api_call(
            account,
            t("2026-11-10T08:03:00Z"),
            "GET",
            "/v1/items",
            404,
            40,
        ),
        api_call(
            account,
            t("2026-11-10T08:04:00Z"),
            "GET",
            "/v1/items",
            500,
            100,
        ),
        api_call(
            account,
            t("2026-11-10T09:00:00Z"),
            "POST",
            "/v1/items",
            200,
            7,
        ),
        api_call(
            account,
            t("2026-11-10T09:01:00Z"),
            "POST",
            "/v1/items",
            503,
            9,
        ),
        tool_use(account, t("2026-11-10T09:00:00Z"), "code-review", "Read"),
        tool_use(account, t("2026-11-10T11:00:00Z"), "code-review", "Read"),
        tool_use(account, t("2026-11-10T10:00:00Z"), "code-review", "Read"),
        tool_use(account, t("2026-11-10T10:30:00Z"), "code-review", "Write"),
        install(account, t("2026-11-10T07:00:00Z"), "code-review"),
        install(account, t("2026-11-10T07:30:00Z"), "code-review"),
        api_call(
            account,
            t("2026-11-09T10:00:00Z"),
            "GET",
            "/v1/items",
            200,
            1000,
        ),
        api_call(
            account,
            t("2026-11-09T23:59:59.999Z"),
            "GET",
            "/v1/items",
            200,
            2000,
        ),
        tool_use(account, t("2026-11-09T12:00:00Z"), "lint", "Run"),
        api_call(
            account,
            t("2026-11-07T00:00:00Z"),
            "GET",
            "/v1/users",
            200,
            5,
        ),
    ]
}

#[tokio::test]
async fn known_events_give_exact_numbers() {
    let app = app().await;
    // The account exists before its first event.
    app.clock.set(at("2026-11-01T00:00:00Z"));
    let (token, account) = app.member().await;
    app.clock.set(common::default_start());
    app.record(known_events(&account)).await;

    let data = app
        .graphql_ok(
            Some(&token),
            "{ usageHistory(days: 4) { date totalCalls successfulCalls failedCalls avgResponseTimeMs } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["usageHistory"],
        json!([
            { "date": "2026-11-07", "totalCalls": 1, "successfulCalls": 1, "failedCalls": 0, "avgResponseTimeMs": 5 },
            { "date": "2026-11-08", "totalCalls": 0, "successfulCalls": 0, "failedCalls": 0, "avgResponseTimeMs": null },
            { "date": "2026-11-09", "totalCalls": 3, "successfulCalls": 2, "failedCalls": 0, "avgResponseTimeMs": 1500 },
            // 7 API calls and 4 tool uses; installs are not calls. (200 + 16) / 7 = 30.86 ms.
            { "date": "2026-11-10", "totalCalls": 11, "successfulCalls": 4, "failedCalls": 3, "avgResponseTimeMs": 31 },
        ])
    );

    let data = app
        .graphql_ok(
            Some(&token),
            "{ week: endpointStats { endpoint method totalCalls failedCalls avgResponseTimeMs p95ResponseTimeMs }
               today: endpointStats(days: 1) { endpoint method totalCalls failedCalls avgResponseTimeMs p95ResponseTimeMs } }",
            json!({}),
        )
        .await;
    let week = data["week"].as_array().unwrap();
    assert_eq!(week.len(), 3);
    assert_eq!(
        week[0],
        json!({ "endpoint": "/v1/items", "method": "GET", "totalCalls": 7, "failedCalls": 2,
                "avgResponseTimeMs": 457, "p95ResponseTimeMs": week[0]["p95ResponseTimeMs"] })
    );
    // Exact p95 of [10, 20, 30, 40, 100, 1000, 2000] is 2000 (nearest rank 7).
    let p95 = week[0]["p95ResponseTimeMs"].as_i64().unwrap();
    assert!((p95 - 2000).abs() <= 100, "p95 {p95}");
    // Below 32 ms the histogram is exact.
    assert_eq!(
        week[1],
        json!({ "endpoint": "/v1/items", "method": "POST", "totalCalls": 2, "failedCalls": 1,
                "avgResponseTimeMs": 8, "p95ResponseTimeMs": 9 })
    );
    assert_eq!(
        week[2],
        json!({ "endpoint": "/v1/users", "method": "GET", "totalCalls": 1, "failedCalls": 0,
                "avgResponseTimeMs": 5, "p95ResponseTimeMs": 5 })
    );
    let today = data["today"].as_array().unwrap();
    assert_eq!(today.len(), 2);
    assert_eq!(today[0]["totalCalls"], 5);
    assert_eq!(today[0]["avgResponseTimeMs"], 40);
    let p95 = today[0]["p95ResponseTimeMs"].as_i64().unwrap();
    assert!((p95 - 100).abs() <= 5, "p95 {p95}");

    let data = app
        .graphql_ok(
            Some(&token),
            "{ toolStats { skillId toolName calls lastUsedAt } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["toolStats"],
        json!([
            { "skillId": "code-review", "toolName": "Read", "calls": 3, "lastUsedAt": "2026-11-10T11:00:00+00:00" },
            { "skillId": "code-review", "toolName": "install_confirmed", "calls": 2, "lastUsedAt": "2026-11-10T07:30:00+00:00" },
            { "skillId": "code-review", "toolName": "Write", "calls": 1, "lastUsedAt": "2026-11-10T10:30:00+00:00" },
            { "skillId": "lint", "toolName": "Run", "calls": 1, "lastUsedAt": "2026-11-09T12:00:00+00:00" },
        ])
    );

    let data = app
        .graphql_ok(
            Some(&token),
            "{ currentUsage { periodStart periodEnd calls limit remaining overageCalls overageCostCents usagePercentage }
               me { account { currentUsage { calls remaining } } } }",
            json!({}),
        )
        .await;
    // 10 API calls and 5 tool uses this month; installs do not count.
    assert_eq!(
        data["currentUsage"],
        json!({ "periodStart": "2026-11-01T00:00:00+00:00", "periodEnd": "2026-12-01T00:00:00+00:00",
                "calls": 15, "limit": 1000, "remaining": 985, "overageCalls": 0,
                "overageCostCents": 0, "usagePercentage": 1.5 })
    );
    assert_eq!(
        data["me"]["account"]["currentUsage"],
        json!({ "calls": 15, "remaining": 985 })
    );

    // The same answers computed from the raw events.
    let raw = app.raw_events(&account).await;
    let now = app.clock.now();
    let snapshot = app.snapshot(&token, 7).await;
    compare_with_raw_events(&snapshot, &raw, now, 7, 100).unwrap();
}

#[tokio::test]
async fn history_is_zero_filled_across_a_month_boundary() {
    let app = app().await;
    app.clock.set(at("2026-11-20T00:00:00Z"));
    let (token, account) = app.member().await;
    app.clock.set(at("2026-12-02T10:00:00Z"));
    app.record(vec![
        api_call(&account, at("2026-11-29T10:00:00Z"), "GET", "/a", 200, 10),
        api_call(&account, at("2026-11-29T11:00:00Z"), "GET", "/a", 404, 20),
        tool_use(&account, at("2026-11-30T23:59:59.999Z"), "s", "t"),
        api_call(&account, at("2026-12-01T00:00:00Z"), "GET", "/a", 200, 12),
        api_call(&account, at("2026-12-02T09:59:00Z"), "GET", "/a", 500, 30),
    ])
    .await;
    let data = app
        .graphql_ok(
            Some(&token),
            "{ usageHistory(days: 6) { date totalCalls successfulCalls failedCalls avgResponseTimeMs }
               currentUsage { periodStart calls } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["usageHistory"],
        json!([
            { "date": "2026-11-27", "totalCalls": 0, "successfulCalls": 0, "failedCalls": 0, "avgResponseTimeMs": null },
            { "date": "2026-11-28", "totalCalls": 0, "successfulCalls": 0, "failedCalls": 0, "avgResponseTimeMs": null },
            { "date": "2026-11-29", "totalCalls": 2, "successfulCalls": 1, "failedCalls": 1, "avgResponseTimeMs": 15 },
            { "date": "2026-11-30", "totalCalls": 1, "successfulCalls": 0, "failedCalls": 0, "avgResponseTimeMs": null },
            { "date": "2026-12-01", "totalCalls": 1, "successfulCalls": 1, "failedCalls": 0, "avgResponseTimeMs": 12 },
            { "date": "2026-12-02", "totalCalls": 1, "successfulCalls": 0, "failedCalls": 1, "avgResponseTimeMs": 30 },
        ])
    );
    // The new period starts from zero: November's calls are not December's.
    assert_eq!(
        data["currentUsage"],
        json!({ "periodStart": "2026-12-01T00:00:00+00:00", "calls": 2 })
    );

    // The default is 30 days, oldest first, ending today.
    let data = app
        .graphql_ok(Some(&token), "{ usageHistory { date } }", json!({}))
        .await;
    let days = data["usageHistory"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[0]["date"], "2026-11-03");
    assert_eq!(days[29]["date"], "2026-12-02");
}

/// The calls of every day of a `usageHistory` answer, added up.
fn total_calls(history: &Value) -> i64 {
    history
        .as_array()
        .expect("a usage history")
        .iter()
        .map(|day| day["totalCalls"].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn a_member_never_sees_another_accounts_numbers() {
    let app = app().await;
    let (alice, alice_account) = app.member().await;
    let (bob, bob_account) = app.member().await;
    app.record(known_events(&alice_account)).await;
    app.record(vec![api_call(
        &bob_account,
        at("2026-11-10T10:00:00Z"),
        "DELETE",
        "/bob-only",
        200,
        3,
    )])
    .await;

    let bob_sees = app.snapshot(&bob, 7).await;
    assert_eq!(bob_sees["currentUsage"]["calls"], 1);
    assert_eq!(
        bob_sees["endpointStats"],
        json!([{ "endpoint": "/bob-only", "method": "DELETE", "totalCalls": 1, "failedCalls": 0,
                 "avgResponseTimeMs": 3, "p95ResponseTimeMs": 3 }])
    );
    assert_eq!(bob_sees["toolStats"], json!([]));
    assert_eq!(total_calls(&bob_sees["usageHistory"]), 1);

    let alice_sees = app.snapshot(&alice, 7).await;
    assert_eq!(alice_sees["currentUsage"]["calls"], 15);
    assert!(!alice_sees["endpointStats"]
        .to_string()
        .contains("/bob-only"));
}

#[tokio::test]
async fn overage_and_unlimited_plans() {
    let app = app().await;
    let (token, account) = app.member().await;
    app.update_plan("PRO", json!({ "monthlyQuota": 10 })).await;
    app.set_plan(&account, "PRO").await;
    let now = app.clock.now();
    app.record(
        (0..15)
            .map(|i| api_call(&account, now - Duration::minutes(i), "GET", "/x", 200, 5))
            .collect(),
    )
    .await;
    let query =
        "{ currentUsage { calls limit remaining overageCalls overageCostCents usagePercentage } }";
    // 5 calls over at 1,000 micros: half a cent, rounded up.
    assert_eq!(
        app.graphql_ok(Some(&token), query, json!({})).await["currentUsage"],
        json!({ "calls": 15, "limit": 10, "remaining": 0, "overageCalls": 5,
                "overageCostCents": 1, "usagePercentage": 150.0 })
    );

    app.set_plan(&account, "ENTERPRISE").await;
    assert_eq!(
        app.graphql_ok(Some(&token), query, json!({})).await["currentUsage"],
        json!({ "calls": 15, "limit": null, "remaining": null, "overageCalls": 0,
                "overageCostCents": 0, "usagePercentage": null })
    );
}

#[tokio::test]
async fn bad_windows_and_page_sizes_are_refused() {
    let app = app().await;
    let (token, _) = app.member().await;
    for query in [
        "{ usageHistory(days: 0) { date } }",
        "{ usageHistory(days: 367) { date } }",
        "{ endpointStats(days: 0) { endpoint } }",
        "{ toolStats(days: 400) { skillId } }",
        "{ endpointStats(limit: 101) { endpoint } }",
        "{ endpointStats(limit: 0) { endpoint } }",
        "{ toolStats(limit: 101) { skillId } }",
        "{ toolStats(limit: -1) { skillId } }",
    ] {
        let body = app.graphql(Some(&token), query, json!({})).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{query}: {body}");
    }
    // The page size is checked before anything else, even sign-in.
    let body = app
        .graphql(
            None,
            "{ endpointStats(limit: 101) { endpoint } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    let data = app
        .graphql_ok(
            Some(&token),
            "{ usageHistory(days: 366) { date } endpointStats(days: 366, limit: 100) { endpoint }
               toolStats(days: 1, limit: 1) { skillId } }",
            json!({}),
        )
        .await;
    assert_eq!(data["usageHistory"].as_array().unwrap().len(), 366);

    for query in [
        "{ currentUsage { calls } }",
        "{ usageHistory { date } }",
        "{ endpointStats { endpoint } }",
        "{ toolStats { skillId } }",
    ] {
        let body = app.graphql(None, query, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{query}");
    }
}

#[tokio::test]
async fn events_sent_to_the_ingestion_routes_show_up() {
    let app = app().await;
    let (token, _) = app.member().await;
    let (key, _) = app.create_key(&token, false).await;
    let ts = app.now_rfc3339();
    let response = app
        .track(
            &key,
            &json!({ "skill_id": "deploy", "tool_name": "Bash", "ts": ts }),
        )
        .await;
    assert_eq!(response.status, 200);
    let response = app
        .post_json(
            "/api/v1/events",
            Some(&key),
            &json!({ "events": [
                { "endpoint": "/v1/pay", "method": "POST", "status_code": 201, "response_time_ms": 40, "ts": ts },
                { "endpoint": "/v1/pay", "method": "POST", "status_code": 402, "response_time_ms": 20, "ts": ts },
            ] }),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.json());

    let data = app
        .graphql_ok(
            Some(&token),
            "{ currentUsage { calls }
               usageHistory(days: 1) { totalCalls successfulCalls failedCalls avgResponseTimeMs }
               endpointStats { endpoint method totalCalls failedCalls avgResponseTimeMs }
               toolStats { skillId toolName calls } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data,
        json!({
            "currentUsage": { "calls": 3 },
            "usageHistory": [{ "totalCalls": 3, "successfulCalls": 1, "failedCalls": 1, "avgResponseTimeMs": 30 }],
            "endpointStats": [{ "endpoint": "/v1/pay", "method": "POST", "totalCalls": 2, "failedCalls": 1, "avgResponseTimeMs": 30 }],
            "toolStats": [{ "skillId": "deploy", "toolName": "Bash", "calls": 1 }],
        })
    );
}

async fn raw_count(app: &TestApp) -> i64 {
    tables::stored_events_in_total(&app.state.db).await
}

/// Several instances (each with its own recorder) writing the same rollup rows at once: the
/// histograms are added under the row's lock, so no count is lost and p95 stays exact.
#[tokio::test]
async fn concurrent_writers_lose_no_latency_counts() {
    let app = app().await;
    let (token, account) = app.member().await;
    let when = app.clock.now() - Duration::minutes(1);
    let mut writers = Vec::new();
    for writer in 0..4i64 {
        let db = app.state.db.clone();
        let account = account.clone();
        writers.push(tokio::spawn(async move {
            for batch in 0..10i64 {
                let events: Vec<NewEvent> = (0..5i64)
                    .map(|i| {
                        let ms = 1 + (writer * 50 + batch * 5 + i) * 7;
                        api_call(&account, when, "GET", "/hot", 200, ms)
                    })
                    .collect();
                let refs: Vec<&NewEvent> = events.iter().collect();
                recorder::write_batch(&db, &refs, &[])
                    .await
                    .expect("written");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }

    let raw = app.raw_events(&account).await;
    assert_eq!(raw.len(), 200);
    let snapshot = app.snapshot(&token, 1).await;
    assert_eq!(snapshot["endpointStats"][0]["totalCalls"], 200);
    compare_endpoint_stats(
        &snapshot["endpointStats"],
        &naive_endpoint_stats(&raw, app.clock.now(), 1, 100),
    )
    .unwrap();
    let stored: i64 = app.stored_histogram(&account, "/hot").await.values().sum();
    assert_eq!(stored, 200);
}

#[tokio::test]
async fn pruning_raw_events_changes_no_analytics_answer() {
    let app = app().await;
    let (token, account) = app.member().await;
    let now = app.clock.now();
    let mut events = known_events(&account);
    for days_ago in [200, 120, 95, 91, 90, 89, 60, 30, 1] {
        let when = now - Duration::days(days_ago) - Duration::minutes(1);
        events.push(api_call(&account, when, "GET", "/old", 200, days_ago));
        events.push(api_call(&account, when, "PUT", "/old", 500, 300 + days_ago));
        events.push(tool_use(&account, when, "archive", "Read"));
        events.push(install(&account, when, "archive"));
    }
    app.record(events).await;

    let before_366 = app.snapshot(&token, 366).await;
    let before_7 = app.snapshot(&token, 7).await;
    let stored = raw_count(&app).await;

    let cutoff = retention::cutoff(now, 90);
    let pruned = retention::prune_events(&app.state.db, cutoff)
        .await
        .unwrap();
    // Events 200, 120, 95, 91 and 90 days (and a minute) old: 5 × 4.
    assert_eq!(pruned, 20);
    assert_eq!(raw_count(&app).await, stored - 20);
    let oldest = tables::oldest_event_at(&app.state.db).await.unwrap_or(0);
    assert!(oldest >= cutoff.timestamp_millis());

    assert_eq!(app.snapshot(&token, 366).await, before_366);
    assert_eq!(app.snapshot(&token, 7).await, before_7);
    // Pruning again finds nothing.
    assert_eq!(
        retention::prune_events(&app.state.db, cutoff)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_verify_with_cost_ten_is_ten_calls_in_every_total() {
    let app = app().await;
    let (token, _) = app.member().await;
    let (key, _) = app.create_key(&token, false).await;
    let verify = app
        .post_json(
            "/api/v1/verify",
            Some(&key),
            &json!({ "endpoint": "/v1/search", "method": "GET", "event_id": "req-1", "cost": 10 }),
        )
        .await;
    assert_eq!(verify.status, 200, "{}", verify.json());
    // The finished call completes the verified one: it adds no call.
    let finished = app
        .post_json(
            "/api/v1/events",
            Some(&key),
            &json!({ "events": [{ "event_id": "req-1", "endpoint": "/v1/search", "method": "GET",
                                  "status_code": 200, "response_time_ms": 35, "ts": app.now_rfc3339() }] }),
        )
        .await;
    assert_eq!(finished.status, 200, "{}", finished.json());
    let tool = app
        .track(
            &key,
            &json!({ "skill_id": "s", "tool_name": "t", "ts": app.now_rfc3339() }),
        )
        .await;
    assert_eq!(tool.status, 200);

    // November 1st to 10th: the month so far.
    let data = app
        .graphql_ok(
            Some(&token),
            "{ currentUsage { calls }
               usageHistory(days: 10) { totalCalls successfulCalls failedCalls avgResponseTimeMs }
               endpointStats { endpoint method totalCalls requests failedCalls avgResponseTimeMs } }",
            json!({}),
        )
        .await;
    assert_eq!(data["currentUsage"]["calls"], 11);
    assert_eq!(total_calls(&data["usageHistory"]), 11);
    assert_eq!(
        data["usageHistory"][9],
        json!({ "totalCalls": 11, "successfulCalls": 10, "failedCalls": 0, "avgResponseTimeMs": 35 })
    );
    assert_eq!(
        data["endpointStats"],
        json!([{ "endpoint": "/v1/search", "method": "GET", "totalCalls": 10, "requests": 1,
                 "failedCalls": 0, "avgResponseTimeMs": 35 }])
    );

    let admin = app.admin_token().await;
    let overview = app
        .graphql_ok(
            Some(&admin),
            "{ adminOverview { apiCalls { today thisMonth } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        overview["adminOverview"]["apiCalls"],
        json!({ "today": 11, "thisMonth": 11 })
    );

    app.clock.set(at("2026-12-01T01:00:00Z"));
    app.graphql_ok(
        Some(&admin),
        "mutation { adminCloseBillingPeriods { invoicesCreated } }",
        json!({}),
    )
    .await;
    let invoices = app
        .graphql_ok(Some(&token), "{ invoices { calls } }", json!({}))
        .await;
    assert_eq!(invoices["invoices"], json!([{ "calls": 11 }]));
    assert_eq!(raw_count(&app).await, 2, "one verified call, one tool use");
}

#[tokio::test]
async fn calls_without_an_endpoint_show_under_a_placeholder_not_a_blank_row() {
    let app = app().await;
    let (token, _) = app.member().await;
    let (key, _) = app.create_key(&token, false).await;
    for body in [
        json!({}),
        json!({ "cost": 2 }),
        json!({ "method": "POST" }),
        json!({ "endpoint": "/v1/a", "method": "GET" }),
    ] {
        let verify = app.post_json("/api/v1/verify", Some(&key), &body).await;
        assert_eq!(verify.status, 200, "{}", verify.json());
    }
    let data = app
        .graphql_ok(
            Some(&token),
            "{ currentUsage { calls } endpointStats { endpoint method totalCalls requests } }",
            json!({}),
        )
        .await;
    assert_eq!(data["currentUsage"]["calls"], 5);
    assert_eq!(
        data["endpointStats"],
        json!([
            { "endpoint": "(unspecified)", "method": "(unspecified)", "totalCalls": 3, "requests": 2 },
            { "endpoint": "/v1/a", "method": "GET", "totalCalls": 1, "requests": 1 },
            { "endpoint": "(unspecified)", "method": "POST", "totalCalls": 1, "requests": 1 },
        ])
    );
}

#[tokio::test]
async fn an_accounts_first_period_is_shown_from_its_creation() {
    let app = TestApp::new().await;
    let token = app.sign_up("new@example.com").await.token;
    let query = "{ currentUsage { periodStart periodEnd }
                   me { account { createdAt currentUsage { periodStart periodEnd } } } }";
    let data = app.graphql_ok(Some(&token), query, json!({})).await;
    let created = "2026-11-10T12:00:00+00:00";
    assert_eq!(data["me"]["account"]["createdAt"], created);
    let first = json!({ "periodStart": created, "periodEnd": "2026-12-01T00:00:00+00:00" });
    assert_eq!(data["currentUsage"], first);
    assert_eq!(data["me"]["account"]["currentUsage"], first);

    // Later periods are whole months.
    app.clock.set(at("2026-12-02T00:00:00Z"));
    let token = app.login("new@example.com").await;
    let data = app.graphql_ok(Some(&token), query, json!({})).await;
    let second = json!({ "periodStart": "2026-12-01T00:00:00+00:00", "periodEnd": "2027-01-01T00:00:00+00:00" });
    assert_eq!(data["currentUsage"], second);
    assert_eq!(data["me"]["account"]["currentUsage"], second);
}

/// Without waiting for anything but the answers: the current usage counts a tool use at once, the
/// daily statistics within a second.
#[tokio::test]
async fn analytics_show_an_acknowledged_event_within_a_second() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let read = || async {
        let response = app
            .post_json(
                "/graphql",
                Some(&m.token),
                &json!({ "query": "{ currentUsage { calls } toolStats { calls } }" }),
            )
            .await;
        response.json()["data"].clone()
    };
    assert_eq!(app.track_now(&m.key).await.status, 200);
    let acknowledged = std::time::Instant::now();
    assert_eq!(read().await["currentUsage"]["calls"], 1);
    loop {
        if read().await["toolStats"] == json!([{ "calls": 1 }]) {
            break;
        }
        assert!(
            acknowledged.elapsed() < std::time::Duration::from_secs(1),
            "not in the tool statistics within a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
