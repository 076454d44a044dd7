//! `POST /api/install-callback` and `GET /metrics`.

use crate::common;

use axum::http::StatusCode;
use common::tables;
use common::TestApp;
use serde_json::json;
use tally::clock::Clock;
use tally::config::Config;
use tally::domain::error::DomainError;
use tally::domain::recorder::{EventKind, NewEvent, Outcome, Unrecorded};

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
    let stored = tables::anonymous_events(&app.state.db)
        .await
        .iter()
        .filter(|e| {
            e.kind == "INSTALL"
                && e.tool_name.as_deref() == Some("install_confirmed")
                && e.metadata
                    .as_ref()
                    .is_some_and(|m| m.contains("install-script"))
        })
        .count();
    assert_eq!(stored, 1);
    // An empty body is an install with nothing more to say; an invalid key is ignored.
    let empty = app
        .post_raw("/api/install-callback", Some("tly_nope"), &[], Vec::new())
        .await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(tables::anonymous_events(&app.state.db).await.len(), 2);
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
        .tool_rollups(&m.account_id)
        .await
        .iter()
        .find(|row| row.kind == "INSTALL")
        .expect("an install rollup")
        .calls;
    assert_eq!(installs, 1);
}

#[tokio::test]
async fn a_key_that_requires_signatures_attributes_only_signed_installs() {
    use tally::domain::signature::sign;
    let app = TestApp::new().await;
    let m = app.member_with_key(true).await;
    let body = json!({ "skill_id": "code-review" }).to_string();
    let install = |headers: Vec<(&'static str, String)>| {
        let (app, key, body) = (&app, m.key.clone(), body.clone());
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            app.post_raw("/api/install-callback", Some(&key), &headers, body)
                .await
        }
    };
    // Unsigned, or signed wrongly: anyone holding the key could have sent it, so it is
    // recorded, but as nobody's.
    let unsigned = install(vec![]).await;
    assert_eq!(unsigned.status, StatusCode::OK);
    assert_eq!(unsigned.json(), json!({ "recorded": true }));
    let forged = install(vec![("x-tally-signature", "sha256=00".to_owned())]).await;
    assert_eq!(forged.status, StatusCode::OK);
    assert_eq!(app.stored_events(&m.account_id).await, 0);
    assert_eq!(tables::anonymous_events(&app.state.db).await.len(), 2);

    let signed = install(vec![("x-tally-signature", sign(&m.key, body.as_bytes()))]).await;
    assert_eq!(signed.status, StatusCode::OK);
    assert_eq!(app.stored_events(&m.account_id).await, 1);
    assert_eq!(tables::anonymous_events(&app.state.db).await.len(), 2);
}

#[tokio::test]
async fn install_bodies_that_are_not_json_or_not_an_object_are_400() {
    let app = TestApp::new().await;
    let bad = app.post_raw("/api/install-callback", None, &[], "{").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.json(),
        json!({ "error": "Invalid JSON", "code": "INVALID_JSON" })
    );
    let list = app
        .post_json("/api/install-callback", None, &json!(["code-review"]))
        .await;
    assert_eq!(list.status, StatusCode::BAD_REQUEST);
    assert_eq!(list.json()["code"], "INVALID_PAYLOAD");
    assert_eq!(tables::stored_events_in_total(&app.state.db).await, 0);
}

#[tokio::test]
async fn an_install_with_a_bad_optional_field_is_recorded_without_it() {
    let app = TestApp::new().await;
    let install = |body: serde_json::Value| {
        let app = &app;
        async move { app.post_json("/api/install-callback", None, &body).await }
    };
    let wrong_type = install(json!({ "skill_id": 123, "platform": "linux" })).await;
    assert_eq!(wrong_type.status, StatusCode::OK);
    assert_eq!(
        wrong_type.json(),
        json!({ "recorded": true, "ignored": ["skill_id"] })
    );
    let several = install(json!({
        "skill_id": "code-review", "platform": {}, "version": "v".repeat(51)
    }))
    .await;
    assert_eq!(several.status, StatusCode::OK);
    assert_eq!(
        several.json(),
        json!({ "recorded": true, "ignored": ["platform", "version"] })
    );
    // Empty and null fields are absent, not ignored.
    let blank = install(json!({ "skill_id": "", "platform": null })).await;
    assert_eq!(blank.json(), json!({ "recorded": true }));

    let stored = tables::anonymous_events(&app.state.db).await;
    assert_eq!(stored.len(), 3);
    let first = stored
        .iter()
        .find(|e| {
            e.skill_id.is_none() && e.metadata.as_deref().is_some_and(|m| m.contains("linux"))
        })
        .expect("the install with a numeric skill id, recorded with its platform");
    assert_eq!(first.kind, "INSTALL");
    let second = stored
        .iter()
        .find(|e| e.skill_id.as_deref() == Some("code-review"))
        .expect("the install with a bad platform and version");
    let metadata: serde_json::Value =
        serde_json::from_str(second.metadata.as_deref().unwrap()).unwrap();
    assert_eq!(
        metadata,
        json!({ "source": "install-script", "platform": null, "version": null })
    );
}

#[tokio::test]
async fn an_install_with_a_nul_character_is_invalid_payload() {
    let app = TestApp::new().await;
    for field in ["skill_id", "platform", "version"] {
        let response = app
            .post_json("/api/install-callback", None, &json!({ field: "x\u{0}" }))
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(
            response.json(),
            json!({
                "error": "Invalid payload", "code": "INVALID_PAYLOAD",
                "details": { field: ["must not contain NUL characters"] }
            })
        );
    }
    assert_eq!(tables::stored_events_in_total(&app.state.db).await, 0);
}

#[tokio::test]
async fn a_write_the_database_refuses_fails_only_its_own_request_with_500() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let now = app.clock.now();
    let good = |i: usize| NewEvent {
        event_id: Some(format!("good-{i}")),
        ..NewEvent::new(Some(m.account_id.clone()), EventKind::ToolCall, now)
    };
    // The database refuses this row (no such account), whatever else is written with it.
    let bad = NewEvent::new(Some("no-such-account".to_owned()), EventKind::ToolCall, now);
    let recorder = &app.state.ingestion.recorder;
    let deadline = app.state.ingestion.deadline();
    // Queued together, so that the writer takes them in one batch.
    let mut writes: Vec<_> = (0..8)
        .map(|i| recorder.record(vec![good(i)], Vec::new(), deadline))
        .collect();
    writes.insert(4, recorder.record(vec![bad], Vec::new(), deadline));
    let mut results = futures::future::join_all(writes).await;
    let Unrecorded::Failed(refused) = results.remove(4).unwrap_err() else {
        panic!("not a failure");
    };
    assert!(matches!(refused, DomainError::Internal(_)), "{refused:?}");
    let (status, body, retry_after) = tally::http::error::rest_parts(&refused);
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({ "error": "Internal error", "code": "INTERNAL" })
    );
    assert_eq!(retry_after, None, "a retry would fail the same way");
    for result in results {
        assert_eq!(result.unwrap(), vec![Outcome::Accepted]);
    }
    assert_eq!(app.stored_events(&m.account_id).await, 8);
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
    assert_eq!(
        limited.json(),
        json!({ "error": "Rate limited", "code": "RATE_LIMITED" })
    );
    assert_eq!(limited.header("retry-after"), Some("20"));
}

#[tokio::test]
async fn metrics_count_requests_events_batches_and_database_errors() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let ok = app.track_now(&m.key).await;
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
    app.track_now(&m.key).await;
    let text = String::from_utf8(app.get("/metrics").await.body).unwrap();
    assert!(text.contains("tally_database_errors_total"), "{text}");
}

/// Another connection's transaction holding what writing usage events needs: SQLite's write
/// lock, or on PostgreSQL a table lock on the events.
async fn hold_the_write_lock(
    database_url: &str,
) -> (sea_orm::DatabaseConnection, sea_orm::DatabaseTransaction) {
    use sea_orm::{ConnectionTrait, SqliteTransactionMode, TransactionOptions, TransactionTrait};
    let db = tally::db::connect(database_url).await.unwrap();
    let transaction = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await
        .unwrap();
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        transaction
            .execute_unprepared("LOCK TABLE usage_events IN SHARE ROW EXCLUSIVE MODE")
            .await
            .unwrap();
    }
    (db, transaction)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_at_the_end_of_its_wait_does_not_fail_the_fresh_ones_written_with_it() {
    use std::time::Duration;
    use tally::domain::deadline::Deadline;
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let now = app.clock.now();
    let event = |id: &str| NewEvent {
        event_id: Some(id.to_owned()),
        ..NewEvent::new(Some(m.account_id.clone()), EventKind::ToolCall, now)
    };
    let record = |id: &str, wait_ms: u64| {
        let (recorder, events) = (app.state.ingestion.recorder.clone(), vec![event(id)]);
        let deadline = Deadline::after(Duration::from_millis(wait_ms));
        tokio::spawn(async move { recorder.record(events, Vec::new(), deadline).await })
    };
    let (db, lock) = hold_the_write_lock(&app.database_url).await;
    // The first keeps the writer waiting for the lock while the next two queue up behind it;
    // they are then written in one batch, whose wait the nearly spent one cuts short.
    let first = record("first", 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let nearly_spent = record("nearly-spent", 400);
    let fresh = record("fresh", 5_000);
    tokio::time::sleep(Duration::from_millis(650)).await;
    lock.rollback().await.unwrap();
    db.close().await.ok();

    for (name, refused) in [("first", first), ("nearly spent", nearly_spent)] {
        let Err(Unrecorded::Failed(err)) = refused.await.unwrap() else {
            panic!("{name} was written past its deadline");
        };
        assert!(
            matches!(err, DomainError::Unavailable(_)),
            "{name}: {err:?}"
        );
    }
    assert_eq!(
        fresh.await.unwrap().expect("the fresh request is written"),
        vec![Outcome::Accepted]
    );
    assert_eq!(
        tables::stored_event_ids(&app.state.db, &m.account_id).await,
        ["fresh"]
    );
}
