//! Installs per UTC day, skill, platform and version, anonymous and attributed alike: what the
//! admin's install statistics read, kept when raw events are pruned. Unknown values are stored as
//! empty strings (they are part of the key). Filled from the install events still stored; those
//! already pruned (past the retention period) are gone.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A text field of the install's JSON metadata, `''` when absent.
fn metadata_field(backend: DatabaseBackend, field: &str) -> String {
    match backend {
        DatabaseBackend::Postgres => format!("COALESCE(metadata::json ->> '{field}', '')"),
        _ => format!(
            "COALESCE(CASE WHEN json_valid(metadata) \
               THEN CAST(json_extract(metadata, '$.{field}') AS TEXT) END, '')"
        ),
    }
}

fn event_day(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => {
            "to_char(to_timestamp(occurred_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        }
        _ => "strftime('%Y-%m-%d', occurred_at / 1000, 'unixepoch')",
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("usage_daily_installs")
                    .col(string_len("day", 10))
                    .col(text("skill_id"))
                    .col(text("platform"))
                    .col(text("version"))
                    .col(big_integer("installs"))
                    .col(big_integer("anonymous"))
                    .col(big_integer("attributed"))
                    .col(big_integer("last_installed_at"))
                    .primary_key(
                        Index::create()
                            .col("day")
                            .col("skill_id")
                            .col("platform")
                            .col("version"),
                    )
                    .to_owned(),
            )
            .await?;
        let backend = manager.get_database_backend();
        let (day, platform, version) = (
            event_day(backend),
            metadata_field(backend, "platform"),
            metadata_field(backend, "version"),
        );
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO usage_daily_installs (day, skill_id, platform, version, installs, \
                   anonymous, attributed, last_installed_at) \
                 SELECT {day}, COALESCE(skill_id, ''), {platform}, {version}, COUNT(*), \
                   SUM(CASE WHEN account_id IS NULL THEN 1 ELSE 0 END), \
                   SUM(CASE WHEN account_id IS NULL THEN 0 ELSE 1 END), MAX(occurred_at) \
                 FROM usage_events WHERE kind = 'INSTALL' \
                 GROUP BY {day}, COALESCE(skill_id, ''), {platform}, {version}"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("usage_daily_installs").to_owned())
            .await
    }
}
