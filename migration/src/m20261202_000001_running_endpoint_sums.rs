//! Running sums of the endpoint rollups, in place of the weekly ones: for each account,
//! (method, endpoint) and day with calls, the sums over every day up to that one. Any window is
//! then the row at its last day less the row before its first day, two rows per endpoint however
//! many days it spans (the weekly rows still left a 90-day window 12 to 18 rows per endpoint).
//! `usage_endpoints` lists each account's endpoints, for those lookups and as the row a follower
//! locks while it changes an endpoint's running sums.
//!
//! Back-filled from the daily rollups, account by account, the latency histograms added up
//! bucket by bucket here.

use std::collections::BTreeMap;

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, QueryResult};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The summed columns, in the order they are read and written.
const SUMS: [&str; 6] = [
    "calls",
    "requests",
    "successes",
    "failures",
    "latency_sum_ms",
    "latency_count",
];

/// Running-sum rows written per statement (12 values each).
const ROWS_PER_INSERT: usize = 500;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_usage_endpoints(manager).await?;
        create_usage_running_endpoints(manager).await?;
        fill_from_daily_rollups(manager).await?;
        manager
            .drop_table(Table::drop().table("usage_weekly_endpoints").to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["usage_running_endpoints", "usage_endpoints"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        super::m20261130_000002_weekly_endpoint_rollups::Migration
            .up(manager)
            .await
    }
}

/// One running-sum row being written.
struct Running {
    method: String,
    endpoint: String,
    day: String,
    sums: [i64; 6],
    histogram: BTreeMap<i64, i64>,
}

/// Writes the running sums of one account's daily endpoint rollups.
async fn fill_account(db: &SchemaManagerConnection<'_>, account: &str) -> Result<(), DbErr> {
    let mut daily = Query::select();
    daily
        .columns(["method", "endpoint", "day"])
        .columns(SUMS)
        .column("latency_histogram")
        .from("usage_daily_endpoints")
        .and_where(Expr::col("account_id").eq(account))
        .order_by("method", Order::Asc)
        .order_by("endpoint", Order::Asc)
        .order_by("day", Order::Asc);
    let rows = db.query_all(&daily).await?;
    let mut written: Vec<Running> = Vec::with_capacity(rows.len());
    for row in &rows {
        let (method, endpoint, day): (String, String, String) = row.try_get_many_by_index()?;
        let mut next = match written.last() {
            Some(last) if last.method == method && last.endpoint == endpoint => Running {
                method,
                endpoint,
                day,
                sums: last.sums,
                histogram: last.histogram.clone(),
            },
            _ => Running {
                method,
                endpoint,
                day,
                sums: [0; 6],
                histogram: BTreeMap::new(),
            },
        };
        add_row(&mut next, row)?;
        written.push(next);
    }
    for chunk in written.chunks(ROWS_PER_INSERT) {
        let mut insert = Query::insert();
        insert.into_table("usage_running_endpoints").columns(
            ["account_id", "method", "endpoint", "day"]
                .into_iter()
                .chain(SUMS)
                .chain(["latency_histogram"]),
        );
        for running in chunk {
            let mut values: Vec<Expr> = vec![
                account.into(),
                running.method.as_str().into(),
                running.endpoint.as_str().into(),
                running.day.as_str().into(),
            ];
            values.extend(running.sums.iter().map(|sum| Expr::val(*sum)));
            values.push(histogram_json(&running.histogram).into());
            insert.values_panic(values);
        }
        db.execute(&insert).await?;
    }
    Ok(())
}

/// Adds a daily rollup row (method, endpoint, day, the sums, the histogram) to `running`.
fn add_row(running: &mut Running, row: &QueryResult) -> Result<(), DbErr> {
    for (index, sum) in running.sums.iter_mut().enumerate() {
        let value: i64 = row.try_get_by_index(3 + index)?;
        *sum += value;
    }
    let stored: String = row.try_get_by_index(3 + SUMS.len())?;
    let counts: BTreeMap<String, i64> = serde_json::from_str(&stored).map_err(|err| {
        DbErr::Migration(format!("unreadable latency histogram {stored:?}: {err}"))
    })?;
    for (bucket, count) in counts {
        let bucket: i64 = bucket.parse().map_err(|_| {
            DbErr::Migration(format!("unreadable latency histogram bucket {bucket:?}"))
        })?;
        *running.histogram.entry(bucket).or_default() += count;
    }
    Ok(())
}

/// A histogram in its stored form (as `crate::domain::histogram::to_json` writes it).
fn histogram_json(counts: &BTreeMap<i64, i64>) -> String {
    let entries: Vec<String> = counts
        .iter()
        .filter(|(_, count)| **count != 0)
        .map(|(bucket, count)| format!("\"{bucket}\":{count}"))
        .collect();
    format!("{{{}}}", entries.join(","))
}

async fn create_usage_endpoints(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("usage_endpoints")
                .col(string_len("account_id", 36))
                .col(text("method"))
                .col(text("endpoint"))
                .primary_key(
                    Index::create()
                        .col("account_id")
                        .col("method")
                        .col("endpoint"),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from("usage_endpoints", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn create_usage_running_endpoints(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let mut running = Table::create();
    running
        .table("usage_running_endpoints")
        .col(string_len("account_id", 36))
        .col(text("method"))
        .col(text("endpoint"))
        .col(string_len("day", 10));
    for column in SUMS {
        running.col(big_integer(column));
    }
    manager
        .create_table(
            running
                .col(text("latency_histogram"))
                .primary_key(
                    Index::create()
                        .col("account_id")
                        .col("method")
                        .col("endpoint")
                        .col("day"),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from("usage_running_endpoints", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn fill_from_daily_rollups(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_unprepared(
        "INSERT INTO usage_endpoints (account_id, method, endpoint) \
         SELECT DISTINCT account_id, method, endpoint FROM usage_daily_endpoints",
    )
    .await?;
    let accounts = db
        .query_all(
            Query::select()
                .distinct()
                .column("account_id")
                .from("usage_endpoints"),
        )
        .await?;
    for account in accounts {
        let account: String = account.try_get_by_index(0)?;
        fill_account(db, &account).await?;
    }
    Ok(())
}
