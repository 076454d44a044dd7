//! Billing periods the billing provider sets: whatever it says, every call lands in exactly one
//! period and is billed once, periods of one account never overlap, and an invoiced period stays
//! closed.

use crate::common;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, TimeZone, Utc};
use common::billing::{self, subscription_updated};
use common::ingest::{rfc3339, track_body, Member};
use common::{tables, TestApp};
use serde_json::json;
use tally::clock::Clock;
use tally::entity::invoice;

async fn app() -> TestApp {
    TestApp::with_config(billing::config()).await
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

const EMAIL: &str = "periods@example.com";

/// A member with a key, signed up as [`EMAIL`] (signed in again when its token would have
/// expired).
async fn member(app: &TestApp) -> Member {
    let (token, _, account_id) = app.sign_up(EMAIL).await;
    let (key, key_id) = app.create_key(&token, false).await;
    Member {
        token,
        account_id,
        key,
        key_id,
    }
}

/// A member on PRO with a quota of 10 calls and $1 per overage call, so that where each call is
/// billed shows in the invoices' totals.
async fn pro_member(app: &TestApp) -> Member {
    app.update_plan(
        "PRO",
        json!({ "monthlyQuota": 10, "overagePriceMicros": 1_000_000 }),
    )
    .await;
    let m = member(app).await;
    app.set_plan(&m.account_id, "PRO").await;
    m
}

/// Tracks one tool use dated `at`; the answer's status.
async fn track_at(app: &TestApp, key: &str, at: DateTime<Utc>, id: &str) -> StatusCode {
    app.track(key, &track_body(&rfc3339(at), Some(id)))
        .await
        .status
}

async fn set_period(
    app: &TestApp,
    id: &str,
    account_id: &str,
    period: (DateTime<Utc>, DateTime<Utc>),
    plan: Option<&str>,
) {
    let event = subscription_updated(id, app.clock.now(), account_id, period, plan);
    let response = app.billing_event(&event).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!({ "received": true }));
}

/// Runs a billing run as of now.
async fn close(app: &TestApp) {
    app.graphql_as_admin(
        "mutation { adminCloseBillingPeriods { invoicesCreated } }",
        json!({}),
    )
    .await;
}

/// The account's invoices, oldest first: (start, end, plan, calls, overage cents, total cents).
async fn invoices(
    app: &TestApp,
    account_id: &str,
) -> Vec<(DateTime<Utc>, DateTime<Utc>, String, i64, i64, i64)> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
    invoice::Entity::find()
        .filter(invoice::Column::AccountId.eq(account_id))
        .order_by_asc(invoice::Column::PeriodStart)
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|i| {
            (
                at(i.period_start),
                at(i.period_end),
                i.plan_code,
                i.calls,
                i.overage_cents,
                i.total_cents,
            )
        })
        .collect()
}

/// `currentUsage` as the account's member sees it: (start, end, calls).
async fn current_usage(app: &TestApp) -> (String, String, i64) {
    let token = app.login(EMAIL).await;
    let data = app
        .graphql_ok(
            Some(&token),
            "{ currentUsage { periodStart periodEnd calls } }",
            json!({}),
        )
        .await;
    let usage = &data["currentUsage"];
    (
        usage["periodStart"].as_str().unwrap().to_owned(),
        usage["periodEnd"].as_str().unwrap().to_owned(),
        usage["calls"].as_i64().unwrap(),
    )
}

/// The stored periods of an account (an empty range marks a start no period has any more):
/// none overlaps another, and their calls add up to `calls`.
async fn assert_periods_apart(app: &TestApp, account_id: &str, calls: i64) {
    let periods: Vec<_> = tables::periods(&app.state.db, account_id)
        .await
        .into_iter()
        .filter(|p| p.period_end > p.period_start)
        .collect();
    for pair in periods.windows(2) {
        assert!(
            pair[0].period_end <= pair[1].period_start,
            "overlapping periods: {periods:?}"
        );
    }
    assert_eq!(
        periods.iter().map(|p| p.calls).sum::<i64>(),
        calls,
        "{periods:?}"
    );
    assert_eq!(
        tables::counted_calls(&app.state.db, account_id).await,
        calls
    );
}

fn text(at: DateTime<Utc>) -> String {
    at.to_rfc3339()
}

#[tokio::test]
async fn an_invoiced_provider_period_refuses_late_events_without_a_renewal() {
    let app = app().await;
    let m = pro_member(&app).await;
    let t0 = app.clock.now();
    // A period of five seconds from now, and three calls in it.
    set_period(&app, "evt_p1", &m.account_id, (t0, t0 + secs(5)), None).await;
    for i in 0..3 {
        assert_eq!(
            track_at(&app, &m.key, t0 + secs(i), &format!("in-{i}")).await,
            StatusCode::OK
        );
    }
    app.clock.set(t0 + secs(6));
    close(&app).await;
    assert_eq!(
        invoices(&app, &m.account_id).await,
        vec![(t0, t0 + secs(5), "PRO".to_owned(), 3, 0, 2_900)]
    );

    // No renewal came; the period is closed all the same.
    let late = app
        .track(&m.key, &track_body(&rfc3339(t0 + secs(2)), Some("late")))
        .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        late.json(),
        json!({ "error": "Invalid payload", "code": "INVALID_PAYLOAD", "details": { "ts": ["billing period closed"] } })
    );
    let batch = json!({ "events": [
        { "endpoint": "/a", "method": "GET", "status_code": 200, "response_time_ms": 5, "ts": rfc3339(t0 + secs(4)) },
    ] });
    let refused = app.post_json("/api/v1/events", Some(&m.key), &batch).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json()["details"],
        json!({ "events[0].ts": ["billing period closed"] })
    );
    assert_periods_apart(&app, &m.account_id, 3).await;

    // Time after the provider's period follows the calendar again, from the period's end.
    assert_eq!(
        track_at(&app, &m.key, app.clock.now(), "after").await,
        StatusCode::OK
    );
    assert_eq!(
        current_usage(&app).await,
        (text(t0 + secs(5)), text(utc(2026, 12, 1, 0, 0)), 1)
    );
    assert_periods_apart(&app, &m.account_id, 4).await;
}
