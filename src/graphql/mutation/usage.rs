use async_graphql::{Context, Object, Result, ID};

use crate::domain::usage;
use crate::graphql::context::{current_admin, now, state};
use crate::graphql::guard::AdminGuard;
use crate::graphql::object::UsagePeriod;

#[derive(Default)]
pub struct UsageMutation;

#[Object]
impl UsageMutation {
    /// Sets the calls of an account's current billing period back to zero. The quota gate drops
    /// its in-memory counters of the account, so the next request starts from the reset count.
    #[graphql(guard = "AdminGuard")]
    async fn admin_reset_usage(&self, ctx: &Context<'_>, account_id: ID) -> Result<UsagePeriod> {
        let admin = current_admin(ctx).await?;
        let state = state(ctx);
        let usage =
            usage::reset_usage(&state.db, &state.invalidation, &account_id, now(ctx)).await?;
        tracing::info!(
            admin = %admin.email,
            account_id = %account_id.as_str(),
            "admin reset an account's usage"
        );
        Ok(usage.into())
    }
}
