//! The rollup follower: keeps the daily rollups off the commit path.
//!
//! A batch commits its events, its period counters and ONE row of `rollup_deltas` holding what
//! it adds to the daily rollups and keys' last use; a 200 needs nothing more. The follower then
//! takes the stored deltas in order, adds them up in memory and, in one transaction, adds the sums
//! to the rollup rows and deletes the deltas it applied. Each delta is thus applied exactly once:
//! after a crash the deltas are still there and the next follower applies them; with several
//! instances on PostgreSQL each follower takes rows the others have not locked (`SKIP LOCKED`).
//!
//! Woken by every commit, it waits [`GATHER`] (or as configured) for more batches to come and then
//! applies all that is stored, so analytics trail an acknowledged event by about that (at most
//! 1 s, as promised).
//! Without a wake-up it looks every `POLL` (a second) (deltas left by an instance that stopped).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::{LockBehavior, LockType, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, QueryTrait, TransactionTrait,
};
use tokio::sync::Notify;

use super::rollup_upserts::upsert_rollups;
use super::rollups::Rollups;
use super::store::BatchTx;
use crate::entity::rollup_delta;

/// How long the follower lets batches gather after a wake-up before applying them, unless
/// configured (`TALLY_ROLLUP_GATHER_MS`).
pub const GATHER: Duration = Duration::from_millis(100);
/// How often the follower looks for deltas when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);
/// Most deltas applied in one transaction.
const DELTAS_PER_ROUND: u64 = 1_000;

/// Stores a batch's rollup delta in the batch's transaction (nothing when it adds nothing).
pub(super) async fn append(txn: &impl BatchTx, rollups: &Rollups) -> Result<(), DbErr> {
    if rollups.has_no_delta() {
        return Ok(());
    }
    let delta = serde_json::to_string(rollups).map_err(|err| DbErr::Custom(err.to_string()))?;
    let insert = rollup_delta::Entity::insert(rollup_delta::ActiveModel {
        created_at: Set(Utc::now().timestamp_millis()),
        delta: Set(delta),
        ..Default::default()
    })
    .into_query();
    txn.execute(&insert).await?;
    Ok(())
}

/// Whose turn it is, within one instance.
#[derive(Clone, Default)]
pub struct Turns {
    /// On SQLite the recorder's writer and the follower take turns to write: a transaction that
    /// finds the database locked by the other waits in SQLite's busy handler, which sleeps in
    /// steps of up to 100 ms, and every request of a waiting batch would wait that long. On
    /// PostgreSQL they lock different rows and write side by side.
    write: Option<Arc<tokio::sync::Mutex<()>>>,
    /// One drain of the stored deltas at a time: a flush that started while the follower was
    /// applying (its rows locked, so skipped) waits for that round to commit.
    apply: Arc<tokio::sync::Mutex<()>>,
}

impl Turns {
    pub fn for_backend(backend: DatabaseBackend) -> Self {
        Self {
            write: (backend == DatabaseBackend::Sqlite).then(Default::default),
            apply: Default::default(),
        }
    }

    /// Waits for the turn to write; it passes on when the guard is dropped.
    pub async fn write(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write {
            Some(turn) => Some(turn.lock().await),
            None => None,
        }
    }
}

/// Applies every stored delta; how many were applied.
pub async fn apply_pending(db: &DatabaseConnection, turns: &Turns) -> Result<usize, DbErr> {
    let _draining = turns.apply.lock().await;
    let mut applied = 0;
    loop {
        let round = {
            let _turn = turns.write().await;
            apply_round(db).await?
        };
        applied += round;
        if round < DELTAS_PER_ROUND as usize {
            return Ok(applied);
        }
    }
}

/// One transaction: takes (deletes) up to [`DELTAS_PER_ROUND`] deltas, oldest first, and adds
/// them to the rollups.
async fn apply_round(db: &DatabaseConnection) -> Result<usize, DbErr> {
    use rollup_delta::Column;
    let backend = db.get_database_backend();
    let mut oldest = Query::select();
    oldest
        .column(Column::Id)
        .from(rollup_delta::Entity)
        .order_by(Column::Id, Order::Asc)
        .limit(DELTAS_PER_ROUND);
    if backend == DatabaseBackend::Postgres {
        // Another instance's follower skips the rows this one holds, and the other way round.
        oldest.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let take = Query::delete()
        .from_table(rollup_delta::Entity)
        .and_where(Column::Id.in_subquery(oldest))
        .returning_col(Column::Delta)
        .to_owned();

    // Deleting first takes SQLite's write lock at once (a read first could not upgrade to a
    // write once the recorder has committed since).
    let txn = db.begin().await?;
    let rows = txn.query_all(&take).await?;
    if rows.is_empty() {
        txn.commit().await?;
        return Ok(0);
    }
    let mut sums = Rollups::default();
    for row in &rows {
        let text: String = row.try_get_by_index(0)?;
        let delta: Rollups = serde_json::from_str(&text)
            .map_err(|err| DbErr::Custom(format!("a stored rollup delta does not parse: {err}")))?;
        sums.absorb(delta);
    }
    upsert_rollups(&txn, &sums).await?;
    txn.commit().await?;
    Ok(rows.len())
}

/// Starts the follower task; the returned handle wakes it. It stops when every handle is gone.
pub(super) fn start(db: DatabaseConnection, turns: Turns, gather: Duration) -> Arc<Notify> {
    let wake = Arc::new(Notify::new());
    let handle = Arc::downgrade(&wake);
    tokio::spawn(async move {
        loop {
            let Some(wake) = handle.upgrade() else {
                return;
            };
            if tokio::time::timeout(POLL, wake.notified()).await.is_ok() {
                tokio::time::sleep(gather).await;
            }
            drop(wake);
            if let Err(err) = apply_pending(&db, &turns).await {
                // The deltas stay stored: the next round applies them.
                tracing::warn!(error = %err, "applying rollup deltas failed; retrying");
            }
        }
    });
    wake
}
