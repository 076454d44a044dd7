//! The period call counters, the part of a batch that quotas read: added to in the batch's
//! transaction and read back, so that the in-memory quota gate can take up the database's count.
//!
//! Calls are added to a counter only where its range is the one the request took. When the
//! billing provider's period has laid out the account's periods anew since the request took its
//! period (on an instance that had not heard of the change yet), the counter has another range,
//! or an empty one where no period starts any more ([`crate::domain::periods::placement`]): those
//! calls are placed again, by the stored periods around their time, in the same transaction.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{DbErr, EntityTrait, IntoActiveModel, QueryTrait};

use super::deltas::PeriodKey;
use super::new_event::{NewEvent, Outcome};
use super::rollups::Rollups;
use super::sql::{adding, statement_sizes};
use super::store::BatchTx;
use crate::domain::periods::{BillingPeriod, Layout};
use crate::entity::{invoice, usage_period};

/// Calls each period counter holds, as read or written in a transaction.
pub(super) type PeriodCounts = HashMap<PeriodKey, i64>;

/// How often calls are placed again before the batch gives up: each round follows a change of
/// the account's periods made while the batch was being written.
const PLACING_ROUNDS: usize = 3;

/// The counters a statement read or wrote, and the periods whose counter had another range.
pub(super) struct Upserted {
    pub(super) counts: PeriodCounts,
    pub(super) misplaced: Vec<PeriodKey>,
}

/// The condition of an upsert that touches a counter only where its range is the one asked for.
pub(super) fn same_range() -> Expr {
    Expr::col((usage_period::Entity, usage_period::Column::PeriodEnd)).eq(Expr::col((
        Alias::new("excluded"),
        usage_period::Column::PeriodEnd,
    )))
}

/// Adds the counted calls (`periods`: key → (period end, calls)) to the period counters; each
/// counter's count right after, and the keys whose counter had another range (nothing added).
pub(super) async fn add_period_calls(
    txn: &impl BatchTx,
    periods: &BTreeMap<PeriodKey, (i64, i64)>,
) -> Result<Upserted, DbErr> {
    use usage_period::Column;
    let rows = periods
        .iter()
        .map(|((account, start), (end, calls))| usage_period::Model {
            account_id: account.clone(),
            period_start: *start,
            period_end: *end,
            calls: *calls,
        });
    let mut on_conflict = adding([Column::AccountId, Column::PeriodStart], [Column::Calls]);
    on_conflict.action_and_where(same_range());
    let counts = upsert_period_counters(txn, rows, on_conflict).await?;
    let misplaced = periods
        .keys()
        .filter(|key| !counts.contains_key(*key))
        .cloned()
        .collect();
    Ok(Upserted { counts, misplaced })
}

/// Places again, by the stored periods around their time, the calls of the accepted events
/// whose period's counter turned out to have another range (`misplaced`), and moves their keys'
/// calls along in `rollups`; the counts of the counters they were added to.
pub(super) async fn place_again(
    txn: &impl BatchTx,
    events: &[&NewEvent],
    outcomes: &[Outcome],
    mut misplaced: Vec<PeriodKey>,
    rollups: &mut Rollups,
) -> Result<PeriodCounts, DbErr> {
    // (event index, the period it is counted in now)
    let mut todo: Vec<(usize, BillingPeriod)> = events
        .iter()
        .zip(outcomes)
        .enumerate()
        .filter_map(|(i, (event, outcome))| {
            let period = event.period?;
            let key = (event.account_id.clone()?, period.start_ms());
            (*outcome == Outcome::Accepted && event.cost > 0 && misplaced.contains(&key))
                .then_some((i, period))
        })
        .collect();
    let mut counts = PeriodCounts::new();
    for _ in 0..PLACING_ROUNDS {
        let mut layouts: HashMap<(String, i64), Layout> = HashMap::new();
        let mut periods: BTreeMap<PeriodKey, (i64, i64)> = BTreeMap::new();
        for (i, counted_in) in &mut todo {
            let event = events[*i];
            let account = event.account_id.clone().unwrap_or_default();
            let month = BillingPeriod::calendar_month(event.occurred_at).start_ms();
            let layout = match layouts.entry((account.clone(), month)) {
                std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(stored_periods_around(txn, &account, event.occurred_at).await?)
                }
            };
            let period = layout.period_at(event.occurred_at);
            rollups.move_key_calls(event, *counted_in, period);
            *counted_in = period;
            let slot = periods
                .entry((account, period.start_ms()))
                .or_insert((period.end_ms(), 0));
            slot.1 += event.cost;
        }
        let upserted = add_period_calls(txn, &periods).await?;
        counts.extend(upserted.counts);
        misplaced = upserted.misplaced;
        if misplaced.is_empty() {
            return Ok(counts);
        }
        todo.retain(|(i, period)| {
            let key = (
                events[*i].account_id.clone().unwrap_or_default(),
                period.start_ms(),
            );
            misplaced.contains(&key)
        });
    }
    Err(DbErr::Custom(format!(
        "the billing periods of {misplaced:?} kept changing while their calls were written"
    )))
}

/// The stored periods (counters and invoices) of `account` around `at`, read in the batch's
/// transaction. Every provider period is stored with its counter when it is taken, so these say
/// all that fixes the account's periods there.
async fn stored_periods_around(
    txn: &impl BatchTx,
    account: &str,
    at: DateTime<Utc>,
) -> Result<Layout, DbErr> {
    let month = BillingPeriod::calendar_month(at);
    let (from, until) = (month.start_ms(), month.end_ms());
    let counters = Query::select()
        .columns([
            usage_period::Column::PeriodStart,
            usage_period::Column::PeriodEnd,
        ])
        .from(usage_period::Entity)
        .and_where(Expr::col(usage_period::Column::AccountId).eq(account))
        .and_where(Expr::col(usage_period::Column::PeriodStart).lt(until))
        .and_where(Expr::col(usage_period::Column::PeriodEnd).gt(from))
        .to_owned();
    let invoices = Query::select()
        .columns([invoice::Column::PeriodStart, invoice::Column::PeriodEnd])
        .from(invoice::Entity)
        .and_where(Expr::col(invoice::Column::AccountId).eq(account))
        .and_where(Expr::col(invoice::Column::PeriodStart).lt(until))
        .and_where(Expr::col(invoice::Column::PeriodEnd).gt(from))
        .to_owned();
    let counters: Vec<(i64, i64)> = txn.fetch(&counters).await?;
    let invoices: Vec<(i64, i64)> = txn.fetch(&invoices).await?;
    Ok(Layout::new(counters, invoices, None))
}

/// Multi-row upsert of period counters, reading back each one's count as the statement left it
/// (under its row lock until the transaction ends). A row the upsert's condition skipped is not
/// read back.
pub(super) async fn upsert_period_counters(
    txn: &impl BatchTx,
    rows: impl ExactSizeIterator<Item = usage_period::Model>,
    on_conflict: OnConflict,
) -> Result<PeriodCounts, DbErr> {
    use usage_period::Column;
    let mut counts = PeriodCounts::with_capacity(rows.len());
    let sizes = statement_sizes(rows.len());
    let mut rows = rows.into_iter();
    for size in sizes {
        let chunk = rows
            .by_ref()
            .take(size)
            .map(IntoActiveModel::into_active_model);
        let mut statement = usage_period::Entity::insert_many(chunk)
            .on_conflict(on_conflict.clone())
            .into_query();
        statement.returning(Query::returning().columns([
            Column::AccountId,
            Column::PeriodStart,
            Column::Calls,
        ]));
        for (account, start, calls) in txn.fetch::<_, (String, i64, i64)>(&statement).await? {
            counts.insert((account, start), calls);
        }
    }
    Ok(counts)
}
