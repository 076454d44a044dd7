//! What the service writes to its log, read from the real binary's stderr (JSON lines).

use crate::common;

use std::io::Write;

use common::process::{self, Server, OPS_ADMIN, OPS_EMAIL, OPS_PASSWORD};
use serde_json::{json, Value};

fn access_line_of(request_id: &'static str) -> impl Fn(&Value) -> bool {
    move |event| event["target"] == "tally::access" && event["request_id"] == request_id
}

/// Sends `method path` with this request id on a connection of its own and reads the answer.
fn send_traced(server: &Server, method: &str, path: &str, request_id: &str) -> process::Response {
    let mut stream = server.connect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: tally\r\nx-request-id: {request_id}\r\n\r\n"
    )
    .unwrap();
    process::read_response(&mut stream).unwrap()
}

#[test]
fn each_request_writes_one_info_access_line_with_a_numeric_latency() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    for (request_id, path) in [("log-health", "/health"), ("log-unknown", "/no/such/page")] {
        send_traced(&server, "GET", path, request_id);
    }

    let lines = server.logged(access_line_of("log-health"));
    assert_eq!(lines.len(), 1, "exactly one access line: {lines:?}");
    let line = &lines[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/health");
    assert_eq!(line["status"], 200);
    let latency = line["latency_ms"].as_f64().expect("latency_ms is a number");
    assert!((0.0..10_000.0).contains(&latency), "{latency}");

    // An unknown path is logged as unmatched, not by its raw text.
    let lines = server.logged(access_line_of("log-unknown"));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["route"], "unmatched");
    assert_eq!(lines[0]["status"], 404);
}

#[test]
fn admin_actions_are_logged_at_info_with_who_did_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &OPS_ADMIN);
    let admin = server.login(OPS_EMAIL, OPS_PASSWORD);
    let member = server.member_with_key("logged@example.com");

    server.set_plan(&admin, &member.account_id, "PRO");
    server.graphql_ok(
        Some(&admin),
        "mutation($a: ID!) { adminResetUsage(accountId: $a) { calls } }",
        json!({ "a": member.account_id }),
    );
    server.graphql_ok(
        Some(&member.token),
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        json!({ "id": member.key_id }),
    );

    let plan_change = server.logged(|e| e["message"] == "admin moved an account to a plan");
    assert_eq!(plan_change.len(), 1, "{plan_change:?}");
    assert_eq!(plan_change[0]["level"], "INFO");
    assert_eq!(plan_change[0]["admin"], OPS_EMAIL);
    assert_eq!(plan_change[0]["account_id"], member.account_id.as_str());
    assert_eq!(plan_change[0]["plan"], "PRO");

    let reset = server.logged(|e| e["message"] == "admin reset an account's usage");
    assert_eq!(reset.len(), 1, "{reset:?}");
    assert_eq!(reset[0]["admin"], OPS_EMAIL);

    let revoked = server.logged(|e| e["message"] == "API key revoked");
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["by"], "logged@example.com");
    assert_eq!(revoked[0]["key_id"], member.key_id.as_str());
}

#[test]
fn commands_other_than_serve_are_quiet_unless_asked_and_never_colour_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = process::tally(dir.path())
        .args(["migrate", "up"])
        .output()
        .unwrap();
    process::assert_success(&quiet);
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "", "no log lines");

    let status = process::tally(dir.path())
        .args(["migrate", "status"])
        .output()
        .unwrap();
    process::assert_success(&status);
    let listed = String::from_utf8_lossy(&status.stdout);
    assert!(
        listed.contains("Applied  m20261123_000001_core"),
        "{listed}"
    );

    let fresh = tempfile::tempdir().unwrap();
    let verbose = process::tally(fresh.path())
        .args(["-v", "migrate", "up"])
        .env("TALLY_LOG_FORMAT", "human")
        .output()
        .unwrap();
    process::assert_success(&verbose);
    let log = String::from_utf8_lossy(&verbose.stderr);
    assert!(log.contains("INFO"), "-v logs at INFO: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "no escape codes on a pipe: {log:?}"
    );
}

#[test]
fn methods_no_route_has_reach_neither_the_log_nor_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    for i in 0..50 {
        let method = format!("M{i}{}", "X".repeat(10_000));
        let response = send_traced(&server, &method, "/health", &format!("odd-method-{i}"));
        assert_eq!(response.status, 501, "{}", response.head);
    }
    // A request after them is logged as usual: the log has caught up when its line is there.
    send_traced(&server, "GET", "/health", "after-odd-methods");
    assert_eq!(server.logged(access_line_of("after-odd-methods")).len(), 1);
    let odd = server.logged(|event| {
        event["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("odd-method-"))
            || event.to_string().contains("XXXX")
    });
    assert!(odd.is_empty(), "{} lines about odd methods", odd.len());

    let metrics = process::get(&mut server.connect(), "/metrics").body;
    assert!(!metrics.contains("XXXX"));
    assert!(metrics.len() < 64 * 1024, "{} bytes", metrics.len());
    server.stop();
}

#[test]
fn a_client_cannot_forge_fields_of_its_access_line_through_its_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TALLY_LOG_FORMAT", "human")]);
    for request_id in ["forged status=500 route=/admin", "kept-id_1.2"] {
        let mut stream = server.connect();
        write!(
            stream,
            "GET /health HTTP/1.1\r\nHost: tally\r\nx-request-id: {request_id}\r\n\r\n"
        )
        .unwrap();
        let response = process::read_response(&mut stream).unwrap();
        let echoed = response
            .head
            .lines()
            .find_map(|line| line.strip_prefix("x-request-id: "))
            .unwrap()
            .to_owned();
        if request_id.contains(' ') {
            assert!(!echoed.contains("forged"), "{echoed}");
        } else {
            assert_eq!(echoed, request_id);
        }
        let lines = server.logged(|line| {
            line.as_str()
                .is_some_and(|l| l.contains("tally::access") && l.contains(&echoed))
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = lines[0].as_str().unwrap();
        assert!(
            line.contains(&format!("request_id=\"{echoed}\"")),
            "the id is quoted: {line}"
        );
        assert!(
            line.contains("status=200") && !line.contains("status=500"),
            "{line}"
        );
        assert!(!line.contains("forged"), "{line}");
    }
    server.stop();
}
