//! Guards checked before a resolver runs.

use async_graphql::{Context, ErrorExtensions, Guard, Result};

use crate::graphql::context::current_admin;

/// Admits admins only. The role is read from the database on every use, never from the token.
pub struct AdminGuard;

impl Guard for AdminGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        current_admin(ctx)
            .await
            .map(|_| ())
            .map_err(|err| err.extend())
    }
}
