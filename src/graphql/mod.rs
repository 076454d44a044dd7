//! The GraphQL edge: the schema with its limits, per-request context, guards, and one file per
//! area under `query/`, `mutation/` and `object/`. Resolvers stay thin and call into `domain/`.

pub mod context;
pub mod document_limits;
pub mod error;
pub mod guard;
pub mod loader;
pub mod mutation;
pub mod object;
pub mod query;
pub mod schema;
pub mod text_input;

pub use schema::{build_schema, sdl, TallySchema};
