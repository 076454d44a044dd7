//! Keeping every instance's caches honest: a change that makes cached keys, plans or quota
//! counters stale is applied to this instance's caches at once and announced with PostgreSQL
//! `NOTIFY`; every instance `LISTEN`s and applies what the others announce, well within 1 s.
//!
//! The caches' own lifetimes stay as the safety net: a lost announcement costs at most the key
//! cache TTL. Announcements sent while the listening connection is down are lost, so the caches
//! are emptied each time it is (re-)established. SQLite serves one instance, so there a change is
//! only applied locally.

use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPool};
use sea_orm::sqlx::Error as SqlxError;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio::task::JoinHandle;

use crate::domain::keys::{digest_from_hex, KeyCache, KeyDigest};
use crate::domain::quota::QuotaGate;

/// The channel every instance listens on.
const CHANNEL: &str = "tally_invalidation";
/// Waits before listening again after a failure: doubled on each failure in a row, up to the
/// longest.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_LONGEST: Duration = Duration::from_secs(5);

/// What became stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// One key: revoked, or rotated (its revocation time changed).
    Key(KeyDigest),
    /// Every cached key: a plan or an account changed, and cached keys carry both.
    AllKeys,
    /// One account's quota counters: its usage was changed outside the recorder.
    Usage(String),
}

impl Change {
    fn payload(&self) -> String {
        match self {
            Change::Key(digest) => format!("key:{}", digest.to_hex()),
            Change::AllKeys => "keys".to_owned(),
            Change::Usage(account_id) => format!("usage:{account_id}"),
        }
    }

    fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(':') {
            Some(("key", hex)) => digest_from_hex(hex).map(Change::Key),
            Some(("usage", account_id)) if !account_id.is_empty() => {
                Some(Change::Usage(account_id.to_owned()))
            }
            None if payload == "keys" => Some(Change::AllKeys),
            _ => None,
        }
    }
}

/// The caches a change can make stale, and the way to tell the other instances about it.
#[derive(Clone)]
pub struct Invalidation {
    keys: KeyCache,
    quota: QuotaGate,
}

impl Invalidation {
    pub fn new(keys: KeyCache, quota: QuotaGate) -> Self {
        Self { keys, quota }
    }

    /// Applies `change` here and announces it to the other instances. Call it once the change
    /// has committed: an instance reading before that would cache the old state again.
    ///
    /// A failed announcement is logged rather than returned: the change is made and stays made,
    /// and the other instances see it when their cache entries expire.
    pub async fn announce(&self, db: &DatabaseConnection, change: Change) {
        self.apply(&change);
        if db.get_database_backend() != DbBackend::Postgres {
            return;
        }
        let notify = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), change.payload().into()],
        );
        if let Err(err) = db.execute_raw(notify).await {
            tracing::warn!(
                error = %err,
                ?change,
                "could not announce a change to the other instances; \
                 they see it when their cached entries expire"
            );
        }
    }

    fn apply(&self, change: &Change) {
        match change {
            Change::Key(digest) => self.keys.forget(*digest),
            Change::AllKeys => self.keys.forget_all(),
            Change::Usage(account_id) => self.quota.forget_account(account_id),
        }
    }

    fn flush(&self) {
        self.keys.forget_all();
        self.quota.forget_all();
    }

    /// On PostgreSQL, starts applying the changes other instances announce, until the returned
    /// [`Listening`] is dropped or the connection pool is closed; `None` on SQLite. Call it
    /// inside a Tokio runtime.
    pub fn listen(&self, db: &DatabaseConnection) -> Option<Listening> {
        if db.get_database_backend() != DbBackend::Postgres {
            return None;
        }
        let pool = db.get_postgres_connection_pool().clone();
        Some(Listening {
            task: tokio::spawn(apply_announcements(self.clone(), pool)),
        })
    }
}

/// The task applying other instances' announcements; dropping this stops it.
pub struct Listening {
    task: JoinHandle<()>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn apply_announcements(caches: Invalidation, pool: PgPool) {
    let mut retry = RETRY_FIRST;
    let mut listened_before = false;
    loop {
        let mut listener = match subscribe(&pool).await {
            Ok(listener) => listener,
            Err(SqlxError::PoolClosed) => return,
            Err(err) => {
                tracing::warn!(
                    error = %err,
                    retry_in = ?retry,
                    "cannot listen for changes made on other instances"
                );
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_LONGEST);
                continue;
            }
        };
        retry = RETRY_FIRST;
        // Whatever was announced before LISTEN took effect was missed; entries loaded since the
        // last flush may hold it.
        caches.flush();
        if listened_before {
            tracing::info!("listening for changes on other instances again; caches emptied");
        }
        listened_before = true;

        let lost = loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => match Change::parse(notification.payload()) {
                    Some(change) => caches.apply(&change),
                    None => {
                        tracing::warn!(
                            payload = notification.payload(),
                            "unknown change announced; emptying the caches"
                        );
                        caches.flush();
                    }
                },
                Ok(None) => break "connection closed".to_owned(),
                Err(SqlxError::PoolClosed) => return,
                Err(err) => break err.to_string(),
            }
        };
        tracing::warn!(
            error = %lost,
            "lost the connection listening for changes on other instances; reconnecting"
        );
        drop(listener);
        tokio::time::sleep(RETRY_FIRST).await;
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, SqlxError> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection is re-established here, so that the caches are emptied right after.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_read_back_as_the_change_they_announce() {
        let changes = [
            Change::Key(KeyDigest([7; 32])),
            Change::AllKeys,
            Change::Usage("0190f1de-5c1e-7000-8000-000000000001".to_owned()),
        ];
        for change in changes {
            assert_eq!(Change::parse(&change.payload()), Some(change));
        }
        assert_eq!(Change::parse("key:not-hex"), None);
        assert_eq!(Change::parse("usage:"), None);
        assert_eq!(Change::parse("plans"), None);
    }
}
