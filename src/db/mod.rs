//! Opening the database. SQLite runs in WAL mode with `synchronous=FULL` (an acknowledged write
//! survives a crash) and a busy timeout; PostgreSQL keeps its default `synchronous_commit=on` and
//! gets a `lock_timeout` of the same length.

use std::fs::{File, TryLockError};
use std::str::FromStr;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// How long a statement waits for a lock held by another connection, for the command-line tools
/// and tests; `serve` takes its own from the request timeout ([`connect_with_lock_timeout`]).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Opens the database for `serve` and the commands, or says in one sentence why it cannot and
/// what to do: PostgreSQL not answering at its host and port, a database that does not exist.
pub async fn open(url: &str, lock_timeout: Duration) -> anyhow::Result<DatabaseConnection> {
    match connect_with_lock_timeout(url, lock_timeout).await {
        Ok(db) => Ok(db),
        Err(err) => Err(why_not_opened(url, &err).await),
    }
}

/// SQLSTATE `invalid_catalog_name`: the database named in the URL does not exist.
const NO_SUCH_DATABASE: &str = "3D000";

/// Each cause once (sqlx errors name their source again in their message), with what to do.
async fn why_not_opened(url: &str, err: &DbErr) -> anyhow::Error {
    use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
    use sea_orm::sqlx::{Connection, Error};
    let found = match err {
        DbErr::Conn(RuntimeErr::SqlxError(cause))
        | DbErr::Exec(RuntimeErr::SqlxError(cause))
        | DbErr::Query(RuntimeErr::SqlxError(cause)) => Some(cause.as_ref()),
        _ => None,
    };
    let Some(options) = url
        .starts_with("postgres")
        .then(|| PgConnectOptions::from_str(url).ok())
        .flatten()
    else {
        let what = match found {
            Some(Error::Database(db)) => db.message().to_owned(),
            Some(other) => other.to_string(),
            None => err.to_string(),
        };
        return anyhow::anyhow!(
            "cannot open the database {}: {what}; check --database-url (TALLY_DATABASE_URL), \
             and for a SQLite file that its directory exists and may be written to",
            redact(url)
        );
    };
    let (host, port) = (options.get_host().to_owned(), options.get_port());
    // The pool says only that it gave up waiting; one direct attempt says why.
    let direct;
    let cause = match found {
        None | Some(Error::PoolTimedOut) => {
            direct =
                tokio::time::timeout(Duration::from_secs(2), PgConnection::connect_with(&options))
                    .await;
            match &direct {
                Ok(Err(cause)) => Some(cause),
                _ => None,
            }
        }
        found => found,
    };
    match cause {
        Some(Error::Database(db)) if db.code().as_deref() == Some(NO_SUCH_DATABASE) => {
            let name = options.get_database().unwrap_or_default();
            anyhow::anyhow!(
                "the PostgreSQL database \"{name}\" does not exist on {host}:{port}: create it \
                 (`createdb -h {host} -p {port} -U {user} {name}`), or point --database-url \
                 (TALLY_DATABASE_URL) at one that exists",
                user = options.get_username(),
            )
        }
        Some(Error::Database(db)) => anyhow::anyhow!(
            "PostgreSQL at {host}:{port} refused the connection: {}; check the user, password \
             and database in --database-url (TALLY_DATABASE_URL)",
            db.message()
        ),
        Some(Error::Io(io)) => anyhow::anyhow!(
            "PostgreSQL at {host}:{port} does not answer ({}): is it running, and is that its \
             host and port? (--database-url / TALLY_DATABASE_URL)",
            io.kind()
        ),
        Some(other) => anyhow::anyhow!(
            "PostgreSQL at {host}:{port} does not answer ({other}): is it running, and is that \
             its host and port? (--database-url / TALLY_DATABASE_URL)"
        ),
        None => anyhow::anyhow!(
            "PostgreSQL at {host}:{port} gave no connection within {:?}: is it running, and is \
             that its host and port? (--database-url / TALLY_DATABASE_URL)",
            POSTGRES_CONNECTION_WAIT
        ),
    }
}

/// Opens a transaction that reads and then writes. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a deferred one that read before another connection committed could not
/// write afterwards (`SQLITE_BUSY_SNAPSHOT`, which the busy timeout does not wait out). Inside a
/// transaction it is a savepoint, as `begin` is; PostgreSQL has no such mode and ignores it.
pub async fn begin_read_write<C: TransactionTrait>(db: &C) -> Result<C::Transaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Names of the migrations this version has that the database has not applied, oldest first.
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    Ok(Migrator::get_pending_migrations(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect())
}

/// Held by `serve` for as long as it runs on a SQLite file: SQLite serves one instance, and a
/// second `serve` on the same file would keep its own quota counters and caches, silently
/// splitting them. The lock is an advisory `flock` on the database file itself, which SQLite's
/// own (`fcntl`) locks do not see, so the command-line tools still work beside a running server;
/// the kernel drops it when the process ends, however it ends.
#[derive(Debug)]
pub struct SingleInstanceLock {
    _file: Option<File>,
}

/// Takes the lock of a SQLite database URL (after the database was opened, so the file exists);
/// PostgreSQL and in-memory SQLite need none.
pub fn lock_single_instance(url: &str) -> anyhow::Result<SingleInstanceLock> {
    if !url.starts_with("sqlite:") {
        return Ok(SingleInstanceLock { _file: None });
    }
    let options = SqliteConnectOptions::from_str(url)?;
    let path = options.get_filename();
    if path.as_os_str() == ":memory:" || url.contains("mode=memory") {
        return Ok(SingleInstanceLock { _file: None });
    }
    let file = File::open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(SingleInstanceLock { _file: Some(file) }),
        Err(TryLockError::WouldBlock) => anyhow::bail!(
            "another `tally serve` is already running on the SQLite database {}: SQLite serves \
             one instance (a second one would split the quota counters); stop the other one, or \
             run several instances on PostgreSQL",
            path.display()
        ),
        Err(TryLockError::Error(err)) => Err(err.into()),
    }
}

/// The advisory lock key of setting a database up: "tally" in ASCII, then 0 (the background
/// jobs' keys follow it, see `jobs.rs`).
const SETUP_LOCK_KEY: i64 = 0x7461_6c6c_7900_0000;

/// Held by `serve` while it migrates the database and creates the first admin: several instances
/// started at once on one PostgreSQL database take turns, so that one applies the migrations and
/// creates the admin and the others find them done. A session advisory lock on a connection of
/// its own, released when [`SetupLock::release`] closes it (or the process ends).
pub struct SetupLock(Option<sea_orm::sqlx::PgConnection>);

/// Waits for the setup lock of a PostgreSQL database; SQLite needs none (one instance).
pub async fn lock_setup(url: &str) -> anyhow::Result<SetupLock> {
    use sea_orm::sqlx::{Connection, PgConnection};
    if !url.starts_with("postgres") {
        return Ok(SetupLock(None));
    }
    let mut connection = PgConnection::connect(url).await?;
    sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(SETUP_LOCK_KEY)
        .execute(&mut connection)
        .await?;
    Ok(SetupLock(Some(connection)))
}

impl SetupLock {
    pub async fn release(self) {
        use sea_orm::sqlx::Connection;
        if let Some(connection) = self.0 {
            // Closing the session releases its advisory locks; a failed close drops it anyway.
            let _ = connection.close().await;
        }
    }
}

/// A database URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
