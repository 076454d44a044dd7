//! Blocking quotas decided where the calls are committed.
//!
//! Each instance gates requests on its own in-memory count (`QuotaGate`), which cannot see what
//! other instances on the same database are spending. So before a batch's events are written, the
//! period counters its blocking reservations draw on are read under their row locks (a missing
//! counter is created at 0 first), and the batch's jobs are admitted in queue order while their
//! calls fit. A job that does not fit writes nothing and is answered `Quota exceeded`. The locks
//! are held until the batch commits, so no other instance can spend the same calls meanwhile: the
//! quota is exact however many instances share the database.
//!
//! A reservation holds every call its events could count (duplicates are found only when the
//! events are inserted), so admission errs on the side of refusing: the same bound the in-memory
//! gate keeps within one instance.

use std::collections::{BTreeMap, HashMap};

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DbErr};

use super::counters::{upsert_period_counters, PeriodCounts, PeriodKey};
use super::store::BatchTx;
use super::Job;
use crate::domain::quota::{Refusal, Reservation};
use crate::entity::usage_period;

/// Reads, under their row locks, the counters of the periods the jobs' blocking reservations draw
/// on. The rows are locked in key order, the same on every instance, so two batches cannot wait
/// for each other's locks.
pub(super) async fn lock_counters(txn: &impl BatchTx, jobs: &[Job]) -> Result<PeriodCounts, DbErr> {
    let mut ends: BTreeMap<PeriodKey, i64> = BTreeMap::new();
    for reservation in jobs.iter().flat_map(|job| &job.reservations) {
        if reservation.blocking_limit().is_some() {
            ends.insert(key_of(reservation), reservation.period.end_ms());
        }
    }
    let rows = ends
        .into_iter()
        .map(|((account_id, start), end)| usage_period::Model {
            account_id,
            period_start: start,
            period_end: end,
            calls: 0,
        });
    // `SET calls = calls` changes nothing but makes the statement take the row's lock, as an
    // update does, whether the row was there or not; the count is read under it.
    use usage_period::Column;
    let on_conflict = OnConflict::columns([Column::AccountId, Column::PeriodStart])
        .value(Column::Calls, Column::Calls.into_expr())
        .to_owned();
    upsert_period_counters(txn, rows, on_conflict).await
}

/// Admits the jobs in order while their blocking reservations fit in the locked counts; the
/// refusal of each job that does not fit (`None` for an admitted one).
pub(super) fn admit(jobs: &[Job], locked: &PeriodCounts) -> Vec<Option<Refusal>> {
    let mut spent: HashMap<PeriodKey, i64> = HashMap::new();
    jobs.iter()
        .map(|job| {
            let refusal = job
                .reservations
                .iter()
                .find_map(|reservation| refusal(reservation, locked, &spent));
            if refusal.is_none() {
                for reservation in &job.reservations {
                    if reservation.blocking_limit().is_some() {
                        *spent.entry(key_of(reservation)).or_default() += reservation.calls();
                    }
                }
            }
            refusal
        })
        .collect()
}

/// The refusal of a reservation that does not fit in its period's locked count plus what the
/// batch's earlier jobs took.
fn refusal(
    reservation: &Reservation,
    locked: &PeriodCounts,
    spent: &HashMap<PeriodKey, i64>,
) -> Option<Refusal> {
    let limit = reservation.blocking_limit()?;
    let key = key_of(reservation);
    let used = locked.get(&key).copied().unwrap_or(0) + spent.get(&key).copied().unwrap_or(0);
    (used + reservation.calls() > limit).then_some(Refusal {
        limit,
        used,
        period: reservation.period,
    })
}

pub(super) fn key_of(reservation: &Reservation) -> PeriodKey {
    (
        reservation.account_id().to_owned(),
        reservation.period_start_ms(),
    )
}
