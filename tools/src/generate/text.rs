//! What generated people say and send: names, profiles, customer messages of every Telegram
//! kind, agent replies, notes and comments. Plausible support-desk text, nothing more.

use domain::content::{
    ForwardOrigin, MediaKind, MessageBody, MessageContent, OutgoingMedia, ReplyContent,
    TelegramFile, TelegramMessageId,
};
use domain::customer::CustomerProfile;

use super::rng::Rng;

pub(super) const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Carla", "Dmitri", "Elif", "Farid", "Giulia", "Hana", "Ivan", "Julia", "Kofi",
    "Lea", "Mateo", "Nadia", "Omar", "Paula", "Quentin", "Rosa", "Sven", "Tara", "Umar", "Vera",
    "Wei", "Ximena", "Yusuf", "Zoe", "Lucas", "Maria", "Sofia", "Noah", "Olga", "Pedro",
];

pub(super) const LAST_NAMES: &[&str] = &[
    "Smith", "Garcia", "Müller", "Rossi", "Kowalski", "Ivanova", "Silva", "Yilmaz", "Nguyen",
    "Dubois", "Jensen", "Novak", "Santos", "Fischer", "Moreau", "Costa", "Petrov", "Lopez",
];

const LANGUAGES: &[(&str, u32)] = &[
    ("en", 40),
    ("es", 12),
    ("de", 10),
    ("ru", 9),
    ("pt-br", 7),
    ("fr", 6),
    ("it", 5),
    ("uk", 4),
    ("tr", 4),
    ("pl", 3),
];

const OPENERS: &[&str] = &[
    "Hi, my order #{n} has not arrived yet. Could you check, please?",
    "Hello! I was charged twice for order #{n}.",
    "The app crashes every time I open the payment screen.",
    "How do I change the delivery address for order #{n}?",
    "I can't log in to my account, the code never arrives.",
    "I'd like to return item #{n}, it is the wrong size.",
    "Is there any discount for a bulk order of {n} units?",
    "My parcel shows delivered but I did not get it.",
    "Where can I download the invoice for #{n}?",
    "The promo code SPRING{n} does not work at checkout.",
    "Can I cancel my subscription before the next billing date?",
    "Your courier left the package at the wrong door again.",
];

const FOLLOW_UPS: &[&str] = &[
    "Thanks, any news?",
    "Here is the screenshot.",
    "It still does not work.",
    "Ok, I will wait.",
    "The tracking number is {n}.",
    "I paid by card ending in {n}.",
    "Sorry, one more question.",
    "Yes, that's the one.",
    "No, I didn't receive any email.",
    "Great, it works now!",
    "Could you call me instead?",
    "Hello? Is anyone there?",
];

const REPLIES: &[&str] = &[
    "Thanks for reaching out! Let me check that for you.",
    "I can see order #{n} in our system; it left the warehouse yesterday.",
    "I have refunded the duplicate charge; it takes 3–5 business days.",
    "Could you send me a screenshot of the error, please?",
    "I've updated the address. You'll get a confirmation email shortly.",
    "Please try logging out and in again, then let me know.",
    "I have escalated this to our delivery partner.",
    "The new code is SORRY{n}, valid for 30 days.",
    "Is there anything else I can help you with?",
    "Your return label is attached. Drop it at any post office.",
];

const NOTES: &[&str] = &[
    "Payment captured twice in the PSP dashboard, refund issued.",
    "Customer is a VIP, handle with priority.",
    "Known bug APP-{n}, engineering is on it.",
    "Courier confirmed a wrong drop-off; reshipping.",
    "Asked finance about the invoice, waiting for an answer.",
    "Third contact about this order this month.",
];

const COMMENTS: &[&str] = &[
    "Fast and friendly, thank you!",
    "Took too long to get an answer.",
    "Problem solved.",
    "The agent was very helpful.",
    "Still not happy with the delivery.",
];

pub(super) const TAGS: &[&str] = &[
    "refund",
    "vip",
    "bug",
    "delivery",
    "android",
    "ios",
    "invoice",
    "duplicate-charge",
    "escalated",
    "feedback",
];

const EMOJI: &[&str] = &["👍", "🙏", "😡", "😂", "❤️", "🤔"];

fn fill(rng: &mut Rng, template: &str) -> String {
    template.replace("{n}", &rng.range(1_000, 99_999).to_string())
}

fn file(rng: &mut Rng, prefix: &str) -> TelegramFile {
    TelegramFile {
        file_id: format!("{prefix}{}", rng.token(48)),
        file_unique_id: format!("AQAD{}", rng.token(12)),
    }
}

/// A Telegram profile as a user's client would send it.
pub(super) fn profile(rng: &mut Rng) -> CustomerProfile {
    let first_name = (*rng.pick(FIRST_NAMES)).to_owned();
    let last_name = rng.chance(0.7).then(|| (*rng.pick(LAST_NAMES)).to_owned());
    let username = rng
        .chance(0.6)
        .then(|| format!("{}_{}", first_name.to_lowercase(), rng.range(1, 9_999)));
    let language_code = rng
        .chance(0.9)
        .then(|| rng.weighted(LANGUAGES).unwrap_or("en").to_owned());
    CustomerProfile {
        first_name,
        last_name,
        username,
        language_code,
    }
}

/// The same person after changing something in Telegram (a username, a last name, a language).
pub(super) fn changed_profile(rng: &mut Rng, profile: &CustomerProfile) -> CustomerProfile {
    let mut changed = profile.clone();
    match rng.below(3) {
        0 => {
            changed.username = Some(format!(
                "{}{}",
                profile.first_name.to_lowercase(),
                rng.range(10_000, 99_999)
            ));
        }
        1 => {
            changed.last_name = match &profile.last_name {
                Some(_) => None,
                None => Some((*rng.pick(LAST_NAMES)).to_owned()),
            };
        }
        _ => {
            let current = profile.language_code.as_deref();
            changed.language_code =
                Some(if current == Some("en") { "de" } else { "en" }.to_owned());
        }
    }
    changed
}

/// The body of a customer message, by weight: mostly text, then the media kinds Telegram has.
fn body(rng: &mut Rng, opener: bool) -> (MessageBody, Option<String>) {
    let kind = rng.weighted(&[
        (0u8, 760),
        (1, 80),
        (2, 15),
        (3, 40),
        (4, 5),
        (5, 40),
        (6, 5),
        (7, 25),
        (8, 10),
        (9, 10),
        (10, 5),
        (11, 5),
    ]);
    match kind.unwrap_or(0) {
        1 => (
            MessageBody::Photo {
                file: file(rng, "AgACAgIAAxkBAA"),
            },
            caption(rng),
        ),
        2 => (
            MessageBody::Video {
                file: file(rng, "BAACAgIAAxkBAA"),
            },
            caption(rng),
        ),
        3 => (
            MessageBody::Document {
                file: file(rng, "BQACAgIAAxkBAA"),
                file_name: Some(format!("invoice-{}.pdf", rng.range(1_000, 99_999))),
            },
            caption(rng),
        ),
        4 => (
            MessageBody::Audio {
                file: file(rng, "CQACAgIAAxkBAA"),
            },
            None,
        ),
        5 => (
            MessageBody::Voice {
                file: file(rng, "AwACAgIAAxkBAA"),
            },
            None,
        ),
        6 => (
            MessageBody::VideoNote {
                file: file(rng, "DQACAgIAAxkBAA"),
            },
            None,
        ),
        7 => (
            MessageBody::Sticker {
                file: file(rng, "CAACAgIAAxkBAA"),
                emoji: Some((*rng.pick(EMOJI)).to_owned()),
            },
            None,
        ),
        8 => (
            MessageBody::Animation {
                file: file(rng, "CgACAgIAAxkBAA"),
            },
            None,
        ),
        9 => (
            MessageBody::Location {
                latitude: rng.unit() * 120.0 - 60.0,
                longitude: rng.unit() * 340.0 - 170.0,
            },
            None,
        ),
        10 => (
            MessageBody::Venue {
                latitude: rng.unit() * 120.0 - 60.0,
                longitude: rng.unit() * 340.0 - 170.0,
                title: "Pickup point".to_owned(),
                address: format!("{} Market Street", rng.range(1, 400)),
            },
            None,
        ),
        11 => (
            MessageBody::Contact {
                phone_number: format!("+1555{:07}", rng.below(10_000_000)),
                first_name: (*rng.pick(FIRST_NAMES)).to_owned(),
                last_name: None,
                user_id: None,
            },
            None,
        ),
        _ => {
            let pool = if opener { OPENERS } else { FOLLOW_UPS };
            let template = *rng.pick(pool);
            (
                MessageBody::Text {
                    text: fill(rng, template),
                },
                None,
            )
        }
    }
}

/// A caption under media, sometimes.
fn caption(rng: &mut Rng) -> Option<String> {
    if rng.chance(0.4) {
        let template = *rng.pick(FOLLOW_UPS);
        Some(fill(rng, template))
    } else {
        None
    }
}

/// A message a customer sends: its content, sometimes forwarded from elsewhere.
pub(super) fn customer_message(rng: &mut Rng, opener: bool) -> MessageContent {
    let (body, caption) = body(rng, opener);
    let forwarded_from = rng.chance(0.03).then(|| match rng.below(3) {
        0 => ForwardOrigin::User {
            user_id: i64::try_from(rng.range(100_000_000, 999_999_999)).unwrap_or(0),
            name: (*rng.pick(FIRST_NAMES)).to_owned(),
        },
        1 => ForwardOrigin::HiddenUser {
            name: (*rng.pick(FIRST_NAMES)).to_owned(),
        },
        _ => ForwardOrigin::Channel {
            chat_id: -1_001_234_567_890,
            title: "Shop news".to_owned(),
            message_id: TelegramMessageId(i32::try_from(rng.range(1, 5_000)).unwrap_or(1)),
        },
    });
    MessageContent {
        body,
        caption,
        forwarded_from,
        forwarded_at: None,
        media: None,
        media_group_id: None,
        entities: Vec::new(),
    }
}

/// The text of a message after the customer corrected it.
pub(super) fn edited(rng: &mut Rng, content: &MessageContent) -> MessageContent {
    let body = match &content.body {
        MessageBody::Text { text } => MessageBody::Text {
            text: format!("{text} (order #{})", rng.range(1_000, 99_999)),
        },
        other => other.clone(),
    };
    let caption = content
        .kind()
        .takes_caption()
        .then(|| "sorry, this one".to_owned());
    MessageContent {
        body,
        caption,
        forwarded_from: content.forwarded_from.clone(),
        forwarded_at: None,
        media: None,
        media_group_id: None,
        entities: Vec::new(),
    }
}

/// An agent's answer, free text or a template's text, sometimes with an attachment.
pub(super) fn reply(rng: &mut Rng, template: Option<&str>, media: bool) -> ReplyContent {
    let text = match template {
        Some(text) => text.to_owned(),
        None => {
            let template = *rng.pick(REPLIES);
            fill(rng, template)
        }
    };
    let media = if media {
        let kind = if rng.chance(0.7) {
            MediaKind::Photo
        } else {
            MediaKind::Document
        };
        vec![OutgoingMedia {
            kind,
            file_id: format!("AgACAgIAAxkDAA{}", rng.token(48)),
        }]
    } else {
        Vec::new()
    };
    ReplyContent {
        text: Some(text),
        media,
    }
}

pub(super) fn note(rng: &mut Rng) -> String {
    let template = *rng.pick(NOTES);
    fill(rng, template)
}

pub(super) fn comment(rng: &mut Rng) -> String {
    (*rng.pick(COMMENTS)).to_owned()
}
