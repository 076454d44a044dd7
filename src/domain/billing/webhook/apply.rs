//! Applying an event to its account, once per event id, and forgetting the ids once the provider
//! can no longer redeliver them.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QuerySelect, Set, TransactionTrait,
};

use super::event::{self, change_of, plan_value, Event, Ignored, Target};
use crate::domain::accounts;
use crate::domain::error::DomainResult;
use crate::domain::invalidation::{Change, Invalidation};
use crate::domain::periods::placement::{self, ProviderPeriod};
use crate::domain::periods::BillingPeriod;
use crate::entity::{account, billing_webhook_event};

/// How long applied event ids are kept. The provider retries a failed delivery for a few days,
/// so a redelivery always finds its id.
pub const PROCESSED_EVENT_RETENTION_DAYS: i64 = 30;

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The account changed.
    Applied,
    /// This event id was applied before; nothing changed.
    Duplicate,
    /// Nothing changed, for this reason (logged with the event's id).
    Ignored(Ignored),
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
    invalidation: &Invalidation,
    event: &Event,
    now: DateTime<Utc>,
) -> DomainResult<Outcome> {
    let change = match change_of(event) {
        Ok(change) => change,
        Err(reason) => {
            log_ignored(event, reason);
            return Ok(Outcome::Ignored(reason));
        }
    };

    let txn = db.begin().await?;
    if !claim(&txn, event, now).await? {
        tracing::info!(event_id = %event.id, "billing event already applied");
        txn.rollback().await?;
        return Ok(Outcome::Duplicate);
    }
    let Some(account) = lock_target(&txn, &change.target).await? else {
        // Not recorded: once the account exists, a redelivery from the provider can still apply.
        log_unknown_account(event, &change.target);
        txn.rollback().await?;
        return Ok(Outcome::Ignored(Ignored::UnknownAccount));
    };
    attribute(&txn, event, &account.id).await?;
    if is_stale(event, &account) {
        txn.commit().await?;
        return Ok(Outcome::Ignored(Ignored::Stale));
    }

    let account_id = account.id.clone();
    let plan = change.plan;
    let placed = change_account(&txn, account, change, event, now).await?;
    txn.commit().await?;

    // The cached account and plan behind every key are stale now; read them again. Calls moved
    // between periods: every instance reads the period counters again.
    invalidation.announce(db, Change::AllKeys).await;
    if placed.is_some() {
        invalidation
            .announce(db, Change::Usage(account_id.clone()))
            .await;
    }
    tracing::info!(
        event_id = %event.id,
        event_type = %event.kind,
        account_id = %account_id,
        plan = ?plan,
        "billing event applied"
    );
    Ok(Outcome::Applied)
}

/// Inserts the event's id; false when it was there already (applied before). Claimed first: on
/// PostgreSQL a concurrent delivery of the same event waits here until this transaction ends; on
/// SQLite this write makes the transaction the only writer.
async fn claim(txn: &DatabaseTransaction, event: &Event, now: DateTime<Utc>) -> DomainResult<bool> {
    let claimed = billing_webhook_event::Entity::insert(billing_webhook_event::ActiveModel {
        id: Set(event.id.clone()),
        event_type: Set(event.kind.clone()),
        account_id: Set(None),
        created: Set(event.created),
        received_at: Set(now),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(txn)
    .await?;
    Ok(matches!(claimed, sea_orm::TryInsertResult::Inserted(rows) if rows > 0))
}

/// The account the event is about, its row locked.
async fn lock_target(
    txn: &DatabaseTransaction,
    target: &Target,
) -> DomainResult<Option<account::Model>> {
    let found = match target {
        Target::Account(id) => {
            account::Entity::find_by_id(id.clone())
                .lock_exclusive()
                .one(txn)
                .await?
        }
        Target::Customer(customer) => {
            account::Entity::find()
                .filter(account::Column::BillingCustomerId.eq(customer.clone()))
                .lock_exclusive()
                .one(txn)
                .await?
        }
    };
    Ok(found)
}

/// Records which account the claimed event was about.
async fn attribute(txn: &DatabaseTransaction, event: &Event, account_id: &str) -> DomainResult<()> {
    billing_webhook_event::Entity::update_many()
        .col_expr(
            billing_webhook_event::Column::AccountId,
            Expr::value(account_id.to_owned()),
        )
        .filter(billing_webhook_event::Column::Id.eq(event.id.clone()))
        .exec(txn)
        .await?;
    Ok(())
}

/// True (and logged) when the account has applied an event created after this one.
fn is_stale(event: &Event, account: &account::Model) -> bool {
    let stale = account
        .billing_event_created_at
        .is_some_and(|last| event.created < last);
    if stale {
        tracing::info!(
            event_id = %event.id,
            account_id = %account.id,
            reason = Ignored::Stale.as_str(),
            created = event.created,
            last_applied = account.billing_event_created_at,
            "billing event ignored: {}; nothing changed",
            Ignored::Stale.why()
        );
    }
    stale
}

/// Makes the event's change to the account: its plan, its provider period (calls moved along)
/// and customer, and the event's `created` as the last applied; the period placed, if any.
async fn change_account(
    txn: &DatabaseTransaction,
    account: account::Model,
    change: event::Change,
    event: &Event,
    now: DateTime<Utc>,
) -> DomainResult<Option<BillingPeriod>> {
    if let Some(plan) = change.plan {
        if account.plan_code != plan.as_str() {
            accounts::set_plan(txn, &account.id, plan, now).await?;
        }
    }
    let placed = match change.period {
        Some(asked) => {
            let asked = match asked {
                Some((start, end)) => ProviderPeriod::Set(BillingPeriod { start, end }),
                None => ProviderPeriod::End,
            };
            placement::place(txn, &account, asked, now).await?
        }
        None => None,
    };
    let mut row: account::ActiveModel = account.into();
    row.billing_event_created_at = Set(Some(event.created));
    if let Some(customer) = change.customer {
        row.billing_customer_id = Set(Some(customer));
    }
    if let Some(period) = placed {
        row.billing_period_start = Set(Some(period.start));
        row.billing_period_end = Set(Some(period.end));
    }
    row.update(txn).await?;
    Ok(placed)
}

/// Logs an event that names no change Tally can make: at WARN, since the provider's setup (or
/// Tally's) needs a look, except for the many types Tally does not act on.
fn log_ignored(event: &Event, reason: Ignored) {
    let plan = plan_value(event).unwrap_or("-");
    if reason == Ignored::UnhandledType {
        tracing::info!(event_id = %event.id, event_type = %event.kind, reason = reason.as_str(), "billing event ignored: {}", reason.why());
    } else {
        tracing::warn!(
            event_id = %event.id,
            event_type = %event.kind,
            reason = reason.as_str(),
            plan,
            "billing event ignored: {}; nothing changed",
            reason.why()
        );
    }
}

fn log_unknown_account(event: &Event, target: &Target) {
    tracing::warn!(
        event_id = %event.id,
        event_type = %event.kind,
        reason = Ignored::UnknownAccount.as_str(),
        target = ?target,
        "billing event ignored: {}; nothing changed",
        Ignored::UnknownAccount.why()
    );
}

/// Deletes applied event ids older than [`PROCESSED_EVENT_RETENTION_DAYS`]; returns how many.
pub async fn prune_processed_events(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> DomainResult<u64> {
    let cutoff = now - Duration::days(PROCESSED_EVENT_RETENTION_DAYS);
    let deleted = billing_webhook_event::Entity::delete_many()
        .filter(billing_webhook_event::Column::ReceivedAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}
