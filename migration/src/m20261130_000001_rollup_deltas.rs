//! Rollup changes committed with their events and not yet added to the daily rollups: one row per
//! written batch, its sums as JSON. A follower adds them to the rollups and deletes them in one
//! transaction, so that each is applied exactly once, after a crash too.

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
                    .table("rollup_deltas")
                    .col(big_pk_auto("id"))
                    .col(big_integer("created_at"))
                    .col(text("delta"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Deltas not applied yet would be lost: `down` refuses while there are any.
        let pending = manager
            .get_connection()
            .query_one_raw(sea_orm_migration::sea_orm::Statement::from_string(
                manager.get_database_backend(),
                "SELECT COUNT(*) FROM rollup_deltas",
            ))
            .await?
            .map(|row| row.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0);
        if pending > 0 {
            return Err(DbErr::Migration(format!(
                "{pending} rollup changes are not applied yet: start `tally serve` once so that \
                 they are, then revert"
            )));
        }
        manager
            .drop_table(Table::drop().table("rollup_deltas").to_owned())
            .await
    }
}
