//! Calls per account and UTC day (API calls and tool uses, not installs): what the admin
//! overview sums for "today" and "this month", one row per account and day instead of one per
//! endpoint or tool. Filled from the existing rollups.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("usage_daily_totals")
                    .col(string_len("account_id", 36))
                    .col(string_len("day", 10))
                    .col(big_integer("calls"))
                    .primary_key(Index::create().col("account_id").col("day"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("usage_daily_totals", "account_id")
                            .to("accounts", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_usage_daily_totals_day")
                    .table("usage_daily_totals")
                    .col("day")
                    .col("calls")
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO usage_daily_totals (account_id, day, calls) \
                 SELECT account_id, day, SUM(calls) FROM ( \
                   SELECT account_id, day, calls FROM usage_daily_endpoints \
                   UNION ALL \
                   SELECT account_id, day, calls FROM usage_daily_tools WHERE kind = 'TOOL_CALL' \
                 ) rollups GROUP BY account_id, day",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("usage_daily_totals").to_owned())
            .await
    }
}
