//! Invoices: one per account and ended billing period. The unique index on (account, period start)
//! is what makes concurrent or repeated billing runs create each invoice once.

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
                    .table("invoices")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("account_id", 36))
                    // Unix milliseconds, like `usage_periods`.
                    .col(big_integer("period_start"))
                    .col(big_integer("period_end"))
                    .col(string_len("plan_code", 32))
                    .col(big_integer("calls"))
                    .col(big_integer_null("included_calls"))
                    .col(big_integer("overage_calls"))
                    .col(big_integer("overage_price_micros"))
                    .col(big_integer("base_cents"))
                    .col(big_integer("overage_cents"))
                    .col(big_integer("total_cents"))
                    .col(big_integer("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("invoices", "account_id")
                            .to("accounts", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_invoices_account_period")
                    .table("invoices")
                    .col("account_id")
                    .col("period_start")
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("invoices").to_owned())
            .await
    }
}
