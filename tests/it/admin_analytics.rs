//! The admin's view: overview, account pages (with usage loaded in one batch) and usage resets.

use crate::common;

use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::http::Request;
use chrono::Duration;
use common::analytics::{api_call, app, at, config, install, tool_use};
use common::tables;
use common::{error_code, TestApp};
use serde_json::{json, Value};
use tally::clock::Clock;
use tally::AppState;
use tower::ServiceExt;

#[tokio::test]
async fn every_admin_field_is_forbidden_to_a_member() {
    let app = app().await;
    let (token, account) = app.member().await;
    app.record(vec![tool_use(&account, app.clock.now(), "s", "t")])
        .await;
    for (query, variables) in [
        ("{ adminOverview { users { total } } }", json!({})),
        (
            "{ adminOverview { apiCalls { today } revenue { mrrCents } } }",
            json!({}),
        ),
        ("{ adminAccounts { totalCount } }", json!({})),
        (
            "{ adminAccounts(limit: 10, plan: FREE) { nodes { id currentUsage { calls } } } }",
            json!({}),
        ),
        (
            "mutation($a: ID!) { adminResetUsage(accountId: $a) { calls } }",
            json!({ "a": account }),
        ),
    ] {
        let body = app.graphql(Some(&token), query, variables.clone()).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{query}: {body}");
        assert!(body["data"].is_null(), "{body}");
        let body = app.graphql(None, query, variables).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{query}: {body}");
    }
    // The refused reset changed nothing.
    let data = app
        .graphql_ok(Some(&token), "{ currentUsage { calls } }", json!({}))
        .await;
    assert_eq!(data["currentUsage"]["calls"], 1);
}

#[tokio::test]
async fn the_overview_counts_accounts_calls_and_revenue() {
    let app = app().await;
    let admin = app.admin_token().await; // its account, "Operators", is on FREE
    app.graphql_ok(
        Some(&admin),
        "mutation { adminUpdatePlan(code: PRO, input: { monthlyQuota: 10 }) { code } }",
        json!({}),
    )
    .await;
    let (_, free) = app.member().await;
    app.bare_account("idle", "FREE").await;
    let pro_a = app.bare_account("pro a", "PRO").await;
    let pro_b = app.bare_account("pro b", "PRO").await;
    let enterprise = app.bare_account("big", "ENTERPRISE").await;

    let today = at("2026-11-10T09:00:00Z");
    let earlier = at("2026-11-03T09:00:00Z");
    let last_month = at("2026-10-31T23:59:59Z");
    let calls = |account: &str, when, n: usize| {
        (0..n)
            .map(|i| {
                api_call(
                    account,
                    when,
                    "GET",
                    "/v1/x",
                    200 + (i % 2) as i32 * 300,
                    10,
                )
            })
            .collect::<Vec<_>>()
    };
    let mut events = Vec::new();
    // PRO a: 25 calls this month, 15 over the quota of 10: 15,000 micros = 1.5 cents → 2.
    events.extend(calls(&pro_a, today, 5));
    events.extend(calls(&pro_a, earlier, 20));
    // PRO b: 13 calls this month, 3 over: 0.3 cents → 0. Last month's 100 are another period.
    events.extend(calls(&pro_b, today, 3));
    events.extend(calls(&pro_b, earlier, 10));
    events.extend(calls(&pro_b, last_month, 100));
    // ENTERPRISE: unlimited, never in overage.
    events.extend(calls(&enterprise, today, 50));
    // FREE: 3 tool uses today (calls), 2 installs (not calls), 4 calls last month.
    for _ in 0..3 {
        events.push(tool_use(&free, today, "s", "t"));
    }
    events.push(install(&free, today, "s"));
    events.push(install(&free, today, "s"));
    events.extend(calls(&free, last_month, 4));
    app.record(events).await;

    let data = app
        .graphql_ok(
            Some(&admin),
            "{ adminOverview { users { free pro enterprise total } apiCalls { today thisMonth }
               revenue { mrrCents overageThisMonthCents } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["adminOverview"],
        json!({
            "users": { "free": 3, "pro": 2, "enterprise": 1, "total": 6 },
            "apiCalls": { "today": 5 + 3 + 50 + 3, "thisMonth": 25 + 13 + 50 + 3 },
            "revenue": { "mrrCents": 2 * 2900 + 29900, "overageThisMonthCents": 2 },
        })
    );

    // On the first of the next month, November is no longer "this month".
    app.clock.set(at("2026-12-01T00:00:00Z"));
    let data = app
        .graphql_ok(
            Some(&admin),
            "{ adminOverview { apiCalls { today thisMonth } revenue { overageThisMonthCents } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["adminOverview"],
        json!({ "apiCalls": { "today": 0, "thisMonth": 0 }, "revenue": { "overageThisMonthCents": 0 } })
    );
}

#[tokio::test]
async fn account_pages_have_the_true_total_and_each_accounts_usage() {
    let app = app().await;
    let admin = app.admin_token().await;
    let mut pro = Vec::new();
    for i in 0..7 {
        app.bare_account(&format!("free {i}"), "FREE").await;
    }
    for i in 0..5 {
        app.clock.advance(Duration::seconds(1));
        pro.push(app.bare_account(&format!("pro {i}"), "PRO").await);
    }
    let now = app.clock.now();
    app.record(vec![
        api_call(&pro[0], now, "GET", "/a", 200, 1),
        api_call(&pro[0], now, "GET", "/a", 200, 1),
        tool_use(&pro[3], now, "s", "t"),
    ])
    .await;

    let page =
        "query($l: Int!, $o: Int!, $p: PlanCode) { adminAccounts(limit: $l, offset: $o, plan: $p) {
        totalCount limit offset nodes { id name plan { code } currentUsage { calls limit } } } }";
    let data = app
        .graphql_ok(Some(&admin), page, json!({ "l": 5, "o": 0 }))
        .await;
    let first = &data["adminAccounts"];
    assert_eq!(first["totalCount"], 13); // 12 and the admin's own account
    assert_eq!(first["limit"], 5);
    assert_eq!(first["offset"], 0);
    assert_eq!(first["nodes"].as_array().unwrap().len(), 5);

    let data = app
        .graphql_ok(Some(&admin), page, json!({ "l": 5, "o": 10 }))
        .await;
    assert_eq!(data["adminAccounts"]["totalCount"], 13);
    assert_eq!(data["adminAccounts"]["nodes"].as_array().unwrap().len(), 3);

    let data = app
        .graphql_ok(Some(&admin), page, json!({ "l": 100, "o": 0, "p": "PRO" }))
        .await;
    let pros = &data["adminAccounts"];
    assert_eq!(pros["totalCount"], 5);
    let nodes = pros["nodes"].as_array().unwrap();
    let ids: Vec<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids, pro.iter().map(String::as_str).collect::<Vec<_>>());
    let usage: Vec<i64> = nodes
        .iter()
        .map(|n| n["currentUsage"]["calls"].as_i64().unwrap())
        .collect();
    assert_eq!(usage, [2, 0, 0, 1, 0]);
    assert!(nodes
        .iter()
        .all(|n| n["plan"]["code"] == "PRO" && n["currentUsage"]["limit"] == 100_000));

    let data = app
        .graphql_ok(Some(&admin), page, json!({ "l": 2, "o": 4, "p": "PRO" }))
        .await;
    assert_eq!(data["adminAccounts"]["totalCount"], 5);
    assert_eq!(data["adminAccounts"]["nodes"].as_array().unwrap().len(), 1);

    for (limit, offset) in [(101, 0), (0, 0), (-5, 0), (10, -1)] {
        let body = app
            .graphql(Some(&admin), page, json!({ "l": limit, "o": offset }))
            .await;
        assert_eq!(
            error_code(&body),
            "BAD_USER_INPUT",
            "{limit} {offset}: {body}"
        );
    }
}

/// The real router over the test's database, on a connection that records every statement.
async fn counting_router(app: &TestApp) -> (axum::Router, Arc<Mutex<Vec<String>>>) {
    let statements = Arc::new(Mutex::new(Vec::new()));
    let mut db = tally::db::connect(&app.database_url).await.unwrap();
    let seen = statements.clone();
    db.set_metric_callback(move |info| {
        seen.lock().unwrap().push(info.statement.sql.clone());
    });
    let state = AppState::with_clock(db, config(), b"test secret", Arc::new(app.clock.clone()));
    (tally::app(state), statements)
}

async fn post_graphql(router: &axum::Router, token: &str, query: &str) -> Value {
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(json!({ "query": query }).to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn a_page_of_accounts_loads_usage_in_one_query() {
    let app = app().await;
    let admin = app.admin_token().await;
    let mut accounts = Vec::new();
    for i in 0..40 {
        let plan = ["FREE", "PRO", "ENTERPRISE"][i % 3];
        accounts.push(app.bare_account(&format!("account {i}"), plan).await);
    }
    let now = app.clock.now();
    app.record(
        accounts
            .iter()
            .enumerate()
            .flat_map(|(i, a)| (0..i % 4).map(move |_| api_call(a, now, "GET", "/", 200, 1)))
            .collect(),
    )
    .await;

    let (router, statements) = counting_router(&app).await;
    let mut per_page = Vec::new();
    for limit in [3, 40] {
        statements.lock().unwrap().clear();
        let query = format!(
            "{{ adminAccounts(limit: {limit}) {{ totalCount nodes {{ id plan {{ code monthlyQuota }}
               currentUsage {{ calls limit remaining usagePercentage }} }} }} }}"
        );
        let body = post_graphql(&router, &admin, &query).await;
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(
            body["data"]["adminAccounts"]["nodes"]
                .as_array()
                .unwrap()
                .len(),
            limit
        );
        let seen = statements.lock().unwrap().clone();
        let usage_reads = seen.iter().filter(|s| s.contains("usage_periods")).count();
        assert_eq!(usage_reads, 1, "{seen:#?}");
        per_page.push(seen.len());
    }
    // The number of statements does not grow with the page.
    assert_eq!(per_page[0], per_page[1], "{per_page:?}");
}

/// Tracks tool uses on a FREE plan with a quota of 3: three are accepted, the fourth refused.
async fn use_up_quota_of_three(app: &TestApp, key: &str) {
    for _ in 0..3 {
        assert_eq!(app.track_now(key).await.status, 200);
    }
    assert_eq!(app.track_now(key).await.status, 429);
}

#[tokio::test]
async fn reset_usage_zeroes_the_current_period_and_the_quota_gate_sees_it() {
    let app = app().await;
    let admin = app.admin_token().await;
    app.update_plan("FREE", json!({ "monthlyQuota": 3 })).await;
    let (token, account) = app.member().await;
    let (key, _) = app.create_key(&token, false).await;
    app.record(vec![api_call(
        &account,
        at("2026-10-15T00:00:00Z"),
        "GET",
        "/october",
        200,
        1,
    )])
    .await;
    use_up_quota_of_three(&app, &key).await;

    let data = app
        .graphql_ok(
            Some(&admin),
            "mutation($a: ID!) { adminResetUsage(accountId: $a) { periodStart calls limit remaining } }",
            json!({ "a": account }),
        )
        .await;
    assert_eq!(
        data["adminResetUsage"],
        json!({ "periodStart": "2026-11-10T12:00:00+00:00", "calls": 0, "limit": 3, "remaining": 3 })
    );
    let data = app
        .graphql_ok(
            Some(&token),
            "{ currentUsage { calls } usageHistory(days: 1) { totalCalls } }",
            json!({}),
        )
        .await;
    // The counter is back to zero; the history of what happened is kept.
    assert_eq!(
        data,
        json!({ "currentUsage": { "calls": 0 }, "usageHistory": [{ "totalCalls": 3 }] })
    );
    // Other periods are untouched.
    assert_eq!(
        tables::period_calls(
            &app.state.db,
            &account,
            at("2026-10-01T00:00:00Z").timestamp_millis()
        )
        .await,
        1
    );

    // The gate counts from zero again.
    use_up_quota_of_three(&app, &key).await;

    let body = app
        .graphql(
            Some(&admin),
            "mutation { adminResetUsage(accountId: \"no-such-account\") { calls } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn revenue_past_two_to_the_31_cents_is_exact_and_typed_as_a_64_bit_integer() {
    let app = app().await;
    let admin = app.admin_token().await; // on FREE
    let price: i64 = 2_147_483_000;
    let updated = app
        .graphql_ok(
            Some(&admin),
            "mutation($p: Int!) { adminUpdatePlan(code: ENTERPRISE, input: { priceCents: $p }) { priceCents } }",
            json!({ "p": price }),
        )
        .await;
    assert_eq!(updated["adminUpdatePlan"]["priceCents"], price);
    for i in 0..8 {
        app.bare_account(&format!("big {i}"), "ENTERPRISE").await;
    }
    let data = app
        .graphql_ok(
            Some(&admin),
            "{ adminOverview { revenue { mrrCents } }
               revenue: __type(name: \"Revenue\") { fields { name type { ofType { name } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["adminOverview"]["revenue"]["mrrCents"].as_i64(),
        Some(8 * price)
    );
    // GraphQL's Int is 32-bit: a total past it is declared as the 64-bit BigInt.
    for field in data["revenue"]["fields"].as_array().unwrap() {
        assert_eq!(field["type"]["ofType"]["name"], "BigInt", "{field}");
    }

    // A plan amount past what the plan's Int fields hold is refused, and nothing changes.
    for input in [
        json!({ "priceCents": 2_147_483_648i64 }),
        json!({ "overagePriceMicros": 1i64 << 40 }),
        json!({ "monthlyQuota": 1i64 << 32 }),
    ] {
        let body = app
            .graphql(
                Some(&admin),
                "mutation($i: PlanInput!) { adminUpdatePlan(code: PRO, input: $i) { code } }",
                json!({ "i": input }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input}: {body}");
    }
    let plans = app
        .graphql_ok(
            None,
            "{ plans { code priceCents monthlyQuota overagePriceMicros } }",
            json!({}),
        )
        .await;
    assert_eq!(
        plans["plans"][1],
        json!({ "code": "PRO", "priceCents": 2900, "monthlyQuota": 100000, "overagePriceMicros": 1000 })
    );
}

#[tokio::test]
async fn installs_by_skill_platform_and_version_count_anonymous_and_attributed_ones() {
    let app = app().await;
    let (token, _) = app.member().await;
    let (key, _) = app.create_key(&token, false).await;
    let linux = json!({ "skill_id": "deploy", "platform": "linux", "version": "1.2.0" });
    let darwin = json!({ "skill_id": "deploy", "platform": "darwin", "version": "1.2.0" });
    post_install(&app, None, &linux).await;
    post_install(&app, None, &linux).await;
    post_install(&app, Some(&key), &linux).await;
    post_install(&app, Some(&key), &darwin).await;
    // A bad key is an anonymous install, not an error.
    post_install(&app, Some("tly_not_a_key"), &json!({ "platform": "linux" })).await;
    // Yesterday's install is in a two-day window, not in a one-day one.
    app.clock.advance(Duration::days(1));
    post_install(&app, None, &darwin).await;

    let admin = app.admin_token().await;
    let query = "query($d: Int!) { adminInstalls(days: $d) { skillId platform version installs anonymous attributed lastInstalledAt } }";
    let data = app.graphql_ok(Some(&admin), query, json!({ "d": 2 })).await;
    assert_eq!(
        data["adminInstalls"],
        json!([
            { "skillId": "deploy", "platform": "linux", "version": "1.2.0", "installs": 3,
              "anonymous": 2, "attributed": 1, "lastInstalledAt": "2026-11-10T12:00:00+00:00" },
            { "skillId": "deploy", "platform": "darwin", "version": "1.2.0", "installs": 2,
              "anonymous": 1, "attributed": 1, "lastInstalledAt": "2026-11-11T12:00:00+00:00" },
            { "skillId": null, "platform": "linux", "version": null, "installs": 1,
              "anonymous": 1, "attributed": 0, "lastInstalledAt": "2026-11-10T12:00:00+00:00" },
        ])
    );
    let today = app.graphql_ok(Some(&admin), query, json!({ "d": 1 })).await;
    assert_eq!(today["adminInstalls"].as_array().unwrap().len(), 1);
    assert_eq!(today["adminInstalls"][0]["installs"], 1);

    let forbidden = app
        .graphql(Some(&token), "{ adminInstalls { installs } }", json!({}))
        .await;
    assert_eq!(error_code(&forbidden), "FORBIDDEN");
    assert!(forbidden["data"].is_null());
    let too_big = app
        .graphql_error_code(Some(&admin), "{ adminInstalls(limit: 101) { installs } }")
        .await;
    assert_eq!(too_big, "BAD_USER_INPUT");
}

async fn post_install(app: &TestApp, key: Option<&str>, body: &Value) {
    let response = app.post_json("/api/install-callback", key, body).await;
    assert_eq!(response.status, 200, "{}", response.json());
}
