//! Usage and analytics answers: a billing period's usage, daily history, endpoint and tool
//! statistics, and the admin overview and account pages.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use crate::domain::analytics;
use crate::graphql::object::BigInt;

/// Calls of an account in one billing period and what its plan makes of them.
#[derive(SimpleObject, Clone, Debug)]
pub struct UsagePeriod {
    pub period_start: DateTime<Utc>,
    /// End of the period (exclusive).
    pub period_end: DateTime<Utc>,
    /// Billable calls counted against the quota in this period (a verify weighs its `cost`).
    pub calls: BigInt,
    /// The plan's quota; null for unlimited plans.
    pub limit: Option<i64>,
    /// Calls left before the quota, never below 0; null for unlimited plans.
    pub remaining: Option<i64>,
    pub overage_calls: BigInt,
    /// What the overage bills: overage calls × the plan's overage price, rounded half up.
    pub overage_cost_cents: BigInt,
    /// Share of the quota used, in percent; null for unlimited plans.
    pub usage_percentage: Option<f64>,
}

impl From<analytics::UsageSummary> for UsagePeriod {
    fn from(u: analytics::UsageSummary) -> Self {
        Self {
            period_start: u.period.start,
            period_end: u.period.end,
            calls: u.calls.into(),
            limit: u.limit,
            remaining: u.remaining,
            overage_calls: u.overage_calls.into(),
            overage_cost_cents: u.overage_cost_cents.into(),
            usage_percentage: u.usage_percentage,
        }
    }
}

/// Billable calls of one UTC day: an API call weighs its `cost`, so a month of these adds up to
/// what `currentUsage` and the invoice count.
#[derive(SimpleObject, Clone, Debug)]
pub struct DailyUsage {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// API calls (by cost) and tool uses (installs are not calls).
    pub total_calls: BigInt,
    /// API calls (by cost) answered 2xx or 3xx.
    pub successful_calls: BigInt,
    /// API calls (by cost) answered 4xx or 5xx.
    pub failed_calls: BigInt,
    /// Mean response time of the day's API calls; null when none reported one.
    pub avg_response_time_ms: Option<i64>,
}

impl From<analytics::DailyUsage> for DailyUsage {
    fn from(d: analytics::DailyUsage) -> Self {
        Self {
            date: analytics::day_key(d.date),
            total_calls: d.total_calls.into(),
            successful_calls: d.successful_calls.into(),
            failed_calls: d.failed_calls.into(),
            avg_response_time_ms: d.avg_response_time_ms,
        }
    }
}

/// API calls to one (method, endpoint).
#[derive(SimpleObject, Clone, Debug)]
pub struct EndpointStat {
    /// `(unspecified)` for calls reported without an endpoint (a verify without one).
    pub endpoint: String,
    /// `(unspecified)` for calls reported without a method.
    pub method: String,
    /// Billable calls: each API call weighs its `cost`.
    pub total_calls: BigInt,
    /// Billable calls (by cost) answered 4xx or 5xx.
    pub failed_calls: BigInt,
    /// API calls (requests), one per call whatever its cost: what the latency figures describe.
    pub requests: BigInt,
    /// Mean response time of the requests that reported one.
    pub avg_response_time_ms: Option<i64>,
    /// 95th percentile response time, within 5% (or 1 ms) of the exact value.
    pub p95_response_time_ms: Option<i64>,
}

impl From<analytics::EndpointStat> for EndpointStat {
    fn from(s: analytics::EndpointStat) -> Self {
        Self {
            endpoint: s.endpoint,
            method: s.method,
            total_calls: s.total_calls.into(),
            failed_calls: s.failed_calls.into(),
            requests: s.requests.into(),
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
    pub calls: BigInt,
    pub last_used_at: DateTime<Utc>,
}

impl From<analytics::ToolStat> for ToolStat {
    fn from(s: analytics::ToolStat) -> Self {
        Self {
            skill_id: s.skill_id,
            tool_name: s.tool_name,
            calls: s.calls.into(),
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

/// Billable calls of all accounts (an API call weighs its `cost`).
#[derive(SimpleObject, Clone, Debug)]
pub struct CallCounts {
    /// On the current UTC day.
    pub today: BigInt,
    /// In the current calendar month (UTC).
    pub this_month: BigInt,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Revenue {
    /// Sum of the monthly prices of every account's plan.
    pub mrr_cents: BigInt,
    /// What the overage of every account's current period would bill now.
    pub overage_this_month_cents: BigInt,
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
                today: o.calls_today.into(),
                this_month: o.calls_this_month.into(),
            },
            revenue: Revenue {
                mrr_cents: o.mrr_cents.into(),
                overage_this_month_cents: o.overage_this_month_cents.into(),
            },
        }
    }
}

/// Installs of one (skill, platform, version) over a window of days.
#[derive(SimpleObject, Clone, Debug)]
pub struct InstallStat {
    /// Null when the install script did not send it (likewise platform and version).
    pub skill_id: Option<String>,
    pub platform: Option<String>,
    pub version: Option<String>,
    /// Anonymous and attributed together.
    pub installs: BigInt,
    /// Reported without a valid API key.
    pub anonymous: BigInt,
    /// Reported with a valid API key, so attributed to its account.
    pub attributed: BigInt,
    pub last_installed_at: DateTime<Utc>,
}

impl From<analytics::InstallStat> for InstallStat {
    fn from(s: analytics::InstallStat) -> Self {
        Self {
            skill_id: s.skill_id,
            platform: s.platform,
            version: s.version,
            installs: s.installs.into(),
            anonymous: s.anonymous.into(),
            attributed: s.attributed.into(),
            last_installed_at: s.last_installed_at,
        }
    }
}
