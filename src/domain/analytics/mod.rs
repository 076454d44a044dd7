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

mod endpoints;
mod installs;
mod overview;
mod tools;
mod usage;

pub use endpoints::{endpoint_stats, EndpointStat, UNSPECIFIED};
pub use installs::{install_stats, InstallStat};
pub use overview::{overview, Overview};
pub use tools::{tool_stats, ToolStat};
pub use usage::{current_usage, usage_history, usage_of, DailyUsage, PlanTerms, UsageSummary};

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, Order, QueryOrder, QuerySelect, Select};

use crate::domain::error::DomainResult;
use crate::domain::paging::{check_days, check_limit, MAX_DAYS};

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

    /// [`Self::ending_at`], `days` refused unless 1..=366.
    pub fn checked(now: DateTime<Utc>, days: i64) -> DomainResult<Self> {
        check_days(days)?;
        Ok(Self::ending_at(now, days))
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

/// The days and size of a ranking (endpoints, tools, installs), checked: `days` 1..=366, then
/// `limit` 1..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranking {
    pub window: DayWindow,
    pub limit: i64,
}

impl Ranking {
    /// The `limit` largest over the `days` days ending on the day of `now`.
    pub fn checked(now: DateTime<Utc>, days: i64, limit: i64) -> DomainResult<Self> {
        let window = DayWindow::checked(now, days)?;
        check_limit(limit)?;
        Ok(Self { window, limit })
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

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
