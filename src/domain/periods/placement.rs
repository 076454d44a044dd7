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

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, QueryTrait,
};

use super::{instant, BillingPeriod, Layout};
use crate::domain::dialect::total;
use crate::domain::error::DomainResult;
use crate::entity::{account, api_key, invoice, usage_event, usage_key_period, usage_period};

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

    let counters: Vec<usage_period::Model> = usage_period::Entity::find()
        .filter(usage_period::Column::AccountId.eq(account.id.as_str()))
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

    let counted = lock_counters(txn, &account.id, &old_periods).await?;
    let keys: Vec<String> = api_key::Entity::find()
        .select_only()
        .column(api_key::Column::Id)
        .filter(api_key::Column::AccountId.eq(account.id.as_str()))
        .into_tuple()
        .all(txn)
        .await?;
    let key_counts = key_counts(txn, &keys, &old_periods).await?;
    let moved = move_calls(
        txn,
        &account.id,
        &old_periods,
        &new_periods,
        &counted,
        &key_counts,
    )
    .await?;
    write_counters(
        txn,
        &account.id,
        new,
        &old_periods,
        &new_periods,
        &counted,
        &moved,
    )
    .await?;
    write_key_counts(txn, &keys, &old_periods, &new_periods, &moved).await?;
    keep_history(txn, &account.id, old, from, &counters).await?;
    tracing::info!(
        account_id = %account.id,
        start = %new.start,
        end = %new.end,
        relaid_from = %from,
        "billing periods laid out for the provider's period"
    );
    Ok(Some(new))
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

/// Creates (empty) or locks the counter of every old period, and reads each one's calls by
/// start. Once they are locked, a recorder batch that counted in one of them has committed (its
/// events are read below), and one that has not yet must wait for this transaction.
async fn lock_counters(
    txn: &DatabaseTransaction,
    account_id: &str,
    old_periods: &[BillingPeriod],
) -> DomainResult<HashMap<i64, i64>> {
    use usage_period::Column;
    let rows = old_periods.iter().map(|p| {
        usage_period::Model {
            account_id: account_id.to_owned(),
            period_start: p.start_ms(),
            period_end: p.end_ms(),
            calls: 0,
        }
        .into_active_model()
    });
    let mut statement = usage_period::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([Column::AccountId, Column::PeriodStart])
                .value(Column::Calls, Column::Calls.into_expr())
                .to_owned(),
        )
        .into_query();
    statement.returning(Query::returning().columns([Column::PeriodStart, Column::Calls]));
    let mut counted = HashMap::new();
    for row in txn.query_all(&statement).await? {
        counted.insert(
            row.try_get_by_index::<i64>(0)?,
            row.try_get_by_index::<i64>(1)?,
        );
    }
    Ok(counted)
}

/// Each key's calls in each old period, by period start.
async fn key_counts(
    txn: &DatabaseTransaction,
    keys: &[String],
    old_periods: &[BillingPeriod],
) -> DomainResult<HashMap<i64, BTreeMap<String, i64>>> {
    let mut counts: HashMap<i64, BTreeMap<String, i64>> = HashMap::new();
    if keys.is_empty() {
        return Ok(counts);
    }
    let rows = usage_key_period::Entity::find()
        .filter(usage_key_period::Column::ApiKeyId.is_in(keys.iter().map(String::as_str)))
        .filter(
            usage_key_period::Column::PeriodStart.is_in(old_periods.iter().map(|p| p.start_ms())),
        )
        .all(txn)
        .await?;
    for row in rows {
        counts
            .entry(row.period_start)
            .or_default()
            .insert(row.api_key_id, row.calls);
    }
    Ok(counts)
}

/// Calls moved into the new periods, by new period start: the account's and each key's.
#[derive(Default)]
struct Moved {
    calls: HashMap<i64, i64>,
    key_calls: HashMap<(String, i64), i64>,
}

/// Divides each old period's calls among the new periods over its time. The parts after the
/// first take the calls of the events dated in them (never more than the period holds: a usage
/// reset may have zeroed calls whose events remain); the first part keeps the rest (calls whose
/// events were pruned are older, so earlier). An old period inside one new period moves whole.
async fn move_calls(
    txn: &DatabaseTransaction,
    account_id: &str,
    old_periods: &[BillingPeriod],
    new_periods: &[BillingPeriod],
    counted: &HashMap<i64, i64>,
    key_counts: &HashMap<i64, BTreeMap<String, i64>>,
) -> DomainResult<Moved> {
    let mut moved = Moved::default();
    let no_keys = BTreeMap::new();
    for old in old_periods {
        let mut left = counted.get(&old.start_ms()).copied().unwrap_or(0);
        let mut keys_left = key_counts.get(&old.start_ms()).unwrap_or(&no_keys).clone();
        if left == 0 && keys_left.is_empty() {
            continue;
        }
        let parts: Vec<(i64, BillingPeriod)> = new_periods
            .iter()
            .filter(|new| new.start < old.end && old.start < new.end)
            .map(|new| {
                let part = BillingPeriod {
                    start: new.start.max(old.start),
                    end: new.end.min(old.end),
                };
                (new.start_ms(), part)
            })
            .collect();
        let Some(((first, _), later)) = parts.split_first() else {
            continue;
        };
        for (target, part) in later {
            let events = events_in(txn, account_id, *part).await?;
            let taken = events.iter().map(|(_, calls)| calls).sum::<i64>().min(left);
            left -= taken;
            *moved.calls.entry(*target).or_default() += taken;
            for (key, calls) in events {
                let Some(key) = key else { continue };
                let Some(key_left) = keys_left.get_mut(&key) else {
                    continue;
                };
                let taken = calls.min(*key_left);
                *key_left -= taken;
                *moved.key_calls.entry((key, *target)).or_default() += taken;
            }
        }
        *moved.calls.entry(*first).or_default() += left;
        for (key, calls) in keys_left {
            *moved.key_calls.entry((key, *first)).or_default() += calls;
        }
    }
    Ok(moved)
}

/// The calls of the account's events dated in `part`, by key.
async fn events_in(
    txn: &DatabaseTransaction,
    account_id: &str,
    part: BillingPeriod,
) -> DomainResult<Vec<(Option<String>, i64)>> {
    Ok(usage_event::Entity::find()
        .select_only()
        .column(usage_event::Column::ApiKeyId)
        .expr(total(usage_event::Column::Cost))
        .filter(usage_event::Column::AccountId.eq(account_id))
        .filter(usage_event::Column::OccurredAt.gte(part.start_ms()))
        .filter(usage_event::Column::OccurredAt.lt(part.end_ms()))
        .filter(usage_event::Column::Cost.gt(0))
        .group_by(usage_event::Column::ApiKeyId)
        .into_tuple()
        .all(txn)
        .await?)
}

/// Writes the new periods' counters, and a marker at every old start no new period has.
async fn write_counters(
    txn: &DatabaseTransaction,
    account_id: &str,
    provider: BillingPeriod,
    old_periods: &[BillingPeriod],
    new_periods: &[BillingPeriod],
    counted: &HashMap<i64, i64>,
    moved: &Moved,
) -> DomainResult<()> {
    use usage_period::Column;
    let new_starts: HashSet<i64> = new_periods.iter().map(|p| p.start_ms()).collect();
    let row = |start: i64, end: i64, calls: i64| usage_period::Model {
        account_id: account_id.to_owned(),
        period_start: start,
        period_end: end,
        calls,
    };
    // Every old start has a counter now (locked above). A new period needs one to hold calls, to
    // replace an old start's, or, the provider's, to keep its bounds once it is superseded.
    let rows: Vec<usage_period::Model> = new_periods
        .iter()
        .filter_map(|p| {
            let calls = moved.calls.get(&p.start_ms()).copied().unwrap_or(0);
            let needed = calls > 0 || counted.contains_key(&p.start_ms()) || *p == provider;
            needed.then(|| row(p.start_ms(), p.end_ms(), calls))
        })
        .chain(
            old_periods
                .iter()
                .filter(|p| !new_starts.contains(&p.start_ms()))
                .map(|p| row(p.start_ms(), p.start_ms(), 0)),
        )
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    usage_period::Entity::insert_many(rows.into_iter().map(IntoActiveModel::into_active_model))
        .on_conflict(
            OnConflict::columns([Column::AccountId, Column::PeriodStart])
                .update_columns([Column::PeriodEnd, Column::Calls])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Replaces each key's counts of the old periods with those of the new ones.
async fn write_key_counts(
    txn: &DatabaseTransaction,
    keys: &[String],
    old_periods: &[BillingPeriod],
    new_periods: &[BillingPeriod],
    moved: &Moved,
) -> DomainResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let starts: HashSet<i64> = old_periods
        .iter()
        .chain(new_periods)
        .map(|p| p.start_ms())
        .collect();
    usage_key_period::Entity::delete_many()
        .filter(usage_key_period::Column::ApiKeyId.is_in(keys.iter().map(String::as_str)))
        .filter(usage_key_period::Column::PeriodStart.is_in(starts))
        .exec(txn)
        .await?;
    let rows: Vec<_> = moved
        .key_calls
        .iter()
        .filter(|(_, calls)| **calls > 0)
        .map(|((key, start), calls)| {
            usage_key_period::Model {
                api_key_id: key.clone(),
                period_start: *start,
                calls: *calls,
            }
            .into_active_model()
        })
        .collect();
    if !rows.is_empty() {
        usage_key_period::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// The old provider period, when it ended before the time laid out anew, becomes a stored
/// period of its own: once the account holds the new one, nothing else remembers its bounds.
async fn keep_history(
    txn: &DatabaseTransaction,
    account_id: &str,
    old: Option<BillingPeriod>,
    from: DateTime<Utc>,
    counters: &[usage_period::Model],
) -> DomainResult<()> {
    let Some(old) = old.filter(|p| p.end <= from) else {
        return Ok(());
    };
    if counters.iter().any(|c| c.period_start == old.start_ms()) {
        return Ok(());
    }
    usage_period::Entity::insert(
        usage_period::Model {
            account_id: account_id.to_owned(),
            period_start: old.start_ms(),
            period_end: old.end_ms(),
            calls: 0,
        }
        .into_active_model(),
    )
    .on_conflict_do_nothing()
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn period(start: &str, end: &str) -> BillingPeriod {
        BillingPeriod {
            start: at(start),
            end: at(end),
        }
    }

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
