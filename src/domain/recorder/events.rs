//! Event rows: the multi-row insert that stores each (account, event id) once, and the completion
//! of verified calls by the finished-call reports that carry their id.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use chrono::DateTime;
use sea_orm::sea_query::{Expr, InsertStatement, OnConflict, Query, Value};
use sea_orm::{
    ColumnTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
    Statement, StatementBuilder,
};

use super::new_event::{EventKind, NewEvent, Outcome};
use super::rollups::{Rollups, VerifiedCall};
use super::sql::statement_sizes;
use super::store::{BatchTx, Columns, FromColumns};
use crate::entity::usage_event;

/// The columns an event's insert sets, in the order of [`event_values`]; its id is the
/// database's.
const EVENT_COLUMNS: [usage_event::Column; 18] = [
    usage_event::Column::AccountId,
    usage_event::Column::ApiKeyId,
    usage_event::Column::Kind,
    usage_event::Column::EventId,
    usage_event::Column::Endpoint,
    usage_event::Column::Method,
    usage_event::Column::StatusCode,
    usage_event::Column::ResponseTimeMs,
    usage_event::Column::SkillId,
    usage_event::Column::ToolName,
    usage_event::Column::HookEvent,
    usage_event::Column::InputSnippet,
    usage_event::Column::OutputSnippet,
    usage_event::Column::Metadata,
    usage_event::Column::Cost,
    usage_event::Column::ExpiredKey,
    usage_event::Column::OccurredAt,
    usage_event::Column::ReceivedAt,
];

/// An event's values, in the order of [`EVENT_COLUMNS`].
fn event_values(event: &NewEvent) -> [Value; EVENT_COLUMNS.len()] {
    [
        event.account_id.clone().into(),
        event.api_key_id.clone().into(),
        event.kind.as_str().into(),
        event.account_id.as_ref().and(event.event_id.clone()).into(),
        event.endpoint.clone().into(),
        event.method.clone().into(),
        event.status_code.into(),
        event.response_time_ms.into(),
        event.skill_id.clone().into(),
        event.tool_name.clone().into(),
        event.hook_event.clone().into(),
        event.input_snippet.clone().into(),
        event.output_snippet.clone().into(),
        event.metadata.clone().into(),
        event.cost.into(),
        event.expired_key.into(),
        event.occurred_at.timestamp_millis().into(),
        event.received_at.timestamp_millis().into(),
    ]
}

/// The insert of `rows` events, each (account, event id) stored once: the id pairs it stored
/// are returned when `returning`. Its values are the events' [`event_values`], row after row.
fn insert_statement(
    rows: impl IntoIterator<Item = [Value; EVENT_COLUMNS.len()]>,
    returning: bool,
) -> InsertStatement {
    let mut insert = Query::insert();
    insert
        .into_table(usage_event::Entity)
        .columns(EVENT_COLUMNS)
        .on_conflict(
            OnConflict::columns([usage_event::Column::AccountId, usage_event::Column::EventId])
                .do_nothing()
                .to_owned(),
        );
    for row in rows {
        insert.values_panic(row.map(Expr::val));
    }
    if returning {
        insert.returning(
            Query::returning()
                .columns([usage_event::Column::AccountId, usage_event::Column::EventId]),
        );
    }
    insert
}

/// The SQL of [`insert_statement`] for `rows` events on `backend`. Building it (and the
/// statement) per batch took about a seventh of the writer's time, and it is one of a handful of
/// texts (the sizes are powers of two), so each is built once and kept.
fn insert_sql(backend: DatabaseBackend, rows: usize, returning: bool) -> String {
    type Built = Vec<((DatabaseBackend, usize, bool), String)>;
    static BUILT: Mutex<Built> = Mutex::new(Vec::new());
    let key = (backend, rows, returning);
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, sql)) = built.iter().find(|(k, _)| *k == key) {
        return sql.clone();
    }
    let placeholder = event_values(&NewEvent::new(
        None,
        EventKind::ApiCall,
        DateTime::UNIX_EPOCH,
    ));
    let sql = StatementBuilder::build(
        &insert_statement(vec![placeholder; rows], returning),
        &backend,
    )
    .sql;
    built.push((key, sql.clone()));
    sql
}

/// Inserts the events at `indexes`; the (account, event id) pairs actually inserted.
pub(super) async fn insert_events<'e>(
    txn: &impl BatchTx,
    events: &[&'e NewEvent],
    indexes: &[usize],
) -> Result<HashSet<(&'e str, &'e str)>, DbErr> {
    let backend = txn.backend();
    let mut inserted = HashSet::new();
    let mut rest = indexes;
    for size in statement_sizes(indexes.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let with_ids = chunk
            .iter()
            .any(|&i| events[i].account_id.is_some() && events[i].event_id.is_some());
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|&i| event_values(events[i]))
            .collect();
        let insert =
            Statement::from_sql_and_values(backend, insert_sql(backend, size, with_ids), values);
        if !with_ids {
            txn.execute_built(insert).await?;
            continue;
        }
        let mut returned: HashMap<String, HashSet<String>> = HashMap::new();
        for (account, id) in txn
            .fetch_built::<(Option<String>, Option<String>)>(insert)
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
    let existing = stored_calls(txn, account, events, indexes).await?;
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

/// The stored events of `account` with the ids of the events at `indexes`, by event id.
async fn stored_calls(
    txn: &impl BatchTx,
    account: &str,
    events: &[&NewEvent],
    indexes: &[usize],
) -> Result<HashMap<String, Existing>, DbErr> {
    use usage_event::Column;
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
    Ok(txn
        .fetch::<_, Existing>(&existing)
        .await?
        .into_iter()
        .filter_map(|row| Some((row.event_id.clone()?, row)))
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(details: bool) -> NewEvent {
        let mut event = NewEvent::new(Some("acct".into()), EventKind::ToolCall, chrono::Utc::now());
        if details {
            event.event_id = Some("e-1".into());
            event.status_code = Some(200);
            event.response_time_ms = Some(12);
            event.metadata = Some("{}".into());
            event.expired_key = true;
        }
        event
    }

    #[test]
    fn the_kept_insert_text_is_the_one_built_for_the_events_themselves() {
        for backend in [DatabaseBackend::Sqlite, DatabaseBackend::Postgres] {
            for returning in [false, true] {
                let rows = [event(true), event(false), event(true), event(false)];
                let built = StatementBuilder::build(
                    &insert_statement(rows.iter().map(event_values), returning),
                    &backend,
                );
                assert_eq!(insert_sql(backend, rows.len(), returning), built.sql);
                let values = built.values.expect("an insert has values").0;
                assert_eq!(values.len(), rows.len() * EVENT_COLUMNS.len());
                assert_eq!(values[..EVENT_COLUMNS.len()], event_values(&rows[0]));
            }
        }
    }
}
