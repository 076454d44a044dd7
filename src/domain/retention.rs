//! Raw event retention: usage events older than the configured number of days are deleted; the
//! period counters and daily rollups, which every analytics and billing answer reads, are kept.
//!
//! Deletes go account by account through the `(account_id, occurred_at)` index, in small
//! statements, so each holds the write lock briefly and the recorder keeps committing in between.
//!
//! Idempotency (`event_id`) and the completion of verified calls look at raw events: a retention
//! shorter than the oldest `ts` ingestion accepts (35 days) would weaken both, so keep it longer.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Value};

use crate::domain::error::DomainResult;
use crate::domain::sql::statement;

/// Rows deleted per statement.
const DELETE_CHUNK: i64 = 5_000;

/// The instant before which events are pruned when they are kept `days` days.
pub fn cutoff(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - Duration::days(i64::from(days))
}

/// Deletes raw events that occurred before `before`; returns how many went.
pub async fn prune_events(db: &DatabaseConnection, before: DateTime<Utc>) -> DomainResult<u64> {
    let backend = db.get_database_backend();
    let before_ms = before.timestamp_millis();
    let accounts = db
        .query_all_raw(statement(backend, "SELECT id FROM accounts", vec![]))
        .await?;
    let mut owners: Vec<Option<String>> = Vec::with_capacity(accounts.len() + 1);
    for row in accounts {
        owners.push(Some(row.try_get_by_index::<String>(0)?));
    }
    // Anonymous installs.
    owners.push(None);

    let mut deleted = 0;
    for owner in owners {
        let (filter, mut values): (&str, Vec<Value>) = match owner {
            Some(id) => ("account_id = ?", vec![id.into()]),
            None => ("account_id IS NULL", vec![]),
        };
        values.push(before_ms.into());
        values.push(DELETE_CHUNK.into());
        let sql = format!(
            "DELETE FROM usage_events WHERE id IN \
             (SELECT id FROM usage_events WHERE {filter} AND occurred_at < ? LIMIT ?)"
        );
        loop {
            let done = db
                .execute_raw(statement(backend, &sql, values.clone()))
                .await?
                .rows_affected();
            deleted += done;
            if done < DELETE_CHUNK as u64 {
                break;
            }
        }
    }
    Ok(deleted)
}
