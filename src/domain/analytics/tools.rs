//! Tool uses and installs per (skill, tool) of one account over a window of days, from the daily
//! tool rollups.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Func;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

use super::{from_millis, largest_groups, Ranking};
use crate::domain::dialect::total;
use crate::domain::error::DomainResult;
use crate::entity::usage_daily_tool;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolStat {
    pub skill_id: String,
    pub tool_name: String,
    pub calls: i64,
    pub last_used_at: DateTime<Utc>,
}

/// Tool uses and installs by (skill, tool) over the window, most first (ties by skill, tool).
pub async fn tool_stats(
    db: &DatabaseConnection,
    account_id: &str,
    ranking: Ranking,
) -> DomainResult<Vec<ToolStat>> {
    use usage_daily_tool::Column;
    let Ranking { window, limit } = ranking;
    let rows: Vec<(String, String, i64, i64)> = largest_groups(
        usage_daily_tool::Entity::find(),
        [Column::SkillId, Column::ToolName],
        total(Column::Calls),
        limit,
    )
    .expr(Func::max(Column::LastUsedAt.into_expr()))
    .filter(Column::AccountId.eq(account_id))
    .filter(window.holds(Column::Day))
    .into_tuple()
    .all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(skill_id, tool_name, calls, last_used_ms)| ToolStat {
            skill_id,
            tool_name,
            calls,
            last_used_at: from_millis(last_used_ms),
        })
        .collect())
}
