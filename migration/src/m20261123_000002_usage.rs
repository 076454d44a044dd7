//! Usage: raw events, the per-period call counters that quotas and billing read, and the daily
//! rollups that analytics reads (so that its cost does not grow with the number of events).
//!
//! Times of events are BIGINT unix milliseconds: cheap to compare and identical on every backend.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_usage_events(manager).await?;
        create_usage_periods(manager).await?;
        create_usage_daily_endpoints(manager).await?;
        create_usage_daily_latency(manager).await?;
        create_usage_daily_tools(manager).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "usage_daily_tools",
            "usage_daily_latency",
            "usage_daily_endpoints",
            "usage_periods",
            "usage_events",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

// Over 60 lines: the events table with its indexes, each index one statement of its own.
async fn create_usage_events(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // One row per stored event. `account_id` is NULL only for anonymous installs, which never
    // carry an `event_id`: the unique index below is what makes event ids idempotent, and
    // NULLs are distinct in it on both backends.
    manager
        .create_table(
            Table::create()
                .table("usage_events")
                .col(big_pk_auto("id"))
                .col(string_len_null("account_id", 36))
                .col(string_len_null("api_key_id", 36))
                .col(string_len_null("user_id", 36))
                .col(string_len("kind", 16))
                .col(string_len_null("event_id", 128))
                .col(string_len_null("endpoint", 500))
                .col(string_len_null("method", 16))
                .col(integer_null("status_code"))
                .col(big_integer_null("response_time_ms"))
                .col(string_len_null("skill_id", 200))
                .col(string_len_null("tool_name", 200))
                .col(string_len_null("hook_event", 100))
                .col(text_null("input_snippet"))
                .col(text_null("output_snippet"))
                .col(text_null("metadata"))
                // Calls this event counts against the quota (verify's `cost`; 0 for installs).
                .col(big_integer("cost"))
                .col(boolean("expired_key"))
                .col(big_integer("occurred_at"))
                .col(big_integer("received_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("usage_events", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from("usage_events", "api_key_id")
                        .to("api_keys", "id")
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;

    manager
        .create_index(
            Index::create()
                .name("uq_usage_events_account_event_id")
                .table("usage_events")
                .col("account_id")
                .col("event_id")
                .unique()
                .to_owned(),
        )
        .await?;

    manager
        .create_index(
            Index::create()
                .name("idx_usage_events_account_occurred")
                .table("usage_events")
                .col("account_id")
                .col("occurred_at")
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn create_usage_periods(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // Calls per account and billing period: the truth the in-memory quota gate starts from.
    manager
        .create_table(
            Table::create()
                .table("usage_periods")
                .col(string_len("account_id", 36))
                .col(big_integer("period_start"))
                .col(big_integer("period_end"))
                .col(big_integer("calls"))
                .primary_key(Index::create().col("account_id").col("period_start"))
                .foreign_key(
                    ForeignKey::create()
                        .from("usage_periods", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn create_usage_daily_endpoints(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // API calls per account, UTC day and (method, endpoint). `latency_count` counts the calls
    // whose response time is known (a verified call learns it when its event is reported).
    manager
        .create_table(
            Table::create()
                .table("usage_daily_endpoints")
                .col(string_len("account_id", 36))
                .col(string_len("day", 10))
                .col(string_len("method", 16))
                .col(string_len("endpoint", 500))
                .col(big_integer("calls"))
                .col(big_integer("successes"))
                .col(big_integer("failures"))
                .col(big_integer("latency_sum_ms"))
                .col(big_integer("latency_count"))
                .primary_key(
                    Index::create()
                        .col("account_id")
                        .col("day")
                        .col("method")
                        .col("endpoint"),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from("usage_daily_endpoints", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn create_usage_daily_latency(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // Response-time histogram of the same keys, in the log buckets of
    // `tally::domain::histogram`, from which percentiles are read.
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
    Ok(())
}

async fn create_usage_daily_tools(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // Tool uses and installs per account, UTC day, kind and (skill, tool).
    manager
        .create_table(
            Table::create()
                .table("usage_daily_tools")
                .col(string_len("account_id", 36))
                .col(string_len("day", 10))
                .col(string_len("kind", 16))
                .col(string_len("skill_id", 200))
                .col(string_len("tool_name", 200))
                .col(big_integer("calls"))
                .col(big_integer("last_used_at"))
                .primary_key(
                    Index::create()
                        .col("account_id")
                        .col("day")
                        .col("kind")
                        .col("skill_id")
                        .col("tool_name"),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from("usage_daily_tools", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    Ok(())
}
