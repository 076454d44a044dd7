use async_graphql::{Context, ErrorExtensions, Object, Result, ID};
use chrono::{DateTime, Utc};

use crate::domain::plans::{self, PlanCode as DomainPlanCode};
use crate::entity::account;
use crate::graphql::context::state;
use crate::graphql::object::{Plan, PlanCode};

/// Who is billed: an account with its plan.
pub struct Account(pub account::Model);

#[Object]
impl Account {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn plan(&self, ctx: &Context<'_>) -> Result<Plan> {
        let code: DomainPlanCode = PlanCode::from_stored(&self.0.plan_code).into();
        plans::get(&state(ctx).db, code)
            .await
            .map(Plan::from)
            .map_err(|err| err.extend())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
