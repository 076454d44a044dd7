use async_graphql::{Context, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::domain::error::DomainError;
use crate::domain::periods::BillingPeriod;
use crate::entity::account;
use crate::graphql::context::now;
use crate::graphql::loader::{self, UsageKey};
use crate::graphql::object::{Plan, UsagePeriod};

/// Who is billed: an account with its plan.
pub struct Account(pub account::Model);

impl Account {
    /// The key under which `Account::current_usage` loads.
    pub fn usage_key(&self, now: chrono::DateTime<Utc>) -> UsageKey {
        UsageKey {
            account_id: self.0.id.clone(),
            period: BillingPeriod::for_account(&self.0, now),
        }
    }
}

#[Object]
impl Account {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn plan(&self, ctx: &Context<'_>) -> Result<Plan> {
        loader::get(ctx)?
            .load_one(self.0.plan_code.clone())
            .await?
            .map(Plan::from)
            .ok_or_else(|| {
                DomainError::internal(anyhow::anyhow!(
                    "plan {} missing from the database",
                    self.0.plan_code
                ))
                .into()
            })
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Usage of the account's current billing period. Loaded in one batch for a whole page.
    async fn current_usage(&self, ctx: &Context<'_>) -> Result<UsagePeriod> {
        let key = self.usage_key(now(ctx));
        loader::get(ctx)?
            .load_one(key)
            .await?
            .map(|usage| UsagePeriod::from(usage.since_creation(self.0.created_at)))
            .ok_or_else(|| DomainError::not_found("Account not found").into())
    }
}

/// A page of accounts.
#[derive(SimpleObject)]
pub struct AccountPage {
    pub nodes: Vec<Account>,
    /// Accounts matching the filter, on every page together.
    pub total_count: i64,
    pub limit: i64,
    pub offset: i64,
}
