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

/// The distinct terms of `texts`, in the order first met.
#[must_use]
pub fn terms<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut terms = Vec::new();
    for text in texts {
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            if word.is_empty() {
                continue;
            }
            let term: String = word
                .chars()
                .take(MAX_TERM_CHARS)
                .flat_map(char::to_lowercase)
                .collect();
            if terms.len() < MAX_TERMS && seen.insert(term.clone()) {
                terms.push(term);
            }
        }
    }
    terms
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
    }
}
