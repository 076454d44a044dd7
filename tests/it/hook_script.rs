//! `examples/hooks/tally-track.sh` against the real server: a signed tool use lands once.

use crate::common;

use std::process::Command;

use common::process::{Server, OPS_ADMIN, OPS_EMAIL, OPS_PASSWORD};
use common::tables;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hooks/tally-track.sh");

fn run_script(server: &Server, key: &str, event_id: &str, args: &[&str]) -> std::process::Output {
    Command::new("sh")
        .arg(SCRIPT)
        .args(args)
        .env("TALLY_URL", format!("http://{}", server.address))
        .env("TALLY_API_KEY", key)
        .env("TALLY_EVENT_ID", event_id)
        .env("TALLY_INPUT_SNIPPET", "grep -n \"quote\" \\ back\tslash")
        .env("TALLY_STRICT", "1")
        .output()
        .expect("run the hook script")
}

/// The database a server started in `dir` writes by default.
fn stored_in(dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("tally.db").display())
}

#[test]
fn the_hook_script_posts_a_signed_tool_use_that_is_counted_once() {
    if Command::new("openssl").arg("version").output().is_err()
        || Command::new("curl").arg("--version").output().is_err()
    {
        panic!("the hook script needs curl and openssl on PATH");
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &OPS_ADMIN);
    let token = server.login(OPS_EMAIL, OPS_PASSWORD);
    // A key that requires signatures: only a correctly signed request is accepted.
    let key = server.create_key(&token, "hooks", true);

    for _ in 0..2 {
        let out = run_script(
            &server,
            &key,
            "hook-run-1",
            &["code-review", "Bash", "PostToolUse"],
        );
        assert!(
            out.status.success(),
            "script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let wrong_key = tally::domain::keys::generate().plaintext;
    let refused = run_script(&server, &wrong_key, "hook-run-2", &["code-review", "Bash"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("answered 401"));
    server.stop();

    // Read what was stored straight from the database file.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = tally::db::connect(&stored_in(dir.path())).await.unwrap();
        let events = tables::all_events(&db).await;
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
    });
}

#[test]
fn snippets_are_cut_by_characters_not_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &OPS_ADMIN);
    let token = server.login(OPS_EMAIL, OPS_PASSWORD);
    let key = server.create_key(&token, "hooks", false);
    // The 1000th character is a two-byte one: a cut at 1000 bytes would split it.
    let snippet = format!("{}{}", "a".repeat(999), "é€".repeat(50));
    let out = Command::new("sh")
        .arg(SCRIPT)
        .args(["code-review", "Read"])
        .env("TALLY_URL", format!("http://{}", server.address))
        .env("TALLY_API_KEY", &key)
        .env("TALLY_EVENT_ID", "multibyte")
        .env("TALLY_OUTPUT_SNIPPET", &snippet)
        .env("TALLY_STRICT", "1")
        .output()
        .expect("run the hook script");
    assert!(
        out.status.success(),
        "script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = tally::db::connect(&stored_in(dir.path())).await.unwrap();
        let events = tables::all_events(&db).await;
        let stored = events[0].output_snippet.clone().unwrap();
        assert_eq!(stored.chars().count(), 1000);
        assert_eq!(stored, format!("{}é", "a".repeat(999)));
    });
}
