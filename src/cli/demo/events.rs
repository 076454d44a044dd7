//! The demo's usage events: API calls to 200 endpoints of skewed (Zipf-like) popularity with
//! log-normal response times and per-endpoint error rates, hook tool uses and installs, spread
//! over the last days and written through the recorder's own writer.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use sea_orm::DatabaseConnection;

use super::draws::zipf;
use super::options::{DemoOptions, ENDPOINTS};
use super::people::DemoAccount;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::periods::BillingPeriod;
use crate::domain::recorder::{self, EventKind, NewEvent};

/// Events per transaction.
const EVENTS_PER_TRANSACTION: usize = 20_000;

/// One of the 200 endpoints, with its own latency and error profile.
struct Endpoint {
    method: &'static str,
    path: String,
    /// Median response time (ms) and spread of its logarithm.
    median_ms: f64,
    sigma: f64,
    error_rate: f64,
}

const RESOURCES: [&str; 20] = [
    "users",
    "orders",
    "items",
    "payments",
    "invoices",
    "search",
    "reports",
    "sessions",
    "files",
    "messages",
    "customers",
    "products",
    "carts",
    "shipments",
    "webhooks",
    "teams",
    "projects",
    "events",
    "metrics",
    "tokens",
];
const SKILLS: [&str; 12] = [
    "code-review",
    "lint",
    "deploy",
    "test-runner",
    "docs",
    "db-migrate",
    "security-scan",
    "format",
    "refactor",
    "search",
    "release-notes",
    "triage",
];
const TOOLS: [&str; 8] = [
    "Read", "Edit", "Bash", "Grep", "Write", "Glob", "WebFetch", "Task",
];
const HOOK_EVENTS: [&str; 3] = ["PreToolUse", "PostToolUse", "Stop"];

fn endpoints(rng: &mut StdRng) -> Vec<Endpoint> {
    let shapes: [(&str, &str, f64); 10] = [
        ("GET", "/v1/{r}", 1.0),
        ("GET", "/v1/{r}/{id}", 0.6),
        ("POST", "/v1/{r}", 2.0),
        ("PUT", "/v1/{r}/{id}", 1.8),
        ("DELETE", "/v1/{r}/{id}", 1.2),
        ("GET", "/v2/{r}", 0.9),
        ("GET", "/v2/{r}/{id}", 0.5),
        ("POST", "/v2/{r}/batch", 4.0),
        ("PATCH", "/v2/{r}/{id}", 1.5),
        ("GET", "/v1/{r}/export", 8.0),
    ];
    let mut all = Vec::with_capacity(ENDPOINTS);
    for resource in RESOURCES {
        for (method, shape, slowness) in shapes {
            let base: f64 = rng.random_range(8.0f64.ln()..120.0f64.ln()).exp();
            all.push(Endpoint {
                method,
                path: shape.replace("{r}", resource),
                median_ms: base * slowness,
                sigma: rng.random_range(0.35..0.9),
                error_rate: rng.random_range(0.002..0.06),
            });
        }
    }
    // Popularity is by rank: shuffle so the popular ones are of every shape.
    all.shuffle(rng);
    all
}

/// A standard normal sample (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn status_of(rng: &mut StdRng, endpoint: &Endpoint) -> i32 {
    if rng.random_bool(endpoint.error_rate.clamp(0.0, 1.0)) {
        *[400, 401, 403, 404, 404, 409, 422, 429, 500, 502, 503]
            .choose(rng)
            .unwrap_or(&500)
    } else {
        match endpoint.method {
            "POST" => 201,
            "DELETE" => 204,
            "GET" if rng.random_bool(0.05) => 304,
            _ => 200,
        }
    }
}

/// The draws that make up an event: who, when, what kind, which endpoint, skill and tool.
struct Picks<'a> {
    accounts: &'a [DemoAccount],
    account: WeightedIndex<f64>,
    /// Accounts whose plan never refuses calls, where a full blocking account's calls go.
    paid: Vec<usize>,
    endpoints: Vec<Endpoint>,
    endpoint: WeightedIndex<f64>,
    skill: WeightedIndex<f64>,
    tool: WeightedIndex<f64>,
    /// Calls per (account, month), to keep blocking plans within their quota.
    month_calls: HashMap<(usize, i64), i64>,
}

impl<'a> Picks<'a> {
    fn new(accounts: &'a [DemoAccount], rng: &mut StdRng) -> DomainResult<Self> {
        let endpoints = endpoints(rng);
        Ok(Self {
            endpoint: zipf(endpoints.len(), 1.1)?,
            skill: zipf(SKILLS.len(), 1.0)?,
            tool: zipf(TOOLS.len(), 0.8)?,
            account: WeightedIndex::new(accounts.iter().map(|a| a.weight))
                .map_err(|err| DomainError::internal(anyhow::anyhow!("weights: {err}")))?,
            paid: (0..accounts.len())
                .filter(|&i| accounts[i].blocking_quota.is_none())
                .collect(),
            endpoints,
            accounts,
            month_calls: HashMap::new(),
        })
    }

    fn kind(rng: &mut StdRng) -> EventKind {
        let roll: f64 = rng.random();
        if roll < 0.85 {
            EventKind::ApiCall
        } else if roll < 0.98 {
            EventKind::ToolCall
        } else {
            EventKind::Install
        }
    }

    fn used(&self, who: usize, period: BillingPeriod) -> i64 {
        self.month_calls
            .get(&(who, period.start_ms()))
            .copied()
            .unwrap_or(0)
    }

    /// The account of an event of `kind` in `period`: a blocking account whose quota is used up
    /// is drawn again a few times, then replaced by a paid one. Calls are counted.
    fn account(&mut self, kind: EventKind, period: BillingPeriod, rng: &mut StdRng) -> usize {
        let mut who = self.account.sample(rng);
        if kind == EventKind::Install {
            return who;
        }
        for _ in 0..10 {
            match self.accounts[who].blocking_quota {
                Some(quota) if self.used(who, period) >= quota => who = self.account.sample(rng),
                _ => break,
            }
        }
        if let (Some(quota), Some(&fallback)) =
            (self.accounts[who].blocking_quota, self.paid.choose(rng))
        {
            if self.used(who, period) >= quota {
                who = fallback;
            }
        }
        *self
            .month_calls
            .entry((who, period.start_ms()))
            .or_default() += 1;
        who
    }

    /// One event at `at` in `period`.
    fn event(&mut self, at: DateTime<Utc>, period: BillingPeriod, rng: &mut StdRng) -> NewEvent {
        let kind = Self::kind(rng);
        let account = &self.accounts[self.account(kind, period, rng)];
        let mut event = NewEvent {
            api_key_id: account.keys.choose(rng).cloned(),
            period: Some(period),
            received_at: at + Duration::milliseconds(rng.random_range(5..400)),
            ..NewEvent::new(Some(account.id.clone()), kind, at)
        };
        match kind {
            EventKind::ApiCall => {
                let endpoint = &self.endpoints[self.endpoint.sample(rng)];
                let ms = (endpoint.median_ms * (endpoint.sigma * normal(rng)).exp()).round();
                event.method = Some(endpoint.method.to_owned());
                event.endpoint = Some(endpoint.path.clone());
                event.status_code = Some(status_of(rng, endpoint));
                event.response_time_ms = Some((ms as i64).clamp(1, 120_000));
            }
            EventKind::ToolCall => {
                event.skill_id = Some(SKILLS[self.skill.sample(rng)].to_owned());
                event.tool_name = Some(TOOLS[self.tool.sample(rng)].to_owned());
                event.hook_event = HOOK_EVENTS.choose(rng).map(|h| (*h).to_owned());
            }
            EventKind::Install => {
                event.skill_id = Some(SKILLS[self.skill.sample(rng)].to_owned());
                event.tool_name = Some("install_confirmed".to_owned());
                event.metadata = Some(r#"{"source":"install-script"}"#.to_owned());
            }
        }
        event
    }
}

/// Writes `options.events` events spread over the days ending today (today only up to `now`),
/// in transactions of [`EVENTS_PER_TRANSACTION`]; how many were written.
pub(super) async fn write_events(
    db: &DatabaseConnection,
    options: &DemoOptions,
    now: DateTime<Utc>,
    accounts: &[DemoAccount],
    rng: &mut StdRng,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> DomainResult<u64> {
    let mut picks = Picks::new(accounts, rng)?;
    let today = now.date_naive();
    let days = i64::from(options.days);
    let mut written = 0u64;
    let mut batch: Vec<NewEvent> = Vec::with_capacity(EVENTS_PER_TRANSACTION);
    for day_index in 0..days {
        let day = today - Duration::days(days - 1 - day_index);
        let day_start = Utc
            .with_ymd_and_hms(day.year(), day.month(), day.day(), 0, 0, 0)
            .single()
            .unwrap_or(now);
        // Today only up to now.
        let span_ms = (now - day_start).num_milliseconds().clamp(1, 86_400_000);
        let share = options.events / days as u64
            + u64::from((day_index as u64) < options.events % days as u64);
        let period = BillingPeriod::calendar_month(day_start);
        for _ in 0..share {
            let at = day_start + Duration::milliseconds(rng.random_range(0..span_ms));
            batch.push(picks.event(at, period, rng));
            if batch.len() == EVENTS_PER_TRANSACTION {
                written += flush(db, &mut batch).await?;
                progress(written, options.events);
            }
        }
    }
    let last = flush(db, &mut batch).await?;
    if last > 0 {
        written += last;
        progress(written, options.events);
    }
    Ok(written)
}

async fn flush(db: &DatabaseConnection, batch: &mut Vec<NewEvent>) -> DomainResult<u64> {
    if batch.is_empty() {
        return Ok(0);
    }
    let refs: Vec<&NewEvent> = batch.iter().collect();
    recorder::write_batch(db, &refs, &[]).await?;
    let n = batch.len() as u64;
    batch.clear();
    Ok(n)
}
