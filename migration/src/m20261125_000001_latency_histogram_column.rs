//! The latency histogram of a daily endpoint rollup moves from one `usage_daily_latency` row per
//! bucket into a `latency_histogram` column of the rollup row itself: a JSON object from bucket
//! number to count, such as `{"12":3,"40":1}`.
//!
//! Reading p95 then costs one row per (day, endpoint) instead of one per (day, endpoint, bucket),
//! which at millions of events is the difference between tens of thousands of rows and hundreds.
//! JSON rather than a binary encoding because both backends can merge, build and split it in SQL:
//! the recorder adds histograms inside its upsert, and this migration converts in both directions.

use sea_orm::DatabaseBackend;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("usage_daily_endpoints")
                    .add_column(text("latency_histogram").default("{}"))
                    .to_owned(),
            )
            .await?;
        let build = match manager.get_database_backend() {
            DatabaseBackend::Postgres => "json_object_agg(bucket::text, count)::text",
            _ => "json_group_object(CAST(bucket AS TEXT), count)",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "UPDATE usage_daily_endpoints SET latency_histogram = COALESCE(( \
                   SELECT {build} FROM usage_daily_latency l \
                   WHERE l.account_id = usage_daily_endpoints.account_id \
                   AND l.day = usage_daily_endpoints.day \
                   AND l.method = usage_daily_endpoints.method \
                   AND l.endpoint = usage_daily_endpoints.endpoint), '{{}}') \
                 WHERE latency_count > 0"
            ))
            .await?;
        manager
            .drop_table(Table::drop().table("usage_daily_latency").to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The table as `m20261123_000002_usage` created it.
        manager
            .create_table(
                Table::create()
                    .table("usage_daily_latency")
                    .col(string_len("account_id", 36))
                    .col(string_len("day", 10))
                    .col(string_len("method", 16))
                    .col(string_len("endpoint", 500))
                    .col(integer("bucket"))
                    .col(big_integer("count"))
                    .primary_key(
                        Index::create()
                            .col("account_id")
                            .col("day")
                            .col("method")
                            .col("endpoint")
                            .col("bucket"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("usage_daily_latency", "account_id")
                            .to("accounts", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let split = match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                "SELECT e.account_id, e.day, e.method, e.endpoint, \
                   CAST(b.key AS INTEGER), CAST(b.value AS BIGINT) \
                 FROM usage_daily_endpoints e, json_each_text(e.latency_histogram::json) b"
            }
            _ => {
                "SELECT e.account_id, e.day, e.method, e.endpoint, \
                   CAST(b.key AS INTEGER), b.value \
                 FROM usage_daily_endpoints e, json_each(e.latency_histogram) b"
            }
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO usage_daily_latency \
                 (account_id, day, method, endpoint, bucket, count) {split}"
            ))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("usage_daily_endpoints")
                    .drop_column("latency_histogram")
                    .to_owned(),
            )
            .await
    }
}
