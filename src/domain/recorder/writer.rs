//! The writer: takes what is queued (up to [`BATCH_CAP`] events), writes it in one transaction
//! with the jobs the blocking quotas admit, answers every job after the commit, and on failure
//! finds the requests that fail alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{DbErr, RuntimeErr};
use tokio::sync::mpsc;

use super::admission;
use super::batch::write_events;
use super::counters::PeriodCounts;
use super::follower;
use super::job::{Failure, Job, Message};
use super::new_event::{NewEvent, Outcome};
use super::store::{BatchTx, Store};
use crate::domain::deadline::Deadline;
use crate::domain::error::is_transient;
use crate::domain::quota::Reservation;
use crate::telemetry::metrics::Metrics;

/// Most events written in one transaction.
pub const BATCH_CAP: usize = 4_096;
/// A job with less time left than this when its batch failed had its deadline cut the batch's
/// wait (the databases count lock waits in whole milliseconds, and may give up a little early).
const DEADLINE_TOLERANCE: Duration = Duration::from_millis(20);
/// `api_keys.last_used_at` is written at most this often per key.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

pub(super) struct Writer<S> {
    store: S,
    metrics: Metrics,
    /// Wakes the rollup follower after each commit.
    follower: Arc<tokio::sync::Notify>,
    turns: follower::Turns,
    /// When each key's `last_used_at` was last written (unix ms of the request).
    key_touched: HashMap<String, i64>,
}

impl<S: Store + Send + 'static> Writer<S> {
    /// Runs the writer on a thread of its own (see [`super::store`]), as long as handles are left.
    pub(super) fn run_on_own_thread(self, inbox: mpsc::Receiver<Message>) {
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
    pub(super) fn new(
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

    pub(super) async fn run(mut self, mut inbox: mpsc::Receiver<Message>) {
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
