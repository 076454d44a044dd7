//! For random sets of events, the answers read from the rollups equal the answers computed from
//! the raw events (p95 within the contract's 5% or 1 ms).

use crate::common;

use chrono::Duration;
use common::analytics::{api_call, app, compare_with_raw_events, install, tool_use};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use tally::clock::Clock;
use tally::domain::recorder::NewEvent;

#[derive(Debug, Clone)]
enum Spec {
    Call {
        minutes_ago: i64,
        method: usize,
        endpoint: usize,
        status: i32,
        ms: i64,
        /// Calls it is worth (a verify's `cost`).
        cost: i64,
    },
    Tool {
        minutes_ago: i64,
        skill: usize,
        tool: usize,
    },
    Install {
        minutes_ago: i64,
        skill: usize,
    },
}

const METHODS: [&str; 2] = ["GET", "POST"];
const ENDPOINTS: [&str; 4] = ["/a", "/b", "/c/d", "/e"];
const SKILLS: [&str; 3] = ["review", "lint", "deploy"];
const TOOLS: [&str; 3] = ["Read", "Write", "Bash"];

fn spec() -> impl Strategy<Value = Spec> {
    // Up to 40 days back, so windows and a month boundary (the clock stands on the 10th) matter.
    let when = 0i64..40 * 24 * 60;
    // Response times from 0 ms to ~1 minute, spread over orders of magnitude.
    let ms =
        (0u32..16, 0i64..1000).prop_map(|(exp, frac)| (1i64 << exp) * (1000 + frac) / 1000 - 1);
    let status = prop::sample::select(vec![200, 201, 204, 301, 304, 400, 401, 404, 429, 500, 503]);
    prop_oneof![
        6 => (when.clone(), 0..METHODS.len(), 0..ENDPOINTS.len(), status, ms, prop_oneof![3 => Just(1i64), 1 => 2i64..=20]).prop_map(
            |(minutes_ago, method, endpoint, status, ms, cost)| Spec::Call { minutes_ago, method, endpoint, status, ms, cost }
        ),
        3 => (when.clone(), 0..SKILLS.len(), 0..TOOLS.len())
            .prop_map(|(minutes_ago, skill, tool)| Spec::Tool { minutes_ago, skill, tool }),
        1 => (when, 0..SKILLS.len()).prop_map(|(minutes_ago, skill)| Spec::Install { minutes_ago, skill }),
    ]
}

fn to_event(account: &str, now: chrono::DateTime<chrono::Utc>, spec: &Spec) -> NewEvent {
    match *spec {
        Spec::Call {
            minutes_ago,
            method,
            endpoint,
            status,
            ms,
            cost,
        } => NewEvent {
            cost,
            ..api_call(
                account,
                now - Duration::minutes(minutes_ago),
                METHODS[method],
                ENDPOINTS[endpoint],
                status,
                ms,
            )
        },
        Spec::Tool {
            minutes_ago,
            skill,
            tool,
        } => tool_use(
            account,
            now - Duration::minutes(minutes_ago),
            SKILLS[skill],
            TOOLS[tool],
        ),
        Spec::Install { minutes_ago, skill } => {
            install(account, now - Duration::minutes(minutes_ago), SKILLS[skill])
        }
    }
}

#[test]
fn rollup_answers_equal_answers_from_raw_events() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(app());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(spec(), 0..120), |specs| {
        runtime.block_on(async {
            // Every case gets its own account in the shared database.
            let (token, account) = app.member().await;
            let now = app.clock.now();
            // In two parts with the rollups applied between them: the second part adds to
            // days before ones the first part already rolled up.
            let (first, second) = specs.split_at(specs.len() / 2);
            for part in [first, second] {
                app.record(part.iter().map(|s| to_event(&account, now, s)).collect())
                    .await;
                app.state.ingestion.recorder.flush().await;
            }
            let raw = app.raw_events(&account).await;
            for (days, limit) in [(45, 100), (7, 100), (1, 2), (30, 3)] {
                let data = app
                    .graphql_ok(
                        Some(&token),
                        "query($d: Int!, $l: Int!) {
                            currentUsage { calls }
                            usageHistory(days: $d) { date totalCalls successfulCalls failedCalls avgResponseTimeMs }
                            endpointStats(days: $d, limit: $l) { endpoint method totalCalls requests failedCalls avgResponseTimeMs p95ResponseTimeMs }
                            toolStats(days: $d, limit: $l) { skillId toolName calls lastUsedAt } }",
                        json!({ "d": days, "l": limit }),
                    )
                    .await;
                compare_with_raw_events(&data, &raw, now, days, limit as usize)
                    .map_err(TestCaseError::fail)?;
            }
            Ok(())
        })
    });
    if let Err(err) = result {
        panic!("{err}");
    }
}
