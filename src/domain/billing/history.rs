//! Reading invoices: members see their own account's, admins any account's.

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};

use crate::domain::accounts::{self, Role};
use crate::domain::api_keys::Actor;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::paging::{self, check_first, After, CursorPage};
use crate::entity::invoice;

/// Invoices of `account_id` (the actor's own account when `None`), newest period first. Another
/// account's invoices read as not found for a member.
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    account_id: Option<&str>,
) -> DomainResult<Vec<invoice::Model>> {
    let account_id = visible_account(db, actor, account_id).await?;
    Ok(invoice::Entity::find()
        .filter(invoice::Column::AccountId.eq(account_id))
        .order_by_desc(invoice::Column::PeriodStart)
        .all(db)
        .await?)
}

/// Where a page of invoices starts: after the invoice of the period starting at `period_start`
/// (unix ms) with id `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceCursor {
    pub period_start: i64,
    pub id: String,
}

/// Invoices in [`list`]'s order (ties by id, newest first), `first` of them after `after`.
pub async fn page(
    db: &DatabaseConnection,
    actor: &Actor,
    account_id: Option<&str>,
    after: Option<InvoiceCursor>,
    first: usize,
) -> DomainResult<CursorPage<invoice::Model>> {
    use invoice::Column;
    check_first(first)?;
    let account_id = visible_account(db, actor, account_id).await?;
    let total = invoice::Entity::find()
        .filter(Column::AccountId.eq(account_id))
        .count(db)
        .await?;
    let after = after.map(|after| After {
        value: after.period_start.into(),
        id: after.id,
    });
    let query = invoice::Entity::find().filter(Column::AccountId.eq(account_id));
    let keyset = (Column::PeriodStart, Column::Id);
    paging::newest_first(db, query, keyset, after, first, total).await
}

/// The account whose invoices are asked for: the actor's own when `None`; another one only for
/// an admin (to a member it reads as not found).
async fn visible_account<'a>(
    db: &DatabaseConnection,
    actor: &'a Actor,
    account_id: Option<&'a str>,
) -> DomainResult<&'a str> {
    let account_id = account_id.unwrap_or(&actor.account_id);
    if account_id != actor.account_id {
        let visible =
            actor.role == Role::Admin && accounts::find_account(db, account_id).await?.is_some();
        if !visible {
            return Err(DomainError::not_found("Account not found"));
        }
    }
    Ok(account_id)
}
