use async_graphql::{Context, Object, Result};

use crate::domain::analytics::Ranking;
use crate::domain::{accounts, analytics};
use crate::graphql::context::{now, state};
use crate::graphql::guard::{AdminGuard, PageLimit};
use crate::graphql::loader;
use crate::graphql::object::{Account, AccountPage, AdminOverview, InstallStat, PlanCode};

/// The installation seen by an admin.
#[derive(Default)]
pub struct AdminQuery;

#[Object]
impl AdminQuery {
    /// Accounts by plan, calls of all accounts today and this month, and revenue.
    #[graphql(guard = "AdminGuard")]
    async fn admin_overview(&self, ctx: &Context<'_>) -> Result<AdminOverview> {
        Ok(analytics::overview(&state(ctx).db, now(ctx)).await?.into())
    }

    /// Installs of the last `days` days (1..=366, ending today, UTC) by skill, platform and
    /// version, anonymous and attributed ones alike, most installs first; `limit` 1..=100. Read
    /// from daily install rollups, which outlive the pruning of raw events: the window is exactly
    /// the days asked. Installs recorded before these rollups existed count only when their raw
    /// event was still stored at the upgrade (within the event retention period).
    #[graphql(guard = "PageLimit(limit).and(AdminGuard)")]
    async fn admin_installs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i64,
        #[graphql(default = 50)] limit: i64,
    ) -> Result<Vec<InstallStat>> {
        let ranking = Ranking::checked(now(ctx), days, limit)?;
        let rows = analytics::install_stats(&state(ctx).db, ranking).await?;
        Ok(rows.into_iter().map(InstallStat::from).collect())
    }

    /// Accounts, oldest first, optionally on one plan; `limit` 1..=100.
    #[graphql(guard = "PageLimit(limit).and(AdminGuard)")]
    async fn admin_accounts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] limit: i64,
        #[graphql(default = 0)] offset: i64,
        plan: Option<PlanCode>,
    ) -> Result<AccountPage> {
        let (nodes, total_count) =
            accounts::page(&state(ctx).db, plan.map(Into::into), limit, offset).await?;
        let nodes: Vec<Account> = nodes.into_iter().map(Account).collect();
        // The whole page in one load; each node's fields then read the request's cache.
        let wanted = ctx.look_ahead().field("nodes");
        if wanted.field("currentUsage").exists() {
            let now = now(ctx);
            loader::get(ctx)?
                .load_many(nodes.iter().map(|node| node.usage_key(now)))
                .await?;
        }
        if wanted.field("plan").exists() {
            loader::get(ctx)?
                .load_many(nodes.iter().map(|node| node.0.plan_code.clone()))
                .await?;
        }
        Ok(AccountPage {
            nodes,
            total_count,
            limit,
            offset,
        })
    }
}
