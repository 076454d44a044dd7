//! Changes an admin makes to an account's usage counters. (Reading them is
//! [`analytics`](crate::domain::analytics); counting them is the recorder's.)

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait};

use crate::domain::analytics::{current_usage, UsageSummary};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::invalidation::{Change, Invalidation};
use crate::domain::periods::BillingPeriod;
use crate::domain::sql::statement;
use crate::entity::account;

/// Sets the calls of `account_id`'s current billing period back to zero and returns the period's
/// usage. The quota gate drops its in-memory counters of the account, so the next request starts
/// from the reset count.
pub async fn reset_usage(
    db: &DatabaseConnection,
    invalidation: &Invalidation,
    account_id: &str,
    now: DateTime<Utc>,
) -> DomainResult<UsageSummary> {
    let account = account::Entity::find_by_id(account_id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| DomainError::not_found("Account not found"))?;
    let period = BillingPeriod::for_account(&account, now);
    db.execute_raw(statement(
        db.get_database_backend(),
        "UPDATE usage_periods SET calls = 0 WHERE account_id = ? AND period_start = ?",
        vec![account.id.clone().into(), period.start_ms().into()],
    ))
    .await?;
    invalidation
        .announce(db, Change::Usage(account.id.clone()))
        .await;
    current_usage(db, &account, now).await
}
