//! The mutation root, merged from one object per area.

mod admin;
mod api_keys;
mod auth;
mod billing;
mod usage;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    auth::AuthMutation,
    api_keys::ApiKeyMutation,
    admin::AdminMutation,
    billing::BillingMutation,
    usage::UsageMutation,
);
