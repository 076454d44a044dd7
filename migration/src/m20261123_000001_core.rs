//! Plans (seeded with the three defaults), accounts with their plan history, users, API keys and
//! installation settings.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_plans(manager).await?;
        create_accounts(manager).await?;
        create_account_plan_changes(manager).await?;
        create_users(manager).await?;
        create_api_keys(manager).await?;
        create_settings(manager).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "settings",
            "api_keys",
            "users",
            "account_plan_changes",
            "accounts",
            "plans",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// (code, name, monthly quota, price in cents, overage price in micros, blocks over quota)
type DefaultPlan = (&'static str, &'static str, Option<i64>, i64, i64, bool);

async fn create_plans(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("plans")
                .col(string_len("code", 32).primary_key())
                .col(string_len("name", 100))
                .col(big_integer_null("monthly_quota"))
                .col(big_integer("price_cents"))
                .col(big_integer("overage_price_micros"))
                .col(integer("rate_limit_per_minute"))
                .col(boolean("blocks_over_quota"))
                .col(timestamp_with_time_zone("updated_at"))
                .to_owned(),
        )
        .await?;

    let seeded_at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;

    let defaults: [DefaultPlan; 3] = [
        ("FREE", "Free", Some(1_000), 0, 0, true),
        ("PRO", "Pro", Some(100_000), 2_900, 1_000, false),
        ("ENTERPRISE", "Enterprise", None, 29_900, 0, false),
    ];

    for (code, name, quota, price, overage, blocks) in defaults {
        manager
            .exec_stmt(
                Query::insert()
                    .into_table("plans")
                    .columns([
                        "code",
                        "name",
                        "monthly_quota",
                        "price_cents",
                        "overage_price_micros",
                        "rate_limit_per_minute",
                        "blocks_over_quota",
                        "updated_at",
                    ])
                    .values_panic([
                        code.into(),
                        name.into(),
                        quota.into(),
                        price.into(),
                        overage.into(),
                        100i32.into(),
                        blocks.into(),
                        seeded_at.into(),
                    ])
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

async fn create_accounts(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("accounts")
                .col(string_len("id", 36).primary_key())
                .col(string_len("name", 200))
                .col(string_len("plan_code", 32))
                .col(string_len_null("billing_customer_id", 255))
                .col(timestamp_with_time_zone_null("billing_period_start"))
                .col(timestamp_with_time_zone_null("billing_period_end"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("accounts", "plan_code")
                        .to("plans", "code"),
                )
                .to_owned(),
        )
        .await?;

    manager
        .create_index(
            Index::create()
                .name("idx_accounts_plan_code")
                .table("accounts")
                .col("plan_code")
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn create_account_plan_changes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // Every plan an account has had, with the moment it took effect: billing uses the plan
    // in force at a period's end, however late the run.
    manager
        .create_table(
            Table::create()
                .table("account_plan_changes")
                .col(big_pk_auto("id"))
                .col(string_len("account_id", 36))
                .col(string_len("plan_code", 32))
                .col(timestamp_with_time_zone("effective_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("account_plan_changes", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

    manager
        .create_index(
            Index::create()
                .name("idx_account_plan_changes_account")
                .table("account_plan_changes")
                .col("account_id")
                .col("effective_at")
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn create_users(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("users")
                .col(string_len("id", 36).primary_key())
                .col(string_len("account_id", 36))
                .col(string_len_uniq("email", 320))
                .col(string_len("password_hash", 255))
                .col(string_len("role", 16))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("users", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn create_api_keys(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("api_keys")
                .col(string_len("id", 36).primary_key())
                .col(string_len("account_id", 36))
                .col(string_len("name", 200))
                .col(string_len_uniq("key_hash", 64))
                .col(string_len("prefix", 16))
                .col(boolean("require_signature"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("last_used_at"))
                .col(timestamp_with_time_zone_null("expires_at"))
                .col(timestamp_with_time_zone_null("revoked_at"))
                .foreign_key(
                    ForeignKey::create()
                        .from("api_keys", "account_id")
                        .to("accounts", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;

    manager
        .create_index(
            Index::create()
                .name("idx_api_keys_account")
                .table("api_keys")
                .col("account_id")
                .to_owned(),
        )
        .await?;
    Ok(())
}

async fn create_settings(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // Installation-wide values such as the generated JWT secret.
    manager
        .create_table(
            Table::create()
                .table("settings")
                .col(string_len("name", 100).primary_key())
                .col(text("value"))
                .to_owned(),
        )
        .await?;
    Ok(())
}
