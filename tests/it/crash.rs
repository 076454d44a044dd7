//! A 200 from `/api/track` is durable: kill -9 the real binary while tracks are in flight (or stop
//! it with SIGTERM, which drains the recorder), restart it on the same SQLite file, and every event
//! that got its 200 is there exactly once, with the period counter agreeing with the stored events.
//! And the other way round: a request answered with an error is never stored afterwards.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use serde_json::{json, Value};

use crate::common;
use common::process::{self, Server};
use common::tables;

const ADMIN_EMAIL: &str = "root@example.com";
const ADMIN_PASSWORD: &str = "crash test password";

/// The binary on `database_url`, with an admin, a fixed signing secret and extra settings.
fn start(dir: &Path, database_url: &str, settings: &[(&str, &str)]) -> Server {
    let mut all = vec![
        ("TALLY_DATABASE_URL", database_url),
        ("TALLY_ADMIN_EMAIL", ADMIN_EMAIL),
        ("TALLY_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("TALLY_JWT_SECRET", "crash-test-secret-of-at-least-32-bytes"),
    ];
    all.extend_from_slice(settings);
    Server::start(dir, &all)
}

/// The body of a tool use of `skill` with an event id, dated now by the wall clock (the binary
/// runs on real time).
fn tool_use(skill: &str, event_id: &str) -> String {
    json!({
        "skill_id": skill,
        "tool_name": "Write",
        "ts": chrono::Utc::now().to_rfc3339(),
        "event_id": event_id,
    })
    .to_string()
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    Kill9,
    Term,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_event_survives_a_kill_9_exactly_once() {
    acknowledged_events_survive(Stop::Kill9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_graceful_shutdown_drains_every_acknowledged_event() {
    acknowledged_events_survive(Stop::Term).await;
}

async fn acknowledged_events_survive(how: Stop) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = process::default_database_url(dir.path());
    // The follower waits a minute before applying what the first batches add to the rollups:
    // they are still stored as deltas when the process stops, for the restart (on the default
    // wait) to apply — or, on SIGTERM, for the drain to apply before exiting.
    let server = start(
        dir.path(),
        &database_url,
        &[("TALLY_ROLLUP_GATHER_MS", "60000")],
    );

    let admin = server.login(ADMIN_EMAIL, ADMIN_PASSWORD);
    let member = server.member_with_key("hooks@example.com");
    server.set_plan(&admin, &member.account_id, "ENTERPRISE");
    server.graphql_ok(
        Some(&admin),
        "mutation { adminUpdatePlan(code: ENTERPRISE, input: { rateLimitPerMinute: 1000000 }) { code } }",
        json!({}),
    );

    // Writers keep sending distinct events; the process dies as soon as 600 have been
    // acknowledged, with others still in flight.
    const TARGET: usize = 600;
    let acknowledged = Mutex::new(HashSet::new());
    let count = AtomicUsize::new(0);
    let next_id = AtomicUsize::new(0);
    let stopping = AtomicBool::new(false);
    let (reached_tx, reached) = mpsc::channel::<()>();
    let address = server.address.clone();
    std::thread::scope(|scope| {
        for _ in 0..16 {
            let reached_tx = reached_tx.clone();
            let (address, key) = (&address, &member.key);
            let (acknowledged, count, next_id, stopping) =
                (&acknowledged, &count, &next_id, &stopping);
            scope.spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    let id = format!("evt-{}", next_id.fetch_add(1, Ordering::SeqCst));
                    let body = tool_use("crash", &id);
                    match process::request(address, "POST", "/api/track", Some(key), &body) {
                        Ok(answer) if answer.status == 200 => {
                            acknowledged.lock().unwrap().insert(id);
                            if count.fetch_add(1, Ordering::SeqCst) + 1 >= TARGET {
                                stopping.store(true, Ordering::SeqCst);
                                let _ = reached_tx.send(());
                            }
                        }
                        Ok(answer) if answer.status != 0 => {
                            panic!("track answered {}: {}", answer.status, answer.body)
                        }
                        _ => break,
                    }
                }
            });
        }
        drop(reached_tx);
        reached.recv().expect("workers run");
        match how {
            Stop::Kill9 => server.kill(),
            Stop::Term => {
                server.stop();
            }
        }
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(acknowledged.len() >= TARGET);

    let db = tally::db::connect(&database_url).await.expect("open db");
    let pending = tables::pending_rollup_deltas(&db).await;
    match how {
        Stop::Kill9 => assert!(pending > 0, "nothing left for the restart to apply"),
        // A graceful stop applies them before it exits.
        Stop::Term => assert_eq!(pending, 0),
    }

    // Restart on the same file: it opens, recovers and serves.
    let restarted = start(dir.path(), &database_url, &[]);
    assert_eq!(
        restarted.request("GET", "/ready", None, "").unwrap().status,
        200
    );
    let mut stored = HashMap::new();
    for id in tables::stored_event_ids(&db, &member.account_id).await {
        *stored.entry(id).or_insert(0i64) += 1;
    }
    for id in &acknowledged {
        assert_eq!(
            stored.get(id),
            Some(&1),
            "event {id} acknowledged but stored {:?}",
            stored.get(id)
        );
    }
    let counted = tables::counted_calls(&db, &member.account_id).await;
    let total: i64 = stored.values().sum();
    assert_eq!(
        counted, total,
        "the period counter agrees with the stored events"
    );

    // The restarted follower applies what the first process left, exactly once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tables::pending_rollup_deltas(&db).await > 0 {
        assert!(Instant::now() < deadline, "rollup deltas left unapplied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        tables::rolled_up_tool_uses(&db, &member.account_id).await,
        (total, total),
        "the daily rollups agree with the stored events"
    );
}

/// Another connection's open transaction holding the lock that writing usage events needs, as a
/// long transaction of another writer would.
struct WriteLock {
    db: DatabaseConnection,
    transaction: DatabaseTransaction,
}

impl WriteLock {
    async fn take(database_url: &str) -> Self {
        // The backends lock differently: SQLite has one writer at a time, so a transaction begun
        // IMMEDIATE (the mode PostgreSQL ignores) holds every write back; PostgreSQL locks rows
        // and tables, and this table lock lets readers pass while inserts wait.
        Self::take_with(
            database_url,
            "LOCK TABLE usage_events IN SHARE ROW EXCLUSIVE MODE",
        )
        .await
    }

    /// On PostgreSQL, row locks on every period counter instead, as a long transaction that
    /// updated them would hold (the writer locks the counters first); on SQLite the write lock.
    async fn take_counter_rows(database_url: &str) -> Self {
        Self::take_with(
            database_url,
            "SELECT account_id FROM usage_periods FOR UPDATE",
        )
        .await
    }

    /// The write lock, and on PostgreSQL also what `postgres_lock` takes.
    async fn take_with(database_url: &str, postgres_lock: &str) -> Self {
        let lock = Self::take_write_lock(database_url).await;
        if lock.db.get_database_backend() == DatabaseBackend::Postgres {
            lock.transaction
                .execute_unprepared(postgres_lock)
                .await
                .expect("lock");
        }
        lock
    }

    async fn take_write_lock(database_url: &str) -> Self {
        let db = tally::db::connect(database_url)
            .await
            .expect("second connection");
        let transaction = db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
            .expect("lock");
        Self { db, transaction }
    }

    async fn release(self) {
        self.transaction.rollback().await.expect("unlock");
        self.db.close().await.ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_refused_while_the_database_is_locked_are_never_stored_later() {
    let test_db = common::TestDb::create().await;
    let database_url = test_db.url.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    // Requests time out after 3 s: ingestion must answer before that.
    let server = start(
        dir.path(),
        &database_url,
        &[("TALLY_REQUEST_TIMEOUT_SECONDS", "3")],
    );
    let member = server.member_with_key("locked@example.com");
    let track = |id: &str| tool_use("lock", id);
    // Warm the key cache and the quota counter.
    let warm = server
        .request("POST", "/api/track", Some(&member.key), &track("warm"))
        .unwrap();
    assert_eq!(warm.status, 200);

    let lock = WriteLock::take(&database_url).await;
    let started = Instant::now();
    let answers: Vec<_> = std::thread::scope(|scope| {
        let refused: Vec<_> = (0..6)
            .map(|i| {
                let body = track(&format!("locked-{i}"));
                let (server, key) = (&server, &member.key);
                scope.spawn(move || server.request("POST", "/api/track", Some(key), &body))
            })
            .collect();
        refused.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let waited = started.elapsed();
    for answer in answers {
        let answer = answer.expect("an answer");
        let (head, body) = (answer.head.to_ascii_lowercase(), answer.body);
        assert_eq!(answer.status, 503, "{head}{body}");
        assert!(head.contains("\r\nretry-after: 1"), "{head}");
        let body: Value = serde_json::from_str(&body).expect("a JSON body");
        assert_eq!(
            body,
            json!({ "error": "Service unavailable", "code": "SERVICE_UNAVAILABLE" })
        );
    }
    assert!(
        waited < Duration::from_secs(3),
        "answered before the request timeout, took {waited:?}"
    );
    lock.release().await;

    // Writes go through again; the queue is written in order, so once this one is answered
    // nothing queued before it is still pending.
    let after = server
        .request("POST", "/api/track", Some(&member.key), &track("after"))
        .unwrap();
    assert_eq!(after.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let db = tally::db::connect(&database_url).await.expect("open db");
    assert_eq!(
        tables::stored_event_ids(&db, &member.account_id).await,
        ["after", "warm"],
        "no refused request was stored later"
    );
    assert_eq!(tables::counted_calls(&db, &member.account_id).await, 2);
}

/// What every ingestion route is sent while the database is locked, for round `round`: (path,
/// whether it takes the key, body).
fn every_ingestion_route(round: usize) -> Vec<(&'static str, bool, String)> {
    let now = chrono::Utc::now().to_rfc3339();
    vec![
        ("/api/v1/verify", true, "{}".to_owned()),
        (
            "/api/v1/verify",
            true,
            json!({ "event_id": format!("verify-{round}") }).to_string(),
        ),
        (
            "/api/track",
            true,
            tool_use("lock", &format!("track-{round}")),
        ),
        (
            "/api/v1/events",
            true,
            json!({ "events": [{
                "event_id": format!("call-{round}"), "endpoint": "/v1/search", "method": "GET",
                "status_code": 200, "response_time_ms": 12, "ts": now,
            }] })
            .to_string(),
        ),
        (
            "/api/install-callback",
            false,
            json!({ "skill_id": "s" }).to_string(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingestion_answers_503_within_two_seconds_whatever_holds_the_database() {
    let test_db = common::TestDb::create().await;
    let database_url = test_db.url.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    // The default request timeout (30 s). Analytics gather for a second, so that the rollup
    // follower has the warm-up's delta to apply while the lock is held, and waits for it too.
    let server = start(
        dir.path(),
        &database_url,
        &[("TALLY_ROLLUP_GATHER_MS", "1000")],
    );
    let member = server.member_with_key("waiting@example.com");
    for (path, body) in [
        ("/api/track", tool_use("lock", "warm")),
        ("/api/v1/verify", "{}".to_owned()),
    ] {
        let warm = server
            .request("POST", path, Some(&member.key), &body)
            .unwrap();
        assert_eq!(warm.status, 200, "{path}: {}", warm.body);
    }

    let mut slowest = Duration::ZERO;
    for round in 0..4 {
        // Each kind of lock for two rounds (the same on SQLite: its one write lock).
        let lock = if round < 2 {
            WriteLock::take(&database_url).await
        } else {
            WriteLock::take_counter_rows(&database_url).await
        };
        let answers: Vec<_> = std::thread::scope(|scope| {
            let sent: Vec<_> = every_ingestion_route(round)
                .into_iter()
                .map(|(path, keyed, body)| {
                    let (server, key) = (&server, &member.key);
                    scope.spawn(move || {
                        let started = Instant::now();
                        let bearer = keyed.then_some(key.as_str());
                        let answer = server.request("POST", path, bearer, &body);
                        (path, answer, started.elapsed())
                    })
                })
                .collect();
            sent.into_iter().map(|s| s.join().unwrap()).collect()
        });
        for (path, answer, took) in answers {
            let answer = answer.expect("an answer");
            let head = answer.head.to_ascii_lowercase();
            assert!(
                took < Duration::from_secs(2),
                "{path} answered after {took:?} in round {round}"
            );
            slowest = slowest.max(took);
            // An install needs no counter: PostgreSQL's row locks on them need not stop it.
            if round >= 2 && path == "/api/install-callback" && answer.status == 200 {
                continue;
            }
            assert_eq!(answer.status, 503, "{path}: {head}{}", answer.body);
            assert!(head.contains("\r\nretry-after: 1"), "{path}: {head}");
        }
        lock.release().await;
    }
    eprintln!("slowest 503 while the database was locked: {slowest:?}");

    let after = server
        .request(
            "POST",
            "/api/track",
            Some(&member.key),
            &tool_use("lock", "after"),
        )
        .unwrap();
    assert_eq!(after.status, 200, "{}", after.body);
    let db = tally::db::connect(&database_url).await.expect("open db");
    let mut stored = tables::stored_event_ids(&db, &member.account_id).await;
    stored.retain(|id| !id.is_empty());
    assert_eq!(
        stored,
        ["after", "warm"],
        "no refused request was stored later"
    );
}
