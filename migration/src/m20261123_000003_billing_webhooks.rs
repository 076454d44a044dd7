//! The billing provider's webhook: the ids of the events already applied (so a redelivery is not
//! applied twice), the `created` time of the last event applied to each account (so an older,
//! late-delivered event cannot undo a newer one), and an index to find an account by customer.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The primary key is the uniqueness guarantee: the id is inserted in the same transaction
        // as the event's effect, so two deliveries of one event can never both commit.
        manager
            .create_table(
                Table::create()
                    .table("billing_webhook_events")
                    .col(string_len("id", 255).primary_key())
                    .col(string_len("event_type", 255))
                    .col(string_len_null("account_id", 36))
                    .col(big_integer("created"))
                    .col(timestamp_with_time_zone("received_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_billing_webhook_events_received_at")
                    .table("billing_webhook_events")
                    .col("received_at")
                    .to_owned(),
            )
            .await?;

        // Unix seconds, as the provider sends them.
        manager
            .alter_table(
                Table::alter()
                    .table("accounts")
                    .add_column(big_integer_null("billing_event_created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_accounts_billing_customer_id")
                    .table("accounts")
                    .col("billing_customer_id")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_accounts_billing_customer_id")
                    .table("accounts")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("accounts")
                    .drop_column("billing_event_created_at")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table("billing_webhook_events").to_owned())
            .await?;
        Ok(())
    }
}
