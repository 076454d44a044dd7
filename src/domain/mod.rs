//! The rules of the product, free of HTTP and GraphQL: handlers and resolvers call in here.

pub mod accounts;
pub mod api_keys;
pub mod auth;
pub mod billing;
pub mod keys;
pub mod plans;
pub mod settings;
