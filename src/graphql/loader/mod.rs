//! DataLoaders: fields that would otherwise run one query per object of a list batch their loads
//! here. Every loader is registered by [`register`], which the schema builder and the tests share.

mod plan;
mod usage;

use async_graphql::dataloader::DataLoader;
use async_graphql::{ObjectType, SchemaBuilder, SubscriptionType};

use crate::state::AppState;

pub use plan::PlanLoader;
pub use usage::{UsageKey, UsageLoader};

/// Adds every loader, built over `state`, to a schema.
pub fn register<Q, M, S>(
    builder: SchemaBuilder<Q, M, S>,
    state: &AppState,
) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    builder
        .data(DataLoader::new(
            UsageLoader::new(state.db.clone()),
            tokio::spawn,
        ))
        .data(DataLoader::new(
            PlanLoader::new(state.db.clone()),
            tokio::spawn,
        ))
}
