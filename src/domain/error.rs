//! The error policy.
//!
//! Every failure the service reports is a [`DomainError`]. The variant, and for the variants that
//! stand for several situations its reason ([`UnauthenticatedReason`], [`ForbiddenReason`],
//! [`BadInputReason`]), decides what the client sees: codes come from the reason, never from the
//! wording of a message. `http::error` turns it into a REST status with a JSON body `{"error": ...}` and
//! `graphql::error` into a GraphQL error with `extensions.code`, each in one place. Client mistakes
//! carry a message meant for the client, which is also the error's `Display`. Everything else is
//! `Internal` (or `Unavailable`): its `Display` is the generic message, the cause is logged with its
//! context where the error is turned into a response, and the client never gets database text,
//! paths or stack traces.
//!
//! `Unavailable` is expected — the database restarts, a lock is held elsewhere — and may come
//! once per request for as long as an outage lasts, so its cause is an [`Outage`]: a sentence and
//! the error that said so, never a backtrace. (`anyhow` captures one whenever `RUST_BACKTRACE` or
//! `RUST_LIB_BACKTRACE` is set; logging them resolved their symbols, hundreds of MB.)

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseBackend, DbErr, RuntimeErr};

use crate::domain::dialect;

/// Client messages the REST contract fixes word for word.
pub mod messages {
    pub const MISSING_AUTHORIZATION: &str = "Missing authorization";
    pub const INVALID_KEY: &str = "Invalid key";
    pub const INVALID_JSON: &str = "Invalid JSON";
    pub const INVALID_PAYLOAD: &str = "Invalid payload";
    pub const INVALID_SIGNATURE: &str = "Invalid signature";
}

/// Clone (causes are shared) so DataLoaders, which hand one result to many fields, can carry it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DomainError {
    #[error("{message}")]
    Unauthenticated {
        reason: UnauthenticatedReason,
        message: String,
    },
    #[error("{message}")]
    Forbidden {
        reason: ForbiddenReason,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    /// Bad input; `fields` maps a field name to what is wrong with it.
    #[error("{message}")]
    BadInput {
        reason: BadInputReason,
        message: String,
        fields: BTreeMap<String, Vec<String>>,
    },
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// A blocking plan has no calls left in the period; `reset` is the period's end.
    #[error("Quota exceeded")]
    QuotaExceeded {
        limit: i64,
        used: i64,
        reset: DateTime<Utc>,
        upgrade_url: String,
        retry_after_secs: u64,
    },
    /// The database (or another dependency) cannot serve right now; worth retrying.
    #[error("Service unavailable")]
    Unavailable(Arc<Outage>),
    #[error("Internal error")]
    Internal(Arc<anyhow::Error>),
}

/// Why a caller is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnauthenticatedReason {
    /// No credentials at all: no `Authorization: Bearer` header.
    MissingCredentials,
    /// Credentials that do not authenticate: an unknown, malformed, revoked or expired key or
    /// token, a wrong password.
    InvalidCredentials,
}

/// Why an authenticated caller is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForbiddenReason {
    /// A request body's `X-Tally-Signature` is wrong, or missing while the key requires one.
    InvalidSignature,
    /// The operation needs a role the caller does not have.
    RoleRequired,
}

/// What is wrong with a request's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadInputReason {
    /// The body is not JSON.
    InvalidJson,
    /// JSON (or arguments) that break the rules; `fields` says which and how.
    InvalidPayload,
    /// A signed body (the billing provider's) whose signature is bad, missing or stale.
    InvalidSignature,
    /// Anything else the client asked that cannot be done as asked.
    Other,
}

/// Shorthand used by domain code, handlers and resolvers.
pub type DomainResult<T> = Result<T, DomainError>;

impl DomainError {
    pub fn unauthenticated(reason: UnauthenticatedReason, message: impl Into<String>) -> Self {
        Self::Unauthenticated {
            reason,
            message: message.into(),
        }
    }

    pub fn forbidden(reason: ForbiddenReason, message: impl Into<String>) -> Self {
        Self::Forbidden {
            reason,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::bad_input_because(BadInputReason::Other, message)
    }

    /// Bad input for a reason clients tell apart, without fields.
    pub fn bad_input_because(reason: BadInputReason, message: impl Into<String>) -> Self {
        Self::BadInput {
            reason,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    /// The REST contract's "Invalid JSON": a body that does not parse.
    pub fn invalid_json() -> Self {
        Self::bad_input_because(BadInputReason::InvalidJson, messages::INVALID_JSON)
    }

    /// A bad value of one named field.
    pub fn bad_field(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        Self::BadInput {
            reason: BadInputReason::InvalidPayload,
            message: format!("{field}: {problem}"),
            fields: BTreeMap::from([(field.to_owned(), vec![problem])]),
        }
    }

    /// Several bad fields at once; problems of the same field are kept together, in order.
    pub fn bad_fields<F, P>(
        message: impl Into<String>,
        problems: impl IntoIterator<Item = (F, P)>,
    ) -> Self
    where
        F: Into<String>,
        P: Into<String>,
    {
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (field, problem) in problems {
            fields.entry(field.into()).or_default().push(problem.into());
        }
        Self::BadInput {
            reason: BadInputReason::InvalidPayload,
            message: message.into(),
            fields,
        }
    }

    /// The REST contract's "Invalid payload" with per-field details.
    pub fn invalid_payload<F, P>(problems: impl IntoIterator<Item = (F, P)>) -> Self
    where
        F: Into<String>,
        P: Into<String>,
    {
        Self::bad_fields(messages::INVALID_PAYLOAD, problems)
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(Arc::new(cause.into()))
    }

    /// A dependency cannot serve right now, for the reason `what` says.
    pub fn unavailable(what: impl Into<Cow<'static, str>>) -> Self {
        Self::Unavailable(Arc::new(Outage::new(what)))
    }

    /// Logs the hidden cause of an internal or unavailable error; called where an error becomes a
    /// response, so each failure is logged once.
    pub fn log_cause(&self) {
        match self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            Self::Unavailable(cause) => tracing::warn!(error = %cause, "dependency unavailable"),
            _ => {}
        }
    }

    /// The error as an operator at the command line reads it: the message for a mistake in what
    /// was asked, the whole cause for an internal failure (there is nobody to hide it from).
    pub fn into_operator_error(self) -> anyhow::Error {
        match self {
            Self::Internal(cause) => {
                Arc::try_unwrap(cause).unwrap_or_else(|shared| anyhow::anyhow!("{shared:#}"))
            }
            Self::Unavailable(outage) => anyhow::anyhow!("{outage}"),
            other => anyhow::anyhow!("{other}"),
        }
    }
}

/// Why a dependency cannot serve right now: what was being done and the error that said so.
/// Cheap on purpose, and without a backtrace (see the module's comment).
pub struct Outage {
    what: Cow<'static, str>,
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Outage {
    pub fn new(what: impl Into<Cow<'static, str>>) -> Self {
        Self {
            what: what.into(),
            cause: None,
        }
    }

    pub fn because(
        what: impl Into<Cow<'static, str>>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            what: what.into(),
            cause: Some(Box::new(cause)),
        }
    }
}

/// The sentence, then each cause in turn: `what: cause: its cause`.
impl fmt::Display for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        let mut cause = self
            .cause
            .as_deref()
            .map(|cause| cause as &(dyn std::error::Error + 'static));
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

/// As `Display`: one line, whoever formats it.
impl fmt::Debug for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Outage {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

impl From<sea_orm::DbErr> for DomainError {
    fn from(err: sea_orm::DbErr) -> Self {
        if is_transient(&err) {
            Self::Unavailable(Arc::new(Outage::because("the database cannot serve", err)))
        } else {
            Self::internal(err)
        }
    }
}

impl From<sea_orm::TransactionError<DomainError>> for DomainError {
    fn from(err: sea_orm::TransactionError<DomainError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(domain) => domain,
        }
    }
}

/// True when the error says the database could not be reached, as opposed to a bad statement.
pub fn is_connection_error(err: &sea_orm::DbErr) -> bool {
    matches!(
        err,
        sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_)
    )
}

/// True when a statement failed because the database cannot serve right now — unreachable, the
/// connection lost, busy or locked past its lock timeout, out of resources — rather than because
/// of the statement or its data: every request would fail alike, and a retry later may succeed.
pub fn is_transient(err: &DbErr) -> bool {
    use sea_orm::sqlx::postgres::PgDatabaseError;
    use sea_orm::sqlx::Error;
    if is_connection_error(err) {
        return true;
    }
    let (DbErr::Exec(RuntimeErr::SqlxError(cause)) | DbErr::Query(RuntimeErr::SqlxError(cause))) =
        err
    else {
        return false;
    };
    match cause.as_ref() {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(db) => {
            let backend = if db.try_downcast_ref::<PgDatabaseError>().is_some() {
                DatabaseBackend::Postgres
            } else {
                DatabaseBackend::Sqlite
            };
            db.code()
                .is_some_and(|code| dialect::transient_code(backend, &code))
        }
        _ => false,
    }
}

/// Lets `?` turn any failure into an internal error with its context kept for the log.
pub trait Context<T> {
    fn context_internal(self, what: impl fmt::Display + Send + Sync + 'static) -> DomainResult<T>;
}

impl<T, E> Context<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn context_internal(self, what: impl fmt::Display + Send + Sync + 'static) -> DomainResult<T> {
        self.map_err(|err| DomainError::Internal(Arc::new(err.into().context(what))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_display_the_generic_message_only() {
        let err =
            DomainError::internal(anyhow::anyhow!("relation \"secret_table\" does not exist"));
        assert_eq!(err.to_string(), "Internal error");
        assert!(format!("{err:?}").contains("secret_table"));
    }

    #[test]
    fn an_outage_reads_as_one_line_with_its_causes_and_no_backtrace() {
        let lost = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let err = DomainError::from(DbErr::Query(RuntimeErr::SqlxError(Arc::new(
            sea_orm::sqlx::Error::Io(lost),
        ))));
        let DomainError::Unavailable(outage) = &err else {
            panic!("not unavailable: {err:?}");
        };
        let line = format!("{outage:?}");
        assert!(line.starts_with("the database cannot serve: "), "{line}");
        assert!(line.contains("connection reset"), "{line}");
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(err.to_string(), "Service unavailable");
    }

    #[test]
    fn an_operator_reads_the_whole_cause() {
        let err = DomainError::internal(anyhow::anyhow!("disk full")).into_operator_error();
        assert_eq!(err.to_string(), "disk full");
        let mistake = DomainError::bad_field("email", "is not an email").into_operator_error();
        assert_eq!(mistake.to_string(), "email: is not an email");
    }
}
