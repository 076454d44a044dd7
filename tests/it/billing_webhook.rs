//! `POST /api/webhooks/billing`: Stripe-compatible signatures, plan and period changes, each event
//! applied once and never over a newer one.

use crate::common;

use axum::http::StatusCode;
use chrono::{Duration, TimeZone, Utc};
use common::{TestApp, TestResponse};
use hmac::{Hmac, Mac};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};
use sha2::Sha256;
use tally::clock::Clock;
use tally::config::Config;
use tally::entity::{account, account_plan_change, billing_webhook_event};

const SECRET: &str = "whsec_test_secret";
const PATH: &str = "/api/webhooks/billing";

async fn app() -> TestApp {
    TestApp::with_config(Config {
        billing_webhook_secret: Some(SECRET.to_owned()),
        ..Config::default()
    })
    .await
}

fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn post_signed(app: &TestApp, header: &str, body: &[u8]) -> TestResponse {
    app.post_raw(
        PATH,
        None,
        &[
            ("content-type", "application/json"),
            ("stripe-signature", header),
        ],
        body.to_vec(),
    )
    .await
}

/// A `stripe-signature` header with one signature of `body` at `t`.
fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", sign(secret, t, body))
}

/// Sends `body` signed now with the configured secret.
async fn send_raw(app: &TestApp, body: &[u8]) -> TestResponse {
    let t = now_secs(app);
    post_signed(app, &signature_header(SECRET, t, body), body).await
}

async fn send(app: &TestApp, event: &Value) -> TestResponse {
    send_raw(app, &serde_json::to_vec(event).unwrap()).await
}

fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({ "id": id, "object": "event", "type": kind, "created": created, "data": { "object": object } })
}

fn checkout(id: &str, created: i64, account_id: &str, plan: &str, customer: &str) -> Value {
    event(
        id,
        "checkout.session.completed",
        created,
        json!({ "object": "checkout.session", "customer": customer,
                "metadata": { "account_id": account_id, "plan": plan } }),
    )
}

/// The bytes of a checkout to PRO created now, as the provider would send them.
fn pro_checkout_body(app: &TestApp, id: &str, account_id: &str, customer: &str) -> Vec<u8> {
    serde_json::to_vec(&checkout(id, now_secs(app), account_id, "pro", customer)).unwrap()
}

fn deleted(id: &str, created: i64, metadata: Value, customer: &str) -> Value {
    event(
        id,
        "customer.subscription.deleted",
        created,
        json!({ "object": "subscription", "customer": customer, "status": "canceled", "metadata": metadata }),
    )
}

async fn account_row(app: &TestApp, id: &str) -> account::Model {
    account::Entity::find_by_id(id.to_owned())
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("account exists")
}

async fn plan_changes(app: &TestApp, id: &str) -> u64 {
    account_plan_change::Entity::find()
        .filter(account_plan_change::Column::AccountId.eq(id))
        .count(&app.state.db)
        .await
        .unwrap()
}

fn now_secs(app: &TestApp) -> i64 {
    app.clock.now().timestamp()
}

fn received() -> Value {
    json!({ "received": true })
}

#[tokio::test]
async fn checkout_moves_the_account_to_pro_and_remembers_the_customer() {
    let app = app().await;
    let common::SignedUp {
        token, account_id, ..
    } = app.sign_up("buyer@example.com").await;
    assert_eq!(app.plan_code(&token).await, "FREE");

    let response = send(
        &app,
        &checkout("evt_1", now_secs(&app), &account_id, "pro", "cus_1"),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), received());

    assert_eq!(app.plan_code(&token).await, "PRO");
    let row = account_row(&app, &account_id).await;
    assert_eq!(row.plan_code, "PRO");
    assert_eq!(row.billing_customer_id.as_deref(), Some("cus_1"));
    assert_eq!(row.billing_event_created_at, Some(now_secs(&app)));
    // The change is recorded with its time, for billing.
    assert_eq!(plan_changes(&app, &account_id).await, 2);
}

#[tokio::test]
async fn the_next_key_lookup_sees_the_new_plan() {
    let app = app().await;
    let common::SignedUp {
        token, account_id, ..
    } = app.sign_up("cache@example.com").await;
    let (key, _) = app.create_key(&token, false).await;
    assert_eq!(app.resolve_key(&key).await.plan.code, "FREE");

    let response = send(
        &app,
        &checkout("evt_c", now_secs(&app), &account_id, "enterprise", "cus_c"),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);

    assert_eq!(app.resolve_key(&key).await.plan.code, "ENTERPRISE");
}

#[tokio::test]
async fn a_repeated_event_id_answers_duplicate_and_changes_nothing() {
    let app = app().await;
    let common::SignedUp {
        token, account_id, ..
    } = app.sign_up("dup@example.com").await;
    let first = checkout("evt_dup", now_secs(&app), &account_id, "pro", "cus_dup");
    assert_eq!(send(&app, &first).await.json(), received());

    // An admin moves the account back; a redelivery of the old event must not undo that.
    tally::domain::accounts::set_plan(
        &app.state.db,
        &account_id,
        tally::domain::plans::PlanCode::Free,
        app.clock.now(),
    )
    .await
    .unwrap();
    let changes = plan_changes(&app, &account_id).await;

    app.clock.advance(Duration::seconds(30));
    let again = send(&app, &first).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json(), json!({ "received": true, "duplicate": true }));
    assert_eq!(app.plan_code(&token).await, "FREE");
    assert_eq!(plan_changes(&app, &account_id).await, changes);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_apply_it_once() {
    let app = app().await;
    let account_id = app.sign_up("race@example.com").await.account_id;
    let body = pro_checkout_body(&app, "evt_race", &account_id, "cus_race");
    let responses = futures::future::join_all((0..8).map(|_| send_raw(&app, &body))).await;
    let mut applied = 0;
    for response in &responses {
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.json());
        if response.json().get("duplicate").is_none() {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(plan_changes(&app, &account_id).await, 2);
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_refused_and_changes_nothing() {
    let app = app().await;
    let account_id = app.sign_up("sig@example.com").await.account_id;
    let body = pro_checkout_body(&app, "evt_sig", &account_id, "cus");
    let t = now_secs(&app);

    let wrong_secret = signature_header("whsec_other", t, &body);
    let response = post_signed(&app, &wrong_secret, &body).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json(),
        json!({ "error": "Invalid signature", "code": "INVALID_SIGNATURE" })
    );

    let other_body = signature_header(SECRET, t, b"{}");
    assert_eq!(
        post_signed(&app, &other_body, &body).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post_signed(&app, "garbage", &body).await.status,
        StatusCode::BAD_REQUEST
    );
    let missing = app
        .post_raw(
            PATH,
            None,
            &[("content-type", "application/json")],
            body.clone(),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.json(),
        json!({ "error": "Invalid signature", "code": "INVALID_SIGNATURE" })
    );

    assert_eq!(account_row(&app, &account_id).await.plan_code, "FREE");
}

#[tokio::test]
async fn a_signature_older_than_five_minutes_is_refused() {
    let app = app().await;
    let account_id = app.sign_up("stale@example.com").await.account_id;
    let body = pro_checkout_body(&app, "evt_old", &account_id, "cus");
    let header = signature_header(SECRET, now_secs(&app), &body);

    app.clock.advance(Duration::seconds(301));
    let response = post_signed(&app, &header, &body).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json(),
        json!({ "error": "Invalid signature", "code": "INVALID_SIGNATURE" })
    );
    assert_eq!(account_row(&app, &account_id).await.plan_code, "FREE");

    // Within the tolerance the same delivery is accepted.
    app.clock.advance(Duration::seconds(-2));
    assert_eq!(
        post_signed(&app, &header, &body).await.status,
        StatusCode::OK
    );
    assert_eq!(account_row(&app, &account_id).await.plan_code, "PRO");
}

#[tokio::test]
async fn any_matching_v1_signature_is_enough() {
    let app = app().await;
    let account_id = app.sign_up("roll@example.com").await.account_id;
    let body = pro_checkout_body(&app, "evt_roll", &account_id, "cus");
    let t = now_secs(&app);
    let header = format!(
        "t={t},v1={},v1={}",
        sign("whsec_retired", t, &body),
        sign(SECRET, t, &body)
    );
    let response = post_signed(&app, &header, &body).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(account_row(&app, &account_id).await.plan_code, "PRO");
}

#[tokio::test]
async fn other_event_types_are_acknowledged_and_ignored() {
    let app = app().await;
    let account_id = app.sign_up("other@example.com").await.account_id;
    let response = send(
        &app,
        &event(
            "evt_inv",
            "invoice.paid",
            now_secs(&app),
            json!({ "customer": "cus", "metadata": { "account_id": account_id, "plan": "pro" } }),
        ),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), received());
    assert_eq!(account_row(&app, &account_id).await.plan_code, "FREE");
}

#[tokio::test]
async fn an_older_event_delivered_late_does_not_undo_a_newer_one() {
    let app = app().await;
    let common::SignedUp {
        token, account_id, ..
    } = app.sign_up("order@example.com").await;
    let t0 = now_secs(&app);

    // The cancellation (newer) arrives before the checkout (older).
    let cancel = deleted(
        "evt_del",
        t0 + 100,
        json!({ "account_id": account_id }),
        "cus_o",
    );
    assert_eq!(send(&app, &cancel).await.json(), received());
    let late = checkout("evt_co", t0 + 50, &account_id, "pro", "cus_o");
    let response = send(&app, &late).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), received());
    assert_eq!(app.plan_code(&token).await, "FREE");
    let row = account_row(&app, &account_id).await;
    assert_eq!(row.billing_event_created_at, Some(t0 + 100));
    // Answered once, it stays answered.
    assert_eq!(
        send(&app, &late).await.json(),
        json!({ "received": true, "duplicate": true })
    );
}

#[tokio::test]
async fn events_in_order_are_all_applied() {
    let app = app().await;
    let common::SignedUp {
        token, account_id, ..
    } = app.sign_up("inorder@example.com").await;
    let t0 = now_secs(&app);
    send(&app, &checkout("evt_a", t0, &account_id, "pro", "cus_i")).await;
    assert_eq!(app.plan_code(&token).await, "PRO");
    let cancel = deleted(
        "evt_b",
        t0 + 100,
        json!({ "account_id": account_id }),
        "cus_i",
    );
    assert_eq!(send(&app, &cancel).await.json(), received());
    assert_eq!(app.plan_code(&token).await, "FREE");

    // And a newer checkout after an older cancellation wins, while the reverse does not.
    let newer = checkout("evt_c", t0 + 200, &account_id, "enterprise", "cus_i");
    send(&app, &newer).await;
    let older_cancel = deleted(
        "evt_d",
        t0 + 150,
        json!({ "account_id": account_id }),
        "cus_i",
    );
    assert_eq!(send(&app, &older_cancel).await.status, StatusCode::OK);
    assert_eq!(app.plan_code(&token).await, "ENTERPRISE");
}

#[tokio::test]
async fn subscription_updates_set_the_billing_period_and_plan() {
    let app = app().await;
    let common::SignedUp {
        token, account_id, ..
    } = app.sign_up("period@example.com").await;
    let start = Utc.with_ymd_and_hms(2026, 11, 3, 0, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2026, 12, 3, 0, 0, 0).unwrap();
    let update = event(
        "evt_upd",
        "customer.subscription.updated",
        now_secs(&app),
        json!({ "object": "subscription", "customer": "cus_p", "status": "active",
                "current_period_start": start.timestamp(), "current_period_end": end.timestamp(),
                "metadata": { "account_id": account_id, "plan": "enterprise" } }),
    );
    let response = send(&app, &update).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), received());

    assert_eq!(app.plan_code(&token).await, "ENTERPRISE");
    let row = account_row(&app, &account_id).await;
    assert_eq!(row.billing_period_start, Some(start));
    assert_eq!(row.billing_period_end, Some(end));
    assert_eq!(row.billing_customer_id.as_deref(), Some("cus_p"));

    // At the renewal, without metadata.plan, only the period moves.
    app.clock.set(end);
    let next_end = Utc.with_ymd_and_hms(2027, 1, 3, 0, 0, 0).unwrap();
    let renewal = event(
        "evt_upd2",
        "customer.subscription.updated",
        now_secs(&app) + 1,
        json!({ "customer": "cus_p", "current_period_start": end.timestamp(),
                "current_period_end": next_end.timestamp(), "metadata": {} }),
    );
    assert_eq!(send(&app, &renewal).await.status, StatusCode::OK);
    let row = account_row(&app, &account_id).await;
    assert_eq!(row.plan_code, "ENTERPRISE");
    assert_eq!(row.billing_period_start, Some(end));
    assert_eq!(row.billing_period_end, Some(next_end));
}

#[tokio::test]
async fn events_without_account_id_find_the_account_by_customer() {
    let app = app().await;
    let common::SignedUp {
        token, account_id, ..
    } = app.sign_up("customer@example.com").await;
    let t0 = now_secs(&app);
    send(
        &app,
        &checkout("evt_1", t0, &account_id, "pro", "cus_known"),
    )
    .await;
    assert_eq!(app.plan_code(&token).await, "PRO");

    let cancel = deleted("evt_2", t0 + 10, json!({}), "cus_known");
    assert_eq!(send(&app, &cancel).await.json(), received());
    assert_eq!(app.plan_code(&token).await, "FREE");
    let row = account_row(&app, &account_id).await;
    assert_eq!(row.billing_period_start, None);
}

#[tokio::test]
async fn events_for_unknown_accounts_or_customers_change_nothing() {
    let app = app().await;
    let account_id = app.sign_up("unknown@example.com").await.account_id;
    let t0 = now_secs(&app);
    let response = send(
        &app,
        &checkout(
            "evt_u1",
            t0,
            "00000000-0000-0000-0000-000000000000",
            "pro",
            "cus_u",
        ),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), received());

    let response = send(&app, &deleted("evt_u2", t0, json!({}), "cus_nobody")).await;
    assert_eq!(response.status, StatusCode::OK);

    let row = account_row(&app, &account_id).await;
    assert_eq!(row.plan_code, "FREE");
    assert_eq!(row.billing_customer_id, None);
    let accounts_on_pro = account::Entity::find()
        .filter(account::Column::PlanCode.ne("FREE"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(accounts_on_pro, 0);
}

/// The value of `tally_billing_events_ignored_total` for `reason` in `/metrics`, 0 when absent.
async fn ignored_events(app: &TestApp, reason: &str) -> u64 {
    let text = String::from_utf8(app.get("/metrics").await.body).unwrap();
    let series = format!("tally_billing_events_ignored_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .map(|value| value.trim().parse().unwrap())
        .unwrap_or(0)
}

#[tokio::test]
async fn events_tally_cannot_place_answer_200_and_are_counted_by_reason() {
    let app = app().await;
    let common::SignedUp {
        token, account_id, ..
    } = app.sign_up("unplaced@example.com").await;
    let t = now_secs(&app);
    let checkout_with = |id: &str, metadata: Value| {
        event(
            id,
            "checkout.session.completed",
            t,
            json!({ "customer": "cus_unplaced", "metadata": metadata }),
        )
    };
    let subscription_with =
        |id: &str, object: Value| event(id, "customer.subscription.updated", t, object);
    let cases = [
        // The account named in a field Tally does not read, with a plan it does not know.
        (
            checkout_with("evt_x1", json!({ "userId": account_id, "tier": "paid" })),
            "no_account",
        ),
        (
            subscription_with("evt_x2", json!({ "status": "active", "metadata": {} })),
            "no_account",
        ),
        (
            checkout_with(
                "evt_x3",
                json!({ "account_id": account_id, "tier": "paid" }),
            ),
            "no_plan",
        ),
        (
            checkout_with(
                "evt_x4",
                json!({ "account_id": account_id, "plan": "gold" }),
            ),
            "unknown_plan",
        ),
        (
            subscription_with(
                "evt_x5",
                json!({ "customer": "cus_unplaced", "metadata": { "account_id": account_id, "plan": "paid" } }),
            ),
            "unknown_plan",
        ),
        (
            deleted("evt_x6", t, json!({}), "cus_nobody_knows"),
            "unknown_account",
        ),
        (
            event(
                "evt_x7",
                "invoice.paid",
                t,
                json!({ "customer": "cus_unplaced" }),
            ),
            "unhandled_type",
        ),
    ];
    for (event, reason) in &cases {
        let before = ignored_events(&app, reason).await;
        let response = send(&app, event).await;
        assert_eq!(response.status, StatusCode::OK, "{event}");
        assert_eq!(response.json(), received(), "{event}");
        assert_eq!(ignored_events(&app, reason).await, before + 1, "{event}");
    }
    assert_eq!(app.plan_code(&token).await, "FREE");
    assert_eq!(
        account_row(&app, &account_id).await.billing_customer_id,
        None
    );

    // An event older than the last one applied changes nothing either.
    send(
        &app,
        &checkout("evt_new", t + 10, &account_id, "pro", "cus_p"),
    )
    .await;
    let older = deleted("evt_old", t, json!({ "account_id": account_id }), "cus_p");
    assert_eq!(send(&app, &older).await.json(), received());
    assert_eq!(ignored_events(&app, "stale").await, 1);
    assert_eq!(app.plan_code(&token).await, "PRO");
}

#[tokio::test]
async fn a_signed_body_that_is_not_json_or_not_an_event_is_refused() {
    let app = app().await;
    let response = send_raw(&app, b"{not json").await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json(),
        json!({ "error": "Invalid JSON", "code": "INVALID_JSON" })
    );

    let response = send_raw(&app, &[0xff, 0xfe, b'{']).await;
    assert_eq!(
        response.json(),
        json!({ "error": "Invalid JSON", "code": "INVALID_JSON" })
    );

    let response = send(
        &app,
        &json!({ "id": "evt_x", "type": "checkout.session.completed" }),
    )
    .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    let body = response.json();
    assert_eq!(body["error"], "Invalid payload");
    assert!(body["details"]["created"].is_array(), "{body}");
    assert!(body["details"]["data.object"].is_array(), "{body}");
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused_with_413() {
    let app = app().await;
    let mut big = checkout("evt_big", now_secs(&app), "acct", "pro", "cus");
    big["data"]["object"]["padding"] = json!("x".repeat(65 * 1024));
    let response = send(&app, &big).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.json()["error"].is_string());
}

#[tokio::test]
async fn a_declared_length_over_64_kib_is_refused_without_waiting_for_the_body() {
    let app = app().await;
    let response = app.post_stalled(PATH, 65 * 1024, "{\"id\": \"evt_").await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.json(),
        json!({ "error": "Payload too large", "code": "PAYLOAD_TOO_LARGE" })
    );
}

#[tokio::test]
async fn without_a_secret_the_webhook_answers_503() {
    let app = TestApp::new().await;
    let response = send_raw(&app, b"{}").await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.json(),
        json!({ "error": "Billing webhook not configured", "code": "WEBHOOK_NOT_CONFIGURED" })
    );
}

#[tokio::test]
async fn a_database_failure_answers_5xx_so_the_provider_retries() {
    let app = app().await;
    let account_id = app.sign_up("down@example.com").await.account_id;
    app.state.db.close_by_ref().await.unwrap();
    let response = send(
        &app,
        &checkout("evt_down", now_secs(&app), &account_id, "pro", "cus"),
    )
    .await;
    assert!(response.status.is_server_error(), "{}", response.status);
    assert!(response.json()["error"].is_string());
}

#[tokio::test]
async fn applied_event_ids_are_kept_thirty_days() {
    let app = app().await;
    let account_id = app.sign_up("prune@example.com").await.account_id;
    send(
        &app,
        &checkout("evt_p", now_secs(&app), &account_id, "pro", "cus"),
    )
    .await;
    let stored = || async {
        billing_webhook_event::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap()
    };
    assert_eq!(stored().await, 1);

    let prune = |days: i64| {
        let at = app.clock.now() + Duration::days(days);
        let db = app.state.db.clone();
        async move {
            tally::domain::billing::webhook::prune_processed_events(&db, at)
                .await
                .unwrap()
        }
    };
    assert_eq!(prune(29).await, 0);
    assert_eq!(stored().await, 1);
    assert_eq!(prune(31).await, 1);
    assert_eq!(stored().await, 0);
}
