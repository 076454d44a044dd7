//! Each account keeps the plan it was created with, so that billing a period that ended before
//! the account's first plan change uses that plan, never the account's current one.
//!
//! Existing accounts: plan changes are stored as the plan moved *to*, and account creation
//! records the starting plan as the first change (at `created_at`). So the initial plan is the
//! plan of a change recorded at or before creation; when the first recorded change came later,
//! the plan it replaced is not stored, and since every account starts on FREE it is FREE; an
//! account without any recorded change has always been on its current plan.

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
                    .table("accounts")
                    .add_column(string_len("initial_plan_code", 32).default("FREE"))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE accounts SET initial_plan_code = COALESCE( \
                   (SELECT CASE WHEN c.effective_at <= accounts.created_at THEN c.plan_code \
                                ELSE 'FREE' END \
                    FROM account_plan_changes c WHERE c.account_id = accounts.id \
                    ORDER BY c.effective_at, c.id LIMIT 1), \
                   accounts.plan_code)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("accounts")
                    .drop_column("initial_plan_code")
                    .to_owned(),
            )
            .await
    }
}
