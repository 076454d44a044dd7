//! "Calls" are billable calls everywhere: a verify with `cost: N` is N calls in the daily rollups
//! too, not one, so that what is charted is what is billed. Endpoint rows also keep `requests`,
//! the number of API calls (events) behind them, which latency statistics are about.
//!
//! Existing rows counted events: `requests` takes that count, and `calls`, `successes` and
//! `failures` gain the extra `cost - 1` of every API call still in the raw event table. Events
//! already pruned (past the retention period) are gone, so days older than the retention keep
//! counting their costly calls once. Daily totals gain the same extra calls (read back from the
//! endpoint rows) and re-add their outcomes from them.
//!
//! `down` gives `calls` back its per-event meaning exactly (from `requests`); `successes` and
//! `failures` lose the extra cost of the raw events still stored.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The UTC day (`YYYY-MM-DD`) of a raw event's `occurred_at` (unix milliseconds).
fn event_day(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => {
            "to_char(to_timestamp(occurred_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        }
        _ => "strftime('%Y-%m-%d', occurred_at / 1000, 'unixepoch')",
    }
}

/// Per endpoint row, the extra calls, successes and failures of the stored costly API calls.
fn extras(backend: DatabaseBackend) -> String {
    format!(
        "SELECT account_id, {day} AS day, COALESCE(method, '') AS method, \
           COALESCE(endpoint, '') AS endpoint, SUM(cost - 1) AS calls, \
           SUM(CASE WHEN status_code >= 200 AND status_code < 400 THEN cost - 1 ELSE 0 END) \
             AS successes, \
           SUM(CASE WHEN status_code >= 400 THEN cost - 1 ELSE 0 END) AS failures \
         FROM usage_events \
         WHERE kind = 'API_CALL' AND cost > 1 AND account_id IS NOT NULL \
         GROUP BY account_id, {day}, COALESCE(method, ''), COALESCE(endpoint, '')",
        day = event_day(backend)
    )
}

const MATCHES_ENDPOINT_ROW: &str = "x.account_id = usage_daily_endpoints.account_id \
     AND x.day = usage_daily_endpoints.day AND x.method = usage_daily_endpoints.method \
     AND x.endpoint = usage_daily_endpoints.endpoint";

/// Daily totals' outcomes are those of the day's endpoint rows.
const TOTALS_OUTCOMES_FROM_ENDPOINTS: &str =
    "UPDATE usage_daily_totals SET successes = e.successes, failures = e.failures \
     FROM (SELECT account_id, day, SUM(successes) AS successes, SUM(failures) AS failures \
           FROM usage_daily_endpoints GROUP BY account_id, day) AS e \
     WHERE e.account_id = usage_daily_totals.account_id AND e.day = usage_daily_totals.day";

/// `sign` is `+` (up) or `-` (down): daily totals' calls gain or lose the extra calls of their
/// endpoint rows.
fn totals_calls(sign: char) -> String {
    format!(
        "UPDATE usage_daily_totals SET calls = usage_daily_totals.calls {sign} e.extra \
         FROM (SELECT account_id, day, SUM(calls - requests) AS extra \
               FROM usage_daily_endpoints GROUP BY account_id, day) AS e \
         WHERE e.account_id = usage_daily_totals.account_id AND e.day = usage_daily_totals.day \
           AND e.extra <> 0"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("usage_daily_endpoints")
                    .add_column(big_integer("requests").default(0))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        db.execute_unprepared("UPDATE usage_daily_endpoints SET requests = calls")
            .await?;
        db.execute_unprepared(&format!(
            "UPDATE usage_daily_endpoints SET calls = usage_daily_endpoints.calls + x.calls, \
               successes = usage_daily_endpoints.successes + x.successes, \
               failures = usage_daily_endpoints.failures + x.failures \
             FROM ({}) AS x WHERE {MATCHES_ENDPOINT_ROW}",
            extras(backend)
        ))
        .await?;
        db.execute_unprepared(&totals_calls('+')).await?;
        db.execute_unprepared(TOTALS_OUTCOMES_FROM_ENDPOINTS)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        db.execute_unprepared(&totals_calls('-')).await?;
        db.execute_unprepared(&format!(
            "UPDATE usage_daily_endpoints SET \
               successes = {max}(0, usage_daily_endpoints.successes - x.successes), \
               failures = {max}(0, usage_daily_endpoints.failures - x.failures) \
             FROM ({extras}) AS x WHERE {MATCHES_ENDPOINT_ROW}",
            max = greatest(backend),
            extras = extras(backend)
        ))
        .await?;
        db.execute_unprepared("UPDATE usage_daily_endpoints SET calls = requests")
            .await?;
        db.execute_unprepared(TOTALS_OUTCOMES_FROM_ENDPOINTS)
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("usage_daily_endpoints")
                    .drop_column("requests")
                    .to_owned(),
            )
            .await
    }
}

/// The two-argument maximum: `MAX(a, b)` in SQLite, `GREATEST(a, b)` in PostgreSQL.
fn greatest(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => "GREATEST",
        _ => "MAX",
    }
}
