//! Bounds of broadcast content, audiences and outcomes (Telegram's limits where it has them).

use std::collections::BTreeSet;

use super::event::{Audience, BroadcastContent, ButtonAction, Outcome, RecipientOutcome};
use crate::validate::{self, InvalidInput};

pub(super) fn validate_content(content: &BroadcastContent) -> Result<(), InvalidInput> {
    if content.text.is_none() && content.media.is_none() {
        return Err(InvalidInput::Empty { field: "broadcast" });
    }
    if let Some(media) = &content.media {
        media.validate()?;
        validate::optional(
            "broadcast caption",
            content.text.as_deref(),
            validate::MAX_CAPTION_CHARS,
        )?;
    } else {
        validate::optional(
            "broadcast text",
            content.text.as_deref(),
            validate::MAX_TEXT_CHARS,
        )?;
    }
    let total: usize = content.buttons.iter().map(Vec::len).sum();
    validate::count("buttons", total, validate::MAX_BUTTONS)?;
    for row in &content.buttons {
        if row.is_empty() {
            return Err(InvalidInput::Empty {
                field: "button row",
            });
        }
        validate::count(
            "buttons in one row",
            row.len(),
            validate::MAX_BUTTONS_PER_ROW,
        )?;
        for button in row {
            validate::required("button label", &button.label, 64)?;
            match &button.action {
                ButtonAction::Url { url } => {
                    validate::required("button link", url, validate::MAX_URL_CHARS)?;
                    if !["https://", "http://", "tg://"]
                        .iter()
                        .any(|scheme| url.starts_with(scheme))
                    {
                        return Err(InvalidInput::Malformed {
                            field: "button link",
                            why: "it must start with https://, http:// or tg://",
                        });
                    }
                }
                ButtonAction::Callback { data } => {
                    if data.is_empty() {
                        return Err(InvalidInput::Empty {
                            field: "button data",
                        });
                    }
                    if data.len() > validate::MAX_CALLBACK_BYTES {
                        return Err(InvalidInput::TooLong {
                            field: "button data (in bytes)",
                            max: validate::MAX_CALLBACK_BYTES,
                            actual: data.len(),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

pub(super) fn validate_audience(audience: &Audience) -> Result<(), InvalidInput> {
    match audience {
        Audience::AllCustomers | Audience::ByTicketStatus { .. } | Audience::ByCategory { .. } => {
            Ok(())
        }
        Audience::ByLanguage { language } => {
            validate::required("language", language, validate::MAX_LANGUAGE_CHARS)
        }
        Audience::Explicit { customers } => {
            if customers.is_empty() {
                return Err(InvalidInput::Empty {
                    field: "recipient list",
                });
            }
            validate::count(
                "recipients",
                customers.len(),
                validate::MAX_EXPLICIT_AUDIENCE,
            )?;
            let unique: BTreeSet<_> = customers.iter().collect();
            if unique.len() != customers.len() {
                return Err(InvalidInput::Duplicate {
                    field: "recipient list",
                });
            }
            Ok(())
        }
    }
}

pub(super) fn validate_outcome(outcome: &RecipientOutcome) -> Result<(), InvalidInput> {
    match &outcome.outcome {
        Outcome::Failed { reason, .. } => {
            validate::required("failure reason", reason, validate::MAX_REASON_CHARS)
        }
        Outcome::Delivered { .. } | Outcome::Skipped { .. } => Ok(()),
    }
}
