//! The query root, merged from one object per area.

mod admin;
mod api_keys;
mod me;
mod plans;
mod usage;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    me::MeQuery,
    plans::PlanQuery,
    api_keys::ApiKeyQuery,
    usage::UsageQuery,
    admin::AdminQuery,
);
