//! Usage and analytics answers: a billing period's usage, daily history, endpoint and tool
//! statistics, and the admin overview and account pages.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use crate::domain::analytics;
use crate::graphql::object::Account;

/// Calls of an account in one billing period and what its plan makes of them.
#[derive(SimpleObject, Clone, Debug)]
pub struct UsagePeriod {
    pub period_start: DateTime<Utc>,
    /// End of the period (exclusive).
    pub period_end: DateTime<Utc>,
    /// Calls counted against the quota in this period.
    pub calls: i64,
    /// The plan's quota; null for unlimited plans.
    pub limit: Option<i64>,
    /// Calls left before the quota, never below 0; null for unlimited plans.
    pub remaining: Option<i64>,
    pub overage_calls: i64,
    /// What the overage bills: overage calls × the plan's overage price, rounded half up.
    pub overage_cost_cents: i64,
    /// Share of the quota used, in percent; null for unlimited plans.
    pub usage_percentage: Option<f64>,
}

impl From<analytics::UsageSummary> for UsagePeriod {
    fn from(u: analytics::UsageSummary) -> Self {
        Self {
            period_start: u.period.start,
            period_end: u.period.end,
            calls: u.calls,
            limit: u.limit,
            remaining: u.remaining,
            overage_calls: u.overage_calls,
            overage_cost_cents: u.overage_cost_cents,
            usage_percentage: u.usage_percentage,
        }
    }
}

/// Calls of one UTC day.
#[derive(SimpleObject, Clone, Debug)]
pub struct DailyUsage {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// API calls and tool uses (installs are not calls).
    pub total_calls: i64,
    /// API calls answered 2xx or 3xx.
    pub successful_calls: i64,
    /// API calls answered 4xx or 5xx.
    pub failed_calls: i64,
    /// Mean response time of the day's API calls; null when none reported one.
    pub avg_response_time_ms: Option<i64>,
}

impl From<analytics::DailyUsage> for DailyUsage {
    fn from(d: analytics::DailyUsage) -> Self {
        Self {
            date: analytics::day_key(d.date),
            total_calls: d.total_calls,
            successful_calls: d.successful_calls,
            failed_calls: d.failed_calls,
            avg_response_time_ms: d.avg_response_time_ms,
        }
    }
}

/// API calls to one (method, endpoint).
#[derive(SimpleObject, Clone, Debug)]
pub struct EndpointStat {
    pub endpoint: String,
    pub method: String,
    pub total_calls: i64,
    pub failed_calls: i64,
    pub avg_response_time_ms: Option<i64>,
    /// 95th percentile response time, within 5% (or 1 ms) of the exact value.
    pub p95_response_time_ms: Option<i64>,
}

impl From<analytics::EndpointStat> for EndpointStat {
    fn from(s: analytics::EndpointStat) -> Self {
        Self {
            endpoint: s.endpoint,
            method: s.method,
            total_calls: s.total_calls,
            failed_calls: s.failed_calls,
            avg_response_time_ms: s.avg_response_time_ms,
            p95_response_time_ms: s.p95_response_time_ms,
        }
    }
}

/// Hook tool uses and installs of one (skill, tool).
#[derive(SimpleObject, Clone, Debug)]
pub struct ToolStat {
    pub skill_id: String,
    pub tool_name: String,
    pub calls: i64,
    pub last_used_at: DateTime<Utc>,
}

impl From<analytics::ToolStat> for ToolStat {
    fn from(s: analytics::ToolStat) -> Self {
        Self {
            skill_id: s.skill_id,
            tool_name: s.tool_name,
            calls: s.calls,
            last_used_at: s.last_used_at,
        }
    }
}

/// Accounts by plan.
#[derive(SimpleObject, Clone, Debug)]
pub struct PlanCounts {
    pub free: i64,
    pub pro: i64,
    pub enterprise: i64,
    pub total: i64,
}

/// Calls of all accounts.
#[derive(SimpleObject, Clone, Debug)]
pub struct CallCounts {
    /// On the current UTC day.
    pub today: i64,
    /// In the current calendar month (UTC).
    pub this_month: i64,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Revenue {
    /// Sum of the monthly prices of every account's plan.
    pub mrr_cents: i64,
    /// What the overage of every account's current period would bill now.
    pub overage_this_month_cents: i64,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct AdminOverview {
    /// Accounts by plan.
    pub users: PlanCounts,
    pub api_calls: CallCounts,
    pub revenue: Revenue,
}

impl From<analytics::Overview> for AdminOverview {
    fn from(o: analytics::Overview) -> Self {
        Self {
            users: PlanCounts {
                free: o.accounts_free,
                pro: o.accounts_pro,
                enterprise: o.accounts_enterprise,
                total: o.accounts_total,
            },
            api_calls: CallCounts {
                today: o.calls_today,
                this_month: o.calls_this_month,
            },
            revenue: Revenue {
                mrr_cents: o.mrr_cents,
                overage_this_month_cents: o.overage_this_month_cents,
            },
        }
    }
}

/// A page of accounts.
#[derive(SimpleObject)]
pub struct AccountPage {
    pub nodes: Vec<Account>,
    /// Accounts matching the filter, on every page together.
    pub total_count: i64,
    pub limit: i64,
    pub offset: i64,
}
