//! Several instances on one PostgreSQL database: a change made through one instance reaches the
//! others within 1 s (announced with NOTIFY; the key cache lives 300 s here, so its expiry cannot
//! explain it), and a background job runs on one instance at a time. SQLite serves one instance,
//! so these tests run on PostgreSQL only.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::json;
use tally::clock::Clock;
use tally::config::Config;
use tally::domain::error::DomainError;
use tally::jobs::{self, Job};

use crate::common::ingest::Member;
use crate::common::process::{Server, OPS_EMAIL, OPS_PASSWORD};
use crate::common::{Instance, TestApp, TestResponse};

/// How long another instance may take to see a change.
const BOUND: Duration = Duration::from_secs(1);

fn long_lived_cache() -> Config {
    Config {
        key_cache_ttl: Duration::from_secs(300),
        ..Config::default()
    }
}

/// Two instances on one PostgreSQL database; `None` on SQLite, which serves one instance.
async fn two_instances() -> Option<(TestApp, Instance)> {
    let a = TestApp::with_config(long_lived_cache()).await;
    if a.state.db.get_database_backend() != DbBackend::Postgres {
        return None;
    }
    // Polling verifies many times a second: the per-key limit must not answer for the change.
    a.update_plan("FREE", json!({ "rateLimitPerMinute": 100_000 }))
        .await;
    let b = a.another_instance(long_lived_cache()).await;
    // Each instance empties its caches when it starts listening: after this, only announcements
    // (or the 300 s cache lifetime) can.
    wait_for_listeners(&a.state.db, 2).await;
    Some((a, b))
}

async fn verify(instance: &Instance, key: &str) -> TestResponse {
    instance
        .request(
            Request::post("/api/v1/verify")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
}

/// Verifies `key` on `instance` until `seen` holds for the answer; panics when it does not within
/// `bound`.
async fn seen_within(
    bound: Duration,
    instance: &Instance,
    key: &str,
    seen: impl Fn(&TestResponse) -> bool,
) -> TestResponse {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let answer = verify(instance, key).await;
        if seen(&answer) {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not seen within {bound:?}; last answer {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn refused(answer: &TestResponse) -> bool {
    answer.status == StatusCode::UNAUTHORIZED
}

/// Connections whose last statement was a LISTEN: one per instance listening for changes.
async fn listening_connections(db: &DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN %'",
        ))
        .await
        .expect("pg_stat_activity")
        .expect("a count");
    row.try_get_by_index::<i64>(0).expect("count")
}

async fn wait_for_listeners(db: &DatabaseConnection, expected: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let listening = listening_connections(db).await;
        if listening == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{listening} listening connections, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two instances, and a member whose key B has just accepted (so B holds it in its cache);
/// `None` on SQLite.
async fn a_key_cached_on_b() -> Option<(TestApp, Instance, Member)> {
    let (a, b) = two_instances().await?;
    let m = a.member_with_key(false).await;
    let answer = verify(&b, &m.key).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    Some((a, b, m))
}

async fn revoke(app: &TestApp, token: &str, key_id: &str) {
    app.graphql_ok(
        Some(token),
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        json!({ "id": key_id }),
    )
    .await;
}

/// Rotates a key; returns the new one.
async fn rotate(app: &TestApp, token: &str, key_id: &str, grace_seconds: i64) -> String {
    let data = app
        .graphql_ok(
            Some(token),
            "mutation($id: ID!, $g: Int!) { rotateApiKey(id: $id, gracePeriodSeconds: $g) { key } }",
            json!({ "id": key_id, "g": grace_seconds }),
        )
        .await;
    data["rotateApiKey"]["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_revocation_through_one_instance_reaches_another_within_a_second() {
    let Some((a, b, m)) = a_key_cached_on_b().await else {
        return; // SQLite: one instance only.
    };
    revoke(&a, &m.token, &m.key_id).await;
    let answer = seen_within(BOUND, &b, &m.key, refused).await;
    assert_eq!(answer.json()["error"], "Invalid key");
}

#[tokio::test]
async fn a_rotation_without_grace_through_one_instance_reaches_another_within_a_second() {
    let Some((a, b, m)) = a_key_cached_on_b().await else {
        return; // SQLite: one instance only.
    };
    let new_key = rotate(&a, &m.token, &m.key_id, 0).await;
    seen_within(BOUND, &b, &m.key, refused).await;
    assert_eq!(verify(&b, &new_key).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_rotation_with_grace_ends_on_another_instance_when_the_grace_does() {
    let Some((a, b, m)) = a_key_cached_on_b().await else {
        return; // SQLite: one instance only.
    };
    rotate(&a, &m.token, &m.key_id, 60).await;
    assert_eq!(verify(&b, &m.key).await.status, StatusCode::OK);
    // B's entry from before the rotation had no end; the one it reads after the announcement ends
    // with the grace.
    a.clock.advance(chrono::Duration::seconds(61));
    seen_within(BOUND, &b, &m.key, refused).await;
}

#[tokio::test]
async fn a_plan_change_through_one_instance_reaches_another_within_a_second() {
    let Some((a, b, m)) = a_key_cached_on_b().await else {
        return; // SQLite: one instance only.
    };
    assert_eq!(verify(&b, &m.key).await.json()["plan"], "FREE");
    a.set_plan(&m.account_id, "PRO").await;
    seen_within(BOUND, &b, &m.key, |answer| answer.json()["plan"] == "PRO").await;
}

#[tokio::test]
async fn a_plan_edit_through_one_instance_reaches_another_within_a_second() {
    let Some((a, b, m)) = a_key_cached_on_b().await else {
        return; // SQLite: one instance only.
    };
    let before = verify(&b, &m.key).await.json()["limit"].as_i64().unwrap();
    a.update_plan("FREE", json!({ "monthlyQuota": before + 7 }))
        .await;
    seen_within(BOUND, &b, &m.key, |answer| {
        answer.json()["limit"].as_i64() == Some(before + 7)
    })
    .await;
}

#[tokio::test]
async fn a_usage_reset_through_one_instance_reaches_another_within_a_second() {
    let Some((a, b, m)) = a_key_cached_on_b().await else {
        return; // SQLite: one instance only.
    };
    for _ in 0..2 {
        assert_eq!(verify(&b, &m.key).await.status, StatusCode::OK);
    }
    a.graphql_as_admin(
        "mutation($a: ID!) { adminResetUsage(accountId: $a) { calls } }",
        json!({ "a": m.account_id }),
    )
    .await;
    // Each verify counts one call, the ones polling here too: once B has applied the reset its
    // n-th poll answers `used` n (all counted since the reset), before that 2 + n.
    let polls = std::cell::Cell::new(0);
    seen_within(BOUND, &b, &m.key, |answer| {
        polls.set(polls.get() + 1);
        answer.json()["used"] == polls.get()
    })
    .await;
}

#[tokio::test]
async fn a_provider_period_applied_through_one_instance_moves_the_calls_another_counted() {
    use crate::common::billing::{self, subscription_updated};
    use chrono::SecondsFormat;
    let config = || Config {
        key_cache_ttl: Duration::from_secs(300),
        ..billing::config()
    };
    let a = TestApp::with_config(config()).await;
    if a.state.db.get_database_backend() != DbBackend::Postgres {
        return; // SQLite: one instance only.
    }
    a.update_plan("FREE", json!({ "rateLimitPerMinute": 100_000 }))
        .await;
    let b = a.another_instance(config()).await;
    wait_for_listeners(&a.state.db, 2).await;
    let m = a.member_with_key(false).await;
    let created = a.clock.now();
    a.clock.advance(chrono::Duration::hours(1));
    // B counts three calls in the calendar month; its key cache and quota counter hold them.
    for _ in 0..3 {
        assert_eq!(verify(&b, &m.key).await.status, StatusCode::OK);
    }

    // The provider's period began half an hour ago: A takes it and moves the three calls.
    let period = (
        created + chrono::Duration::minutes(30),
        created + chrono::Duration::days(30),
    );
    let event = subscription_updated("evt_i1", a.clock.now(), &m.account_id, period, None);
    assert_eq!(a.billing_event(&event).await.status, StatusCode::OK);

    // Once B has heard of it, its n-th counted poll counts in the provider's period, after the
    // three. (A poll B judged on the calendar month in the meantime, on this blocking plan, is
    // answered 503 and counts nothing; one that B had let through is placed in the new period.)
    let reset = period.1.to_rfc3339_opts(SecondsFormat::Secs, true);
    let polls = std::cell::Cell::new(0);
    seen_within(BOUND, &b, &m.key, |answer| {
        if answer.status != StatusCode::OK {
            assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
            return false;
        }
        polls.set(polls.get() + 1);
        answer.json()["reset"] == reset.as_str() && answer.json()["used"] == 3 + polls.get()
    })
    .await;
    let periods = crate::common::tables::periods(&a.state.db, &m.account_id).await;
    let counted: Vec<_> = periods.iter().filter(|p| p.calls > 0).collect();
    assert_eq!(counted.len(), 1, "{periods:?}");
    assert_eq!(counted[0].period_start, period.0.timestamp_millis());
    assert_eq!(counted[0].calls, 3 + polls.get());
}

#[tokio::test]
async fn after_its_listening_connection_is_lost_an_instance_empties_its_caches_and_listens_again() {
    let Some((a, b)) = two_instances().await else {
        return; // SQLite: one instance only.
    };
    let m = a.member_with_key(false).await;
    assert_eq!(verify(&b, &m.key).await.status, StatusCode::OK);

    // Revoked behind every instance's back: nothing is announced, so B's cache still accepts it.
    a.state
        .db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2",
            [a.clock.now().into(), m.key_id.clone().into()],
        ))
        .await
        .expect("revoke directly");
    assert_eq!(verify(&b, &m.key).await.status, StatusCode::OK);

    a.state
        .db
        .execute_unprepared(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN %'",
        )
        .await
        .expect("end the listening connections");
    // Announcements made while it was gone are lost: B empties its caches once it listens again.
    seen_within(Duration::from_secs(5), &b, &m.key, refused).await;
    wait_for_listeners(&a.state.db, 2).await;

    // And announcements reach it again.
    let (key, key_id) = a.create_key(&m.token, false).await;
    assert_eq!(verify(&b, &key).await.status, StatusCode::OK);
    revoke(&a, &m.token, &key_id).await;
    seen_within(BOUND, &b, &key, refused).await;
}

#[tokio::test]
async fn an_instance_stops_listening_when_it_is_dropped() {
    let Some((a, b)) = two_instances().await else {
        return; // SQLite: one instance only.
    };
    drop(b);
    wait_for_listeners(&a.state.db, 1).await;
}

#[tokio::test]
async fn a_job_round_is_skipped_while_another_instance_runs_that_job() {
    let Some((a, b)) = two_instances().await else {
        return; // SQLite: one instance only.
    };
    let (started, has_started) = tokio::sync::oneshot::channel();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let a_db = a.state.db.clone();
    let running = tokio::spawn(async move {
        jobs::run_alone(&a_db, Job::BillingClose, async {
            started.send(()).ok();
            released.await.ok();
            Ok("a's round")
        })
        .await
    });
    has_started.await.expect("a's round started");

    let skipped = jobs::run_alone(&b.state.db, Job::BillingClose, async { Ok("b's round") }).await;
    assert_eq!(skipped.unwrap(), None);
    let other_job = jobs::run_alone(&b.state.db, Job::EventRetention, async {
        Ok("b's pruning")
    })
    .await;
    assert_eq!(other_job.unwrap(), Some("b's pruning"));

    release.send(()).ok();
    assert_eq!(running.await.unwrap().unwrap(), Some("a's round"));
    let next = jobs::run_alone(&b.state.db, Job::BillingClose, async { Ok("b's round") }).await;
    assert_eq!(next.unwrap(), Some("b's round"));
}

#[tokio::test]
async fn a_failed_job_round_releases_the_job() {
    let Some((a, b)) = two_instances().await else {
        return; // SQLite: one instance only.
    };
    let failed = jobs::run_alone(&a.state.db, Job::WebhookIdPruning, async {
        Err::<(), _>(DomainError::internal(anyhow::anyhow!("round failed")))
    })
    .await;
    assert!(failed.is_err());
    let next = jobs::run_alone(&b.state.db, Job::WebhookIdPruning, async { Ok(1) }).await;
    assert_eq!(next.unwrap(), Some(1));
}

/// `instances` instances on one database; a FREE member verifies `calls` times at once, the
/// requests spread round robin over the instances. Returns how many were allowed, how many were
/// refused for the quota, and `currentUsage.calls` as each instance answers it.
async fn concurrent_verifies_over(
    instances: usize,
    calls: usize,
) -> Option<(usize, usize, Vec<i64>)> {
    let (a, b) = two_instances().await?;
    let mut all = vec![
        Instance {
            router: a.router.clone(),
            state: a.state.clone(),
        },
        b,
    ];
    while all.len() < instances {
        all.push(a.another_instance(long_lived_cache()).await);
    }
    let all: Vec<std::sync::Arc<Instance>> = all.into_iter().map(std::sync::Arc::new).collect();
    let m = a.member_with_key(false).await;

    let mut requests = tokio::task::JoinSet::new();
    for i in 0..calls {
        let instance = all[i % all.len()].clone();
        let key = m.key.clone();
        requests.spawn(async move { verify(&instance, &key).await });
    }
    let (mut allowed, mut over_quota) = (0, 0);
    while let Some(answer) = requests.join_next().await {
        let answer = answer.expect("request task");
        match answer.status {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS if answer.json()["error"] == "Quota exceeded" => {
                over_quota += 1
            }
            other => panic!(
                "unexpected answer {other}: {}",
                String::from_utf8_lossy(&answer.body)
            ),
        }
    }
    let mut usage = Vec::new();
    for instance in &all {
        let answer = instance
            .request(
                Request::post("/graphql")
                    .header("authorization", format!("Bearer {}", m.token))
                    .header("content-type", "application/json")
                    .body(Body::from(
                        json!({ "query": "{ currentUsage { calls } }" }).to_string(),
                    ))
                    .unwrap(),
            )
            .await;
        usage.push(
            answer.json()["data"]["currentUsage"]["calls"]
                .as_i64()
                .expect("calls"),
        );
    }
    Some((allowed, over_quota, usage))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_quota_is_spent_exactly_once_over_two_instances() {
    let Some((allowed, over_quota, usage)) = concurrent_verifies_over(2, 1_200).await else {
        return; // SQLite: one instance only.
    };
    assert_eq!((allowed, over_quota), (1_000, 200));
    assert_eq!(usage, [1_000, 1_000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_quota_is_spent_exactly_once_over_four_instances() {
    let Some((allowed, over_quota, usage)) = concurrent_verifies_over(4, 1_200).await else {
        return; // SQLite: one instance only.
    };
    assert_eq!((allowed, over_quota), (1_000, 200));
    assert_eq!(usage, [1_000; 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_started_at_once_on_a_new_database_take_turns_setting_it_up() {
    let test_db = crate::common::TestDb::create().await;
    if !test_db.url.starts_with("postgres") {
        return; // SQLite: one instance only.
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = [
        ("TALLY_DATABASE_URL", test_db.url.as_str()),
        ("TALLY_ADMIN_EMAIL", OPS_EMAIL),
        ("TALLY_ADMIN_PASSWORD", OPS_PASSWORD),
    ];
    // Each migrates and creates the first admin unless another did: without turns, one of them
    // fails on a table or a user the other has just created.
    let servers: Vec<Server> = std::thread::scope(|scope| {
        let starting: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| Server::start(dir.path(), &settings)))
            .collect();
        starting.into_iter().map(|s| s.join().unwrap()).collect()
    });
    for server in &servers {
        let token = server.login(OPS_EMAIL, OPS_PASSWORD);
        let me = server.graphql_ok(Some(&token), "{ me { role } }", json!({}));
        assert_eq!(me["me"]["role"], "ADMIN");
    }
    let db = tally::db::connect(&test_db.url).await.expect("connect");
    let users = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) FROM users",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(users.try_get_by_index::<i64>(0).unwrap(), 1);
    db.close().await.ok();
    for server in servers {
        server.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_analytics_stay_exact_when_the_followers_of_several_instances_apply_at_once() {
    use crate::common::analytics::{api_call, compare_endpoint_stats, naive_endpoint_stats};
    use tally::domain::recorder::{self, NewEvent};

    let Some((a, b)) = two_instances().await else {
        return; // SQLite: one instance only.
    };
    let c = a.another_instance(long_lived_cache()).await;
    let (token, account) = a.member().await;
    let now = a.clock.now();
    // Tasks on every instance write calls to the same two endpoints on days spread over 30
    // days, one small batch at a time, each applying its rollups at once: the deltas of the same
    // endpoints are applied side by side, some dated before days another transaction is rolling
    // up.
    let databases = [&a.state, &b.state, &c.state].map(|state| state.db.clone());
    let mut writers = tokio::task::JoinSet::new();
    for task in 0..6i64 {
        let db = databases[task as usize % databases.len()].clone();
        let account = account.clone();
        writers.spawn(async move {
            for round in 0..12i64 {
                let events: Vec<NewEvent> = (0..2i64)
                    .map(|i| {
                        let days_ago = (round * 7 + i * 11 + task * 3) % 30;
                        let endpoint = if (round + i) % 2 == 0 { "/a" } else { "/b" };
                        let at = now - chrono::Duration::days(days_ago);
                        let status = if i == 0 { 200 } else { 500 };
                        api_call(&account, at, "GET", endpoint, status, 5 + round * 40)
                    })
                    .collect();
                let events: Vec<&NewEvent> = events.iter().collect();
                recorder::write_batch(&db, &events, &[])
                    .await
                    .expect("written");
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("writer task");
    }

    let raw = a.raw_events(&account).await;
    assert_eq!(raw.len(), 6 * 12 * 2);
    for days in [1, 7, 30] {
        let data = a
            .graphql_ok(
                Some(&token),
                "query($d: Int!) { endpointStats(days: $d, limit: 10) {
                    endpoint method totalCalls requests failedCalls avgResponseTimeMs p95ResponseTimeMs } }",
                json!({ "d": days }),
            )
            .await;
        let expected = naive_endpoint_stats(&raw, now, days, 10);
        compare_endpoint_stats(&data["endpointStats"], &expected)
            .unwrap_or_else(|difference| panic!("{days} days: {difference}"));
    }
}
