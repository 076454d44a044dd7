//! Usage per API key: the calls made with each key in its account's current billing period, and
//! per UTC day. Read from the per-key rollups, which the rollup follower fills like the other
//! daily rollups (so they may trail an acknowledged event by up to a second). A usage reset
//! (`adminResetUsage`) zeroes the account's quota counter, not these: they count the calls made.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

use crate::domain::analytics::{day_key, DayWindow};
use crate::domain::error::DomainResult;
use crate::domain::periods::BillingPeriod;
use crate::entity::{account, api_key, usage_daily_key, usage_key_period};

/// Calls made with one key on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDailyUsage {
    pub date: NaiveDate,
    /// API calls (by cost) and tool uses.
    pub calls: i64,
    /// API calls (by cost) answered 4xx/5xx.
    pub failed_calls: i64,
}

/// Calls made with each of `key_ids` in its account's billing period containing `now`; unknown
/// keys are left out.
pub async fn calls_this_period(
    db: &DatabaseConnection,
    key_ids: &[String],
    now: DateTime<Utc>,
) -> DomainResult<HashMap<String, i64>> {
    if key_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let owners: Vec<(String, String)> = api_key::Entity::find()
        .select_only()
        .columns([api_key::Column::Id, api_key::Column::AccountId])
        .filter(api_key::Column::Id.is_in(key_ids.iter().map(String::as_str)))
        .into_tuple()
        .all(db)
        .await?;
    let account_ids: HashSet<&str> = owners.iter().map(|(_, a)| a.as_str()).collect();
    let period_starts: HashMap<String, i64> = account::Entity::find()
        .filter(account::Column::Id.is_in(account_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|a| {
            let start = BillingPeriod::for_account(&a, now).start_ms();
            (a.id, start)
        })
        .collect();
    let starts: HashSet<i64> = period_starts.values().copied().collect();
    let counted: HashMap<(String, i64), i64> = usage_key_period::Entity::find()
        .filter(usage_key_period::Column::ApiKeyId.is_in(key_ids.iter().map(String::as_str)))
        .filter(usage_key_period::Column::PeriodStart.is_in(starts))
        .all(db)
        .await?
        .into_iter()
        .map(|row| ((row.api_key_id, row.period_start), row.calls))
        .collect();
    Ok(owners
        .into_iter()
        .filter_map(|(key, account)| {
            let start = *period_starts.get(&account)?;
            let calls = counted.get(&(key.clone(), start)).copied().unwrap_or(0);
            Some((key, calls))
        })
        .collect())
}

/// For each key, one entry per day of `window`, oldest first, days without calls included.
pub async fn daily_usage(
    db: &DatabaseConnection,
    key_ids: &[String],
    window: DayWindow,
) -> DomainResult<HashMap<String, Vec<KeyDailyUsage>>> {
    let mut by_key_day: HashMap<(String, String), usage_daily_key::Model> = HashMap::new();
    if !key_ids.is_empty() {
        let rows = usage_daily_key::Entity::find()
            .filter(usage_daily_key::Column::ApiKeyId.is_in(key_ids.iter().map(String::as_str)))
            .filter(window.holds(usage_daily_key::Column::Day))
            .all(db)
            .await?;
        for row in rows {
            by_key_day.insert((row.api_key_id.clone(), row.day.clone()), row);
        }
    }
    Ok(key_ids
        .iter()
        .map(|key| {
            let days = window
                .days()
                .map(|date| {
                    let row = by_key_day.get(&(key.clone(), day_key(date)));
                    KeyDailyUsage {
                        date,
                        calls: row.map_or(0, |r| r.calls),
                        failed_calls: row.map_or(0, |r| r.failures),
                    }
                })
                .collect();
            (key.clone(), days)
        })
        .collect())
}
