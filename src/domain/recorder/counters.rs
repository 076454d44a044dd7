//! The period call counters, the part of a batch that quotas read: added to in the batch's
//! transaction and read back, so that the in-memory quota gate can take up the database's count.

use std::collections::{BTreeMap, HashMap};

use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{DbErr, EntityTrait, IntoActiveModel, QueryTrait};

use super::rollups::adding;
use super::statement_sizes;
use super::store::BatchTx;
use crate::entity::usage_period;

/// (account, period start in unix ms)
pub(super) type PeriodKey = (String, i64);

/// Calls each period counter holds, as read or written in a transaction.
pub(super) type PeriodCounts = HashMap<PeriodKey, i64>;

/// Adds the calls counted to the period counters; each counter's count right after.
pub(super) async fn add_period_calls(
    txn: &impl BatchTx,
    periods: &BTreeMap<PeriodKey, (i64, i64)>,
) -> Result<PeriodCounts, DbErr> {
    use usage_period::Column;
    let rows = periods
        .iter()
        .map(|((account, start), (end, calls))| usage_period::Model {
            account_id: account.clone(),
            period_start: *start,
            period_end: *end,
            calls: *calls,
        });
    let on_conflict = adding([Column::AccountId, Column::PeriodStart], [Column::Calls]);
    upsert_period_counters(txn, rows, on_conflict).await
}

/// Multi-row upsert of period counters, reading back each one's count as the statement left it
/// (under its row lock until the transaction ends).
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
