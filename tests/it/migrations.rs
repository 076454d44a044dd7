//! Migrations that move data keep every figure: applied to a database holding rows, and reverted.

use crate::common;

use common::TestApp;
use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult, Value};
use tally::domain::histogram::Counts;

/// One data migration under test, the skeleton of every test here: the database is taken back
/// to just before the migration, the test writes rows in the schema of then, migrates up, checks
/// the figures, and may revert and check again.
struct Migration<'a> {
    db: &'a DatabaseConnection,
    name: &'static str,
}

impl<'a> Migration<'a> {
    /// Reverts `name` and every migration after it.
    async fn revert_to_before(db: &'a DatabaseConnection, name: &'static str) -> Self {
        let migration = Self { db, name };
        migration.down().await;
        migration
    }

    /// Applies this migration and every later one.
    async fn up(&self) {
        Migrator::up(self.db, None).await.expect("migrate up");
    }

    /// Applies this migration only.
    async fn up_alone(&self) {
        Migrator::up(self.db, Some(1)).await.expect("migrate up");
    }

    /// Reverts this migration and every later one again.
    async fn down(&self) {
        let names: Vec<String> = Migrator::migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        let index = names
            .iter()
            .position(|n| n == self.name)
            .expect("a migration");
        Migrator::down(self.db, Some((names.len() - index) as u32))
            .await
            .expect("migrate down");
    }
}

/// Inserts one row of (column, value) pairs into `table`, the values bound. The tables are named
/// as text: these tests write and read schemas older than the entities.
async fn insert(db: &DatabaseConnection, table: &str, row: &[(&str, Value)]) {
    let mut query = Query::insert();
    query
        .into_table(Alias::new(table))
        .columns(row.iter().map(|(column, _)| Alias::new(*column)))
        .values_panic(row.iter().map(|(_, value)| Expr::val(value.clone())));
    db.execute(&query)
        .await
        .unwrap_or_else(|err| panic!("insert into {table}: {err}"));
}

/// A `usage_daily_endpoints` row for GET `endpoint` in the columns the schemas before the
/// cost-weighted calls share: calls, successes, failures, latency sum and latency count.
async fn insert_endpoint_row(
    db: &DatabaseConnection,
    account: &str,
    day: &str,
    endpoint: &str,
    [calls, successes, failures, latency_sum_ms, latency_count]: [i64; 5],
) {
    insert_get_endpoint_row(
        db,
        (account, day, endpoint),
        &[
            ("calls", calls.into()),
            ("successes", successes.into()),
            ("failures", failures.into()),
            ("latency_sum_ms", latency_sum_ms.into()),
            ("latency_count", latency_count.into()),
        ],
    )
    .await;
}

/// A `usage_daily_endpoints` row for GET `endpoint` of `account` on `day`, with `columns`.
async fn insert_get_endpoint_row(
    db: &DatabaseConnection,
    (account, day, endpoint): (&str, &str, &str),
    columns: &[(&str, Value)],
) {
    let mut row = vec![
        ("account_id", account.into()),
        ("day", day.into()),
        ("method", "GET".into()),
        ("endpoint", endpoint.into()),
    ];
    row.extend_from_slice(columns);
    insert(db, "usage_daily_endpoints", &row).await;
}

/// `columns` of the rows of `table` whose columns equal the given values, bound.
fn select(table: &str, columns: &[&str], equal: &[(&str, &str)]) -> SelectStatement {
    let mut query = Query::select();
    query
        .columns(columns.iter().map(|column| Alias::new(*column)))
        .from(Alias::new(table));
    for (column, value) in equal {
        query.and_where(Expr::col(Alias::new(*column)).eq(*value));
    }
    query
}

async fn rows(db: &DatabaseConnection, query: &SelectStatement) -> Vec<QueryResult> {
    db.query_all_raw(db.get_database_backend().build(query))
        .await
        .expect("query")
}

/// (endpoint, bucket, count) rows of the old per-bucket latency table, in that order.
async fn latency_rows(db: &DatabaseConnection, account: &str) -> Vec<(String, i32, i64)> {
    let query = select(
        "usage_daily_latency",
        &["endpoint", "bucket", "count"],
        &[("account_id", account)],
    )
    .order_by(Alias::new("endpoint"), sea_orm::Order::Asc)
    .order_by(Alias::new("bucket"), sea_orm::Order::Asc)
    .to_owned();
    rows(db, &query)
        .await
        .iter()
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
    let account = app.sign_up("histograms@example.com").await.account_id;
    let db = &app.state.db;
    let migration =
        Migration::revert_to_before(db, "m20261125_000001_latency_histogram_column").await;

    // Two endpoints with latencies, one verified call whose latency is still unknown.
    let endpoint_rows = [("/a", 3, 3), ("/b", 1, 1), ("/unknown", 1, 0)];
    for (endpoint, calls, latency_count) in endpoint_rows {
        let outcomes = [calls, calls, 0, 100, latency_count];
        insert_endpoint_row(db, &account, "2026-11-10", endpoint, outcomes).await;
    }
    let buckets: [(&str, i32, i64); 3] = [("/a", 12, 2), ("/a", 140, 1), ("/b", 7, 1)];
    for (endpoint, bucket, count) in buckets {
        insert(
            db,
            "usage_daily_latency",
            &[
                ("account_id", account.as_str().into()),
                ("day", "2026-11-10".into()),
                ("method", "GET".into()),
                ("endpoint", endpoint.into()),
                ("bucket", bucket.into()),
                ("count", count.into()),
            ],
        )
        .await;
    }
    let before = latency_rows(db, &account).await;

    migration.up().await;
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

    migration.down().await;
    assert_eq!(latency_rows(db, &account).await, before);
    migration.up().await;
}

#[tokio::test]
async fn daily_totals_gain_the_outcomes_of_their_endpoint_rows() {
    let app = TestApp::new().await;
    let account = app.sign_up("totals@example.com").await.account_id;
    let db = &app.state.db;
    let migration = Migration::revert_to_before(db, "m20261125_000002_daily_totals_outcomes").await;

    // (day, endpoint, calls, successes, failures, latency sum, latency count)
    let endpoint_rows = [
        ("2026-11-09", "/a", 4, 3, 1, 400, 4),
        ("2026-11-09", "/b", 2, 1, 0, 50, 1),
        ("2026-11-10", "/a", 1, 0, 1, 0, 0),
    ];
    for (day, endpoint, calls, successes, failures, sum, count) in endpoint_rows {
        let outcomes = [calls, successes, failures, sum, count];
        insert_endpoint_row(db, &account, day, endpoint, outcomes).await;
    }
    // Totals count tool uses too: 6 API calls and 3 tool uses on the 9th.
    for (day, calls) in [("2026-11-09", 9i64), ("2026-11-10", 1)] {
        insert(
            db,
            "usage_daily_totals",
            &[
                ("account_id", account.as_str().into()),
                ("day", day.into()),
                ("calls", calls.into()),
            ],
        )
        .await;
    }

    migration.up().await;
    let query = select(
        "usage_daily_totals",
        &[
            "day",
            "calls",
            "successes",
            "failures",
            "latency_sum_ms",
            "latency_count",
        ],
        &[("account_id", &account)],
    )
    .order_by(Alias::new("day"), sea_orm::Order::Asc)
    .to_owned();
    let totals: Vec<(String, [i64; 5])> = rows(db, &query)
        .await
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

    migration.down().await;
    migration.up().await;
}

/// One text value from a query.
async fn text(db: &DatabaseConnection, query: &SelectStatement) -> String {
    let rows = rows(db, query).await;
    rows.first()
        .expect("a row")
        .try_get_by_index(0)
        .expect("a text")
}

/// Integer columns of the single row an SQL query returns.
async fn numbers(db: &DatabaseConnection, query: &SelectStatement) -> Vec<i64> {
    let rows = rows(db, query).await;
    let row = rows.first().expect("a row");
    (0..)
        .map_while(|i| row.try_get_by_index::<i64>(i).ok())
        .collect()
}

#[tokio::test]
async fn accounts_learn_the_plan_they_were_created_with() {
    let app = TestApp::new().await;
    let db = &app.state.db;
    // Signed up on FREE (recorded as its first plan change), then moved to PRO.
    let upgraded = app.sign_up("upgraded@example.com").await.account_id;
    app.set_plan(&upgraded, "PRO").await;
    let migration = Migration::revert_to_before(db, "m20261129_000001_account_initial_plan").await;
    // Created on ENTERPRISE and never changed; and one whose creation was not recorded, moved
    // to PRO later (so it started on FREE, where every account starts).
    let time = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    for (id, plan) in [("direct", "ENTERPRISE"), ("legacy", "PRO")] {
        insert(
            db,
            "accounts",
            &[
                ("id", id.into()),
                ("name", id.into()),
                ("plan_code", plan.into()),
                ("created_at", time("2026-10-01T00:00:00+00:00").into()),
            ],
        )
        .await;
    }
    insert(
        db,
        "account_plan_changes",
        &[
            ("account_id", "legacy".into()),
            ("plan_code", "PRO".into()),
            ("effective_at", time("2026-10-15T00:00:00+00:00").into()),
        ],
    )
    .await;

    migration.up().await;
    let initial = |id: String| async move {
        text(
            db,
            &select("accounts", &["initial_plan_code"], &[("id", &id)]),
        )
        .await
    };
    assert_eq!(initial(upgraded.clone()).await, "FREE");
    assert_eq!(initial("direct".to_owned()).await, "ENTERPRISE");
    assert_eq!(initial("legacy".to_owned()).await, "FREE");

    migration.down().await;
    migration.up().await;
}

#[tokio::test]
async fn stored_costly_calls_count_by_cost_in_the_rollups_and_installs_roll_up() {
    let app = TestApp::new().await;
    let account = app.sign_up("costly@example.com").await.account_id;
    let db = &app.state.db;
    let migration = Migration::revert_to_before(db, "m20261129_000002_cost_weighted_calls").await;

    let at = chrono::DateTime::parse_from_rfc3339("2026-11-09T10:00:00Z")
        .unwrap()
        .timestamp_millis();
    // Three API calls (cost 10 answered 200, cost 3 answered 503, cost 1 answered 200), a tool
    // use, and three installs (two anonymous).
    let install = r#"{"source":"install-script","platform":"linux","version":"1.0"}"#;
    let owner = Some(account.as_str());
    // (account, kind, status, cost, metadata); API calls are GETs of /a, the rest of `deploy`.
    let events = [
        (owner, "API_CALL", Some(200), 10i64, None),
        (owner, "API_CALL", Some(503), 3, None),
        (owner, "API_CALL", Some(200), 1, None),
        (owner, "TOOL_CALL", None, 1, None),
        (None, "INSTALL", None, 0, Some(install)),
        (None, "INSTALL", None, 0, Some(install)),
        (owner, "INSTALL", None, 0, Some(install)),
    ];
    for (owner, kind, status, cost, metadata) in events {
        let (endpoint, method, skill) = match kind {
            "API_CALL" => (Some("/a"), Some("GET"), None),
            _ => (None, None, Some("deploy")),
        };
        insert(
            db,
            "usage_events",
            &[
                ("account_id", owner.into()),
                ("kind", kind.into()),
                ("endpoint", endpoint.into()),
                ("method", method.into()),
                ("status_code", status.into()),
                ("skill_id", skill.into()),
                ("metadata", metadata.into()),
                ("cost", cost.into()),
                ("expired_key", false.into()),
                ("occurred_at", at.into()),
                ("received_at", at.into()),
            ],
        )
        .await;
    }
    // The rollups as they were written then: one call per event.
    insert_endpoint_row(db, &account, "2026-11-09", "/a", [3, 2, 1, 0, 0]).await;
    insert(
        db,
        "usage_daily_totals",
        &[
            ("account_id", account.as_str().into()),
            ("day", "2026-11-09".into()),
            ("calls", 4i64.into()),
            ("successes", 2i64.into()),
            ("failures", 1i64.into()),
            ("latency_sum_ms", 0i64.into()),
            ("latency_count", 0i64.into()),
        ],
    )
    .await;
    let outcomes = ["calls", "successes", "failures"];
    let of_account = [("account_id", account.as_str())];
    let endpoint_sql = select("usage_daily_endpoints", &outcomes, &of_account);
    let totals_sql = select("usage_daily_totals", &outcomes, &of_account);

    migration.up().await;
    assert_eq!(numbers(db, &endpoint_sql).await, [14, 11, 3]);
    assert_eq!(
        numbers(
            db,
            &select("usage_daily_endpoints", &["requests"], &of_account)
        )
        .await,
        [3]
    );
    assert_eq!(numbers(db, &totals_sql).await, [15, 11, 3]);
    assert_eq!(
        numbers(
            db,
            &select(
                "usage_daily_installs",
                &["installs", "anonymous", "attributed", "last_installed_at"],
                &[
                    ("day", "2026-11-09"),
                    ("skill_id", "deploy"),
                    ("platform", "linux"),
                    ("version", "1.0"),
                ]
            )
        )
        .await,
        [3, 2, 1, at]
    );

    migration.down().await;
    assert_eq!(numbers(db, &endpoint_sql).await, [3, 2, 1]);
    assert_eq!(numbers(db, &totals_sql).await, [4, 2, 1]);
    migration.up().await;
}

#[tokio::test]
async fn weekly_endpoint_rollups_are_filled_from_the_daily_ones() {
    let app = TestApp::new().await;
    let account = app.sign_up("weeks@example.com").await.account_id;
    let db = &app.state.db;
    let migration =
        Migration::revert_to_before(db, "m20261130_000002_weekly_endpoint_rollups").await;

    // Monday 2026-11-09 and Sunday 2026-11-15 are one week; Monday 2026-11-16 the next.
    let days = [
        ("2026-11-09", r#"{"12":2}"#, 2),
        ("2026-11-15", r#"{"12":1,"40":3}"#, 4),
        ("2026-11-16", r#"{"7":1}"#, 1),
    ];
    for (day, histogram, latency_count) in days {
        let sums = [latency_count * 10, latency_count, 100, latency_count];
        insert_daily_endpoint(db, &account, "/a", day, sums, histogram).await;
    }

    // Only the weekly migration: a later one replaces its table.
    migration.up_alone().await;
    let query = select(
        "usage_weekly_endpoints",
        &[
            "week",
            "calls",
            "requests",
            "latency_sum_ms",
            "latency_histogram",
        ],
        &[("account_id", &account), ("endpoint", "/a")],
    )
    .order_by(Alias::new("week"), sea_orm::Order::Asc)
    .to_owned();
    let weeks = summed_rows(db, &query).await;
    assert_eq!(
        weeks,
        [
            (
                "2026-11-09".to_owned(),
                60,
                6,
                200,
                Counts::from([(12, 3), (40, 3)])
            ),
            ("2026-11-16".to_owned(), 10, 1, 100, Counts::from([(7, 1)])),
        ]
    );
    migration.up().await;
}

/// A `usage_daily_endpoints` row for GET `endpoint` in today's columns: its calls, requests,
/// latency sum and latency count, every call with a latency a success, none failed.
async fn insert_daily_endpoint(
    db: &DatabaseConnection,
    account: &str,
    endpoint: &str,
    day: &str,
    [calls, requests, latency_sum_ms, latency_count]: [i64; 4],
    histogram: &str,
) {
    insert_get_endpoint_row(
        db,
        (account, day, endpoint),
        &[
            ("calls", calls.into()),
            ("requests", requests.into()),
            ("successes", latency_count.into()),
            ("failures", 0i64.into()),
            ("latency_sum_ms", latency_sum_ms.into()),
            ("latency_count", latency_count.into()),
            ("latency_histogram", histogram.into()),
        ],
    )
    .await;
}

/// (day or week, calls, requests, latency sum, latency histogram) rows of `query`, which selects
/// those columns.
async fn summed_rows(
    db: &DatabaseConnection,
    query: &SelectStatement,
) -> Vec<(String, i64, i64, i64, Counts)> {
    rows(db, query)
        .await
        .iter()
        .map(|row| {
            let histogram: String = row.try_get_by_index(4).unwrap();
            (
                row.try_get_by_index(0).unwrap(),
                row.try_get_by_index(1).unwrap(),
                row.try_get_by_index(2).unwrap(),
                row.try_get_by_index(3).unwrap(),
                serde_json::from_str::<std::collections::BTreeMap<String, i64>>(&histogram)
                    .unwrap()
                    .into_iter()
                    .map(|(bucket, count)| (bucket.parse().unwrap(), count))
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn running_endpoint_sums_are_filled_from_the_daily_ones() {
    let app = TestApp::new().await;
    let account = app.sign_up("running@example.com").await.account_id;
    let db = &app.state.db;
    let migration = Migration::revert_to_before(db, "m20261202_000001_running_endpoint_sums").await;

    let days = [
        ("/a", "2026-11-09", r#"{"12":2}"#, 2),
        ("/b", "2026-11-10", r#"{"7":1}"#, 1),
        ("/a", "2026-11-15", r#"{"12":1,"40":3}"#, 4),
        ("/a", "2026-11-16", r#"{}"#, 0),
    ];
    for (endpoint, day, histogram, latency_count) in days {
        let sums = [
            latency_count * 10 + 1,
            latency_count + 1,
            latency_count * 50,
            latency_count,
        ];
        insert_daily_endpoint(db, &account, endpoint, day, sums, histogram).await;
    }

    migration.up().await;
    let running = |endpoint: &str| {
        select(
            "usage_running_endpoints",
            &[
                "day",
                "calls",
                "requests",
                "latency_sum_ms",
                "latency_histogram",
            ],
            &[("account_id", &account), ("endpoint", endpoint)],
        )
        .order_by(Alias::new("day"), sea_orm::Order::Asc)
        .to_owned()
    };
    // Each day's row holds every day up to it.
    assert_eq!(
        summed_rows(db, &running("/a")).await,
        [
            ("2026-11-09".to_owned(), 21, 3, 100, Counts::from([(12, 2)])),
            (
                "2026-11-15".to_owned(),
                62,
                8,
                300,
                Counts::from([(12, 3), (40, 3)])
            ),
            (
                "2026-11-16".to_owned(),
                63,
                9,
                300,
                Counts::from([(12, 3), (40, 3)])
            ),
        ]
    );
    assert_eq!(
        summed_rows(db, &running("/b")).await,
        [("2026-11-10".to_owned(), 11, 2, 50, Counts::from([(7, 1)]))]
    );
    let listed = select(
        "usage_endpoints",
        &["endpoint"],
        &[("account_id", &account)],
    )
    .order_by(Alias::new("endpoint"), sea_orm::Order::Asc)
    .to_owned();
    let listed: Vec<String> = rows(db, &listed)
        .await
        .iter()
        .map(|row| row.try_get_by_index(0).unwrap())
        .collect();
    assert_eq!(listed, ["/a", "/b"]);

    // Reverted, the weekly rows are back, summed from the daily ones.
    migration.down().await;
    let weekly = select(
        "usage_weekly_endpoints",
        &["calls"],
        &[("account_id", &account), ("week", "2026-11-09")],
    )
    .and_where(Expr::col(Alias::new("endpoint")).eq("/a"))
    .to_owned();
    assert_eq!(numbers(db, &weekly).await, [62]);
    migration.up().await;
}

#[tokio::test]
async fn key_rollups_are_filled_from_the_stored_events() {
    let app = TestApp::new().await;
    let common::SignedUp {
        token,
        account_id: account,
        ..
    } = app.sign_up("key-rollups@example.com").await;
    let (_, key) = app.create_key(&token, false).await;
    let db = &app.state.db;
    let migration = Migration::revert_to_before(db, "m20261201_000001_key_rollups").await;

    let ms = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    };
    let november = (ms("2026-11-01T00:00:00Z"), ms("2026-12-01T00:00:00Z"));
    insert(
        db,
        "usage_periods",
        &[
            ("account_id", account.as_str().into()),
            ("period_start", november.0.into()),
            ("period_end", november.1.into()),
            ("calls", 9i64.into()),
        ],
    )
    .await;
    // (kind, occurred, status, cost): an install weighs nothing; a 500 fails.
    let events = [
        ("API_CALL", "2026-11-10T13:00:00Z", Some(200), 3i64),
        ("API_CALL", "2026-11-10T14:00:00Z", Some(500), 2),
        ("TOOL_CALL", "2026-11-11T09:00:00Z", None, 1),
        ("INSTALL", "2026-11-11T09:30:00Z", None, 0),
        ("API_CALL", "2026-11-12T10:00:00Z", None, 3),
    ];
    for (kind, at, status, cost) in events {
        insert(
            db,
            "usage_events",
            &[
                ("account_id", account.as_str().into()),
                ("api_key_id", key.as_str().into()),
                ("kind", kind.into()),
                ("status_code", status.into()),
                ("cost", cost.into()),
                ("expired_key", false.into()),
                ("occurred_at", ms(at).into()),
                ("received_at", ms(at).into()),
            ],
        )
        .await;
    }

    migration.up().await;
    let query = select(
        "usage_daily_keys",
        &["day", "calls", "failures"],
        &[("api_key_id", &key)],
    )
    .order_by(Alias::new("day"), sea_orm::Order::Asc)
    .to_owned();
    let days: Vec<(String, i64, i64)> = rows(db, &query)
        .await
        .iter()
        .map(|row| row.try_get_many_by_index().unwrap())
        .collect();
    assert_eq!(
        days,
        [
            ("2026-11-10".to_owned(), 5, 2),
            ("2026-11-11".to_owned(), 1, 0),
            ("2026-11-12".to_owned(), 3, 0),
        ]
    );
    let query = select(
        "usage_key_periods",
        &["period_start", "calls"],
        &[("api_key_id", &key)],
    );
    let periods: Vec<(i64, i64)> = rows(db, &query)
        .await
        .iter()
        .map(|row| row.try_get_many_by_index().unwrap())
        .collect();
    assert_eq!(periods, [(november.0, 9)]);
}

#[tokio::test]
async fn overall_daily_calls_are_filled_from_the_daily_totals() {
    let app = TestApp::new().await;
    let first = app.sign_up("overall-1@example.com").await.account_id;
    let second = app.sign_up("overall-2@example.com").await.account_id;
    let db = &app.state.db;
    let migration = Migration::revert_to_before(db, "m20261202_000002_overall_daily_calls").await;

    for (account, day, calls) in [
        (&first, "2026-11-29", 4i64),
        (&second, "2026-11-29", 7),
        (&second, "2026-11-30", 2),
    ] {
        insert(
            db,
            "usage_daily_totals",
            &[
                ("account_id", account.as_str().into()),
                ("day", day.into()),
                ("calls", calls.into()),
                ("successes", calls.into()),
                ("failures", 0i64.into()),
                ("latency_sum_ms", 0i64.into()),
                ("latency_count", 0i64.into()),
            ],
        )
        .await;
    }

    migration.up().await;
    for (day, calls) in [("2026-11-29", 11), ("2026-11-30", 2)] {
        let query = select("usage_daily_overall", &["calls"], &[("day", day)]);
        assert_eq!(numbers(db, &query).await, [calls], "{day}");
    }
}
