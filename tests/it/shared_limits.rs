//! Per-key minute limits shared by several instances through Redis, and what happens while
//! Redis is away. Needs Redis on 127.0.0.1:6379 (or `TALLY_TEST_REDIS_URL`) and `redis-server`
//! on the PATH for the private server that is stopped mid-run.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tally::config::Config;

use crate::common::{Instance, TestApp, TestResponse};

fn shared_redis_url() -> String {
    std::env::var("TALLY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn with_redis(url: &str) -> Config {
    Config {
        redis_url: Some(url.to_owned()),
        ..Config::default()
    }
}

fn verify_request(key: &str) -> Request<Body> {
    Request::post("/api/v1/verify")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap()
}

/// Two instances on one database, both sharing limits through `redis_url`, and a key whose
/// plan allows 100 requests a minute.
async fn two_instances(redis_url: &str) -> (TestApp, Instance, String) {
    let a = TestApp::with_config(with_redis(redis_url)).await;
    a.update_plan("FREE", json!({ "rateLimitPerMinute": 100 }))
        .await;
    let key = a.member_with_key(false).await.key;
    let b = a.another_instance(with_redis(redis_url)).await;
    (a, b, key)
}

/// Sends `n` verifies alternating between the instances; counts the allowed ones and fails on
/// anything but 200 or 429.
async fn alternate(a: &TestApp, b: &Instance, key: &str, n: usize) -> usize {
    let mut allowed = 0;
    for i in 0..n {
        let started = Instant::now();
        let answer: TestResponse = if i % 2 == 0 {
            a.request(verify_request(key)).await
        } else {
            b.request(verify_request(key)).await
        };
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "answered within a second"
        );
        match answer.status {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(answer.json()["error"], "Rate limited");
            }
            other => panic!("request {i}: {other} {:?}", answer.json()),
        }
    }
    allowed
}

async fn ready(app: &TestApp) -> Value {
    let answer = app.get("/ready").await;
    assert_eq!(answer.status, StatusCode::OK, "degraded, not down");
    answer.json()
}

#[tokio::test]
async fn two_instances_spend_one_allowance_through_redis() {
    let (a, b, key) = two_instances(&shared_redis_url()).await;
    // The clock stands still: nothing refills, so the bound is exact.
    assert_eq!(alternate(&a, &b, &key, 300).await, 100);
    assert_eq!(ready(&a).await, json!({ "status": "ready", "redis": "up" }));
}

#[tokio::test]
async fn without_redis_each_instance_limits_on_its_own() {
    let a = TestApp::new().await;
    a.update_plan("FREE", json!({ "rateLimitPerMinute": 100 }))
        .await;
    let key = a.member_with_key(false).await.key;
    let b = a.another_instance(Config::default()).await;
    assert_eq!(alternate(&a, &b, &key, 300).await, 200);
    assert_eq!(ready(&a).await, json!({ "status": "ready" }));
}

/// A `redis-server` of the test's own, on a free port, keeping nothing on disk.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl PrivateRedis {
    fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Self::start_on(port)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(mut self) -> u16 {
        self.child.kill().ok();
        self.child.wait().ok();
        self.port
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[tokio::test]
async fn while_redis_is_away_limits_fall_back_per_instance_and_come_back() {
    let redis = PrivateRedis::start();
    let (a, b, key) = two_instances(&redis.url()).await;
    assert_eq!(alternate(&a, &b, &key, 40).await, 40);

    let port = redis.stop();
    // No 5xx and no hang: the first requests find Redis gone, later ones do not wait for it.
    let allowed = alternate(&a, &b, &key, 300).await;
    assert_eq!(
        allowed, 200,
        "each instance allows the whole minute on its own"
    );
    let degraded = ready(&a).await;
    assert_eq!(degraded["redis"], "unreachable", "{degraded}");
    let metrics = String::from_utf8(a.get("/metrics").await.body).unwrap();
    assert!(
        metrics.contains("tally_ratelimit_redis_fallbacks_total"),
        "{metrics}"
    );
    assert!(metrics.contains("tally_ratelimit_redis_up 0"), "{metrics}");

    // Back by itself once Redis answers again (an empty one: the shared state starts afresh).
    let _redis = PrivateRedis::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    for instance_ready in [&a.state, &b.state] {
        while instance_ready
            .ingestion
            .key_limits
            .shared()
            .is_some_and(|shared| {
                shared.status() != tally::domain::ratelimit::shared::RedisStatus::Up
            })
        {
            assert!(Instant::now() < deadline, "back to Redis within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(ready(&a).await["redis"], "up");
    let fresh = a.member_with_key(false).await.key;
    assert_eq!(alternate(&a, &b, &fresh, 300).await, 100, "shared again");
}

/// A Redis URL on a port nothing listens on.
fn dead_redis_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    format!("redis://127.0.0.1:{port}")
}

fn gauge(metrics: &str) -> Option<&str> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("tally_ratelimit_redis_up "))
}

#[tokio::test]
async fn a_redis_that_never_answered_is_reported_unreachable_before_any_request() {
    let app = TestApp::with_config(with_redis(&dead_redis_url())).await;
    // No keyed request has been made: /ready asks Redis itself, and answers within a second.
    let started = Instant::now();
    let answer = app.get("/ready").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer.status, StatusCode::OK, "degraded, not down");
    assert_eq!(
        answer.json(),
        json!({
            "status": "ready",
            "redis": "unreachable",
            "degraded": "per-key rate limits are per instance until Redis answers"
        })
    );
    let metrics = String::from_utf8(app.get("/metrics").await.body).unwrap();
    assert_eq!(gauge(&metrics), Some("0"), "{metrics}");

    // A Redis that answers is up for /ready and the gauge, again without any request.
    let app = TestApp::with_config(with_redis(&shared_redis_url())).await;
    assert_eq!(
        ready(&app).await,
        json!({ "status": "ready", "redis": "up" })
    );
    let metrics = String::from_utf8(app.get("/metrics").await.body).unwrap();
    assert_eq!(gauge(&metrics), Some("1"), "{metrics}");
}

#[tokio::test]
async fn ready_sees_redis_go_away_and_come_back_without_traffic() {
    let redis = PrivateRedis::start();
    let app = TestApp::with_config(with_redis(&redis.url())).await;
    assert_eq!(ready(&app).await["redis"], "up");
    let port = redis.stop();
    assert_eq!(ready(&app).await["redis"], "unreachable");
    let metrics = String::from_utf8(app.get("/metrics").await.body).unwrap();
    assert_eq!(gauge(&metrics), Some("0"), "{metrics}");
    let _redis = PrivateRedis::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready(&app).await["redis"] != "up" {
        assert!(Instant::now() < deadline, "Redis seen again within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn serve_warns_at_start_when_redis_does_not_answer_and_starts_anyway() {
    use crate::common::process::{self, Server};
    let dir = tempfile::tempdir().unwrap();
    let url = dead_redis_url();
    let address = url.trim_start_matches("redis://").to_owned();
    let server = Server::start(dir.path(), &[("TALLY_REDIS_URL", url.as_str())]);
    let warned = server.logged(|event| {
        event["level"] == "WARN"
            && event["message"]
                .as_str()
                .is_some_and(|m| m.contains("Redis") && m.contains("per instance"))
    });
    assert_eq!(warned.len(), 1, "warned once: {warned:?}");
    assert_eq!(warned[0]["redis"], address.as_str(), "{warned:?}");
    let ready = server.request("GET", "/ready", None, "").unwrap();
    assert_eq!(ready.status, 200, "{}", ready.body);
    let body: Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(body["redis"], "unreachable", "{body}");
    let metrics = process::get(&mut server.connect(), "/metrics").body;
    assert_eq!(gauge(&metrics), Some("0"), "{metrics}");
    server.stop();
}
