//! Repeated verify event ids. A gateway that lost a verify's answer asks again with the same
//! `event_id`: within [`WINDOW`] of the original, for the same endpoint, method and cost, that
//! retry gets the original decision and counts nothing. Anything else reusing the id — another
//! call, a late retry, an id first sent by track or events — is refused by the caller (409).

use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use crate::domain::error::DomainResult;
use crate::domain::recorder::EventKind;
use crate::entity::usage_event;

/// How long after a verify a repeat of its event id still counts as a retry of it.
pub const WINDOW: Duration = Duration::minutes(10);

const SOURCE: &str = "verify";

/// The call a verify asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyCall {
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub cost: i64,
}

impl VerifyCall {
    /// What a verify stores in its event's `metadata`: the endpoint and method as asked, since a
    /// finished-call report may later replace the event's own columns with what really ran.
    pub fn metadata(&self) -> String {
        json!({ "source": SOURCE, "endpoint": self.endpoint, "method": self.method }).to_string()
    }
}

/// The stored event that first used an event id.
#[derive(Debug, Clone)]
pub struct Original {
    /// The call, when the event was recorded by verify.
    call: Option<VerifyCall>,
    received_at: DateTime<Utc>,
    occurred_at: DateTime<Utc>,
}

impl Original {
    /// True when `call`, asked at `now`, is a retry of this verify.
    pub fn is_retried_by(&self, call: &VerifyCall, now: DateTime<Utc>) -> bool {
        self.call.as_ref() == Some(call) && now - self.received_at <= WINDOW
    }

    /// When the original call was counted: its period is the one it counts in.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at
    }
}

/// The event of `account_id` with `event_id`, if any.
pub async fn original(
    db: &DatabaseConnection,
    account_id: &str,
    event_id: &str,
) -> DomainResult<Option<Original>> {
    let found = usage_event::Entity::find()
        .filter(usage_event::Column::AccountId.eq(account_id))
        .filter(usage_event::Column::EventId.eq(event_id))
        .one(db)
        .await?;
    Ok(found.map(|event| Original {
        call: verify_call(&event),
        received_at: millis(event.received_at),
        occurred_at: millis(event.occurred_at),
    }))
}

/// The call a stored event was verified for; `None` when verify did not record it.
fn verify_call(event: &usage_event::Model) -> Option<VerifyCall> {
    if event.kind != EventKind::ApiCall.as_str() {
        return None;
    }
    match event.metadata.as_deref() {
        Some(text) => {
            let metadata: Value = serde_json::from_str(text).ok()?;
            if metadata["source"] != SOURCE {
                return None;
            }
            let field = |name: &str| metadata[name].as_str().map(str::to_owned);
            Some(VerifyCall {
                endpoint: field("endpoint"),
                method: field("method"),
                cost: event.cost,
            })
        }
        // Stored before verifies kept their request: only verify records a call with no status
        // yet, and its columns are still as asked.
        None if event.status_code.is_none() => Some(VerifyCall {
            endpoint: event.endpoint.clone(),
            method: event.method.clone(),
            cost: event.cost,
        }),
        None => None,
    }
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn call(endpoint: &str, cost: i64) -> VerifyCall {
        VerifyCall {
            endpoint: Some(endpoint.to_owned()),
            method: Some("GET".to_owned()),
            cost,
        }
    }

    #[test]
    fn a_retry_asks_the_same_within_ten_minutes() {
        let original = Original {
            call: Some(call("/a", 2)),
            received_at: at("2026-11-10T12:00:00Z"),
            occurred_at: at("2026-11-10T12:00:00Z"),
        };
        assert!(original.is_retried_by(&call("/a", 2), at("2026-11-10T12:10:00Z")));
        assert!(!original.is_retried_by(&call("/a", 2), at("2026-11-10T12:10:00.001Z")));
        assert!(!original.is_retried_by(&call("/b", 2), at("2026-11-10T12:01:00Z")));
        assert!(!original.is_retried_by(&call("/a", 1), at("2026-11-10T12:01:00Z")));
        let tracked = Original {
            call: None,
            ..original
        };
        assert!(!tracked.is_retried_by(&call("/a", 2), at("2026-11-10T12:01:00Z")));
    }
}
