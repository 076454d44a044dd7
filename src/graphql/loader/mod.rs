//! DataLoaders: fields that would otherwise run one query per object of a list batch their loads
//! here. [`attach`] gives every request its own loader (so its caches never outlive the
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

pub use key_usage::{KeyAt, KeyWindow};
pub use usage::UsageKey;

/// Reads the database for every loaded field. Each key type is a `Loader` of its own (in the
/// files of this folder), which one `DataLoader` batches and caches apart from the others: a
/// [`UsageKey`], a plan code (`String`), a [`KeyAt`], a [`KeyWindow`].
pub struct DbLoader {
    db: DatabaseConnection,
}

/// The request's loader.
pub type Loaders = DataLoader<DbLoader, HashMapCache>;

/// Adds the loader, fresh, to one request.
pub fn attach(request: Request, db: &DatabaseConnection) -> Request {
    request.data(DataLoader::with_cache(
        DbLoader { db: db.clone() },
        tokio::spawn,
        HashMapCache::default(),
    ))
}

/// The loader of the current request.
pub fn get<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Loaders> {
    ctx.data::<Loaders>().map_err(|_| {
        DomainError::internal(anyhow::anyhow!("DataLoader not attached to the request")).into()
    })
}
