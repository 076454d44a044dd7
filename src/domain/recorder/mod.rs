//! The recorder: group commit of usage events.
//!
//! Handlers hand their events to one writer and wait. (On a SQLite file the writer runs on a
//! thread of its own with a connection of its own, see `store`.) The writer takes everything
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
//! (`admission`): a request whose calls no longer fit is answered `Quota exceeded` and writes
//! nothing, however many instances share the database. Calls are added only to a counter whose
//! range is the period the request took: when the billing provider's period has moved the
//! account's periods since, the calls are placed again by their time (`counters`), and a
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

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use crate::domain::deadline::Deadline;
use crate::domain::error::DomainError;
use crate::domain::quota::{Refusal, Reservation};
use crate::telemetry::metrics::Metrics;

mod admission;
mod batch;
mod counters;
mod deltas;
mod events;
pub mod follower;
mod job;
mod new_event;
mod rollup_upserts;
mod rollups;
mod running;
mod sql;
mod store;
mod writer;

pub use new_event::{EventKind, NewEvent, Outcome};
pub use writer::BATCH_CAP;

use batch::write_events;
use job::{Failure, Job, Message, Ticket, Withdraw};
use store::{Pooled, SqliteFile};
use writer::Writer;

/// Requests that may wait in the queue before handlers wait to enqueue.
const QUEUE_DEPTH: usize = 16_384;

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
