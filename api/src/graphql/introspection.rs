//! The schema's own description in introspection.
//!
//! async-graphql answers `__schema { description }` with a fixed text (the description of the
//! `__Schema` type in the GraphQL specification, not of any schema), and schema tools print it
//! as the schema's description. Requests over HTTP (where schema tools and GraphiQL ask) that
//! select it get [`SCHEMA_DESCRIPTION`] instead, the text `schema.graphql` carries, so the
//! schema printed from introspection stays the committed file. Only the rare request whose text
//! mentions `__schema` is looked at, and only after it ran: an extension of the schema would
//! put every field of every request on async-graphql's slower path.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Request, Response, Value};

use super::documents::operation_of;

/// What the schema is: its description in `schema.graphql` and in introspection.
pub const SCHEMA_DESCRIPTION: &str = "Ledgerdesk's GraphQL API: the tickets, customers, team and \
broadcasts of a Telegram helpdesk,\nand the event log behind them. Queries read the read models; \
mutations send commands and answer the\nlog position they wrote; subscriptions follow the log.";

/// Where a response carries the schema's description: the response keys of `__schema` and of
/// its `description` field.
#[derive(Debug, Default)]
pub(crate) struct DescriptionKeys(Vec<(Name, Name)>);

impl DescriptionKeys {
    /// The keys under which `request`'s operation selects `__schema { description }`.
    pub(crate) fn of(request: &mut Request) -> Self {
        if !request.query.contains("__schema") {
            return DescriptionKeys::default();
        }
        let operation_name = request.operation_name.clone();
        let Ok(document) = request.parsed_query() else {
            return DescriptionKeys::default();
        };
        let Some(operation) = operation_of(document, operation_name.as_deref()) else {
            return DescriptionKeys::default();
        };
        let mut keys = Vec::new();
        for schema in fields(document, &operation.selection_set.node, "__schema", 0) {
            if let Some(selection) = &schema.1 {
                for description in fields(document, selection, "description", 0) {
                    keys.push((schema.0.clone(), description.0));
                }
            }
        }
        DescriptionKeys(keys)
    }

    /// Puts [`SCHEMA_DESCRIPTION`] where `response` carries the schema's description.
    pub(crate) fn describe(&self, response: &mut Response) {
        for (schema, description) in &self.0 {
            if let Value::Object(data) = &mut response.data
                && let Some(Value::Object(fields)) = data.get_mut(schema)
                && let Some(value @ Value::String(_)) = fields.get_mut(description)
            {
                *value = Value::String(SCHEMA_DESCRIPTION.to_owned());
            }
        }
    }
}

/// The response keys (and selections) of the fields named `name` in `selection`, through
/// fragments (at most a few levels deep: the document has passed no validation yet).
fn fields(
    document: &ExecutableDocument,
    selection: &SelectionSet,
    name: &str,
    depth: usize,
) -> Vec<(Name, Option<SelectionSet>)> {
    let mut found = Vec::new();
    if depth > 8 {
        return found;
    }
    for item in &selection.items {
        match &item.node {
            Selection::Field(field) if field.node.name.node.as_str() == name => found.push((
                field.node.response_key().node.clone(),
                Some(field.node.selection_set.node.clone()),
            )),
            Selection::Field(_) => {}
            Selection::InlineFragment(fragment) => found.extend(fields(
                document,
                &fragment.node.selection_set.node,
                name,
                depth + 1,
            )),
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    found.extend(fields(
                        document,
                        &fragment.node.selection_set.node,
                        name,
                        depth + 1,
                    ));
                }
            }
        }
    }
    found
}
