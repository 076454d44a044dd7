//! API calls per (method, endpoint) over a window of days, read from the endpoints' running sums:
//! two rows per endpoint whatever the window's length.

use sea_orm::sea_query::{Alias, Expr, Func, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, JoinType, Order};

use super::{day_key, mean, DayWindow, Ranking};
use crate::domain::dialect::{byte_ordered, join_in_written_order, latest_row};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::histogram;
use crate::entity::{usage_endpoint, usage_running_endpoint};

use usage_endpoint::Column as Listed;
use usage_running_endpoint::Column as Running;

/// What `endpointStats` shows for a call reported without a method or an endpoint (a verify
/// without them), instead of a blank name.
pub const UNSPECIFIED: &str = "(unspecified)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStat {
    /// [`UNSPECIFIED`] for calls reported without one.
    pub method: String,
    /// [`UNSPECIFIED`] for calls reported without one.
    pub endpoint: String,
    /// Billable calls (by cost).
    pub total_calls: i64,
    /// API calls (requests), one per event whatever its cost.
    pub requests: i64,
    /// Billable calls (by cost) answered 4xx/5xx.
    pub failed_calls: i64,
    pub avg_response_time_ms: Option<i64>,
    /// Read from the latency histogram: within 5% (or 1 ms) of the exact nearest-rank p95.
    pub p95_response_time_ms: Option<i64>,
}

/// One endpoint's window sums as the ranking statement returns them: method, endpoint, calls,
/// requests, failures, latency sum and count, and the running histograms at the window's last
/// day and before its first day (none when the endpoint had no calls before the window).
type WindowRow = (
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    String,
    Option<String>,
);

/// The ranking statement of [`endpoint_stats`]: for each endpoint of the account, its running
/// sums at the window's last day (`hi`) less those before its first day (`lo`), the endpoints
/// without calls in the window left out, most calls first, ties by (method, endpoint) in byte
/// order, cut at `limit`. Two index lookups per endpoint, whatever the window's length.
fn window_sums(
    backend: DatabaseBackend,
    account_id: &str,
    window: DayWindow,
    limit: i64,
) -> SelectStatement {
    use sea_orm::sea_query::ExprTrait as _;
    let mut query = Query::select();
    query
        .exprs([listed(Listed::Method), listed(Listed::Endpoint)])
        .exprs(
            [
                Running::Calls,
                Running::Requests,
                Running::Failures,
                Running::LatencySumMs,
                Running::LatencyCount,
            ]
            .map(in_window),
        )
        .exprs([
            of("hi", Running::LatencyHistogram),
            of("lo", Running::LatencyHistogram),
        ])
        .from_as(usage_endpoint::Entity, Alias::new("e"));
    // The account's endpoints first, then two lookups each: not all of the account's rows.
    join_in_written_order(
        &mut query,
        backend,
        usage_running_endpoint::Entity,
        "hi",
        latest(
            backend,
            "hi",
            of("x", Running::Day).lte(day_key(window.last)),
        ),
    );
    query
        .join_as(
            JoinType::LeftJoin,
            usage_running_endpoint::Entity,
            Alias::new("lo"),
            latest(
                backend,
                "lo",
                of("x", Running::Day).lt(day_key(window.first)),
            ),
        )
        .and_where(listed(Listed::AccountId).eq(account_id))
        .and_where(in_window(Running::Calls).gt(0))
        .order_by_expr(in_window(Running::Calls), Order::Desc)
        .order_by_expr(byte_ordered(backend, listed(Listed::Method)), Order::Asc)
        .order_by_expr(byte_ordered(backend, listed(Listed::Endpoint)), Order::Asc)
        .limit(u64::try_from(limit).unwrap_or(0));
    query
}

/// A running-sums column of the row joined as `table`.
fn of(table: &str, column: Running) -> Expr {
    Expr::col((Alias::new(table), column))
}

/// A column of the account's listed endpoint (`e`).
fn listed(column: Listed) -> Expr {
    Expr::col((Alias::new("e"), column))
}

/// The running-sums row joined as `table` is one of the listed endpoint's.
fn same_endpoint(table: &str) -> sea_orm::Condition {
    use sea_orm::sea_query::ExprTrait as _;
    sea_orm::Condition::all()
        .add(of(table, Running::AccountId).eq(listed(Listed::AccountId)))
        .add(of(table, Running::Method).eq(listed(Listed::Method)))
        .add(of(table, Running::Endpoint).eq(listed(Listed::Endpoint)))
}

/// The endpoint's row of the latest day matching `bound`.
fn latest(backend: DatabaseBackend, table: &str, bound: Expr) -> sea_orm::Condition {
    let mut candidates = Query::select();
    candidates
        .from_as(usage_running_endpoint::Entity, Alias::new("x"))
        .cond_where(same_endpoint("x"))
        .and_where(bound);
    latest_row(
        backend,
        table,
        same_endpoint(table),
        candidates,
        "x",
        Running::Day,
    )
}

/// A sum over the window: at its last day less before its first (nothing before is 0).
fn in_window(column: Running) -> Expr {
    use sea_orm::sea_query::ExprTrait as _;
    of("hi", column).sub(Func::coalesce([of("lo", column), Expr::val(0i64)]))
}

/// API calls by (method, endpoint) over the window, most calls first (ties by method, endpoint),
/// read from the endpoints' running sums in one statement.
pub async fn endpoint_stats(
    db: &DatabaseConnection,
    account_id: &str,
    ranking: Ranking,
) -> DomainResult<Vec<EndpointStat>> {
    let Ranking { window, limit } = ranking;
    let query = window_sums(db.get_database_backend(), account_id, window, limit);
    let rows = db.query_all(&query).await?;
    rows.iter()
        .map(|row| {
            let (method, endpoint, calls, requests, failures, latency_sum, latency_count, hi, lo): WindowRow =
                row.try_get_many_by_index()?;
            Ok(EndpointStat {
                method: named(method),
                endpoint: named(endpoint),
                total_calls: calls,
                requests,
                failed_calls: failures,
                avg_response_time_ms: mean(latency_sum, latency_count),
                p95_response_time_ms: window_p95(&hi, lo.as_deref())?,
            })
        })
        .collect()
}

/// The p95 latency of a window from the running histograms at its last day and before its first.
fn window_p95(through_last: &str, before_first: Option<&str>) -> DomainResult<Option<i64>> {
    let unreadable = |stored: &str, err: serde_json::Error| {
        DomainError::internal(anyhow::anyhow!(
            "unreadable latency histogram {stored:?}: {err}"
        ))
    };
    let mut counts = histogram::Counts::new();
    histogram::add_json(&mut counts, through_last).map_err(|err| unreadable(through_last, err))?;
    if let Some(before) = before_first {
        let mut earlier = histogram::Counts::new();
        histogram::add_json(&mut earlier, before).map_err(|err| unreadable(before, err))?;
        for (bucket, count) in earlier {
            *counts.entry(bucket).or_default() -= count;
        }
    }
    Ok(histogram::quantile(&counts, 0.95).map(|ms| ms.round() as i64))
}

/// A stored method or endpoint as shown: [`UNSPECIFIED`] for none.
fn named(name: String) -> String {
    if name.is_empty() {
        UNSPECIFIED.to_owned()
    } else {
        name
    }
}
