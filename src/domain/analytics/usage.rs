//! An account's calls: per billing period with what its plan makes of them (quota, overage), and
//! per day over a window.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::IntoCondition;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, JoinType,
    QueryFilter, QuerySelect, RelationTrait,
};

use super::{day_key, mean, DayWindow};
use crate::domain::billing::invoice::{overage_calls, overage_cents};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::periods::BillingPeriod;
use crate::entity::{account, plan, usage_daily_total, usage_period};

/// What a plan says about a period's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanTerms {
    /// `None`: unlimited.
    pub monthly_quota: Option<i64>,
    pub overage_price_micros: i64,
}

/// One account's calls in one billing period, with what its plan makes of them.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageSummary {
    pub period: BillingPeriod,
    pub calls: i64,
    pub limit: Option<i64>,
    /// Calls left before the quota, never below 0; `None` for unlimited plans.
    pub remaining: Option<i64>,
    pub overage_calls: i64,
    pub overage_cost_cents: i64,
    /// Share of the quota used, in percent (past 100 in overage); `None` for unlimited plans.
    pub usage_percentage: Option<f64>,
}

impl UsageSummary {
    pub fn new(period: BillingPeriod, calls: i64, terms: PlanTerms) -> Self {
        let calls = calls.max(0);
        let limit = terms.monthly_quota;
        let overage_calls = overage_calls(calls, limit);
        Self {
            period,
            calls,
            limit,
            remaining: limit.map(|limit| (limit - calls).max(0)),
            overage_calls,
            overage_cost_cents: overage_cents(overage_calls, terms.overage_price_micros),
            usage_percentage: limit.map(|limit| match limit {
                // A zero quota is used up by nothing at all.
                0 => 100.0,
                limit => calls as f64 * 100.0 / limit as f64,
            }),
        }
    }

    /// The same usage, its period shown from `created_at` on when the account was created
    /// during it (the quota still counts over the whole period).
    pub fn since_creation(mut self, created_at: DateTime<Utc>) -> Self {
        self.period = self.period.since(created_at).unwrap_or(self.period);
        self
    }
}

/// Billable calls of one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyUsage {
    pub date: NaiveDate,
    /// API calls (by cost) and tool uses.
    pub total_calls: i64,
    /// API calls (by cost) answered 2xx/3xx.
    pub successful_calls: i64,
    /// API calls (by cost) answered 4xx/5xx.
    pub failed_calls: i64,
    /// Mean response time of the API calls whose time is known, rounded half up.
    pub avg_response_time_ms: Option<i64>,
}

/// Usage of each (account, period) asked, in ONE statement: the accounts with their plans, joined
/// with the counters of the periods asked. Accounts that do not exist are left out.
pub async fn usage_of(
    db: &impl ConnectionTrait,
    keys: &[(String, BillingPeriod)],
) -> DomainResult<HashMap<(String, BillingPeriod), UsageSummary>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (terms, calls) = plans_and_counters(db, keys).await?;
    Ok(keys
        .iter()
        .filter_map(|(id, period)| {
            let terms = terms.get(id)?;
            let n = calls
                .get(&(id.clone(), period.start_ms()))
                .copied()
                .unwrap_or(0);
            Some(((id.clone(), *period), UsageSummary::new(*period, n, *terms)))
        })
        .collect())
}

/// The plan terms of each account asked, and the calls of those of its counters that count one
/// of the periods asked ((account, period start) → calls).
async fn plans_and_counters(
    db: &impl ConnectionTrait,
    keys: &[(String, BillingPeriod)],
) -> DomainResult<(HashMap<String, PlanTerms>, HashMap<(String, i64), i64>)> {
    let mut ids: Vec<&str> = keys.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut starts: Vec<i64> = keys.iter().map(|(_, p)| p.start_ms()).collect();
    starts.sort_unstable();
    starts.dedup();
    // Only the counters of the periods asked: an account without one still comes with its plan.
    let counters = usage_period::Relation::Account
        .def()
        .rev()
        .on_condition(move |_, _| {
            usage_period::Column::PeriodStart
                .is_in(starts.clone())
                .into_condition()
        });
    /// An account with its plan's terms, and one of the periods asked when it has a counter.
    #[derive(FromQueryResult)]
    struct Row {
        id: String,
        monthly_quota: Option<i64>,
        overage_price_micros: i64,
        period_start: Option<i64>,
        calls: Option<i64>,
    }
    let rows = account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .column(plan::Column::MonthlyQuota)
        .column(plan::Column::OveragePriceMicros)
        .column(usage_period::Column::PeriodStart)
        .column(usage_period::Column::Calls)
        .join(JoinType::InnerJoin, account::Relation::Plan.def())
        .join(JoinType::LeftJoin, counters)
        .filter(account::Column::Id.is_in(ids))
        .into_model::<Row>()
        .all(db)
        .await?;
    let mut terms: HashMap<String, PlanTerms> = HashMap::new();
    let mut calls: HashMap<(String, i64), i64> = HashMap::new();
    for row in rows {
        if let (Some(start), Some(n)) = (row.period_start, row.calls) {
            calls.insert((row.id.clone(), start), n);
        }
        terms.insert(
            row.id,
            PlanTerms {
                monthly_quota: row.monthly_quota,
                overage_price_micros: row.overage_price_micros,
            },
        );
    }
    Ok((terms, calls))
}

/// The usage of `account` in its billing period containing `now`.
pub async fn current_usage(
    db: &DatabaseConnection,
    account: &account::Model,
    now: DateTime<Utc>,
) -> DomainResult<UsageSummary> {
    let key = (account.id.clone(), BillingPeriod::for_account(account, now));
    usage_of(db, std::slice::from_ref(&key))
        .await?
        .remove(&key)
        .map(|usage| usage.since_creation(account.created_at))
        .ok_or_else(|| DomainError::not_found("Account not found"))
}

/// One entry per UTC day of the window ending today, oldest first, days without calls included.
pub async fn usage_history(
    db: &DatabaseConnection,
    account_id: &str,
    days: i64,
    now: DateTime<Utc>,
) -> DomainResult<Vec<DailyUsage>> {
    let window = DayWindow::checked(now, days)?;
    // One row per day: the per-(account, day) totals carry the outcomes of the day's API calls.
    let by_day: HashMap<String, usage_daily_total::Model> = usage_daily_total::Entity::find()
        .filter(usage_daily_total::Column::AccountId.eq(account_id))
        .filter(window.holds(usage_daily_total::Column::Day))
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.day.clone(), row))
        .collect();
    Ok(window
        .days()
        .map(|date| match by_day.get(&day_key(date)) {
            Some(day) => DailyUsage {
                date,
                total_calls: day.calls,
                successful_calls: day.successes,
                failed_calls: day.failures,
                avg_response_time_ms: mean(day.latency_sum_ms, day.latency_count),
            },
            None => DailyUsage {
                date,
                total_calls: 0,
                successful_calls: 0,
                failed_calls: 0,
                avg_response_time_ms: None,
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn period() -> BillingPeriod {
        BillingPeriod::calendar_month(Utc.with_ymd_and_hms(2026, 11, 10, 0, 0, 0).unwrap())
    }

    #[test]
    fn the_contract_example_bills_fifty_cents() {
        let pro = PlanTerms {
            monthly_quota: Some(100_000),
            overage_price_micros: 1_000,
        };
        let usage = UsageSummary::new(period(), 100_500, pro);
        assert_eq!(usage.overage_calls, 500);
        assert_eq!(usage.overage_cost_cents, 50);
        assert_eq!(usage.remaining, Some(0));
        assert_eq!(usage.usage_percentage, Some(100.5));
    }

    #[test]
    fn unlimited_plans_have_no_percentage_and_no_overage() {
        let enterprise = PlanTerms {
            monthly_quota: None,
            overage_price_micros: 0,
        };
        let usage = UsageSummary::new(period(), 7_000_000, enterprise);
        assert_eq!(usage.limit, None);
        assert_eq!(usage.remaining, None);
        assert_eq!(usage.usage_percentage, None);
        assert_eq!(usage.overage_calls, 0);
    }
}
