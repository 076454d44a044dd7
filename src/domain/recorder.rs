//! The recorder: group commit of usage events.
//!
//! Handlers hand their events to one writer task and wait. The writer takes everything queued (up
//! to a cap), writes it in ONE transaction — event rows (`ON CONFLICT (account_id, event_id) DO
//! NOTHING`, so an event id is stored once per account), the period call counters, the daily
//! rollups and, at most once a minute per key, `api_keys.last_used_at` — commits, and only then
//! answers every waiter. A 200 is therefore durable, and one fsync serves a whole batch.
//!
//! An event reported by `/api/v1/events` whose id was recorded earlier by `/api/v1/verify`
//! completes that call (status, response time, rollups) instead of counting it again.
//!
//! A failed transaction gives its waiters' quota reservations back. When the database cannot
//! take writes (lost, busy, locked) every waiter gets 503. Any other failure may be one request's
//! data: the batch is written in halves until the requests that fail alone are found, which get
//! 500 (a retry would fail again); the others are written as usual.
//!
//! No request is stored after it was answered with an error: a request waits a bounded time for
//! the writer to claim its events and otherwise withdraws them (503); a claimed job's transaction
//! is bounded by the database's lock timeout, set below the request timeout.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr,
    TransactionTrait, Value,
};
use tokio::sync::{mpsc, oneshot};

use crate::domain::error::{is_connection_error, DomainError, DomainResult};
use crate::domain::histogram;
use crate::domain::periods::BillingPeriod;
use crate::domain::quota::Reservation;
use crate::metrics::Metrics;

/// Most events written in one transaction.
pub const BATCH_CAP: usize = 4_096;
/// Requests that may wait in the queue before handlers wait to enqueue.
const QUEUE_DEPTH: usize = 16_384;
/// Most rows per multi-row statement (SQLite allows 32,766 bound values per statement).
const ROWS_PER_STATEMENT: usize = 512;
/// `api_keys.last_used_at` is written at most this often per key.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    ApiCall,
    ToolCall,
    Install,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ApiCall => "API_CALL",
            EventKind::ToolCall => "TOOL_CALL",
            EventKind::Install => "INSTALL",
        }
    }
}

/// An event to store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub account_id: Option<String>,
    pub api_key_id: Option<String>,
    pub kind: EventKind,
    /// Ignored (stored as NULL) without an account: idempotency is per account.
    pub event_id: Option<String>,
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub status_code: Option<i32>,
    pub response_time_ms: Option<i64>,
    pub skill_id: Option<String>,
    pub tool_name: Option<String>,
    pub hook_event: Option<String>,
    pub input_snippet: Option<String>,
    pub output_snippet: Option<String>,
    /// JSON text.
    pub metadata: Option<String>,
    /// Calls counted against the quota of `period`.
    pub cost: i64,
    /// The billing period that contains `occurred_at` (required when `cost > 0`).
    pub period: Option<BillingPeriod>,
    pub expired_key: bool,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// A finished call report: may complete a call recorded earlier (by verify) with this id.
    pub completes: bool,
}

impl NewEvent {
    /// An event of `kind` at `at` with nothing else known yet: no key, id or details, no period,
    /// received when it occurred; it costs one call, or none for an install.
    pub fn new(account_id: Option<String>, kind: EventKind, at: DateTime<Utc>) -> Self {
        Self {
            account_id,
            api_key_id: None,
            kind,
            event_id: None,
            endpoint: None,
            method: None,
            status_code: None,
            response_time_ms: None,
            skill_id: None,
            tool_name: None,
            hook_event: None,
            input_snippet: None,
            output_snippet: None,
            metadata: None,
            cost: i64::from(kind != EventKind::Install),
            period: None,
            expired_key: false,
            occurred_at: at,
            received_at: at,
            completes: false,
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored and counted.
    Accepted,
    /// Completed an earlier verified call; counted nothing new.
    Completed,
    /// Its id was already recorded for the account; nothing stored.
    Duplicate,
}

/// Why a request's events were not written, as its handler answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The database cannot take writes right now (gone, busy, locked): 503, worth retrying.
    Unavailable,
    /// This request's own events cannot be written: 500, a retry would fail the same way.
    Rejected,
}

enum Message {
    Record(Ticket),
    Flush(oneshot::Sender<()>),
}

struct Job {
    events: Vec<NewEvent>,
    reservations: Vec<Reservation>,
    reply: oneshot::Sender<Result<Vec<Outcome>, Failure>>,
}

/// A queued job. Whoever takes the job out first owns it: the writer, which then writes it, or
/// the waiting request giving up, and then it is never written.
#[derive(Clone)]
struct Ticket(Arc<Mutex<Option<Job>>>);

impl Ticket {
    fn new(job: Job) -> Self {
        Self(Arc::new(Mutex::new(Some(job))))
    }

    fn take(&self) -> Option<Job> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Withdraws a job its request no longer waits for (it gave up, or its future was dropped: the
/// client left or the request timed out), unless the writer has claimed it already. Dropping the
/// withdrawn job gives its quota reservations back.
struct Withdraw(Ticket);

impl Withdraw {
    /// True when the job was still queued and is now withdrawn.
    fn now(&self) -> bool {
        self.0.take().is_some()
    }
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        self.now();
    }
}

/// The handle handlers use; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Message>,
    /// How long a request waits for the writer to claim its events.
    claim_wait: Duration,
}

impl Recorder {
    /// Starts the writer task. It stops when every `Recorder` handle is gone. A request whose
    /// events the writer has not claimed within `claim_wait` is answered 503 and its events are
    /// never written; once claimed, the write takes at most the database's lock timeout.
    pub fn start(db: DatabaseConnection, metrics: Metrics, claim_wait: Duration) -> Self {
        let (queue, inbox) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(Writer::new(db, metrics).run(inbox));
        Self { queue, claim_wait }
    }

    /// Writes `events` (durably) and says what became of each. `reservations` are the quota
    /// reservations made for them: settled with what was counted, or given back on failure.
    pub async fn record(
        &self,
        events: Vec<NewEvent>,
        reservations: Vec<Reservation>,
    ) -> DomainResult<Vec<Outcome>> {
        let deadline = tokio::time::Instant::now() + self.claim_wait;
        let (reply, mut answer) = oneshot::channel();
        let ticket = Ticket::new(Job {
            events,
            reservations,
            reply,
        });
        let withdraw = Withdraw(ticket.clone());
        match tokio::time::timeout_at(deadline, self.queue.send(Message::Record(ticket))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(unavailable("the recorder has stopped")),
            Err(_) => return Err(unavailable("the recorder's queue stayed full")),
        }
        let answered = match tokio::time::timeout_at(deadline, &mut answer).await {
            Ok(answered) => answered,
            Err(_) if withdraw.now() => {
                return Err(unavailable("the recorder did not take the events in time"))
            }
            // Claimed while the wait ran out: the write is bounded by the database's lock
            // timeout, so its answer comes before the request times out.
            Err(_) => answer.await,
        };
        match answered {
            Ok(Ok(outcomes)) => Ok(outcomes),
            Ok(Err(Failure::Unavailable)) => Err(unavailable("writing usage events failed")),
            Ok(Err(Failure::Rejected)) => Err(DomainError::internal(anyhow::anyhow!(
                "the database refused this request's usage events (see the recorder's log)"
            ))),
            Err(_) => Err(unavailable("the recorder dropped a request")),
        }
    }

    /// Waits until everything queued before this call is written (or has failed).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

fn unavailable(why: &'static str) -> DomainError {
    DomainError::unavailable(anyhow::anyhow!(why))
}

struct Writer {
    db: DatabaseConnection,
    metrics: Metrics,
    /// When each key's `last_used_at` was last written (unix ms of the request).
    key_touched: HashMap<String, i64>,
}

impl Writer {
    fn new(db: DatabaseConnection, metrics: Metrics) -> Self {
        Self {
            db,
            metrics,
            key_touched: HashMap::new(),
        }
    }

    async fn run(mut self, mut inbox: mpsc::Receiver<Message>) {
        while let Some(first) = inbox.recv().await {
            let mut jobs = Vec::new();
            let mut flushes = Vec::new();
            let mut events = 0;
            let mut take = |message: Message, jobs: &mut Vec<Job>, events: &mut usize| match message
            {
                // A job withdrawn by its request is skipped: nobody waits for it any more.
                Message::Record(ticket) => {
                    if let Some(job) = ticket.take() {
                        *events += job.events.len();
                        jobs.push(job);
                    }
                }
                Message::Flush(done) => flushes.push(done),
            };
            take(first, &mut jobs, &mut events);
            while events < BATCH_CAP {
                match inbox.try_recv() {
                    Ok(message) => take(message, &mut jobs, &mut events),
                    Err(_) => break,
                }
            }
            if !jobs.is_empty() {
                self.write(jobs).await;
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    /// Writes the jobs in one transaction and answers them. False when the database could not
    /// take writes at all.
    async fn write(&mut self, jobs: Vec<Job>) -> bool {
        let started = Instant::now();
        let events: Vec<&NewEvent> = jobs.iter().flat_map(|job| job.events.iter()).collect();
        let touches = self.due_key_touches(&events);
        let result = write_batch(&self.db, &events, &touches).await;
        drop(events);
        match result {
            Ok(outcomes) => {
                self.metrics.batch(outcomes.len(), started.elapsed());
                for (key, at) in touches {
                    self.key_touched.insert(key, at.timestamp_millis());
                }
                self.answer(jobs, outcomes);
                true
            }
            Err(err) => self.failed(jobs, err).await,
        }
    }

    /// A failed write. When the database cannot take writes, every request fails alike: 503,
    /// without trying again. Any other error may come from one request's data: the jobs are
    /// written in halves until the ones that fail alone are found (a few transactions, not one
    /// per request); those get 500 and are logged, the others are written.
    async fn failed(&mut self, mut jobs: Vec<Job>, err: DbErr) -> bool {
        self.metrics.database_error("recording events");
        if is_transient(&err, self.db.get_database_backend()) {
            tracing::warn!(error = %err, requests = jobs.len(), "the database cannot take usage events right now");
            answer_failed(jobs, Failure::Unavailable);
            return false;
        }
        if jobs.len() == 1 {
            let job = &jobs[0];
            let account = job.events.iter().find_map(|e| e.account_id.as_deref());
            tracing::error!(
                error = %err,
                account = account.unwrap_or("-"),
                events = job.events.len(),
                "the database refused one request's usage events"
            );
            answer_failed(jobs, Failure::Rejected);
            return true;
        }
        tracing::warn!(error = %err, requests = jobs.len(), "writing a batch of usage events failed; writing it in halves");
        let second = jobs.split_off(jobs.len() / 2);
        if Box::pin(self.write(jobs)).await {
            Box::pin(self.write(second)).await
        } else {
            answer_failed(second, Failure::Unavailable);
            false
        }
    }

    fn answer(&self, jobs: Vec<Job>, outcomes: Vec<Outcome>) {
        let mut outcomes = outcomes.into_iter();
        let (mut stored, mut duplicates) = (0u64, 0u64);
        for job in jobs {
            let mine: Vec<Outcome> = outcomes.by_ref().take(job.events.len()).collect();
            let mut counted: HashMap<i64, i64> = HashMap::new();
            for (event, outcome) in job.events.iter().zip(&mine) {
                match outcome {
                    Outcome::Accepted => {
                        stored += 1;
                        if let Some(period) = event.period {
                            *counted.entry(period.start_ms()).or_default() += event.cost;
                        }
                    }
                    Outcome::Completed => {}
                    Outcome::Duplicate => duplicates += 1,
                }
            }
            for reservation in job.reservations {
                let calls = counted
                    .get(&reservation.period_start_ms())
                    .copied()
                    .unwrap_or(0);
                reservation.settle(calls);
            }
            let _ = job.reply.send(Ok(mine));
        }
        self.metrics.events_written(stored, duplicates);
    }

    /// Keys used in this batch whose `last_used_at` was not written in the last minute.
    fn due_key_touches(&mut self, events: &[&NewEvent]) -> Vec<(String, DateTime<Utc>)> {
        let mut due: HashMap<&str, DateTime<Utc>> = HashMap::new();
        for event in events {
            let Some(key) = event.api_key_id.as_deref() else {
                continue;
            };
            let at = event.received_at;
            let fresh = self
                .key_touched
                .get(key)
                .is_some_and(|last| at.timestamp_millis() - last < LAST_USED_RESOLUTION_MS);
            if !fresh {
                let slot = due.entry(key).or_insert(at);
                *slot = (*slot).max(at);
            }
        }
        if self.key_touched.len() > 100_000 {
            self.key_touched.clear();
        }
        due.into_iter().map(|(k, at)| (k.to_owned(), at)).collect()
    }
}

/// Answers jobs that were not written. Dropping a job's reservations gives its calls back.
fn answer_failed(jobs: Vec<Job>, failure: Failure) {
    for job in jobs {
        let _ = job.reply.send(Err(failure));
    }
}

/// True when a write failed because the database cannot take writes right now — unreachable,
/// busy or locked past its lock timeout, out of resources — rather than because of what was
/// written: every request would fail alike, and a retry later may succeed.
fn is_transient(err: &DbErr, backend: DatabaseBackend) -> bool {
    use sea_orm::sqlx::Error;
    if is_connection_error(err) {
        return true;
    }
    let (DbErr::Exec(RuntimeErr::SqlxError(cause)) | DbErr::Query(RuntimeErr::SqlxError(cause))) =
        err
    else {
        return false;
    };
    match cause.as_ref() {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(db) => db.code().is_some_and(|code| transient_code(backend, &code)),
        _ => false,
    }
}

/// Database error codes that say nothing about the data written.
fn transient_code(backend: DatabaseBackend, code: &str) -> bool {
    match backend {
        // SQLSTATE classes: connection, transaction rollback (serialization, deadlock),
        // insufficient resources, operator intervention (statement timeout, shutdown), system
        // error; and lock not available (lock timeout).
        DatabaseBackend::Postgres => {
            code == "55P03"
                || ["08", "40", "53", "57", "58"]
                    .iter()
                    .any(|class| code.starts_with(class))
        }
        // Extended result codes, whose low byte is the primary code: BUSY, LOCKED, NOMEM,
        // READONLY, INTERRUPT, IOERR, FULL, CANTOPEN, PROTOCOL.
        _ => code
            .parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 5..=10 | 13..=15)),
    }
}

/// Call outcomes to add to a daily rollup row (per endpoint, or per account and day). Calls,
/// successes and failures are billable calls (an API call weighs its `cost`), so that what is
/// charted is what is billed; the latency sums are per request.
#[derive(Debug, Default, Clone, Copy)]
struct CallSums {
    calls: i64,
    successes: i64,
    failures: i64,
    latency_sum_ms: i64,
    latency_count: i64,
}

impl CallSums {
    /// One finished API call worth `cost` calls.
    fn finish(&mut self, status: Option<i32>, latency: Option<i64>, cost: i64) {
        match status {
            Some(code) if (200..400).contains(&code) => self.successes += cost,
            Some(code) if code >= 400 => self.failures += cost,
            _ => {}
        }
        if let Some(ms) = latency {
            self.latency_sum_ms += ms;
            self.latency_count += 1;
        }
    }

    /// The five sums as values, in the rollup tables' column order.
    fn values(&self) -> [Expr; 5] {
        [
            Expr::val(self.calls),
            Expr::val(self.successes),
            Expr::val(self.failures),
            Expr::val(self.latency_sum_ms),
            Expr::val(self.latency_count),
        ]
    }
}

/// The rollup columns that [`CallSums`] adds to.
const CALL_SUM_COLUMNS: [&str; 5] = [
    "calls",
    "successes",
    "failures",
    "latency_sum_ms",
    "latency_count",
];

/// Sums to add to one daily endpoint rollup row.
#[derive(Debug, Default, Clone)]
struct EndpointDelta {
    sums: CallSums,
    /// API calls (events), whatever their cost.
    requests: i64,
    latency_buckets: histogram::Counts,
}

impl EndpointDelta {
    fn finish(&mut self, status: Option<i32>, latency: Option<i64>, cost: i64) {
        self.sums.finish(status, latency, cost);
        if let Some(ms) = latency {
            *self
                .latency_buckets
                .entry(histogram::bucket_of(ms))
                .or_default() += 1;
        }
    }
}

/// (account, day, method, endpoint)
type EndpointKey = (String, String, String, String);
/// (account, day, kind, skill, tool)
type ToolKey = (String, String, &'static str, String, String);
/// (day, skill, platform, version); unknown values are empty.
type InstallKey = (String, String, String, String);

/// Installs to add to one daily install rollup row.
#[derive(Debug, Default, Clone, Copy)]
struct InstallDelta {
    anonymous: i64,
    attributed: i64,
    last_at: i64,
}

#[derive(Default)]
struct Rollups {
    periods: BTreeMap<(String, i64), (i64, i64)>,
    endpoints: BTreeMap<EndpointKey, EndpointDelta>,
    tools: BTreeMap<ToolKey, (i64, i64)>,
    /// (account, day) → billable calls (API calls by cost, tool uses), and the API calls'
    /// outcomes.
    daily: BTreeMap<(String, String), CallSums>,
    installs: BTreeMap<InstallKey, InstallDelta>,
}

impl Rollups {
    fn finish_call(
        &mut self,
        key: &EndpointKey,
        status: Option<i32>,
        latency: Option<i64>,
        cost: i64,
    ) {
        self.endpoints
            .entry(key.clone())
            .or_default()
            .finish(status, latency, cost);
        self.daily
            .entry((key.0.clone(), key.1.clone()))
            .or_default()
            .finish(status, latency, cost);
    }

    /// Installs are counted with or without an account (anonymous ones have none).
    fn add_install(&mut self, event: &NewEvent) {
        let metadata: Option<serde_json::Value> = event
            .metadata
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok());
        let field = |name: &str| {
            metadata
                .as_ref()
                .and_then(|m| m.get(name))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let key = (
            day_of(event.occurred_at),
            event.skill_id.clone().unwrap_or_default(),
            field("platform"),
            field("version"),
        );
        let at = event.occurred_at.timestamp_millis();
        let slot = self.installs.entry(key).or_insert(InstallDelta {
            last_at: at,
            ..InstallDelta::default()
        });
        if event.account_id.is_some() {
            slot.attributed += 1;
        } else {
            slot.anonymous += 1;
        }
        slot.last_at = slot.last_at.max(at);
    }

    fn add_accepted(&mut self, event: &NewEvent) {
        if event.kind == EventKind::Install {
            self.add_install(event);
        }
        let Some(account) = event.account_id.as_ref() else {
            return;
        };
        if let (Some(period), true) = (event.period, event.cost > 0) {
            let slot = self
                .periods
                .entry((account.clone(), period.start_ms()))
                .or_insert((period.end_ms(), 0));
            slot.1 += event.cost;
        }
        let day = day_of(event.occurred_at);
        if event.kind != EventKind::Install {
            self.daily
                .entry((account.clone(), day.clone()))
                .or_default()
                .calls += event.cost;
        }
        match event.kind {
            EventKind::ApiCall => {
                let key = (
                    account.clone(),
                    day,
                    event.method.clone().unwrap_or_default(),
                    event.endpoint.clone().unwrap_or_default(),
                );
                let row = self.endpoints.entry(key.clone()).or_default();
                row.sums.calls += event.cost;
                row.requests += 1;
                self.finish_call(&key, event.status_code, event.response_time_ms, event.cost);
            }
            EventKind::ToolCall | EventKind::Install => {
                let key = (
                    account.clone(),
                    day,
                    event.kind.as_str(),
                    event.skill_id.clone().unwrap_or_default(),
                    event.tool_name.clone().unwrap_or_default(),
                );
                let at = event.occurred_at.timestamp_millis();
                let slot = self.tools.entry(key).or_insert((0, at));
                slot.0 += 1;
                slot.1 = slot.1.max(at);
            }
        }
    }
}

fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

fn day_of_millis(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(day_of)
        .unwrap_or_default()
}

/// Splits `n` rows into statements of power-of-two sizes (37 → 32, 4, 1), so that a handful of
/// statement shapes serve every batch and the connections' prepared-statement caches reuse them
/// instead of preparing (and keeping) one statement per batch size.
fn statement_sizes(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let size = (1usize << n.ilog2()).min(ROWS_PER_STATEMENT);
        n -= size;
        Some(size)
    })
}

fn build_error(err: sea_orm::sea_query::error::Error) -> DbErr {
    DbErr::Custom(format!("building a statement: {err}"))
}

const EVENT_COLUMNS: [&str; 18] = [
    "account_id",
    "api_key_id",
    "kind",
    "event_id",
    "endpoint",
    "method",
    "status_code",
    "response_time_ms",
    "skill_id",
    "tool_name",
    "hook_event",
    "input_snippet",
    "output_snippet",
    "metadata",
    "cost",
    "expired_key",
    "occurred_at",
    "received_at",
];

fn event_row(event: &NewEvent) -> Vec<Expr> {
    let event_id = event.account_id.as_ref().and(event.event_id.clone());
    let values: [Value; 18] = [
        event.account_id.clone().into(),
        event.api_key_id.clone().into(),
        event.kind.as_str().into(),
        event_id.into(),
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
    ];
    values.into_iter().map(Expr::val).collect()
}

/// Writes one batch in one transaction; the outcome of each event, in order. Public so that
/// `tally seed-demo` writes events and rollups exactly as the recorder does.
pub async fn write_batch(
    db: &DatabaseConnection,
    events: &[&NewEvent],
    key_touches: &[(String, DateTime<Utc>)],
) -> Result<Vec<Outcome>, DbErr> {
    use sea_orm::sea_query::ExprTrait;
    let txn = db.begin().await?;
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

    let inserted = insert_events(&txn, events, &to_insert).await?;
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
        complete_or_skip(&txn, account, events, &indexes, &mut outcomes, &mut rollups).await?;
    }

    upsert_rollups(&txn, &rollups).await?;
    for (key_id, at) in key_touches {
        let update = Query::update()
            .table("api_keys")
            .value("last_used_at", *at)
            .and_where(Expr::col("id").eq(key_id.as_str()))
            .to_owned();
        txn.execute(&update).await?;
    }
    txn.commit().await?;
    Ok(outcomes)
}

/// Inserts the events at `indexes`; the (account, event id) pairs actually inserted.
async fn insert_events<'e>(
    txn: &DatabaseTransaction,
    events: &[&'e NewEvent],
    indexes: &[usize],
) -> Result<HashSet<(&'e str, &'e str)>, DbErr> {
    let mut inserted = HashSet::new();
    let mut rest = indexes;
    for size in statement_sizes(indexes.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut insert = Query::insert();
        insert.into_table("usage_events").columns(EVENT_COLUMNS);
        let mut with_ids = false;
        for &i in chunk {
            insert.values(event_row(events[i])).map_err(build_error)?;
            with_ids |= events[i].account_id.is_some() && events[i].event_id.is_some();
        }
        insert.on_conflict(
            OnConflict::columns(["account_id", "event_id"])
                .do_nothing()
                .to_owned(),
        );
        if !with_ids {
            txn.execute(&insert).await?;
            continue;
        }
        insert.returning(Query::returning().columns(["account_id", "event_id"]));
        let rows = txn.query_all(&insert).await?;
        let mut returned: HashMap<String, HashSet<String>> = HashMap::new();
        for row in rows {
            let account: Option<String> = row.try_get_by_index(0)?;
            let id: Option<String> = row.try_get_by_index(1)?;
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
async fn complete_or_skip(
    txn: &DatabaseTransaction,
    account: &str,
    events: &[&NewEvent],
    indexes: &[usize],
    outcomes: &mut [Outcome],
    rollups: &mut Rollups,
) -> Result<(), DbErr> {
    use sea_orm::sea_query::ExprTrait;
    if !indexes.iter().any(|&i| events[i].completes) {
        return Ok(());
    }
    let ids: Vec<&str> = indexes
        .iter()
        .filter_map(|&i| events[i].event_id.as_deref())
        .collect();
    let select = Query::select()
        .columns([
            "id",
            "event_id",
            "kind",
            "status_code",
            "method",
            "endpoint",
            "occurred_at",
            "cost",
        ])
        .from("usage_events")
        .and_where(Expr::col("account_id").eq(account))
        .and_where(Expr::col("event_id").is_in(ids))
        .to_owned();
    struct Existing {
        id: i64,
        kind: String,
        status: Option<i32>,
        method: Option<String>,
        endpoint: Option<String>,
        occurred_at: i64,
        cost: i64,
    }
    let mut existing: HashMap<String, Existing> = HashMap::new();
    for row in txn.query_all(&select).await? {
        let event_id: Option<String> = row.try_get_by_index(1)?;
        if let Some(event_id) = event_id {
            existing.insert(
                event_id,
                Existing {
                    id: row.try_get_by_index(0)?,
                    kind: row.try_get_by_index(2)?,
                    status: row.try_get_by_index(3)?,
                    method: row.try_get_by_index(4)?,
                    endpoint: row.try_get_by_index(5)?,
                    occurred_at: row.try_get_by_index(6)?,
                    cost: row.try_get_by_index(7)?,
                },
            );
        }
    }
    for &i in indexes {
        let event = events[i];
        let Some(found) = event.event_id.as_deref().and_then(|id| existing.get(id)) else {
            continue;
        };
        let completes = event.completes
            && event.status_code.is_some()
            && found.kind == EventKind::ApiCall.as_str()
            && found.status.is_none();
        if !completes {
            continue;
        }
        let update = Query::update()
            .table("usage_events")
            .value("status_code", event.status_code)
            .value("response_time_ms", event.response_time_ms)
            .value("method", event.method.clone())
            .value("endpoint", event.endpoint.clone())
            .and_where(Expr::col("id").eq(found.id))
            .and_where(Expr::col("status_code").is_null())
            .to_owned();
        if txn.execute(&update).await?.rows_affected() == 0 {
            continue;
        }
        outcomes[i] = Outcome::Completed;
        // The call was counted under the verify's (method, endpoint) on its day; it moves to
        // what the finished call reports.
        let day = day_of_millis(found.occurred_at);
        let before = (
            account.to_owned(),
            day.clone(),
            found.method.clone().unwrap_or_default(),
            found.endpoint.clone().unwrap_or_default(),
        );
        let after = (
            account.to_owned(),
            day,
            event.method.clone().unwrap_or_default(),
            event.endpoint.clone().unwrap_or_default(),
        );
        if before != after {
            let moved_from = rollups.endpoints.entry(before).or_default();
            moved_from.sums.calls -= found.cost;
            moved_from.requests -= 1;
            let moved_to = rollups.endpoints.entry(after.clone()).or_default();
            moved_to.sums.calls += found.cost;
            moved_to.requests += 1;
        }
        // Completing counts no call again: only the outcome, weighted like the call was.
        rollups.finish_call(
            &after,
            event.status_code,
            event.response_time_ms,
            found.cost,
        );
    }
    Ok(())
}

/// The stored latency histogram plus the one being upserted, bucket by bucket, in SQL: the sum
/// happens under the row's lock, so concurrent writers (several instances on PostgreSQL) never
/// lose each other's counts. Empty sides skip the JSON work.
fn merge_histograms_sql(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => {
            "CASE WHEN excluded.latency_histogram = '{}' \
               THEN usage_daily_endpoints.latency_histogram \
             WHEN usage_daily_endpoints.latency_histogram = '{}' \
               THEN excluded.latency_histogram \
             ELSE (SELECT COALESCE(json_object_agg(key, total)::text, '{}') FROM ( \
               SELECT key, SUM(value::bigint) AS total FROM ( \
                 SELECT key, value FROM json_each_text(usage_daily_endpoints.latency_histogram::json) \
                 UNION ALL \
                 SELECT key, value FROM json_each_text(excluded.latency_histogram::json) \
               ) AS parts GROUP BY key) AS merged) END"
        }
        _ => {
            "CASE WHEN excluded.latency_histogram = '{}' \
               THEN usage_daily_endpoints.latency_histogram \
             WHEN usage_daily_endpoints.latency_histogram = '{}' \
               THEN excluded.latency_histogram \
             ELSE (SELECT COALESCE(json_group_object(key, total), '{}') FROM ( \
               SELECT key, SUM(value) AS total FROM ( \
                 SELECT key, value FROM json_each(usage_daily_endpoints.latency_histogram) \
                 UNION ALL \
                 SELECT key, value FROM json_each(excluded.latency_histogram) \
               ) GROUP BY key)) END"
        }
    }
}

/// `<table>.<column> + excluded.<column>`, for upserts that add.
fn add_excluded(table: &str, column: &str) -> Expr {
    Expr::cust(format!("{table}.{column} + excluded.{column}"))
}

async fn upsert_rollups(txn: &DatabaseTransaction, rollups: &Rollups) -> Result<(), DbErr> {
    let periods: Vec<Vec<Expr>> = rollups
        .periods
        .iter()
        .map(|((account, start), (end, calls))| {
            vec![
                Expr::val(account.as_str()),
                Expr::val(*start),
                Expr::val(*end),
                Expr::val(*calls),
            ]
        })
        .collect();
    upsert(
        txn,
        "usage_periods",
        &["account_id", "period_start", "period_end", "calls"],
        &["account_id", "period_start"],
        &["calls"],
        &[],
        periods,
    )
    .await?;

    let endpoints: Vec<Vec<Expr>> = rollups
        .endpoints
        .iter()
        .map(|((account, day, method, endpoint), d)| {
            let mut row = vec![
                Expr::val(account.as_str()),
                Expr::val(day.as_str()),
                Expr::val(method.as_str()),
                Expr::val(endpoint.as_str()),
            ];
            row.extend(d.sums.values());
            row.push(Expr::val(d.requests));
            row.push(Expr::val(histogram::to_json(&d.latency_buckets)));
            row
        })
        .collect();
    let keys = ["account_id", "day", "method", "endpoint"];
    let added: Vec<&str> = CALL_SUM_COLUMNS
        .iter()
        .chain(&["requests"])
        .copied()
        .collect();
    let columns: Vec<&str> = keys
        .iter()
        .chain(&added)
        .chain(&["latency_histogram"])
        .copied()
        .collect();
    upsert(
        txn,
        "usage_daily_endpoints",
        &columns,
        &keys,
        &added,
        &[(
            "latency_histogram",
            merge_histograms_sql(txn.get_database_backend()),
        )],
        endpoints,
    )
    .await?;

    let daily: Vec<Vec<Expr>> = rollups
        .daily
        .iter()
        .map(|((account, day), sums)| {
            let mut row = vec![Expr::val(account.as_str()), Expr::val(day.as_str())];
            row.extend(sums.values());
            row
        })
        .collect();
    let keys = ["account_id", "day"];
    let columns: Vec<&str> = keys.iter().chain(&CALL_SUM_COLUMNS).copied().collect();
    upsert(
        txn,
        "usage_daily_totals",
        &columns,
        &keys,
        &CALL_SUM_COLUMNS,
        &[],
        daily,
    )
    .await?;

    let tools: Vec<Vec<Expr>> = rollups
        .tools
        .iter()
        .map(|((account, day, kind, skill, tool), (calls, last))| {
            vec![
                Expr::val(account.as_str()),
                Expr::val(day.as_str()),
                Expr::val(*kind),
                Expr::val(skill.as_str()),
                Expr::val(tool.as_str()),
                Expr::val(*calls),
                Expr::val(*last),
            ]
        })
        .collect();
    upsert(
        txn,
        "usage_daily_tools",
        &[
            "account_id",
            "day",
            "kind",
            "skill_id",
            "tool_name",
            "calls",
            "last_used_at",
        ],
        &["account_id", "day", "kind", "skill_id", "tool_name"],
        &["calls"],
        &[(
            "last_used_at",
            "CASE WHEN excluded.last_used_at > usage_daily_tools.last_used_at \
             THEN excluded.last_used_at ELSE usage_daily_tools.last_used_at END",
        )],
        tools,
    )
    .await?;

    let installs: Vec<Vec<Expr>> = rollups
        .installs
        .iter()
        .map(|((day, skill, platform, version), d)| {
            vec![
                Expr::val(day.as_str()),
                Expr::val(skill.as_str()),
                Expr::val(platform.as_str()),
                Expr::val(version.as_str()),
                Expr::val(d.anonymous + d.attributed),
                Expr::val(d.anonymous),
                Expr::val(d.attributed),
                Expr::val(d.last_at),
            ]
        })
        .collect();
    upsert(
        txn,
        "usage_daily_installs",
        &[
            "day",
            "skill_id",
            "platform",
            "version",
            "installs",
            "anonymous",
            "attributed",
            "last_installed_at",
        ],
        &["day", "skill_id", "platform", "version"],
        &["installs", "anonymous", "attributed"],
        &[(
            "last_installed_at",
            "CASE WHEN excluded.last_installed_at > usage_daily_installs.last_installed_at \
             THEN excluded.last_installed_at ELSE usage_daily_installs.last_installed_at END",
        )],
        installs,
    )
    .await
}

/// Multi-row `INSERT ... ON CONFLICT (keys) DO UPDATE`: `added` columns add the new value to the
/// stored one, `custom` columns take an SQL expression.
async fn upsert(
    txn: &DatabaseTransaction,
    table: &'static str,
    columns: &[&'static str],
    keys: &[&'static str],
    added: &[&'static str],
    custom: &[(&'static str, &'static str)],
    rows: Vec<Vec<Expr>>,
) -> Result<(), DbErr> {
    let sizes = statement_sizes(rows.len());
    let mut rows = rows.into_iter();
    for size in sizes {
        let mut insert = Query::insert();
        insert.into_table(table).columns(columns.iter().copied());
        for row in rows.by_ref().take(size) {
            insert.values(row).map_err(build_error)?;
        }
        let mut on_conflict = OnConflict::columns(keys.iter().copied());
        for column in added {
            on_conflict.value(*column, add_excluded(table, column));
        }
        for (column, sql) in custom {
            on_conflict.value(*column, Expr::cust(*sql));
        }
        insert.on_conflict(on_conflict);
        txn.execute(&insert).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_that_say_nothing_about_the_data_are_transient() {
        let postgres = DatabaseBackend::Postgres;
        let sqlite = DatabaseBackend::Sqlite;
        // Lock timeout, statement timeout, serialization failure, connection lost.
        for code in ["55P03", "57014", "40001", "08006"] {
            assert!(transient_code(postgres, code), "{code}");
        }
        // NUL in text, unique and foreign-key violations.
        for code in ["22021", "23505", "23503"] {
            assert!(!transient_code(postgres, code), "{code}");
        }
        // BUSY, BUSY_TIMEOUT (extended), LOCKED, IOERR_FSYNC (extended).
        for code in ["5", "773", "6", "1034"] {
            assert!(transient_code(sqlite, code), "{code}");
        }
        // CONSTRAINT_FOREIGNKEY, CONSTRAINT_UNIQUE, TOOBIG.
        for code in ["787", "2067", "18"] {
            assert!(!transient_code(sqlite, code), "{code}");
        }
    }

    #[test]
    fn statement_sizes_are_powers_of_two_adding_up() {
        assert_eq!(statement_sizes(37).collect::<Vec<_>>(), [32, 4, 1]);
        assert_eq!(statement_sizes(0).count(), 0);
        assert_eq!(
            statement_sizes(1200).collect::<Vec<_>>(),
            [512, 512, 128, 32, 16]
        );
    }
}
