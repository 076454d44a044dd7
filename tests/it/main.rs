//! The integration tests: one binary, one module per area. Tests drive the real router from
//! `tally::app` (`oneshot`) against a fresh database each, or the real `tally` binary where a
//! process matters (start-up, crashes, connections, the command line).

// All of this crate is test code, helpers included (clippy's `allow-unwrap-in-tests` only sees
// `#[test]` functions): a failed unwrap is the test's failure report.
#![allow(clippy::unwrap_used)]

mod common;

mod admin_analytics;
mod analytics;
mod analytics_props;
mod api_keys;
mod auth;
mod billing_invoices;
mod billing_periods;
mod billing_webhook;
mod cli;
mod cors;
mod crash;
mod dashboard;
mod demo;
mod error_codes;
mod graphql_edge;
mod health;
mod hook_script;
mod ingest_gateway;
mod ingest_ops;
mod ingest_track;
mod instances;
mod key_usage;
mod logs;
mod migrations;
mod openapi;
mod pagination;
mod plans_admin;
mod proxies;
mod schema_sdl;
mod shared_limits;
