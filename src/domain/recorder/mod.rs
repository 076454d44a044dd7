//! The recorder: group commit of usage events.
//!
//! Handlers hand their events to one writer and wait. (On a SQLite file the writer runs on a
//! thread of its own with a connection of its own, see [`store`].) The writer takes everything
//! queued (up to a cap), writes it in ONE transaction — event rows (`ON CONFLICT (account_id,
//! event_id) DO NOTHING`, so an event id is stored once per account), the period call counters,
//! and one row holding what the batch adds to the daily rollups and, at most once a minute per
//! key, `api_keys.last_used_at` — commits, and only then answers every waiter. A 200 is therefore
//! durable, and one fsync serves a whole batch. The [`follower`] applies the stored rollup rows
//! shortly after, off the commit path.
//!
//! An event reported by `/api/v1/events` whose id was recorded earlier by `/api/v1/verify`
//! completes that call (status, response time, rollups) instead of counting it again.
//!
//! Blocking quotas are decided again inside the transaction, under the period counters' row locks
//! ([`admission`]): a request whose calls no longer fit is answered `Quota exceeded` and writes
//! nothing, however many instances share the database. Calls are added only to a counter whose
//! range is the period the request took: when the billing provider's period has moved the
//! account's periods since, the calls are placed again by their time ([`counters`]), and a
//! blocking quota judged on the old period is answered 503 so that its retry is judged anew. After the commit each request's quota
//! reservation is settled with the calls counted, and the in-memory gate takes the database's
//! count. A failed transaction gives its waiters' quota reservations back. When the database cannot
//! take writes (lost, busy, locked) every waiter gets 503. Any other failure may be one request's
//! data: the batch is written in halves until the requests that fail alone are found, which get
//! 500 (a retry would fail again); the others are written as usual.
//!
//! No request is stored after it was answered with an error: a request waits for the writer to
//! claim its events until its [`Deadline`] and otherwise withdraws them (503). A claimed batch
//! waits for its turn and for the database's write lock only until the earliest deadline of its
//! requests, so the claim, the turn and the lock share one budget per request, whatever holds
//! the database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr, RuntimeErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use crate::domain::deadline::Deadline;
use crate::domain::error::{is_transient, DomainError};
use crate::domain::periods::BillingPeriod;
use crate::domain::quota::{Refusal, Reservation};
use crate::telemetry::metrics::Metrics;

mod admission;
mod counters;
mod events;
pub mod follower;
mod rollups;
mod running;
mod store;

use counters::{add_period_calls, place_again, PeriodCounts};
use events::{complete_or_skip, insert_events};
use rollups::Rollups;
use store::{BatchTx, Pooled, SqliteFile, Store};

/// Most events written in one transaction.
pub const BATCH_CAP: usize = 4_096;
/// Requests that may wait in the queue before handlers wait to enqueue.
const QUEUE_DEPTH: usize = 16_384;
/// Most rows per multi-row statement (SQLite allows 32,766 bound values per statement).
const ROWS_PER_STATEMENT: usize = 512;
/// A job with less time left than this when its batch failed had its deadline cut the batch's
/// wait (the databases count lock waits in whole milliseconds, and may give up a little early).
const DEADLINE_TOLERANCE: Duration = Duration::from_millis(20);
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
    /// A blocking quota has no room for its calls, judged where they would be committed.
    OverQuota(Refusal),
    /// The account's periods were laid out anew after this request took its period and judged
    /// its quota there: 503, a retry takes the new period.
    PeriodMoved,
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
    /// Its request waits no longer than this.
    deadline: Deadline,
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
    db: DatabaseConnection,
    turns: follower::Turns,
}

impl Recorder {
    /// Starts the writer and the rollup follower, which lets batches gather for `rollup_gather`
    /// after a commit. They stop when every `Recorder` handle is gone. `lock_timeout` is the
    /// lock wait `db` was opened with: a batch whose requests have less time left waits less.
    pub fn start(
        db: DatabaseConnection,
        metrics: Metrics,
        lock_timeout: Duration,
        rollup_gather: Duration,
    ) -> Self {
        let (queue, inbox) = mpsc::channel(QUEUE_DEPTH);
        let turns = follower::Turns::for_backend(db.get_database_backend());
        let follower = follower::start(db.clone(), turns.clone(), rollup_gather);
        match SqliteFile::open(&db, lock_timeout) {
            Some(Ok(file)) => {
                Writer::new(file, metrics, follower, turns.clone()).run_on_own_thread(inbox)
            }
            failed => {
                if let Some(Err(err)) = failed {
                    tracing::warn!(error = %err, "the recorder could not open the SQLite file for itself; it writes through the pool");
                }
                let pooled = Pooled::new(db.clone(), lock_timeout);
                tokio::spawn(Writer::new(pooled, metrics, follower, turns.clone()).run(inbox));
            }
        }
        Self { queue, turns, db }
    }

    /// Writes `events` (durably) and says what became of each. `reservations` are the quota
    /// reservations made for them: settled with what was counted, or given back on failure.
    /// Answered by `deadline` (503 at worst), a moment more when the write is under way then.
    pub async fn record(
        &self,
        events: Vec<NewEvent>,
        reservations: Vec<Reservation>,
        deadline: Deadline,
    ) -> Result<Vec<Outcome>, Unrecorded> {
        let (reply, mut answer) = oneshot::channel();
        let ticket = Ticket::new(Job {
            events,
            reservations,
            reply,
            deadline,
        });
        let deadline = deadline.instant();
        let withdraw = Withdraw(ticket.clone());
        match tokio::time::timeout_at(deadline, self.queue.send(Message::Record(ticket))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(unavailable("the recorder has stopped").into()),
            Err(_) => return Err(unavailable("the recorder's queue stayed full").into()),
        }
        let answered = match tokio::time::timeout_at(deadline, &mut answer).await {
            Ok(answered) => answered,
            Err(_) if withdraw.now() => {
                return Err(unavailable("the recorder did not take the events in time").into())
            }
            // Claimed while the wait ran out: the writer waits for nothing past the deadline, so
            // the answer follows at once.
            Err(_) => answer.await,
        };
        let failure = match answered {
            Ok(Ok(outcomes)) => return Ok(outcomes),
            Ok(Err(Failure::OverQuota(refusal))) => return Err(Unrecorded::OverQuota(refusal)),
            Ok(Err(Failure::Unavailable)) => unavailable("writing usage events failed"),
            Ok(Err(Failure::PeriodMoved)) => {
                unavailable("the account's billing periods changed while the request was in flight")
            }
            Ok(Err(Failure::Rejected)) => DomainError::internal(anyhow::anyhow!(
                "the database refused this request's usage events (see the recorder's log)"
            )),
            Err(_) => unavailable("the recorder dropped a request"),
        };
        Err(failure.into())
    }

    /// Waits until everything queued before this call is written (or has failed) and its
    /// rollups are applied.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
        if let Err(err) = follower::apply_pending(&self.db, &self.turns).await {
            tracing::warn!(error = %err, "applying rollup deltas failed; the follower retries");
        }
    }
}

/// Why [`Recorder::record`] wrote nothing.
#[derive(Debug)]
pub enum Unrecorded {
    /// A blocking quota had no room for the calls when they were to be committed.
    OverQuota(Refusal),
    Failed(DomainError),
}

impl From<DomainError> for Unrecorded {
    fn from(err: DomainError) -> Self {
        Unrecorded::Failed(err)
    }
}

fn unavailable(why: &'static str) -> DomainError {
    DomainError::unavailable(why)
}

struct Writer<S> {
    store: S,
    metrics: Metrics,
    /// Wakes the rollup follower after each commit.
    follower: Arc<tokio::sync::Notify>,
    turns: follower::Turns,
    /// When each key's `last_used_at` was last written (unix ms of the request).
    key_touched: HashMap<String, i64>,
}

impl<S: Store + Send + 'static> Writer<S> {
    /// Runs the writer on a thread of its own (see [`store`]), as long as handles are left.
    fn run_on_own_thread(self, inbox: mpsc::Receiver<Message>) {
        let spawned = std::thread::Builder::new()
            .name("tally-recorder".to_owned())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(self.run(inbox)),
                    // Dropping the inbox fails every request with 503 "the recorder has stopped".
                    Err(err) => tracing::error!(error = %err, "the recorder could not start"),
                }
            });
        if let Err(err) = spawned {
            tracing::error!(error = %err, "the recorder's thread could not start");
        }
    }
}

impl<S: Store> Writer<S> {
    fn new(
        store: S,
        metrics: Metrics,
        follower: Arc<tokio::sync::Notify>,
        turns: follower::Turns,
    ) -> Self {
        Self {
            store,
            metrics,
            follower,
            turns,
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
        match self.write_admitted(&jobs).await {
            Ok(batch) => {
                self.metrics.batch(batch.outcomes.len(), started.elapsed());
                for (key, at) in &batch.touches {
                    self.key_touched.insert(key.clone(), at.timestamp_millis());
                }
                self.follower.notify_one();
                self.answer(jobs, batch);
                true
            }
            Err(err) => self.failed(jobs, err).await,
        }
    }

    /// One transaction: the jobs the blocking quotas admit, written. Waits for the turn and the
    /// write lock no longer than the jobs' earliest deadline.
    async fn write_admitted(&mut self, jobs: &[Job]) -> Result<AdmittedBatch, DbErr> {
        let deadline = jobs.iter().map(|job| job.deadline).min();
        let deadline = deadline.unwrap_or_else(|| Deadline::after(Duration::ZERO));
        let turn = tokio::time::timeout_at(deadline.instant(), self.turns.write()).await;
        let Ok(_turn) = turn else {
            return Err(DbErr::Conn(RuntimeErr::Internal(
                "the rollup follower held the database past the requests' deadline".to_owned(),
            )));
        };
        let txn = self.store.begin(deadline.left()).await?;
        let locked = admission::lock_counters(&txn, jobs).await?;
        let refusals = admission::admit(jobs, &locked);
        let locked = locked.counts;
        let events: Vec<&NewEvent> = jobs
            .iter()
            .zip(&refusals)
            .filter(|(_, refusal)| refusal.is_none())
            .flat_map(|(job, _)| job.events.iter())
            .collect();
        let touches = due_key_touches(&mut self.key_touched, &events);
        let written = write_events(&txn, &events, &touches).await?;
        txn.commit().await?;
        let mut counts = locked;
        counts.extend(written.period_counts);
        Ok(AdmittedBatch {
            refusals,
            outcomes: written.outcomes,
            counts,
            touches,
        })
    }

    /// A failed write. When the database cannot take writes, every request fails alike: 503,
    /// without trying again — unless the batch only waited out its earliest deadline (for its
    /// turn or a lock): then the requests whose time is up get 503 and the others are written
    /// again, so that one request at the end of its wait does not fail a batch of fresh ones.
    /// Any other error may come from one request's data: the jobs are written in halves until
    /// the ones that fail alone are found (a few transactions, not one per request); those get
    /// 500 and are logged, the others are written.
    async fn failed(&mut self, mut jobs: Vec<Job>, err: DbErr) -> bool {
        self.metrics.database_error("recording events");
        if is_transient(&err) {
            let (expired, waiting): (Vec<Job>, Vec<Job>) = jobs
                .into_iter()
                .partition(|job| job.deadline.left() < DEADLINE_TOLERANCE);
            if !expired.is_empty() && !waiting.is_empty() {
                tracing::warn!(error = %err, requests = expired.len(), "usage events waited out their deadline; writing the others again");
                answer_failed(expired, Failure::Unavailable);
                return Box::pin(self.write(waiting)).await;
            }
            let jobs: Vec<Job> = expired.into_iter().chain(waiting).collect();
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

    /// Settles the jobs' reservations and answers them. The metrics are recorded before any
    /// answer, so that whoever has an answer finds its events counted.
    fn answer(&self, jobs: Vec<Job>, batch: AdmittedBatch) {
        let stored = batch.outcomes.iter().filter(|o| **o == Outcome::Accepted);
        let duplicates = batch.outcomes.iter().filter(|o| **o == Outcome::Duplicate);
        self.metrics
            .events_written(stored.count() as u64, duplicates.count() as u64);
        let mut outcomes = batch.outcomes.into_iter();
        let committed =
            |reservation: &Reservation| batch.counts.get(&admission::key_of(reservation)).copied();
        for (job, refusal) in jobs.into_iter().zip(batch.refusals) {
            if let Some(failure) = refusal {
                for reservation in job.reservations {
                    let now = committed(&reservation);
                    reservation.give_back(now);
                }
                let _ = job.reply.send(Err(failure));
                continue;
            }
            let mine: Vec<Outcome> = outcomes.by_ref().take(job.events.len()).collect();
            let mut counted: HashMap<i64, i64> = HashMap::new();
            for (event, outcome) in job.events.iter().zip(&mine) {
                if let (Outcome::Accepted, Some(period)) = (outcome, event.period) {
                    *counted.entry(period.start_ms()).or_default() += event.cost;
                }
            }
            for reservation in job.reservations {
                let calls = counted
                    .get(&reservation.period_start_ms())
                    .copied()
                    .unwrap_or(0);
                let now = committed(&reservation);
                reservation.settle(calls, now);
            }
            let _ = job.reply.send(Ok(mine));
        }
    }
}

/// Keys used in this batch whose `last_used_at` was not written in the last minute (`touched`
/// holds when each key's was last written, in unix ms).
fn due_key_touches(
    touched: &mut HashMap<String, i64>,
    events: &[&NewEvent],
) -> Vec<(String, DateTime<Utc>)> {
    let mut due: HashMap<&str, DateTime<Utc>> = HashMap::new();
    for event in events {
        let Some(key) = event.api_key_id.as_deref() else {
            continue;
        };
        let at = event.received_at;
        let fresh = touched
            .get(key)
            .is_some_and(|last| at.timestamp_millis() - last < LAST_USED_RESOLUTION_MS);
        if !fresh {
            let slot = due.entry(key).or_insert(at);
            *slot = (*slot).max(at);
        }
    }
    if touched.len() > 100_000 {
        touched.clear();
    }
    due.into_iter().map(|(k, at)| (k.to_owned(), at)).collect()
}

/// One committed transaction of the writer.
struct AdmittedBatch {
    /// Per job, in order: why a job was not admitted.
    refusals: Vec<Option<Failure>>,
    /// The outcomes of the admitted jobs' events, in order.
    outcomes: Vec<Outcome>,
    /// The count each period counter read or written holds after the commit.
    counts: PeriodCounts,
    touches: Vec<(String, DateTime<Utc>)>,
}

/// Answers jobs that were not written. Dropping a job's reservations gives its calls back.
fn answer_failed(jobs: Vec<Job>, failure: Failure) {
    for job in jobs {
        let Job {
            reply,
            reservations,
            ..
        } = job;
        // Given back before the answer: whoever has the answer finds the calls free again.
        drop(reservations);
        let _ = reply.send(Err(failure));
    }
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

/// Writes one batch in one transaction and applies its rollups; the outcome of each event, in
/// order. Public so that `tally seed-demo` writes events and rollups exactly as the recorder does
/// (it checks no quota).
pub async fn write_batch(
    db: &DatabaseConnection,
    events: &[&NewEvent],
    key_touches: &[(String, DateTime<Utc>)],
) -> Result<Vec<Outcome>, DbErr> {
    let txn = db.begin().await?;
    let written = write_events(&txn, events, key_touches).await?;
    txn.commit().await?;
    follower::apply_pending(db, &follower::Turns::default()).await?;
    Ok(written.outcomes)
}

/// What [`write_events`] did.
struct Written {
    outcomes: Vec<Outcome>,
    /// The count of each period counter the events added to, right after.
    period_counts: PeriodCounts,
}

/// Writes events and their period counters in `txn`, and stores their rollups and key touches
/// for the follower.
async fn write_events(
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

#[cfg(test)]
mod tests {
    use super::*;

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
