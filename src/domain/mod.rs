//! The rules of the product, free of HTTP and GraphQL: handlers and resolvers call in here.

pub mod accounts;
pub mod analytics;
pub mod api_keys;
pub mod auth;
pub mod billing;
pub mod deadline;
pub mod dialect;
pub mod error;
pub mod histogram;
pub mod ingest;
pub mod invalidation;
pub mod key_usage;
pub mod keys;
pub mod login_failures;
pub mod paging;
pub mod payload;
pub mod periods;
pub mod plans;
pub mod quota;
pub mod ratelimit;
pub mod recorder;
pub mod replay;
pub mod retention;
pub mod settings;
pub mod signature;
pub mod usage;
