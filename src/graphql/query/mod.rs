//! The query root, merged from one object per area.

mod api_keys;
mod invoices;
mod me;
mod plans;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    me::MeQuery,
    plans::PlanQuery,
    api_keys::ApiKeyQuery,
    invoices::InvoiceQuery,
);
