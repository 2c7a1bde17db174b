//! The one Telegram message a broadcast becomes for one customer: its text (or one medium with
//! the text as caption), the author's inline buttons, and the unsubscribe button.
//!
//! Callback buttons do not carry the author's data itself: Telegram gives a button at most
//! 64 bytes, and the bot must know which broadcast a press belongs to. Each becomes
//! [`CallbackData::BroadcastButton`] with the button's place among all the broadcast's
//! buttons (row by row, from 0); the data the author gave it is read back from the broadcast
//! when it is pressed. Link buttons go as they are. The unsubscribe button, when the broadcast
//! has it, is a row of its own at the bottom ([`CallbackData::Unsubscribe`]).

use domain::BroadcastId;
use domain::broadcast::{BroadcastContent, ButtonAction, TextFormat};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, ParseMode};

use super::send::Part;
use crate::callback::CallbackData;

/// The message of `content` for a customer whose unsubscribe label (in their language) is
/// `unsubscribe_label`; `None` leaves the unsubscribe button out whatever the content says.
#[must_use]
pub(crate) fn message(
    broadcast: BroadcastId,
    content: &BroadcastContent,
    unsubscribe_label: Option<&str>,
) -> Part {
    let keyboard = keyboard(broadcast, content, unsubscribe_label);
    let parse_mode = parse_mode(content.format);
    match &content.media {
        Some(media) => Part::Media {
            kind: media.kind,
            file_id: media.file_id.clone(),
            caption: content.text.clone().filter(|text| !text.is_empty()),
            reply_to: None,
            keyboard,
            parse_mode,
        },
        None => Part::Text {
            text: content.text.clone().unwrap_or_default(),
            keyboard,
            reply_to: None,
            parse_mode,
        },
    }
}

/// Telegram's `parse_mode` for a text format.
#[must_use]
pub(crate) const fn parse_mode(format: TextFormat) -> Option<ParseMode> {
    match format {
        TextFormat::Plain => None,
        TextFormat::Html => Some(ParseMode::Html),
        TextFormat::MarkdownV2 => Some(ParseMode::MarkdownV2),
    }
}

/// The inline keyboard under the message, if it has any button.
#[must_use]
pub(crate) fn keyboard(
    broadcast: BroadcastId,
    content: &BroadcastContent,
    unsubscribe_label: Option<&str>,
) -> Option<InlineKeyboardMarkup> {
    let mut index: usize = 0;
    let mut rows: Vec<Vec<InlineKeyboardButton>> = content
        .buttons
        .iter()
        .map(|row| {
            row.iter()
                .map(|button| {
                    let place = index;
                    index += 1;
                    match &button.action {
                        ButtonAction::Url { url } => match url.parse() {
                            Ok(url) => InlineKeyboardButton::url(button.label.clone(), url),
                            // The domain checked the scheme; a link that still does not
                            // parse is sent as a button that answers instead of failing the
                            // whole message.
                            Err(_) => callback_button(&button.label, broadcast, place),
                        },
                        ButtonAction::Callback { .. } => {
                            callback_button(&button.label, broadcast, place)
                        }
                    }
                })
                .collect()
        })
        .collect();
    if content.unsubscribe_button
        && let Some(label) = unsubscribe_label
    {
        rows.push(vec![InlineKeyboardButton::callback(
            label.to_owned(),
            CallbackData::Unsubscribe(broadcast).to_string(),
        )]);
    }
    (!rows.is_empty()).then(|| InlineKeyboardMarkup::new(rows))
}

fn callback_button(label: &str, broadcast: BroadcastId, place: usize) -> InlineKeyboardButton {
    // The domain allows at most 100 buttons, so the place fits in a byte.
    let index = u8::try_from(place).unwrap_or(u8::MAX);
    InlineKeyboardButton::callback(
        label.to_owned(),
        CallbackData::BroadcastButton { broadcast, index }.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use domain::broadcast::InlineButton;
    use domain::content::{MediaKind, OutgoingMedia};
    use teloxide::types::InlineKeyboardButtonKind;
    use uuid::Uuid;

    use super::*;

    fn content() -> BroadcastContent {
        BroadcastContent {
            text: Some("<b>Sale</b>".into()),
            format: TextFormat::Html,
            media: None,
            buttons: vec![
                vec![
                    InlineButton {
                        label: "Shop".into(),
                        action: ButtonAction::Url {
                            url: "https://shop.example/".into(),
                        },
                    },
                    InlineButton {
                        label: "Yes".into(),
                        action: ButtonAction::Callback { data: "yes".into() },
                    },
                ],
                vec![InlineButton {
                    label: "No".into(),
                    action: ButtonAction::Callback { data: "no".into() },
                }],
            ],
            unsubscribe_button: true,
        }
    }

    fn data(button: &InlineKeyboardButton) -> Option<CallbackData> {
        match &button.kind {
            InlineKeyboardButtonKind::CallbackData(data) => CallbackData::parse(data),
            _ => None,
        }
    }

    #[test]
    fn callback_buttons_carry_their_place_and_the_unsubscribe_row_comes_last() {
        let broadcast = BroadcastId(Uuid::now_v7());
        let Part::Text {
            keyboard: Some(keyboard),
            parse_mode,
            ..
        } = message(broadcast, &content(), Some("Unsubscribe"))
        else {
            panic!("a text message with buttons");
        };
        assert_eq!(parse_mode, Some(ParseMode::Html));
        let rows = &keyboard.inline_keyboard;
        assert_eq!(rows.len(), 3);
        assert!(matches!(rows[0][0].kind, InlineKeyboardButtonKind::Url(_)));
        assert_eq!(
            data(&rows[0][1]),
            Some(CallbackData::BroadcastButton {
                broadcast,
                index: 1
            })
        );
        assert_eq!(
            data(&rows[1][0]),
            Some(CallbackData::BroadcastButton {
                broadcast,
                index: 2
            })
        );
        assert_eq!(rows[2][0].text, "Unsubscribe");
        assert_eq!(
            data(&rows[2][0]),
            Some(CallbackData::Unsubscribe(broadcast))
        );
    }

    #[test]
    fn the_unsubscribe_button_can_be_left_out_and_media_carry_the_keyboard() {
        let broadcast = BroadcastId(Uuid::now_v7());
        let mut content = content();
        content.unsubscribe_button = false;
        content.buttons.clear();
        assert!(matches!(
            message(broadcast, &content, Some("Unsubscribe")),
            Part::Text { keyboard: None, .. }
        ));
        content.unsubscribe_button = true;
        assert!(matches!(
            message(broadcast, &content, None),
            Part::Text { keyboard: None, .. }
        ));
        content.media = Some(OutgoingMedia {
            kind: MediaKind::Photo,
            file_id: "P".into(),
        });
        let part = message(broadcast, &content, Some("Unsubscribe"));
        assert!(matches!(
            part,
            Part::Media {
                keyboard: Some(_),
                caption: Some(_),
                kind: MediaKind::Photo,
                ..
            }
        ));
    }
}
