//! The per-(account, day) totals also keep the API calls' outcomes (successes, failures, latency
//! sum and count), so the daily history reads one row per day instead of one per endpoint and
//! day. Filled from the endpoint rollups.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [&str; 4] = ["successes", "failures", "latency_sum_ms", "latency_count"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table("usage_daily_totals")
                        .add_column(big_integer(column).default(0))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE usage_daily_totals SET successes = e.successes, failures = e.failures, \
                   latency_sum_ms = e.latency_sum_ms, latency_count = e.latency_count \
                 FROM (SELECT account_id, day, SUM(successes) AS successes, \
                         SUM(failures) AS failures, SUM(latency_sum_ms) AS latency_sum_ms, \
                         SUM(latency_count) AS latency_count \
                       FROM usage_daily_endpoints GROUP BY account_id, day) AS e \
                 WHERE e.account_id = usage_daily_totals.account_id \
                   AND e.day = usage_daily_totals.day",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table("usage_daily_totals")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
