//! Migrations that move data keep every figure: applied to a database holding rows, and reverted.

mod common;

use common::TestApp;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tally::domain::histogram::Counts;

/// Reverts the migrations from `name` on, leaving the database as it was just before `name`.
async fn revert_to_before(db: &DatabaseConnection, name: &str) {
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let index = names.iter().position(|n| n == name).expect("a migration");
    Migrator::down(db, Some((names.len() - index) as u32))
        .await
        .expect("migrate down");
}

async fn execute(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql).await.expect(sql);
}

/// (endpoint, bucket, count) rows of the old per-bucket latency table, in that order.
async fn latency_rows(db: &DatabaseConnection, account: &str) -> Vec<(String, i32, i64)> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT endpoint, bucket, count FROM usage_daily_latency \
                 WHERE account_id = '{account}' ORDER BY endpoint, bucket"
            ),
        ))
        .await
        .expect("query");
    rows.iter()
        .map(|row| {
            (
                row.try_get_by_index(0).unwrap(),
                row.try_get_by_index(1).unwrap(),
                row.try_get_by_index(2).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn latency_buckets_move_into_the_rollup_row_and_back() {
    let app = TestApp::new().await;
    let (_, _, account) = app.sign_up("histograms@example.com").await;
    let db = &app.state.db;
    revert_to_before(db, "m20261125_000001_latency_histogram_column").await;

    // Two endpoints with latencies, one verified call whose latency is still unknown.
    let endpoint_rows = [("/a", 3, 3), ("/b", 1, 1), ("/unknown", 1, 0)];
    for (endpoint, calls, latency_count) in endpoint_rows {
        execute(
            db,
            &format!(
                "INSERT INTO usage_daily_endpoints (account_id, day, method, endpoint, calls, \
                 successes, failures, latency_sum_ms, latency_count) \
                 VALUES ('{account}', '2026-11-10', 'GET', '{endpoint}', {calls}, {calls}, 0, \
                 100, {latency_count})"
            ),
        )
        .await;
    }
    let buckets = [("/a", 12, 2), ("/a", 140, 1), ("/b", 7, 1)];
    for (endpoint, bucket, count) in buckets {
        execute(
            db,
            &format!(
                "INSERT INTO usage_daily_latency (account_id, day, method, endpoint, bucket, count) \
                 VALUES ('{account}', '2026-11-10', 'GET', '{endpoint}', {bucket}, {count})"
            ),
        )
        .await;
    }
    let before = latency_rows(db, &account).await;

    Migrator::up(db, None).await.expect("migrate up");
    assert_eq!(
        app.stored_histogram(&account, "/a").await,
        Counts::from([(12, 2), (140, 1)])
    );
    assert_eq!(
        app.stored_histogram(&account, "/b").await,
        Counts::from([(7, 1)])
    );
    assert_eq!(
        app.stored_histogram(&account, "/unknown").await,
        Counts::new()
    );

    revert_to_before(db, "m20261125_000001_latency_histogram_column").await;
    assert_eq!(latency_rows(db, &account).await, before);
    Migrator::up(db, None).await.expect("migrate up again");
}

#[tokio::test]
async fn daily_totals_gain_the_outcomes_of_their_endpoint_rows() {
    let app = TestApp::new().await;
    let (_, _, account) = app.sign_up("totals@example.com").await;
    let db = &app.state.db;
    revert_to_before(db, "m20261125_000002_daily_totals_outcomes").await;

    // (day, endpoint, calls, successes, failures, latency sum, latency count)
    let endpoint_rows = [
        ("2026-11-09", "/a", 4, 3, 1, 400, 4),
        ("2026-11-09", "/b", 2, 1, 0, 50, 1),
        ("2026-11-10", "/a", 1, 0, 1, 0, 0),
    ];
    for (day, endpoint, calls, successes, failures, sum, count) in endpoint_rows {
        execute(
            db,
            &format!(
                "INSERT INTO usage_daily_endpoints (account_id, day, method, endpoint, calls, \
                 successes, failures, latency_sum_ms, latency_count) \
                 VALUES ('{account}', '{day}', 'GET', '{endpoint}', {calls}, {successes}, \
                 {failures}, {sum}, {count})"
            ),
        )
        .await;
    }
    // Totals count tool uses too: 6 API calls and 3 tool uses on the 9th.
    for (day, calls) in [("2026-11-09", 9), ("2026-11-10", 1)] {
        execute(
            db,
            &format!(
                "INSERT INTO usage_daily_totals (account_id, day, calls) \
                 VALUES ('{account}', '{day}', {calls})"
            ),
        )
        .await;
    }

    Migrator::up(db, None).await.expect("migrate up");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT day, calls, successes, failures, latency_sum_ms, latency_count \
                 FROM usage_daily_totals WHERE account_id = '{account}' ORDER BY day"
            ),
        ))
        .await
        .expect("query");
    let totals: Vec<(String, [i64; 5])> = rows
        .iter()
        .map(|row| {
            let value = |i| row.try_get_by_index::<i64>(i).unwrap();
            (
                row.try_get_by_index(0).unwrap(),
                [value(1), value(2), value(3), value(4), value(5)],
            )
        })
        .collect();
    assert_eq!(
        totals,
        [
            ("2026-11-09".to_owned(), [9, 4, 1, 450, 5]),
            ("2026-11-10".to_owned(), [1, 0, 1, 0, 0]),
        ]
    );

    revert_to_before(db, "m20261125_000002_daily_totals_outcomes").await;
    Migrator::up(db, None).await.expect("migrate up again");
}
