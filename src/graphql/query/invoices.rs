use async_graphql::{Context, ErrorExtensions, Object, Result, ID};

use crate::domain::billing::history;
use crate::error::AppError;
use crate::graphql::context::{current_actor, state};
use crate::graphql::object::Invoice;

#[derive(Default)]
pub struct InvoiceQuery;

#[Object]
impl InvoiceQuery {
    /// Invoices of the caller's account, newest period first. Admins may name any account.
    async fn invoices(&self, ctx: &Context<'_>, account_id: Option<ID>) -> Result<Vec<Invoice>> {
        let run = async {
            let actor = current_actor(ctx).await?;
            let rows = history::list(
                &state(ctx).db,
                &actor,
                account_id.as_ref().map(|id| id.as_str()),
            )
            .await?;
            Ok(rows.into_iter().map(Invoice).collect())
        };
        run.await.map_err(|err: AppError| err.extend())
    }
}
