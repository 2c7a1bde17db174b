//! Input Postgres cannot store, refused before anything runs.
//!
//! Postgres refuses the NUL character (U+0000) in text and JSON alike (see
//! [`eventlog::storable`]). Almost every string argument of the API reaches either a query
//! (a search, a tag filter, an email at sign-in) or the log (a reply, a note, a template), so
//! a request holding a NUL in any argument, literal or variable, is refused as a whole with
//! `VALIDATION`, naming the argument, before a resolver runs: it can neither fail a query with
//! an internal error nor join (and fail) a batch of other clients' appends. The log refuses
//! such text too, as the last line ([`eventlog::Error::Unstorable`]).
//!
//! The transports call [`refusal`] on each request, as they call
//! [`super::request_errors::fill_in`] on each response, rather than a schema extension (see
//! there why). Variables are walked on every request (a few strings); the query text is
//! parsed and its literals walked only when it holds a raw NUL or a `\u` escape.

use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, OperationDefinition, Selection,
    SelectionSet,
};
use async_graphql::parser::{Pos, Positioned};
use async_graphql::{Name, Request, ServerError, Value as ConstValue};
use eventlog::storable::{find_nul, has_nul};

use super::error::Code;

/// The error refusing `request`, when one of its arguments holds a NUL character. Parses the
/// query text (kept on the request) only when a literal could hold one.
pub fn refusal(request: &mut Request) -> Option<ServerError> {
    for (name, value) in request.variables.iter() {
        if let Some(path) = nul_in(value) {
            return Some(refused(&format!("the variable ${name}{}", at(&path)), None));
        }
    }
    if !request.query.contains('\0') && !request.query.contains("\\u") {
        return None;
    }
    // A text that does not parse is left to the schema, which answers the parse error.
    let document = request.parsed_query().ok()?;
    in_document(document).map(|(what, pos)| refused(&what, Some(pos)))
}

fn refused(what: &str, pos: Option<Pos>) -> ServerError {
    let mut error = ServerError::new(
        format!(
            "{what} holds a NUL character (U+0000), which cannot be stored; remove it from the input"
        ),
        pos,
    );
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", Code::Validation.as_str());
    error
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at `{path}`")
    }
}

/// Where the first NUL of `value` is (a dotted path, empty for the value itself).
fn nul_in(value: &ConstValue) -> Option<String> {
    match value {
        ConstValue::String(text) => has_nul(text).then(String::new),
        ConstValue::List(items) => items.iter().enumerate().find_map(|(index, item)| {
            nul_in(item).map(|inner| format!("[{index}]{}", dotted(&inner)))
        }),
        ConstValue::Object(fields) => fields
            .iter()
            .find_map(|(key, item)| nul_in(item).map(|inner| format!("{key}{}", dotted(&inner)))),
        ConstValue::Null
        | ConstValue::Number(_)
        | ConstValue::Boolean(_)
        | ConstValue::Binary(_)
        | ConstValue::Enum(_) => None,
    }
}

fn dotted(inner: &str) -> String {
    if inner.is_empty() || inner.starts_with('[') {
        inner.to_owned()
    } else {
        format!(".{inner}")
    }
}

/// The first literal of the document holding a NUL: what it is and where.
fn in_document(document: &ExecutableDocument) -> Option<(String, Pos)> {
    let operations: Vec<&Positioned<OperationDefinition>> = match &document.operations {
        DocumentOperations::Single(operation) => vec![operation],
        DocumentOperations::Multiple(operations) => operations.values().collect(),
    };
    for operation in operations {
        for variable in &operation.node.variable_definitions {
            if let Some(default) = &variable.node.default_value
                && let Some(path) = nul_in(&default.node)
            {
                let name = &variable.node.name.node;
                return Some((format!("the default of ${name}{}", at(&path)), default.pos));
            }
        }
        let found = in_directives(&operation.node.directives)
            .or_else(|| in_selections(&operation.node.selection_set));
        if found.is_some() {
            return found;
        }
    }
    document.fragments.values().find_map(|fragment| {
        in_directives(&fragment.node.directives)
            .or_else(|| in_selections(&fragment.node.selection_set))
    })
}

fn in_selections(set: &Positioned<SelectionSet>) -> Option<(String, Pos)> {
    set.node
        .items
        .iter()
        .find_map(|selection| match &selection.node {
            Selection::Field(field) => in_field(field),
            Selection::FragmentSpread(spread) => in_directives(&spread.node.directives),
            Selection::InlineFragment(inline) => in_directives(&inline.node.directives)
                .or_else(|| in_selections(&inline.node.selection_set)),
        })
}

fn in_field(field: &Positioned<Field>) -> Option<(String, Pos)> {
    let name = &field.node.name.node;
    in_arguments(&field.node.arguments, name)
        .or_else(|| in_directives(&field.node.directives))
        .or_else(|| in_selections(&field.node.selection_set))
}

fn in_directives(directives: &[Positioned<Directive>]) -> Option<(String, Pos)> {
    directives.iter().find_map(|directive| {
        let name = format!("@{}", directive.node.name.node);
        in_arguments(&directive.node.arguments, &name)
    })
}

/// The first argument whose literal holds a NUL. Generic because the parser's value type
/// (with variables) is not exported; its JSON form names variables as `$name` strings, which
/// hold no NUL (their values were checked with the variables).
fn in_arguments<V: serde::Serialize>(
    arguments: &[(Positioned<Name>, Positioned<V>)],
    of: &str,
) -> Option<(String, Pos)> {
    arguments.iter().find_map(|(name, value)| {
        let literal = serde_json::to_value(&value.node).ok()?;
        find_nul(&literal).map(|path| {
            (
                format!("the argument `{}` of `{of}`{}", name.node, at(&path)),
                value.pos,
            )
        })
    })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use async_graphql::Variables;
    use serde_json::json;

    use super::*;

    fn message_of(mut request: Request) -> Option<String> {
        refusal(&mut request).map(|error| error.message)
    }

    #[test]
    fn a_nul_in_a_variable_is_named_with_its_path() {
        let request = Request::new(
            "mutation($input: ReplyInput!) { replyToTicket(input: $input) { __typename } }",
        )
        .variables(Variables::from_json(
            json!({"input": {"ticketId": "x", "text": "a\u{0}b"}}),
        ));
        let message = message_of(request).unwrap();
        assert!(
            message.starts_with("the variable $input at `text` holds a NUL"),
            "{message}"
        );
        let tags = Request::new("query($t: [String!]) { tickets(tags: $t) { __typename } }")
            .variables(Variables::from_json(json!({"t": ["ok", "\u{0}"]})));
        assert!(message_of(tags).unwrap().contains("$t at `[1]`"));
    }

    #[test]
    fn a_nul_in_a_literal_is_named_with_its_argument_and_field() {
        let request = Request::new(
            r#"{ a: tickets(search: "fine") { __typename } b: tickets(search: "bad\u0000") { __typename } }"#,
        );
        let mut request = request;
        let error = refusal(&mut request).unwrap();
        assert!(
            error
                .message
                .starts_with("the argument `search` of `tickets` holds a NUL"),
            "{}",
            error.message
        );
        assert_eq!(
            error.extensions.unwrap().get("code"),
            Some(&ConstValue::from("VALIDATION"))
        );
        let nested = Request::new(
            r#"fragment F on Query { customers(search: "x\u0000") { __typename } } { ...F }"#,
        );
        assert!(
            message_of(nested)
                .unwrap()
                .contains("`search` of `customers`")
        );
    }

    #[test]
    fn text_without_a_nul_passes() {
        for query in [
            r#"{ tickets(search: "caf\u00e9 \\u0000") { __typename } }"#,
            "{ me { id } }",
            "{ broken",
        ] {
            assert_eq!(message_of(Request::new(query)), None, "{query}");
        }
        let request = Request::new("query($s: String) { tickets(search: $s) { __typename } }")
            .variables(Variables::from_json(
                json!({"s": "no nul, only \\u0000 typed"}),
            ));
        assert_eq!(message_of(request), None);
    }
}
