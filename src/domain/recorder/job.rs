//! The queue between request handlers and the writer: a job (one request's events and quota
//! reservations), the ticket that decides who owns it, and why a job was not written.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::new_event::{NewEvent, Outcome};
use crate::domain::deadline::Deadline;
use crate::domain::quota::{Refusal, Reservation};

/// Why a request's events were not written, as its handler answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
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

pub(super) enum Message {
    Record(Ticket),
    Flush(oneshot::Sender<()>),
}

pub(super) struct Job {
    pub(super) events: Vec<NewEvent>,
    pub(super) reservations: Vec<Reservation>,
    pub(super) reply: oneshot::Sender<Result<Vec<Outcome>, Failure>>,
    /// Its request waits no longer than this.
    pub(super) deadline: Deadline,
}

/// A queued job. Whoever takes the job out first owns it: the writer, which then writes it, or
/// the waiting request giving up, and then it is never written.
#[derive(Clone)]
pub(super) struct Ticket(Arc<Mutex<Option<Job>>>);

impl Ticket {
    pub(super) fn new(job: Job) -> Self {
        Self(Arc::new(Mutex::new(Some(job))))
    }

    pub(super) fn take(&self) -> Option<Job> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Withdraws a job its request no longer waits for (it gave up, or its future was dropped: the
/// client left or the request timed out), unless the writer has claimed it already. Dropping the
/// withdrawn job gives its quota reservations back.
pub(super) struct Withdraw(pub(super) Ticket);

impl Withdraw {
    /// True when the job was still queued and is now withdrawn.
    pub(super) fn now(&self) -> bool {
        self.0.take().is_some()
    }
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        self.now();
    }
}
