//! Guards checked before a resolver runs.

use async_graphql::{Context, Guard, Result};

use crate::graphql::context::current_admin;

/// Admits admins only. The role is read from the database on every use, never from the token.
pub struct AdminGuard;

impl Guard for AdminGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        current_admin(ctx).await?;
        Ok(())
    }
}

/// Refuses a page size outside 1..=100 (`BAD_USER_INPUT`) before any other check or database work.
pub struct PageLimit(pub i64);

impl Guard for PageLimit {
    async fn check(&self, _ctx: &Context<'_>) -> Result<()> {
        Ok(crate::domain::paging::check_limit(self.0)?)
    }
}

/// Refuses a cursor page size (`first`) outside 1..=100 (`BAD_USER_INPUT`) before any other
/// check or database work.
pub struct PageFirst(pub i32);

impl Guard for PageFirst {
    async fn check(&self, _ctx: &Context<'_>) -> Result<()> {
        let first = usize::try_from(self.0).unwrap_or(0);
        Ok(crate::domain::paging::check_first(first)?)
    }
}
