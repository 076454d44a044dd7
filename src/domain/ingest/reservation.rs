//! The quota side of ingestion: reserving a request's calls in each period before it is
//! recorded, and answering a full period with a 429, whether the gate or the recorder found it.

use std::collections::{BTreeMap, HashSet};

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

use super::caller::Caller;
use super::service::Ingestion;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::keys::ResolvedKey;
use crate::domain::periods::BillingPeriod;
use crate::domain::quota::{Allowance, Decision, Refusal, Reservation};
use crate::domain::recorder::{NewEvent, Outcome, Unrecorded};
use crate::entity::usage_event;

fn allowance(key: &ResolvedKey) -> Allowance {
    Allowance {
        limit: key.plan.monthly_quota,
        blocks: key.plan.blocks_over_quota,
    }
}

/// Reserves the calls a request needs in each period, all or nothing. When a blocking plan has
/// too few calls left, events whose id the account already has (duplicates, or verified calls
/// being completed) are left out and the reservation is tried again: they count nothing.
pub(super) async fn reserve(
    service: &Ingestion,
    caller: &Caller,
    events: &[NewEvent],
) -> DomainResult<Vec<Reservation>> {
    let needs = calls_per_period(events, &HashSet::new());
    match try_reserve(service, caller, &needs).await? {
        Ok(reservations) => Ok(reservations),
        Err(refusal) => {
            let ids: Vec<&str> = events
                .iter()
                .filter_map(|e| e.event_id.as_deref())
                .collect();
            if ids.is_empty() {
                return Err(quota_exceeded(service, caller, refusal));
            }
            let known = caller
                .deadline
                .bound(
                    "reading known event ids",
                    known_event_ids(&service.db, caller.account_id(), &ids),
                )
                .await?;
            if known.is_empty() {
                return Err(quota_exceeded(service, caller, refusal));
            }
            let needs = calls_per_period(events, &known);
            try_reserve(service, caller, &needs)
                .await?
                .map_err(|refusal| quota_exceeded(service, caller, refusal))
        }
    }
}

/// The 429 of a full period. A retry can succeed once the refusing period is over; a period that
/// is already over (an event dated in an earlier, full period) never frees up, and the wait named
/// is then the current period's, as the `"monthly"` rate-limit header reports it.
fn quota_exceeded(service: &Ingestion, caller: &Caller, refusal: Refusal) -> DomainError {
    let now = service.clock.now();
    let waited_for = if refusal.period.end > now {
        refusal.period
    } else {
        BillingPeriod::for_account(&caller.resolved.account, now)
    };
    DomainError::QuotaExceeded {
        limit: refusal.limit,
        used: refusal.used,
        reset: refusal.period.end,
        upgrade_url: service.settings.upgrade_url.clone(),
        retry_after_secs: waited_for.seconds_left(now).max(1) as u64,
    }
}

fn calls_per_period(
    events: &[NewEvent],
    known: &HashSet<String>,
) -> BTreeMap<i64, (BillingPeriod, i64)> {
    let mut needs = BTreeMap::new();
    let mut seen = HashSet::new();
    for event in events {
        let Some(period) = event.period else { continue };
        if let Some(id) = event.event_id.as_deref() {
            // Known ids count nothing; a repeated id in one request counts once.
            if known.contains(id) || !seen.insert(id) {
                continue;
            }
        }
        needs.entry(period.start_ms()).or_insert((period, 0)).1 += event.cost;
    }
    needs
}

async fn try_reserve(
    service: &Ingestion,
    caller: &Caller,
    needs: &BTreeMap<i64, (BillingPeriod, i64)>,
) -> DomainResult<Result<Vec<Reservation>, Refusal>> {
    let mut reservations = Vec::with_capacity(needs.len());
    for (period, calls) in needs.values() {
        let reserve = service.quota.reserve(
            &service.db,
            caller.account_id(),
            *period,
            *calls,
            allowance(&caller.resolved),
        );
        let decision = caller
            .deadline
            .bound("reading the period's count", reserve)
            .await?;
        match decision {
            Decision::Granted(reservation) => reservations.push(reservation),
            // Dropping the reservations made so far gives their calls back.
            Decision::Exceeded(refusal) => return Ok(Err(refusal)),
        }
    }
    Ok(Ok(reservations))
}

async fn known_event_ids(
    db: &DatabaseConnection,
    account_id: &str,
    ids: &[&str],
) -> DomainResult<HashSet<String>> {
    let known: Vec<Option<String>> = usage_event::Entity::find()
        .select_only()
        .column(usage_event::Column::EventId)
        .filter(usage_event::Column::AccountId.eq(account_id))
        .filter(usage_event::Column::EventId.is_in(ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(known.into_iter().flatten().collect())
}

/// Records events with their quota reservations. The recorder judges blocking quotas again where
/// the calls are committed (another instance may have spent them): its refusal is answered as the
/// gate's would be.
pub(super) async fn record(
    service: &Ingestion,
    caller: &Caller,
    events: Vec<NewEvent>,
    reservations: Vec<Reservation>,
) -> DomainResult<Vec<Outcome>> {
    match service
        .recorder
        .record(events, reservations, caller.deadline)
        .await
    {
        Ok(outcomes) => Ok(outcomes),
        Err(Unrecorded::OverQuota(refusal)) => Err(quota_exceeded(service, caller, refusal)),
        Err(Unrecorded::Failed(err)) => Err(err),
    }
}

/// The calls counted in `period` so far, read within the request's deadline.
pub(super) async fn current_used(
    service: &Ingestion,
    caller: &Caller,
    period: BillingPeriod,
) -> DomainResult<i64> {
    caller
        .deadline
        .bound(
            "reading the period's count",
            service.quota.used(&service.db, caller.account_id(), period),
        )
        .await
}
