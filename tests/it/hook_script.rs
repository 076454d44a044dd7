//! `examples/hooks/tally-track.sh` against the real server: a signed tool use lands once.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::process::{
    assert_success, default_database_url, Server, OPS_ADMIN, OPS_EMAIL, OPS_PASSWORD,
};
use common::tables;
use tally::entity::usage_event;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hooks/tally-track.sh");

/// A server started in `dir` with an admin, and a new key of the admin's account.
fn server_with_key(dir: &Path, require_signature: bool) -> (Server, String) {
    let server = Server::start(dir, &OPS_ADMIN);
    let token = server.login(OPS_EMAIL, OPS_PASSWORD);
    let key = server.create_key(&token, "hooks", require_signature);
    (server, key)
}

/// Runs the hook script with `args` as a hook would, strict (a refusal fails the run), with
/// further `env` settings such as the snippets.
fn run_script(
    server: &Server,
    key: &str,
    event_id: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    Command::new("sh")
        .arg(SCRIPT)
        .args(args)
        .env("TALLY_URL", format!("http://{}", server.address))
        .env("TALLY_API_KEY", key)
        .env("TALLY_EVENT_ID", event_id)
        .envs(env.iter().copied())
        .env("TALLY_STRICT", "1")
        .output()
        .expect("run the hook script")
}

/// Every usage event a server that ran in `dir` stored, read straight from its database file.
fn stored_events(dir: &Path) -> Vec<usage_event::Model> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = tally::db::connect(&default_database_url(dir))
            .await
            .unwrap();
        tables::all_events(&db).await
    })
}

#[test]
fn the_hook_script_posts_a_signed_tool_use_that_is_counted_once() {
    if Command::new("openssl").arg("version").output().is_err()
        || Command::new("curl").arg("--version").output().is_err()
    {
        panic!("the hook script needs curl and openssl on PATH");
    }
    let dir = tempfile::tempdir().unwrap();
    // A key that requires signatures: only a correctly signed request is accepted.
    let (server, key) = server_with_key(dir.path(), true);
    let snippet = [("TALLY_INPUT_SNIPPET", "grep -n \"quote\" \\ back\tslash")];

    for _ in 0..2 {
        let out = run_script(
            &server,
            &key,
            "hook-run-1",
            &["code-review", "Bash", "PostToolUse"],
            &snippet,
        );
        assert_success(&out);
    }
    let wrong_key = tally::domain::keys::generate().plaintext;
    let refused = run_script(
        &server,
        &wrong_key,
        "hook-run-2",
        &["code-review", "Bash"],
        &snippet,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("answered 401"));
    server.stop();

    let events = stored_events(dir.path());
    assert_eq!(events.len(), 1, "the retried run counted once");
    let event = &events[0];
    assert_eq!(event.skill_id.as_deref(), Some("code-review"));
    assert_eq!(event.tool_name.as_deref(), Some("Bash"));
    assert_eq!(event.hook_event.as_deref(), Some("PostToolUse"));
    // Quotes and backslashes survive; the tab (a control character) is dropped.
    assert_eq!(
        event.input_snippet.as_deref(),
        Some("grep -n \"quote\" \\ backslash")
    );
}

#[test]
fn snippets_are_cut_by_characters_not_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (server, key) = server_with_key(dir.path(), false);
    // The 1000th character is a two-byte one: a cut at 1000 bytes would split it.
    let snippet = format!("{}{}", "a".repeat(999), "é€".repeat(50));
    let out = run_script(
        &server,
        &key,
        "multibyte",
        &["code-review", "Read"],
        &[("TALLY_OUTPUT_SNIPPET", &snippet)],
    );
    assert_success(&out);
    server.stop();

    let events = stored_events(dir.path());
    let stored = events[0].output_snippet.clone().unwrap();
    assert_eq!(stored.chars().count(), 1000);
    assert_eq!(stored, format!("{}é", "a".repeat(999)));
}

/// A server for one request that answers 200 and hands back the body it was sent: what the
/// script puts on the wire, byte for byte.
fn capture_one_body() -> (String, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let captured = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        body
    });
    (url, captured)
}

#[test]
fn the_hook_script_leaves_out_fields_it_has_no_value_for() {
    let (url, captured) = capture_one_body();
    // An empty hook event, an unset event id and snippets that are blank once control
    // characters are dropped: none of them is sent as "".
    let out = Command::new("sh")
        .arg(SCRIPT)
        .args(["code-review", "Bash", ""])
        .env("TALLY_URL", url)
        .env("TALLY_API_KEY", tally::domain::keys::generate().plaintext)
        .env("TALLY_EVENT_ID", "")
        .env("TALLY_INPUT_SNIPPET", "\t\n")
        .env("TALLY_OUTPUT_SNIPPET", "")
        .env("TALLY_STRICT", "1")
        .output()
        .expect("run the hook script");
    assert_success(&out);
    let body: serde_json::Value = serde_json::from_slice(&captured.join().unwrap()).unwrap();
    let fields = body.as_object().unwrap();
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["event_id", "skill_id", "tool_name", "ts"], "{body}");
    assert!(
        fields
            .values()
            .all(|v| v.as_str().is_some_and(|s| !s.is_empty())),
        "{body}"
    );
}
