//! Changes an admin makes to an account's usage counters. (Reading them is
//! [`analytics`](crate::domain::analytics); counting them is the recorder's.)

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::domain::analytics::{current_usage, UsageSummary};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::invalidation::{Change, Invalidation};
use crate::domain::periods::BillingPeriod;
use crate::entity::{account, usage_period};

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
    usage_period::Entity::update_many()
        .col_expr(usage_period::Column::Calls, Expr::val(0i64))
        .filter(usage_period::Column::AccountId.eq(account.id.as_str()))
        .filter(usage_period::Column::PeriodStart.eq(period.start_ms()))
        .exec(db)
        .await?;
    invalidation
        .announce(db, Change::Usage(account.id.clone()))
        .await;
    current_usage(db, &account, now).await
}
