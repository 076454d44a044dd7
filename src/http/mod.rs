//! Thin REST handlers: extract, call the domain, map the result.

pub mod access_log;
pub mod bearer;
pub mod billing_webhook;
pub mod bodies;
pub mod body;
pub mod caller;
pub mod client;
pub mod code;
pub mod cors;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod health;
pub mod ingest;
pub mod install;
pub mod methods;
pub mod metrics;
pub mod openapi;
pub mod request_id;
pub mod track;
pub mod verify;
