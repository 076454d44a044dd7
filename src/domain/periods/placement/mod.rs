//! Taking a period from the billing provider, or ending it, in the transaction that applies the
//! provider's event (the account row locked). Whatever the provider says, every counted call
//! stays in exactly one period and the account's periods never overlap:
//!
//! - The provider's period never reaches into invoiced time: when it says it began earlier, it
//!   begins where the last invoice ends (and when it lies wholly in invoiced time, no period
//!   changes). One that begins later than now begins now. A cancellation ends it now.
//! - From the start of the period that held the new period's start, to the end of the calendar
//!   month after both the new and the old period, periods are laid out anew: the period the new
//!   one begins inside ends where it begins, periods that began later give way, and after its
//!   end the calendar follows (the first period runs from its end to the end of that month).
//! - Counted calls move with their time: a period counter whose range is split is divided by the
//!   times of its events; one that lies inside a new period moves whole. Each key's calls of the
//!   period move alike.
//! - Every start an old period had and no new period has keeps a counter with an empty range, a
//!   marker. The recorder adds calls only to a counter whose range is the one its request took,
//!   so a request that took the old period on an instance that has not heard of the change yet
//!   finds a different range, or the marker, and places its calls anew (`recorder::counters`).
//!   The old periods' counters are locked before the events are read, so a write that counted
//!   in them either committed before (and is read) or waits and is placed anew.

mod moving;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect};

use super::{instant, BillingPeriod, Layout};
use crate::domain::error::DomainResult;
use crate::entity::{account, api_key, invoice, usage_period};
use moving::{
    keep_history, key_counts, lock_counters, move_calls, write_counters, write_key_counts,
};

/// What the provider asks of the account's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderPeriod {
    /// `customer.subscription.updated`: this is the subscription's current period.
    Set(BillingPeriod),
    /// `customer.subscription.deleted`: the subscription ends.
    End,
}

/// Lays out the account's periods for `change` at `now` and moves the counted calls; the
/// provider period to store on the account, or `None` when no period changes.
pub async fn place(
    txn: &DatabaseTransaction,
    account: &account::Model,
    change: ProviderPeriod,
    now: DateTime<Utc>,
) -> DomainResult<Option<BillingPeriod>> {
    let old = Layout::of_account(account).provider();
    let invoices: Vec<(i64, i64)> = invoice::Entity::find()
        .select_only()
        .columns([invoice::Column::PeriodStart, invoice::Column::PeriodEnd])
        .filter(invoice::Column::AccountId.eq(account.id.as_str()))
        .into_tuple()
        .all(txn)
        .await?;
    let closed_until = invoices
        .iter()
        .map(|(_, end)| instant(*end))
        .max()
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let Some(new) = new_provider_period(old, change, closed_until, now) else {
        if let ProviderPeriod::Set(asked) = change {
            tracing::warn!(
                account_id = %account.id,
                start = %asked.start,
                end = %asked.end,
                closed_until = %closed_until,
                "the billing provider's period lies in invoiced time: the account's periods stay as they are"
            );
        }
        return Ok(None);
    };
    if Some(new) == old {
        return Ok(None);
    }
    let from = lay_out(txn, &account.id, old, new, &invoices).await?;
    tracing::info!(
        account_id = %account.id,
        start = %new.start,
        end = %new.end,
        relaid_from = %from,
        "billing periods laid out for the provider's period"
    );
    Ok(Some(new))
}

/// Lays out the account's periods anew around `new` (replacing the provider period `old`) and
/// moves the account's and its keys' counted calls along; where the new layout begins.
async fn lay_out(
    txn: &DatabaseTransaction,
    account_id: &str,
    old: Option<BillingPeriod>,
    new: BillingPeriod,
    invoices: &[(i64, i64)],
) -> DomainResult<DateTime<Utc>> {
    let counters: Vec<usage_period::Model> = usage_period::Entity::find()
        .filter(usage_period::Column::AccountId.eq(account_id))
        .all(txn)
        .await?;
    let old_layout = Layout::new(
        counters.iter().map(|c| (c.period_start, c.period_end)),
        invoices.iter().copied(),
        old,
    );
    let from = old_layout.period_at(new.start).start.min(new.start);
    let reach = counters
        .iter()
        .map(|c| instant(c.period_end))
        .chain(old.map(|p| p.end))
        .fold(new.end, DateTime::max);
    let until = BillingPeriod::calendar_month(reach).end;
    let old_periods = old_layout.periods_between(from, until);
    let new_periods = new_layout(from, new, until);

    let counted = lock_counters(txn, account_id, &old_periods).await?;
    let keys: Vec<String> = api_key::Entity::find()
        .select_only()
        .column(api_key::Column::Id)
        .filter(api_key::Column::AccountId.eq(account_id))
        .into_tuple()
        .all(txn)
        .await?;
    let key_counts = key_counts(txn, &keys, &old_periods).await?;
    let moved = move_calls(
        txn,
        account_id,
        &old_periods,
        &new_periods,
        &counted,
        &key_counts,
    )
    .await?;
    write_counters(
        txn,
        account_id,
        new,
        &old_periods,
        &new_periods,
        &counted,
        &moved,
    )
    .await?;
    write_key_counts(txn, &keys, &old_periods, &new_periods, &moved).await?;
    keep_history(txn, account_id, old, from, &counters).await?;
    Ok(from)
}

/// The provider period to keep for `change`, or `None` when the account's periods stay as they
/// are.
fn new_provider_period(
    old: Option<BillingPeriod>,
    change: ProviderPeriod,
    closed_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<BillingPeriod> {
    match change {
        ProviderPeriod::Set(asked) => {
            // Begun early when first heard of: told again, it stays as it is.
            if asked.start > now && old.is_some_and(|o| o.end == asked.end && o.start < asked.start)
            {
                return old;
            }
            let start = asked.start.min(now).max(closed_until);
            (start < asked.end).then_some(BillingPeriod {
                start,
                end: asked.end,
            })
        }
        ProviderPeriod::End => {
            let old = old?;
            let end = now.max(old.start).max(closed_until);
            (end < old.end).then_some(BillingPeriod {
                start: old.start,
                end,
            })
        }
    }
}

/// The periods of `[from, until)` around `new`: the one it begins inside cut at its start, then
/// itself, then the calendar from its end.
fn new_layout(from: DateTime<Utc>, new: BillingPeriod, until: DateTime<Utc>) -> Vec<BillingPeriod> {
    let mut periods = Vec::new();
    if from < new.start {
        periods.push(BillingPeriod {
            start: from,
            end: new.start,
        });
    }
    periods.push(new);
    let mut at = new.end;
    while at < until {
        let end = BillingPeriod::calendar_month(at).end;
        periods.push(BillingPeriod { start: at, end });
        at = end;
    }
    periods
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::periods::test_support::{at, period};

    #[test]
    fn the_provider_period_is_cut_to_open_time_and_to_now() {
        let now = at("2026-12-10T00:00:00Z");
        let closed = at("2026-12-01T00:00:00Z");
        let set = |p| new_provider_period(None, ProviderPeriod::Set(p), closed, now);
        // Reaching back into invoiced time: begins where it ends.
        assert_eq!(
            set(period("2026-11-25T00:00:00Z", "2026-12-25T00:00:00Z")),
            Some(period("2026-12-01T00:00:00Z", "2026-12-25T00:00:00Z"))
        );
        // Wholly invoiced: nothing.
        assert_eq!(
            set(period("2026-11-02T00:00:00Z", "2026-11-30T00:00:00Z")),
            None
        );
        // Said to begin later: begins now, and stays so when told again.
        let later = period("2026-12-15T00:00:00Z", "2027-01-15T00:00:00Z");
        let taken = set(later);
        assert_eq!(
            taken,
            Some(period("2026-12-10T00:00:00Z", "2027-01-15T00:00:00Z"))
        );
        let an_hour_later = now + chrono::Duration::hours(1);
        assert_eq!(
            new_provider_period(taken, ProviderPeriod::Set(later), closed, an_hour_later),
            taken
        );
    }

    #[test]
    fn a_cancellation_ends_the_provider_period_now_if_it_has_not_ended() {
        let now = at("2026-12-10T00:00:00Z");
        let closed = at("2026-12-01T00:00:00Z");
        let running = period("2026-12-05T00:00:00Z", "2027-01-05T00:00:00Z");
        assert_eq!(
            new_provider_period(Some(running), ProviderPeriod::End, closed, now),
            Some(period("2026-12-05T00:00:00Z", "2026-12-10T00:00:00Z"))
        );
        let ended = period("2026-11-05T00:00:00Z", "2026-12-05T00:00:00Z");
        assert_eq!(
            new_provider_period(Some(ended), ProviderPeriod::End, closed, now),
            None
        );
        assert_eq!(
            new_provider_period(None, ProviderPeriod::End, closed, now),
            None
        );
    }
}
