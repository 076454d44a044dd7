//! Background jobs once per cluster: each round of a job runs under a PostgreSQL advisory lock, so
//! while one instance runs it the others skip their round. The jobs stay safe to run twice (the
//! lock saves work, it is not what keeps them correct). SQLite serves one instance: no lock.

use std::future::Future;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};

use crate::domain::error::DomainResult;

/// The jobs `serve` runs in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    BillingClose,
    EventRetention,
    WebhookIdPruning,
}

impl Job {
    /// The advisory lock key, in a range of its own ("tally" in ASCII, then the job) so that it
    /// does not meet another application's locks on a shared server.
    fn lock_key(self) -> i64 {
        const BASE: i64 = 0x7461_6c6c_7900_0000;
        BASE + match self {
            Job::BillingClose => 1,
            Job::EventRetention => 2,
            Job::WebhookIdPruning => 3,
        }
    }
}

/// Runs one round of `job` unless another instance is running that job: `Some` with the round's
/// result, or `None` when the round was skipped. The lock is a transaction-level advisory lock
/// held by a transaction that lives as long as the round, so it is released however the round
/// ends, a lost connection included.
pub async fn run_alone<T>(
    db: &DatabaseConnection,
    job: Job,
    round: impl Future<Output = DomainResult<T>>,
) -> DomainResult<Option<T>> {
    if db.get_database_backend() != DbBackend::Postgres {
        return round.await.map(Some);
    }
    let lock = db.begin().await?;
    let acquired = lock
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1)",
            [job.lock_key().into()],
        ))
        .await?
        .map(|row| row.try_get_by_index::<bool>(0))
        .transpose()?
        .unwrap_or(false);
    if !acquired {
        tracing::debug!(
            ?job,
            "another instance is running this job; skipping this round"
        );
        lock.rollback().await?;
        return Ok(None);
    }
    let result = round.await;
    // Nothing was written under the lock: ending the transaction only releases it.
    if let Err(err) = lock.rollback().await {
        tracing::warn!(error = %err, ?job, "releasing a job lock failed; it ends with its connection");
    }
    result.map(Some)
}
