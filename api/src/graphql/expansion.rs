//! The size of a document once every fragment spread is replaced by the fragment: what the
//! schema's checks walk before any resolver runs.
//!
//! async-graphql follows fragment spreads in several of its checks (depth, directives,
//! complexity), so a chain of fragments that each spread the previous one twice
//! (`fragment F1 on Query { ...F0 ...F0 }`, and so on) makes a one-kilobyte text cost 2^n
//! steps of work, all of it synchronous, on the thread that serves the request. These checks
//! run inline in the request's future, not on a blocking thread, so no deadline can stop them
//! once they started: the bound has to come first. [`selections`] counts the expanded size in
//! time linear in the text (each fragment's size is computed once and kept), and requests
//! above [`super::Limits::max_selections`] are refused before the schema sees them.
//!
//! What counts: each field, fragment spread, inline fragment, directive and argument,
//! wherever a fragment puts it, in every operation of the document, and each variable an
//! operation defines. Fragment definitions cost their own size once more (the schema checks
//! each definition as written too).

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::parser::{Pos, Positioned};
use async_graphql::{Name, ServerError};

/// Why a document is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// It expands to more than the bound.
    TooLarge { limit: usize },
    /// A fragment spreads itself, directly or through others (the schema would refuse it
    /// too, after walking the cycle).
    Cycle { fragment: String, pos: Pos },
}

impl Refusal {
    /// The error a client gets: `GRAPHQL_VALIDATION_FAILED`, as for the schema's own bounds.
    pub(crate) fn into_error(self) -> ServerError {
        let (message, pos) = match self {
            Refusal::TooLarge { limit } => (
                format!(
                    "the document is too large: with its fragments spread it has more than \
                     {limit} fields, fragments and directives; send a smaller query"
                ),
                None,
            ),
            Refusal::Cycle { fragment, pos } => (
                format!("the fragment \"{fragment}\" spreads itself"),
                Some(pos),
            ),
        };
        let mut error = ServerError::new(message, pos);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", super::request_errors::VALIDATION_FAILED);
        error.extensions = Some(extensions);
        error
    }
}

/// A fragment's own size and the fragments it spreads (with repeats).
struct Shape<'a> {
    own: usize,
    spreads: Vec<(&'a Name, Pos)>,
}

/// The expanded size of `document`, or why it is refused: larger than `limit`, or a fragment
/// spreads itself.
pub(crate) fn selections(document: &ExecutableDocument, limit: usize) -> Result<usize, Refusal> {
    let too_large = Refusal::TooLarge { limit };
    let fragments: HashMap<&Name, Shape<'_>> = document
        .fragments
        .iter()
        .map(|(name, fragment)| (name, shape(&fragment.node.selection_set)))
        .collect();
    // Every definition is checked once as written.
    let mut total = fragments
        .values()
        .fold(0usize, |sum, shape| sum.saturating_add(shape.own));
    let mut sizes = Sizes {
        fragments: &fragments,
        done: HashMap::new(),
        limit,
    };
    for (_, operation) in document.operations.iter() {
        let Shape { own, spreads } = shape(&operation.node.selection_set);
        total = total
            .saturating_add(own)
            .saturating_add(operation.node.variable_definitions.len());
        for (name, _) in spreads {
            total = total.saturating_add(sizes.of(name)?);
            if total > limit {
                return Err(too_large);
            }
        }
        if total > limit {
            return Err(too_large);
        }
    }
    if total > limit {
        return Err(too_large);
    }
    Ok(total)
}

/// Expanded fragment sizes, each computed once.
struct Sizes<'d, 'a> {
    fragments: &'d HashMap<&'a Name, Shape<'a>>,
    /// Finished fragments, capped at `limit + 1`.
    done: HashMap<&'a Name, usize>,
    limit: usize,
}

impl<'a> Sizes<'_, 'a> {
    /// The expanded size of fragment `name` (0 for an unknown one: the schema names it),
    /// capped at `limit + 1`. Walks the spreads with a stack of its own, so a chain of
    /// thousands of fragments cannot exhaust the thread's stack.
    fn of(&mut self, name: &'a Name) -> Result<usize, Refusal> {
        if let Some(size) = self.done.get(name) {
            return Ok(*size);
        }
        let fragments = self.fragments;
        // Fragments being expanded, each with the index of its next spread to look at, and
        // the same names as a set, to see a cycle at once.
        let mut stack: Vec<(&'a Name, usize)> = vec![(name, 0)];
        let mut open: HashSet<&'a Name> = HashSet::from([name]);
        while let Some(&mut (current, ref mut next)) = stack.last_mut() {
            let Some(shape) = fragments.get(current) else {
                self.done.insert(current, 0);
                open.remove(current);
                stack.pop();
                continue;
            };
            if let Some(&(spread, pos)) = shape.spreads.get(*next) {
                *next += 1;
                if self.done.contains_key(spread) {
                    continue;
                }
                if !open.insert(spread) {
                    return Err(Refusal::Cycle {
                        fragment: spread.to_string(),
                        pos,
                    });
                }
                stack.push((spread, 0));
                continue;
            }
            // Every spread is done: add them up.
            let cap = self.limit.saturating_add(1);
            let size = shape
                .spreads
                .iter()
                .fold(shape.own, |sum, (spread, _)| {
                    sum.saturating_add(self.done.get(spread).copied().unwrap_or(0))
                })
                .min(cap);
            self.done.insert(current, size);
            open.remove(current);
            stack.pop();
        }
        Ok(self.done.get(name).copied().unwrap_or(0))
    }
}

/// The size of a selection set as written (spreads count 1 each) and the spreads in it.
/// Nesting is bounded by the parser (64 levels), so the recursion here is too.
fn shape(set: &Positioned<SelectionSet>) -> Shape<'_> {
    let mut shape = Shape {
        own: 0,
        spreads: Vec::new(),
    };
    add(set, &mut shape);
    shape
}

fn add<'a>(set: &'a Positioned<SelectionSet>, shape: &mut Shape<'a>) {
    for selection in &set.node.items {
        let directives = selection.node.directives();
        let directive_arguments: usize = directives
            .iter()
            .map(|directive| directive.node.arguments.len())
            .sum();
        shape.own = shape
            .own
            .saturating_add(1)
            .saturating_add(directives.len())
            .saturating_add(directive_arguments);
        match &selection.node {
            Selection::Field(field) => {
                shape.own = shape.own.saturating_add(field.node.arguments.len());
                add(&field.node.selection_set, shape);
            }
            Selection::InlineFragment(fragment) => add(&fragment.node.selection_set, shape),
            Selection::FragmentSpread(spread) => shape
                .spreads
                .push((&spread.node.fragment_name.node, spread.pos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(text: &str, limit: usize) -> Result<usize, Refusal> {
        selections(
            &async_graphql::parser::parse_query(text).unwrap_or_else(|e| panic!("{e}")),
            limit,
        )
    }

    fn doubling(levels: usize) -> String {
        let mut text = String::from("fragment F0 on Query { __typename }\n");
        for level in 1..=levels {
            let below = level - 1;
            text.push_str(&format!(
                "fragment F{level} on Query {{ ...F{below} ...F{below} }}\n"
            ));
        }
        text.push_str(&format!("query {{ ...F{levels} }}"));
        text
    }

    #[test]
    fn counts_fields_spreads_inline_fragments_and_directives() {
        assert_eq!(size("{ me { id email } }", 100), Ok(3));
        assert_eq!(
            size("{ a: me { id } b: me { id @skip(if: true) } }", 100),
            Ok(6),
            "four fields, a directive and its argument"
        );
        assert_eq!(
            size("query($n: Int) { tickets(first: $n) { totalCount } }", 100),
            Ok(4),
            "a variable, two fields, an argument"
        );
        assert_eq!(
            size("{ ... on Query { me { id } } }", 100),
            Ok(3),
            "inline fragment, field, field"
        );
        // F: 2 fields once as a definition; the spread costs 1 plus F's 2.
        assert_eq!(
            size("fragment F on Agent { id email } { me { ...F } }", 100),
            Ok(6)
        );
        assert_eq!(size("query { ...Unknown }", 100), Ok(1));
    }

    #[test]
    fn a_doubling_chain_is_refused_without_being_expanded() {
        // Small enough to count: F0 = 1, Fn = 2 + 2·F(n-1); each definition once, then the
        // operation's spread and its expansion.
        let expanded = |n: u32| 3 * 2usize.pow(n) - 2;
        let definitions: usize = (0..=3).map(|n| if n == 0 { 1 } else { 2 }).sum();
        assert_eq!(size(&doubling(3), 1_000), Ok(definitions + 1 + expanded(3)));
        let started = std::time::Instant::now();
        assert_eq!(
            size(&doubling(60), 10_000),
            Err(Refusal::TooLarge { limit: 10_000 })
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn cycles_are_refused_and_long_chains_do_not_recurse() {
        let cycle = "fragment A on Query { ...B } fragment B on Query { ...A } { ...A }";
        assert!(matches!(size(cycle, 100), Err(Refusal::Cycle { .. })));
        assert!(matches!(
            size("fragment A on Query { ...A } { __typename }", 100),
            Ok(_) | Err(Refusal::Cycle { .. })
        ));
        let mut chain = String::from("fragment F0 on Query { __typename }\n");
        for n in 1..20_000 {
            chain.push_str(&format!("fragment F{n} on Query {{ ...F{} }}\n", n - 1));
        }
        chain.push_str("{ ...F19999 }");
        assert_eq!(size(&chain, 1_000_000), Ok(20_000 + 1 + 20_000));
    }
}
