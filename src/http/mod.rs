//! Thin REST handlers: extract, call the domain, map the result.

pub mod billing_webhook;
pub mod graphql;
pub mod health;
