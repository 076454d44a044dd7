//! Where the writer writes a batch: through SeaORM, or, on a SQLite file, through a connection
//! of its own on a thread of its own.
//!
//! sqlx runs every SQLite statement on a worker thread and hands the result back to the task that
//! asked: a batch (BEGIN, the event inserts, the period counters, the rollup delta, COMMIT) made
//! 6–8 such hand-offs, and on a busy machine each one waits for a core — a quarter of the server's
//! time in a profile of `/api/track`. So on a SQLite file the writer runs on a thread of its own
//! with a rusqlite connection to the same file, and writes a whole batch there without leaving
//! it, its statements prepared once and kept. The statements are the same sea-query statements
//! on every backend: only who executes them differs.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{FromSql, Value as SqliteValue};
use rusqlite::{OpenFlags, TransactionBehavior};
use sea_orm::sea_query::{Value, Values};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, QueryResult,
    RuntimeErr, Statement, StatementBuilder, TransactionTrait, TryGetable,
};

use crate::domain::dialect;

/// Statements kept prepared by the writer's SQLite connection: the batch's shapes (event inserts
/// in power-of-two sizes, counters, delta) with room to spare.
const PREPARED_STATEMENTS: usize = 64;

/// A database the writer opens its batch transactions on.
pub(super) trait Store {
    type Tx<'s>: BatchTx
    where
        Self: 's;

    /// Opens a batch's transaction, waiting at most `lock_wait` for the write lock (and for any
    /// lock its statements need, where the database can say so per transaction).
    async fn begin(&mut self, lock_wait: Duration) -> Result<Self::Tx<'_>, DbErr>;
}

/// A batch's transaction. Dropped without [`BatchTx::commit`], it rolls back.
pub(super) trait BatchTx {
    fn backend(&self) -> DatabaseBackend;

    /// Runs a statement built for [`BatchTx::backend`]; the rows it changed.
    async fn execute_built(&self, statement: Statement) -> Result<u64, DbErr>;

    /// Runs a statement built for [`BatchTx::backend`] and reads the rows it returns.
    async fn fetch_built<R: FromColumns>(&self, statement: Statement) -> Result<Vec<R>, DbErr>;

    async fn commit(self) -> Result<(), DbErr>;

    /// Runs a statement; the rows it changed.
    async fn execute<S: StatementBuilder>(&self, statement: &S) -> Result<u64, DbErr> {
        self.execute_built(statement.build(&self.backend())).await
    }

    /// Runs a statement and reads the rows it returns.
    async fn fetch<S: StatementBuilder, R: FromColumns>(
        &self,
        statement: &S,
    ) -> Result<Vec<R>, DbErr> {
        self.fetch_built(statement.build(&self.backend())).await
    }
}

/// A value both backends' rows can be read as.
pub(super) trait Column: TryGetable + FromSql {}

impl<T: TryGetable + FromSql> Column for T {}

/// A returned row, whichever connection read it.
pub(super) trait Columns {
    fn column<T: Column>(&self, index: usize) -> Result<T, DbErr>;
}

impl Columns for QueryResult {
    fn column<T: Column>(&self, index: usize) -> Result<T, DbErr> {
        self.try_get_by_index(index)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn column<T: Column>(&self, index: usize) -> Result<T, DbErr> {
        self.get(index).map_err(sqlite_error)
    }
}

/// What a returned row is read into.
pub(super) trait FromColumns: Sized {
    fn from_columns(row: &impl Columns) -> Result<Self, DbErr>;
}

macro_rules! tuple_from_columns {
    ($($name:ident $index:tt),+) => {
        impl<$($name: Column),+> FromColumns for ($($name,)+) {
            fn from_columns(row: &impl Columns) -> Result<Self, DbErr> {
                Ok(($(row.column::<$name>($index)?,)+))
            }
        }
    };
}

tuple_from_columns!(A 0, B 1);
tuple_from_columns!(A 0, B 1, C 2);

/// The service's pool: PostgreSQL, or SQLite in memory.
pub(super) struct Pooled {
    db: DatabaseConnection,
    /// The lock wait the pool's connections were opened with.
    lock_timeout: Duration,
}

impl Pooled {
    pub(super) fn new(db: DatabaseConnection, lock_timeout: Duration) -> Self {
        Self { db, lock_timeout }
    }
}

/// A batch whose requests have this much less time left than the connection's own lock wait
/// gets a shorter one of its own.
const SHORTER_BY: Duration = Duration::from_millis(100);

impl Store for Pooled {
    type Tx<'s> = DatabaseTransaction;

    /// On PostgreSQL a batch whose requests waited in the queue sets a shorter `lock_timeout`
    /// for itself: one statement more, only then. (SQLite in memory has no other process to
    /// wait for.)
    async fn begin(&mut self, lock_wait: Duration) -> Result<DatabaseTransaction, DbErr> {
        let begin = tokio::time::timeout(lock_wait, TransactionTrait::begin(&self.db));
        let txn = begin.await.map_err(|_| {
            DbErr::Conn(RuntimeErr::Internal(
                "no database connection within the requests' wait".to_owned(),
            ))
        })??;
        if self.db.get_database_backend() == DatabaseBackend::Postgres
            && lock_wait + SHORTER_BY < self.lock_timeout
        {
            // 0 would mean no limit at all.
            let ms = lock_wait.as_millis().max(1);
            txn.execute_unprepared(&format!("SET LOCAL lock_timeout = {ms}"))
                .await?;
        }
        Ok(txn)
    }
}

impl BatchTx for DatabaseTransaction {
    fn backend(&self) -> DatabaseBackend {
        self.get_database_backend()
    }

    async fn execute_built(&self, statement: Statement) -> Result<u64, DbErr> {
        Ok(self.execute_raw(statement).await?.rows_affected())
    }

    async fn fetch_built<R: FromColumns>(&self, statement: Statement) -> Result<Vec<R>, DbErr> {
        self.query_all_raw(statement)
            .await?
            .iter()
            .map(R::from_columns)
            .collect()
    }

    async fn commit(self) -> Result<(), DbErr> {
        DatabaseTransaction::commit(self).await
    }
}

/// The writer's own connection to the SQLite file the service uses.
pub(super) struct SqliteFile {
    connection: rusqlite::Connection,
    /// The service's pool for the same file: once it is closed (the service is stopping, or its
    /// database was taken away), the writer writes nothing more either.
    pool: sea_orm::sqlx::SqlitePool,
}

impl SqliteFile {
    /// Opens the file `db` (a SQLite pool) reads, with the pool's settings (WAL, `synchronous=FULL`,
    /// foreign keys) and `lock_timeout` as its busy timeout. `None` when the database is not a
    /// file of its own (in memory): then only the pool's connections can reach it.
    pub(super) fn open(
        db: &DatabaseConnection,
        lock_timeout: Duration,
    ) -> Option<Result<Self, rusqlite::Error>> {
        if db.get_database_backend() != DatabaseBackend::Sqlite {
            return None;
        }
        let pool = db.get_sqlite_connection_pool();
        let options = pool.connect_options();
        let path = options.get_filename();
        path.is_file().then(|| {
            Ok(Self {
                connection: Self::connect(path, lock_timeout)?,
                pool: pool.clone(),
            })
        })
    }

    fn connect(
        path: &Path,
        lock_timeout: Duration,
    ) -> Result<rusqlite::Connection, rusqlite::Error> {
        let connection = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", true)?;
        // A multi-row statement keeps a journal of the pages it changes, to undo itself alone.
        // Past 64 KiB SQLite spills it to a temporary file: a write call per page, on every
        // batch. In memory it costs a batch's few pages of RAM.
        connection.pragma_update(None, "temp_store", "MEMORY")?;
        connection.busy_timeout(lock_timeout)?;
        connection.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        Ok(connection)
    }
}

impl Store for SqliteFile {
    type Tx<'s> = rusqlite::Transaction<'s>;

    /// `BEGIN IMMEDIATE`: the write lock is taken (or waited for, at most `lock_wait`) at the
    /// start, so a batch never fails halfway for want of it.
    async fn begin(&mut self, lock_wait: Duration) -> Result<rusqlite::Transaction<'_>, DbErr> {
        if self.pool.is_closed() {
            return Err(DbErr::Conn(RuntimeErr::Internal(
                "the database has been closed".to_owned(),
            )));
        }
        // Only sets the busy handler's limit: no statement, no I/O.
        self.connection
            .busy_timeout(lock_wait)
            .map_err(sqlite_error)?;
        self.connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error)
    }
}

impl BatchTx for rusqlite::Transaction<'_> {
    fn backend(&self) -> DatabaseBackend {
        DatabaseBackend::Sqlite
    }

    async fn execute_built(&self, statement: Statement) -> Result<u64, DbErr> {
        let values = sqlite_values(statement.values)?;
        let mut prepared = self.prepare_cached(&statement.sql).map_err(sqlite_error)?;
        let changed = prepared
            .execute(rusqlite::params_from_iter(values))
            .map_err(sqlite_error)?;
        Ok(changed as u64)
    }

    async fn fetch_built<R: FromColumns>(&self, statement: Statement) -> Result<Vec<R>, DbErr> {
        let values = sqlite_values(statement.values)?;
        let mut prepared = self.prepare_cached(&statement.sql).map_err(sqlite_error)?;
        let mut rows = prepared
            .query(rusqlite::params_from_iter(values))
            .map_err(sqlite_error)?;
        let mut read = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite_error)? {
            read.push(R::from_columns(row)?);
        }
        Ok(read)
    }

    async fn commit(self) -> Result<(), DbErr> {
        rusqlite::Transaction::commit(self).map_err(sqlite_error)
    }
}

/// A statement's values as rusqlite binds them.
fn sqlite_values(values: Option<Values>) -> Result<Vec<SqliteValue>, DbErr> {
    values
        .into_iter()
        .flat_map(|values| values.0)
        .map(sqlite_value)
        .collect()
}

/// A sea-query value as SQLite stores it (as sqlx's SQLite driver binds it: booleans as 0 or 1).
fn sqlite_value(value: Value) -> Result<SqliteValue, DbErr> {
    let value = match value {
        Value::Bool(v) => v.map(|v| SqliteValue::Integer(v.into())),
        Value::TinyInt(v) => v.map(|v| SqliteValue::Integer(v.into())),
        Value::SmallInt(v) => v.map(|v| SqliteValue::Integer(v.into())),
        Value::Int(v) => v.map(|v| SqliteValue::Integer(v.into())),
        Value::BigInt(v) => v.map(SqliteValue::Integer),
        Value::TinyUnsigned(v) => v.map(|v| SqliteValue::Integer(v.into())),
        Value::SmallUnsigned(v) => v.map(|v| SqliteValue::Integer(v.into())),
        Value::Unsigned(v) => v.map(|v| SqliteValue::Integer(v.into())),
        Value::Float(v) => v.map(|v| SqliteValue::Real(v.into())),
        Value::Double(v) => v.map(SqliteValue::Real),
        Value::String(v) => v.map(SqliteValue::Text),
        Value::Bytes(v) => v.map(SqliteValue::Blob),
        Value::Json(v) => v.map(|v| SqliteValue::Text(v.to_string())),
        other => {
            return Err(DbErr::Custom(format!(
                "the recorder has no SQLite binding for {other:?}"
            )))
        }
    };
    Ok(value.unwrap_or(SqliteValue::Null))
}

/// A rusqlite error as the recorder judges SeaORM's: a code that says the database cannot take
/// writes right now (busy, locked, I/O, full…) is a connection error, anything else a failed
/// statement.
fn sqlite_error(err: rusqlite::Error) -> DbErr {
    let transient = err.sqlite_error().is_some_and(|cause| {
        dialect::transient_code(DatabaseBackend::Sqlite, &cause.extended_code.to_string())
    });
    let cause = RuntimeErr::Internal(format!("SQLite: {err}"));
    if transient {
        DbErr::Conn(cause)
    } else {
        DbErr::Exec(cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_bind_as_sqlx_binds_them() {
        assert_eq!(
            sqlite_value(Value::Bool(Some(true))).unwrap(),
            SqliteValue::Integer(1)
        );
        assert_eq!(sqlite_value(Value::Int(None)).unwrap(), SqliteValue::Null);
        assert_eq!(
            sqlite_value(Value::String(Some("x".into()))).unwrap(),
            SqliteValue::Text("x".into())
        );
        assert!(sqlite_value(Value::Char(Some('x'))).is_err());
    }

    #[test]
    fn busy_and_locked_are_connection_errors_and_constraints_are_not() {
        let failure = |code| {
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("why".into()))
        };
        assert!(matches!(
            sqlite_error(failure(rusqlite::ffi::SQLITE_BUSY)),
            DbErr::Conn(_)
        ));
        assert!(matches!(
            sqlite_error(failure(rusqlite::ffi::SQLITE_IOERR_FSYNC)),
            DbErr::Conn(_)
        ));
        assert!(matches!(
            sqlite_error(failure(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)),
            DbErr::Exec(_)
        ));
    }
}
