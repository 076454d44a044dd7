//! A 200 from `/api/track` is durable: kill -9 the real binary while tracks are in flight (or stop
//! it with SIGTERM, which drains the recorder), restart it on the same SQLite file, and every event
//! that got its 200 is there exactly once, with the period counter agreeing with the stored events.
//! And the other way round: a request answered with an error is never stored afterwards.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common;

const ADMIN_EMAIL: &str = "root@example.com";
const ADMIN_PASSWORD: &str = "crash test password";

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    async fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[]).await
    }

    /// Starts the binary with extra `TALLY_*` settings.
    async fn start_with(database_url: &str, settings: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_tally"))
            .env("TALLY_DATABASE_URL", database_url)
            .env("TALLY_BIND", format!("127.0.0.1:{port}"))
            .env("TALLY_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("TALLY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("TALLY_JWT_SECRET", "crash-test-secret-of-at-least-32-bytes")
            .env("TALLY_LOG", "warn")
            .envs(settings.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tally");
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = request(port, "GET", "/health", None, "").await {
                return server;
            }
            assert!(Instant::now() < deadline, "tally did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let (status, text) = request(self.port, "POST", "/graphql", token, &body)
            .await
            .expect("graphql request");
        assert_eq!(status, 200, "{text}");
        let value: Value = serde_json::from_str(&text).expect("graphql JSON");
        assert!(value.get("errors").is_none(), "{value}");
        value["data"].clone()
    }

    fn stop(&mut self, how: Stop) {
        match how {
            // SIGKILL: no shutdown, no flush.
            Stop::Kill9 => {
                self.child.kill().expect("kill -9");
                self.child.wait().ok();
            }
            // Graceful: in-flight requests finish and the recorder's queue is written.
            Stop::Term => {
                let pid = self.child.id().to_string();
                Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()
                    .expect("kill -TERM");
                let status = self.child.wait().expect("wait for tally");
                assert!(status.success(), "graceful shutdown exits 0, got {status}");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// One HTTP/1.1 request on its own connection: (status, body).
async fn request(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let (status, _, body) = request_with_head(port, method, path, bearer, body).await?;
    Ok((status, body))
}

/// One HTTP/1.1 request on its own connection: (status, response head in lower case, body).
async fn request_with_head(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let auth = bearer
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n{auth}\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((status, head, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
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
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("tally.db").display()
    );
    let server = Server::start(&database_url).await;

    let admin = server
        .graphql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }),
        )
        .await["login"]["token"]
        .as_str()
        .expect("admin token")
        .to_owned();
    let (account_id, key) = member_with_key(&server, "hooks@example.com").await;
    server
        .graphql(
            Some(&admin),
            "mutation($a: ID!) { adminSetPlan(accountId: $a, plan: ENTERPRISE) { id } }",
            json!({ "a": account_id }),
        )
        .await;
    server
        .graphql(
            Some(&admin),
            "mutation { adminUpdatePlan(code: ENTERPRISE, input: { rateLimitPerMinute: 1000000 }) { code } }",
            json!({}),
        )
        .await;

    // Writers keep sending distinct events; the process dies as soon as 600 have been
    // acknowledged, with others still in flight.
    const TARGET: usize = 600;
    let server = Arc::new(tokio::sync::Mutex::new(server));
    let port = server.lock().await.port;
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let next_id = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (key, acknowledged, count, next_id, stop_tx, mut stop_rx) = (
            key.clone(),
            acknowledged.clone(),
            count.clone(),
            next_id.clone(),
            stop_tx.clone(),
            stop_rx.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                if *stop_rx.borrow_and_update() {
                    break;
                }
                let id = format!("evt-{}", next_id.fetch_add(1, Ordering::SeqCst));
                let body = json!({
                    "skill_id": "crash",
                    "tool_name": "Write",
                    "ts": chrono::Utc::now().to_rfc3339(),
                    "event_id": id,
                })
                .to_string();
                match request(port, "POST", "/api/track", Some(&key), &body).await {
                    Ok((200, _)) => {
                        acknowledged.lock().unwrap().insert(id);
                        if count.fetch_add(1, Ordering::SeqCst) + 1 >= TARGET {
                            let _ = stop_tx.send(true);
                        }
                    }
                    Ok((status, text)) if status != 0 => panic!("track answered {status}: {text}"),
                    _ => break,
                }
            }
        }));
    }
    let mut stop = stop_rx.clone();
    stop.wait_for(|stopped| *stopped)
        .await
        .expect("workers run");
    server.lock().await.stop(how);
    for worker in workers {
        worker.await.expect("worker");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= TARGET);

    // Restart on the same file: it opens, recovers and serves.
    let restarted = Server::start(&database_url).await;
    assert_eq!(
        request(restarted.port, "GET", "/ready", None, "")
            .await
            .unwrap()
            .0,
        200
    );

    let db = tally::db::connect(&database_url).await.expect("open db");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT event_id, COUNT(*) FROM usage_events WHERE account_id = '{account_id}' GROUP BY event_id"
            ),
        ))
        .await
        .expect("query events");
    let mut stored = std::collections::HashMap::new();
    for row in rows {
        let id: String = row.try_get_by_index(0).unwrap();
        let n: i64 = row.try_get_by_index(1).unwrap();
        stored.insert(id, n);
    }
    for id in &acknowledged {
        assert_eq!(
            stored.get(id),
            Some(&1),
            "event {id} acknowledged but stored {:?}",
            stored.get(id)
        );
    }
    let counted = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT CAST(SUM(calls) AS BIGINT) FROM usage_periods WHERE account_id = '{account_id}'"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    let total: i64 = stored.values().sum();
    assert_eq!(
        counted, total,
        "the period counter agrees with the stored events"
    );
}

/// Signs up a member with its own account and creates a key: (account id, key).
async fn member_with_key(server: &Server, email: &str) -> (String, String) {
    let signed_up = server
        .graphql(
            None,
            "mutation($e: String!) { signUp(email: $e, password: \"correct horse battery\", accountName: \"Hooks\") { token user { account { id } } } }",
            json!({ "e": email }),
        )
        .await;
    let token = signed_up["signUp"]["token"].as_str().unwrap().to_owned();
    let account_id = signed_up["signUp"]["user"]["account"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = server
        .graphql(
            Some(&token),
            "mutation { createApiKey(name: \"hook\") { key } }",
            json!({}),
        )
        .await["createApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    (account_id, key)
}

/// Another connection holding the lock that writing usage events needs, as a long transaction of
/// another writer would.
enum WriteLock {
    Sqlite(sea_orm::sqlx::SqliteConnection),
    Postgres(sea_orm::sqlx::PgConnection),
}

impl WriteLock {
    async fn take(database_url: &str) -> Self {
        use sea_orm::sqlx::{Connection, Executor};
        if database_url.starts_with("sqlite:") {
            let mut connection = sea_orm::sqlx::SqliteConnection::connect(database_url)
                .await
                .expect("second connection");
            connection.execute("BEGIN IMMEDIATE").await.expect("lock");
            Self::Sqlite(connection)
        } else {
            let mut connection = sea_orm::sqlx::PgConnection::connect(database_url)
                .await
                .expect("second connection");
            // Readers pass; inserts wait.
            connection.execute("BEGIN").await.expect("begin");
            connection
                .execute("LOCK TABLE usage_events IN SHARE ROW EXCLUSIVE MODE")
                .await
                .expect("lock");
            Self::Postgres(connection)
        }
    }

    async fn release(self) {
        use sea_orm::sqlx::{Connection, Executor};
        match self {
            Self::Sqlite(mut c) => {
                c.execute("ROLLBACK").await.expect("unlock");
                c.close().await.ok();
            }
            Self::Postgres(mut c) => {
                c.execute("ROLLBACK").await.expect("unlock");
                c.close().await.ok();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_refused_while_the_database_is_locked_are_never_stored_later() {
    let test_db = common::TestDb::create().await;
    let database_url = test_db.url.clone();
    // Requests time out after 3 s: ingestion must answer before that.
    let server = Server::start_with(&database_url, &[("TALLY_REQUEST_TIMEOUT_SECONDS", "3")]).await;
    let (account_id, key) = member_with_key(&server, "locked@example.com").await;
    let track = |id: String| {
        json!({
            "skill_id": "lock",
            "tool_name": "Write",
            "ts": chrono::Utc::now().to_rfc3339(),
            "event_id": id,
        })
        .to_string()
    };
    // Warm the key cache and the quota counter.
    let (status, _) = request(
        server.port,
        "POST",
        "/api/track",
        Some(&key),
        &track("warm".into()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);

    let lock = WriteLock::take(&database_url).await;
    let started = Instant::now();
    let port = server.port;
    let refused = (0..6).map(|i| {
        let (key, body) = (key.clone(), track(format!("locked-{i}")));
        async move { request_with_head(port, "POST", "/api/track", Some(&key), &body).await }
    });
    let answers = futures::future::join_all(refused).await;
    let waited = started.elapsed();
    for answer in answers {
        let (status, head, body) = answer.expect("an answer");
        assert_eq!(status, 503, "{head}{body}");
        assert!(head.contains("\r\nretry-after: 1"), "{head}");
        let body: Value = serde_json::from_str(&body).expect("a JSON body");
        assert_eq!(body, json!({ "error": "Service unavailable" }));
    }
    assert!(
        waited < Duration::from_secs(3),
        "answered before the request timeout, took {waited:?}"
    );
    lock.release().await;

    // Writes go through again; the queue is written in order, so once this one is answered
    // nothing queued before it is still pending.
    let (status, _) = request(
        server.port,
        "POST",
        "/api/track",
        Some(&key),
        &track("after".into()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let db = tally::db::connect(&database_url).await.expect("open db");
    let stored: Vec<String> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT event_id FROM usage_events WHERE account_id = '{account_id}' ORDER BY event_id"),
        ))
        .await
        .expect("query events")
        .into_iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect();
    assert_eq!(
        stored,
        ["after", "warm"],
        "no refused request was stored later"
    );
    let counted = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT CAST(SUM(calls) AS BIGINT) FROM usage_periods WHERE account_id = '{account_id}'"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(counted, 2);
}
