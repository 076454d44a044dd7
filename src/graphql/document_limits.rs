//! Measures a GraphQL document before anything else walks it, and refuses it when it is too big:
//! fields per operation (every field counts: aliases, `__typename` and introspection included,
//! a fragment's fields wherever it is spread), fragment spreads, distinct fragments, nesting, and
//! fragments that spread themselves.
//!
//! async-graphql's own checks (recursion depth, directives) and validation expand every fragment
//! spread where it stands, so fragments that each spread the next one twice cost 2^n steps; they
//! run after `prepare_request`, which is where this check runs. Here each fragment is measured
//! once and its measure reused at every spread, so measuring costs one pass over the text
//! whatever the fragments multiply to.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Pos, Positioned, Request, ServerError, ServerResult};

use crate::domain::error::DomainError;

/// The limits a document must stay within; see [`crate::graphql::schema`] for the values.
#[derive(Debug, Clone, Copy)]
pub struct DocumentLimits {
    /// Fields one operation (or one fragment) selects, spreads expanded.
    pub max_fields: usize,
    /// Fragment spreads in the whole document, each counted once for every place the selection
    /// around it ends up (a spread inside a fragment spread twice counts twice).
    pub max_spreads: usize,
    /// Fragment definitions in the document.
    pub max_fragments: usize,
    /// Levels of nesting: a field with a selection, an inline fragment and a spread each open one.
    pub max_nesting: usize,
}

impl ExtensionFactory for DocumentLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentLimits {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // Parsed here once; async-graphql executes this parsed document rather than parsing again.
        self.check(request.parsed_query()?)?;
        next.run(ctx, request).await
    }
}

impl DocumentLimits {
    /// Refuses a document over any limit, with a message saying which.
    pub fn check(&self, document: &ExecutableDocument) -> ServerResult<()> {
        if document.fragments.len() > self.max_fragments {
            return Err(self.refusal(Refusal::TooManyFragments, None));
        }
        let mut measurer = Measurer {
            limits: self,
            fragments: &document.fragments,
            measured: HashMap::new(),
            in_progress: Vec::new(),
        };
        let mut spreads: usize = 0;
        for (_, operation) in document.operations.iter() {
            let measure = measurer
                .selection_set(&operation.node.selection_set.node, 0)
                .map_err(|(refusal, pos)| self.refusal(refusal, Some(pos)))?;
            if measure.fields > self.max_fields {
                return Err(self.refusal(Refusal::TooManyFields, Some(operation.pos)));
            }
            spreads = spreads.saturating_add(measure.spreads);
        }
        // Fragments no operation uses are refused by validation, which walks them too.
        for (name, fragment) in &document.fragments {
            let measure = measurer
                .fragment(name, fragment, 0, fragment.pos)
                .map_err(|(refusal, pos)| self.refusal(refusal, Some(pos)))?;
            if measure.fields > self.max_fields {
                return Err(self.refusal(Refusal::TooManyFields, Some(fragment.pos)));
            }
            spreads = spreads.saturating_add(measure.spreads);
        }
        if spreads > self.max_spreads {
            return Err(self.refusal(Refusal::TooManySpreads, None));
        }
        Ok(())
    }

    fn refusal(&self, refusal: Refusal, pos: Option<Pos>) -> ServerError {
        let message = match refusal {
            Refusal::TooManyFields => format!(
                "Query is too complex: it selects more than {} fields (every field counts, \
                 aliases and __typename included, and a fragment's fields wherever it is spread)",
                self.max_fields
            ),
            Refusal::TooManySpreads => format!(
                "Query is too complex: more than {} fragment spreads (a spread counts again for \
                 every place its fragment is spread)",
                self.max_spreads
            ),
            Refusal::TooManyFragments => format!(
                "Query is too complex: it defines more than {} fragments",
                self.max_fragments
            ),
            Refusal::TooDeep => format!(
                "Query is nested too deep: more than {} levels of fields and fragments",
                self.max_nesting
            ),
            Refusal::Cycle(name) => format!("Cannot spread fragment \"{name}\" within itself"),
        };
        let error = async_graphql::Error::from(DomainError::bad_input(message));
        match pos {
            Some(pos) => error.into_server_error(pos),
            // About the whole document: no one place to point at.
            None => {
                let mut refusal = ServerError::new(error.message, None);
                refusal.extensions = error.extensions;
                refusal
            }
        }
    }
}

enum Refusal {
    TooManyFields,
    TooManySpreads,
    TooManyFragments,
    TooDeep,
    Cycle(Name),
}

/// What one selection set expands to. Sums saturate: a count past the limits is only ever
/// compared with them.
#[derive(Debug, Clone, Copy, Default)]
struct Measure {
    fields: usize,
    spreads: usize,
    /// Levels of nesting below the selection set itself.
    nesting: usize,
}

impl Measure {
    /// Adds what a nested selection set (one level down) expands to.
    fn add_nested(&mut self, inner: Measure) {
        self.fields = self.fields.saturating_add(inner.fields);
        self.spreads = self.spreads.saturating_add(inner.spreads);
        self.nesting = self.nesting.max(inner.nesting.saturating_add(1));
    }
}

struct Measurer<'a> {
    limits: &'a DocumentLimits,
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    /// Each fragment's measure, taken once.
    measured: HashMap<&'a Name, Measure>,
    /// The fragments being measured, outermost first: meeting one of them again is a cycle.
    in_progress: Vec<&'a Name>,
}

impl<'a> Measurer<'a> {
    /// Measures a selection set standing `depth` levels below the top of its definition. The
    /// walk never goes deeper than the nesting limit, so it needs little stack.
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        depth: usize,
    ) -> Result<Measure, (Refusal, Pos)> {
        let mut measure = Measure::default();
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    measure.fields = measure.fields.saturating_add(1);
                    let inner = &field.node.selection_set;
                    if !inner.node.items.is_empty() {
                        self.within_nesting(depth + 1, inner.pos)?;
                        let nested = self.selection_set(&inner.node, depth + 1)?;
                        measure.add_nested(nested);
                    }
                }
                Selection::InlineFragment(inline) => {
                    let inner = &inline.node.selection_set;
                    self.within_nesting(depth + 1, inner.pos)?;
                    let nested = self.selection_set(&inner.node, depth + 1)?;
                    measure.add_nested(nested);
                }
                Selection::FragmentSpread(spread) => {
                    measure.spreads = measure.spreads.saturating_add(1);
                    self.within_nesting(depth + 1, spread.pos)?;
                    let name = &spread.node.fragment_name.node;
                    // An unknown fragment adds nothing; validation refuses it.
                    if let Some((name, fragment)) = self.fragments.get_key_value(name) {
                        let nested = self.fragment(name, fragment, depth + 1, spread.pos)?;
                        measure.add_nested(nested);
                    }
                }
            }
        }
        Ok(measure)
    }

    /// The measure of a fragment's selection set, taken on its first spread (its selection set
    /// then `depth` levels below the top of the definition being measured, the spread written
    /// at `spread`) and reused afterwards.
    fn fragment(
        &mut self,
        name: &'a Name,
        fragment: &'a Positioned<FragmentDefinition>,
        depth: usize,
        spread: Pos,
    ) -> Result<Measure, (Refusal, Pos)> {
        if let Some(measure) = self.measured.get(name) {
            let measure = *measure;
            self.within_nesting(depth.saturating_add(measure.nesting), spread)?;
            return Ok(measure);
        }
        if self.in_progress.contains(&name) {
            return Err((Refusal::Cycle(name.clone()), spread));
        }
        self.in_progress.push(name);
        let measured = self.selection_set(&fragment.node.selection_set.node, depth);
        self.in_progress.pop();
        let measure = measured?;
        self.measured.insert(name, measure);
        Ok(measure)
    }

    fn within_nesting(&self, depth: usize, pos: Pos) -> Result<(), (Refusal, Pos)> {
        if depth > self.limits.max_nesting {
            return Err((Refusal::TooDeep, pos));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DocumentLimits = DocumentLimits {
        max_fields: 10,
        max_spreads: 5,
        max_fragments: 3,
        max_nesting: 4,
    };

    fn check(query: &str) -> Result<(), String> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        LIMITS.check(&document).map_err(|err| err.message)
    }

    #[test]
    fn fields_count_wherever_their_fragment_is_spread() {
        assert_eq!(
            check("{ a b ...F ...F } fragment F on Q { c d e f }"),
            Ok(())
        );
        let refused = check("{ a b c ...F ...F } fragment F on Q { c d e f }").unwrap_err();
        assert!(refused.contains("more than 10 fields"), "{refused}");
    }

    #[test]
    fn spreads_count_for_every_place_their_fragment_ends_up() {
        // Two spreads in the operation, and F's one spread of G counted once in each and once
        // in F's own definition: five.
        assert_eq!(
            check("{ ...F ...F } fragment F on Q { ...G } fragment G on Q { a }"),
            Ok(())
        );
        let refused =
            check("{ ...F ...F ...F } fragment F on Q { ...G } fragment G on Q { a }").unwrap_err();
        assert!(refused.contains("fragment spreads"), "{refused}");
    }

    #[test]
    fn nesting_counts_fields_inline_fragments_and_spreads() {
        assert_eq!(check("{ a { b { ... on B { c { d } } } } }"), Ok(()));
        let refused = check("{ a { b { ... on B { c { d { e } } } } } }").unwrap_err();
        assert!(refused.contains("nested too deep"), "{refused}");
        // Through a fragment measured first at a shallow place, then spread deeper.
        let refused =
            check("{ ...F x { y { z { ...F } } } } fragment F on Q { a { b } }").unwrap_err();
        assert!(refused.contains("nested too deep"), "{refused}");
    }

    #[test]
    fn a_fragment_spreading_itself_is_named() {
        let refused =
            check("{ ...F } fragment F on Q { a ...G } fragment G on Q { ...F }").unwrap_err();
        assert_eq!(refused, "Cannot spread fragment \"F\" within itself");
    }

    #[test]
    fn too_many_fragments_are_refused_before_anything_is_measured() {
        let refused = check(
            "{ a } fragment A on Q { a } fragment B on Q { a } fragment C on Q { a } \
             fragment D on Q { a }",
        )
        .unwrap_err();
        assert!(refused.contains("more than 3 fragments"), "{refused}");
    }
}
