//! Tally meters API usage: it issues and checks API keys, takes usage events, enforces plan
//! quotas and rate limits, bills overage and answers analytics and admin questions over GraphQL.
//!
//! [`app`] builds the router that both the binary and the tests drive.

pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod entity;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod router;
pub mod server;
pub mod state;
pub mod telemetry;

pub use router::app;
pub use state::AppState;
