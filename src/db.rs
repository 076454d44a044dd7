//! Opening the database. SQLite runs in WAL mode with `synchronous=FULL` (an acknowledged write
//! survives a crash) and a busy timeout; PostgreSQL keeps its default `synchronous_commit=on`.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// Longest wait for a PostgreSQL connection from the pool, a new one included.
pub const POSTGRES_CONNECTION_WAIT: Duration = Duration::from_millis(500);

pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5));
    if url.starts_with("sqlite:") {
        options
            .max_connections(8)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
    } else {
        // While PostgreSQL is unreachable every wait for a connection must end well within the
        // 1 s a request may take to answer 503, and connection attempts are retried until then.
        options
            .max_connections(16)
            .min_connections(1)
            .connect_timeout(POSTGRES_CONNECTION_WAIT)
            .acquire_timeout(POSTGRES_CONNECTION_WAIT);
    }
    Database::connect(options).await
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}
