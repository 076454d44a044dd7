//! An account's periods as they stand. Stored periods (the period counters, and invoices) and the
//! billing provider's period keep their own bounds; calendar months fill the time between them,
//! cut where a fixed period begins or ends. So an account's periods never overlap, and every
//! instant lies in exactly one of them.
//!
//! A period counter with an empty range (`end == start`) is a marker: no period starts there any
//! more (see [`super::placement`]). It fixes nothing.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use super::BillingPeriod;
use crate::domain::error::DomainResult;
use crate::entity::{account, invoice, usage_period};

use invoice::Column as Invoice;
use usage_period::Column as Counter;

/// The periods that fix an account's calendar, and the provider's period.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Stored period counters with a range.
    counters: Vec<BillingPeriod>,
    /// Invoiced periods: closed.
    invoices: Vec<BillingPeriod>,
    provider: Option<BillingPeriod>,
}

impl Layout {
    /// A layout of `counters` and `invoices` (unix ms ranges) and the provider's period.
    pub fn new(
        counters: impl IntoIterator<Item = (i64, i64)>,
        invoices: impl IntoIterator<Item = (i64, i64)>,
        provider: Option<BillingPeriod>,
    ) -> Self {
        let periods = |ranges: &mut dyn Iterator<Item = (i64, i64)>| {
            ranges
                .filter(|(start, end)| end > start)
                .map(|(start, end)| BillingPeriod::from_millis(start, end))
                .collect()
        };
        Self {
            counters: periods(&mut counters.into_iter()),
            invoices: periods(&mut invoices.into_iter()),
            provider: provider.filter(|p| p.end > p.start),
        }
    }

    /// What the account row alone says: the provider's period, calendar months around it. Right
    /// for every instant from the provider period's start on (every period after it is derived
    /// from it alone); before it, stored periods may cut the calendar too (see
    /// [`Layout::load_around`]).
    pub fn of_account(account: &account::Model) -> Self {
        let provider = match (account.billing_period_start, account.billing_period_end) {
            (Some(start), Some(end)) => Some(BillingPeriod { start, end }),
            _ => None,
        };
        Self::new([], [], provider)
    }

    /// Loads what fixes the periods of `account` around `at`: the counters and invoices
    /// overlapping the calendar month of `at` (only these can hold `at` or cut that month).
    pub async fn load_around(
        db: &impl ConnectionTrait,
        account: &account::Model,
        at: DateTime<Utc>,
    ) -> DomainResult<Self> {
        let month = BillingPeriod::calendar_month(at);
        let columns = (Counter::AccountId, Counter::PeriodStart, Counter::PeriodEnd);
        let counters = overlapping::<usage_period::Entity>(db, columns, &account.id, month).await?;
        let columns = (Invoice::AccountId, Invoice::PeriodStart, Invoice::PeriodEnd);
        let invoices = overlapping::<invoice::Entity>(db, columns, &account.id, month).await?;
        Ok(Self::new(
            counters,
            invoices,
            Self::of_account(account).provider,
        ))
    }

    /// The provider's period, when there is one.
    pub fn provider(&self) -> Option<BillingPeriod> {
        self.provider
    }

    /// Whether `at` lies in an invoiced period.
    pub fn is_closed(&self, at: DateTime<Utc>) -> bool {
        self.invoices.iter().any(|p| p.contains(at))
    }

    /// The period that holds `at`: a stored counter's (the latest-starting one, should two
    /// overlap), else the provider's, else an invoice's, else the calendar month of `at` cut by
    /// the fixed periods around it.
    pub fn period_at(&self, at: DateTime<Utc>) -> BillingPeriod {
        let stored = self
            .counters
            .iter()
            .filter(|p| p.contains(at))
            .max_by_key(|p| p.start);
        if let Some(period) = stored
            .or(self.provider.as_ref().filter(|p| p.contains(at)))
            .or(self.invoices.iter().find(|p| p.contains(at)))
        {
            return *period;
        }
        let month = BillingPeriod::calendar_month(at);
        let fixed = || {
            self.counters
                .iter()
                .chain(&self.invoices)
                .chain(self.provider.as_ref())
        };
        let start = fixed()
            .map(|p| p.end)
            .filter(|end| *end <= at)
            .fold(month.start, DateTime::max);
        let end = fixed()
            .map(|p| p.start)
            .filter(|start| *start > at)
            .fold(month.end, DateTime::min);
        BillingPeriod { start, end }
    }

    /// The periods, in order, that cover `[from, until)`: the first holds `from`, the last
    /// reaches `until` or beyond.
    pub fn periods_between(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<BillingPeriod> {
        let mut periods = Vec::new();
        let mut at = from;
        while at < until {
            let period = self.period_at(at);
            periods.push(period);
            at = period.end;
        }
        periods
    }
}

/// The `(start, end)` unix ms ranges of the account's rows of `E` that overlap `period`, the
/// columns named `(account, start, end)`.
async fn overlapping<E: EntityTrait>(
    db: &impl ConnectionTrait,
    (account, start, end): (E::Column, E::Column, E::Column),
    account_id: &str,
    period: BillingPeriod,
) -> DomainResult<Vec<(i64, i64)>> {
    Ok(E::find()
        .select_only()
        .columns([start, end])
        .filter(account.eq(account_id))
        .filter(start.lt(period.end_ms()))
        .filter(end.gt(period.start_ms()))
        .into_tuple()
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::periods::test_support::{at, period};

    fn ms(start: &str, end: &str) -> (i64, i64) {
        let p = period(start, end);
        (p.start_ms(), p.end_ms())
    }

    #[test]
    fn calendar_months_are_cut_where_a_fixed_period_begins_and_ends() {
        let provider = period("2026-11-15T00:00:00Z", "2026-12-15T00:00:00Z");
        let layout = Layout::new([], [], Some(provider));
        assert_eq!(
            layout.period_at(at("2026-11-03T00:00:00Z")),
            period("2026-11-01T00:00:00Z", "2026-11-15T00:00:00Z")
        );
        assert_eq!(layout.period_at(at("2026-11-20T00:00:00Z")), provider);
        assert_eq!(
            layout.period_at(at("2026-12-20T00:00:00Z")),
            period("2026-12-15T00:00:00Z", "2027-01-01T00:00:00Z")
        );
        assert_eq!(
            layout.period_at(at("2027-01-20T00:00:00Z")),
            period("2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z")
        );
    }

    #[test]
    fn stored_periods_keep_their_bounds_and_empty_ones_fix_nothing() {
        let layout = Layout::new(
            [
                ms("2026-11-01T00:00:00Z", "2026-11-10T00:00:00Z"),
                ms("2026-11-10T00:00:00Z", "2026-11-20T00:00:00Z"),
                ms("2026-11-25T00:00:00Z", "2026-11-25T00:00:00Z"),
            ],
            [ms("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")],
            None,
        );
        assert_eq!(
            layout.period_at(at("2026-11-12T00:00:00Z")),
            period("2026-11-10T00:00:00Z", "2026-11-20T00:00:00Z")
        );
        assert_eq!(
            layout.period_at(at("2026-11-26T00:00:00Z")),
            period("2026-11-20T00:00:00Z", "2026-12-01T00:00:00Z")
        );
        assert!(layout.is_closed(at("2026-10-31T23:59:59Z")));
        assert!(!layout.is_closed(at("2026-11-01T00:00:00Z")));
        let covering =
            layout.periods_between(at("2026-11-05T00:00:00Z"), at("2026-12-02T00:00:00Z"));
        assert_eq!(
            covering,
            vec![
                period("2026-11-01T00:00:00Z", "2026-11-10T00:00:00Z"),
                period("2026-11-10T00:00:00Z", "2026-11-20T00:00:00Z"),
                period("2026-11-20T00:00:00Z", "2026-12-01T00:00:00Z"),
                period("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
            ]
        );
    }
}
