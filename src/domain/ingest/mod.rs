//! Ingestion: what `/api/track`, `/api/v1/verify`, `/api/v1/events` and
//! `/api/install-callback` do once their body has been read, in the contract's order —
//! key, rate limit, JSON, payload rules, signature, quota, then the recorder.
//!
//! The HTTP handlers only read the request and shape the response; every decision is here.

mod caller;
mod dating;
mod reservation;
mod service;
mod verify;

pub use caller::Caller;
pub use service::{IngestSettings, Ingestion};
pub use verify::{verify, Verified, VerifyAnswer};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::domain::error::{messages, DomainError, DomainResult, UnauthenticatedReason};
use crate::domain::keys::{self, KeyStatus};
use crate::domain::payload;
use crate::domain::periods::BillingPeriod;
use crate::domain::ratelimit::{MinuteWindow, RateDecision};
use crate::domain::recorder::{EventKind, NewEvent, Outcome, Unrecorded};
use caller::{base_event, check_signature};
use dating::date_events;
use reservation::{record, reserve};

/// The ingestion routes that take an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Accepts expired (not revoked) keys and marks their events.
    Track,
    Verify,
    Events,
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
    let resolved = deadline
        .bound(
            "looking up an API key",
            service.keys.lookup(&service.db, digest),
        )
        .await?
        .ok_or_else(invalid)?;
    let expired = match resolved.status(service.clock.now()) {
        KeyStatus::Active => false,
        KeyStatus::Expired if route == Route::Track => true,
        KeyStatus::Expired | KeyStatus::Revoked => return Err(invalid()),
    };
    Ok(Caller {
        resolved,
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
    let per_minute = u32::try_from(caller.resolved.plan.rate_limit_per_minute.max(1)).unwrap_or(1);
    match service.key_limits.check(caller.key_id(), per_minute).await {
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
    let limit = caller.resolved.plan.monthly_quota?;
    let now = service.clock.now();
    let period = BillingPeriod::for_account(&caller.resolved.account, now);
    let used = reservation::current_used(service, caller, period)
        .await
        .ok()?;
    Some(MonthlyWindow {
        limit,
        used,
        period,
        now,
    })
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
        api_key_id: caller.as_ref().map(|c| c.key_id().to_owned()),
        skill_id: install.skill_id,
        tool_name: Some("install_confirmed".to_owned()),
        metadata: Some(metadata.to_string()),
        ..NewEvent::new(
            caller.as_ref().map(|c| c.account_id().to_owned()),
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
