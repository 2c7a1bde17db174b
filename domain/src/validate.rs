//! Input bounds shared by every aggregate, and the error that reports a broken one.
//!
//! The limits follow Telegram where Telegram has one (4096 characters of text, 1024 of caption,
//! 64 bytes of callback data), so that anything the domain accepts can actually be sent.
//! Lengths are counted in Unicode scalar values.
//!
//! What a customer already sent through Telegram is a fact, not an input to police: it is
//! bounded only by [`MAX_CUSTOMER_TEXT_CHARS`] and [`MAX_CUSTOMER_ITEMS`], well above anything
//! Telegram lets through (Premium captions and long file names included), so that nothing a
//! customer sent is refused while storage stays bounded. The other limits are for what agents
//! and admins write.

/// Most characters in a message text (Telegram's limit).
pub const MAX_TEXT_CHARS: usize = 4096;
/// Most characters in a media caption (Telegram's limit).
pub const MAX_CAPTION_CHARS: usize = 1024;
/// Most characters in a person's, category's or template's name.
pub const MAX_NAME_CHARS: usize = 128;
/// Most characters in a tag.
pub const MAX_TAG_CHARS: usize = 32;
/// Most tags on one ticket.
pub const MAX_TAGS: usize = 20;
/// Most characters in a free-text reason or comment (ban reason, failure reason, CSAT comment).
pub const MAX_REASON_CHARS: usize = 1024;
/// Most characters in an email address.
pub const MAX_EMAIL_CHARS: usize = 254;
/// Most media attachments in one agent reply (a Telegram media group holds 10).
pub const MAX_REPLY_MEDIA: usize = 10;
/// Most recipients whose outcome one broadcast event records.
pub const MAX_OUTCOME_BATCH: usize = 100;
/// Most customers in an explicit broadcast audience list.
pub const MAX_EXPLICIT_AUDIENCE: usize = 10_000;
/// Most customers one broadcast's frozen audience holds, recipients and left-out together
/// (100 `broadcast.audience_frozen` events of 5,000 in the start's append).
pub const MAX_AUDIENCE: usize = 500_000;
/// Most inline buttons on a broadcast, and most buttons on one row.
pub const MAX_BUTTONS: usize = 100;
/// Most inline buttons on one row of a broadcast keyboard (Telegram's limit).
pub const MAX_BUTTONS_PER_ROW: usize = 8;
/// Most bytes of callback data on an inline button (Telegram's limit).
pub const MAX_CALLBACK_BYTES: usize = 64;
/// Most characters in a URL on an inline button.
pub const MAX_URL_CHARS: usize = 2048;
/// Most characters in a Telegram file id.
pub const MAX_FILE_ID_CHARS: usize = 256;
/// Most characters in any one text of a customer message as Telegram delivered it (a text, a
/// caption, a file name, a title, a name, a phone number, a file id). Telegram's own limits are
/// a quarter of this at most (4096 characters of text, captions of Premium users included).
pub const MAX_CUSTOMER_TEXT_CHARS: usize = 16 * 1024;
/// Most items in one list of a customer message as Telegram delivered it (poll options,
/// checklist tasks, paid media). Telegram allows a few dozen at most.
pub const MAX_CUSTOMER_ITEMS: usize = 256;
/// Most characters in a language code (IETF tag as Telegram sends it).
pub const MAX_LANGUAGE_CHARS: usize = 35;

/// An input that breaks one of the bounds above. `field` names the input in words a user
/// understands ("message text", "tag").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    /// A required value is empty or blank.
    #[error("the {field} must not be empty")]
    Empty {
        /// Which input.
        field: &'static str,
    },
    /// A value is longer than allowed.
    #[error("the {field} is too long ({actual}, at most {max})")]
    TooLong {
        /// Which input.
        field: &'static str,
        /// The largest allowed length.
        max: usize,
        /// The length given.
        actual: usize,
    },
    /// A list holds too many items.
    #[error("too many {field} ({actual}, at most {max})")]
    TooMany {
        /// Which list.
        field: &'static str,
        /// The largest allowed count.
        max: usize,
        /// The count given.
        actual: usize,
    },
    /// A number is outside its range.
    #[error("the {field} must be between {min} and {max}")]
    OutOfRange {
        /// Which input.
        field: &'static str,
        /// The smallest allowed value.
        min: i64,
        /// The largest allowed value.
        max: i64,
    },
    /// A value has the wrong shape.
    #[error("the {field} is not valid: {why}")]
    Malformed {
        /// Which input.
        field: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A list holds the same item twice.
    #[error("the {field} lists the same item twice")]
    Duplicate {
        /// Which list.
        field: &'static str,
    },
}

/// Checks that `value` is not blank and at most `max` characters long.
///
/// # Errors
/// [`InvalidInput::Empty`] or [`InvalidInput::TooLong`].
pub fn required(field: &'static str, value: &str, max: usize) -> Result<(), InvalidInput> {
    if value.trim().is_empty() {
        return Err(InvalidInput::Empty { field });
    }
    at_most(field, value, max)
}

/// Checks that `value` is at most `max` characters long (empty is fine).
///
/// # Errors
/// [`InvalidInput::TooLong`].
pub fn at_most(field: &'static str, value: &str, max: usize) -> Result<(), InvalidInput> {
    let actual = value.chars().count();
    if actual > max {
        return Err(InvalidInput::TooLong { field, max, actual });
    }
    Ok(())
}

/// Checks an optional value with [`required`] when present.
///
/// # Errors
/// As [`required`].
pub fn optional(field: &'static str, value: Option<&str>, max: usize) -> Result<(), InvalidInput> {
    value.map_or(Ok(()), |value| required(field, value, max))
}

/// Checks that a list holds at most `max` items.
///
/// # Errors
/// [`InvalidInput::TooMany`].
pub fn count(field: &'static str, actual: usize, max: usize) -> Result<(), InvalidInput> {
    if actual > max {
        return Err(InvalidInput::TooMany { field, max, actual });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_required_text_is_rejected() {
        assert_eq!(
            required("name", "  ", 10),
            Err(InvalidInput::Empty { field: "name" })
        );
    }

    #[test]
    fn lengths_are_counted_in_characters_not_bytes() {
        assert_eq!(required("name", "ééé", 3), Ok(()));
        assert_eq!(
            required("name", "éééé", 3),
            Err(InvalidInput::TooLong {
                field: "name",
                max: 3,
                actual: 4
            })
        );
    }

    #[test]
    fn messages_read_as_sentences() {
        let err = InvalidInput::TooLong {
            field: "message text",
            max: 4096,
            actual: 5000,
        };
        assert_eq!(
            err.to_string(),
            "the message text is too long (5000, at most 4096)"
        );
    }
}
