use async_graphql::{Context, Object, Result, ID};

use crate::domain::billing::history::{self, InvoiceCursor};
use crate::graphql::context::{current_actor, state};
use crate::graphql::guard::PageFirst;
use crate::graphql::object::page::{connection, decode_after, CursorConnection, Position};
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

    /// The same invoices as `invoices`, a page at a time: `first` (1..=100) invoices after the
    /// cursor `after` (an `endCursor` of an earlier page).
    #[graphql(guard = "PageFirst(first)")]
    async fn invoices_connection(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        account_id: Option<ID>,
    ) -> Result<CursorConnection<Invoice>> {
        let actor = current_actor(ctx).await?;
        let after = decode_after(after.as_deref())?;
        let after_given = after.is_some();
        let cursor = after.map(|position| InvoiceCursor {
            period_start: position.at,
            id: position.id,
        });
        let first = usize::try_from(first).unwrap_or(0);
        let account_id = account_id.as_ref().map(|id| id.as_str());
        let page = history::page(&state(ctx).db, &actor, account_id, cursor, first).await?;
        Ok(connection(
            page,
            after_given,
            |invoice| Position {
                at: invoice.period_start,
                id: invoice.id.clone(),
            },
            Invoice,
        ))
    }
}
