//! One time budget per ingestion request for everything it waits on in the database: reading its
//! key and counters, the writer taking its events, a lock another connection holds. A gateway
//! waits on every request, so past the budget the answer is 503 with `Retry-After`, never a wait
//! that adds up step by step (`TALLY_DATABASE_WAIT_MS`).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::error::{DomainError, DomainResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    pub fn instant(self) -> Instant {
        self.0
    }

    /// The time left; zero once it has passed.
    pub fn left(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Runs `work` — database work with nothing to undo, such as a read — until the deadline;
    /// past it, the request is answered 503 saying `what` did not finish. Work that is ready at
    /// once finishes even past the deadline.
    pub async fn bound<T>(
        self,
        what: &'static str,
        work: impl Future<Output = DomainResult<T>>,
    ) -> DomainResult<T> {
        match tokio::time::timeout_at(self.0, work).await {
            Ok(done) => done,
            Err(_) => Err(DomainError::unavailable(format!(
                "{what}: the database did not answer within the request's wait \
                 (TALLY_DATABASE_WAIT_MS)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_past_the_deadline_is_unavailable_and_ready_work_is_not() {
        let passed = Deadline::after(Duration::ZERO);
        let ready = passed.bound("reading", async { Ok(7) }).await;
        assert_eq!(ready.ok(), Some(7));
        let stuck = Deadline::after(Duration::from_millis(20))
            .bound("reading a key", std::future::pending::<DomainResult<()>>())
            .await;
        let Err(DomainError::Unavailable(outage)) = stuck else {
            panic!("not unavailable: {stuck:?}");
        };
        assert!(
            outage.to_string().starts_with("reading a key: "),
            "{outage}"
        );
        assert_eq!(passed.left(), Duration::ZERO);
    }
}
