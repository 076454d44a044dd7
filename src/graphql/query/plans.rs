use async_graphql::{Context, Object, Result};

use crate::domain::plans;
use crate::graphql::context::state;
use crate::graphql::object::Plan;

#[derive(Default)]
pub struct PlanQuery;

#[Object]
impl PlanQuery {
    /// Every plan, cheapest first. Public: a pricing page needs no sign-in.
    async fn plans(&self, ctx: &Context<'_>) -> Result<Vec<Plan>> {
        let all = plans::list(&state(ctx).db).await?;
        Ok(all.into_iter().map(Plan::from).collect())
    }
}
