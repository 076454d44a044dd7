//! What one transaction of the recorder writes: the events (a finished call report completing
//! the call verify recorded), their period counters, and the rollup delta for the follower.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::DbErr;

use super::counters::{add_period_calls, place_again, PeriodCounts};
use super::events::{complete_or_skip, insert_events};
use super::follower;
use super::new_event::{NewEvent, Outcome};
use super::rollups::Rollups;
use super::store::BatchTx;

/// What [`write_events`] did.
pub(super) struct Written {
    pub(super) outcomes: Vec<Outcome>,
    /// The count of each period counter the events added to, right after.
    pub(super) period_counts: PeriodCounts,
}

/// Writes events and their period counters in `txn`, and stores their rollups and key touches
/// for the follower.
pub(super) async fn write_events(
    txn: &impl BatchTx,
    events: &[&NewEvent],
    key_touches: &[(String, DateTime<Utc>)],
) -> Result<Written, DbErr> {
    let mut outcomes = vec![Outcome::Duplicate; events.len()];
    let mut rollups = Rollups::default();

    // The first event of an (account, event id) in the batch is the one written; the others are
    // duplicates of it whatever happens to it.
    let mut first_of: HashSet<(&str, &str)> = HashSet::new();
    let mut to_insert = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        match (event.account_id.as_deref(), event.event_id.as_deref()) {
            (Some(account), Some(id)) => {
                if first_of.insert((account, id)) {
                    to_insert.push(i);
                }
            }
            _ => to_insert.push(i),
        }
    }

    let inserted = insert_events(txn, events, &to_insert).await?;
    let mut conflicts: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in &to_insert {
        let event = events[i];
        match (event.account_id.as_deref(), event.event_id.as_deref()) {
            (Some(account), Some(id)) if !inserted.contains(&(account, id)) => {
                conflicts.entry(account).or_default().push(i);
            }
            _ => {
                outcomes[i] = Outcome::Accepted;
                rollups.add_accepted(event);
            }
        }
    }
    for (account, indexes) in conflicts {
        complete_or_skip(txn, account, events, &indexes, &mut outcomes, &mut rollups).await?;
    }

    let upserted = add_period_calls(txn, &rollups.periods).await?;
    let mut period_counts = upserted.counts;
    if !upserted.misplaced.is_empty() {
        let placed = place_again(txn, events, &outcomes, upserted.misplaced, &mut rollups).await?;
        period_counts.extend(placed);
    }
    for (key_id, at) in key_touches {
        rollups.touch_key(key_id, *at);
    }
    follower::append(txn, &rollups).await?;
    Ok(Written {
        outcomes,
        period_counts,
    })
}
