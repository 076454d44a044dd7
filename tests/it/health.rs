//! `GET /health`, `GET /ready` and the headers every response carries.

use crate::common;

use axum::http::StatusCode;
use std::io::Write as _;

use common::process::{self, Server};
use common::{stalled_body, TestApp};
use serde_json::json;

#[tokio::test]
async fn health_answers_ok_while_the_process_runs() {
    let app = TestApp::new().await;
    let response = app.get("/health").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!({ "status": "ok" }));
}

#[tokio::test]
async fn ready_answers_200_with_a_database_and_503_without() {
    let app = TestApp::new().await;
    assert_eq!(app.get("/ready").await.status, StatusCode::OK);
    app.state.db.close_by_ref().await.unwrap();
    let response = app.get("/ready").await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json()["error"], "Database unreachable");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_clients() {
    let app = TestApp::new().await;
    let generated = app.get("/health").await;
    assert!(generated
        .header("x-request-id")
        .is_some_and(|id| !id.is_empty()));

    let request = axum::http::Request::get("/health")
        .header("x-request-id", "trace-me-123")
        .body(axum::body::Body::empty())
        .unwrap();
    let echoed = app.request(request).await;
    assert_eq!(echoed.header("x-request-id"), Some("trace-me-123"));

    // Only 1 to 64 characters of A-Z, a-z, 0-9, `.`, `_` and `-` are kept; anything else is
    // replaced by a new id.
    let longest = "a.B_c-9".repeat(9) + "x";
    assert_eq!(longest.len(), 64);
    let sent = |id: &str| {
        axum::http::Request::get("/health")
            .header("x-request-id", id.as_bytes())
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(
        app.request(sent(&longest)).await.header("x-request-id"),
        Some(longest.as_str())
    );
    for refused in [
        "",
        "x status=500",
        "quote\"d",
        "tab\tbed",
        "é",
        &format!("{longest}y"),
    ] {
        let answer = app.request(sent(refused)).await;
        let id = answer.header("x-request-id").unwrap();
        assert_ne!(id, refused);
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{refused:?} got {id}");
    }

    let not_found = app.get("/nope").await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    assert!(not_found.header("x-request-id").is_some());
}

// ---- Every error body is JSON -------------------------------------------------------------

#[tokio::test]
async fn unknown_paths_and_wrong_methods_answer_json_errors() {
    let app = TestApp::new().await;
    let not_found = app.get("/nope").await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    assert_eq!(
        not_found.json(),
        json!({ "error": "Not found", "code": "NOT_FOUND" })
    );
    assert_eq!(not_found.header("content-type"), Some("application/json"));

    let wrong_method = app.get("/api/track").await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        wrong_method.json(),
        json!({ "error": "Method not allowed", "code": "METHOD_NOT_ALLOWED" })
    );
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    let wrong_method = app.post_json("/health", None, &json!({})).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.json()["error"], "Method not allowed");
    assert!(wrong_method.header("x-request-id").is_some());
}

#[tokio::test]
async fn a_request_over_the_request_timeout_answers_408_json() {
    let app = TestApp::with_config(tally::config::Config {
        request_timeout: std::time::Duration::from_millis(300),
        body_read_timeout: std::time::Duration::from_secs(30),
        ..tally::config::Config::default()
    })
    .await;
    let request = axum::http::Request::post("/api/install-callback")
        .body(stalled_body("{\"skill"))
        .unwrap();
    let response = app.request(request).await;
    assert_eq!(response.status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(
        response.json(),
        json!({ "error": "Request timeout", "code": "REQUEST_TIMEOUT" })
    );
    assert!(response.header("x-request-id").is_some());
}

#[tokio::test]
async fn a_body_that_stalls_answers_408_json_and_stores_nothing() {
    let app = TestApp::with_config(tally::config::Config {
        body_read_timeout: std::time::Duration::from_millis(300),
        ..tally::config::Config::default()
    })
    .await;
    for path in ["/api/install-callback", "/api/track", "/graphql"] {
        let request = axum::http::Request::post(path)
            .header("content-type", "application/json")
            .body(stalled_body("{\"skill_id\": \"a"))
            .unwrap();
        let started = std::time::Instant::now();
        let response =
            tokio::time::timeout(std::time::Duration::from_secs(5), app.request(request))
                .await
                .unwrap_or_else(|_| panic!("{path}: no answer to a stalled body"));
        assert_eq!(response.status, StatusCode::REQUEST_TIMEOUT, "{path}");
        assert_eq!(
            response.json(),
            json!({ "error": "Request body timeout", "code": "REQUEST_TIMEOUT" }),
            "{path}"
        );
        assert_eq!(response.header("connection"), Some("close"), "{path}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{path}"
        );
    }
    let stored = common::tables::stored_events_in_total(&app.state.db).await;
    assert_eq!(stored, 0);
}

// ---- Connections, through the real binary ---------------------------------------------------

/// Asserts that the server closes `stream` about a second after `since`: the timeouts these
/// tests set are one second.
fn assert_closed_a_second_after(stream: &mut std::net::TcpStream, since: std::time::Instant) {
    let took = process::closed_after(stream, since);
    assert!(
        took >= std::time::Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    assert!(
        took < std::time::Duration::from_secs(4),
        "closed too late: {took:?}"
    );
}

#[test]
fn a_half_sent_request_head_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TALLY_HEADER_READ_TIMEOUT_SECONDS", "1")]);
    let mut slow = server.connect();
    let opened = std::time::Instant::now();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: tally\r\nX-Slow: ")
        .unwrap();
    assert_closed_a_second_after(&mut slow, opened);
    // A client that sends its request promptly is served as before.
    assert_eq!(process::get(&mut server.connect(), "/health").status, 200);
    let metrics = process::get(&mut server.connect(), "/metrics").body;
    assert!(
        metrics.contains("tally_connections_timed_out_total{reason=\"header_read\"} 1"),
        "{metrics}"
    );
    server.stop();
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TALLY_KEEP_ALIVE_TIMEOUT_SECONDS", "1")]);
    let mut client = server.connect();
    // Kept alive: two requests on one connection.
    assert_eq!(process::get(&mut client, "/health").status, 200);
    assert_eq!(process::get(&mut client, "/health").status, 200);
    let answered = std::time::Instant::now();
    assert_closed_a_second_after(&mut client, answered);
    server.stop();
}

#[test]
fn connections_over_the_cap_are_refused_and_health_answers_on_a_freed_slot() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TALLY_MAX_CONNECTIONS", "2")]);
    let idle: Vec<_> = (0..2).map(|_| server.connect()).collect();
    std::thread::sleep(std::time::Duration::from_millis(300));

    let mut third = server.connect();
    let process::Response { status, head, body } = process::get(&mut third, "/health");
    assert_eq!(status, 503, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("x-request-id: "),
        "{head}"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({ "error": "Too many open connections", "code": "SERVICE_UNAVAILABLE" })
    );
    process::closed_after(&mut third, std::time::Instant::now());

    drop(idle);
    // The server notices closed connections a moment later: until then a new one is refused.
    let on_a_free_slot = |path: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let response = process::get(&mut server.connect(), path);
            if response.status == 200 {
                return response;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no slot was freed for {path}: {}",
                response.status
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    on_a_free_slot("/health");
    // At least the one above (a retry while the slot was being freed may add more).
    let metrics = on_a_free_slot("/metrics").body;
    let refused: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("tally_connections_refused_total "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no refusal counted: {metrics}"));
    assert!(refused >= 1, "{metrics}");
    server.stop();
}

/// A connection to the server from the loopback address `from` (any 127.x.y.z is this machine).
fn connect_from(server: &Server, from: &str) -> std::net::TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket
            .connect(server.address.parse().unwrap())
            .await
            .unwrap()
    });
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(process::PATIENCE)).unwrap();
    stream
}

#[test]
fn one_address_cannot_hold_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("TALLY_MAX_CONNECTIONS", "100"),
            ("TALLY_MAX_CONNECTIONS_PER_ADDRESS", "3"),
            ("TALLY_TRUSTED_PROXIES", "127.0.0.3"),
        ],
    );
    let held: Vec<_> = (0..3).map(|_| connect_from(&server, "127.0.0.1")).collect();
    std::thread::sleep(std::time::Duration::from_millis(300));

    let mut fourth = connect_from(&server, "127.0.0.1");
    let process::Response { status, head, body } = process::get(&mut fourth, "/health");
    assert_eq!(status, 503, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({ "error": "Too many open connections from this address", "code": "SERVICE_UNAVAILABLE" })
    );
    process::closed_after(&mut fourth, std::time::Instant::now());

    // Another address is served, and a trusted proxy counts against the total cap only.
    assert_eq!(
        process::get(&mut connect_from(&server, "127.0.0.2"), "/health").status,
        200
    );
    let mut through_proxy: Vec<_> = (0..5).map(|_| connect_from(&server, "127.0.0.3")).collect();
    for stream in &mut through_proxy {
        assert_eq!(process::get(stream, "/health").status, 200);
    }

    // Once one of its connections closes, the address may open another.
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let response = process::get(&mut connect_from(&server, "127.0.0.1"), "/metrics");
        if response.status == 200 {
            // At least the one above (a retry while the slot was being freed may add more).
            let refused: u64 = response
                .body
                .lines()
                .find_map(|line| line.strip_prefix("tally_connections_refused_per_address_total "))
                .and_then(|count| count.trim().parse().ok())
                .unwrap_or_else(|| panic!("no refusal counted: {}", response.body));
            assert!(refused >= 1);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no slot was freed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server.stop();
}

#[test]
fn a_body_that_stalls_on_the_wire_gets_408() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TALLY_BODY_READ_TIMEOUT_SECONDS", "1")]);
    let mut client = server.connect();
    let sent = std::time::Instant::now();
    client
        .write_all(
            b"POST /api/track HTTP/1.1\r\nHost: tally\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"skill_id\":",
        )
        .unwrap();
    let process::Response { status, head, body } =
        process::read_response(&mut client).expect("a response");
    assert_eq!(status, 408, "{head}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({ "error": "Request body timeout", "code": "REQUEST_TIMEOUT" })
    );
    assert!(sent.elapsed() < std::time::Duration::from_secs(4));
    server.stop();
}

// ---- PostgreSQL unreachable ------------------------------------------------------------------

/// A TCP proxy in front of PostgreSQL that a test can cut (close every connection and stop
/// listening) and restore on the same port.
struct CuttableProxy {
    runtime: tokio::runtime::Runtime,
    target: std::net::SocketAddr,
    port: u16,
    acceptor: Option<tokio::task::JoinHandle<()>>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl CuttableProxy {
    fn start(runtime: tokio::runtime::Runtime, target: std::net::SocketAddr) -> Self {
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut proxy = Self {
            runtime,
            target,
            port,
            acceptor: None,
            links: Default::default(),
        };
        proxy.listen(listener);
        proxy
    }

    fn listen(&mut self, listener: tokio::net::TcpListener) {
        let (target, links) = (self.target, self.links.clone());
        self.acceptor = Some(self.runtime.spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links.lock().unwrap().push(link);
            }
        }));
    }

    fn cut(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
        }
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
        // Aborted tasks drop their sockets on the runtime's threads: give them a moment.
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    fn restore(&mut self) {
        let listener = self
            .runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", self.port)))
            .unwrap();
        self.listen(listener);
    }
}

/// `url` with its host and port replaced by 127.0.0.1:`port`; and the host and port it had.
fn through_proxy(url: &str, port: u16) -> (String, String) {
    let authority_start = url.find("://").unwrap() + 3;
    let rest = &url[authority_start..];
    let host_start = authority_start + rest.find('@').map_or(0, |at| at + 1);
    let host_end = host_start + url[host_start..].find('/').unwrap();
    let original = url[host_start..host_end].to_owned();
    let proxied = format!("{}127.0.0.1:{port}{}", &url[..host_start], &url[host_end..]);
    (proxied, original)
}

/// One request on a new connection: (status, head, body, how long it took).
fn timed_request(
    server: &Server,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> (u16, String, String, std::time::Duration) {
    let started = std::time::Instant::now();
    let response = server
        .request(method, path, bearer, body)
        .expect("a response");
    (
        response.status,
        response.head,
        response.body,
        started.elapsed(),
    )
}

fn has_retry_after(head: &str) -> bool {
    head.to_ascii_lowercase().contains("\r\nretry-after: ")
}

/// Requests that each get a 503 while the database is away, from a few clients at once; how many
/// 503s came back (anything else fails the test).
fn many_503s(server: &Server, key: &str, token: &str, rounds: usize) -> usize {
    let tool_use =
        json!({ "skill_id": "s", "tool_name": "t", "ts": chrono::Utc::now().to_rfc3339() })
            .to_string();
    let me = json!({ "query": "{ me { email } }" }).to_string();
    let unknown_key = tally::domain::keys::generate().plaintext;
    let requests: [(&str, &str, Option<&str>, &str); 4] = [
        ("POST", "/api/v1/verify", Some(key), "{}"),
        ("POST", "/api/track", Some(key), tool_use.as_str()),
        ("POST", "/api/v1/verify", Some(unknown_key.as_str()), "{}"),
        ("GET", "/ready", None, ""),
    ];
    let counted = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for client in 0..4 {
            let (requests, counted, me) = (&requests, &counted, &me);
            scope.spawn(move || {
                for round in 0..rounds {
                    let (method, path, bearer, body) = requests[(client + round) % 4];
                    let (status, head, body, _) = timed_request(server, method, path, bearer, body);
                    assert_eq!(status, 503, "{path}: {head}\n{body}");
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                // GraphQL fails too (as an INTERNAL error), logged the same way.
                let answer = server
                    .request("POST", "/graphql", Some(token), me)
                    .expect("an answer");
                assert!(answer.body.contains("INTERNAL"), "{}", answer.body);
            });
        }
    });
    counted.into_inner()
}

#[test]
fn with_postgres_unreachable_ready_and_ingestion_answer_503_within_a_second_and_recover() {
    if std::env::var("TALLY_TEST_DATABASE_URL").map_or(true, |url| url.is_empty()) {
        eprintln!("skipped: needs PostgreSQL (TALLY_TEST_DATABASE_URL)");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (test_db, db) = runtime.block_on(common::TestDb::migrated());
    runtime.block_on(db.close()).ok();
    let url = test_db.url.clone();
    let (_, postgres) = through_proxy(&url, 0);
    let target = std::net::ToSocketAddrs::to_socket_addrs(&postgres)
        .unwrap()
        .next()
        .unwrap();
    let mut proxy = CuttableProxy::start(runtime, target);
    let (proxied_url, _) = through_proxy(&url, proxy.port);

    let dir = tempfile::tempdir().unwrap();
    // With backtraces asked for, as many deployments set them: expected failures must still cost
    // no backtrace (resolving one took hundreds of MB).
    let mut settings = vec![
        ("TALLY_DATABASE_URL", proxied_url.as_str()),
        ("RUST_BACKTRACE", "1"),
    ];
    settings.extend(process::OPS_ADMIN);
    let server = Server::start(dir.path(), &settings);
    let token = server.login(process::OPS_EMAIL, process::OPS_PASSWORD);
    let key = server.create_key(&token, "gateway", false);
    let (status, _, body, _) = timed_request(&server, "POST", "/api/v1/verify", Some(&key), "{}");
    assert_eq!(status, 200, "{body}");

    let before = server.resident_kb();
    proxy.cut();
    // A key not seen before needs the database; a known one is answered from memory until the
    // event is to be written.
    let unknown_key = tally::domain::keys::generate().plaintext;
    let tool_use =
        json!({ "skill_id": "s", "tool_name": "t", "ts": chrono::Utc::now().to_rfc3339() })
            .to_string();
    for (method, path, bearer, body) in [
        ("GET", "/ready", None, ""),
        ("POST", "/api/v1/verify", Some(key.as_str()), "{}"),
        ("POST", "/api/v1/verify", Some(unknown_key.as_str()), "{}"),
        ("POST", "/api/track", Some(key.as_str()), tool_use.as_str()),
    ] {
        let (status, head, body, took) = timed_request(&server, method, path, bearer, body);
        assert_eq!(
            status, 503,
            "{path} while PostgreSQL is unreachable: {head}\n{body}"
        );
        assert!(has_retry_after(&head), "{path}: {head}");
        assert!(
            took < std::time::Duration::from_secs(1),
            "{path} took {took:?} to answer"
        );
    }

    // Memory stays flat through the outage, backtraces asked for or not.
    let answered = many_503s(&server, &key, &token, 30);
    let grown_mb = server.resident_kb().saturating_sub(before) / 1024;
    eprintln!("resident memory grew by {grown_mb} MB over {answered} answers of 503");
    assert!(
        grown_mb < 30,
        "resident memory grew by {grown_mb} MB over {answered} answers of 503"
    );
    let log = server.logged(|event| event["level"] == "WARN" || event["level"] == "ERROR");
    let backtraces = log
        .iter()
        .filter(|event| event.to_string().to_lowercase().contains("stack backtrace"))
        .count();
    assert_eq!(backtraces, 0, "a backtrace was logged: {log:?}");

    proxy.restore();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while timed_request(&server, "GET", "/ready", None, "").0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "/ready did not recover"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, _, body, _) = timed_request(&server, "POST", "/api/v1/verify", Some(&key), "{}");
    assert_eq!(status, 200, "verify after recovery: {body}");
    server.stop();
}

#[tokio::test]
async fn metrics_describe_every_series_and_time_requests_per_route() {
    let app = TestApp::new().await;
    assert_eq!(app.get("/health").await.status, StatusCode::OK);
    assert_eq!(app.get("/no/such/page").await.status, StatusCode::NOT_FOUND);
    let response = app.get("/metrics").await;
    assert_eq!(response.status, StatusCode::OK);
    let text = String::from_utf8(response.body).unwrap();

    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).unwrap();
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP line:\n{text}"
        );
    }
    assert!(
        text.contains("# TYPE tally_http_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"tally_http_request_duration_seconds_count{route="/health",method="GET"} 1"#
        ),
        "{text}"
    );
    // Unknown paths are counted too, under one route name (never their raw text).
    assert!(
        text.contains(r#"tally_http_requests_total{route="unmatched",status="404"} 1"#),
        "{text}"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!(
            r#"tally_build_info{{version="{version}",commit=""#
        )),
        "{text}"
    );
    let resident = text
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no process memory figure:\n{text}"));
    assert!(resident > 0.0);
}

// ---- Methods no route has --------------------------------------------------------------------

/// A request with a method of the client's choosing.
fn with_method(method: &str, path: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::builder()
        .method(axum::http::Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .body(axum::body::Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_method_no_route_has_is_refused_before_it_reaches_the_metrics() {
    let app = TestApp::new().await;
    let baseline = app.get("/metrics").await.body.len();
    for i in 0..200 {
        let method = format!("M{i}{}", "X".repeat(10_000));
        let response = app.request(with_method(&method, "/health")).await;
        assert_eq!(response.status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(
            response.json(),
            json!({ "error": "Method not implemented", "code": "METHOD_NOT_IMPLEMENTED" })
        );
        assert!(response.header("x-request-id").is_some());
    }
    for method in ["CONNECT", "PROPFIND", "get"] {
        let response = app.request(with_method(method, "/health")).await;
        assert_eq!(response.status, StatusCode::NOT_IMPLEMENTED, "{method}");
    }
    let text = String::from_utf8(app.get("/metrics").await.body).unwrap();
    assert!(!text.contains("XXXX"), "a client's method became a label");
    assert!(
        text.len() < baseline + 4_096,
        "/metrics grew from {baseline} to {} bytes",
        text.len()
    );

    // Methods HTTP defines still reach the routes: 405 with the route's methods, counted.
    for method in ["PUT", "PATCH", "DELETE", "TRACE", "QUERY"] {
        let response = app.request(with_method(method, "/api/track")).await;
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(response.header("allow"), Some("POST"), "{method}");
    }
    let text = String::from_utf8(app.get("/metrics").await.body).unwrap();
    assert!(
        text.contains(
            r#"tally_http_request_duration_seconds_count{route="/api/track",method="PATCH"} 1"#
        ),
        "{text}"
    );
}
