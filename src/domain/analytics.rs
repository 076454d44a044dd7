//! Analytics: reads over the period counters and the daily rollups, never over raw events, so a
//! query's cost follows the number of (account, day, endpoint) keys it covers, not the number of
//! events behind them — and answers stay the same once old raw events are pruned.
//!
//! What counts as a call here is what the contract calls one: an `API_CALL` or `TOOL_CALL` event,
//! weighted by its cost — billable calls, everywhere (a verify with `cost: 10` is 10 calls in the
//! daily history, the endpoint statistics, the admin overview, `currentUsage` and the invoice
//! alike). Daily totals therefore add tool uses to API calls; successes and failures exist for API
//! calls only (tool uses carry no status), so `successful + failed` may be less than the total, and
//! they are billable calls too. Latency statistics are about requests: one per API call event,
//! whatever its cost (`EndpointStat::requests`). Installs are never calls: they show in the tool
//! statistics and in the admin's install statistics only.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc};
use sea_orm::sea_query::{Alias, Asterisk, Expr, Func, IntoCondition, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    FromQueryResult, JoinType, Order, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Select,
};

use crate::domain::billing::invoice::{overage_calls, overage_cents};
use crate::domain::dialect::{byte_ordered, join_in_written_order, latest_row, total};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::histogram;
use crate::domain::paging::{check_days, check_limit, MAX_DAYS};
use crate::domain::periods::BillingPeriod;
use crate::domain::plans::PlanCode;
use crate::entity::{
    account, plan, usage_daily_install, usage_daily_overall, usage_daily_tool, usage_daily_total,
    usage_endpoint, usage_period, usage_running_endpoint,
};

/// What `endpointStats` shows for a call reported without a method or an endpoint (a verify
/// without them), instead of a blank name.
pub const UNSPECIFIED: &str = "(unspecified)";

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStat {
    /// [`UNSPECIFIED`] for calls reported without one.
    pub method: String,
    /// [`UNSPECIFIED`] for calls reported without one.
    pub endpoint: String,
    /// Billable calls (by cost).
    pub total_calls: i64,
    /// API calls (requests), one per event whatever its cost.
    pub requests: i64,
    /// Billable calls (by cost) answered 4xx/5xx.
    pub failed_calls: i64,
    pub avg_response_time_ms: Option<i64>,
    /// Read from the latency histogram: within 5% (or 1 ms) of the exact nearest-rank p95.
    pub p95_response_time_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolStat {
    pub skill_id: String,
    pub tool_name: String,
    pub calls: i64,
    pub last_used_at: DateTime<Utc>,
}

/// The days `[first, last]` (UTC) of a window of `days` days ending on the day of `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DayWindow {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl DayWindow {
    pub fn ending_at(now: DateTime<Utc>, days: i64) -> Self {
        let last = now.date_naive();
        let back = u64::try_from(days.clamp(1, MAX_DAYS) - 1).unwrap_or(0);
        let first = last.checked_sub_days(Days::new(back)).unwrap_or(last);
        Self { first, last }
    }

    /// The rollup rows whose `day` falls in the window.
    pub(crate) fn holds<C: ColumnTrait>(&self, day: C) -> Expr {
        day.between(day_key(self.first), day_key(self.last))
    }

    pub(crate) fn days(&self) -> impl Iterator<Item = NaiveDate> {
        let last = self.last;
        self.first.iter_days().take_while(move |d| *d <= last)
    }
}

/// The rollups' day key: `YYYY-MM-DD`. Written out by hand: the recorder makes one per event,
/// and chrono's `format` reads its pattern each time.
pub fn day_key(day: NaiveDate) -> String {
    if !(0..=9999).contains(&day.year()) {
        return day.format("%Y-%m-%d").to_string();
    }
    format!("{:04}-{:02}-{:02}", day.year(), day.month(), day.day())
}

/// `SELECT <groups>, <amount>` grouped by `groups`: the `limit` largest amounts first, ties in
/// the order of the groups, groups whose amount is 0 left out. Further columns follow these.
fn largest_groups<E: EntityTrait, const N: usize>(
    select: Select<E>,
    groups: [E::Column; N],
    amount: Expr,
    limit: i64,
) -> Select<E> {
    use sea_orm::sea_query::ExprTrait;
    let mut select = select.select_only();
    for column in groups {
        select = select.column(column).group_by(column);
    }
    select = select
        .expr(amount.clone())
        .having(amount.clone().gt(0))
        .order_by(amount, Order::Desc);
    for column in groups {
        select = select.order_by_asc(column);
    }
    select.limit(limit.unsigned_abs())
}

/// The rollups' unix milliseconds as an instant.
fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn mean(sum: i64, count: i64) -> Option<i64> {
    (count > 0).then(|| (sum + count / 2).div_euclid(count))
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
    check_days(days)?;
    let window = DayWindow::ending_at(now, days);
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

/// One endpoint's window sums as the ranking statement returns them: method, endpoint, calls,
/// requests, failures, latency sum and count, and the running histograms at the window's last
/// day and before its first day (none when the endpoint had no calls before the window).
type WindowRow = (
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    String,
    Option<String>,
);

/// The ranking statement of [`endpoint_stats`]: for each endpoint of the account, its running
/// sums at the window's last day (`hi`) less those before its first day (`lo`), the endpoints
/// without calls in the window left out, most calls first, ties by (method, endpoint) in byte
/// order, cut at `limit`. Two index lookups per endpoint, whatever the window's length.
fn window_sums(
    backend: DatabaseBackend,
    account_id: &str,
    window: DayWindow,
    limit: i64,
) -> SelectStatement {
    use sea_orm::sea_query::ExprTrait as _;
    use usage_endpoint::Column as Listed;
    use usage_running_endpoint::Column as Running;
    let of = |table: &str, column: Running| Expr::col((Alias::new(table), column));
    let listed = |column: Listed| Expr::col((Alias::new("e"), column));
    let same_endpoint = |table: &str| {
        sea_orm::Condition::all()
            .add(of(table, Running::AccountId).eq(listed(Listed::AccountId)))
            .add(of(table, Running::Method).eq(listed(Listed::Method)))
            .add(of(table, Running::Endpoint).eq(listed(Listed::Endpoint)))
    };
    // The endpoint's row of the latest day matching `bound`.
    let latest = |table: &str, bound: Expr| {
        let mut candidates = Query::select();
        candidates
            .from_as(usage_running_endpoint::Entity, Alias::new("x"))
            .cond_where(same_endpoint("x"))
            .and_where(bound);
        latest_row(
            backend,
            table,
            same_endpoint(table),
            candidates,
            "x",
            Running::Day,
        )
    };
    let in_window =
        |column: Running| of("hi", column).sub(Func::coalesce([of("lo", column), Expr::val(0i64)]));

    let mut query = Query::select();
    query
        .exprs([listed(Listed::Method), listed(Listed::Endpoint)])
        .exprs(
            [
                Running::Calls,
                Running::Requests,
                Running::Failures,
                Running::LatencySumMs,
                Running::LatencyCount,
            ]
            .map(in_window),
        )
        .exprs([
            of("hi", Running::LatencyHistogram),
            of("lo", Running::LatencyHistogram),
        ])
        .from_as(usage_endpoint::Entity, Alias::new("e"));
    // The account's endpoints first, then two lookups each: not all of the account's rows.
    join_in_written_order(
        &mut query,
        backend,
        usage_running_endpoint::Entity,
        "hi",
        latest("hi", of("x", Running::Day).lte(day_key(window.last))),
    );
    query
        .join_as(
            JoinType::LeftJoin,
            usage_running_endpoint::Entity,
            Alias::new("lo"),
            latest("lo", of("x", Running::Day).lt(day_key(window.first))),
        )
        .and_where(listed(Listed::AccountId).eq(account_id))
        .and_where(in_window(Running::Calls).gt(0))
        .order_by_expr(in_window(Running::Calls), Order::Desc)
        .order_by_expr(byte_ordered(backend, listed(Listed::Method)), Order::Asc)
        .order_by_expr(byte_ordered(backend, listed(Listed::Endpoint)), Order::Asc)
        .limit(u64::try_from(limit).unwrap_or(0));
    query
}

/// API calls by (method, endpoint) over the window, most calls first (ties by method, endpoint),
/// read from the endpoints' running sums in one statement.
pub async fn endpoint_stats(
    db: &DatabaseConnection,
    account_id: &str,
    days: i64,
    limit: i64,
    now: DateTime<Utc>,
) -> DomainResult<Vec<EndpointStat>> {
    check_days(days)?;
    check_limit(limit)?;
    let window = DayWindow::ending_at(now, days);
    let query = window_sums(db.get_database_backend(), account_id, window, limit);
    let rows = db.query_all(&query).await?;
    rows.iter()
        .map(|row| {
            let (method, endpoint, calls, requests, failures, latency_sum, latency_count, hi, lo): WindowRow =
                row.try_get_many_by_index()?;
            Ok(EndpointStat {
                method: named(method),
                endpoint: named(endpoint),
                total_calls: calls,
                requests,
                failed_calls: failures,
                avg_response_time_ms: mean(latency_sum, latency_count),
                p95_response_time_ms: window_p95(&hi, lo.as_deref())?,
            })
        })
        .collect()
}

/// The p95 latency of a window from the running histograms at its last day and before its first.
fn window_p95(through_last: &str, before_first: Option<&str>) -> DomainResult<Option<i64>> {
    let unreadable = |stored: &str, err: serde_json::Error| {
        DomainError::internal(anyhow::anyhow!(
            "unreadable latency histogram {stored:?}: {err}"
        ))
    };
    let mut counts = histogram::Counts::new();
    histogram::add_json(&mut counts, through_last).map_err(|err| unreadable(through_last, err))?;
    if let Some(before) = before_first {
        let mut earlier = histogram::Counts::new();
        histogram::add_json(&mut earlier, before).map_err(|err| unreadable(before, err))?;
        for (bucket, count) in earlier {
            *counts.entry(bucket).or_default() -= count;
        }
    }
    Ok(histogram::quantile(&counts, 0.95).map(|ms| ms.round() as i64))
}

/// A stored method or endpoint as shown: [`UNSPECIFIED`] for none.
fn named(name: String) -> String {
    if name.is_empty() {
        UNSPECIFIED.to_owned()
    } else {
        name
    }
}

/// Tool uses and installs by (skill, tool) over the window, most first (ties by skill, tool).
pub async fn tool_stats(
    db: &DatabaseConnection,
    account_id: &str,
    days: i64,
    limit: i64,
    now: DateTime<Utc>,
) -> DomainResult<Vec<ToolStat>> {
    use usage_daily_tool::Column;
    check_days(days)?;
    check_limit(limit)?;
    let window = DayWindow::ending_at(now, days);
    let rows: Vec<(String, String, i64, i64)> = largest_groups(
        usage_daily_tool::Entity::find(),
        [Column::SkillId, Column::ToolName],
        total(Column::Calls),
        limit,
    )
    .expr(Func::max(Column::LastUsedAt.into_expr()))
    .filter(Column::AccountId.eq(account_id))
    .filter(window.holds(Column::Day))
    .into_tuple()
    .all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(skill_id, tool_name, calls, last_used_ms)| ToolStat {
            skill_id,
            tool_name,
            calls,
            last_used_at: from_millis(last_used_ms),
        })
        .collect())
}

/// Installs of one (skill, platform, version) over a window of days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallStat {
    /// `None` when the install script did not say (likewise platform and version).
    pub skill_id: Option<String>,
    pub platform: Option<String>,
    pub version: Option<String>,
    pub installs: i64,
    /// Reported without a valid key.
    pub anonymous: i64,
    /// Reported with a valid key, so attributed to its account.
    pub attributed: i64,
    pub last_installed_at: DateTime<Utc>,
}

/// Installs of every account and anonymous ones, by (skill, platform, version), over the window
/// of `days` days ending today, most installs first (ties by skill, platform, version). Read from
/// the daily install rollups, which pruning raw events leaves alone; installs recorded before the
/// rollups existed count only when their raw event was still stored then.
pub async fn install_stats(
    db: &DatabaseConnection,
    days: i64,
    limit: i64,
    now: DateTime<Utc>,
) -> DomainResult<Vec<InstallStat>> {
    use usage_daily_install::Column;
    check_days(days)?;
    check_limit(limit)?;
    let window = DayWindow::ending_at(now, days);
    let rows: Vec<(String, String, String, i64, i64, i64, i64)> = largest_groups(
        usage_daily_install::Entity::find(),
        [Column::SkillId, Column::Platform, Column::Version],
        total(Column::Installs),
        limit,
    )
    .expr(total(Column::Anonymous))
    .expr(total(Column::Attributed))
    .expr(Func::max(Column::LastInstalledAt.into_expr()))
    .filter(window.holds(Column::Day))
    .into_tuple()
    .all(db)
    .await?;
    let known = |value: String| (!value.is_empty()).then_some(value);
    Ok(rows
        .into_iter()
        .map(
            |(skill_id, platform, version, installs, anonymous, attributed, last_ms)| InstallStat {
                skill_id: known(skill_id),
                platform: known(platform),
                version: known(version),
                installs,
                anonymous,
                attributed,
                last_installed_at: from_millis(last_ms),
            },
        )
        .collect())
}

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

#[cfg(test)]
mod tests {
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

    #[test]
    fn day_keys_are_zero_padded_dates_as_chrono_writes_them() {
        for (y, m, d) in [
            (2026, 3, 5),
            (2026, 12, 31),
            (99, 1, 1),
            (9999, 12, 31),
            (10_000, 1, 1),
        ] {
            let day = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(day_key(day), day.format("%Y-%m-%d").to_string());
        }
        assert_eq!(
            day_key(NaiveDate::from_ymd_opt(2026, 3, 5).unwrap()),
            "2026-03-05"
        );
    }

    #[test]
    fn windows_end_today_and_cross_months() {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 8, 0, 0).unwrap();
        let window = DayWindow::ending_at(now, 4);
        let days: Vec<String> = window.days().map(day_key).collect();
        assert_eq!(
            days,
            ["2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"]
        );
    }
}
