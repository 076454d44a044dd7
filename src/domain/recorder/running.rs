//! The endpoints' running sums (`usage_running_endpoints`): for each account, (method, endpoint)
//! and day with calls, the sums of every day up to that one, so that a window of any length is
//! two rows per endpoint (see `analytics::endpoint_stats`).
//!
//! A delta for day D adds to the row of D (created first as a copy of the endpoint's latest row
//! before D) and to every later row of the endpoint. The result does not depend on the order
//! deltas come in, and rows after D exist only for events dated back (at most 35 days). With
//! several followers on PostgreSQL, each first locks the endpoints' `usage_endpoints` rows (an
//! upsert that rewrites them, in key order like every rollup upsert), so that no row is created
//! from a copy that another follower is still adding to.

use std::collections::BTreeMap;

use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, Func, IntoIden, JoinType, OnConflict, Query, SelectStatement, Value,
    ValueTuple,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};

use super::deltas::{EndpointDelta, EndpointKey};
use super::sql::{adding_merging_histogram, statement_sizes, upsert};
use crate::domain::dialect;
use crate::domain::histogram;
use crate::entity::{usage_endpoint, usage_running_endpoint};

use usage_running_endpoint::Column as Running;

/// (account, method, endpoint)
type Endpoint = (String, String, String);

/// The summed columns, in the order the statements below list them.
const SUMS: [Running; 6] = [
    Running::Calls,
    Running::Requests,
    Running::Successes,
    Running::Failures,
    Running::LatencySumMs,
    Running::LatencyCount,
];

/// What to add to an endpoint's rows from day `from` up to the day before `until` (every later
/// day when `None`).
struct Span<'a> {
    endpoint: &'a Endpoint,
    from: &'a str,
    until: Option<&'a str>,
    delta: EndpointDelta,
}

/// Adds a batch's daily endpoint deltas to the running sums.
pub(super) async fn add_running_sums(
    txn: &DatabaseTransaction,
    deltas: &BTreeMap<EndpointKey, EndpointDelta>,
) -> Result<(), DbErr> {
    // Each endpoint's deltas, by day (the keys run in day order within an account).
    let mut by_endpoint: BTreeMap<Endpoint, Vec<(&str, &EndpointDelta)>> = BTreeMap::new();
    for ((account, day, method, endpoint), delta) in deltas {
        by_endpoint
            .entry((account.clone(), method.clone(), endpoint.clone()))
            .or_default()
            .push((day.as_str(), delta));
    }
    if by_endpoint.is_empty() {
        return Ok(());
    }
    lock_endpoints(txn, by_endpoint.keys()).await?;

    let days: Vec<(&Endpoint, &str)> = by_endpoint
        .iter()
        .flat_map(|(endpoint, days)| days.iter().map(move |(day, _)| (endpoint, *day)))
        .collect();
    let mut rest = days.as_slice();
    for size in statement_sizes(rest.len()) {
        let (chunk, later) = rest.split_at(size);
        rest = later;
        txn.execute(&start_rows(chunk)).await?;
    }

    // A row of day R gets every delta of a day up to R: between two delta days, the sum of the
    // deltas so far.
    let mut spans = Vec::with_capacity(days.len());
    for (endpoint, days) in &by_endpoint {
        let mut so_far = EndpointDelta::default();
        for (index, (day, delta)) in days.iter().enumerate() {
            so_far.absorb((*delta).clone());
            spans.push(Span {
                endpoint,
                from: day,
                until: days.get(index + 1).map(|(next, _)| *next),
                delta: so_far.clone(),
            });
        }
    }
    let mut spans = spans.as_slice();
    for size in statement_sizes(spans.len()) {
        let (chunk, rest) = spans.split_at(size);
        spans = rest;
        txn.execute(&add_spans(txn.get_database_backend(), chunk))
            .await?;
    }
    Ok(())
}

/// Lists the endpoints in `usage_endpoints` and, on PostgreSQL, holds their rows' locks until the
/// transaction ends: the update is a no-op, but it locks the row as an update does.
async fn lock_endpoints<'a>(
    txn: &DatabaseTransaction,
    endpoints: impl ExactSizeIterator<Item = &'a Endpoint>,
) -> Result<(), DbErr> {
    use usage_endpoint::Column;
    let mut on_conflict =
        OnConflict::columns([Column::AccountId, Column::Method, Column::Endpoint]);
    on_conflict.update_column(Column::Method);
    let rows = endpoints.map(|(account, method, endpoint)| usage_endpoint::Model {
        account_id: account.clone(),
        method: method.clone(),
        endpoint: endpoint.clone(),
    });
    upsert(txn, rows, on_conflict).await
}

/// A column of a derived table.
fn of(table: &str, column: impl IntoIden) -> Expr {
    Expr::col((Alias::new(table), column))
}

/// The `n`th column (from 1) of a `VALUES` list: SQLite and PostgreSQL both name them `columnN`.
fn nth(table: &str, n: usize) -> Expr {
    of(table, Alias::new(format!("column{n}")))
}

/// `table`'s row of the endpoint in the first three columns of `values`.
fn same_endpoint(table: &str, values: &str) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(of(table, Running::AccountId).eq(nth(values, 1)))
        .add(of(table, Running::Method).eq(nth(values, 2)))
        .add(of(table, Running::Endpoint).eq(nth(values, 3)))
}

/// Creates the rows of the given (endpoint, day)s that do not exist yet, each a copy of its
/// endpoint's latest row before that day (zeros when there is none), for [`add_spans`] to add to.
fn start_rows(days: &[(&Endpoint, &str)]) -> sea_orm::sea_query::InsertStatement {
    let keys = days.iter().map(|((account, method, endpoint), day)| {
        ValueTuple::Many(vec![
            Value::from(account.as_str()),
            Value::from(method.as_str()),
            Value::from(endpoint.as_str()),
            Value::from(*day),
        ])
    });
    let mut latest_before = Query::select();
    latest_before
        .expr(Func::max(of("x", Running::Day)))
        .from_as(usage_running_endpoint::Entity, Alias::new("x"))
        .cond_where(same_endpoint("x", "k"))
        .and_where(of("x", Running::Day).lt(nth("k", 4)));
    let mut copy = Query::select();
    copy.exprs([nth("k", 1), nth("k", 2), nth("k", 3), nth("k", 4)]);
    for column in SUMS {
        copy.expr(Func::coalesce([of("p", column), Expr::val(0i64)]));
    }
    copy.expr(Func::coalesce([
        of("p", Running::LatencyHistogram),
        Expr::val("{}"),
    ]))
    .from_values(keys, Alias::new("k"))
    .join_as(
        JoinType::LeftJoin,
        usage_running_endpoint::Entity,
        Alias::new("p"),
        same_endpoint("p", "k").add(of("p", Running::Day).eq(Expr::from(latest_before))),
    )
    // SQLite reads `ON CONFLICT` after a join as the join's `ON` without a `WHERE` between.
    .and_where(Expr::val(true));
    insert_rows(
        copy,
        OnConflict::columns(primary_key()).do_nothing().to_owned(),
    )
}

/// Adds each span's delta to its endpoint's rows in its days, as an upsert of those rows (every
/// one conflicts) that adds the proposed sums and merges the histograms like the daily rollups.
fn add_spans(
    backend: sea_orm::DatabaseBackend,
    spans: &[Span<'_>],
) -> sea_orm::sea_query::InsertStatement {
    let values = spans.iter().map(|span| {
        let (account, method, endpoint) = span.endpoint;
        let sums = &span.delta.sums;
        ValueTuple::Many(vec![
            Value::from(account.as_str()),
            Value::from(method.as_str()),
            Value::from(endpoint.as_str()),
            Value::from(span.from),
            Value::String(span.until.map(|day| day.to_owned())),
            Value::from(sums.calls),
            Value::from(span.delta.requests),
            Value::from(sums.successes),
            Value::from(sums.failures),
            Value::from(sums.latency_sum_ms),
            Value::from(sums.latency_count),
            Value::from(histogram::to_json(&span.delta.latency_buckets)),
        ])
    });
    let mut rows: SelectStatement = Query::select();
    rows.exprs([
        of("r", Running::AccountId),
        of("r", Running::Method),
        of("r", Running::Endpoint),
        of("r", Running::Day),
    ])
    .exprs((6..=12).map(|n| nth("d", n)))
    .from_values(values, Alias::new("d"));
    // The spans first, then each one's rows: not every row of the table for each span.
    dialect::join_in_written_order(
        &mut rows,
        backend,
        usage_running_endpoint::Entity,
        "r",
        same_endpoint("r", "d"),
    );
    rows.and_where(of("r", Running::Day).gte(nth("d", 4)))
        .and_where(
            nth("d", 5)
                .is_null()
                .or(of("r", Running::Day).lt(nth("d", 5))),
        );
    let on_conflict =
        adding_merging_histogram(backend, primary_key(), SUMS, Running::LatencyHistogram);
    insert_rows(rows, on_conflict)
}

/// `INSERT INTO usage_running_endpoints (every column) SELECT ...`, for a `rows` that selects
/// [`all_columns`] in their order.
fn insert_rows(
    rows: SelectStatement,
    on_conflict: OnConflict,
) -> sea_orm::sea_query::InsertStatement {
    let mut insert = Query::insert();
    insert
        .into_table(usage_running_endpoint::Entity)
        .columns(all_columns())
        .select_from(rows)
        // `select_from` fails only on a select of another number of columns than inserted,
        // and both callers select every one of `all_columns`.
        .expect("the rows list every inserted column")
        .on_conflict(on_conflict);
    insert
}

fn primary_key() -> [Running; 4] {
    [
        Running::AccountId,
        Running::Method,
        Running::Endpoint,
        Running::Day,
    ]
}

/// Every column: the key, the sums, the histogram.
fn all_columns() -> impl Iterator<Item = Running> {
    primary_key()
        .into_iter()
        .chain(SUMS)
        .chain([Running::LatencyHistogram])
}
