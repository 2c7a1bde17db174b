//! The words a message search matches: what the `messages.search_terms` column holds, and what
//! a ticket search looks for.
//!
//! A term is a run of letters and digits (any script), lower-cased and cut to
//! [`MAX_TERM_CHARS`]. A message's terms are those of its text and caption, each once. A search
//! matches a message holding every term of the search text, in any order; a search without a
//! term matches no message. Both sides go through [`terms`], so they always agree.
//!
//! The terms are computed here rather than by `to_tsvector` in an index expression: the
//! projection writes them with the row, and Postgres only indexes the array (GIN).

use std::collections::HashSet;

/// Longest term kept (characters); a longer word is cut, on both sides alike.
pub const MAX_TERM_CHARS: usize = 64;

/// Most terms kept per message (the first ones met). Telegram's limits (4,096 characters of
/// text, 1,024 of caption) keep real messages well below it.
pub const MAX_TERMS: usize = 2_048;

/// Up to this many terms, a term is looked for among those met by comparing: cheaper than
/// hashing for a message's few dozen words.
const LINEAR_DEDUP: usize = 32;

/// The distinct terms of `texts`, in the order first met.
#[must_use]
pub fn terms<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen: Option<HashSet<String>> = None;
    let mut terms: Vec<String> = Vec::new();
    for text in texts {
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            if word.is_empty() {
                continue;
            }
            if terms.len() >= MAX_TERMS {
                return terms;
            }
            let term = term(word);
            let new = match &mut seen {
                Some(seen) => seen.insert(term.clone()),
                None if terms.len() < LINEAR_DEDUP => !terms.contains(&term),
                None => {
                    let mut set: HashSet<String> = terms.iter().cloned().collect();
                    let new = set.insert(term.clone());
                    seen = Some(set);
                    new
                }
            };
            if new {
                terms.push(term);
            }
        }
    }
    terms
}

/// A word cut to [`MAX_TERM_CHARS`] and lower-cased (ASCII words without going char by char).
fn term(word: &str) -> String {
    if word.is_ascii() {
        word[..word.len().min(MAX_TERM_CHARS)].to_ascii_lowercase()
    } else {
        word.chars()
            .take(MAX_TERM_CHARS)
            .flat_map(char::to_lowercase)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_runs_of_letters_and_digits_lower_cased_and_each_kept_once() {
        assert_eq!(
            terms(["Order #48213: it LEFT, it left!"]),
            ["order", "48213", "it", "left"]
        );
        assert_eq!(
            terms(["bob@example.com", "Привет, мир", "naïve café"]),
            ["bob", "example", "com", "привет", "мир", "naïve", "café"]
        );
        assert!(terms(["", "  ... !!"]).is_empty());
    }

    #[test]
    fn long_words_are_cut_and_many_words_are_capped() {
        let long = "x".repeat(200);
        assert_eq!(terms([long.as_str()]), ["x".repeat(MAX_TERM_CHARS)]);
        let many: String = (0..MAX_TERMS + 10).map(|n| format!("w{n} ")).collect();
        let kept = terms([many.as_str()]);
        assert_eq!(kept.len(), MAX_TERMS);
        assert_eq!(kept[0], "w0");
        // Repeats are dropped however many distinct words came before them.
        let repeated: String = (0..100).chain(0..100).map(|n| format!("W{n} ")).collect();
        let kept = terms([repeated.as_str(), "w5 w99 w100"]);
        let expected: Vec<String> = (0..=100).map(|n| format!("w{n}")).collect();
        assert_eq!(kept, expected);
    }
}
