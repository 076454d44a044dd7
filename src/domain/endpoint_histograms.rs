//! The latency histograms of a window's endpoints, merged in the database: one JSON object per
//! (method, endpoint) comes back instead of one per endpoint and day or week. A 90-day window
//! reads ~13 weekly and up to 12 daily rows per endpoint; returning them all cost a hand-off from
//! the SQLite worker and a JSON parse per row, which was most of `endpointStats`' time.
//!
//! The statement is written out per backend because the JSON functions differ (as in
//! [`crate::domain::dialect::merge_histograms`]): SQLite has `json_each` and
//! `json_group_object`, PostgreSQL `json_each_text` and `json_object_agg`. Every value is bound,
//! with numbered placeholders (`?N` on SQLite, `$N` on PostgreSQL).

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, Value};

use crate::domain::analytics::day_key;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::histogram;

/// Where a window's rows are: whole ISO weeks (Mondays, inclusive) and single-day ranges.
pub struct WindowRows<'a> {
    pub account_id: &'a str,
    pub weeks: Option<(NaiveDate, NaiveDate)>,
    pub days: &'a [(NaiveDate, NaiveDate)],
}

/// Merged histograms of `endpoints` (any method) over the window, by (method, endpoint).
pub async fn merged(
    db: &DatabaseConnection,
    rows: &WindowRows<'_>,
    endpoints: &[&str],
) -> DomainResult<HashMap<(String, String), histogram::Counts>> {
    let backend = db.get_database_backend();
    let mut statement = MergeStatement::new(backend);
    let mut parts = Vec::new();
    if !rows.days.is_empty() {
        let ranges: Vec<String> = rows
            .days
            .iter()
            .map(|(first, last)| {
                format!(
                    "r.day BETWEEN {} AND {}",
                    statement.bind(day_key(*first)),
                    statement.bind(day_key(*last))
                )
            })
            .collect();
        parts.push(statement.part(
            "usage_daily_endpoints",
            rows.account_id,
            &format!("({})", ranges.join(" OR ")),
            endpoints,
        ));
    }
    if let Some((first, last)) = rows.weeks {
        let weeks = format!(
            "r.week BETWEEN {} AND {}",
            statement.bind(day_key(first)),
            statement.bind(day_key(last))
        );
        parts.push(statement.part("usage_weekly_endpoints", rows.account_id, &weeks, endpoints));
    }
    if parts.is_empty() || endpoints.is_empty() {
        return Ok(HashMap::new());
    }
    let object_of = match backend {
        DatabaseBackend::Postgres => "json_object_agg(bucket, total)::text",
        _ => "json_group_object(bucket, total)",
    };
    let sql = format!(
        "SELECT method, endpoint, {object_of} FROM ( \
           SELECT method, endpoint, bucket, SUM(n) AS total FROM ({}) AS parts \
           GROUP BY method, endpoint, bucket \
         ) AS merged GROUP BY method, endpoint",
        parts.join(" UNION ALL ")
    );
    let found = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            statement.values,
        ))
        .await?;
    let mut merged = HashMap::new();
    for row in found {
        let (method, endpoint, json): (String, String, String) = row.try_get_many_by_index()?;
        let mut counts = histogram::Counts::new();
        histogram::add_json(&mut counts, &json).map_err(|err| {
            DomainError::internal(anyhow::anyhow!(
                "unreadable merged latency histogram {json:?}: {err}"
            ))
        })?;
        merged.insert((method, endpoint), counts);
    }
    Ok(merged)
}

/// The bound values of the statement being written, and its placeholders.
struct MergeStatement {
    backend: DatabaseBackend,
    values: Vec<Value>,
}

impl MergeStatement {
    fn new(backend: DatabaseBackend) -> Self {
        Self {
            backend,
            values: Vec::new(),
        }
    }

    /// Binds `value` and returns its placeholder, numbered (the text is not written in binding
    /// order).
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DatabaseBackend::Postgres => format!("${}", self.values.len()),
            _ => format!("?{}", self.values.len()),
        }
    }

    /// One table's histogram entries (method, endpoint, bucket, count) for the account's rows
    /// matching `rows` (an SQL condition on `r`) whose endpoint is one of `endpoints`.
    fn part(&mut self, table: &str, account_id: &str, rows: &str, endpoints: &[&str]) -> String {
        let entries = match self.backend {
            DatabaseBackend::Postgres => "json_each_text(r.latency_histogram::json) AS j",
            _ => "json_each(r.latency_histogram) AS j",
        };
        let count = match self.backend {
            DatabaseBackend::Postgres => "j.value::bigint",
            _ => "j.value",
        };
        let account = self.bind(account_id.to_owned());
        let listed: Vec<String> = endpoints
            .iter()
            .map(|e| self.bind((*e).to_owned()))
            .collect();
        format!(
            "SELECT r.method AS method, r.endpoint AS endpoint, j.key AS bucket, {count} AS n \
             FROM {table} AS r, {entries} \
             WHERE r.account_id = {account} AND {rows} AND r.latency_count > 0 \
               AND r.endpoint IN ({})",
            listed.join(", ")
        )
    }
}
