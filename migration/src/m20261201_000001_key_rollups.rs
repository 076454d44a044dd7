//! Usage per API key, for the keys page: calls per key and billing period, and calls and failed
//! calls per key and UTC day. Both are filled by the rollup follower like the other rollups, and
//! back-filled here from the stored events.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_usage_key_periods(manager).await?;
        create_usage_daily_keys(manager).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("usage_daily_keys").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("usage_key_periods").to_owned())
            .await
    }
}

async fn create_usage_key_periods(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("usage_key_periods")
                .col(string_len("api_key_id", 36))
                .col(big_integer("period_start"))
                .col(big_integer("calls"))
                .primary_key(Index::create().col("api_key_id").col("period_start"))
                .foreign_key(
                    ForeignKey::create()
                        .from("usage_key_periods", "api_key_id")
                        .to("api_keys", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn create_usage_daily_keys(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("usage_daily_keys")
                .col(string_len("api_key_id", 36))
                .col(string_len("day", 10))
                .col(big_integer("calls"))
                .col(big_integer("failures"))
                .primary_key(Index::create().col("api_key_id").col("day"))
                .foreign_key(
                    ForeignKey::create()
                        .from("usage_daily_keys", "api_key_id")
                        .to("api_keys", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

    let day = match manager.get_database_backend() {
        DatabaseBackend::Postgres => {
            "to_char(to_timestamp(occurred_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        }
        _ => "strftime('%Y-%m-%d', occurred_at / 1000, 'unixepoch')",
    };

    let db = manager.get_connection();

    // Calls are the counted events (installs weigh nothing); failures are API calls
    // answered 4xx/5xx, weighted like the calls.
    db.execute_unprepared(&format!(
        "INSERT INTO usage_daily_keys (api_key_id, day, calls, failures) \
         SELECT api_key_id, {day}, SUM(cost), \
           SUM(CASE WHEN status_code >= 400 THEN cost ELSE 0 END) \
         FROM usage_events \
         WHERE api_key_id IS NOT NULL AND cost > 0 \
           AND api_key_id IN (SELECT id FROM api_keys) \
         GROUP BY api_key_id, {day}"
    ))
    .await?;

    db.execute_unprepared(
        "INSERT INTO usage_key_periods (api_key_id, period_start, calls) \
         SELECT e.api_key_id, p.period_start, SUM(e.cost) \
         FROM usage_events e \
         JOIN usage_periods p ON p.account_id = e.account_id \
           AND e.occurred_at >= p.period_start AND e.occurred_at < p.period_end \
         WHERE e.api_key_id IS NOT NULL AND e.cost > 0 \
           AND e.api_key_id IN (SELECT id FROM api_keys) \
         GROUP BY e.api_key_id, p.period_start",
    )
    .await?;
    Ok(())
}
