//! Helpers of the analytics tests: events written through the real recorder (so the rollups are
//! the ones ingestion writes), and the same answers computed the naive way from raw events, to
//! hold the rollup-based answers against.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{json, Value};
use tally::config::Config;
use tally::domain::deadline::Deadline;
use tally::domain::periods::BillingPeriod;
use tally::domain::recorder::{EventKind, NewEvent};
use tally::entity::usage_event;

use super::TestApp;

/// Analytics tests move the clock across days and months after signing in: tokens that live ten
/// years stay valid wherever a test puts the clock.
pub fn config() -> Config {
    Config {
        jwt_ttl: Duration::from_secs(10 * 365 * 86_400),
        ..Config::default()
    }
}

pub async fn app() -> TestApp {
    TestApp::with_config(config()).await
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn event(account_id: &str, kind: EventKind, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        period: Some(BillingPeriod::calendar_month(at)),
        ..NewEvent::new(Some(account_id.to_owned()), kind, at)
    }
}

pub fn api_call(
    account_id: &str,
    at: DateTime<Utc>,
    method: &str,
    endpoint: &str,
    status: i32,
    ms: i64,
) -> NewEvent {
    NewEvent {
        method: Some(method.to_owned()),
        endpoint: Some(endpoint.to_owned()),
        status_code: Some(status),
        response_time_ms: Some(ms),
        ..event(account_id, EventKind::ApiCall, at)
    }
}

pub fn tool_use(account_id: &str, at: DateTime<Utc>, skill: &str, tool: &str) -> NewEvent {
    NewEvent {
        skill_id: Some(skill.to_owned()),
        tool_name: Some(tool.to_owned()),
        ..event(account_id, EventKind::ToolCall, at)
    }
}

pub fn install(account_id: &str, at: DateTime<Utc>, skill: &str) -> NewEvent {
    NewEvent {
        skill_id: Some(skill.to_owned()),
        tool_name: Some("install_confirmed".to_owned()),
        ..event(account_id, EventKind::Install, at)
    }
}

pub const SNAPSHOT: &str = "query($d: Int!) {
    currentUsage { periodStart periodEnd calls limit remaining overageCalls overageCostCents usagePercentage }
    usageHistory(days: $d) { date totalCalls successfulCalls failedCalls avgResponseTimeMs }
    endpointStats(days: $d, limit: 100) { endpoint method totalCalls failedCalls avgResponseTimeMs p95ResponseTimeMs }
    toolStats(days: $d, limit: 100) { skillId toolName calls lastUsedAt }
    me { account { currentUsage { calls } } }
}";

impl TestApp {
    /// Writes events through the recorder, as ingestion does.
    pub async fn record(&self, events: Vec<NewEvent>) {
        // Generous: these tests write thousands of events at a time and hold no locks.
        let deadline = || Deadline::after(std::time::Duration::from_secs(30));
        for chunk in events.chunks(1000) {
            self.state
                .ingestion
                .recorder
                .record(chunk.to_vec(), Vec::new(), deadline())
                .await
                .expect("recorded");
        }
    }

    /// A new member with its own account: (token, account id).
    pub async fn member(&self) -> (String, String) {
        let email = format!("m-{}@example.com", uuid::Uuid::new_v4().simple());
        let super::SignedUp {
            token, account_id, ..
        } = self.sign_up(&email).await;
        (token, account_id)
    }

    /// An account row on `plan`, without users (for pages of many accounts).
    pub async fn bare_account(&self, name: &str, plan: &str) -> String {
        let id = tally::domain::accounts::new_id();
        tally::entity::account::ActiveModel {
            id: Set(id.clone()),
            name: Set(name.to_owned()),
            plan_code: Set(plan.to_owned()),
            initial_plan_code: Set(plan.to_owned()),
            billing_customer_id: Set(None),
            billing_period_start: Set(None),
            billing_period_end: Set(None),
            billing_event_created_at: Set(None),
            created_at: Set(super::Clock::now(&self.clock)),
        }
        .insert(&self.state.db)
        .await
        .expect("account");
        id
    }

    /// Every analytics answer of the token's account over `days` days, as JSON.
    pub async fn snapshot(&self, token: &str, days: i64) -> Value {
        self.graphql_ok(Some(token), SNAPSHOT, json!({ "d": days }))
            .await
    }

    /// The raw events of an account, read from `usage_events`.
    pub async fn raw_events(&self, account_id: &str) -> Vec<RawEvent> {
        usage_event::Entity::find()
            .filter(usage_event::Column::AccountId.eq(account_id))
            .all(&self.state.db)
            .await
            .expect("raw events")
            .into_iter()
            .map(|event| RawEvent {
                kind: event.kind,
                method: event.method,
                endpoint: event.endpoint,
                status: event.status_code,
                ms: event.response_time_ms,
                skill: event.skill_id,
                tool: event.tool_name,
                occurred_at: event.occurred_at,
                cost: event.cost,
            })
            .collect()
    }
}

/// One stored event, as the naive computations read it.
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub kind: String,
    pub method: Option<String>,
    pub endpoint: Option<String>,
    pub status: Option<i32>,
    pub ms: Option<i64>,
    pub skill: Option<String>,
    pub tool: Option<String>,
    pub occurred_at: i64,
    pub cost: i64,
}

impl RawEvent {
    fn day(&self) -> NaiveDate {
        Utc.timestamp_millis_opt(self.occurred_at)
            .unwrap()
            .date_naive()
    }
}

fn first_day(now: DateTime<Utc>, days: i64) -> NaiveDate {
    now.date_naive()
        .checked_sub_days(Days::new(days as u64 - 1))
        .unwrap()
}

fn in_window(e: &RawEvent, now: DateTime<Utc>, days: i64) -> bool {
    let day = e.day();
    first_day(now, days) <= day && day <= now.date_naive()
}

fn mean(sum: i64, count: i64) -> Value {
    if count == 0 {
        Value::Null
    } else {
        json!((sum + count / 2) / count)
    }
}

/// The exact nearest-rank quantile of some response times.
pub fn exact_quantile(values: &mut [i64], q: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).max(1);
    Some(values[rank - 1])
}

/// The contract's tolerance for p95: 5% or 1 ms, whichever is larger.
pub fn p95_close(read: i64, exact: i64) -> bool {
    (read - exact).abs() as f64 <= (exact as f64 * 0.05).max(1.0)
}

/// `usageHistory(days)` from raw events.
fn naive_history(events: &[RawEvent], now: DateTime<Utc>, days: i64) -> Value {
    let mut by_day: BTreeMap<NaiveDate, [i64; 5]> = BTreeMap::new();
    for e in events.iter().filter(|e| in_window(e, now, days)) {
        let slot = by_day.entry(e.day()).or_default();
        match e.kind.as_str() {
            // Calls are billable calls: an API call weighs its cost.
            "API_CALL" => {
                slot[0] += e.cost;
                match e.status {
                    Some(s) if (200..400).contains(&s) => slot[1] += e.cost,
                    Some(s) if s >= 400 => slot[2] += e.cost,
                    _ => {}
                }
                if let Some(ms) = e.ms {
                    slot[3] += ms;
                    slot[4] += 1;
                }
            }
            "TOOL_CALL" => slot[0] += e.cost,
            _ => {}
        }
    }
    let first = first_day(now, days);
    Value::Array(
        first
            .iter_days()
            .take(days as usize)
            .map(|day| {
                let [calls, ok, failed, sum, count] = by_day.get(&day).copied().unwrap_or_default();
                json!({
                    "date": day.format("%Y-%m-%d").to_string(),
                    "totalCalls": calls,
                    "successfulCalls": ok,
                    "failedCalls": failed,
                    "avgResponseTimeMs": mean(sum, count),
                })
            })
            .collect(),
    )
}

/// `endpointStats(days, limit)` from raw events, with the exact p95 in `p95ResponseTimeMs`.
pub fn naive_endpoint_stats(
    events: &[RawEvent],
    now: DateTime<Utc>,
    days: i64,
    limit: usize,
) -> Vec<Value> {
    // (method, endpoint) → (calls by cost, failures by cost, requests, their latencies)
    type Sums = (i64, i64, i64, Vec<i64>);
    let mut by_key: HashMap<(String, String), Sums> = HashMap::new();
    for e in events
        .iter()
        .filter(|e| e.kind == "API_CALL" && in_window(e, now, days))
    {
        let key = (
            e.method.clone().unwrap_or_default(),
            e.endpoint.clone().unwrap_or_default(),
        );
        let slot = by_key.entry(key).or_default();
        slot.0 += e.cost;
        if e.status.is_some_and(|s| s >= 400) {
            slot.1 += e.cost;
        }
        slot.2 += 1;
        if let Some(ms) = e.ms {
            slot.3.push(ms);
        }
    }
    let mut rows: Vec<_> = by_key.into_iter().collect();
    rows.sort_by(|(ka, a), (kb, b)| b.0.cmp(&a.0).then_with(|| ka.cmp(kb)));
    rows.into_iter()
        .take(limit)
        .map(
            |((method, endpoint), (calls, failed, requests, mut latencies))| {
                let sum: i64 = latencies.iter().sum();
                let count = latencies.len() as i64;
                let shown = |name: String| {
                    if name.is_empty() {
                        "(unspecified)".to_owned()
                    } else {
                        name
                    }
                };
                json!({
                    "endpoint": shown(endpoint),
                    "method": shown(method),
                    "totalCalls": calls,
                    "requests": requests,
                    "failedCalls": failed,
                    "avgResponseTimeMs": mean(sum, count),
                    "p95ResponseTimeMs": exact_quantile(&mut latencies, 0.95),
                })
            },
        )
        .collect()
}

/// `toolStats(days, limit)` from raw events.
fn naive_tool_stats(
    events: &[RawEvent],
    now: DateTime<Utc>,
    days: i64,
    limit: usize,
) -> Vec<Value> {
    let mut by_key: HashMap<(String, String), (i64, i64)> = HashMap::new();
    for e in events
        .iter()
        .filter(|e| e.kind != "API_CALL" && in_window(e, now, days))
    {
        let key = (
            e.skill.clone().unwrap_or_default(),
            e.tool.clone().unwrap_or_default(),
        );
        let slot = by_key.entry(key).or_insert((0, i64::MIN));
        slot.0 += 1;
        slot.1 = slot.1.max(e.occurred_at);
    }
    let mut rows: Vec<_> = by_key.into_iter().collect();
    rows.sort_by(|(ka, a), (kb, b)| b.0.cmp(&a.0).then_with(|| ka.cmp(kb)));
    rows.into_iter()
        .take(limit)
        .map(|((skill, tool), (calls, last))| {
            json!({
                "skillId": skill,
                "toolName": tool,
                "calls": calls,
                "lastUsedAt": graphql_datetime(Utc.timestamp_millis_opt(last).unwrap()),
            })
        })
        .collect()
}

/// Quota calls of the calendar month containing `now`, from raw events.
fn naive_period_calls(events: &[RawEvent], now: DateTime<Utc>) -> i64 {
    let period = BillingPeriod::calendar_month(now);
    events
        .iter()
        .filter(|e| period.start_ms() <= e.occurred_at && e.occurred_at < period.end_ms())
        .map(|e| e.cost)
        .sum()
}

/// How async-graphql writes a `DateTime<Utc>` (whole seconds without a fraction, `+00:00`).
fn graphql_datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339()
}

/// Holds the analytics answers read over `days` days with `limit` rows a page (`currentUsage.calls`,
/// `usageHistory`, `endpointStats`, `toolStats`, as [`SNAPSHOT`] asks them) against the same
/// answers computed from the raw events. Returns a description of the first difference.
pub fn compare_with_raw_events(
    read: &Value,
    events: &[RawEvent],
    now: DateTime<Utc>,
    days: i64,
    limit: usize,
) -> Result<(), String> {
    let history = naive_history(events, now, days);
    if read["usageHistory"] != history {
        return Err(format!(
            "history over {days} days: {} vs {history}",
            read["usageHistory"]
        ));
    }
    compare_endpoint_stats(
        &read["endpointStats"],
        &naive_endpoint_stats(events, now, days, limit),
    )?;
    let tools = Value::Array(naive_tool_stats(events, now, days, limit));
    if read["toolStats"] != tools {
        return Err(format!(
            "tools over {days} days: {} vs {tools}",
            read["toolStats"]
        ));
    }
    let calls = naive_period_calls(events, now);
    if read["currentUsage"]["calls"] != calls {
        return Err(format!("period calls: {} vs {calls}", read["currentUsage"]));
    }
    Ok(())
}

/// Compares endpoint stats: everything exact except p95, which must be within the tolerance of
/// the exact value. Returns a description of the first difference.
pub fn compare_endpoint_stats(read: &Value, expected: &[Value]) -> Result<(), String> {
    let read = read.as_array().ok_or("endpointStats is not a list")?;
    if read.len() != expected.len() {
        return Err(format!(
            "{} endpoints read, {} expected:\n{read:#?}\n{expected:#?}",
            read.len(),
            expected.len()
        ));
    }
    for (r, e) in read.iter().zip(expected) {
        for field in [
            "endpoint",
            "method",
            "totalCalls",
            "requests",
            "failedCalls",
            "avgResponseTimeMs",
        ] {
            // Queries that do not ask for a field are not checked on it.
            if r.get(field).is_none() {
                continue;
            }
            if r[field] != e[field] {
                return Err(format!("{field} differs: read {r}, expected {e}"));
            }
        }
        match (
            r["p95ResponseTimeMs"].as_i64(),
            e["p95ResponseTimeMs"].as_i64(),
        ) {
            (Some(read), Some(exact)) if p95_close(read, exact) => {}
            (None, None) => {}
            _ => return Err(format!("p95 too far: read {r}, exact {e}")),
        }
    }
    Ok(())
}
