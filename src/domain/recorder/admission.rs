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
//!
//! A counter is locked only where its range is the one the reservation took. One with another
//! range means the account's periods were laid out anew since (the billing provider's period,
//! applied through another instance): the reservation was judged on a period that no longer is,
//! so its job writes nothing and is answered 503, and its retry is judged on the new periods.

use std::collections::{BTreeMap, HashMap};

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DbErr};

use super::counters::{upsert_period_counters, PeriodCounts, Upserted};
use super::deltas::PeriodKey;
use super::job::{Failure, Job};
use super::store::BatchTx;
use crate::domain::quota::{Refusal, Reservation};
use crate::entity::usage_period;

/// Reads, under their row locks, the counters of the periods the jobs' blocking reservations draw
/// on, and names those whose counter has another range. The rows are locked in key order, the
/// same on every instance, so two batches cannot wait for each other's locks.
pub(super) async fn lock_counters(txn: &impl BatchTx, jobs: &[Job]) -> Result<Upserted, DbErr> {
    let mut ends: BTreeMap<PeriodKey, i64> = BTreeMap::new();
    for reservation in jobs.iter().flat_map(|job| &job.reservations) {
        if reservation.blocking_limit().is_some() {
            ends.insert(key_of(reservation), reservation.period.end_ms());
        }
    }
    let asked: Vec<PeriodKey> = ends.keys().cloned().collect();
    let rows = ends
        .into_iter()
        .map(|((account_id, start), end)| usage_period::Model {
            account_id,
            period_start: start,
            period_end: end,
            calls: 0,
        });
    // `SET calls = calls` changes nothing but makes the statement take the row's lock, as an
    // update does, whether the row was there or not; the count is read under it. (PostgreSQL
    // locks a conflicting row its condition skips as well.)
    use usage_period::Column;
    let mut on_conflict = OnConflict::columns([Column::AccountId, Column::PeriodStart])
        .value(Column::Calls, Column::Calls.into_expr())
        .to_owned();
    on_conflict.action_and_where(super::counters::same_range());
    let counts = upsert_period_counters(txn, rows, on_conflict).await?;
    let misplaced = asked
        .into_iter()
        .filter(|key| !counts.contains_key(key))
        .collect();
    Ok(Upserted { counts, misplaced })
}

/// Admits the jobs in order while their blocking reservations fit in the locked counts; why each
/// job that is not admitted is not (`None` for an admitted one): over its quota, or its period
/// has been laid out anew (`misplaced`).
pub(super) fn admit(jobs: &[Job], locked: &Upserted) -> Vec<Option<Failure>> {
    let mut spent: HashMap<PeriodKey, i64> = HashMap::new();
    jobs.iter()
        .map(|job| {
            let moved = job.reservations.iter().any(|reservation| {
                reservation.blocking_limit().is_some()
                    && locked.misplaced.contains(&key_of(reservation))
            });
            if moved {
                return Some(Failure::PeriodMoved);
            }
            let refusal = job
                .reservations
                .iter()
                .find_map(|reservation| refusal(reservation, &locked.counts, &spent));
            if refusal.is_none() {
                for reservation in &job.reservations {
                    if reservation.blocking_limit().is_some() {
                        *spent.entry(key_of(reservation)).or_default() += reservation.calls();
                    }
                }
            }
            refusal.map(Failure::OverQuota)
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
