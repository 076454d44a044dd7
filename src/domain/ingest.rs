//! Ingestion: what `/api/track`, `/api/v1/verify`, `/api/v1/events` and
//! `/api/install-callback` do once their body has been read, in the contract's order —
//! key, rate limit, JSON, payload rules, signature, quota, then the recorder.
//!
//! The HTTP handlers only read the request and shape the response; every decision is here.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;

use crate::clock::Clock;
use crate::domain::deadline::Deadline;
use crate::domain::error::{
    messages, DomainError, DomainResult, ForbiddenReason, UnauthenticatedReason,
};
use crate::domain::keys::{self, KeyCache, KeyStatus, ResolvedKey};
use crate::domain::payload;
use crate::domain::periods::{BillingPeriod, Layout};
use crate::domain::quota::{Allowance, Decision, QuotaGate, Refusal, Reservation};
use crate::domain::ratelimit::{KeyLimits, MinuteWindow, RateDecision, RateLimits};
use crate::domain::recorder::{EventKind, NewEvent, Outcome, Recorder, Unrecorded};
use crate::domain::replay::{self, VerifyCall};
use crate::domain::signature;
use crate::entity::usage_event;

/// What ingestion needs of the service, and nothing else: the database, the key cache, the
/// quota gate, the per-key and per-address limits, the recorder, the clock and two settings.
#[derive(Clone)]
pub struct Ingestion {
    pub db: DatabaseConnection,
    pub keys: KeyCache,
    pub quota: QuotaGate,
    /// Per-minute limits of API keys (keyed by key id).
    pub key_limits: KeyLimits,
    /// Per-minute limits of install callbacks (keyed by client address).
    pub install_limits: RateLimits,
    pub recorder: Recorder,
    pub clock: Arc<dyn Clock>,
    pub settings: IngestSettings,
}

#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Sent with a 429 `Quota exceeded`.
    pub upgrade_url: String,
    pub install_rate_limit_per_minute: u32,
    /// What a request may wait on the database in all (`TALLY_DATABASE_WAIT_MS`).
    pub database_wait: Duration,
}

/// The ingestion routes that take an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Accepts expired (not revoked) keys and marks their events.
    Track,
    Verify,
    Events,
}

/// A request's key, once it is known to be valid for the route.
pub struct Caller {
    pub key: Arc<ResolvedKey>,
    /// The key as sent: it signs request bodies.
    pub plaintext: String,
    pub expired: bool,
    /// Until when the request may wait on the database, from its authentication on.
    pub deadline: Deadline,
}

impl Ingestion {
    /// The deadline of a request starting now.
    pub fn deadline(&self) -> Deadline {
        Deadline::after(self.settings.database_wait)
    }
}

/// Checks the bearer token. `None` means no `Authorization: Bearer` header at all.
pub async fn authenticate(
    service: &Ingestion,
    bearer: Option<&str>,
    route: Route,
) -> DomainResult<Caller> {
    let token = bearer.ok_or_else(|| {
        DomainError::unauthenticated(
            UnauthenticatedReason::MissingCredentials,
            messages::MISSING_AUTHORIZATION,
        )
    })?;
    let invalid = || {
        DomainError::unauthenticated(
            UnauthenticatedReason::InvalidCredentials,
            messages::INVALID_KEY,
        )
    };
    // A malformed key or a bad checksum is refused before any database work.
    let digest = keys::parse(token).ok_or_else(invalid)?;
    let deadline = service.deadline();
    let key = deadline
        .bound(
            "looking up an API key",
            service.keys.lookup(&service.db, digest),
        )
        .await?
        .ok_or_else(invalid)?;
    let expired = match key.status(service.clock.now()) {
        KeyStatus::Active => false,
        KeyStatus::Expired if route == Route::Track => true,
        KeyStatus::Expired | KeyStatus::Revoked => return Err(invalid()),
    };
    Ok(Caller {
        key,
        plaintext: token.to_owned(),
        expired,
        deadline,
    })
}

/// Spends one request of the key's per-minute allowance (the plan's, as cached with the key).
pub async fn spend_rate_limit(
    service: &Ingestion,
    caller: &Caller,
) -> (MinuteWindow, DomainResult<()>) {
    let per_minute = u32::try_from(caller.key.plan.rate_limit_per_minute.max(1)).unwrap_or(1);
    match service
        .key_limits
        .check(&caller.key.key.id, per_minute)
        .await
    {
        RateDecision::Allowed(window) => (window, Ok(())),
        RateDecision::Limited {
            window,
            retry_after_secs,
        } => (
            window,
            Err(DomainError::RateLimited {
                message: "Rate limited".to_owned(),
                retry_after_secs,
            }),
        ),
    }
}

/// The monthly quota as the rate-limit headers report it.
#[derive(Debug, Clone, Copy)]
pub struct MonthlyWindow {
    pub limit: i64,
    pub used: i64,
    pub period: BillingPeriod,
    pub now: DateTime<Utc>,
}

impl MonthlyWindow {
    pub fn remaining(&self) -> i64 {
        (self.limit - self.used).max(0)
    }

    /// Whole seconds until the period ends, rounded up.
    pub fn reset_secs(&self) -> u64 {
        self.period.seconds_left(self.now).max(0) as u64
    }
}

/// The caller's current period and quota; `None` for unlimited plans (or when the count cannot
/// be read right now).
pub async fn monthly_window(service: &Ingestion, caller: &Caller) -> Option<MonthlyWindow> {
    let limit = caller.key.plan.monthly_quota?;
    let now = service.clock.now();
    let period = BillingPeriod::for_account(&caller.key.account, now);
    let used = caller
        .deadline
        .bound(
            "reading the period's count",
            service
                .quota
                .used(&service.db, &caller.key.account.id, period),
        )
        .await
        .ok()?;
    Some(MonthlyWindow {
        limit,
        used,
        period,
        now,
    })
}

fn allowance(key: &ResolvedKey) -> Allowance {
    Allowance {
        limit: key.plan.monthly_quota,
        blocks: key.plan.blocks_over_quota,
    }
}

/// The period each event counts in, in order; or the refusal of the events dated where no period
/// can take them: before the account was created (no period or invoice covers that time), or
/// inside a period that has already been invoiced (a closed period never changes, and an event is
/// never silently moved to another one). `at` pairs each event's detail key (`ts`,
/// `events[3].ts`) with its time.
///
/// An event the account row alone places in a period that has not ended — nearly all of them, the
/// current period's — needs no database work. One in a period that has ended may be in an
/// invoiced one, and one dated before the provider's period began may lie in a period stored
/// before it: those are placed by the stored periods and invoices around their time.
///
/// The creation time counts to the whole second: clients often send second-precision times, and
/// an event from the second the account was created in is its own (period boundaries are whole
/// seconds, so this never reaches into an earlier period).
async fn date_events(
    service: &Ingestion,
    caller: &Caller,
    at: impl IntoIterator<Item = (String, DateTime<Utc>)>,
) -> DomainResult<Vec<BillingPeriod>> {
    let account = &caller.key.account;
    let created = account.created_at.trunc_subsecs(0);
    let now = service.clock.now();
    let mut periods = Vec::new();
    let mut refused = Vec::new();
    // Stored periods by calendar month: a batch's late events share few months.
    let mut layouts: HashMap<i64, Layout> = HashMap::new();
    for (field, ts) in at {
        if ts < created {
            refused.push((field, "must not be before the account was created"));
            continue;
        }
        let period = BillingPeriod::for_account(account, ts);
        if BillingPeriod::placed_by_account(account, ts) && period.end > now {
            periods.push(period);
            continue;
        }
        let month = BillingPeriod::calendar_month(ts).start_ms();
        let layout = match layouts.entry(month) {
            Entry::Occupied(found) => found.into_mut(),
            Entry::Vacant(slot) => {
                let layout = caller
                    .deadline
                    .bound(
                        "placing an event in its billing period",
                        Layout::load_around(&service.db, account, ts),
                    )
                    .await?;
                slot.insert(layout)
            }
        };
        if layout.is_closed(ts) {
            refused.push((field, "billing period closed"));
        } else {
            periods.push(layout.period_at(ts));
        }
    }
    if refused.is_empty() {
        Ok(periods)
    } else {
        Err(DomainError::invalid_payload(refused))
    }
}

fn check_signature(caller: &Caller, body: &[u8], header: Option<&[u8]>) -> DomainResult<()> {
    if signature::accepts(
        &caller.plaintext,
        body,
        header,
        caller.key.key.require_signature,
    ) {
        Ok(())
    } else {
        Err(DomainError::forbidden(
            ForbiddenReason::InvalidSignature,
            messages::INVALID_SIGNATURE,
        ))
    }
}

/// Reserves the calls a request needs in each period, all or nothing. When a blocking plan has
/// too few calls left, events whose id the account already has (duplicates, or verified calls
/// being completed) are left out and the reservation is tried again: they count nothing.
async fn reserve(
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
                    known_event_ids(&service.db, &caller.key.account.id, &ids),
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
        BillingPeriod::for_account(&caller.key.account, now)
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
            &caller.key.account.id,
            *period,
            *calls,
            allowance(&caller.key),
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

fn base_event(caller: &Caller, kind: EventKind, now: DateTime<Utc>) -> NewEvent {
    NewEvent {
        api_key_id: Some(caller.key.key.id.clone()),
        expired_key: caller.expired,
        ..NewEvent::new(Some(caller.key.account.id.clone()), kind, now)
    }
}

/// `POST /api/track`, past the key and the rate limit.
pub async fn track(
    service: &Ingestion,
    caller: &Caller,
    body: &[u8],
    signature: Option<&[u8]>,
) -> DomainResult<()> {
    let now = service.clock.now();
    let value = payload::parse_json(body, false)?;
    let tool = payload::tool_use(&value, now)?;
    let period = date_events(service, caller, [("ts".to_owned(), tool.ts)])
        .await?
        .pop();
    check_signature(caller, body, signature)?;
    let event = NewEvent {
        event_id: tool.event_id,
        skill_id: Some(tool.skill_id),
        tool_name: Some(tool.tool_name),
        hook_event: tool.hook_event,
        input_snippet: tool.tool_input_snippet,
        output_snippet: tool.tool_output_snippet,
        period,
        occurred_at: tool.ts,
        ..base_event(caller, EventKind::ToolCall, now)
    };
    let events = vec![event];
    let reservations = reserve(service, caller, &events).await?;
    record(service, caller, events, reservations).await?;
    Ok(())
}

/// Records events with their quota reservations. The recorder judges blocking quotas again where
/// the calls are committed (another instance may have spent them): its refusal is answered as the
/// gate's would be.
async fn record(
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
    let period = BillingPeriod::for_account(&caller.key.account, now);
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
        replay::original(&service.db, &caller.key.account.id, event_id),
    );
    let Some(original) = original.await? else {
        return Err(DomainError::internal(anyhow::anyhow!(
            "event id {event_id} was a duplicate but is not stored"
        )));
    };
    if !original.is_retried_by(call, now) {
        return Ok(VerifyAnswer::EventIdReused);
    }
    let account = &caller.key.account;
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

async fn current_used(
    service: &Ingestion,
    caller: &Caller,
    period: BillingPeriod,
) -> DomainResult<i64> {
    caller
        .deadline
        .bound(
            "reading the period's count",
            service
                .quota
                .used(&service.db, &caller.key.account.id, period),
        )
        .await
}

fn verified(caller: &Caller, used: i64, period: BillingPeriod) -> Verified {
    let limit = caller.key.plan.monthly_quota;
    Verified {
        account_id: caller.key.account.id.clone(),
        key_id: caller.key.key.id.clone(),
        plan: caller.key.plan.code.clone(),
        limit,
        used,
        period,
        overage: limit.is_some_and(|limit| !caller.key.plan.blocks_over_quota && used > limit),
    }
}

/// What became of a batch of finished calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Newly stored and counted.
    pub accepted: usize,
    /// Completed a call recorded earlier by verify; counted nothing new.
    pub completed: usize,
    /// Already recorded; nothing stored.
    pub duplicates: usize,
}

impl BatchOutcome {
    fn of(outcomes: &[Outcome]) -> Self {
        let count = |wanted: Outcome| outcomes.iter().filter(|o| **o == wanted).count();
        Self {
            accepted: count(Outcome::Accepted),
            completed: count(Outcome::Completed),
            duplicates: count(Outcome::Duplicate),
        }
    }
}

/// `POST /api/v1/events`, past the key and the rate limit: the whole batch is validated, then
/// stored, or refused whole when a blocking plan cannot take it.
pub async fn events(
    service: &Ingestion,
    caller: &Caller,
    body: &[u8],
    signature: Option<&[u8]>,
) -> DomainResult<BatchOutcome> {
    let now = service.clock.now();
    let value = payload::parse_json(body, false)?;
    let calls = payload::finished_calls(&value, now)?;
    let dated: Vec<_> = calls
        .iter()
        .enumerate()
        .map(|(i, call)| (format!("events[{i}].ts"), call.ts))
        .collect();
    let periods = date_events(service, caller, dated).await?;
    check_signature(caller, body, signature)?;
    let events: Vec<NewEvent> = calls
        .into_iter()
        .zip(periods)
        .map(|(call, period)| NewEvent {
            event_id: call.event_id,
            endpoint: Some(call.endpoint),
            method: Some(call.method),
            status_code: Some(call.status_code),
            response_time_ms: Some(call.response_time_ms),
            period: Some(period),
            occurred_at: call.ts,
            completes: true,
            ..base_event(caller, EventKind::ApiCall, now)
        })
        .collect();
    let reservations = reserve(service, caller, &events).await?;
    let outcomes = record(service, caller, events, reservations).await?;
    Ok(BatchOutcome::of(&outcomes))
}

/// `POST /api/install-callback`: anonymous unless a valid key comes with it; never counted.
/// Answers the optional fields that were dropped for a wrong type or length.
///
/// A key attributes the install only when the body's signature is one the key would accept on
/// `/api/track`: a key that requires signatures needs a signed body, and a wrong signature is never
/// trusted. Otherwise the install is still recorded, as nobody's — the key alone does not show
/// that its owner sent it.
pub async fn install(
    service: &Ingestion,
    bearer: Option<&str>,
    signature: Option<&[u8]>,
    client_address: &str,
    body: &[u8],
) -> DomainResult<Vec<&'static str>> {
    let per_minute = service.settings.install_rate_limit_per_minute;
    if let RateDecision::Limited {
        retry_after_secs, ..
    } = service.install_limits.check(client_address, per_minute)
    {
        return Err(DomainError::RateLimited {
            message: "Rate limited".to_owned(),
            retry_after_secs,
        });
    }
    let value = payload::parse_json(body, true)?;
    let install = payload::install(&value)?;
    let now = service.clock.now();
    let caller = match bearer {
        Some(token) => match authenticate(service, Some(token), Route::Verify).await {
            Ok(caller) => check_signature(&caller, body, signature)
                .ok()
                .map(|()| caller),
            Err(DomainError::Unauthenticated { .. }) => None,
            Err(other) => return Err(other),
        },
        None => None,
    };
    let metadata = json!({
        "source": "install-script",
        "platform": install.platform,
        "version": install.version,
    });
    let event = NewEvent {
        api_key_id: caller.as_ref().map(|c| c.key.key.id.clone()),
        skill_id: install.skill_id,
        tool_name: Some("install_confirmed".to_owned()),
        metadata: Some(metadata.to_string()),
        ..NewEvent::new(
            caller.as_ref().map(|c| c.key.account.id.clone()),
            EventKind::Install,
            now,
        )
    };
    let deadline = caller.map_or_else(|| service.deadline(), |caller| caller.deadline);
    // Without a reservation no quota can refuse it.
    match service
        .recorder
        .record(vec![event], Vec::new(), deadline)
        .await
    {
        Ok(_) => Ok(install.ignored),
        Err(Unrecorded::Failed(err)) => Err(err),
        Err(Unrecorded::OverQuota(refusal)) => Err(DomainError::internal(anyhow::anyhow!(
            "an install was refused for a quota: {refusal:?}"
        ))),
    }
}
