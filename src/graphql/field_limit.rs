//! Caps how many fields one operation may select, counting every field: aliases, `__typename`
//! and introspection included, fragments counted where they are spread. async-graphql's own
//! complexity skips `__typename`, so thousands of `__typename` aliases went through it.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, ServerResult, Variables};

use crate::domain::error::DomainError;

/// Refuses an operation selecting more than `max` fields, after parsing and before validation
/// (so before any resolver runs).
pub struct FieldLimit {
    pub max: usize,
}

impl ExtensionFactory for FieldLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FieldLimit { max: self.max })
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for FieldLimit {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        for (_, operation) in document.operations.iter() {
            let mut counter = Counter {
                fragments: &document.fragments,
                spread: Vec::new(),
                fields: 0,
                max: self.max,
            };
            if counter
                .selection_set(&operation.node.selection_set.node)
                .is_err()
            {
                let message = format!(
                    "Query is too complex: it selects more than {} fields (every field counts, \
                     aliases and __typename included)",
                    self.max
                );
                let refusal = async_graphql::Error::from(DomainError::bad_input(message));
                return Err(refusal.into_server_error(operation.pos));
            }
        }
        Ok(document)
    }
}

/// Counting stops as soon as the limit is passed, so a query built to explode through nested
/// fragment spreads costs no more than the limit to count.
struct Counter<'a> {
    fragments: &'a std::collections::HashMap<Name, Positioned<FragmentDefinition>>,
    /// Fragments being expanded: a cycle (refused later by validation) is not followed.
    spread: Vec<&'a Name>,
    fields: usize,
    max: usize,
}

struct TooMany;

impl<'a> Counter<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> Result<(), TooMany> {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    self.fields += 1;
                    if self.fields > self.max {
                        return Err(TooMany);
                    }
                    self.selection_set(&field.node.selection_set.node)?;
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if self.spread.contains(&name) {
                        continue;
                    }
                    if let Some(fragment) = self.fragments.get(name) {
                        self.spread.push(name);
                        self.selection_set(&fragment.node.selection_set.node)?;
                        self.spread.pop();
                    }
                }
            }
        }
        Ok(())
    }
}
