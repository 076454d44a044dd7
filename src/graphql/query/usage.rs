use async_graphql::{Context, Object, Result};

use crate::domain::analytics::Ranking;
use crate::domain::error::DomainError;
use crate::domain::{accounts, analytics, paging};
use crate::graphql::context::{current_user, now, state};
use crate::graphql::guard::PageLimit;
use crate::graphql::object::{DailyUsage, EndpointStat, ToolStat, UsagePeriod};

/// The caller's own account's usage and statistics.
#[derive(Default)]
pub struct UsageQuery;

#[Object]
impl UsageQuery {
    /// Usage of the caller's account in its current billing period.
    async fn current_usage(&self, ctx: &Context<'_>) -> Result<UsagePeriod> {
        let user = current_user(ctx).await?;
        let db = &state(ctx).db;
        let account = accounts::find_account(db, &user.account_id)
            .await?
            .ok_or_else(|| DomainError::internal(anyhow::anyhow!("user without account")))?;
        Ok(analytics::current_usage(db, &account, now(ctx))
            .await?
            .into())
    }

    /// One entry per UTC day of the last `days` days (1..=366) ending today, oldest first, days
    /// without calls included. Calls are billable calls: API calls by their `cost`, and tool uses.
    async fn usage_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i64,
    ) -> Result<Vec<DailyUsage>> {
        paging::check_days(days)?;
        let user = current_user(ctx).await?;
        let rows =
            analytics::usage_history(&state(ctx).db, &user.account_id, days, now(ctx)).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// API calls of the last `days` days by (method, endpoint), most (billable) calls first. Calls
    /// reported without a method or endpoint show under `(unspecified)`.
    #[graphql(guard = "PageLimit(limit)")]
    async fn endpoint_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 7)] days: i64,
        #[graphql(default = 50)] limit: i64,
    ) -> Result<Vec<EndpointStat>> {
        let ranking = Ranking::checked(now(ctx), days, limit)?;
        let user = current_user(ctx).await?;
        let rows = analytics::endpoint_stats(&state(ctx).db, &user.account_id, ranking).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Hook tool uses and installs of the last `days` days by (skill, tool), most first.
    #[graphql(guard = "PageLimit(limit)")]
    async fn tool_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 7)] days: i64,
        #[graphql(default = 50)] limit: i64,
    ) -> Result<Vec<ToolStat>> {
        let ranking = Ranking::checked(now(ctx), days, limit)?;
        let user = current_user(ctx).await?;
        let rows = analytics::tool_stats(&state(ctx).db, &user.account_id, ranking).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
