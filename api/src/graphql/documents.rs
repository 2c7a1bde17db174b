//! Parsed query documents, kept per query text.
//!
//! A panel or an integration sends the same few operations again and again with new
//! variables; parsing the text is a large share of a small mutation's cost. The first request
//! with a text parses it; later ones take a copy of the parsed document. Validation (depth,
//! complexity, the caller's fields) still runs on every request, so a cached document is
//! checked exactly as a fresh one. Only texts that parse are kept, at most
//! [`DocumentCache::CAPACITY`] of them, each at most [`DocumentCache::MAX_TEXT_BYTES`]; when the
//! cache is full it starts over, so many one-off texts cannot pin memory or shut out the
//! operations that come back.

use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::Request;
use async_graphql::parser::types::ExecutableDocument;

/// Query text → parsed document.
#[derive(Debug, Default)]
pub struct DocumentCache {
    documents: Mutex<HashMap<String, ExecutableDocument>>,
}

impl DocumentCache {
    /// Most documents kept.
    pub const CAPACITY: usize = 512;
    /// Longest query text kept, in bytes.
    pub const MAX_TEXT_BYTES: usize = 16 * 1024;

    /// Gives `request` its parsed document: the kept one, or one parsed now and kept. A text
    /// that does not parse is left to the schema, which answers with the parse error.
    pub fn prepare(&self, request: &mut Request) {
        if request.query.len() > Self::MAX_TEXT_BYTES {
            return;
        }
        if let Some(document) = self.lock().get(&request.query).cloned() {
            request.set_parsed_query(document);
            return;
        }
        let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
            return;
        };
        {
            let mut documents = self.lock();
            if documents.len() >= Self::CAPACITY {
                documents.clear();
            }
            documents.insert(request.query.clone(), document.clone());
        }
        request.set_parsed_query(document);
    }

    /// How many documents are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecutableDocument>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.documents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_parsed_texts_and_leaves_bad_ones_to_the_schema() {
        let cache = DocumentCache::default();
        let mut first = Request::new("query { me { id } }");
        cache.prepare(&mut first);
        assert_eq!(cache.len(), 1);
        let mut again = Request::new("query { me { id } }");
        cache.prepare(&mut again);
        assert_eq!(cache.len(), 1, "the same text is kept once");
        let mut parsed = again;
        assert!(parsed.parsed_query().is_ok());

        let mut broken = Request::new("query { me { id }");
        cache.prepare(&mut broken);
        assert_eq!(cache.len(), 1, "a text that does not parse is not kept");
        assert!(broken.parsed_query().is_err(), "its error still comes out");

        let long = format!(
            "query {{ me {{ id }} }} #{}",
            "x".repeat(DocumentCache::MAX_TEXT_BYTES)
        );
        cache.prepare(&mut Request::new(long));
        assert_eq!(cache.len(), 1, "a text over the size bound is not kept");
    }

    #[test]
    fn starts_over_when_full() {
        let cache = DocumentCache::default();
        for n in 0..DocumentCache::CAPACITY {
            cache.prepare(&mut Request::new(format!("query Q{n} {{ me {{ id }} }}")));
        }
        assert_eq!(cache.len(), DocumentCache::CAPACITY);
        cache.prepare(&mut Request::new("query Last { me { id } }"));
        assert_eq!(cache.len(), 1, "a full cache starts over with the new text");
    }
}
