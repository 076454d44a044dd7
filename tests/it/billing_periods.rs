//! Billing periods the billing provider sets: whatever it says, every call lands in exactly one
//! period and is billed once, periods of one account never overlap, and an invoiced period stays
//! closed.

use crate::common;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, TimeZone, Utc};
use common::billing::{self, subscription_deleted, subscription_updated};
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
    let common::SignedUp {
        token, account_id, ..
    } = app.sign_up(EMAIL).await;
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

#[tokio::test]
async fn calls_counted_before_a_provider_period_covers_them_move_into_it() {
    let app = app().await;
    let m = pro_member(&app).await;
    let created = app.clock.now();
    app.clock.advance(Duration::hours(3));
    let now = app.clock.now();
    // Four calls before the provider's period will start, fifteen in it.
    for i in 0..4 {
        let at = now - Duration::minutes(150) + secs(i);
        assert_eq!(
            track_at(&app, &m.key, at, &format!("before-{i}")).await,
            StatusCode::OK
        );
    }
    for i in 0..15 {
        let at = now - Duration::minutes(100) + Duration::minutes(i * 6);
        assert_eq!(
            track_at(&app, &m.key, at, &format!("in-{i}")).await,
            StatusCode::OK
        );
    }
    assert_eq!(current_usage(&app).await.2, 19);

    // The provider's period started two hours ago and ends in three seconds.
    let (start, end) = (now - Duration::hours(2), now + secs(3));
    set_period(&app, "evt_s1", &m.account_id, (start, end), Some("pro")).await;
    assert_eq!(current_usage(&app).await, (text(start), text(end), 15));
    // The key's own count of the period moved with them.
    let token = app.login(EMAIL).await;
    let keys = app
        .graphql_ok(Some(&token), "{ apiKeys { callsThisPeriod } }", json!({}))
        .await;
    assert_eq!(keys["apiKeys"], json!([{ "callsThisPeriod": 15 }]));
    // The quota gate counts from there: the next call is the 16th of the period.
    let next = app.track_now(&m.key).await;
    assert_eq!(next.status, StatusCode::OK);
    assert_eq!(next.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(
        next.header("x-ratelimit-reset"),
        Some(
            end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .as_str()
        )
    );
    assert_periods_apart(&app, &m.account_id, 20).await;

    app.clock.set(end + secs(1));
    close(&app).await;
    assert_eq!(
        invoices(&app, &m.account_id).await,
        vec![
            // From the account's creation to the provider's period: four calls, no overage.
            (created, start, "PRO".to_owned(), 4, 0, 2_900),
            // Sixteen calls, six over the quota of ten at $1.
            (start, end, "PRO".to_owned(), 16, 600, 3_500),
        ]
    );
    // The next period starts empty, where the invoiced one ended.
    assert_eq!(
        current_usage(&app).await,
        (text(end), text(utc(2026, 12, 1, 0, 0)), 0)
    );
    let late = app
        .track(
            &m.key,
            &track_body(&rfc3339(start + secs(60)), Some("late")),
        )
        .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert_periods_apart(&app, &m.account_id, 20).await;
}

#[tokio::test]
async fn a_provider_period_reaching_into_invoiced_time_starts_where_it_ends() {
    let app = app().await;
    let m = pro_member(&app).await;
    assert_eq!(
        track_at(&app, &m.key, app.clock.now(), "nov").await,
        StatusCode::OK
    );
    app.clock.set(utc(2026, 12, 1, 1, 0));
    close(&app).await;
    app.clock.set(utc(2026, 12, 3, 0, 0));
    assert_eq!(
        track_at(&app, &m.key, utc(2026, 12, 2, 0, 0), "dec").await,
        StatusCode::OK
    );

    // The provider says the period began on 25 November, which is invoiced: it begins on
    // 1 December, and December's call moves into it.
    let (start, end) = (utc(2026, 11, 25, 0, 0), utc(2026, 12, 25, 0, 0));
    set_period(&app, "evt_r1", &m.account_id, (start, end), None).await;
    assert_eq!(
        current_usage(&app).await,
        (text(utc(2026, 12, 1, 0, 0)), text(end), 1)
    );
    let late = app
        .track(&m.key, &track_body("2026-11-28T00:00:00Z", Some("late")))
        .await;
    assert_eq!(
        late.json()["details"],
        json!({ "ts": ["billing period closed"] })
    );

    app.clock.set(utc(2026, 12, 25, 1, 0));
    close(&app).await;
    let billed = invoices(&app, &m.account_id).await;
    assert_eq!(
        billed.iter().map(|i| (i.0, i.1, i.3)).collect::<Vec<_>>(),
        vec![
            (utc(2026, 11, 10, 12, 0), utc(2026, 12, 1, 0, 0), 1),
            (utc(2026, 12, 1, 0, 0), end, 1),
        ]
    );
    assert_periods_apart(&app, &m.account_id, 2).await;
}

#[tokio::test]
async fn a_renewal_keeps_the_ended_period_and_takes_the_calls_made_since() {
    let app = app().await;
    let m = pro_member(&app).await;
    let t0 = app.clock.now();
    let first = (t0, t0 + Duration::hours(1));
    set_period(&app, "evt_a", &m.account_id, first, None).await;
    assert_eq!(
        track_at(&app, &m.key, t0 + secs(10), "a1").await,
        StatusCode::OK
    );
    // The renewal arrives a minute late; a call in that minute counted after the first period.
    app.clock.set(first.1 + secs(60));
    assert_eq!(
        track_at(&app, &m.key, first.1 + secs(30), "b1").await,
        StatusCode::OK
    );
    let second = (first.1, first.1 + Duration::hours(1));
    set_period(&app, "evt_b", &m.account_id, second, None).await;
    assert_eq!(
        current_usage(&app).await,
        (text(second.0), text(second.1), 1)
    );
    // A late report from the first period still counts in it.
    assert_eq!(
        track_at(&app, &m.key, t0 + secs(20), "a2").await,
        StatusCode::OK
    );

    app.clock.set(second.1 + secs(1));
    close(&app).await;
    let billed = invoices(&app, &m.account_id).await;
    assert_eq!(
        billed.iter().map(|i| (i.0, i.1, i.3)).collect::<Vec<_>>(),
        vec![(first.0, first.1, 2), (second.0, second.1, 1)]
    );
    assert_periods_apart(&app, &m.account_id, 3).await;
}

#[tokio::test]
async fn cancelling_a_subscription_ends_its_period_when_the_cancellation_arrives() {
    let app = app().await;
    let m = pro_member(&app).await;
    let t0 = app.clock.now();
    set_period(
        &app,
        "evt_c1",
        &m.account_id,
        (t0, t0 + Duration::days(30)),
        None,
    )
    .await;
    for i in 0..3 {
        assert_eq!(
            track_at(&app, &m.key, t0 + secs(i), &format!("c{i}")).await,
            StatusCode::OK
        );
    }
    let cancelled_at = t0 + Duration::hours(2);
    app.clock.set(cancelled_at);
    let cancel = subscription_deleted("evt_c2", cancelled_at, &m.account_id);
    assert_eq!(app.billing_event(&cancel).await.status, StatusCode::OK);
    assert_eq!(app.plan_code(&app.login(EMAIL).await).await, "FREE");

    // FREE from now on, in a period of its own with its own quota.
    let after = app.track_now(&m.key).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.header("x-ratelimit-limit"), Some("1000"));
    assert_eq!(after.header("x-ratelimit-remaining"), Some("999"));
    assert_eq!(
        current_usage(&app).await,
        (text(cancelled_at), text(utc(2026, 12, 1, 0, 0)), 1)
    );

    app.clock.set(cancelled_at + secs(1));
    close(&app).await;
    // The period that ended with the cancellation is billed on the plan in force until then.
    assert_eq!(
        invoices(&app, &m.account_id).await,
        vec![(t0, cancelled_at, "PRO".to_owned(), 3, 0, 2_900)]
    );
    assert_periods_apart(&app, &m.account_id, 4).await;
}

#[tokio::test]
async fn a_blocking_quota_follows_the_calls_a_provider_period_moves() {
    let app = app().await;
    app.update_plan("FREE", json!({ "monthlyQuota": 5 })).await;
    let m = member(&app).await;
    let t0 = app.clock.now();
    app.clock.advance(Duration::hours(3));
    for (i, minutes) in [30, 31, 32, 150, 151].into_iter().enumerate() {
        let at = t0 + Duration::minutes(minutes);
        assert_eq!(
            track_at(&app, &m.key, at, &format!("f{i}")).await,
            StatusCode::OK
        );
    }
    // The month's five calls are spent.
    assert_eq!(
        app.track_now(&m.key).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // A provider period from two hours after the account's creation takes the last two.
    let start = t0 + Duration::hours(2);
    set_period(
        &app,
        "evt_f",
        &m.account_id,
        (start, start + Duration::days(30)),
        None,
    )
    .await;
    for i in 0..3 {
        let response = app.track_now_with_id(&m.key, &format!("new-{i}")).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "call {i} of the new period"
        );
    }
    assert_eq!(
        app.track_now(&m.key).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Before the provider's period, two calls are left.
    for i in 0..2 {
        let at = t0 + Duration::minutes(40 + i);
        assert_eq!(
            track_at(&app, &m.key, at, &format!("early-{i}")).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        track_at(&app, &m.key, t0 + Duration::minutes(50), "early-3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_periods_apart(&app, &m.account_id, 10).await;
}

#[tokio::test]
async fn calls_written_under_the_period_they_had_before_a_change_land_in_the_new_one() {
    use tally::domain::periods::BillingPeriod;
    use tally::domain::recorder::{EventKind, NewEvent};
    let app = app().await;
    let m = pro_member(&app).await;
    let t0 = app.clock.now();
    app.clock.advance(Duration::hours(1));
    let old = BillingPeriod::calendar_month(t0);
    let start = t0 + Duration::minutes(30);
    set_period(
        &app,
        "evt_m",
        &m.account_id,
        (start, start + Duration::days(30)),
        None,
    )
    .await;

    // Requests that took the old period from an instance that had not heard of the change yet,
    // written after it: each call lands in the period that now holds its time.
    let stale = |at: DateTime<Utc>, id: &str| NewEvent {
        event_id: Some(id.to_owned()),
        skill_id: Some("code-review".to_owned()),
        tool_name: Some("Read".to_owned()),
        period: Some(old),
        ..NewEvent::new(Some(m.account_id.clone()), EventKind::ToolCall, at)
    };
    let outcomes = app
        .state
        .ingestion
        .recorder
        .record(
            vec![
                stale(t0 + Duration::minutes(10), "s1"),
                stale(t0 + Duration::minutes(40), "s2"),
                stale(t0 + Duration::minutes(50), "s3"),
            ],
            Vec::new(),
            app.state.ingestion.deadline(),
        )
        .await
        .expect("recorded");
    assert_eq!(outcomes.len(), 3);
    assert_eq!(current_usage(&app).await.2, 2);
    assert_eq!(
        tables::period_calls(&app.state.db, &m.account_id, old.start_ms()).await,
        1
    );
    assert_periods_apart(&app, &m.account_id, 3).await;
}

#[tokio::test]
async fn a_blocking_quota_judged_on_a_period_that_no_longer_is_writes_nothing_and_answers_503() {
    use tally::domain::error::DomainError;
    use tally::domain::periods::BillingPeriod;
    use tally::domain::quota::{Allowance, Decision};
    use tally::domain::recorder::{EventKind, NewEvent, Unrecorded};
    let app = app().await;
    let m = member(&app).await;
    let t0 = app.clock.now();
    app.clock.advance(Duration::hours(1));
    // A FREE request in flight: its calls held in the calendar month, as the quota gate judged.
    let old = BillingPeriod::calendar_month(t0);
    let allowance = Allowance {
        limit: Some(1_000),
        blocks: true,
    };
    let Decision::Granted(reservation) = app
        .state
        .ingestion
        .quota
        .reserve(&app.state.db, &m.account_id, old, 1, allowance)
        .await
        .unwrap()
    else {
        panic!("the quota has room");
    };
    // Meanwhile the provider's period begins, half an hour ago.
    let start = t0 + Duration::minutes(30);
    set_period(
        &app,
        "evt_b",
        &m.account_id,
        (start, start + Duration::days(30)),
        None,
    )
    .await;

    let event = NewEvent {
        skill_id: Some("code-review".to_owned()),
        tool_name: Some("Read".to_owned()),
        period: Some(old),
        ..NewEvent::new(
            Some(m.account_id.clone()),
            EventKind::ToolCall,
            app.clock.now(),
        )
    };
    let answer = app
        .state
        .ingestion
        .recorder
        .record(
            vec![event],
            vec![reservation],
            app.state.ingestion.deadline(),
        )
        .await;
    assert!(
        matches!(answer, Err(Unrecorded::Failed(DomainError::Unavailable(_)))),
        "{answer:?}"
    );
    assert_eq!(app.stored_events(&m.account_id).await, 0);
    // Its retry is judged on the new period.
    assert_eq!(app.track_now(&m.key).await.status, StatusCode::OK);
    assert_eq!(
        current_usage(&app).await,
        (text(start), text(start + Duration::days(30)), 1)
    );
    assert_periods_apart(&app, &m.account_id, 1).await;
}

#[tokio::test]
async fn a_provider_period_never_reaches_into_invoiced_time_nor_begins_after_now() {
    let app = app().await;
    let m = pro_member(&app).await;
    assert_eq!(
        track_at(&app, &m.key, app.clock.now(), "nov").await,
        StatusCode::OK
    );
    let december = utc(2026, 12, 1, 0, 0);
    app.clock.set(december + Duration::hours(1));
    close(&app).await;

    // Wholly in invoiced time: the plan changes, the periods do not.
    let invoiced = (utc(2026, 11, 12, 0, 0), utc(2026, 11, 20, 0, 0));
    set_period(&app, "evt_i", &m.account_id, invoiced, Some("enterprise")).await;
    assert_eq!(app.plan_code(&app.login(EMAIL).await).await, "ENTERPRISE");
    assert_eq!(
        current_usage(&app).await,
        (text(december), text(utc(2027, 1, 1, 0, 0)), 0)
    );

    // Said to begin in four days: it begins now, and the time before now stays December's.
    let now = app.clock.now();
    let later = (utc(2026, 12, 5, 0, 0), utc(2027, 1, 5, 0, 0));
    set_period(&app, "evt_l", &m.account_id, later, None).await;
    assert_eq!(current_usage(&app).await, (text(now), text(later.1), 0));
    assert_eq!(
        track_at(&app, &m.key, december + secs(60), "early").await,
        StatusCode::OK
    );
    assert_eq!(track_at(&app, &m.key, now, "now").await, StatusCode::OK);
    assert_eq!(current_usage(&app).await.2, 1);
    assert_eq!(
        tables::period_calls(&app.state.db, &m.account_id, december.timestamp_millis()).await,
        1
    );
    assert_periods_apart(&app, &m.account_id, 3).await;
}

#[tokio::test]
async fn a_billing_run_during_a_change_of_period_bills_the_periods_as_they_end_up() {
    use sea_orm::{EntityTrait, QuerySelect, TransactionTrait};
    use tally::domain::billing::close::close_ended_periods;
    use tally::domain::periods::placement::{place, ProviderPeriod};
    use tally::domain::periods::BillingPeriod;
    use tally::entity::account;
    let app = app().await;
    let m = pro_member(&app).await;
    app.clock.set(utc(2026, 11, 20, 0, 0));
    assert_eq!(
        track_at(&app, &m.key, app.clock.now(), "nov").await,
        StatusCode::OK
    );
    let now = utc(2026, 12, 3, 0, 0);
    app.clock.set(now);

    // A provider period from 25 November is being taken (its transaction not yet committed)
    // when a billing run starts.
    let txn = app.state.db.begin().await.unwrap();
    let row = account::Entity::find_by_id(m.account_id.clone())
        .lock_exclusive()
        .one(&txn)
        .await
        .unwrap()
        .unwrap();
    let provider = BillingPeriod {
        start: utc(2026, 11, 25, 0, 0),
        end: utc(2026, 12, 25, 0, 0),
    };
    let placed = place(&txn, &row, ProviderPeriod::Set(provider), now)
        .await
        .unwrap();
    assert_eq!(placed, Some(provider));
    let db = app.state.db.clone();
    let run = tokio::spawn(async move { close_ended_periods(&db, now, now).await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut row: account::ActiveModel = row.into();
    row.billing_period_start = sea_orm::Set(Some(provider.start));
    row.billing_period_end = sea_orm::Set(Some(provider.end));
    sea_orm::ActiveModelTrait::update(row, &txn).await.unwrap();
    txn.commit().await.unwrap();
    run.await.unwrap().unwrap();

    // November up to the provider's period, not the whole month the run would have seen.
    let billed = invoices(&app, &m.account_id).await;
    assert_eq!(
        billed.iter().map(|i| (i.0, i.1, i.3)).collect::<Vec<_>>(),
        vec![(utc(2026, 11, 10, 12, 0), provider.start, 1)]
    );
}
