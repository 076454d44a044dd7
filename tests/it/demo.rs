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
