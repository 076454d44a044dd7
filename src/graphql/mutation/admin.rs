use async_graphql::{Context, Object, Result, ID};

use crate::domain::{accounts, plans};
use crate::graphql::context::{current_admin, now, state};
use crate::graphql::guard::AdminGuard;
use crate::graphql::object::{Account, Plan, PlanCode, PlanInput};

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    /// Moves an account to a plan, from now on.
    #[graphql(guard = "AdminGuard")]
    async fn admin_set_plan(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
        plan: PlanCode,
    ) -> Result<Account> {
        let admin = current_admin(ctx).await?;
        let state = state(ctx);
        let account = accounts::change_plan(
            &state.db,
            &state.invalidation,
            &account_id,
            plan.into(),
            now(ctx),
        )
        .await?;
        tracing::info!(
            admin = %admin.email,
            account_id = %account.id,
            plan = %account.plan_code,
            "admin moved an account to a plan"
        );
        Ok(Account(account))
    }

    /// Edits a plan's quota, prices or rate limit; every later request sees the new values.
    #[graphql(guard = "AdminGuard")]
    async fn admin_update_plan(
        &self,
        ctx: &Context<'_>,
        code: PlanCode,
        input: PlanInput,
    ) -> Result<Plan> {
        let admin = current_admin(ctx).await?;
        let state = state(ctx);
        let changes = format!("{input:?}");
        let plan = plans::update(
            &state.db,
            &state.invalidation,
            code.into(),
            input.into(),
            now(ctx),
        )
        .await?;
        tracing::info!(
            admin = %admin.email,
            plan = ?code,
            changes,
            "admin edited a plan"
        );
        Ok(plan.into())
    }
}
