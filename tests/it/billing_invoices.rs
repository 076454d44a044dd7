//! Closing billing periods into invoices: exact money, the plan at the period's end, and one
//! invoice per account and period however often (or concurrently) billing runs.

use crate::common;

use chrono::{DateTime, TimeZone, Utc};
use common::{error_code, TestApp};
use sea_orm::{EntityTrait, PaginatorTrait, Set};
use serde_json::{json, Value};
use tally::clock::Clock;
use tally::entity::{invoice, usage_period};

const INVOICE_FIELDS: &str =
    "periodStart periodEnd plan calls includedCalls overageCalls baseCents overageCents totalCents";

fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

/// Records `calls` counted calls in November 2026 for the account, as the recorder would.
async fn november_calls(app: &TestApp, account_id: &str, calls: i64) {
    month_calls(app, account_id, utc(2026, 11, 1), utc(2026, 12, 1), calls).await;
}

/// Records `calls` counted calls in the period `[start, end)` for the account.
async fn month_calls(
    app: &TestApp,
    account_id: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    calls: i64,
) {
    usage_period::Entity::insert(usage_period::ActiveModel {
        account_id: Set(account_id.to_owned()),
        period_start: Set(start.timestamp_millis()),
        period_end: Set(end.timestamp_millis()),
        calls: Set(calls),
    })
    .exec_without_returning(&app.state.db)
    .await
    .unwrap();
}

async fn close(app: &TestApp, as_of: Option<DateTime<Utc>>) -> Value {
    let data = app
        .graphql_as_admin(
            "mutation($at: DateTime) { adminCloseBillingPeriods(asOf: $at) { invoicesCreated totalCents } }",
            json!({ "at": as_of.map(|t| t.to_rfc3339()) }),
        )
        .await;
    data["adminCloseBillingPeriods"].clone()
}

/// The invoice stored for an account; panics when there is none.
async fn stored_invoice(app: &TestApp, account_id: &str) -> invoice::Model {
    invoice::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.account_id == account_id)
        .expect("an invoice")
}

async fn invoices_of(app: &TestApp, email: &str) -> Vec<Value> {
    let token = app.login(email).await;
    let data = app
        .graphql_ok(
            Some(&token),
            &format!("{{ invoices {{ {INVOICE_FIELDS} }} }}"),
            json!({}),
        )
        .await;
    data["invoices"].as_array().unwrap().clone()
}

#[tokio::test]
async fn pro_over_its_quota_bills_the_overage_to_the_cent() {
    let app = TestApp::new().await;
    let account = app.sign_up("pro@example.com").await.account_id;
    app.set_plan(&account, "PRO").await;
    november_calls(&app, &account, 100_500).await;
    app.clock.set(utc(2026, 12, 1) + chrono::Duration::hours(1));
    close(&app, None).await;
    let invoices = invoices_of(&app, "pro@example.com").await;
    assert_eq!(
        invoices,
        vec![json!({
            // The account was created on 10 November at noon: its first invoice starts then.
            "periodStart": "2026-11-10T12:00:00+00:00", "periodEnd": "2026-12-01T00:00:00+00:00",
            "plan": "PRO", "calls": 100500, "includedCalls": 100000, "overageCalls": 500,
            "baseCents": 2900, "overageCents": 50, "totalCents": 2950
        })]
    );
}

#[tokio::test]
async fn half_a_cent_of_overage_rounds_up_once_per_invoice() {
    let app = TestApp::new().await;
    let account = app.sign_up("half@example.com").await.account_id;
    app.set_plan(&account, "PRO").await;
    // 5 overage calls × 1,000 micros = 5,000 micros = 0.5 cent → 1 cent.
    november_calls(&app, &account, 100_005).await;
    app.clock.set(utc(2026, 12, 2));
    close(&app, None).await;
    let invoice = &invoices_of(&app, "half@example.com").await[0];
    assert_eq!(
        (
            invoice["overageCalls"].as_i64(),
            invoice["overageCents"].as_i64()
        ),
        (Some(5), Some(1))
    );
    assert_eq!(invoice["totalCents"], 2901);
}

#[tokio::test]
async fn free_accounts_get_zero_invoices_and_enterprise_has_no_overage() {
    let app = TestApp::new().await;
    app.sign_up("free@example.com").await;
    let enterprise = app.sign_up("big@example.com").await.account_id;
    app.set_plan(&enterprise, "ENTERPRISE").await;
    november_calls(&app, &enterprise, 5_000_000).await;
    app.clock.set(utc(2026, 12, 2));
    close(&app, None).await;

    let free = invoices_of(&app, "free@example.com").await;
    assert_eq!(free.len(), 1, "a period without calls is invoiced too");
    assert_eq!(
        (
            free[0]["plan"].as_str(),
            free[0]["calls"].as_i64(),
            free[0]["includedCalls"].as_i64(),
            free[0]["totalCents"].as_i64()
        ),
        (Some("FREE"), Some(0), Some(1000), Some(0))
    );
    let big = &invoices_of(&app, "big@example.com").await[0];
    assert_eq!(big["plan"], "ENTERPRISE");
    assert_eq!(big["includedCalls"], Value::Null);
    assert_eq!(
        (big["overageCalls"].as_i64(), big["totalCents"].as_i64()),
        (Some(0), Some(29_900))
    );
}

#[tokio::test]
async fn the_plan_in_force_at_the_periods_end_is_billed_however_late_the_run() {
    let app = TestApp::new().await;
    let account = app.sign_up("switch@example.com").await.account_id;
    november_calls(&app, &account, 1_200).await;
    // Upgraded mid-November: November is billed on PRO.
    app.clock.set(utc(2026, 11, 20));
    app.set_plan(&account, "PRO").await;
    // Moved to ENTERPRISE after November ended but before the (late) billing run.
    app.clock.set(utc(2026, 12, 1) + chrono::Duration::hours(2));
    app.set_plan(&account, "ENTERPRISE").await;
    app.clock.set(utc(2026, 12, 3));
    close(&app, Some(utc(2026, 12, 2))).await;
    let invoice = &invoices_of(&app, "switch@example.com").await[0];
    assert_eq!(invoice["plan"], "PRO");
    assert_eq!(
        (invoice["calls"].as_i64(), invoice["overageCalls"].as_i64()),
        (Some(1_200), Some(0))
    );
    assert_eq!(invoice["totalCents"], 2_900);
}

#[tokio::test]
async fn repeated_runs_create_each_invoice_once() {
    let app = TestApp::new().await;
    let account = app.sign_up("repeat@example.com").await.account_id;
    november_calls(&app, &account, 10).await;
    app.clock.set(utc(2026, 12, 2));
    let first = close(&app, None).await;
    assert!(first["invoicesCreated"].as_i64().unwrap() >= 1);
    let second = close(&app, None).await;
    assert_eq!(second, json!({ "invoicesCreated": 0, "totalCents": 0 }));
    assert_eq!(invoices_of(&app, "repeat@example.com").await.len(), 1);
    // The next period starts from zero: nothing of December is billed before it ends.
    app.clock.set(utc(2026, 12, 31));
    assert_eq!(close(&app, None).await["invoicesCreated"], 0);
}

#[tokio::test]
async fn eight_concurrent_runs_create_exactly_one_invoice_per_account_and_period() {
    let app = TestApp::new().await;
    for i in 0..5 {
        let account = app.sign_up(&format!("c{i}@example.com")).await.account_id;
        november_calls(&app, &account, 100 * i).await;
    }
    app.clock.set(utc(2026, 12, 2));
    let now = app.clock.now();
    let runs = futures::future::join_all((0..8).map(|_| {
        let db = app.state.db.clone();
        async move {
            tally::domain::billing::close::close_ended_periods(&db, now, now)
                .await
                .unwrap()
        }
    }))
    .await;
    let created: i64 = runs.iter().map(|r| r.invoices_created).sum();
    let stored = invoice::Entity::find().count(&app.state.db).await.unwrap() as i64;
    assert_eq!(created, stored, "every invoice counted by exactly one run");
    // Five member accounts, one November period each (plus nothing else: no admin account yet).
    assert_eq!(stored, 5);
}

#[tokio::test]
async fn billing_is_admin_only_and_invoices_are_private() {
    let app = TestApp::new().await;
    let member = app.sign_up("member@example.com").await.token;
    let other_account = app.sign_up("other@example.com").await.account_id;
    let forbidden = app
        .graphql_error_code(
            Some(&member),
            "mutation { adminCloseBillingPeriods { invoicesCreated } }",
        )
        .await;
    assert_eq!(forbidden, "FORBIDDEN");

    app.clock.set(utc(2026, 12, 2));
    close(&app, None).await;
    let member = app.login("member@example.com").await;
    let peek = app
        .graphql(
            Some(&member),
            "query($a: ID) { invoices(accountId: $a) { totalCents } }",
            json!({ "a": other_account }),
        )
        .await;
    assert_eq!(error_code(&peek), "NOT_FOUND");
    let admin = app.admin_token().await;
    let seen = app
        .graphql_ok(
            Some(&admin),
            "query($a: ID) { invoices(accountId: $a) { plan } }",
            json!({ "a": other_account }),
        )
        .await;
    assert_eq!(seen["invoices"], json!([{ "plan": "FREE" }]));
}

#[tokio::test]
async fn a_run_as_of_the_future_is_refused() {
    let app = TestApp::new().await;
    let admin = app.admin_token().await;
    let body = app.graphql_error_code(Some(&admin), "mutation { adminCloseBillingPeriods(asOf: \"2099-01-01T00:00:00Z\") { invoicesCreated } }").await;
    assert_eq!(body, "BAD_USER_INPUT");
    assert_eq!(
        invoice::Entity::find().count(&app.state.db).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn tracked_calls_are_invoiced_and_a_closed_period_refuses_late_events() {
    use axum::http::StatusCode;
    use common::ingest::{rfc3339, track_body};

    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    app.set_plan(&m.account_id, "PRO").await;
    for i in 0..3 {
        let response = app.track_now_with_id(&m.key, &format!("nov-{i}")).await;
        assert_eq!(response.status, StatusCode::OK);
    }
    app.clock.set(utc(2026, 12, 1) + chrono::Duration::hours(1));
    close(&app, None).await;
    let november = stored_invoice(&app, &m.account_id).await;
    assert_eq!((november.calls, november.total_cents), (3, 2_900));

    // A late report dated in November is refused, never moved into December.
    let late = track_body(
        &rfc3339(utc(2026, 11, 30) + chrono::Duration::hours(23)),
        Some("late"),
    );
    let refused = app.track(&m.key, &late).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json(),
        json!({ "error": "Invalid payload", "code": "INVALID_PAYLOAD", "details": { "ts": ["billing period closed"] } })
    );
    let batch = json!({ "events": [
        { "endpoint": "/a", "method": "GET", "status_code": 200, "response_time_ms": 5, "ts": app.now_rfc3339() },
        { "endpoint": "/a", "method": "GET", "status_code": 200, "response_time_ms": 5, "ts": "2026-11-29T10:00:00Z" },
    ] });
    let refused_batch = app.post_json("/api/v1/events", Some(&m.key), &batch).await;
    assert_eq!(refused_batch.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused_batch.json()["details"],
        json!({ "events[1].ts": ["billing period closed"] })
    );
    assert_eq!(
        app.stored_events(&m.account_id).await,
        3,
        "nothing of either request was stored"
    );

    // December starts from zero calls.
    let december = app.track_now_with_id(&m.key, "dec-1").await;
    assert_eq!(december.status, StatusCode::OK);
    assert_eq!(december.header("x-ratelimit-remaining"), Some("99999"));
}

#[tokio::test]
async fn an_account_created_today_is_not_billed_for_last_month_on_its_new_plan() {
    let app = TestApp::new().await;
    // Created today (10 November) on FREE; calls dated in October, before the account existed,
    // were once accepted and opened an October period.
    let account = app.sign_up("today@example.com").await.account_id;
    month_calls(&app, &account, utc(2026, 10, 1), utc(2026, 11, 1), 40).await;
    app.set_plan(&account, "ENTERPRISE").await;

    let run = close(&app, None).await;
    assert_eq!(run, json!({ "invoicesCreated": 0, "totalCents": 0 }));
    assert_eq!(
        invoices_of(&app, "today@example.com").await,
        Vec::<Value>::new()
    );

    // November is billed from the moment the account was created, on the plan at its end.
    app.clock.set(utc(2026, 12, 1) + chrono::Duration::hours(1));
    close(&app, None).await;
    let invoices = invoices_of(&app, "today@example.com").await;
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    assert_eq!(
        (
            invoices[0]["periodStart"].as_str(),
            invoices[0]["plan"].as_str(),
            invoices[0]["totalCents"].as_i64()
        ),
        (
            Some("2026-11-10T12:00:00+00:00"),
            Some("ENTERPRISE"),
            Some(29_900)
        )
    );
}

#[tokio::test]
async fn a_period_that_ended_on_free_is_billed_as_free_after_an_upgrade() {
    let app = TestApp::new().await;
    app.clock
        .set(utc(2026, 10, 20) + chrono::Duration::hours(9));
    let account = app.sign_up("upgrader@example.com").await.account_id;
    // September lies wholly before the account; October's calls were made on FREE.
    month_calls(&app, &account, utc(2026, 9, 1), utc(2026, 10, 1), 7).await;
    month_calls(&app, &account, utc(2026, 10, 1), utc(2026, 11, 1), 3).await;
    app.clock.set(utc(2026, 11, 10));
    app.set_plan(&account, "ENTERPRISE").await;

    close(&app, None).await;
    assert_eq!(
        invoices_of(&app, "upgrader@example.com").await,
        vec![json!({
            "periodStart": "2026-10-20T09:00:00+00:00", "periodEnd": "2026-11-01T00:00:00+00:00",
            "plan": "FREE", "calls": 3, "includedCalls": 1000, "overageCalls": 0,
            "baseCents": 0, "overageCents": 0, "totalCents": 0
        })]
    );
}

#[tokio::test]
async fn before_its_first_plan_change_an_account_is_billed_on_the_plan_it_was_created_with() {
    let app = TestApp::new().await;
    // An account created directly on PRO (as `seed-demo` does), with no plan change recorded.
    let account = app.bare_account("direct", "PRO").await;
    november_calls(&app, &account, 10).await;
    app.clock.set(utc(2026, 12, 1) + chrono::Duration::hours(1));
    app.set_plan(&account, "ENTERPRISE").await;
    close(&app, Some(utc(2026, 12, 1))).await;
    let november = stored_invoice(&app, &account).await;
    assert_eq!(
        (november.plan_code.as_str(), november.total_cents),
        ("PRO", 2_900)
    );
}
