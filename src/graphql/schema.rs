//! Builds the schema with its limits and exports the SDL that `schema.graphql` must equal.

use async_graphql::{EmptySubscription, Schema};

use crate::graphql::mutation::MutationRoot;
use crate::graphql::query::QueryRoot;
use crate::state::AppState;

pub type TallySchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Deep enough for GraphiQL's introspection query, shallow enough to stop abuse.
pub const MAX_DEPTH: usize = 15;
/// Each field costs 1: a query of 1000 aliases is refused before any resolver runs.
pub const MAX_COMPLEXITY: usize = 1000;
pub const MAX_DIRECTIVES: usize = 20;

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .limit_recursive_depth(32)
    .limit_directives(MAX_DIRECTIVES)
}

pub fn build_schema(state: AppState) -> TallySchema {
    builder().data(state).finish()
}

/// The SDL of the schema, as written to `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}
