//! The error policy.
//!
//! Every failure the service reports is an [`AppError`]. The variant decides what the client sees:
//! a REST status with a JSON body `{"error": ...}`, or a GraphQL error with `extensions.code`.
//! Client mistakes carry a message meant for the client. Everything else is `Internal`: the cause
//! is logged with its context where it is turned into a response, and the client only ever gets
//! "Internal error" — never database text, paths or stack traces.

use std::collections::BTreeMap;
use std::fmt;

use async_graphql::ErrorExtensions;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Deliberately not `Display`: that keeps async-graphql's blanket `From<T: Display>` away, so
/// every resolver error goes through [`ErrorExtensions`] and gets its `extensions.code`.
#[derive(Debug)]
pub enum AppError {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    /// Bad input; `fields` maps a field name to what is wrong with it.
    BadInput {
        message: String,
        fields: BTreeMap<String, Vec<String>>,
    },
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// A blocking plan has no calls left in the period; `reset` is the period's end.
    QuotaExceeded {
        limit: i64,
        used: i64,
        reset: chrono::DateTime<chrono::Utc>,
        upgrade_url: String,
        retry_after_secs: u64,
    },
    /// The database (or another dependency) cannot be reached right now; worth retrying.
    Unavailable(anyhow::Error),
    Internal(anyhow::Error),
}

impl AppError {
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::Unauthenticated(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput {
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    /// A bad value of one named field.
    pub fn bad_field(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        Self::BadInput {
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
        Self::bad_fields("Invalid payload", problems)
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    /// What the client is told.
    pub fn message(&self) -> &str {
        match self {
            Self::Unauthenticated(m) | Self::Forbidden(m) | Self::NotFound(m) => m,
            Self::BadInput { message, .. } | Self::RateLimited { message, .. } => message,
            Self::QuotaExceeded { .. } => "Quota exceeded",
            Self::Unavailable(_) => "Service unavailable",
            Self::Internal(_) => "Internal error",
        }
    }

    /// The GraphQL `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput { .. } => "BAD_USER_INPUT",
            Self::RateLimited { .. } | Self::QuotaExceeded { .. } => "RATE_LIMITED",
            Self::Unavailable(_) | Self::Internal(_) => "INTERNAL",
        }
    }

    fn log_if_internal(&self) {
        match self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            Self::Unavailable(cause) => tracing::warn!(error = ?cause, "dependency unavailable"),
            _ => {}
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        if is_connection_error(&err) {
            Self::Unavailable(err.into())
        } else {
            Self::Internal(err.into())
        }
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(err: sea_orm::TransactionError<AppError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(app) => app,
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

impl AppError {
    /// The REST status, JSON body and `Retry-After` seconds of this error. Logs internal causes.
    pub fn rest_parts(&self) -> (StatusCode, serde_json::Value, Option<u64>) {
        self.log_if_internal();
        let (status, body) = match self {
            Self::Unauthenticated(m) => (StatusCode::UNAUTHORIZED, json!({ "error": m })),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, json!({ "error": m })),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, json!({ "error": m })),
            Self::BadInput { message, fields } if fields.is_empty() => {
                (StatusCode::BAD_REQUEST, json!({ "error": message }))
            }
            Self::BadInput { fields, .. } => (
                StatusCode::BAD_REQUEST,
                json!({ "error": "Invalid payload", "details": fields }),
            ),
            Self::RateLimited { message, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, json!({ "error": message }))
            }
            Self::QuotaExceeded {
                limit,
                used,
                reset,
                upgrade_url,
                ..
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({
                    "error": "Quota exceeded",
                    "limit": limit,
                    "used": used,
                    "reset": reset.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "upgrade_url": upgrade_url,
                }),
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "Service unavailable" }),
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": "Internal error" }),
            ),
        };
        let retry_after = match self {
            Self::RateLimited {
                retry_after_secs, ..
            }
            | Self::QuotaExceeded {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            Self::Unavailable(_) => Some(1),
            _ => None,
        };
        (status, body, retry_after)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, body, retry_after) = self.rest_parts();
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        self.log_if_internal();
        let message = match self {
            Self::Unavailable(_) => "Internal error",
            other => other.message(),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", self.code());
            match self {
                Self::BadInput { fields, .. } if !fields.is_empty() => {
                    let fields: async_graphql::indexmap::IndexMap<
                        async_graphql::Name,
                        async_graphql::Value,
                    > = fields
                        .iter()
                        .map(|(k, v)| {
                            (
                                async_graphql::Name::new(k),
                                async_graphql::Value::List(
                                    v.iter()
                                        .map(|m| async_graphql::Value::from(m.as_str()))
                                        .collect(),
                                ),
                            )
                        })
                        .collect();
                    ext.set("fields", async_graphql::Value::Object(fields));
                }
                Self::RateLimited {
                    retry_after_secs, ..
                }
                | Self::QuotaExceeded {
                    retry_after_secs, ..
                } => {
                    ext.set("retryAfter", *retry_after_secs);
                }
                _ => {}
            }
        })
    }
}

impl AppError {
    /// The error as an operator at the command line reads it: the message for a mistake in what
    /// was asked, the whole cause for an internal failure (there is nobody to hide it from).
    pub fn into_operator_error(self) -> anyhow::Error {
        match self {
            Self::Internal(cause) | Self::Unavailable(cause) => cause,
            other => anyhow::anyhow!("{}", other.message()),
        }
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        err.extend()
    }
}

/// Shorthand used by resolvers and domain code.
pub type AppResult<T> = Result<T, AppError>;

/// Lets `?` turn any displayable failure into an internal error with its context kept for the log.
pub trait Context<T> {
    fn context_internal(self, what: impl fmt::Display + Send + Sync + 'static) -> AppResult<T>;
}

impl<T, E> Context<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn context_internal(self, what: impl fmt::Display + Send + Sync + 'static) -> AppResult<T> {
        self.map_err(|err| AppError::Internal(err.into().context(what)))
    }
}
