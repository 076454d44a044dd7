//! Reading a (signature-checked) delivery: the fields every event has, then what an event we act
//! on asks to change — which account, which plan, which billing period.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::plans::PlanCode;

pub const MAX_ID_LEN: usize = 255;

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
    let value: Value = serde_json::from_slice(body).map_err(|_| DomainError::invalid_json())?;
    let mut problems: Vec<(&str, &str)> = Vec::new();
    let id = short_string(&value, "id", &mut problems);
    let kind = short_string(&value, "type", &mut problems);
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

/// The string `field` of the event, 1 to 255 characters; otherwise a problem named for it.
fn short_string(
    value: &Value,
    field: &'static str,
    problems: &mut Vec<(&str, &str)>,
) -> Option<String> {
    match value.get(field).and_then(Value::as_str) {
        Some(text) if !text.is_empty() && text.len() <= MAX_ID_LEN => Some(text.to_owned()),
        Some(_) => {
            problems.push((field, "must be 1 to 255 characters"));
            None
        }
        None => {
            problems.push((field, "is required and must be a string"));
            None
        }
    }
}

/// Why an event changed nothing. Each is logged with the event's id and counted in `/metrics`
/// under [`Ignored::as_str`], so that an operator sees what the provider sends that Tally cannot
/// place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// A type Tally does not act on (the provider sends many).
    UnhandledType,
    /// No account named: no `metadata.account_id`, and for a subscription no `customer` either.
    NoAccount,
    /// A checkout without `metadata.plan`.
    NoPlan,
    /// A `metadata.plan` that is no plan Tally knows, or FREE on a checkout.
    UnknownPlan,
    /// The account or customer named is not one of Tally's.
    UnknownAccount,
    /// Older (`created`) than the last event applied to the account.
    Stale,
}

impl Ignored {
    /// Why, in words, for the log.
    pub fn why(self) -> &'static str {
        match self {
            Ignored::UnhandledType => "a type Tally does not act on",
            Ignored::NoAccount => {
                "it names no account (no metadata.account_id, and for a subscription no customer)"
            }
            Ignored::NoPlan => "a checkout without metadata.plan",
            Ignored::UnknownPlan => {
                "metadata.plan is no plan Tally knows (a checkout takes pro or enterprise)"
            }
            Ignored::UnknownAccount => "no account has the account_id or customer it names",
            Ignored::Stale => "older than the last event applied to the account",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::UnhandledType => "unhandled_type",
            Ignored::NoAccount => "no_account",
            Ignored::NoPlan => "no_plan",
            Ignored::UnknownPlan => "unknown_plan",
            Ignored::UnknownAccount => "unknown_account",
            Ignored::Stale => "stale",
        }
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
    /// `Some(Some(..))` sets the provider's period; `Some(None)` ends it (the subscription is
    /// gone) and calendar months follow.
    pub(super) period: Option<Option<(DateTime<Utc>, DateTime<Utc>)>>,
}

/// The plan value an event sent (its first 64 characters), for the log of an event that names
/// none Tally knows.
pub(super) fn plan_value(event: &Event) -> Option<&str> {
    let plan = metadata_str(&event.object, "plan")?;
    Some(
        plan.char_indices()
            .nth(64)
            .map_or(plan, |(end, _)| &plan[..end]),
    )
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

fn target_of(object: &Value, customer: &Option<String>) -> Result<Target, Ignored> {
    metadata_str(object, "account_id")
        .map(|id| Target::Account(id.to_owned()))
        .or_else(|| customer.clone().map(Target::Customer))
        .ok_or(Ignored::NoAccount)
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

/// Reads what `event` asks for, or why there is nothing for us in it.
pub(super) fn change_of(event: &Event) -> Result<Change, Ignored> {
    let object = &event.object;
    let customer = customer_of(object);
    match event.kind.as_str() {
        CHECKOUT_COMPLETED => {
            let account_id = metadata_str(object, "account_id").ok_or(Ignored::NoAccount)?;
            let code = metadata_str(object, "plan").ok_or(Ignored::NoPlan)?;
            let plan = PlanCode::parse(code)
                .filter(|plan| *plan != PlanCode::Free)
                .ok_or(Ignored::UnknownPlan)?;
            Ok(Change {
                target: Target::Account(account_id.to_owned()),
                customer,
                plan: Some(plan),
                period: None,
            })
        }
        SUBSCRIPTION_UPDATED => {
            let target = target_of(object, &customer)?;
            let plan = match metadata_str(object, "plan") {
                Some(code) => Some(PlanCode::parse(code).ok_or(Ignored::UnknownPlan)?),
                None => None,
            };
            Ok(Change {
                target,
                customer,
                plan,
                period: period_of(object).map(Some),
            })
        }
        SUBSCRIPTION_DELETED => Ok(Change {
            target: target_of(object, &customer)?,
            customer,
            plan: Some(PlanCode::Free),
            period: Some(None),
        }),
        _ => Err(Ignored::UnhandledType),
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
