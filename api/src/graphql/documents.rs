//! Parsed query documents, kept per query text, and the operation each request runs.
//!
//! A panel or an integration sends the same few operations again and again with new
//! variables; parsing the text is a large share of a small mutation's cost. The first request
//! with a text parses it; later ones take a copy of the parsed document. Only texts that
//! parse are kept, each at most [`DocumentCache::MAX_TEXT_BYTES`], at most
//! [`DocumentCache::CAPACITY`] of them. The cache (`quick_cache`, S3-FIFO) admits a new text
//! on probation and keeps the texts that come back, so many one-off texts can neither pin
//! memory nor push out the operations that are sent all the time.
//!
//! A request's operation is named for `/metrics` by the one root field it selects, when the
//! schema has that field; anything else is [`crate::metrics::OTHER_OPERATION`], so a client
//! cannot add labels.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::Request;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, Selection,
};
use metrics::SharedString;

use super::expansion;
use crate::metrics::OTHER_OPERATION;

/// Query text → parsed document, and the labels of the schema's root fields.
pub(crate) struct DocumentCache {
    documents: quick_cache::sync::Cache<String, Kept>,
    root_fields: HashSet<Arc<str>>,
}

/// A parsed document and its size with its fragments spread.
#[derive(Clone)]
struct Kept {
    document: ExecutableDocument,
    selections: usize,
}

/// What [`DocumentCache::prepare`] found out about a request.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The operation's label in `/metrics`.
    pub(crate) label: SharedString,
    /// Set when the document must not run: the error to answer instead.
    pub(crate) refusal: Option<async_graphql::ServerError>,
}

impl Prepared {
    fn other() -> Prepared {
        Prepared {
            label: SharedString::from(OTHER_OPERATION),
            refusal: None,
        }
    }
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache")
            .field("documents", &self.documents.len())
            .finish_non_exhaustive()
    }
}

impl DocumentCache {
    /// Most documents kept.
    pub(crate) const CAPACITY: usize = 512;
    /// Longest query text kept, in bytes.
    pub(crate) const MAX_TEXT_BYTES: usize = 16 * 1024;

    /// An empty cache for a schema with these root fields (queries and mutations).
    pub(crate) fn new(root_fields: impl IntoIterator<Item = String>) -> Self {
        DocumentCache {
            documents: quick_cache::sync::Cache::new(Self::CAPACITY),
            root_fields: root_fields.into_iter().map(Arc::from).collect(),
        }
    }

    /// Gives `request` its parsed document, the kept one or one parsed now and kept, and
    /// answers the label of the operation it runs. A text that does not parse is left to the
    /// schema, which answers with the parse error. A document larger than `max_selections`
    /// once its fragments are spread, or with a fragment that spreads itself, is not given
    /// to the request: the answer carries the error to send instead
    /// ([`super::expansion`]).
    pub(crate) fn prepare(&self, request: &mut Request, max_selections: usize) -> Prepared {
        let (document, selections) = match self.documents.get(request.query.as_str()) {
            Some(Kept {
                document,
                selections,
            }) => (document, selections),
            None => {
                let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
                    return Prepared::other();
                };
                let selections = match expansion::selections(&document, max_selections) {
                    Ok(selections) => selections,
                    Err(refusal) => {
                        return Prepared {
                            refusal: Some(refusal.into_error()),
                            ..Prepared::other()
                        };
                    }
                };
                if request.query.len() <= Self::MAX_TEXT_BYTES {
                    self.documents.insert(
                        request.query.clone(),
                        Kept {
                            document: document.clone(),
                            selections,
                        },
                    );
                }
                (document, selections)
            }
        };
        if selections > max_selections {
            return Prepared {
                refusal: Some(
                    expansion::Refusal::TooLarge {
                        limit: max_selections,
                    }
                    .into_error(),
                ),
                ..Prepared::other()
            };
        }
        let label = self.label(&document, request.operation_name.as_deref());
        request.set_parsed_query(document);
        Prepared {
            label,
            refusal: None,
        }
    }

    /// The label of a request running `operation` of `document`: its root field when it
    /// selects exactly one the schema has.
    fn label(&self, document: &ExecutableDocument, operation: Option<&str>) -> SharedString {
        let root = operation_of(document, operation).and_then(|operation| {
            match operation.selection_set.node.items.as_slice() {
                [only] => match &only.node {
                    Selection::Field(field) => self.root_fields.get(field.node.name.node.as_str()),
                    _ => None,
                },
                _ => None,
            }
        });
        match root {
            Some(field) => SharedString::from(Arc::clone(field)),
            None => SharedString::from(OTHER_OPERATION),
        }
    }

    /// How many documents are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.documents.len()
    }
}

/// The operation a request runs: the one named, or the only one.
pub(crate) fn operation_of<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), None) => Some(&operation.node),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.get(name).map(|operation| &operation.node)
        }
        (DocumentOperations::Multiple(operations), None) => match operations.len() {
            1 => operations.values().next().map(|operation| &operation.node),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 10_000;

    fn cache() -> DocumentCache {
        DocumentCache::new(["me".to_owned(), "tickets".to_owned()])
    }

    #[test]
    fn keeps_parsed_texts_and_leaves_bad_ones_to_the_schema() {
        let cache = cache();
        let mut first = Request::new("query { me { id } }");
        cache.prepare(&mut first, LIMIT);
        assert_eq!(cache.len(), 1);
        let mut again = Request::new("query { me { id } }");
        cache.prepare(&mut again, LIMIT);
        assert_eq!(cache.len(), 1, "the same text is kept once");
        assert!(again.parsed_query().is_ok());

        let mut broken = Request::new("query { me { id }");
        cache.prepare(&mut broken, LIMIT);
        assert_eq!(cache.len(), 1, "a text that does not parse is not kept");
        assert!(broken.parsed_query().is_err(), "its error still comes out");

        let long = format!(
            "query {{ me {{ id }} }} #{}",
            "x".repeat(DocumentCache::MAX_TEXT_BYTES)
        );
        let mut long = Request::new(long);
        cache.prepare(&mut long, LIMIT);
        assert_eq!(cache.len(), 1, "a text over the size bound is not kept");
        assert!(long.parsed_query().is_ok(), "but it is parsed");
    }

    #[test]
    fn stays_bounded_and_keeps_the_texts_that_come_back() {
        let cache = cache();
        let hot = "query Hot { me { id } }";
        for _ in 0..3 {
            cache.prepare(&mut Request::new(hot), LIMIT);
        }
        for n in 0..(DocumentCache::CAPACITY * 10) {
            cache.prepare(
                &mut Request::new(format!("query Q{n} {{ me {{ id }} }}")),
                LIMIT,
            );
            if n % 100 == 0 {
                cache.prepare(&mut Request::new(hot), LIMIT);
            }
        }
        assert!(cache.len() <= DocumentCache::CAPACITY, "{}", cache.len());
        assert!(
            cache.documents.get(hot).is_some(),
            "one-off texts pushed out the one that keeps coming"
        );
    }

    #[test]
    fn names_an_operation_by_its_one_known_root_field() {
        let cache = cache();
        let label = |text: &str, name: Option<&str>| {
            let mut request = Request::new(text);
            if let Some(name) = name {
                request = request.operation_name(name);
            }
            cache.prepare(&mut request, LIMIT).label.to_string()
        };
        assert_eq!(label("{ me { id } }", None), "me");
        assert_eq!(
            label("query AnyName { tickets { edges { cursor } } }", None),
            "tickets"
        );
        assert_eq!(
            label(
                "query A { me { id } } query B { tickets { pageInfo { hasNextPage } } }",
                Some("B")
            ),
            "tickets"
        );
        assert_eq!(
            label("query A { me { id } } query B { me { id } }", None),
            "other"
        );
        assert_eq!(
            label("{ me { id } tickets { edges { cursor } } }", None),
            "other"
        );
        assert_eq!(label("{ madeUp }", None), "other");
        assert_eq!(label("{ __typename }", None), "other");
        assert_eq!(label("{ me { id }", None), "other");
    }
}
