//! The `tally` binary: first start on an empty database, restarts, and the subcommands.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::process::{
    assert_success, default_database_url, get, tally, terminate, Server, OPS_ADMIN, OPS_EMAIL,
    OPS_PASSWORD,
};
use serde_json::json;

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { role } } }";

#[test]
fn first_start_creates_an_admin_with_a_one_time_password_and_keeps_the_jwt_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let first = server.graphql(None, "{ plans { code } }", json!({}));
    assert_eq!(first["data"]["plans"][0]["code"], "FREE");
    let logged = server.logged(|e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("created the first admin"))
    });
    let log = server.log_handle();
    let stdout = server.stop();
    let password = stdout
        .lines()
        .find_map(|line| {
            line.split_once("with password: ")
                .map(|(_, p)| p.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no password printed: {stdout}"));
    // The log says so too, without the password.
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["email"], "admin@localhost");
    let log_text = format!("{:?}", log.lock().unwrap());
    assert!(
        !log_text.contains(&password),
        "the password is never logged"
    );
    assert!(
        dir.path().join("tally.db").exists(),
        "SQLite file in the working directory"
    );

    // Second start: same database, no new admin, the printed password works, and a token from
    // this run still works after another restart (the generated secret was kept).
    let server = Server::start(dir.path(), &[]);
    let login = server.graphql(
        None,
        LOGIN,
        json!({ "e": "admin@localhost", "p": password }),
    );
    assert_eq!(login["data"]["login"]["user"]["role"], "ADMIN", "{login}");
    let token = login["data"]["login"]["token"].as_str().unwrap().to_owned();
    let stdout = server.stop();
    assert!(
        !stdout.contains("with password"),
        "the password is printed once only"
    );

    let server = Server::start(dir.path(), &[]);
    let me = server.graphql(Some(&token), "{ me { email } }", json!({}));
    assert_eq!(me["data"]["me"]["email"], "admin@localhost", "{me}");
    server.stop();
}

#[test]
fn an_empty_admin_password_setting_counts_as_unset() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TALLY_ADMIN_PASSWORD", "")]);
    let stdout = server.stop();
    assert!(stdout.contains("with password: "), "generated: {stdout}");
}

#[test]
fn admin_credentials_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &OPS_ADMIN);
    let login = server.graphql(None, LOGIN, json!({ "e": OPS_EMAIL, "p": OPS_PASSWORD }));
    assert_eq!(login["data"]["login"]["user"]["role"], "ADMIN", "{login}");
    let logged = server.logged(|e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("created the first admin"))
    });
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["email"], OPS_EMAIL);
    let stdout = server.stop();
    assert!(
        !stdout.contains(OPS_PASSWORD),
        "a configured password is never printed"
    );
}

/// Sets up the database in `dir`, as the commands that work on an installation need.
fn migrate_up(dir: &Path) {
    assert_success(&tally(dir).args(["migrate", "up"]).output().unwrap());
}

/// Runs `tally user create` in `dir` for `email` and `password`, with further `flags`.
fn create_user(dir: &Path, email: &str, password: &str, flags: &[&str]) -> Output {
    tally(dir)
        .args(["user", "create", "--email", email, "--password", password])
        .args(flags)
        .output()
        .unwrap()
}

#[test]
fn user_create_makes_users_that_can_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    migrate_up(dir.path());
    assert_success(&create_user(
        dir.path(),
        "cli@example.com",
        "from the command line",
        &["--admin"],
    ));
    assert_success(&create_user(
        dir.path(),
        "colleague@example.com",
        "another password",
        &["--account", "cli@example.com"],
    ));
    let duplicate = create_user(dir.path(), "cli@example.com", "from the command line", &[]);
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already registered"));

    let server = Server::start(dir.path(), &[]);
    let admin = server.graphql(
        None,
        LOGIN,
        json!({ "e": "cli@example.com", "p": "from the command line" }),
    );
    assert_eq!(admin["data"]["login"]["user"]["role"], "ADMIN", "{admin}");
    let colleague = server.graphql(
        None,
        LOGIN,
        json!({ "e": "colleague@example.com", "p": "another password" }),
    );
    assert_eq!(
        colleague["data"]["login"]["user"]["role"], "MEMBER",
        "{colleague}"
    );
    let token = colleague["data"]["login"]["token"].as_str().unwrap();
    let me = server.graphql(Some(token), "{ me { account { name } } }", json!({}));
    assert_eq!(
        me["data"]["me"]["account"]["name"], "cli@example.com",
        "joined the named account"
    );
    server.stop();
}

#[test]
fn user_create_refuses_an_ambiguous_account_name_and_takes_an_account_id() {
    let dir = tempfile::tempdir().unwrap();
    migrate_up(dir.path());
    // Two accounts named "Acme" (sign-ups may pick any name).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ids: Vec<String> = runtime.block_on(async {
        let db = tally::db::connect(&default_database_url(dir.path()))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for owner in ["first@acme.test", "second@acme.test"] {
            let created = tally::domain::accounts::create_user(
                &db,
                tally::domain::accounts::NewUser {
                    email: owner.to_owned(),
                    password: "an owner's password".to_owned(),
                    role: tally::domain::accounts::Role::Member,
                    account: tally::domain::accounts::AccountChoice::New("Acme".to_owned()),
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
            ids.push(created.account_id);
        }
        db.close().await.ok();
        ids
    });

    let ambiguous = create_user(
        dir.path(),
        "newcomer@acme.test",
        "a newcomer's password",
        &["--account", "Acme"],
    );
    assert!(!ambiguous.status.success(), "picked one of two accounts");
    let stderr = String::from_utf8_lossy(&ambiguous.stderr);
    assert!(stderr.contains("2 accounts are named \"Acme\""), "{stderr}");
    for id in &ids {
        assert!(stderr.contains(id.as_str()), "{id} listed: {stderr}");
    }

    // The id says which; the user joins that account.
    let joined = create_user(
        dir.path(),
        "newcomer@acme.test",
        "a newcomer's password",
        &["--account", &ids[1]],
    );
    assert_success(&joined);
    let stdout = String::from_utf8_lossy(&joined.stdout);
    assert!(
        stdout.ends_with(&format!("in account {}\n", ids[1])),
        "{stdout}"
    );
    // A name that no account has is a new account, as before.
    let fresh = create_user(
        dir.path(),
        "other@example.com",
        "another password",
        &["--account", "Initech"],
    );
    assert_success(&fresh);
    let stdout = String::from_utf8_lossy(&fresh.stdout);
    assert!(
        !ids.iter().any(|id| stdout.contains(id.as_str())),
        "{stdout}"
    );
}

#[test]
fn migrate_subcommands_apply_list_and_revert() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = tally(dir.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let applied = run(&["migrate", "up"]);
    use migration::MigratorTrait as _;
    let names: Vec<String> = migration::Migrator::migrations()
        .iter()
        .map(|m| migration::MigrationName::name(m.as_ref()).to_owned())
        .collect();
    assert!(
        applied.contains(&format!("Applied {} migration(s)", names.len())),
        "{applied}"
    );
    for name in &names {
        assert!(applied.contains(name.as_str()), "{name} in {applied}");
    }
    assert!(run(&["migrate", "status"]).contains("m20261123_000001_core"));
    let again = run(&["migrate", "up"]);
    assert!(again.contains("Nothing to apply"), "{again}");
    let last = names.last().unwrap();
    let reverted = run(&["migrate", "down"]);
    assert!(reverted.contains(&format!("Reverted {last}")), "{reverted}");
    let reapplied = run(&["migrate", "up"]);
    assert!(
        reapplied.contains(&format!("Applied 1 migration(s): {last}")),
        "{reapplied}"
    );
}

#[test]
fn schema_prints_the_sdl_and_check_spots_drift() {
    let dir = tempfile::tempdir().unwrap();
    let printed = tally(dir.path()).arg("schema").output().unwrap();
    assert!(printed.status.success());
    let sdl = String::from_utf8(printed.stdout).unwrap();
    assert!(sdl.contains("type Query"));
    let file = dir.path().join("schema.graphql");
    std::fs::write(&file, &sdl).unwrap();
    let same = tally(dir.path())
        .args(["schema", "--check", "schema.graphql"])
        .status()
        .unwrap();
    assert!(same.success());
    std::fs::write(&file, format!("{sdl}\ntype Extra {{ x: Int }}\n")).unwrap();
    let drifted = tally(dir.path())
        .args(["schema", "--check", "schema.graphql"])
        .status()
        .unwrap();
    assert!(!drifted.success());
}

#[test]
fn openapi_prints_the_document_and_check_spots_drift() {
    let dir = tempfile::tempdir().unwrap();
    let printed = tally(dir.path()).arg("openapi").output().unwrap();
    assert!(printed.status.success());
    let document = String::from_utf8(printed.stdout).unwrap();
    assert_eq!(document, tally::http::rest_routes::document());
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &document).unwrap();
    let same = tally(dir.path())
        .args(["openapi", "--check", "openapi.json"])
        .status()
        .unwrap();
    assert!(same.success());
    std::fs::write(&file, document.replace("3.1.0", "3.0.3")).unwrap();
    let drifted = tally(dir.path())
        .args(["openapi", "--check", "openapi.json"])
        .output()
        .unwrap();
    assert!(!drifted.status.success());
    assert!(String::from_utf8_lossy(&drifted.stderr).contains("tally openapi > openapi.json"));
}

#[test]
fn billing_close_invoices_ended_periods_once() {
    let dir = tempfile::tempdir().unwrap();
    migrate_up(dir.path());
    assert_success(&create_user(
        dir.path(),
        "payer@example.com",
        "a payer's password",
        &[],
    ));
    // The account has existed since October 2026: October has ended and is billed.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sea_orm::sea_query::Expr;
        use sea_orm::EntityTrait;
        use tally::entity::{account, account_plan_change};
        let db = tally::db::connect(&default_database_url(dir.path()))
            .await
            .unwrap();
        let october = chrono::DateTime::parse_from_rfc3339("2026-10-05T09:00:00+00:00")
            .unwrap()
            .to_utc();
        account::Entity::update_many()
            .col_expr(account::Column::CreatedAt, Expr::value(october))
            .exec(&db)
            .await
            .unwrap();
        account_plan_change::Entity::update_many()
            .col_expr(
                account_plan_change::Column::EffectiveAt,
                Expr::value(october),
            )
            .exec(&db)
            .await
            .unwrap();
    });
    let close = |as_of: &str| {
        tally(dir.path())
            .args(["billing", "close", "--as-of", as_of])
            .output()
            .unwrap()
    };
    let first = close("2026-11-01T00:00:00Z");
    assert_success(&first);
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("Created 1 invoice(s), 0 cents in total")
    );
    let again = close("2026-11-01T00:00:00Z");
    assert!(String::from_utf8_lossy(&again.stdout).contains("Created 0 invoice(s)"));
    let future = close("2999-01-01T00:00:00Z");
    assert!(!future.status.success());
    assert!(String::from_utf8_lossy(&future.stderr).contains("future"));
}

#[test]
fn the_server_survives_a_closed_log_stream_and_still_stops_cleanly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tally(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("tally listening") {
        line.clear();
        assert!(log.read_line(&mut line).unwrap() > 0, "server exited early");
    }
    drop(log); // whoever read the logs is gone
    terminate(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}

/// Runs `tally` (serve) in `dir` until it listens or exits: (exit status if it exited, stdout,
/// the log lines written before "tally listening"). A server that listens is stopped.
fn start_and_stop(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (
    Option<std::process::ExitStatus>,
    String,
    Vec<serde_json::Value>,
) {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let mut command = tally(dir);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut log = Vec::new();
    let mut listening = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let event = serde_json::from_str(&line).unwrap_or_else(|_| json!({ "message": line }));
        listening = event["message"] == "tally listening";
        log.push(event);
        if listening {
            break;
        }
    }
    if listening {
        terminate(&child);
    }
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    ((!listening).then_some(status), stdout, log)
}

fn log_text(log: &[serde_json::Value]) -> String {
    log.iter()
        .map(|event| event.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn serve_refuses_a_jwt_secret_shorter_than_32_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let short = "31-bytes-is-one-byte-too-short!";
    assert_eq!(short.len(), 31);
    for (args, env) in [
        (
            vec!["--bind", "127.0.0.1:0"],
            vec![("TALLY_JWT_SECRET", short)],
        ),
        (
            vec!["serve", "--bind", "127.0.0.1:0", "--jwt-secret", short],
            vec![],
        ),
    ] {
        let (exited, _, log) = start_and_stop(dir.path(), &args, &env);
        let status = exited.expect("serve refused to start");
        assert!(!status.success());
        let text = log_text(&log);
        assert!(text.contains("at least 32 bytes"), "{text}");
        assert!(!text.contains(short), "the secret is not echoed: {text}");
        assert!(!dir.path().join("tally.db").exists(), "nothing was set up");
    }
    // 32 bytes are enough, and the sign-in works with it.
    let (exited, _, _) = start_and_stop(
        dir.path(),
        &["--bind", "127.0.0.1:0"],
        &[("TALLY_JWT_SECRET", "32-bytes-is-just-long-enough-ok!")],
    );
    assert_eq!(exited, None, "started");
}

#[test]
fn commands_on_an_installation_refuse_a_missing_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["billing", "close"],
        vec![
            "user",
            "create",
            "--email",
            "a@example.com",
            "--password",
            "long enough",
        ],
        vec!["migrate", "status"],
        vec!["migrate", "down"],
    ] {
        let out = tally(dir.path()).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("there is no database at"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("tally.db"), "{stderr}");
        assert!(
            !dir.path().join("tally.db").exists(),
            "{args:?} created a database"
        );
    }
    // An explicit path that does not exist is refused the same way.
    let elsewhere = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("other.db").display()
    );
    let out = tally(dir.path())
        .args(["billing", "close", "--database-url", &elsewhere])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!dir.path().join("other.db").exists());
}

#[test]
fn command_line_errors_are_sentences_not_debug_structures() {
    let dir = tempfile::tempdir().unwrap();
    migrate_up(dir.path());
    let out = tally(dir.path())
        .args(["seed-demo", "--accounts", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("seeding demo data: --accounts and --days must be at least 1"),
        "{stderr}"
    );
    assert!(!stderr.contains("BadInput"), "{stderr}");

    let (exited, _, log) = start_and_stop(
        dir.path(),
        &["--bind", "127.0.0.1:0"],
        &[("TALLY_ADMIN_PASSWORD", "short")],
    );
    assert!(!exited.expect("refused").success());
    let text = log_text(&log);
    assert!(
        text.contains("creating the first admin: password: must be at least 8 characters"),
        "{text}"
    );
    assert!(!text.contains("BadInput"), "{text}");
}

#[test]
fn a_port_in_use_stops_serve_before_it_sets_anything_up() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (exited, stdout, log) = start_and_stop(dir.path(), &["--bind", &address], &[]);
    assert!(!exited.expect("refused").success());
    let text = log_text(&log);
    assert!(text.contains(&format!("binding {address}")), "{text}");
    assert!(!stdout.contains("Created admin"), "{stdout}");
    assert!(
        !dir.path().join("tally.db").exists(),
        "no database was made"
    );
}

#[tokio::test]
async fn serve_warns_once_per_database_when_the_upgrade_url_is_relative() {
    let test_db = common::TestDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let warnings = |upgrade_url: &str| {
        let (exited, _, log) = start_and_stop(
            dir.path(),
            &["--bind", "127.0.0.1:0"],
            &[
                ("TALLY_DATABASE_URL", test_db.url.as_str()),
                ("TALLY_UPGRADE_URL", upgrade_url),
            ],
        );
        assert_eq!(exited, None, "started: {}", log_text(&log));
        log.iter()
            .filter(|event| {
                event["level"] == "WARN"
                    && event["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("upgrade_url is not an absolute"))
            })
            .count()
    };
    assert_eq!(warnings("/upgrade"), 1, "said on the first start");
    assert_eq!(warnings("/upgrade"), 0, "not again on every start");
    assert_eq!(
        warnings("/pricing"),
        1,
        "said again for another relative URL"
    );
    assert_eq!(warnings("https://example.com/pricing"), 0);
    assert_eq!(warnings("/pricing"), 0, "that one was said already");
}

/// Runs `tally` in `dir` with `args` and `env` and expects it to refuse within a few seconds:
/// its stderr. One that runs on is stopped, and the test fails.
fn refused(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    use std::io::Read as _;
    use std::process::Stdio;
    let mut child = tally(dir)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("{args:?} {env:?} started instead of refusing");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{args:?} {env:?} exited 0: {stderr}");
    stderr
}

#[test]
fn settings_that_bite_are_refused_at_start_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let bind = ["--bind", "127.0.0.1:0"];
    for args in [
        vec!["--request-timeout-seconds", "0", "--bind", "127.0.0.1:0"],
        vec!["serve", "--jwt-ttl-seconds", "0", "--bind", "127.0.0.1:0"],
    ] {
        let stderr = refused(dir.path(), &args, &[]);
        assert!(
            stderr.contains("must be at least 1 second"),
            "{args:?}: {stderr}"
        );
    }
    let stderr = refused(dir.path(), &bind, &[("TALLY_REQUEST_TIMEOUT_SECONDS", "0")]);
    assert!(stderr.contains("--request-timeout-seconds"), "{stderr}");

    for switch in ["TALLY_NO_MIGRATE", "TALLY_NO_BILLING_CLOSE"] {
        let stderr = refused(dir.path(), &bind, &[(switch, "maybe")]);
        assert!(stderr.contains("`maybe`"), "{switch}: {stderr}");
        assert!(
            stderr.contains("1, true, yes or on") && stderr.contains("0, false, no, off or empty"),
            "{switch}: {stderr}"
        );
    }

    for (args, env) in [
        (vec!["--bind", "localhost:8080"], vec![]),
        (vec![], vec![("TALLY_BIND", "localhost:8080")]),
    ] {
        let stderr = refused(dir.path(), &args, &env);
        assert!(stderr.contains("`localhost:8080`"), "{stderr}");
        assert!(
            stderr.contains("an IP address and a port") && stderr.contains("127.0.0.1:8080"),
            "{stderr}"
        );
    }
    assert!(!dir.path().join("tally.db").exists(), "nothing was set up");

    // Accepted spellings still work.
    let server = Server::start(
        dir.path(),
        &[
            ("TALLY_NO_BILLING_CLOSE", "Yes"),
            ("TALLY_NO_MIGRATE", "off"),
        ],
    );
    server.stop();
}

/// Asserts that no part of an error line is said twice.
fn says_each_cause_once(stderr: &str) {
    let parts: Vec<&str> = stderr
        .lines()
        .flat_map(|line| line.split(": "))
        .map(str::trim)
        .filter(|part| part.len() > 12)
        .collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "said twice: {part:?} in {stderr}"
        );
    }
}

#[test]
fn a_postgres_that_does_not_answer_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/tally");
    for args in [vec!["--bind", "127.0.0.1:0"], vec!["migrate", "status"]] {
        let stderr = refused(dir.path(), &args, &[("TALLY_DATABASE_URL", &url)]);
        assert!(
            stderr.contains(&format!("PostgreSQL at 127.0.0.1:{port} does not answer")),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("is it running"), "{stderr}");
        assert!(stderr.contains("connection refused"), "{stderr}");
        says_each_cause_once(&stderr);
    }
}

#[test]
fn a_postgres_database_that_does_not_exist_is_named_with_createdb() {
    let Some(server_url) = std::env::var("TALLY_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        eprintln!("skipped: needs PostgreSQL (TALLY_TEST_DATABASE_URL)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let slash = server_url.rfind('/').unwrap();
    let url = format!(
        "{}/tally_missing_{}",
        &server_url[..slash],
        std::process::id()
    );
    for args in [
        vec!["--bind", "127.0.0.1:0"],
        vec!["migrate", "up"],
        vec!["billing", "close"],
    ] {
        let stderr = refused(dir.path(), &args, &[("TALLY_DATABASE_URL", &url)]);
        let name = format!("tally_missing_{}", std::process::id());
        assert!(
            stderr.contains(&format!(
                "the PostgreSQL database \"{name}\" does not exist"
            )),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("(`createdb -h "), "{stderr}");
        assert!(
            !stderr.contains("at line"),
            "no source line numbers: {stderr}"
        );
        says_each_cause_once(&stderr);
    }
}

#[test]
fn stopped_is_the_last_line_after_in_flight_requests_are_answered() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("TALLY_BODY_READ_TIMEOUT_SECONDS", "2")]);
    // A request in flight: its body arrives after the signal.
    let mut client = server.connect();
    client
        .write_all(
            b"POST /api/install-callback HTTP/1.1\r\nHost: tally\r\n\
              Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{",
        )
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = server.log_handle();
    let stopping = std::thread::spawn(move || server.stop());
    std::thread::sleep(std::time::Duration::from_millis(300));
    client.write_all(b"}").unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    stopping.join().unwrap();
    let log = log.lock().unwrap();
    let messages: Vec<&str> = log
        .iter()
        .filter_map(|event| event["message"].as_str())
        .collect();
    let requested = messages
        .iter()
        .position(|m| m.starts_with("shutdown requested"))
        .expect("shutdown requested is logged");
    let answered = messages
        .iter()
        .rposition(|m| *m == "request")
        .expect("the in-flight request is logged");
    assert!(requested < answered, "{messages:?}");
    assert_eq!(messages.last(), Some(&"tally stopped"), "{messages:?}");
}

#[test]
fn a_second_serve_on_the_same_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(dir.path(), &[]);
    let (exited, _, log) = start_and_stop(dir.path(), &["--bind", "127.0.0.1:0"], &[]);
    let status = exited.expect("the second serve refused to start");
    assert!(!status.success());
    let text = log_text(&log);
    assert!(
        text.contains("another `tally serve` is already running on the SQLite database"),
        "{text}"
    );
    // The first one still answers, and the command-line tools still work beside it.
    let mut stream = first.connect();
    assert_eq!(get(&mut stream, "/health").status, 200);
    let listed = tally(dir.path())
        .args(["migrate", "status"])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    first.stop();
    // Once it has stopped, a new one starts.
    let (exited, _, _) = start_and_stop(dir.path(), &["--bind", "127.0.0.1:0"], &[]);
    assert_eq!(exited, None, "started");
}

#[test]
fn serve_with_no_migrate_refuses_a_database_that_lacks_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let out = tally(dir.path())
        .args(["--no-migrate", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "must not start");
    // The environment switch reads `1` as set, as service managers often write it.
    let from_env = tally(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .env("TALLY_NO_MIGRATE", "1")
        .output()
        .unwrap();
    assert!(!from_env.status.success(), "TALLY_NO_MIGRATE=1 is set");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("run `tally migrate up` first"),
        "names the fix: {stderr}"
    );
    assert!(
        !stderr.contains("no such table"),
        "no raw SQL error: {stderr}"
    );

    // Once migrated, it starts without migrating; an empty switch counts as unset.
    migrate_up(dir.path());
    let server = Server::start(dir.path(), &[("TALLY_NO_MIGRATE", "true")]);
    server.stop();
    let fresh = tempfile::tempdir().unwrap();
    let server = Server::start(fresh.path(), &[("TALLY_NO_MIGRATE", "")]);
    server.stop();
}

/// The `TALLY_*` names in `text`.
fn tally_variables(text: &str) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("TALLY_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        found.insert(name.trim_end_matches('_').to_owned());
        rest = &rest[at + name.len().max(1)..];
    }
    found
}

#[test]
fn every_tally_variable_in_the_docs_is_in_help_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let commands: [&[&str]; 10] = [
        &[],
        &["serve"],
        &["migrate", "up"],
        &["migrate", "down"],
        &["migrate", "status"],
        &["user", "create"],
        &["billing", "close"],
        &["seed-demo"],
        &["schema"],
        &["openapi"],
    ];
    let mut in_help = std::collections::BTreeSet::new();
    for args in commands {
        let out = tally(dir.path()).args(args).arg("--help").output().unwrap();
        assert_success(&out);
        in_help.extend(tally_variables(&String::from_utf8_lossy(&out.stdout)));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut documents = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "md") {
            documents.push(path);
        }
    }
    let mut in_docs = std::collections::BTreeSet::new();
    for document in &documents {
        in_docs.extend(tally_variables(&std::fs::read_to_string(document).unwrap()));
    }
    // The test harness's and the browser tests' own variables, which the binary never reads.
    for harness in [
        "TALLY_TEST_DATABASE_URL",
        "TALLY_TEST_REDIS_URL",
        "TALLY_BIN",
    ] {
        in_docs.remove(harness);
    }
    let undocumented: Vec<_> = in_help.difference(&in_docs).collect();
    assert!(
        undocumented.is_empty(),
        "in --help, not in the docs: {undocumented:?}"
    );
    let unknown: Vec<_> = in_docs.difference(&in_help).collect();
    assert!(
        unknown.is_empty(),
        "in the docs, not in --help: {unknown:?}"
    );
}

#[test]
fn user_create_help_describes_every_option() {
    let dir = tempfile::tempdir().unwrap();
    let out = tally(dir.path())
        .args(["user", "create", "--help"])
        .env("TALLY_USER_PASSWORD", "a secret in the environment")
        .output()
        .unwrap();
    assert_success(&out);
    let help = String::from_utf8_lossy(&out.stdout);
    for (option, description) in [
        ("--email <EMAIL>", "E-mail address the user signs in with"),
        ("--password <PASSWORD>", "The user's password"),
        ("--admin", "Make the user an administrator"),
        ("--account <ACCOUNT>", "The account to join"),
    ] {
        let line = help
            .lines()
            .find(|line| line.trim_start().starts_with(option))
            .unwrap_or_else(|| panic!("{option} in {help}"));
        assert!(line.contains(description), "{option}: {line}");
    }
    assert!(!help.contains("a secret in the environment"), "{help}");
}

#[test]
fn tally_log_filters_the_log_of_every_command_and_a_bad_filter_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = tally(dir.path()).args(["migrate", "up"]).output().unwrap();
    assert_success(&quiet);
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    let down = tally(dir.path())
        .args(["migrate", "down"])
        .env("TALLY_LOG", "info")
        .output()
        .unwrap();
    assert_success(&down);
    let log = String::from_utf8_lossy(&down.stderr);
    assert!(log.contains("\"level\":\"INFO\""), "{log}");

    let stderr = refused(
        dir.path(),
        &["migrate", "status"],
        &[("TALLY_LOG", "tally=loud")],
    );
    assert!(stderr.contains("tally=loud"), "{stderr}");
}
