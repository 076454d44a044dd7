//! Refuses text that the databases cannot all store: a NUL character (U+0000) in any argument,
//! written in the query or passed as a variable, is `BAD_USER_INPUT` before any resolver runs.
//! PostgreSQL cannot keep NUL in text at all, SQLite can: checked here, once, both behave alike.

use std::convert::Infallible;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{
    Directive, ExecutableDocument, Selection, SelectionSet, VariableDefinition,
};
use async_graphql::{
    Name, Pos, Positioned, ServerError, ServerResult, Value as ConstValue, Variables,
};

use crate::domain::error::DomainError;

/// Registered on the schema; see the module documentation.
pub struct RefuseNulInText;

impl ExtensionFactory for RefuseNulInText {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RefuseNulInText)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for RefuseNulInText {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        match first_nul(&document, variables) {
            Some((argument, pos)) => Err(refusal(&argument, pos)),
            None => Ok(document),
        }
    }
}

fn refusal(argument: &str, pos: Pos) -> ServerError {
    let problem = DomainError::bad_field(argument, "must not contain a NUL character (U+0000)");
    async_graphql::Error::from(problem).into_server_error(pos)
}

/// The first argument (as `name`, `input.name` or `names[2]`) whose text holds a NUL.
fn first_nul(document: &ExecutableDocument, variables: &Variables) -> Option<(String, Pos)> {
    let finder = Finder { variables };
    document
        .operations
        .iter()
        .find_map(|(_, operation)| {
            let operation = &operation.node;
            operation
                .variable_definitions
                .iter()
                .find_map(|definition| finder.variable_default(definition))
                .or_else(|| finder.directives(&operation.directives))
                .or_else(|| finder.selection_set(&operation.selection_set.node))
        })
        .or_else(|| {
            document.fragments.values().find_map(|fragment| {
                finder
                    .directives(&fragment.node.directives)
                    .or_else(|| finder.selection_set(&fragment.node.selection_set.node))
            })
        })
}

struct Finder<'a> {
    variables: &'a Variables,
}

impl Finder<'_> {
    fn selection_set(&self, set: &SelectionSet) -> Option<(String, Pos)> {
        set.items.iter().find_map(|item| match &item.node {
            Selection::Field(field) => self
                .arguments(&field.node.arguments, |value| {
                    value
                        .into_const_with(|name| self.variable(name))
                        .unwrap_or_default()
                })
                .or_else(|| self.directives(&field.node.directives))
                .or_else(|| self.selection_set(&field.node.selection_set.node)),
            Selection::FragmentSpread(spread) => self.directives(&spread.node.directives),
            Selection::InlineFragment(inline) => self
                .directives(&inline.node.directives)
                .or_else(|| self.selection_set(&inline.node.selection_set.node)),
        })
    }

    fn directives(&self, directives: &[Positioned<Directive>]) -> Option<(String, Pos)> {
        directives.iter().find_map(|directive| {
            self.arguments(&directive.node.arguments, |value| {
                value
                    .into_const_with(|name| self.variable(name))
                    .unwrap_or_default()
            })
        })
    }

    /// `fill` gives an argument's value with its variables filled in.
    fn arguments<V: Clone>(
        &self,
        arguments: &[(Positioned<Name>, Positioned<V>)],
        fill: impl Fn(V) -> ConstValue,
    ) -> Option<(String, Pos)> {
        arguments.iter().find_map(|(name, value)| {
            const_value(&fill(value.node.clone()), name.node.to_string())
                .map(|path| (path, value.pos))
        })
    }

    /// The value of a variable as sent; an unknown one reads as null (validation refuses it).
    fn variable(&self, name: Name) -> Result<ConstValue, Infallible> {
        Ok(self.variables.get(&name).cloned().unwrap_or_default())
    }

    fn variable_default(
        &self,
        definition: &Positioned<VariableDefinition>,
    ) -> Option<(String, Pos)> {
        let default = definition.node.default_value.as_ref()?;
        const_value(&default.node, format!("${}", definition.node.name.node))
            .map(|path| (path, default.pos))
    }
}

fn const_value(value: &ConstValue, path: String) -> Option<String> {
    match value {
        ConstValue::String(text) => text.contains('\0').then_some(path),
        ConstValue::List(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| const_value(item, format!("{path}[{i}]"))),
        ConstValue::Object(fields) => fields
            .iter()
            .find_map(|(key, item)| const_value(item, format!("{path}.{key}"))),
        ConstValue::Null
        | ConstValue::Number(_)
        | ConstValue::Boolean(_)
        | ConstValue::Binary(_)
        | ConstValue::Enum(_) => None,
    }
}
