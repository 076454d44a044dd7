//! The endpoint rollups summed per ISO week (the week's Monday, `YYYY-MM-DD`), beside the daily
//! ones: a window of 30 or 90 days reads its whole weeks here, one row per endpoint and week,
//! and only its first and last few days from the daily rows. Filled from the daily rows, the
//! latency histograms merged bucket by bucket.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The Monday on or before a `YYYY-MM-DD` day, in SQL.
fn week_of(backend: DatabaseBackend, day: &str) -> String {
    match backend {
        DatabaseBackend::Postgres => {
            format!("to_char(date_trunc('week', {day}::date), 'YYYY-MM-DD')")
        }
        _ => format!("date({day}, '-6 days', 'weekday 1')"),
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("usage_weekly_endpoints")
                    .col(string_len("account_id", 36))
                    .col(string_len("week", 10))
                    .col(text("method"))
                    .col(text("endpoint"))
                    .col(big_integer("calls"))
                    .col(big_integer("requests"))
                    .col(big_integer("successes"))
                    .col(big_integer("failures"))
                    .col(big_integer("latency_sum_ms"))
                    .col(big_integer("latency_count"))
                    .col(text("latency_histogram"))
                    .primary_key(
                        Index::create()
                            .col("account_id")
                            .col("week")
                            .col("method")
                            .col("endpoint"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("usage_weekly_endpoints", "account_id")
                            .to("accounts", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let backend = manager.get_database_backend();
        let week = week_of(backend, "day");
        let merged_histogram = match backend {
            DatabaseBackend::Postgres => {
                "(SELECT COALESCE(json_object_agg(key, total)::text, '{}') FROM ( \
                   SELECT j.key, SUM(j.value::bigint) AS total \
                   FROM usage_daily_endpoints d, json_each_text(d.latency_histogram::json) j \
                   WHERE d.account_id = w.account_id AND d.method = w.method \
                     AND d.endpoint = w.endpoint \
                     AND d.day BETWEEN w.week \
                       AND to_char(w.week::date + 6, 'YYYY-MM-DD') \
                   GROUP BY j.key) AS merged)"
                    .to_owned()
            }
            _ => "(SELECT COALESCE(json_group_object(key, total), '{}') FROM ( \
                   SELECT j.key AS key, SUM(j.value) AS total \
                   FROM usage_daily_endpoints d, json_each(d.latency_histogram) j \
                   WHERE d.account_id = w.account_id AND d.method = w.method \
                     AND d.endpoint = w.endpoint \
                     AND d.day BETWEEN w.week AND date(w.week, '+6 days') \
                   GROUP BY j.key))"
                .to_owned(),
        };
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "INSERT INTO usage_weekly_endpoints (account_id, week, method, endpoint, calls, \
               requests, successes, failures, latency_sum_ms, latency_count, latency_histogram) \
             SELECT account_id, {week}, method, endpoint, SUM(calls), SUM(requests), \
               SUM(successes), SUM(failures), SUM(latency_sum_ms), SUM(latency_count), '{{}}' \
             FROM usage_daily_endpoints GROUP BY account_id, {week}, method, endpoint"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "UPDATE usage_weekly_endpoints AS w SET latency_histogram = {merged_histogram} \
             WHERE w.latency_count > 0"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("usage_weekly_endpoints").to_owned())
            .await
    }
}
