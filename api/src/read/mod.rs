//! Typed reads of the read models the API shows: one module per read model, a row type per
//! table and one function per question. The GraphQL layer and the live hub read through these
//! and hold no SQL of their own; each module is the read side of the projection of the same
//! name.

pub mod broadcasts;
pub mod customers;
pub mod dashboard;
pub mod directory;
pub mod tickets;

/// `text` as an ILIKE pattern matching it anywhere, with `%`, `_` and `\` taken literally.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
