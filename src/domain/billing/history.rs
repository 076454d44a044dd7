//! Reading invoices: members see their own account's, admins any account's.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::domain::accounts::{self, Role};
use crate::domain::api_keys::Actor;
use crate::domain::error::{DomainError, DomainResult};
use crate::entity::invoice;

/// Invoices of `account_id` (the actor's own account when `None`), newest period first. Another
/// account's invoices read as not found for a member.
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    account_id: Option<&str>,
) -> DomainResult<Vec<invoice::Model>> {
    let account_id = account_id.unwrap_or(&actor.account_id);
    if account_id != actor.account_id {
        let visible =
            actor.role == Role::Admin && accounts::find_account(db, account_id).await?.is_some();
        if !visible {
            return Err(DomainError::not_found("Account not found"));
        }
    }
    Ok(invoice::Entity::find()
        .filter(invoice::Column::AccountId.eq(account_id))
        .order_by_desc(invoice::Column::PeriodStart)
        .all(db)
        .await?)
}
