//! `tally seed-demo`: realistic data whose rollups agree with its raw events.

use crate::common;

use std::collections::HashSet;

use common::analytics::{app, compare_with_raw_events};
use common::tables;
use serde_json::json;
use tally::cli::demo::{self, DemoOptions};
use tally::clock::Clock;

#[tokio::test]
async fn demo_data_covers_every_plan_and_its_rollups_agree_with_its_events() {
    let app = app().await;
    let now = app.clock.now();
    let options = DemoOptions {
        accounts: 12,
        events: 6_000,
        days: 20,
        seed: 7,
        password: common::PASSWORD.to_owned(),
    };
    let mut reports = Vec::new();
    let summary = demo::seed(&app.state.db, &options, now, &mut |written, asked| {
        reports.push((written, asked))
    })
    .await
    .unwrap();
    assert_eq!(summary.events, 6_000);
    assert_eq!(reports.last(), Some(&(6_000, 6_000)));
    assert_eq!(summary.accounts, 13);
    assert_eq!(tables::stored_events_in_total(&app.state.db).await, 6_000);
    let rollups = tables::all_endpoint_rollups(&app.state.db).await;
    let days = rollups.iter().map(|r| &r.day).collect::<HashSet<_>>().len();
    assert_eq!(days, 20);
    let endpoints = rollups
        .iter()
        .map(|r| &r.endpoint)
        .collect::<HashSet<_>>()
        .len();
    assert!(endpoints > 50, "{endpoints} endpoints");
    // FREE accounts stay within their quota, as the gate would keep them.
    let over = tables::periods_on_plan(&app.state.db, "FREE")
        .await
        .into_iter()
        .filter(|period| period.calls > 1000)
        .count();
    assert_eq!(over, 0);

    let admin = app.login(demo::ADMIN_EMAIL).await;
    let data = app
        .graphql_ok(
            Some(&admin),
            "{ adminOverview { users { free pro enterprise total } apiCalls { thisMonth } } }",
            json!({}),
        )
        .await;
    let users = &data["adminOverview"]["users"];
    assert_eq!(users["total"], 13);
    for plan in ["free", "pro", "enterprise"] {
        assert!(users[plan].as_i64().unwrap() > 0, "{users}");
    }

    // Each of the first accounts' answers equal the ones computed from its raw events.
    for account in 0..4 {
        let token = app.login(&demo::user_email(account, 0)).await;
        let me = app
            .graphql_ok(Some(&token), "{ me { account { id } } }", json!({}))
            .await;
        let account_id = me["me"]["account"]["id"].as_str().unwrap().to_owned();
        let raw = app.raw_events(&account_id).await;
        let snapshot = app.snapshot(&token, 30).await;
        compare_with_raw_events(&snapshot, &raw, now, 30, 100).unwrap();
    }

    // A second run into the same database is refused rather than mixed in.
    assert!(demo::seed(&app.state.db, &options, now, &mut |_, _| {})
        .await
        .is_err());
}

#[test]
fn seed_demo_prints_the_password_and_e_mails_that_sign_in() {
    use common::process::{assert_success, tally, Server};
    let dir = tempfile::tempdir().unwrap();
    let out = tally(dir.path())
        .args([
            "seed-demo",
            "--events",
            "50",
            "--accounts",
            "3",
            "--days",
            "2",
        ])
        .env("TALLY_DEMO_PASSWORD", "a demo password to print")
        .output()
        .unwrap();
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"a demo password to print\""), "{stdout}");
    assert!(stdout.contains(demo::ADMIN_EMAIL), "{stdout}");
    // Accounts 0..=2 have 1, 2 and 3 members: the last e-mail is user2 of account 2.
    let (first, last) = (demo::user_email(0, 0), demo::user_email(2, 2));
    assert!(
        stdout.contains(&first) && stdout.contains(&last),
        "{stdout}"
    );

    let server = Server::start(dir.path(), &[]);
    for email in [demo::ADMIN_EMAIL, &first, &last] {
        let login = server.graphql(
            None,
            common::LOGIN,
            json!({ "e": email, "p": "a demo password to print" }),
        );
        assert!(
            login["data"]["login"]["token"].is_string(),
            "{email}: {login}"
        );
    }
    server.stop();
}

/// Runs `tally seed-demo` (a small demo) on `database_url` in `dir` with extra arguments and
/// environment.
fn seed_demo(
    dir: &std::path::Path,
    database_url: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    common::process::tally(dir)
        .args([
            "seed-demo",
            "--events",
            "20",
            "--accounts",
            "2",
            "--days",
            "1",
        ])
        .args(["--database-url", database_url])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// (users, accounts, usage events) in the database.
async fn rows(database_url: &str) -> (u64, u64, i64) {
    use sea_orm::{EntityTrait, PaginatorTrait};
    use tally::entity::{account, user};
    let db = tally::db::connect(database_url).await.unwrap();
    let users = user::Entity::find().count(&db).await.unwrap();
    let accounts = account::Entity::find().count(&db).await.unwrap();
    let events = tables::stored_events_in_total(&db).await;
    db.close().await.ok();
    (users, accounts, events)
}

#[tokio::test]
async fn seed_demo_refuses_a_database_that_holds_users_and_writes_nothing() {
    use common::process::{assert_success, tally};
    let test_db = common::TestDb::create().await;
    let url = test_db.url.as_str();
    let dir = tempfile::tempdir().unwrap();
    assert_success(
        &tally(dir.path())
            .args(["migrate", "up", "--database-url", url])
            .output()
            .unwrap(),
    );
    assert_success(
        &tally(dir.path())
            .args(["user", "create", "--database-url", url])
            .args([
                "--email",
                "owner@example.com",
                "--password",
                "the owner's password",
            ])
            .output()
            .unwrap(),
    );
    let before = rows(url).await;
    assert_eq!(before, (1, 1, 0));

    for password in [&[][..], &["--password", "chosen demo password"][..]] {
        let out = seed_demo(dir.path(), url, password, &[]);
        assert!(!out.status.success(), "seeded a database in use");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("already holds 1 user") && stderr.contains("empty database"),
            "{stderr}"
        );
        assert!(!stderr.contains("--force"), "{stderr}");
        assert_eq!(rows(url).await, before, "nothing was written");
    }
    let db = tally::db::connect(url).await.unwrap();
    let planted = tally::domain::accounts::find_by_email(&db, demo::ADMIN_EMAIL)
        .await
        .unwrap();
    assert!(planted.is_none(), "no demo admin on a database in use");
    db.close().await.ok();
}

#[tokio::test]
async fn seed_demo_without_a_password_generates_one_and_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut printed = Vec::new();
    for _ in 0..2 {
        let test_db = common::TestDb::create().await;
        let out = seed_demo(dir.path(), &test_db.url, &[], &[]);
        common::process::assert_success(&out);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let password = stdout
            .split_once("password \"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(password, _)| password.to_owned())
            .unwrap_or_else(|| panic!("no password printed: {stdout}"));
        assert!(password.len() >= 16, "{password}");
        assert_ne!(password, "tally-demo-password");

        let db = tally::db::connect(&test_db.url).await.unwrap();
        let passwords =
            tally::domain::auth::PasswordWork::new(1, std::time::Duration::from_secs(30));
        let sign_in = |password: String| {
            let (db, passwords) = (&db, &passwords);
            async move {
                tally::domain::accounts::authenticate(db, passwords, demo::ADMIN_EMAIL, &password)
                    .await
            }
        };
        let admin = sign_in(password.clone()).await;
        assert!(admin.is_ok(), "the printed password signs the admin in");
        let published = sign_in("tally-demo-password".to_owned()).await;
        assert!(published.is_err(), "the once published password does not");
        db.close().await.ok();
        printed.push(password);
    }
    assert_ne!(printed[0], printed[1], "each run draws its own password");
}
