//! Codes for the errors GraphQL itself raises before (or while) it reads a request's arguments,
//! so that every error a client sees carries `extensions.code`, over HTTP and WebSocket alike:
//!
//! - [`PARSE_FAILED`]: the text is not a GraphQL document (a syntax error, or a request
//!   without `query`);
//! - [`VALIDATION_FAILED`]: the document does not fit the schema or the bounds (an unknown
//!   field, argument or type, a missing argument, a literal of the wrong type such as an unknown
//!   enum value, a query nested too deep or too complex, an unknown operation name);
//! - [`BAD_USER_INPUT`]: the document is fine but a variable's value is not (a wrong type, an
//!   unknown enum value, a missing required variable).
//!
//! The resolvers set their own codes ([`super::error::Code`]); [`fill_in`] only gives a code to
//! errors that arrive without one, and never changes a code already set. It runs on each
//! response in the transports rather than as a schema extension: an extension of
//! async-graphql puts every field of every response on its slower, boxed resolve path, and
//! the transports have all it needs (the text, and whether the error came before execution).

use async_graphql::ServerError;
use async_graphql::Value;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::parser::{Pos, Positioned};

/// The query text is not a GraphQL document.
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// The document does not fit the schema or the request bounds.
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
/// A variable's value does not fit its type.
pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";

/// Whether `error` refused the request as a whole, before any resolver ran (over
/// `graphql-transport-ws` such errors are sent as an `error` message).
pub fn is_request_error(error: &ServerError) -> bool {
    matches!(
        code_of(error),
        Some(PARSE_FAILED | VALIDATION_FAILED | BAD_USER_INPUT)
    ) && error.path.is_empty()
}

/// Gives a code to each error of the response to `query` that has none.
///
/// An error without a path was raised before execution: a parse error when the text does not
/// parse, a variable's value when the validator's "invalid value" points at an argument fed by
/// a variable, the document otherwise. The text is parsed again only when such an error is
/// there, so a clean response costs a scan of its (empty) error list.
pub fn fill_in(errors: &mut [ServerError], query: &str) {
    let mut document: Option<Option<ExecutableDocument>> = None;
    for error in errors.iter_mut().filter(|error| code_of(error).is_none()) {
        let code = if error.message.starts_with("Failed to parse \"")
            || (error.message.starts_with("Variable ")
                && error.message.ends_with(" is not defined."))
        {
            BAD_USER_INPUT
        } else if !error.path.is_empty() {
            continue;
        } else if error.message.starts_with("The recursion depth")
            || error.message.starts_with("The number of directives")
        {
            // Bounds the schema checks while it parses.
            VALIDATION_FAILED
        } else {
            match document.get_or_insert_with(|| async_graphql::parser::parse_query(query).ok()) {
                None => PARSE_FAILED,
                Some(document)
                    if error.message.starts_with("Invalid value for argument")
                        && error
                            .locations
                            .iter()
                            .any(|pos| argument_uses_variable(document, *pos)) =>
                {
                    BAD_USER_INPUT
                }
                Some(_) => VALIDATION_FAILED,
            }
        };
        set_code(error, code);
    }
}

fn code_of(error: &ServerError) -> Option<&str> {
    match error.extensions.as_ref()?.get("code")? {
        Value::String(code) => Some(code.as_str()),
        _ => None,
    }
}

fn set_code(error: &mut ServerError, code: &'static str) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
}

/// Whether the argument named at `pos` takes its value, or part of it, from a variable.
fn argument_uses_variable(document: &ExecutableDocument, pos: Pos) -> bool {
    document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set)
        .chain(
            document
                .fragments
                .values()
                .map(|fragment| &fragment.node.selection_set),
        )
        .any(|set| set_uses_variable_at(set, pos))
}

fn set_uses_variable_at(set: &Positioned<SelectionSet>, pos: Pos) -> bool {
    set.node
        .items
        .iter()
        .any(|selection| match &selection.node {
            Selection::Field(field) => {
                // A value that does not turn into a constant holds a variable.
                field
                    .node
                    .arguments
                    .iter()
                    .chain(
                        field
                            .node
                            .directives
                            .iter()
                            .flat_map(|directive| directive.node.arguments.iter()),
                    )
                    .any(|(name, value)| {
                        name.pos == pos && value.node.clone().into_const().is_none()
                    })
                    || set_uses_variable_at(&field.node.selection_set, pos)
            }
            Selection::InlineFragment(fragment) => {
                set_uses_variable_at(&fragment.node.selection_set, pos)
            }
            Selection::FragmentSpread(_) => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{ErrorExtensionValues, PathSegment};

    fn error(message: &str, line: usize, column: usize) -> ServerError {
        ServerError::new(message, Some(Pos { line, column }))
    }

    #[test]
    fn a_code_already_set_stays_and_each_error_without_one_gets_one() {
        let mut coded = error("nope", 1, 1);
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", "NOT_FOUND");
        coded.extensions = Some(extensions);
        let mut resolver = error("something else", 1, 3);
        resolver.path = vec![PathSegment::Field("ticket".into())];
        let query = "query($s: [TicketStatusValue!]) { tickets(filter: {status: $s}) { totalCount } a: tickets(first: FIVE) { totalCount } }";
        let mut errors = vec![
            coded,
            resolver,
            // The argument `filter` (line 1, column 43) takes a variable; `first` does not.
            error("Invalid value for argument \"filter.status\"", 1, 43),
            error("Invalid value for argument \"first\"", 1, 91),
            error("Unknown field \"nope\"", 1, 1),
            error("Failed to parse \"UUID\": invalid", 1, 1),
        ];
        fill_in(&mut errors, query);
        let codes: Vec<_> = errors.iter().map(code_of).collect();
        assert_eq!(
            codes,
            [
                Some("NOT_FOUND"),
                None,
                Some(BAD_USER_INPUT),
                Some(VALIDATION_FAILED),
                Some(VALIDATION_FAILED),
                Some(BAD_USER_INPUT),
            ]
        );

        let mut errors = vec![error("expected selection", 1, 1)];
        fill_in(&mut errors, "{ me {");
        assert_eq!(code_of(&errors[0]), Some(PARSE_FAILED));
        assert!(is_request_error(&errors[0]));
    }
}
