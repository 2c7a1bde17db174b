//! What Postgres cannot store, found and cleaned in one place.
//!
//! Postgres refuses the NUL character (U+0000) in `text` and in `jsonb` alike: a string
//! holding one makes the whole statement fail, and an append batched with others would fail
//! the whole batch. The log therefore refuses any append that holds one, before it joins a
//! batch ([`Error::Unstorable`](crate::Error::Unstorable), naming where the character is),
//! and the writers that take text from outside clean or refuse it first:
//!
//! - what a customer already sent (through Telegram) is a fact to keep: [`replace_nul`] puts
//!   U+FFFD REPLACEMENT CHARACTER where each NUL was, so the message is recorded and an agent
//!   sees that a character was there;
//! - what a client of the API sends is refused with a validation error: [`find_nul`] names the
//!   place.

use serde_json::Value;

/// The character Postgres cannot store.
pub const NUL: char = '\0';

/// What stands in for a NUL in text that is cleaned rather than refused.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether `text` holds a character Postgres cannot store.
#[must_use]
pub fn has_nul(text: &str) -> bool {
    text.contains(NUL)
}

/// `text` with every NUL replaced by [`REPLACEMENT`]; `None` when it had none (nothing to do).
#[must_use]
pub fn without_nul(text: &str) -> Option<String> {
    has_nul(text).then(|| text.replace(NUL, &REPLACEMENT.to_string()))
}

/// Where the first NUL in `value` is, in its strings or its object keys: a dotted path such
/// as `content.body.text` or `tags[2]` (the empty path for a bare string); `None` when it has
/// none.
#[must_use]
pub fn find_nul(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => has_nul(text).then(String::new),
        Value::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
            find_nul(item).map(|inner| join(&format!("[{index}]"), &inner))
        }),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if has_nul(key) {
                return Some(key.replace(NUL, &REPLACEMENT.to_string()));
            }
            find_nul(item).map(|inner| join(key, &inner))
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

fn join(head: &str, tail: &str) -> String {
    if tail.is_empty() {
        head.to_owned()
    } else if tail.starts_with('[') {
        format!("{head}{tail}")
    } else {
        format!("{head}.{tail}")
    }
}

/// Replaces every NUL in `value`'s strings and object keys by [`REPLACEMENT`]; answers
/// whether anything changed.
pub fn replace_nul(value: &mut Value) -> bool {
    match value {
        Value::String(text) => match without_nul(text) {
            Some(clean) => {
                *text = clean;
                true
            }
            None => false,
        },
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| replace_nul(item) | changed),
        Value::Object(fields) => {
            if fields.keys().any(|key| has_nul(key)) {
                let taken = std::mem::take(fields);
                for (key, mut item) in taken {
                    replace_nul(&mut item);
                    let key = without_nul(&key).unwrap_or(key);
                    fields.insert(key, item);
                }
                return true;
            }
            fields
                .values_mut()
                .fold(false, |changed, item| replace_nul(item) | changed)
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_path_names_where_the_nul_is() {
        assert_eq!(find_nul(&json!("a\u{0}b")), Some(String::new()));
        assert_eq!(find_nul(&json!({"a": {"b": "x\u{0}"}})), Some("a.b".into()));
        assert_eq!(
            find_nul(&json!({"tags": ["ok", "n\u{0}"]})),
            Some("tags[1]".into())
        );
        assert_eq!(find_nul(&json!([{"t": "\u{0}"}])), Some("[0].t".into()));
        assert_eq!(find_nul(&json!({"k\u{0}": 1})), Some("k\u{FFFD}".into()));
        assert_eq!(
            find_nul(&json!({"a": ["b", 1, null], "c": "\\u0000"})),
            None
        );
    }

    #[test]
    fn replacing_leaves_no_nul_and_keeps_the_rest() {
        let mut value = json!({"text": "a\u{0}b", "list": ["\u{0}", 3], "k\u{0}": {"x": "y"}});
        assert!(replace_nul(&mut value));
        assert_eq!(find_nul(&value), None);
        assert_eq!(
            value,
            json!({"text": "a\u{FFFD}b", "list": ["\u{FFFD}", 3], "k\u{FFFD}": {"x": "y"}})
        );
        let mut clean = json!({"text": "fine"});
        assert!(!replace_nul(&mut clean));
    }
}
