//! Parsed query documents, kept per query text, and which of their operations passed every
//! validation rule.
//!
//! A panel or an integration sends the same few operations again and again with new
//! variables. Parsing the text, and checking the document against the schema's rules, is a
//! large share of a small mutation's cost, and all of it but one rule gives the same answer for
//! the same text whatever the variables are.
//!
//! - **Parsing.** The first request with a text parses it; later ones take a copy of the
//!   parsed document. Only texts that parse are kept, at most [`DocumentCache::CAPACITY`] of
//!   them, each at most [`DocumentCache::MAX_TEXT_BYTES`]; when the cache is full it starts
//!   over, so many one-off texts cannot pin memory or shut out the operations that come back.
//! - **Validation.** A request runs on the *checking* schema (every rule, as async-graphql's
//!   strict mode has them) unless its operation of that text passed every rule before *and* its
//!   variables are values of the types the operation declares for them. Then it runs on the
//!   *known* schema, whose validation only computes what depends on the variables as well as
//!   the text: complexity and depth, with their limits. The one rule that reads variables
//!   checks each argument's value; a document that passed every rule binds its variables only
//!   where their declared types fit, so a variable whose value fits its declared type fits
//!   every place it is used. The check here is stricter than the rule where it is simpler to
//!   be (a null for a variable with a default, a non-object for an input object): such a
//!   request simply takes the checking schema, so a client sees exactly the errors it would
//!   without this cache.
//!
//! What a caller may do is not part of validation (guards run at execution), so a document
//! checked for one caller is known for every caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{Request, SchemaEnv, ServerError, ValidationResult, Value, Variables};

/// Query text → parsed document, and the operations of it that passed every rule.
#[derive(Default)]
pub struct DocumentCache {
    documents: Mutex<HashMap<String, Kept>>,
    /// The schema's types, taken from the first validation (every schema of the API has the
    /// same).
    types: OnceLock<SchemaEnv>,
    checked_requests: AtomicU64,
    known_requests: AtomicU64,
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache")
            .field("documents", &self.lock().len())
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Kept {
    document: ExecutableDocument,
    /// Operation names (`None`: the request named none) that passed every rule.
    validated: Vec<Option<String>>,
}

/// Which schema a prepared request runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// Every validation rule.
    All,
    /// Only complexity and depth: the operation passed every rule before, and the variables
    /// fit the types it declares.
    Known,
}

/// The name of the request's document and operation, as request data of a request that runs
/// every rule, so [`RememberValid`] can mark it once it passed.
#[derive(Debug, Clone)]
struct Unchecked {
    text: String,
    operation: Option<String>,
}

impl DocumentCache {
    /// Most documents kept.
    pub const CAPACITY: usize = 512;
    /// Longest query text kept, in bytes.
    pub const MAX_TEXT_BYTES: usize = 16 * 1024;

    /// Gives `request` its parsed document, the kept one or one parsed now and kept, and
    /// tells which schema it runs on. A text that does not parse is left to the schema, which
    /// answers with the parse error.
    pub fn prepare(&self, request: &mut Request) -> Checks {
        let checks = self.choose(request);
        let counter = match checks {
            Checks::All => &self.checked_requests,
            Checks::Known => &self.known_requests,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        checks
    }

    fn choose(&self, request: &mut Request) -> Checks {
        if request.query.len() > Self::MAX_TEXT_BYTES {
            return Checks::All;
        }
        let kept = self.lock().get(&request.query).map(|kept| {
            (
                kept.document.clone(),
                kept.validated.contains(&request.operation_name),
            )
        });
        let (document, passed) = match kept {
            Some(kept) => kept,
            None => {
                let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
                    return Checks::All;
                };
                let mut documents = self.lock();
                if documents.len() >= Self::CAPACITY {
                    documents.clear();
                }
                let kept = Kept {
                    document: document.clone(),
                    validated: Vec::new(),
                };
                documents.insert(request.query.clone(), kept);
                (document, false)
            }
        };
        let checks = match self.types.get() {
            Some(env)
                if passed
                    && operation(&document, request.operation_name.as_deref()).is_some_and(
                        |operation| variables_fit(&env.registry, operation, &request.variables),
                    ) =>
            {
                Checks::Known
            }
            _ => {
                let unchecked = Unchecked {
                    text: request.query.clone(),
                    operation: request.operation_name.clone(),
                };
                request.data.insert(unchecked);
                Checks::All
            }
        };
        request.set_parsed_query(document);
        checks
    }

    /// How many requests were prepared to run every rule, and how many to run on the known
    /// schema, so far.
    pub fn requests(&self) -> (u64, u64) {
        (
            self.checked_requests.load(Ordering::Relaxed),
            self.known_requests.load(Ordering::Relaxed),
        )
    }

    /// Marks the operation `unchecked` names as passed, if its text is still kept and has that
    /// operation (the rules check the whole document, whatever name a request gives; only
    /// names of its operations are kept, so their list stays as short as the document).
    fn passed(&self, env: &SchemaEnv, unchecked: &Unchecked) {
        self.types.get_or_init(|| env.clone());
        if let Some(kept) = self.lock().get_mut(&unchecked.text)
            && operation(&kept.document, unchecked.operation.as_deref()).is_some()
            && !kept.validated.contains(&unchecked.operation)
        {
            kept.validated.push(unchecked.operation.clone());
        }
    }

    /// How many documents are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Kept>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.documents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The operation a request runs: the one named, or the only one.
fn operation<'a>(
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

/// Whether every variable given is a value of the type `operation` declares for it. A variable
/// not given is left to the executor (it takes its default, or the field says it is missing),
/// as the rules leave it; a null for a variable with a default is not decided here.
fn variables_fit(registry: &Registry, operation: &OperationDefinition, given: &Variables) -> bool {
    operation.variable_definitions.iter().all(|definition| {
        let definition = &definition.node;
        match given.get(&definition.name.node) {
            None => true,
            Some(Value::Null) if definition.default_value.is_some() => false,
            Some(value) => fits(registry, &definition.var_type.node.to_string(), value),
        }
    })
}

/// Whether `value` is a value of the type written `ty` (`Int`, `[ID!]!`, …).
fn fits(registry: &Registry, ty: &str, value: &Value) -> bool {
    match MetaTypeName::create(ty) {
        MetaTypeName::NonNull(inner) => {
            !matches!(value, Value::Null) && fits(registry, inner, value)
        }
        MetaTypeName::List(item) => match value {
            Value::Null => true,
            Value::List(items) => items.iter().all(|value| fits(registry, item, value)),
            // One value where a list is declared stands for a list of it.
            value => fits(registry, item, value),
        },
        MetaTypeName::Named(name) => {
            matches!(value, Value::Null) || fits_named(registry, name, value)
        }
    }
}

fn fits_named(registry: &Registry, name: &str, value: &Value) -> bool {
    match registry.types.get(name) {
        Some(MetaType::Scalar { is_valid, .. }) => {
            is_valid.as_ref().is_none_or(|is_valid| is_valid(value))
        }
        Some(MetaType::Enum { enum_values, .. }) => match value {
            Value::Enum(item) => enum_values.contains_key(item.as_str()),
            Value::String(item) => enum_values.contains_key(item.as_str()),
            _ => false,
        },
        Some(MetaType::InputObject {
            input_fields,
            oneof,
            ..
        }) => {
            let Value::Object(fields) = value else {
                return false;
            };
            if *oneof && (fields.len() != 1 || fields.values().any(|v| matches!(v, Value::Null))) {
                return false;
            }
            fields
                .keys()
                .all(|field| input_fields.contains_key(field.as_str()))
                && input_fields
                    .values()
                    .all(|field| match fields.get(field.name.as_str()) {
                        Some(value) => fits(registry, &field.ty, value),
                        None => {
                            !MetaTypeName::create(&field.ty).is_non_null()
                                || field.default_value.is_some()
                        }
                    })
        }
        // Not an input type: the rules refuse such a variable, so a kept document has none.
        _ => false,
    }
}

/// The extension of the checking schema: marks an operation of a kept text as passed once
/// every rule passed for it.
pub(crate) struct RememberValid(pub(crate) Arc<DocumentCache>);

impl ExtensionFactory for RememberValid {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RememberValid(self.0.clone()))
    }
}

#[async_trait::async_trait]
impl Extension for RememberValid {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        if result.is_ok()
            && let Some(unchecked) = ctx.data_opt::<Unchecked>()
        {
            self.0.passed(ctx.schema_env, unchecked);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_parsed_texts_and_leaves_bad_ones_to_the_schema() {
        let cache = DocumentCache::default();
        let mut first = Request::new("query { me { id } }");
        assert_eq!(cache.prepare(&mut first), Checks::All);
        assert_eq!(cache.len(), 1);
        let mut again = Request::new("query { me { id } }");
        assert_eq!(
            cache.prepare(&mut again),
            Checks::All,
            "nothing passed the rules yet"
        );
        assert_eq!(cache.len(), 1, "the same text is kept once");
        let mut parsed = again;
        assert!(parsed.parsed_query().is_ok());

        let mut broken = Request::new("query { me { id }");
        assert_eq!(cache.prepare(&mut broken), Checks::All);
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
