use async_graphql::{Context, Object, Result, ID};

use crate::domain::billing::history;
use crate::graphql::context::{current_actor, state};
use crate::graphql::object::Invoice;

#[derive(Default)]
pub struct InvoiceQuery;

#[Object]
impl InvoiceQuery {
    /// Invoices of the caller's account, newest period first. Admins may name any account.
    async fn invoices(&self, ctx: &Context<'_>, account_id: Option<ID>) -> Result<Vec<Invoice>> {
        let actor = current_actor(ctx).await?;
        let account_id = account_id.as_ref().map(|id| id.as_str());
        let rows = history::list(&state(ctx).db, &actor, account_id).await?;
        Ok(rows.into_iter().map(Invoice).collect())
    }
}
