//! Builds the schema with its limits and exports the SDL that `schema.graphql` must equal.

use async_graphql::{EmptySubscription, Schema};

use crate::graphql::document_limits::DocumentLimits;
use crate::graphql::mutation::MutationRoot;
use crate::graphql::query::QueryRoot;
use crate::graphql::text_input::RefuseNulInText;
use crate::state::AppState;

pub type TallySchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Deep enough for GraphiQL's introspection query, shallow enough to stop abuse.
pub const MAX_DEPTH: usize = 15;
/// Fields one operation may select, every field counting 1 (`__typename` and introspection
/// too): a query of 1000 aliases of any field is refused before any resolver runs, while
/// GraphiQL's introspection query (about 200 fields) fits.
pub const MAX_FIELDS: usize = 999;
pub const MAX_DIRECTIVES: usize = 20;
/// Fragment spreads in one document, each counted for every place it ends up: GraphiQL's
/// introspection query has under 20; fragments that double at every level pass it in eight.
pub const MAX_FRAGMENT_SPREADS: usize = 500;
/// Fragment definitions in one document.
pub const MAX_FRAGMENTS: usize = 100;
/// Levels of fields with selections, inline fragments and spreads, one inside the other.
pub const MAX_NESTING: usize = 32;

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .limit_depth(MAX_DEPTH)
    .limit_recursive_depth(MAX_NESTING)
    .limit_directives(MAX_DIRECTIVES)
    .extension(DocumentLimits {
        max_fields: MAX_FIELDS,
        max_spreads: MAX_FRAGMENT_SPREADS,
        max_fragments: MAX_FRAGMENTS,
        max_nesting: MAX_NESTING,
    })
    .extension(RefuseNulInText)
}

pub fn build_schema(state: AppState) -> TallySchema {
    builder().data(state).finish()
}

/// The SDL of the schema, as written to `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}
