//! `examples/hooks/tally-track.sh` against the real server: a signed tool use lands once.

use crate::common;

use std::process::Command;

use common::process::Server;
use serde_json::json;

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

#[test]
fn the_hook_script_posts_a_signed_tool_use_that_is_counted_once() {
    if Command::new("openssl").arg("version").output().is_err()
        || Command::new("curl").arg("--version").output().is_err()
    {
        panic!("the hook script needs curl and openssl on PATH");
    }
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TALLY_ADMIN_EMAIL", "ops@example.com"),
        ("TALLY_ADMIN_PASSWORD", "a long admin password"),
    ];
    let server = Server::start(dir.path(), &env);
    let login = server.graphql(
        None,
        "mutation { login(email: \"ops@example.com\", password: \"a long admin password\") { token } }",
        json!({}),
    );
    let token = login["data"]["login"]["token"].as_str().unwrap().to_owned();
    // A key that requires signatures: only a correctly signed request is accepted.
    let created = server.graphql(
        Some(&token),
        "mutation { createApiKey(name: \"hooks\", requireSignature: true) { key } }",
        json!({}),
    );
    let key = created["data"]["createApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_owned();

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
        use sea_orm::{ConnectionTrait, Statement};
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("tally.db").display());
        let db = tally::db::connect(&url).await.unwrap();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*), MIN(skill_id), MIN(tool_name), MIN(hook_event), MIN(input_snippet) FROM usage_events",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), 1, "the retried run counted once");
        assert_eq!(row.try_get_by_index::<String>(1).unwrap(), "code-review");
        assert_eq!(row.try_get_by_index::<String>(2).unwrap(), "Bash");
        assert_eq!(row.try_get_by_index::<String>(3).unwrap(), "PostToolUse");
        // Quotes and backslashes survive; the tab (a control character) is dropped.
        assert_eq!(row.try_get_by_index::<String>(4).unwrap(), "grep -n \"quote\" \\ backslash");
    });
}

#[test]
fn snippets_are_cut_by_characters_not_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TALLY_ADMIN_EMAIL", "ops@example.com"),
        ("TALLY_ADMIN_PASSWORD", "a long admin password"),
    ];
    let server = Server::start(dir.path(), &env);
    let login = server.graphql(
        None,
        "mutation { login(email: \"ops@example.com\", password: \"a long admin password\") { token } }",
        json!({}),
    );
    let token = login["data"]["login"]["token"].as_str().unwrap().to_owned();
    let created = server.graphql(
        Some(&token),
        "mutation { createApiKey(name: \"hooks\") { key } }",
        json!({}),
    );
    let key = created["data"]["createApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
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
        use sea_orm::{ConnectionTrait, Statement};
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("tally.db").display()
        );
        let db = tally::db::connect(&url).await.unwrap();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT output_snippet FROM usage_events",
            ))
            .await
            .unwrap()
            .unwrap();
        let stored = row.try_get_by_index::<String>(0).unwrap();
        assert_eq!(stored.chars().count(), 1000);
        assert_eq!(stored, format!("{}é", "a".repeat(999)));
    });
}
