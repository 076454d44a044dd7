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
            ext.set("code", GraphqlCode::of(&err).as_str());
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

/// The `extensions.code` of a GraphQL error: what kind of failure it is. docs/graphql.md lists
/// them (a test checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphqlCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    RateLimited,
    Internal,
}

impl GraphqlCode {
    pub const ALL: [GraphqlCode; 6] = [
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::BadUserInput,
        Self::RateLimited,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::RateLimited => "RATE_LIMITED",
            Self::Internal => "INTERNAL",
        }
    }

    /// The code of a domain error: by its variant alone, never its message.
    pub fn of(err: &DomainError) -> Self {
        match err {
            DomainError::Unauthenticated { .. } => Self::Unauthenticated,
            DomainError::Forbidden { .. } => Self::Forbidden,
            DomainError::NotFound(_) => Self::NotFound,
            DomainError::BadInput { .. } => Self::BadUserInput,
            DomainError::RateLimited { .. } | DomainError::QuotaExceeded { .. } => {
                Self::RateLimited
            }
            DomainError::Unavailable(_) | DomainError::Internal(_) => Self::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GraphqlCode;

    #[test]
    fn the_docs_table_lists_exactly_the_codes() {
        let doc = include_str!("../../docs/graphql.md");
        let mut documented: Vec<&str> = doc
            .lines()
            .skip_while(|line| !line.starts_with("| `extensions.code` |"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .filter_map(|row| row.split('|').nth(1))
            .map(|cell| cell.trim().trim_matches('`'))
            .collect();
        let mut codes: Vec<&str> = GraphqlCode::ALL.iter().map(|c| c.as_str()).collect();
        documented.sort_unstable();
        codes.sort_unstable();
        assert_eq!(documented, codes);
    }
}
