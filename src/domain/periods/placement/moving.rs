//! Moving counted calls when the account's periods are laid out anew: the old periods'
//! counters locked and read, their calls (the account's and each key's) divided among the new
//! periods by the times of their events, and the new counters and markers written.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, QueryTrait,
};

use crate::domain::dialect::total;
use crate::domain::error::DomainResult;
use crate::domain::periods::BillingPeriod;
use crate::entity::{usage_event, usage_key_period, usage_period};

/// Creates (empty) or locks the counter of every old period, and reads each one's calls by
/// start. Once they are locked, a recorder batch that counted in one of them has committed (its
/// events are read below), and one that has not yet must wait for this transaction.
pub(super) async fn lock_counters(
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
pub(super) async fn key_counts(
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
pub(super) struct Moved {
    calls: HashMap<i64, i64>,
    key_calls: HashMap<(String, i64), i64>,
}

/// Divides each old period's calls among the new periods over its time. The parts after the
/// first take the calls of the events dated in them (never more than the period holds: a usage
/// reset may have zeroed calls whose events remain); the first part keeps the rest (calls whose
/// events were pruned are older, so earlier). An old period inside one new period moves whole.
pub(super) async fn move_calls(
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
pub(super) async fn write_counters(
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
pub(super) async fn write_key_counts(
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
pub(super) async fn keep_history(
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
