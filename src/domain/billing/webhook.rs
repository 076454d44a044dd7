//! The billing provider's webhook (Stripe-compatible): checking the `Stripe-Signature` header and
//! applying subscription events to accounts — each event once, and never an older event over a
//! newer one.
//!
//! Plan changes made here reach ingestion on this instance at once (the key cache is emptied after
//! the commit). Other instances keep serving the old plan from their key cache for at most its
//! time to live (`TALLY_KEY_CACHE_TTL_SECONDS`, 5 s by default).

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Set,
    TransactionTrait,
};
use serde_json::Value;
use sha2::Sha256;

use crate::domain::accounts;
use crate::domain::keys::KeyCache;
use crate::domain::plans::PlanCode;
use crate::entity::{account, billing_webhook_event};
use crate::error::{AppError, AppResult};

/// How far the signed timestamp may be from our clock, either way.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// How long applied event ids are kept. The provider retries a failed delivery for a few days,
/// so a redelivery always finds its id.
pub const PROCESSED_EVENT_RETENTION_DAYS: i64 = 30;

const MAX_ID_LEN: usize = 255;

/// The parts of a `Stripe-Signature` header: `t=<unix>,v1=<hex>[,v1=<hex>...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// The timestamp exactly as sent: it is part of the signed payload.
    pub timestamp: String,
    pub timestamp_secs: i64,
    /// Every `v1` signature that is valid hex; other schemes (`v0`) are ignored.
    pub signatures: Vec<Vec<u8>>,
}

/// Parses a `Stripe-Signature` header; `None` when it has no timestamp or no `v1` signature.
pub fn parse_signature_header(header: &str) -> Option<SignatureHeader> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" if timestamp.is_none() => timestamp = Some(value.to_owned()),
            "v1" => {
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp?;
    let timestamp_secs = timestamp.parse::<i64>().ok()?;
    if signatures.is_empty() {
        return None;
    }
    Some(SignatureHeader {
        timestamp,
        timestamp_secs,
        signatures,
    })
}

fn invalid_signature() -> AppError {
    AppError::bad_input("Invalid signature")
}

/// Checks that `body` was signed with `secret` less than [`SIGNATURE_TOLERANCE_SECS`] from `now`.
/// Any one matching `v1` signature is enough (the provider sends several while a secret is being
/// rolled). Comparisons are constant-time.
pub fn verify_signature(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> AppResult<()> {
    let parsed = header
        .and_then(parse_signature_header)
        .ok_or_else(invalid_signature)?;
    let age = now.timestamp().saturating_sub(parsed.timestamp_secs);
    if age.abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(invalid_signature());
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(AppError::internal)?;
    mac.update(parsed.timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let matches = parsed
        .signatures
        .iter()
        .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
    if matches {
        Ok(())
    } else {
        Err(invalid_signature())
    }
}

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
pub fn parse_event(body: &[u8]) -> AppResult<Event> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| AppError::bad_input("Invalid JSON"))?;
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
        _ => Err(AppError::invalid_payload(problems)),
    }
}

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The account changed.
    Applied,
    /// This event id was applied before; nothing changed.
    Duplicate,
    /// A newer event was already applied to the account; nothing changed.
    Stale,
    /// A type we do not act on, or an event that does not name a plan change we understand.
    Ignored,
    /// No account matches the event; nothing changed.
    UnknownAccount,
}

/// How an event names its account.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Account(String),
    Customer(String),
}

/// What an event asks to change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    target: Target,
    customer: Option<String>,
    plan: Option<PlanCode>,
    /// `Some(None)` returns the account to calendar-month periods.
    period: Option<Option<(DateTime<Utc>, DateTime<Utc>)>>,
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
fn change_of(event: &Event) -> Option<Change> {
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

/// Applies one verified event at `now`.
///
/// The event id is inserted in the same transaction as the change, under a unique key: two
/// deliveries of one event — even concurrent ones — cannot both apply, and a failure leaves
/// neither the change nor the id behind, so the provider's retry applies it. The account row is
/// locked (PostgreSQL; SQLite has one writer at a time) while its last applied `created` is
/// compared with the event's, so an older event delivered late changes nothing.
pub async fn apply_event(
    db: &DatabaseConnection,
    keys: &KeyCache,
    event: &Event,
    now: DateTime<Utc>,
) -> AppResult<Outcome> {
    let Some(change) = change_of(event) else {
        tracing::info!(event_id = %event.id, event_type = %event.kind, "billing event ignored");
        return Ok(Outcome::Ignored);
    };

    let txn = db.begin().await?;
    // Claim the id first: on PostgreSQL a concurrent delivery of the same event waits here until
    // this transaction ends; on SQLite this write makes the transaction the only writer.
    let claimed = billing_webhook_event::Entity::insert(billing_webhook_event::ActiveModel {
        id: Set(event.id.clone()),
        event_type: Set(event.kind.clone()),
        account_id: Set(None),
        created: Set(event.created),
        received_at: Set(now),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(&txn)
    .await?;
    if !matches!(claimed, sea_orm::TryInsertResult::Inserted(rows) if rows > 0) {
        tracing::info!(event_id = %event.id, "billing event already applied");
        txn.rollback().await?;
        return Ok(Outcome::Duplicate);
    }

    let found = match &change.target {
        Target::Account(id) => {
            account::Entity::find_by_id(id.clone())
                .lock_exclusive()
                .one(&txn)
                .await?
        }
        Target::Customer(customer) => {
            account::Entity::find()
                .filter(account::Column::BillingCustomerId.eq(customer.clone()))
                .lock_exclusive()
                .one(&txn)
                .await?
        }
    };
    let Some(account) = found else {
        // Not recorded: once the account exists, a redelivery from the provider can still apply.
        tracing::warn!(
            event_id = %event.id,
            event_type = %event.kind,
            target = ?change.target,
            "billing event for an unknown account or customer: nothing changed"
        );
        txn.rollback().await?;
        return Ok(Outcome::UnknownAccount);
    };

    billing_webhook_event::Entity::update_many()
        .col_expr(
            billing_webhook_event::Column::AccountId,
            Expr::value(account.id.clone()),
        )
        .filter(billing_webhook_event::Column::Id.eq(event.id.clone()))
        .exec(&txn)
        .await?;

    if account
        .billing_event_created_at
        .is_some_and(|last| event.created < last)
    {
        tracing::info!(
            event_id = %event.id,
            account_id = %account.id,
            created = event.created,
            last_applied = account.billing_event_created_at,
            "billing event older than the last one applied: nothing changed"
        );
        txn.commit().await?;
        return Ok(Outcome::Stale);
    }

    if let Some(plan) = change.plan {
        if account.plan_code != plan.as_str() {
            accounts::set_plan(&txn, &account.id, plan, now).await?;
        }
    }
    let account_id = account.id.clone();
    let mut row: account::ActiveModel = account.into();
    row.billing_event_created_at = Set(Some(event.created));
    if let Some(customer) = change.customer {
        row.billing_customer_id = Set(Some(customer));
    }
    if let Some(period) = change.period {
        row.billing_period_start = Set(period.map(|(start, _)| start));
        row.billing_period_end = Set(period.map(|(_, end)| end));
    }
    row.update(&txn).await?;
    txn.commit().await?;

    // The cached account and plan behind every key are stale now; read them again.
    keys.forget_all();
    tracing::info!(
        event_id = %event.id,
        event_type = %event.kind,
        account_id = %account_id,
        plan = ?change.plan,
        "billing event applied"
    );
    Ok(Outcome::Applied)
}

/// Deletes applied event ids older than [`PROCESSED_EVENT_RETENTION_DAYS`]; returns how many.
pub async fn prune_processed_events(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<u64> {
    let cutoff = now - Duration::days(PROCESSED_EVENT_RETENTION_DAYS);
    let deleted = billing_webhook_event::Entity::delete_many()
        .filter(billing_webhook_event::Column::ReceivedAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], t: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn parses_timestamp_and_every_v1_signature() {
        let parsed = parse_signature_header("t=1700000000, v1=abcd,v0=ffff,v1=0102,v1=zz").unwrap();
        assert_eq!(parsed.timestamp, "1700000000");
        assert_eq!(parsed.timestamp_secs, 1_700_000_000);
        assert_eq!(parsed.signatures, vec![vec![0xab, 0xcd], vec![0x01, 0x02]]);
    }

    #[test]
    fn rejects_headers_without_timestamp_or_v1() {
        assert_eq!(parse_signature_header(""), None);
        assert_eq!(parse_signature_header("v1=abcd"), None);
        assert_eq!(parse_signature_header("t=123"), None);
        assert_eq!(parse_signature_header("t=123,v0=abcd"), None);
        assert_eq!(parse_signature_header("t=soon,v1=abcd"), None);
        assert_eq!(parse_signature_header("t=123,v1=not-hex"), None);
    }

    #[test]
    fn verifies_within_the_tolerance_only() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let body = br#"{"id":"evt_1"}"#;
        let t = "1700000000";
        let header = format!("t={t},v1={}", sign(b"whsec", t, body));
        assert!(verify_signature(b"whsec", Some(&header), body, now).is_ok());
        assert!(verify_signature(b"other", Some(&header), body, now).is_err());
        assert!(verify_signature(b"whsec", Some(&header), b"{}", now).is_err());
        assert!(verify_signature(b"whsec", None, body, now).is_err());
        let later = now + Duration::seconds(SIGNATURE_TOLERANCE_SECS);
        assert!(verify_signature(b"whsec", Some(&header), body, later).is_ok());
        let too_late = later + Duration::seconds(1);
        assert!(verify_signature(b"whsec", Some(&header), body, too_late).is_err());
    }

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
