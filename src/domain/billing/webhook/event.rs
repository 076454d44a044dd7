//! Reading a (signature-checked) delivery: the fields every event has, then what an event we act
//! on asks to change — which account, which plan, which billing period.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::error::{messages, DomainError, DomainResult};
use crate::domain::plans::PlanCode;

const MAX_ID_LEN: usize = 255;

/// A provider event with the fields every event has.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub kind: String,
    /// Unix seconds, the provider's clock.
    pub created: i64,
    /// `data.object`; `Value::Null` when absent.
    pub object: Value,
}

pub const CHECKOUT_COMPLETED: &str = "checkout.session.completed";
pub const SUBSCRIPTION_UPDATED: &str = "customer.subscription.updated";
pub const SUBSCRIPTION_DELETED: &str = "customer.subscription.deleted";

fn is_handled(kind: &str) -> bool {
    matches!(
        kind,
        CHECKOUT_COMPLETED | SUBSCRIPTION_UPDATED | SUBSCRIPTION_DELETED
    )
}

/// Parses a (signature-checked) body. Bytes that are not JSON are "Invalid JSON"; JSON without
/// a usable `id`, `type` or `created` (or, for an event we act on, `data.object`) is
/// "Invalid payload" with the fields named.
pub fn parse_event(body: &[u8]) -> DomainResult<Event> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| DomainError::bad_input(messages::INVALID_JSON))?;
    let mut problems: Vec<(&str, &str)> = Vec::new();
    let id = match value.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() && id.len() <= MAX_ID_LEN => Some(id.to_owned()),
        Some(_) => {
            problems.push(("id", "must be 1 to 255 characters"));
            None
        }
        None => {
            problems.push(("id", "is required and must be a string"));
            None
        }
    };
    let kind = match value.get("type").and_then(Value::as_str) {
        Some(kind) if !kind.is_empty() && kind.len() <= MAX_ID_LEN => Some(kind.to_owned()),
        Some(_) => {
            problems.push(("type", "must be 1 to 255 characters"));
            None
        }
        None => {
            problems.push(("type", "is required and must be a string"));
            None
        }
    };
    let created = match value.get("created").and_then(Value::as_i64) {
        Some(created) if created >= 0 => Some(created),
        _ => {
            problems.push(("created", "is required and must be a unix timestamp"));
            None
        }
    };
    let object = value
        .get("data")
        .and_then(|data| data.get("object"))
        .cloned()
        .unwrap_or(Value::Null);
    if kind.as_deref().is_some_and(is_handled) && !object.is_object() {
        problems.push(("data.object", "is required and must be an object"));
    }
    match (id, kind, created) {
        (Some(id), Some(kind), Some(created)) if problems.is_empty() => Ok(Event {
            id,
            kind,
            created,
            object,
        }),
        _ => Err(DomainError::invalid_payload(problems)),
    }
}

/// How an event names its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Account(String),
    Customer(String),
}

/// What an event asks to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Change {
    pub(super) target: Target,
    pub(super) customer: Option<String>,
    pub(super) plan: Option<PlanCode>,
    /// `Some(None)` returns the account to calendar-month periods.
    pub(super) period: Option<Option<(DateTime<Utc>, DateTime<Utc>)>>,
}

fn metadata_str<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `customer` is an id, or the customer object itself when the provider expanded it.
fn customer_of(object: &Value) -> Option<String> {
    let customer = object.get("customer")?;
    customer
        .as_str()
        .or_else(|| customer.get("id").and_then(Value::as_str))
        .filter(|c| !c.is_empty() && c.len() <= MAX_ID_LEN)
        .map(str::to_owned)
}

fn target_of(object: &Value, customer: &Option<String>) -> Option<Target> {
    metadata_str(object, "account_id")
        .map(|id| Target::Account(id.to_owned()))
        .or_else(|| customer.clone().map(Target::Customer))
}

/// The subscription's period: `current_period_start/end` on the subscription, or on its first
/// item (where newer provider API versions put it).
fn period_of(object: &Value) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let read = |source: &Value| {
        let start = source.get("current_period_start")?.as_i64()?;
        let end = source.get("current_period_end")?.as_i64()?;
        Some((start, end))
    };
    let (start, end) = read(object).or_else(|| {
        object
            .get("items")
            .and_then(|items| items.get("data"))
            .and_then(|data| data.get(0))
            .and_then(read)
    })?;
    let start = DateTime::from_timestamp(start, 0)?;
    let end = DateTime::from_timestamp(end, 0)?;
    (start < end).then_some((start, end))
}

/// Reads what `event` asks for; `None` when there is nothing for us in it.
pub(super) fn change_of(event: &Event) -> Option<Change> {
    let object = &event.object;
    let customer = customer_of(object);
    match event.kind.as_str() {
        CHECKOUT_COMPLETED => {
            let account_id = metadata_str(object, "account_id")?;
            let plan = metadata_str(object, "plan")
                .and_then(PlanCode::parse)
                .filter(|plan| *plan != PlanCode::Free)?;
            Some(Change {
                target: Target::Account(account_id.to_owned()),
                customer,
                plan: Some(plan),
                period: None,
            })
        }
        SUBSCRIPTION_UPDATED => {
            let plan = match metadata_str(object, "plan") {
                Some(code) => Some(PlanCode::parse(code)?),
                None => None,
            };
            Some(Change {
                target: target_of(object, &customer)?,
                customer,
                plan,
                period: period_of(object).map(Some),
            })
        }
        SUBSCRIPTION_DELETED => Some(Change {
            target: target_of(object, &customer)?,
            customer,
            plan: Some(PlanCode::Free),
            period: Some(None),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_subscription_period_from_the_object_or_its_first_item() {
        let direct = serde_json::json!({ "current_period_start": 100, "current_period_end": 200 });
        let nested = serde_json::json!({ "items": { "data": [
            { "current_period_start": 100, "current_period_end": 200 }
        ] } });
        let expected = Some((
            DateTime::from_timestamp(100, 0).unwrap(),
            DateTime::from_timestamp(200, 0).unwrap(),
        ));
        assert_eq!(period_of(&direct), expected);
        assert_eq!(period_of(&nested), expected);
        let backwards =
            serde_json::json!({ "current_period_start": 200, "current_period_end": 100 });
        assert_eq!(period_of(&backwards), None);
    }
}
