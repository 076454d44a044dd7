//! DataLoaders: fields that would otherwise run one query per object of a list batch their loads
//! here. [`attach`] gives every request its own set of loaders (so their caches never outlive the
//! request); the HTTP handler calls it, and so does anything else that executes the schema.
//!
//! A loader batches the keys asked within a short delay, which is timing; a resolver that knows
//! a whole page up front (e.g. `adminAccounts`) asks for all of it at once with `load_many`, and
//! the per-object fields then read the request's cache: one query per page, deterministically.

mod key_usage;
mod plan;
mod usage;

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::{Context, Request};
use sea_orm::DatabaseConnection;

use crate::domain::error::DomainError;

pub use key_usage::{KeyAt, KeyCallsLoader, KeyHistoryLoader, KeyWindow};
pub use plan::PlanLoader;
pub use usage::{UsageKey, UsageLoader};

pub type Usage = DataLoader<UsageLoader, HashMapCache>;
pub type Plans = DataLoader<PlanLoader, HashMapCache>;
pub type KeyCalls = DataLoader<KeyCallsLoader, HashMapCache>;
pub type KeyHistory = DataLoader<KeyHistoryLoader, HashMapCache>;

/// Adds every loader, fresh, to one request.
pub fn attach(request: Request, db: &DatabaseConnection) -> Request {
    request
        .data(cached(UsageLoader::new(db.clone())))
        .data(cached(PlanLoader::new(db.clone())))
        .data(cached(KeyCallsLoader::new(db.clone())))
        .data(cached(KeyHistoryLoader::new(db.clone())))
}

/// `loader` batching on the runtime, each value loaded once per request.
fn cached<T: Send + Sync + 'static>(loader: T) -> DataLoader<T, HashMapCache> {
    DataLoader::with_cache(loader, tokio::spawn, HashMapCache::default())
}

/// A loader of the current request.
pub fn get<'a, T: Send + Sync + 'static>(ctx: &Context<'a>) -> async_graphql::Result<&'a T> {
    ctx.data::<T>().map_err(|_| {
        DomainError::internal(anyhow::anyhow!(
            "DataLoader {} not attached to the request",
            std::any::type_name::<T>()
        ))
        .into()
    })
}
