//! The installation at a glance for the admin: accounts per plan, calls today and this month,
//! recurring revenue and the overage the current periods would bill.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use sea_orm::sea_query::{Asterisk, Expr, Func};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait,
};

use super::day_key;
use crate::domain::billing::invoice::overage_cents;
use crate::domain::dialect::total;
use crate::domain::error::DomainResult;
use crate::domain::periods::BillingPeriod;
use crate::domain::plans::PlanCode;
use crate::entity::{account, plan, usage_daily_overall, usage_period};

/// The installation at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    pub accounts_free: i64,
    pub accounts_pro: i64,
    pub accounts_enterprise: i64,
    pub accounts_total: i64,
    /// Billable calls of all accounts on the current UTC day.
    pub calls_today: i64,
    /// Billable calls of all accounts in the current calendar month (UTC), up to today.
    pub calls_this_month: i64,
    /// Sum of the plan prices of all accounts.
    pub mrr_cents: i64,
    /// What the overage of every account's current period would bill now.
    pub overage_this_month_cents: i64,
}

pub async fn overview(db: &DatabaseConnection, now: DateTime<Utc>) -> DomainResult<Overview> {
    let mut overview = Overview::default();

    let plans: Vec<(String, i64, i64)> = account::Entity::find()
        .select_only()
        .column(account::Column::PlanCode)
        .expr(Func::count(Expr::col(Asterisk)))
        .expr(total(plan::Column::PriceCents))
        .join(JoinType::LeftJoin, account::Relation::Plan.def())
        .group_by(account::Column::PlanCode)
        .into_tuple()
        .all(db)
        .await?;
    for (code, count, prices) in plans {
        match PlanCode::parse(&code) {
            Some(PlanCode::Free) => overview.accounts_free += count,
            Some(PlanCode::Pro) => overview.accounts_pro += count,
            Some(PlanCode::Enterprise) => overview.accounts_enterprise += count,
            None => {}
        }
        overview.accounts_total += count;
        overview.mrr_cents += prices;
    }

    let today = now.date_naive();
    let month_start = today.with_day(1).unwrap_or(today);
    let (today, month_start) = (day_key(today), day_key(month_start));
    // One row per day: API calls and tool uses of all accounts together.
    let calls_today: Expr = Expr::case(
        usage_daily_overall::Column::Day.eq(today.as_str()),
        usage_daily_overall::Column::Calls.into_expr(),
    )
    .finally(0i64)
    .into();
    let calls: Option<(i64, i64)> = usage_daily_overall::Entity::find()
        .select_only()
        .expr(total(calls_today))
        .expr(total(usage_daily_overall::Column::Calls))
        .filter(usage_daily_overall::Column::Day.gte(month_start))
        .filter(usage_daily_overall::Column::Day.lte(today))
        .into_tuple()
        .one(db)
        .await?;
    if let Some((today, month)) = calls {
        overview.calls_today = today;
        overview.calls_this_month = month;
    }

    overview.overage_this_month_cents = current_overage_cents(db, now).await?;
    Ok(overview)
}

/// Sum over accounts of the overage their current period would bill now (each account's line
/// rounded on its own, as its invoice would be).
async fn current_overage_cents(db: &DatabaseConnection, now: DateTime<Utc>) -> DomainResult<i64> {
    use sea_orm::sea_query::ExprTrait;
    let now_ms = now.timestamp_millis();
    // Candidates: periods around `now` already past a priced quota. Usually few.
    let rows: Vec<(String, i64, i64, i64, i64)> = usage_period::Entity::find()
        .select_only()
        .column(usage_period::Column::AccountId)
        .column(usage_period::Column::PeriodStart)
        .column(usage_period::Column::Calls)
        .column(plan::Column::MonthlyQuota)
        .column(plan::Column::OveragePriceMicros)
        .join(JoinType::InnerJoin, usage_period::Relation::Account.def())
        .join(JoinType::InnerJoin, account::Relation::Plan.def())
        .filter(usage_period::Column::PeriodStart.lte(now_ms))
        .filter(usage_period::Column::PeriodEnd.gt(now_ms))
        .filter(plan::Column::MonthlyQuota.is_not_null())
        .filter(
            usage_period::Column::Calls
                .into_expr()
                .gt(plan::Column::MonthlyQuota.into_expr()),
        )
        .filter(plan::Column::OveragePriceMicros.gt(0))
        .into_tuple()
        .all(db)
        .await?;
    // account → [(period start, overage cents)]
    let mut candidates: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (account_id, start, calls, quota, price) in rows {
        candidates
            .entry(account_id)
            .or_default()
            .push((start, overage_cents(calls - quota, price)));
    }
    if candidates.is_empty() {
        return Ok(0);
    }
    // Only the period each account is billed for now counts (a provider period may overlap an
    // older calendar-month counter).
    let mut total = 0;
    let ids: Vec<String> = candidates.keys().cloned().collect();
    for chunk in ids.chunks(500) {
        let accounts = account::Entity::find()
            .filter(account::Column::Id.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        for account in accounts {
            let current = BillingPeriod::for_account(&account, now).start_ms();
            if let Some(periods) = candidates.get(&account.id) {
                total += periods
                    .iter()
                    .filter(|(start, _)| *start == current)
                    .map(|(_, cents)| cents)
                    .sum::<i64>();
            }
        }
    }
    Ok(total)
}
