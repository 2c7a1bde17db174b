//! The payload of `/start`: what a deep link `t.me/<bot>?start=<payload>` carries.
//!
//! Telegram lets a deep link carry 1–64 characters of `A-Za-z0-9_-`, and the customer's
//! client sends it as `/start <payload>`. A customer may also type anything after `/start`:
//! that is kept too, as given, up to [`MAX_START_PAYLOAD_CHARS`] characters, with control
//! characters (NUL, line breaks) replaced by U+FFFD so it stays one storable line. A payload
//! never makes the update fail.

use domain::customer::MAX_START_PAYLOAD_CHARS;
use teloxide::types::{Update, UpdateKind};

/// The payload of the `/start` message of `update`, if it has one.
#[must_use]
pub fn payload_of(update: &Update) -> Option<String> {
    match &update.kind {
        UpdateKind::Message(message) => message.text().and_then(payload),
        _ => None,
    }
}

/// The payload of a `/start` command `text` (`/start ref-42`, `/start@OurBot ref-42`): the
/// text after the command and its blank, bounded and cleaned (see the module documentation).
#[must_use]
pub fn payload(text: &str) -> Option<String> {
    let rest = text.strip_prefix('/')?;
    let (_command, rest) = rest.split_once(char::is_whitespace)?;
    let rest = rest.trim();
    if rest.is_empty() {
        return None;
    }
    Some(
        rest.chars()
            .take(MAX_START_PAYLOAD_CHARS)
            .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deep_link_payload_is_read_as_telegram_sends_it() {
        assert_eq!(payload("/start ref-42_X").as_deref(), Some("ref-42_X"));
        assert_eq!(payload("/start@LedgerdeskBot abc").as_deref(), Some("abc"));
        assert_eq!(payload("/start"), None);
        assert_eq!(payload("/start   "), None);
        assert_eq!(payload("/start@LedgerdeskBot"), None);
    }

    #[test]
    fn an_unexpected_payload_is_kept_bounded_and_on_one_line() {
        let long = "a".repeat(200);
        assert_eq!(
            payload(&format!("/start {long}")).unwrap_or_default().len(),
            64
        );
        assert_eq!(
            payload("/start hello\nworld\u{0}!").as_deref(),
            Some("hello\u{FFFD}world\u{FFFD}!")
        );
        assert_eq!(payload("/start\nпривет мир").as_deref(), Some("привет мир"));
        let emoji = "🙂".repeat(70);
        assert_eq!(
            payload(&format!("/start {emoji}"))
                .unwrap_or_default()
                .chars()
                .count(),
            64
        );
    }
}
