//! Opening the database. SQLite runs in WAL mode with `synchronous=FULL` (an acknowledged write
//! survives a crash) and a busy timeout; PostgreSQL keeps its default `synchronous_commit=on` and
//! gets a `lock_timeout` of the same length.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// How long a statement waits for a lock held by another connection, for the command-line tools
/// and tests; `serve` takes its own from the request timeout ([`connect_with_lock_timeout`]).
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for a PostgreSQL connection from the pool, a new one included.
pub const POSTGRES_CONNECTION_WAIT: Duration = Duration::from_millis(500);

pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with_lock_timeout(url, DEFAULT_LOCK_TIMEOUT).await
}

/// Opens the database with statements waiting at most `lock_timeout` for another connection's
/// lock (SQLite busy timeout, PostgreSQL `lock_timeout`): a write blocked longer fails, so its
/// request is answered before it times out.
pub async fn connect_with_lock_timeout(
    url: &str,
    lock_timeout: Duration,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5));
    if url.starts_with("sqlite:") {
        options
            .max_connections(8)
            .min_connections(1)
            .map_sqlx_sqlite_opts(move |opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(lock_timeout)
                    .foreign_keys(true)
            });
    } else {
        // While PostgreSQL is unreachable every wait for a connection must end well within the
        // 1 s a request may take to answer 503, and connection attempts are retried until then.
        let lock_timeout_ms = lock_timeout.as_millis().max(1).to_string();
        options
            .max_connections(16)
            .min_connections(1)
            .connect_timeout(POSTGRES_CONNECTION_WAIT)
            .acquire_timeout(POSTGRES_CONNECTION_WAIT)
            .map_sqlx_postgres_opts(move |opts| {
                opts.options([("lock_timeout", lock_timeout_ms.as_str())])
            });
    }
    Database::connect(options).await
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}
