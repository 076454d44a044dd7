//! Event rows: the multi-row insert that stores each (account, event id) once, and the completion
//! of verified calls by the finished-call reports that carry their id.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Set};

use super::rollups::{Rollups, VerifiedCall};
use super::store::{BatchTx, Columns, FromColumns};
use super::{statement_sizes, EventKind, NewEvent, Outcome};
use crate::entity::usage_event;

/// The row of an event; its id is the database's.
fn event_row(event: &NewEvent) -> usage_event::ActiveModel {
    usage_event::ActiveModel {
        account_id: Set(event.account_id.clone()),
        api_key_id: Set(event.api_key_id.clone()),
        kind: Set(event.kind.as_str().to_owned()),
        event_id: Set(event.account_id.as_ref().and(event.event_id.clone())),
        endpoint: Set(event.endpoint.clone()),
        method: Set(event.method.clone()),
        status_code: Set(event.status_code),
        response_time_ms: Set(event.response_time_ms),
        skill_id: Set(event.skill_id.clone()),
        tool_name: Set(event.tool_name.clone()),
        hook_event: Set(event.hook_event.clone()),
        input_snippet: Set(event.input_snippet.clone()),
        output_snippet: Set(event.output_snippet.clone()),
        metadata: Set(event.metadata.clone()),
        cost: Set(event.cost),
        expired_key: Set(event.expired_key),
        occurred_at: Set(event.occurred_at.timestamp_millis()),
        received_at: Set(event.received_at.timestamp_millis()),
        ..Default::default()
    }
}

/// Inserts the events at `indexes`; the (account, event id) pairs actually inserted.
pub(super) async fn insert_events<'e>(
    txn: &impl BatchTx,
    events: &[&'e NewEvent],
    indexes: &[usize],
) -> Result<HashSet<(&'e str, &'e str)>, DbErr> {
    let mut inserted = HashSet::new();
    let mut rest = indexes;
    for size in statement_sizes(indexes.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let with_ids = chunk
            .iter()
            .any(|&i| events[i].account_id.is_some() && events[i].event_id.is_some());
        let mut insert =
            usage_event::Entity::insert_many(chunk.iter().map(|&i| event_row(events[i])))
                .on_conflict(
                    OnConflict::columns([
                        usage_event::Column::AccountId,
                        usage_event::Column::EventId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .into_query();
        if !with_ids {
            txn.execute(&insert).await?;
            continue;
        }
        insert.returning(
            Query::returning()
                .columns([usage_event::Column::AccountId, usage_event::Column::EventId]),
        );
        let mut returned: HashMap<String, HashSet<String>> = HashMap::new();
        for (account, id) in txn
            .fetch::<_, (Option<String>, Option<String>)>(&insert)
            .await?
        {
            if let (Some(account), Some(id)) = (account, id) {
                returned.entry(account).or_default().insert(id);
            }
        }
        for &i in chunk {
            if let (Some(account), Some(id)) = (
                events[i].account_id.as_deref(),
                events[i].event_id.as_deref(),
            ) {
                if returned.get(account).is_some_and(|ids| ids.contains(id)) {
                    inserted.insert((account, id));
                }
            }
        }
    }
    Ok(inserted)
}

/// Events whose id the account already had: a finished-call report completes a verified call
/// that has no status yet; anything else is a duplicate.
pub(super) async fn complete_or_skip(
    txn: &impl BatchTx,
    account: &str,
    events: &[&NewEvent],
    indexes: &[usize],
    outcomes: &mut [Outcome],
    rollups: &mut Rollups,
) -> Result<(), DbErr> {
    use usage_event::Column;
    if !indexes.iter().any(|&i| events[i].completes) {
        return Ok(());
    }
    let ids: Vec<&str> = indexes
        .iter()
        .filter_map(|&i| events[i].event_id.as_deref())
        .collect();
    let existing = usage_event::Entity::find()
        .select_only()
        .columns(Existing::COLUMNS)
        .filter(Column::AccountId.eq(account))
        .filter(Column::EventId.is_in(ids))
        .into_query();
    let existing: HashMap<String, Existing> = txn
        .fetch::<_, Existing>(&existing)
        .await?
        .into_iter()
        .filter_map(|row| Some((row.event_id.clone()?, row)))
        .collect();
    for &i in indexes {
        let event = events[i];
        let Some(found) = event.event_id.as_deref().and_then(|id| existing.get(id)) else {
            continue;
        };
        let completes = event.completes
            && event.status_code.is_some()
            && found.kind == EventKind::ApiCall.as_str()
            && found.status_code.is_none();
        if !completes {
            continue;
        }
        let completed = usage_event::Entity::update_many()
            .col_expr(Column::StatusCode, Expr::val(event.status_code))
            .col_expr(Column::ResponseTimeMs, Expr::val(event.response_time_ms))
            .col_expr(Column::Method, Expr::val(event.method.clone()))
            .col_expr(Column::Endpoint, Expr::val(event.endpoint.clone()))
            .filter(Column::Id.eq(found.id))
            .filter(Column::StatusCode.is_null())
            .into_query();
        if txn.execute(&completed).await? == 0 {
            continue;
        }
        outcomes[i] = Outcome::Completed;
        let verified = VerifiedCall {
            key: found.api_key_id.as_deref(),
            occurred_ms: found.occurred_at,
            counted_as: (found.method.as_deref(), found.endpoint.as_deref()),
            cost: found.cost,
        };
        rollups.complete_call(account, verified, event);
    }
    Ok(())
}

/// What completing a call needs of the stored one: not its snippets or metadata.
struct Existing {
    id: i64,
    event_id: Option<String>,
    api_key_id: Option<String>,
    kind: String,
    status_code: Option<i32>,
    method: Option<String>,
    endpoint: Option<String>,
    occurred_at: i64,
    cost: i64,
}

impl Existing {
    /// The columns read, in the order [`FromColumns`] takes them.
    const COLUMNS: [usage_event::Column; 9] = [
        usage_event::Column::Id,
        usage_event::Column::EventId,
        usage_event::Column::ApiKeyId,
        usage_event::Column::Kind,
        usage_event::Column::StatusCode,
        usage_event::Column::Method,
        usage_event::Column::Endpoint,
        usage_event::Column::OccurredAt,
        usage_event::Column::Cost,
    ];
}

impl FromColumns for Existing {
    fn from_columns(row: &impl Columns) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.column(0)?,
            event_id: row.column(1)?,
            api_key_id: row.column(2)?,
            kind: row.column(3)?,
            status_code: row.column(4)?,
            method: row.column(5)?,
            endpoint: row.column(6)?,
            occurred_at: row.column(7)?,
            cost: row.column(8)?,
        })
    }
}
