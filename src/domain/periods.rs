//! Billing periods: calendar months in UTC, `[start, end)`, unless the billing provider gave the
//! account its own subscription period. An account's periods never overlap: the provider's period
//! cuts the calendar months around it ([`layout`]), and taking one moves the calls already counted
//! in its time into it ([`placement`]).

use chrono::{DateTime, Datelike, TimeZone, Utc};

use crate::entity::account;

pub mod layout;
pub mod placement;
#[cfg(test)]
mod test_support;

pub use layout::Layout;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BillingPeriod {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl BillingPeriod {
    /// The calendar month (UTC) containing `at`.
    pub fn calendar_month(at: DateTime<Utc>) -> Self {
        let (year, month) = (at.year(), at.month());
        let (next_year, next_month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        let first = |y: i32, m: u32| {
            Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
                .single()
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        Self {
            start: first(year, month),
            end: first(next_year, next_month),
        }
    }

    /// The period of `account` that contains `at`, as the account row alone says: the provider's
    /// period when `at` lies inside it, else the calendar month cut at the provider period's
    /// bounds (the month after it starts at its end). Exact from the provider period's start on,
    /// which is where "now" always is; an earlier instant may lie in a period stored before the
    /// provider's, which only [`Layout::load_around`] sees.
    pub fn for_account(account: &account::Model, at: DateTime<Utc>) -> Self {
        Layout::of_account(account).period_at(at)
    }

    /// Whether this account row alone places `at` (see [`BillingPeriod::for_account`]).
    pub fn placed_by_account(account: &account::Model, at: DateTime<Utc>) -> bool {
        account.billing_period_start.is_none_or(|start| at >= start)
    }

    /// A period from unix milliseconds.
    pub fn from_millis(start: i64, end: i64) -> Self {
        Self {
            start: instant(start),
            end: instant(end),
        }
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }

    /// The part of this period during which something created at `created_at` existed; `None`
    /// when the period ended before it. No period is shown or billed before an account existed.
    pub fn since(self, created_at: DateTime<Utc>) -> Option<Self> {
        (self.end > created_at).then(|| Self {
            start: self.start.max(created_at),
            end: self.end,
        })
    }

    /// Length of the period in whole seconds.
    pub fn seconds(&self) -> i64 {
        (self.end - self.start).num_seconds()
    }

    /// Whole seconds from `now` to the end of the period, rounded up, at least 0.
    pub fn seconds_left(&self, now: DateTime<Utc>) -> i64 {
        let millis = (self.end - now).num_milliseconds().max(0);
        (millis + 999) / 1000
    }

    pub fn start_ms(&self) -> i64 {
        self.start.timestamp_millis()
    }

    pub fn end_ms(&self) -> i64 {
        self.end.timestamp_millis()
    }
}

/// The instant of unix milliseconds as stored (out of range: the earliest instant).
pub fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::test_support::at;
    use super::*;

    #[test]
    fn the_last_millisecond_of_a_month_and_the_first_of_the_next_are_apart() {
        let november = BillingPeriod::calendar_month(at("2026-11-30T23:59:59.999Z"));
        let december = BillingPeriod::calendar_month(at("2026-12-01T00:00:00Z"));
        assert_eq!(november.start, at("2026-11-01T00:00:00Z"));
        assert_eq!(november.end, at("2026-12-01T00:00:00Z"));
        assert_eq!(december.start, november.end);
        assert_eq!(december.end, at("2027-01-01T00:00:00Z"));
        assert_eq!(november.seconds(), 30 * 86_400);
    }

    #[test]
    fn a_provider_period_applies_inside_it_only() {
        let account = account::Model {
            id: "a".into(),
            name: "a".into(),
            plan_code: "PRO".into(),
            initial_plan_code: "PRO".into(),
            billing_customer_id: None,
            billing_period_start: Some(at("2026-11-15T00:00:00Z")),
            billing_period_end: Some(at("2026-12-15T00:00:00Z")),
            billing_event_created_at: None,
            created_at: at("2026-01-01T00:00:00Z"),
        };
        let inside = BillingPeriod::for_account(&account, at("2026-12-01T10:00:00Z"));
        assert_eq!(inside.start, at("2026-11-15T00:00:00Z"));
        // After it, the calendar again, from its end.
        let after = BillingPeriod::for_account(&account, at("2026-12-20T10:00:00Z"));
        assert_eq!(after.start, at("2026-12-15T00:00:00Z"));
        assert_eq!(after.end, at("2027-01-01T00:00:00Z"));
    }

    #[test]
    fn seconds_left_round_up() {
        let p = BillingPeriod::calendar_month(at("2026-11-30T23:59:59.001Z"));
        assert_eq!(p.seconds_left(at("2026-11-30T23:59:59.001Z")), 1);
        assert_eq!(p.seconds_left(at("2026-12-02T00:00:00Z")), 0);
    }
}
