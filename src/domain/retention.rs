//! Raw event retention: usage events older than the configured number of days are deleted; the
//! period counters and daily rollups, which every analytics and billing answer reads, are kept.
//!
//! Deletes go account by account through the `(account_id, occurred_at)` index, in small
//! statements, so each holds the write lock briefly and the recorder keeps committing in between.
//!
//! Idempotency (`event_id`) and the completion of verified calls look at raw events: a retention
//! shorter than the oldest `ts` ingestion accepts (35 days) would weaken both, so keep it longer.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, QueryTrait};

use crate::domain::error::DomainResult;
use crate::entity::{account, usage_event};

/// Rows deleted per statement.
const DELETE_CHUNK: u64 = 5_000;

/// The instant before which events are pruned when they are kept `days` days.
pub fn cutoff(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - Duration::days(i64::from(days))
}

/// Deletes raw events that occurred before `before`; returns how many went.
pub async fn prune_events(db: &DatabaseConnection, before: DateTime<Utc>) -> DomainResult<u64> {
    let before_ms = before.timestamp_millis();
    let accounts: Vec<String> = account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    // `None`: anonymous installs.
    let owners = accounts.into_iter().map(Some).chain([None]);

    let mut deleted = 0;
    for owner in owners {
        let owned = match owner {
            Some(id) => usage_event::Column::AccountId.eq(id),
            None => usage_event::Column::AccountId.is_null(),
        };
        let chunk = usage_event::Entity::find()
            .select_only()
            .column(usage_event::Column::Id)
            .filter(owned)
            .filter(usage_event::Column::OccurredAt.lt(before_ms))
            .limit(DELETE_CHUNK)
            .into_query();
        loop {
            let done = usage_event::Entity::delete_many()
                .filter(usage_event::Column::Id.in_subquery(chunk.clone()))
                .exec(db)
                .await?
                .rows_affected;
            deleted += done;
            if done < DELETE_CHUNK {
                break;
            }
        }
    }
    Ok(deleted)
}
