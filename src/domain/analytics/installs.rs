//! Installs of every account and anonymous ones per (skill, platform, version) over a window of
//! days, from the daily install rollups.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Func;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

use super::{from_millis, largest_groups, Ranking};
use crate::domain::dialect::total;
use crate::domain::error::DomainResult;
use crate::entity::usage_daily_install;

/// Installs of one (skill, platform, version) over a window of days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallStat {
    /// `None` when the install script did not say (likewise platform and version).
    pub skill_id: Option<String>,
    pub platform: Option<String>,
    pub version: Option<String>,
    pub installs: i64,
    /// Reported without a valid key.
    pub anonymous: i64,
    /// Reported with a valid key, so attributed to its account.
    pub attributed: i64,
    pub last_installed_at: DateTime<Utc>,
}

/// Installs of every account and anonymous ones, by (skill, platform, version), over the window
/// of `days` days ending today, most installs first (ties by skill, platform, version). Read from
/// the daily install rollups, which pruning raw events leaves alone; installs recorded before the
/// rollups existed count only when their raw event was still stored then.
pub async fn install_stats(
    db: &DatabaseConnection,
    ranking: Ranking,
) -> DomainResult<Vec<InstallStat>> {
    use usage_daily_install::Column;
    let Ranking { window, limit } = ranking;
    let rows: Vec<(String, String, String, i64, i64, i64, i64)> = largest_groups(
        usage_daily_install::Entity::find(),
        [Column::SkillId, Column::Platform, Column::Version],
        total(Column::Installs),
        limit,
    )
    .expr(total(Column::Anonymous))
    .expr(total(Column::Attributed))
    .expr(Func::max(Column::LastInstalledAt.into_expr()))
    .filter(window.holds(Column::Day))
    .into_tuple()
    .all(db)
    .await?;
    let known = |value: String| (!value.is_empty()).then_some(value);
    Ok(rows
        .into_iter()
        .map(
            |(skill_id, platform, version, installs, anonymous, attributed, last_ms)| InstallStat {
                skill_id: known(skill_id),
                platform: known(platform),
                version: known(version),
                installs,
                anonymous,
                attributed,
                last_installed_at: from_millis(last_ms),
            },
        )
        .collect())
}
