//! Closing billing periods: one invoice per account and ended period, FREE accounts included, on
//! the plan in force at the period's end. Runs are idempotent and safe to race: the unique index
//! on (account, period start) turns a second insert for the same period into a no-op.
//!
//! Which periods exist for an account: its periods as they stand ([`Layout`]) — the stored
//! period counters, the provider's period, and calendar months cut around them — from its
//! creation on. No invoice covers time before the account existed: a period that ended before
//! its creation is never invoiced (calls dated before the account, which ingestion once accepted,
//! bill nothing), and the first invoice starts at the creation instant. That first, partial
//! period is billed at the full plan price (no proration), as is every period the provider's
//! cuts short.
//!
//! Plan prices are read when the run happens; plan *assignments* are read as of the period's end
//! (before the account's first plan change: the plan it was created with, never its current
//! one), so a late run bills what a punctual one would have.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use crate::domain::accounts::new_id;
use crate::domain::billing::invoice;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::periods::{BillingPeriod, Layout};
use crate::entity::{account, account_plan_change, invoice as invoice_row, plan, usage_period};

/// What a billing run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub invoices_created: i64,
    /// Sum of the totals of the invoices this run created.
    pub total_cents: i64,
}

const ACCOUNTS_PER_PAGE: u64 = 500;

/// Invoices every account for every period that ended at or before `as_of`; `now` stamps the
/// invoices.
pub async fn close_ended_periods(
    db: &DatabaseConnection,
    as_of: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DomainResult<RunSummary> {
    let plans: HashMap<String, plan::Model> = plan::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.code.clone(), p))
        .collect();
    let mut summary = RunSummary::default();
    let mut pages = account::Entity::find()
        .order_by_asc(account::Column::Id)
        .paginate(db, ACCOUNTS_PER_PAGE);
    while let Some(accounts) = pages.fetch_and_next().await? {
        for account in accounts {
            let done = close_account(db, &plans, &account, as_of, now).await?;
            summary.invoices_created += done.invoices_created;
            summary.total_cents += done.total_cents;
        }
    }
    if summary.invoices_created > 0 {
        tracing::info!(
            invoices = summary.invoices_created,
            total_cents = summary.total_cents,
            as_of = %as_of,
            "billing run closed periods"
        );
    }
    Ok(summary)
}

/// Invoices the account's ended periods. Most accounts have none to invoice on a given run: a
/// look without locks finds that. Otherwise the periods are read again under the account's lock
/// (its row on PostgreSQL, the write lock on SQLite), which a change of the provider's period
/// holds while it lays the periods out anew: the run bills the periods as they are before that
/// change or after it, never a period the change is cutting.
async fn close_account(
    db: &DatabaseConnection,
    plans: &HashMap<String, plan::Model>,
    account: &account::Model,
    as_of: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DomainResult<RunSummary> {
    if due_invoices(db, plans, account, as_of, now)
        .await?
        .is_empty()
    {
        return Ok(RunSummary::default());
    }
    let txn = crate::db::begin_read_write(db).await?;
    let Some(account) = account::Entity::find_by_id(account.id.clone())
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(RunSummary::default());
    };
    let mut summary = RunSummary::default();
    for (due, total_cents) in due_invoices(&txn, plans, &account, as_of, now).await? {
        let inserted = invoice_row::Entity::insert(due)
            .on_conflict(
                OnConflict::columns([
                    invoice_row::Column::AccountId,
                    invoice_row::Column::PeriodStart,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        if inserted > 0 {
            summary.invoices_created += 1;
            summary.total_cents += total_cents;
        }
    }
    txn.commit().await?;
    Ok(summary)
}

/// The invoices (with their totals in cents) of the account's periods that ended at or before
/// `as_of` and are not invoiced yet, oldest first.
async fn due_invoices(
    db: &impl ConnectionTrait,
    plans: &HashMap<String, plan::Model>,
    account: &account::Model,
    as_of: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DomainResult<Vec<(invoice_row::ActiveModel, i64)>> {
    let as_of_ms = as_of.timestamp_millis();
    let counted: Vec<usage_period::Model> = usage_period::Entity::find()
        .filter(usage_period::Column::AccountId.eq(account.id.as_str()))
        .filter(usage_period::Column::PeriodStart.lt(as_of_ms))
        .all(db)
        .await?;
    let invoiced: Vec<(i64, i64)> = invoice_row::Entity::find()
        .filter(invoice_row::Column::AccountId.eq(account.id.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|i| (i.period_start, i.period_end))
        .collect();
    let layout = Layout::new(
        counted.iter().map(|p| (p.period_start, p.period_end)),
        invoiced.iter().copied(),
        Layout::of_account(account).provider(),
    );
    let ended = ended_uninvoiced(&layout, account, &invoiced, as_of);
    if ended.is_empty() {
        return Ok(Vec::new());
    }
    let changes: Vec<account_plan_change::Model> = account_plan_change::Entity::find()
        .filter(account_plan_change::Column::AccountId.eq(account.id.as_str()))
        .order_by_asc(account_plan_change::Column::EffectiveAt)
        .order_by_asc(account_plan_change::Column::Id)
        .all(db)
        .await?;
    let calls_by_range: HashMap<(i64, i64), i64> = counted
        .iter()
        .map(|p| ((p.period_start, p.period_end), p.calls))
        .collect();

    let mut due = Vec::with_capacity(ended.len());
    for (counted, period) in ended {
        let code = plan_at(&changes, period.end).unwrap_or(account.initial_plan_code.as_str());
        let plan = plans.get(code).ok_or_else(|| {
            DomainError::internal(anyhow::anyhow!(
                "plan {code} of account {} is missing",
                account.id
            ))
        })?;
        let calls = calls_by_range
            .get(&(counted.start_ms(), counted.end_ms()))
            .copied()
            .unwrap_or(0);
        due.push(invoice_of(account, plan, period, calls, now));
    }
    Ok(due)
}

/// The periods (as counted, and as billed: from the account's creation on) that ended at or
/// before `as_of` and have no invoice yet.
fn ended_uninvoiced(
    layout: &Layout,
    account: &account::Model,
    invoiced: &[(i64, i64)],
    as_of: DateTime<Utc>,
) -> Vec<(BillingPeriod, BillingPeriod)> {
    layout
        .periods_between(account.created_at, as_of)
        .into_iter()
        .filter(|period| period.end <= as_of)
        .filter_map(|counted| Some((counted, counted.since(account.created_at)?)))
        // An invoice written before first periods started at the account's creation began with
        // the counted period: either start means the period is billed.
        .filter(|(counted, period)| {
            !invoiced
                .iter()
                .any(|(start, _)| *start == period.start_ms() || *start == counted.start_ms())
        })
        .collect()
}

/// The invoice row of `period` billed on `plan` for `calls`, with its total in cents.
fn invoice_of(
    account: &account::Model,
    plan: &plan::Model,
    period: BillingPeriod,
    calls: i64,
    now: DateTime<Utc>,
) -> (invoice_row::ActiveModel, i64) {
    let lines = invoice::lines(plan, calls);
    let invoice = invoice_row::ActiveModel {
        id: Set(new_id()),
        account_id: Set(account.id.clone()),
        period_start: Set(period.start_ms()),
        period_end: Set(period.end_ms()),
        plan_code: Set(plan.code.clone()),
        calls: Set(lines.calls),
        included_calls: Set(lines.included_calls),
        overage_calls: Set(lines.overage_calls),
        overage_price_micros: Set(lines.overage_price_micros),
        base_cents: Set(lines.base_cents),
        overage_cents: Set(lines.overage_cents),
        total_cents: Set(lines.total_cents),
        created_at: Set(now.timestamp_millis()),
    };
    (invoice, lines.total_cents)
}

/// The plan code in force just before `end` (a change at `end` itself belongs to the next period).
fn plan_at(changes: &[account_plan_change::Model], end: DateTime<Utc>) -> Option<&str> {
    changes
        .iter()
        .rev()
        .find(|change| change.effective_at < end)
        .map(|change| change.plan_code.as_str())
}
