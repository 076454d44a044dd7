//! The query root, merged from one object per area.

mod admin;
mod api_keys;
mod invoices;
mod me;
mod plans;
mod usage;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    me::MeQuery,
    plans::PlanQuery,
    api_keys::ApiKeyQuery,
    invoices::InvoiceQuery,
    usage::UsageQuery,
    admin::AdminQuery,
);
