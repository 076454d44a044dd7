//! `usage_events.user_id` was never written: events are attributed to an account and a key, and
//! no route knows a user. The column goes; `down` brings it back empty, as it always was.

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
                    .table("usage_events")
                    .drop_column("user_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("usage_events")
                    .add_column(string_len_null("user_id", 36))
                    .to_owned(),
            )
            .await
    }
}
