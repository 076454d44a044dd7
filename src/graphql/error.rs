//! GraphQL errors, in one place: a [`DomainError`] becomes an error whose message is the
//! domain's and whose `extensions.code` says what kind it is (`fields` for bad input,
//! `retryAfter` for refusals). The crate enables async-graphql's `custom-error-conversion`, so
//! `?` in a resolver goes through here and no error reaches a client without its code.

use async_graphql::indexmap::IndexMap;
use async_graphql::{ErrorExtensions, Name, Value};

use crate::domain::error::DomainError;

impl From<DomainError> for async_graphql::Error {
    fn from(err: DomainError) -> Self {
        err.log_cause();
        // An unreachable database is retried by the REST client with 503; over GraphQL it is
        // an internal error like any other.
        let message = match &err {
            DomainError::Unavailable(_) => "Internal error".to_owned(),
            other => other.to_string(),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code(&err));
            match &err {
                DomainError::BadInput { fields, .. } if !fields.is_empty() => {
                    let fields: IndexMap<Name, Value> = fields
                        .iter()
                        .map(|(field, problems)| {
                            let problems = problems.iter().map(|p| Value::from(p.as_str()));
                            (Name::new(field), Value::List(problems.collect()))
                        })
                        .collect();
                    ext.set("fields", Value::Object(fields));
                }
                DomainError::RateLimited {
                    retry_after_secs, ..
                }
                | DomainError::QuotaExceeded {
                    retry_after_secs, ..
                } => ext.set("retryAfter", *retry_after_secs),
                _ => {}
            }
        })
    }
}

/// The `extensions.code` of an error.
fn code(err: &DomainError) -> &'static str {
    match err {
        DomainError::Unauthenticated { .. } => "UNAUTHENTICATED",
        DomainError::Forbidden { .. } => "FORBIDDEN",
        DomainError::NotFound(_) => "NOT_FOUND",
        DomainError::BadInput { .. } => "BAD_USER_INPUT",
        DomainError::RateLimited { .. } | DomainError::QuotaExceeded { .. } => "RATE_LIMITED",
        DomainError::Unavailable(_) | DomainError::Internal(_) => "INTERNAL",
    }
}
