//! Thin REST handlers: extract, call the domain, map the result.

pub mod access_log;
pub mod authenticated_key;
pub mod bearer;
pub mod billing_webhook;

pub mod client;
pub mod code;
pub mod cors;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod graphql;
pub mod health;
pub mod ingest;
pub mod install;
pub mod limited_body;
pub mod methods;
pub mod metrics_route;
pub mod openapi;
pub mod request_id;
pub mod response_bodies;
pub mod rest_routes;
pub mod track;
pub mod verify;
