//! `POST /api/v1/verify`: the quota checked and the call recorded in one step, and a retried
//! verify answered as the original was.

use chrono::{DateTime, Utc};

use super::caller::{base_event, check_signature, Caller};
use super::reservation::{current_used, record, reserve};
use super::service::Ingestion;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::payload;
use crate::domain::periods::{BillingPeriod, Layout};
use crate::domain::recorder::{EventKind, NewEvent, Outcome};
use crate::domain::replay::{self, VerifyCall};

/// What `POST /api/v1/verify` answers when the call is allowed.
#[derive(Debug, Clone)]
pub struct Verified {
    pub account_id: String,
    pub key_id: String,
    pub plan: String,
    pub limit: Option<i64>,
    pub used: i64,
    pub period: BillingPeriod,
    pub overage: bool,
}

impl Verified {
    pub fn remaining(&self) -> Option<i64> {
        self.limit.map(|limit| (limit - self.used).max(0))
    }
}

/// The answer of a verify that got past every check.
#[derive(Debug, Clone)]
pub enum VerifyAnswer {
    /// Allowed: a new call counted, or a retry of an allowed verify (nothing counted).
    Allowed(Verified),
    /// The event id was used before by something this verify is not a retry of; nothing counted.
    EventIdReused,
}

/// `POST /api/v1/verify`, past the key and the rate limit: checks the quota and records the
/// call (with `cost` calls) in one step. A repeated event id is looked at only once the recorder
/// has found it stored, so a new call costs no extra read.
pub async fn verify(
    service: &Ingestion,
    caller: &Caller,
    body: &[u8],
    signature: Option<&[u8]>,
) -> DomainResult<VerifyAnswer> {
    let now = service.clock.now();
    let value = payload::parse_json(body, true)?;
    let request = payload::verify_request(&value)?;
    check_signature(caller, body, signature)?;
    let period = BillingPeriod::for_account(&caller.resolved.account, now);
    let call = VerifyCall {
        endpoint: request.endpoint,
        method: request.method,
        cost: request.cost,
    };
    let event = NewEvent {
        event_id: request.event_id.clone(),
        endpoint: call.endpoint.clone(),
        method: call.method.clone(),
        metadata: Some(call.metadata()),
        cost: call.cost,
        period: Some(period),
        ..base_event(caller, EventKind::ApiCall, now)
    };
    let events = vec![event];
    let reservations = reserve(service, caller, &events).await?;
    let reserved_used = reservations.first().map(|r| r.used_after);
    let outcomes = record(service, caller, events, reservations).await?;
    match (outcomes.first(), request.event_id.as_deref()) {
        (Some(Outcome::Duplicate), Some(event_id)) => {
            replay(service, caller, event_id, &call, now).await
        }
        (Some(Outcome::Accepted), _) => {
            let used = match reserved_used {
                Some(used) => used,
                None => current_used(service, caller, period).await?,
            };
            Ok(VerifyAnswer::Allowed(verified(caller, used, period)))
        }
        (outcome, _) => Err(DomainError::internal(anyhow::anyhow!(
            "the recorder answered {outcome:?} for a verify"
        ))),
    }
}

/// A verify whose event id is already stored: the original decision (allowed) again when it is
/// a retry of that verify, with the counts of the period the original was counted in as they
/// are now (the original call included, nothing added); otherwise the id is reused.
async fn replay(
    service: &Ingestion,
    caller: &Caller,
    event_id: &str,
    call: &VerifyCall,
    now: DateTime<Utc>,
) -> DomainResult<VerifyAnswer> {
    let original = caller.deadline.bound(
        "reading a verified call",
        replay::original(&service.db, caller.account_id(), event_id),
    );
    let Some(original) = original.await? else {
        return Err(DomainError::internal(anyhow::anyhow!(
            "event id {event_id} was a duplicate but is not stored"
        )));
    };
    if !original.is_retried_by(call, now) {
        return Ok(VerifyAnswer::EventIdReused);
    }
    let account = &caller.resolved.account;
    let at = original.occurred_at();
    let period = if BillingPeriod::placed_by_account(account, at) {
        BillingPeriod::for_account(account, at)
    } else {
        Layout::load_around(&service.db, account, at)
            .await?
            .period_at(at)
    };
    let used = current_used(service, caller, period).await?;
    Ok(VerifyAnswer::Allowed(verified(caller, used, period)))
}

fn verified(caller: &Caller, used: i64, period: BillingPeriod) -> Verified {
    let limit = caller.resolved.plan.monthly_quota;
    Verified {
        account_id: caller.account_id().to_owned(),
        key_id: caller.key_id().to_owned(),
        plan: caller.resolved.plan.code.clone(),
        limit,
        used,
        period,
        overage: limit.is_some_and(|limit| !caller.resolved.plan.blocks_over_quota && used > limit),
    }
}
