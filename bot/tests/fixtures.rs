//! Every file under `tests/fixtures/` is one Telegram update, written from the Bot API
//! documentation, and must read as exactly the [`Inbound`] listed for it here. A fixture without
//! an expectation (or the reverse) fails the suite, so none can go untested.
//!
//! The fixtures also serve as webhook payloads elsewhere: each is a standalone update with its
//! own `update_id`, and a private chat's id is its sender's id.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use bot::callback::CallbackData;
use bot::update::{BotCommand, Inbound, IncomingMessage, Sender, interpret};
use chrono::{DateTime, Utc};
use domain::content::{
    ChecklistTask, ForwardOrigin, MediaDetails, MessageBody, MessageContent, TelegramFile,
    TelegramMessageId, TextEntity, Thumbnail,
};
use domain::customer::CustomerProfile;
use domain::{CategoryId, CustomerId, TicketId};
use serde_json::Value;
use teloxide::types::{MaybeInaccessibleMessage, Message, MessageKind, Update, UpdateKind};
use uuid::Uuid;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// When the tests pretend to read the updates: after every date in the fixtures.
fn now() -> DateTime<Utc> {
    at(1_763_942_400)
}

fn at(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).expect("a valid timestamp")
}

fn anna() -> Sender {
    Sender {
        customer: CustomerId(6_123_456_789),
        profile: CustomerProfile {
            first_name: "Anna".into(),
            last_name: Some("Kowalska".into()),
            username: Some("anna_kowalska".into()),
            language_code: Some("pl".into()),
        },
    }
}

fn mehmet() -> Sender {
    Sender {
        customer: CustomerId(987_654_321),
        profile: CustomerProfile {
            first_name: "Mehmet".into(),
            last_name: None,
            username: None,
            language_code: Some("tr".into()),
        },
    }
}

fn lea() -> Sender {
    Sender {
        customer: CustomerId(5_550_001_112),
        profile: CustomerProfile {
            first_name: "Léa".into(),
            last_name: Some("Dubois".into()),
            username: Some("lea_d".into()),
            language_code: Some("fr".into()),
        },
    }
}

fn file(file_id: &str, file_unique_id: &str) -> TelegramFile {
    TelegramFile {
        file_id: file_id.into(),
        file_unique_id: file_unique_id.into(),
    }
}

fn content(body: MessageBody) -> MessageContent {
    MessageContent::of(body)
}

/// `content` with the formatting Telegram marked in its text or caption.
fn formatted(content: MessageContent, entities: &[(&str, u32, u32)]) -> MessageContent {
    MessageContent {
        entities: entities
            .iter()
            .map(|&(kind, offset, length)| TextEntity::new(kind, offset, length))
            .collect(),
        ..content
    }
}

/// `content` with what Telegram told about its file.
fn with_media(content: MessageContent, media: MediaDetails) -> MessageContent {
    MessageContent {
        media: Some(Box::new(media)),
        ..content
    }
}

fn thumbnail(
    file_id: &str,
    file_unique_id: &str,
    width: u32,
    height: u32,
    size: u64,
) -> Option<Thumbnail> {
    Some(Thumbnail {
        file: file(file_id, file_unique_id),
        width,
        height,
        file_size: Some(size),
    })
}

/// A photo's details: the largest size's dimensions and bytes, the smallest as thumbnail.
fn photo_details(width: u32, height: u32, size: u64, thumb: Option<Thumbnail>) -> MediaDetails {
    MediaDetails {
        file_size: Some(size),
        width: Some(width),
        height: Some(height),
        thumbnail: thumb,
        ..MediaDetails::default()
    }
}

/// `content` forwarded at `unix`.
fn forwarded_at(content: MessageContent, unix: i64) -> MessageContent {
    MessageContent {
        forwarded_at: Some(at(unix)),
        ..content
    }
}

fn in_album(content: MessageContent, group: &str) -> MessageContent {
    MessageContent {
        media_group_id: Some(group.into()),
        ..content
    }
}

fn captioned(body: MessageBody, caption: &str) -> MessageContent {
    MessageContent {
        caption: Some(caption.into()),
        ..content(body)
    }
}

fn forwarded(body: MessageBody, origin: ForwardOrigin) -> MessageContent {
    MessageContent {
        forwarded_from: Some(origin),
        ..content(body)
    }
}

fn text(text: &str) -> MessageBody {
    MessageBody::Text { text: text.into() }
}

fn message(sender: Sender, id: i32, content: MessageContent, unix: i64) -> Inbound {
    Inbound::Message {
        sender,
        message: IncomingMessage {
            telegram_message_id: TelegramMessageId(id),
            reply_to: None,
            content,
        },
        at: at(unix),
    }
}

fn command(sender: Sender, command: BotCommand, id: i32, unix: i64) -> Inbound {
    Inbound::Command {
        sender,
        command,
        telegram_message_id: TelegramMessageId(id),
        at: at(unix),
    }
}

fn ignored(reason: &'static str) -> Inbound {
    Inbound::Ignored { reason }
}

fn uuid(text: &str) -> Uuid {
    Uuid::parse_str(text).expect("a valid uuid")
}

/// What each fixture, by file name, must read as.
fn expectations() -> BTreeMap<&'static str, Inbound> {
    BTreeMap::from([
        (
            "message_text.json",
            message(
                anna(),
                211,
                formatted(
                    content(text(
                        "Hello, my order #48213 has not arrived yet. Tracking says https://track.example.com/48213",
                    )),
                    &[("url", 58, 31)],
                ),
                1_763_895_600,
            ),
        ),
        (
            "message_text_unknown_command.json",
            message(
                anna(),
                212,
                formatted(
                    content(text("/orders please show me my orders")),
                    &[("bot_command", 0, 7)],
                ),
                1_763_895_660,
            ),
        ),
        (
            "message_photo.json",
            message(
                anna(),
                213,
                with_media(
                    content(MessageBody::Photo {
                        file: file(
                            "AgACAgIAAxkBAAIA1WkjYQABc2xVY2t7mVu3pY5aX0ZbAAJq8jEbQ1YgSXs9xW0y0a1rAQADAgADeQADNgQ",
                            "AQADavIxG0NWIEl-",
                        ),
                    }),
                    photo_details(
                        1280,
                        960,
                        158_310,
                        thumbnail(
                            "AgACAgIAAxkBAAIA1WkjYQABc2xVY2t7mVu3pY5aX0ZbAAJq8jEbQ1YgSXs9xW0y0a1rAQADAgADcwADNgQ",
                            "AQADavIxG0NWIEl4",
                            90,
                            67,
                            1204,
                        ),
                    ),
                ),
                1_763_895_720,
            ),
        ),
        (
            "message_photo_caption.json",
            message(
                anna(),
                214,
                formatted(
                    with_media(
                        captioned(
                            MessageBody::Photo {
                                file: file(
                                    "AgACAgIAAxkBAAIA1mkjYRLx0qKzG9v1bQkPq3Zr2mXhAAJr8jEbQ1YgSWQ3a5cJk7pZAQADAgADeAADNgQ",
                                    "AQADa_IxG0NWIEl9",
                                ),
                            },
                            "The box arrived crushed, see the corner",
                        ),
                        photo_details(
                            600,
                            800,
                            60_127,
                            thumbnail(
                                "AgACAgIAAxkBAAIA1mkjYRLx0qKzG9v1bQkPq3Zr2mXhAAJr8jEbQ1YgSWQ3a5cJk7pZAQADAgADcwADNgQ",
                                "AQADa_IxG0NWIEl4",
                                67,
                                90,
                                987,
                            ),
                        ),
                    ),
                    &[("bold", 16, 7)],
                ),
                1_763_895_780,
            ),
        ),
        (
            "message_video.json",
            message(
                anna(),
                215,
                with_media(
                    content(MessageBody::Video {
                        file: file(
                            "BAACAgIAAxkBAAIA12kjYSnyNp-LEMdDPHVrxN5GLdB-AAJPcQACQ1YgSdVdr2MypPGVNgQ",
                            "AgADT3EAAkNWIEk",
                        ),
                    }),
                    MediaDetails {
                        file_name: Some("unboxing.mp4".into()),
                        mime_type: Some("video/mp4".into()),
                        file_size: Some(2_984_113),
                        width: Some(720),
                        height: Some(1280),
                        duration: Some(14),
                        thumbnail: thumbnail(
                            "AAMCAgADGQEAAgDXaSNhKfI2n4sQx0M8dWvE3kYt0H4AAk9xAAJDViBJ1V2vYzKk8ZUBAAdtAAM2BA",
                            "AQADT3EAAkNWIEly",
                            180,
                            320,
                            12_408,
                        ),
                        ..MediaDetails::default()
                    },
                ),
                1_763_895_840,
            ),
        ),
        (
            "message_document.json",
            message(
                anna(),
                216,
                with_media(
                    captioned(
                        MessageBody::Document {
                            file: file(
                                "BQACAgIAAxkBAAIA2GkjYUPVtHF96O1b-stHNhn-StW0AAJQcQACQ1YgScPFd5toNUc0NgQ",
                                "AgADUHEAAkNWIEk",
                            ),
                            file_name: Some("invoice-48213.pdf".into()),
                        },
                        "Invoice attached",
                    ),
                    MediaDetails {
                        mime_type: Some("application/pdf".into()),
                        file_size: Some(184_320),
                        thumbnail: thumbnail(
                            "AAMCAgADGQEAAgDYaSNhQ9W0cX3o7Vv6y0c2Gf5K1bQAAlBxAAJDViBJw8V3m2g1RzQBAAdtAAM2BA",
                            "AQADUHEAAkNWIEly",
                            226,
                            320,
                            9876,
                        ),
                        ..MediaDetails::default()
                    },
                ),
                1_763_895_900,
            ),
        ),
        (
            "message_audio.json",
            message(
                anna(),
                217,
                with_media(
                    captioned(
                        MessageBody::Audio {
                            file: file(
                                "CQACAgIAAxkBAAIA2WkjYVhM0n5Jp7cQ2vB6Hc8sZ1lKAAJRcQACQ1YgSeq3FJ8hYw1fNgQ",
                                "AgADUXEAAkNWIEk",
                            ),
                        },
                        "What the courier told me",
                    ),
                    MediaDetails {
                        file_name: Some("call-recording.mp3".into()),
                        mime_type: Some("audio/mpeg".into()),
                        file_size: Some(2_995_214),
                        duration: Some(187),
                        title: Some("Call with courier".into()),
                        performer: Some("Anna".into()),
                        ..MediaDetails::default()
                    },
                ),
                1_763_895_960,
            ),
        ),
        (
            "message_voice.json",
            message(
                anna(),
                218,
                with_media(
                    content(MessageBody::Voice {
                        file: file(
                            "AwACAgIAAxkBAAIA2mkjYW3f8gH2kXo4q9Zb0c1yTn5rAAJScQACQ1YgSb1Wm7n0Kc1xNgQ",
                            "AgADUnEAAkNWIEk",
                        ),
                    }),
                    MediaDetails {
                        mime_type: Some("audio/ogg".into()),
                        file_size: Some(31_854),
                        duration: Some(9),
                        ..MediaDetails::default()
                    },
                ),
                1_763_896_020,
            ),
        ),
        (
            "message_video_note.json",
            message(
                anna(),
                219,
                with_media(
                    content(MessageBody::VideoNote {
                        file: file(
                            "DQACAgIAAxkBAAIA22kjYYKtbx9HuXGd5vGMdi8O0uKWAAJTcQACQ1YgSe2tpENal9kdNgQ",
                            "AgADU3EAAkNWIEk",
                        ),
                    }),
                    MediaDetails {
                        file_size: Some(402_113),
                        width: Some(384),
                        height: Some(384),
                        duration: Some(6),
                        thumbnail: thumbnail(
                            "AAMCAgADGQEAAgDbaSNhgq1vH0e5cZ3m8Yx2Lw7S4pYAAlNxAAJDViBJ7a2kQ1qX2R0BAAdtAAM2BA",
                            "AQADU3EAAkNWIEly",
                            320,
                            320,
                            10_240,
                        ),
                        ..MediaDetails::default()
                    },
                ),
                1_763_896_080,
            ),
        ),
        (
            "message_sticker.json",
            message(
                anna(),
                220,
                with_media(
                    content(MessageBody::Sticker {
                        file: file(
                            "CAACAgIAAxkBAAIA3GkjYZdMdm-a04EtZGIUPJiae7jdAAI9QAACGFdASausV2x6t307NgQ",
                            "AgADPUAAAhhXQEk",
                        ),
                        emoji: Some("😢".into()),
                    }),
                    MediaDetails {
                        file_size: Some(28_764),
                        width: Some(512),
                        height: Some(512),
                        thumbnail: thumbnail(
                            "AAMCAgADGQEAAgDcaSNhl0x2b5rTgS1kYhQ8mJp7uN0AAj1AAAIYV0BJq6xXbHq3fTsBAAdtAAM2BA",
                            "AQADPUAAAhhXQEly",
                            128,
                            128,
                            5830,
                        ),
                        set_name: Some("SadCats".into()),
                        animated: Some(false),
                        video: Some(false),
                        ..MediaDetails::default()
                    },
                ),
                1_763_896_140,
            ),
        ),
        (
            "message_animation.json",
            message(
                anna(),
                221,
                with_media(
                    captioned(
                        MessageBody::Animation {
                            file: file(
                                "CgACAgQAAxkBAAIA3WkjYaxNKerfMidpGG0NXFdMUayeAALNBQACG1VEU5yXeYtIU-siNgQ",
                                "AgADzQUAAhtVRFM",
                            ),
                        },
                        "me waiting for my parcel",
                    ),
                    MediaDetails {
                        file_name: Some("still-waiting.mp4".into()),
                        mime_type: Some("video/mp4".into()),
                        file_size: Some(162_544),
                        width: Some(480),
                        height: Some(270),
                        duration: Some(3),
                        thumbnail: thumbnail(
                            "AAMCBAADGQEAAgDdaSNhrE0p6t8yJ2kYbQ1cV0xRrJ4AAs0FAAIbVURTnJd5i0hT6yIBAAdtAAM2BA",
                            "AQADzQUAAhtVRFNy",
                            320,
                            180,
                            7720,
                        ),
                        ..MediaDetails::default()
                    },
                ),
                1_763_896_200,
            ),
        ),
        (
            "message_location.json",
            message(
                mehmet(),
                57,
                content(MessageBody::Location {
                    latitude: 41.008_238,
                    longitude: 28.978_359,
                }),
                1_763_896_260,
            ),
        ),
        (
            "message_venue.json",
            message(
                mehmet(),
                58,
                content(MessageBody::Venue {
                    latitude: 41.025_658,
                    longitude: 28.974_155,
                    title: "Galata Kulesi".into(),
                    address: "Bereketzade, Galata Kulesi, 34421 Beyoğlu/İstanbul".into(),
                }),
                1_763_896_320,
            ),
        ),
        (
            "message_contact.json",
            message(
                mehmet(),
                59,
                content(MessageBody::Contact {
                    phone_number: "+905321234567".into(),
                    first_name: "Mehmet".into(),
                    last_name: Some("Yılmaz".into()),
                    user_id: Some(987_654_321),
                }),
                1_763_896_380,
            ),
        ),
        (
            "message_forwarded_user.json",
            message(
                lea(),
                1042,
                forwarded_at(
                    forwarded(
                        text("Le colis a été laissé chez le voisin du 3e."),
                        ForwardOrigin::User {
                            user_id: 1_234_509_876,
                            name: "Marc Petit".into(),
                        },
                    ),
                    1_763_810_000,
                ),
                1_763_896_440,
            ),
        ),
        (
            "message_forwarded_hidden_user.json",
            message(
                lea(),
                1043,
                MessageContent {
                    body: MessageBody::Photo {
                        file: file(
                            "AgACAgQAAxkBAAIEE2kjYgTn0kVb7L1qQ3d2nS8xWm0vAAJ2vjEbd1koUhXg8cQyZb1UAQADAgADbQADNgQ",
                            "AQADdr4xG3dZKFJy",
                        ),
                    },
                    caption: Some("Proof of delivery".into()),
                    forwarded_from: Some(ForwardOrigin::HiddenUser {
                        name: "Courier Jean".into(),
                    }),
                    forwarded_at: Some(at(1_763_811_000)),
                    entities: Vec::new(),
                    media: Some(Box::new(photo_details(
                        240,
                        320,
                        19_870,
                        thumbnail(
                            "AgACAgQAAxkBAAIEE2kjYgTn0kVb7L1qQ3d2nS8xWm0vAAJ2vjEbd1koUhXg8cQyZb1UAQADAgADcwADNgQ",
                            "AQADdr4xG3dZKFJ4",
                            67,
                            90,
                            1422,
                        ),
                    ))),
                    media_group_id: None,
                },
                1_763_896_500,
            ),
        ),
        (
            "message_forwarded_chat.json",
            message(
                lea(),
                1044,
                forwarded_at(
                    forwarded(
                        text("Livraisons du jour déposées à la loge."),
                        ForwardOrigin::Chat {
                            chat_id: -1_001_987_654_321,
                            title: "Résidence Les Tilleuls".into(),
                        },
                    ),
                    1_763_812_000,
                ),
                1_763_896_560,
            ),
        ),
        (
            "message_forwarded_channel.json",
            message(
                lea(),
                1045,
                formatted(
                    forwarded_at(
                        forwarded(
                            text("Black Friday: free shipping on every order until Sunday!"),
                            ForwardOrigin::Channel {
                                chat_id: -1_001_122_334_455,
                                title: "Shop News".into(),
                                message_id: TelegramMessageId(731),
                            },
                        ),
                        1_763_640_000,
                    ),
                    &[("bold", 0, 12)],
                ),
                1_763_896_620,
            ),
        ),
        (
            "message_text_external_reply.json",
            // teloxide cannot read a quote of another chat's text; the message is read again
            // without it.
            message(
                lea(),
                1046,
                content(text("Is this offer still valid for my order?")),
                1_763_896_700,
            ),
        ),
        (
            "message_photo_external_reply.json",
            message(
                lea(),
                1047,
                with_media(
                    captioned(
                        MessageBody::Photo {
                            file: file("AgACAgQAAxkBAAIEF2kjYqExa2", "AQADeL4xG3dZKFJy"),
                        },
                        "Same box as in your post",
                    ),
                    photo_details(
                        800,
                        600,
                        48_211,
                        thumbnail(
                            "AgACAgQAAxkBAAIEF2kjYqExa1",
                            "AQADeL4xG3dZKFJ-",
                            90,
                            67,
                            1311,
                        ),
                    ),
                ),
                1_763_896_760,
            ),
        ),
        (
            "message_album_1.json",
            message(
                anna(),
                230,
                in_album(
                    with_media(
                        captioned(
                            MessageBody::Photo {
                                file: file("AgACAgIAAxkBAAIA4GkjYw1l", "AQADc1IxG0NWIEly"),
                            },
                            "Three sides of the damaged box",
                        ),
                        photo_details(
                            1280,
                            960,
                            98_001,
                            thumbnail("AgACAgIAAxkBAAIA4GkjYw1s", "AQADc1IxG0NWIEl-", 90, 68, 1201),
                        ),
                    ),
                    "13874620938471625",
                ),
                1_763_897_600,
            ),
        ),
        (
            "message_album_2.json",
            message(
                anna(),
                231,
                in_album(
                    with_media(
                        content(MessageBody::Photo {
                            file: file("AgACAgIAAxkBAAIA4GkjYw2l", "AQADc2IxG0NWIEly"),
                        }),
                        photo_details(
                            1280,
                            960,
                            98_002,
                            thumbnail("AgACAgIAAxkBAAIA4GkjYw2s", "AQADc2IxG0NWIEl-", 90, 68, 1202),
                        ),
                    ),
                    "13874620938471625",
                ),
                1_763_897_600,
            ),
        ),
        (
            "message_album_3.json",
            message(
                anna(),
                232,
                in_album(
                    with_media(
                        content(MessageBody::Video {
                            file: file("BAACAgIAAxkBAAIA6GkjY1d", "AgADVHEAAkNWIEk"),
                        }),
                        MediaDetails {
                            mime_type: Some("video/mp4".into()),
                            file_size: Some(1_849_201),
                            width: Some(1080),
                            height: Some(1920),
                            duration: Some(6),
                            thumbnail: thumbnail(
                                "AAMCAgADGQEAAgDoaSNjV3",
                                "AQADVHEAAkNWIEly",
                                180,
                                320,
                                9100,
                            ),
                            ..MediaDetails::default()
                        },
                    ),
                    "13874620938471625",
                ),
                1_763_897_600,
            ),
        ),
        (
            "message_poll.json",
            message(
                anna(),
                226,
                content(MessageBody::Poll {
                    question: "Which delivery slot suits you?".into(),
                    options: vec!["Morning".into(), "Afternoon".into(), "Evening".into()],
                    quiz: false,
                    multiple_answers: false,
                }),
                1_763_897_380,
            ),
        ),
        (
            "message_dice.json",
            message(
                anna(),
                227,
                content(MessageBody::Dice {
                    emoji: "🎲".into(),
                    value: 4,
                }),
                1_763_897_440,
            ),
        ),
        (
            "message_pinned.json",
            message(
                anna(),
                228,
                content(MessageBody::Service {
                    action: "pinned_message".into(),
                    message: Some(TelegramMessageId(224)),
                }),
                1_763_897_500,
            ),
        ),
        (
            "message_write_access_allowed.json",
            message(
                anna(),
                234,
                content(MessageBody::Service {
                    action: "write_access_allowed".into(),
                    message: None,
                }),
                1_763_897_800,
            ),
        ),
        (
            "message_story.json",
            message(
                lea(),
                1048,
                content(MessageBody::Story {
                    chat_id: -1_001_122_334_455,
                    story_id: 42,
                }),
                1_763_896_820,
            ),
        ),
        (
            "message_checklist.json",
            message(
                anna(),
                233,
                content(MessageBody::Checklist {
                    title: "Before I send it back".into(),
                    tasks: vec![
                        ChecklistTask {
                            text: "Print the return label".into(),
                            done: false,
                        },
                        ChecklistTask {
                            text: "Pack the shoes".into(),
                            done: true,
                        },
                    ],
                }),
                1_763_897_700,
            ),
        ),
        (
            "message_paid_media.json",
            message(
                lea(),
                1049,
                forwarded_at(
                    forwarded(
                        MessageBody::PaidMedia {
                            star_count: 25,
                            media: vec!["preview".into(), "video".into()],
                        },
                        ForwardOrigin::Channel {
                            chat_id: -1_001_122_334_455,
                            title: "Shop News".into(),
                            message_id: TelegramMessageId(735),
                        },
                    ),
                    1_763_801_000,
                ),
                1_763_896_880,
            ),
        ),
        (
            "message_giveaway.json",
            // teloxide keeps no forward origin on a giveaway.
            message(
                lea(),
                1050,
                content(MessageBody::Unsupported {
                    kind: "giveaway".into(),
                }),
                1_763_896_940,
            ),
        ),
        (
            "message_reply.json",
            Inbound::Message {
                sender: anna(),
                message: IncomingMessage {
                    telegram_message_id: TelegramMessageId(225),
                    reply_to: Some(TelegramMessageId(224)),
                    content: content(text("It is PL4821300017")),
                },
                at: at(1_763_897_000),
            },
        ),
        (
            "edited_message.json",
            Inbound::Edited {
                sender: anna(),
                telegram_message_id: TelegramMessageId(211),
                content: content(text("Hello, my order #48231 has not arrived yet.")),
                at: at(1_763_895_690),
            },
        ),
        (
            "callback_query_category.json",
            Inbound::Callback {
                sender: mehmet(),
                query_id: "4628719385017249121".into(),
                data: Some(CallbackData::Category(CategoryId::from_uuid(uuid(
                    "0192f6a4-3c1e-7a2b-9d4e-5f6a7b8c9d0e",
                )))),
                at: now(),
            },
        ),
        (
            "callback_query_rating.json",
            Inbound::Callback {
                sender: anna(),
                query_id: "26301598719384125".into(),
                data: Some(CallbackData::Rating {
                    ticket: TicketId::from_uuid(uuid("0192f6a5-5b2c-7d3e-8f40-a1b2c3d4e5f6")),
                    rating: 5,
                }),
                at: now(),
            },
        ),
        (
            "my_chat_member_kicked.json",
            Inbound::BotBlocked {
                customer: CustomerId(987_654_321),
                at: at(1_763_901_000),
            },
        ),
        (
            "my_chat_member_member.json",
            Inbound::BotUnblocked {
                customer: CustomerId(987_654_321),
                at: at(1_763_904_600),
            },
        ),
        (
            "command_start.json",
            command(mehmet(), BotCommand::Start, 51, 1_763_890_000),
        ),
        (
            "command_start_with_payload.json",
            command(lea(), BotCommand::Start, 1038, 1_763_889_000),
        ),
        (
            "command_start_with_bot_name.json",
            command(mehmet(), BotCommand::Start, 52, 1_763_890_060),
        ),
        (
            "command_close.json",
            command(anna(), BotCommand::Close, 241, 1_763_900_100),
        ),
        (
            "command_help.json",
            command(anna(), BotCommand::Help, 242, 1_763_900_160),
        ),
        ("ignored_group_message.json", ignored("group message")),
        ("ignored_basic_group_command.json", ignored("group message")),
        ("ignored_channel_post.json", ignored("channel post")),
        ("ignored_inline_query.json", ignored("inline mode")),
    ])
}

fn fixture_names() -> BTreeSet<String> {
    fs::read_dir(fixtures_dir())
        .expect("the fixtures directory")
        .map(|entry| {
            entry
                .expect("a directory entry")
                .file_name()
                .into_string()
                .expect("a UTF-8 file name")
        })
        .collect()
}

fn raw(name: &str) -> Value {
    let text = fs::read_to_string(fixtures_dir().join(name)).expect("a readable fixture");
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{name} is not JSON: {error}"))
}

/// Reads an update as teloxide does, refusing the two ways teloxide loses data silently.
fn update(name: &str, json: Value) -> Update {
    let update = parse(&json).unwrap_or_else(|error| panic!("{name} is not an update: {error}"));
    let messages: Vec<&Message> = match &update.kind {
        UpdateKind::Error(value) => panic!("{name} reads as UpdateKind::Error: {value}"),
        UpdateKind::Message(message)
        | UpdateKind::EditedMessage(message)
        | UpdateKind::ChannelPost(message)
        | UpdateKind::EditedChannelPost(message) => vec![message],
        UpdateKind::CallbackQuery(query) => query.regular_message().into_iter().collect(),
        _ => vec![],
    };
    for message in messages {
        assert_complete(name, message);
    }
    update
}

/// From text, as a webhook or `getUpdates` body arrives: teloxide reads the update's kind from a
/// borrowed key, which `serde_json::from_value` cannot lend, so that path yields
/// `UpdateKind::Error` for every update.
fn parse(json: &Value) -> serde_json::Result<Update> {
    serde_json::from_str(&json.to_string())
}

fn assert_complete(name: &str, message: &Message) {
    match &message.kind {
        MessageKind::Empty {} => panic!(
            "{name}: message {} reads as MessageKind::Empty (a field teloxide requires is missing)",
            message.id
        ),
        MessageKind::Common(common) => {
            if let Some(replied) = &common.reply_to_message {
                assert_complete(name, replied);
            }
        }
        MessageKind::Pinned(pinned) => {
            if let MaybeInaccessibleMessage::Regular(pinned) = &*pinned.pinned {
                assert_complete(name, pinned);
            }
        }
        _ => {}
    }
}

/// Fixtures of real updates teloxide reads without their content, which the bot reads again
/// from their JSON.
const UNREADABLE_BY_TELOXIDE: &[&str] = &["message_text_external_reply.json"];

/// Reads a fixture as the webhook and polling do: teloxide first, then the JSON for what
/// teloxide kept too little of.
fn read(name: &str) -> Update {
    let json = raw(name);
    if UNREADABLE_BY_TELOXIDE.contains(&name) {
        return as_posted(&json);
    }
    let mut update = update(name, json.clone());
    bot::update::with_raw(&mut update, json);
    update
}

#[test]
fn every_fixture_reads_as_its_expectation() {
    let expectations = expectations();
    let mut failures = Vec::new();
    for name in fixture_names() {
        let Some(expected) = expectations.get(name.as_str()) else {
            failures.push(format!("{name}: no expectation; add one to expectations()"));
            continue;
        };
        let actual = interpret(&read(&name), now());
        if &actual != expected {
            failures.push(format!(
                "{name}:\n  expected {expected:?}\n  actual   {actual:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_expectation_has_its_fixture() {
    let names = fixture_names();
    let missing: Vec<_> = expectations()
        .into_keys()
        .filter(|name| !names.contains(*name))
        .collect();
    assert!(missing.is_empty(), "no fixture file for {missing:?}");
}

#[test]
fn fixtures_are_standalone_updates_from_private_chats_or_meant_to_be_ignored() {
    let mut seen = BTreeMap::new();
    for name in fixture_names() {
        let json = raw(&name);
        let id = json["update_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} has no update_id"));
        if let Some(other) = seen.insert(id, name.clone()) {
            panic!("{name} and {other} share update_id {id}");
        }
        for kind in ["message", "edited_message"] {
            let message = &json[kind];
            if message["chat"]["type"] == "private" {
                assert_eq!(
                    message["chat"]["id"], message["from"]["id"],
                    "{name}: a private chat's id is its sender's id"
                );
            }
        }
        let change = &json["my_chat_member"];
        if change.is_object() {
            assert_eq!(change["chat"]["id"], change["from"]["id"], "{name}");
        }
    }
}

#[test]
fn the_fixtures_carry_the_fields_telegram_duplicates_for_old_clients() {
    // Without the duplicates the fixtures would not show that the right kind wins.
    assert!(raw("message_animation.json")["message"]["document"].is_object());
    assert!(raw("message_venue.json")["message"]["location"].is_object());
}

#[test]
fn the_largest_photo_size_wins_whatever_the_order() {
    let mut json = raw("message_photo.json");
    if let Some(sizes) = json["message"]["photo"].as_array_mut() {
        sizes.reverse();
        sizes.swap(0, 2);
    }
    let reordered = interpret(&update("reordered photo", json), now());
    assert_eq!(reordered, expectations()["message_photo.json"]);
}

#[test]
fn an_edit_without_an_edit_date_is_dated_when_read() {
    let mut json = raw("edited_message.json");
    json["edited_message"]
        .as_object_mut()
        .expect("an edited message")
        .remove("edit_date");
    let Inbound::Edited { at, .. } = interpret(&update("undated edit", json), now()) else {
        panic!("an edit reads as Edited");
    };
    assert_eq!(at, now());
}

#[test]
fn a_private_message_without_a_sender_is_ignored() {
    let mut json = raw("message_text.json");
    json["message"]
        .as_object_mut()
        .expect("a message")
        .remove("from");
    assert_eq!(
        interpret(&update("anonymous message", json), now()),
        ignored("private message without a sender")
    );
}

#[test]
fn a_forwarded_command_is_a_message_to_read_not_an_order() {
    let mut json = raw("message_forwarded_user.json");
    json["message"]["text"] = "/close".into();
    let Inbound::Message { message, .. } = interpret(&update("forwarded /close", json), now())
    else {
        panic!("a forwarded command reads as a message");
    };
    assert_eq!(message.content.body, text("/close"));
}

#[test]
fn an_edited_command_is_an_edit() {
    let mut json = raw("command_help.json");
    let message = json["message"].take();
    json["edited_message"] = message;
    json["edited_message"]["edit_date"] = 1_763_900_200.into();
    json.as_object_mut().expect("an update").remove("message");
    assert_eq!(
        interpret(&update("edited /help", json), now()),
        Inbound::Edited {
            sender: anna(),
            telegram_message_id: TelegramMessageId(242),
            content: formatted(content(text("/help")), &[("bot_command", 0, 5)]),
            at: at(1_763_900_200),
        }
    );
}

#[test]
fn buttons_we_did_not_write_carry_no_data() {
    for data in [Value::from("csat:not-a-ticket:5"), Value::Null] {
        let mut json = raw("callback_query_rating.json");
        json["callback_query"]["data"] = data;
        let Inbound::Callback { data, .. } = interpret(&update("foreign button", json), now())
        else {
            panic!("a button press reads as Callback");
        };
        assert_eq!(data, None);
    }
}

#[test]
fn a_button_pressed_in_a_group_is_ignored() {
    let mut json = raw("callback_query_category.json");
    json["callback_query"]["message"]["chat"] = serde_json::json!({
        "id": -1_001_555_666_777_i64,
        "title": "Shop customers club",
        "type": "supergroup"
    });
    assert_eq!(
        interpret(&update("group button", json), now()),
        ignored("button pressed outside a private chat")
    );
}

/// `json` as the webhook reads it: teloxide first, then the JSON itself for what teloxide
/// could not read.
fn as_posted(json: &Value) -> Update {
    let mut update = parse(json).expect("still an update");
    bot::update::with_raw(&mut update, json.clone());
    update
}

#[test]
fn media_teloxide_cannot_read_is_kept_as_what_can_be_read() {
    // The trap the fixture checks guard against: without `file_unique_id` teloxide keeps the
    // message but drops its content. Polling has nothing more to go on than teloxide; the
    // webhook reads the JSON again and keeps the kind and the caption.
    let mut json = raw("message_voice.json");
    json["message"]["voice"]
        .as_object_mut()
        .expect("a voice")
        .remove("file_unique_id");
    json["message"]["caption"] = "listen".into();
    let polled = parse(&json).expect("still an update");
    let unknown = message(
        anna(),
        218,
        content(MessageBody::Unsupported {
            kind: "unknown".into(),
        }),
        1_763_896_020,
    );
    assert_eq!(interpret(&polled, now()), unknown);
    let voice = message(
        anna(),
        218,
        captioned(
            MessageBody::Unsupported {
                kind: "voice".into(),
            },
            "listen",
        ),
        1_763_896_020,
    );
    assert_eq!(interpret(&as_posted(&json), now()), voice);
}

#[test]
fn a_text_quoting_another_chat_is_read_again_from_its_json() {
    let json = raw("message_text_external_reply.json");
    // teloxide alone reads it without content: the reason the second reading exists.
    let UpdateKind::Message(read) = parse(&json).expect("an update").kind else {
        panic!("not a message");
    };
    assert!(matches!(read.kind, MessageKind::Empty {}));
    // The webhook and polling both hand the JSON over with `with_raw`.
    assert_eq!(
        &interpret(&as_posted(&json), now()),
        &expectations()["message_text_external_reply.json"]
    );
}

#[test]
fn a_message_even_the_json_cannot_tell_is_unreadable() {
    let mut json = raw("message_text_external_reply.json");
    json["message"]
        .as_object_mut()
        .expect("a message")
        .remove("date");
    assert_eq!(
        interpret(&as_posted(&json), now()),
        Inbound::Unreadable {
            reason: "a private message without a readable sender, id or date"
        }
    );
}

#[test]
fn a_paid_photo_teloxide_reads_as_empty_is_read_from_the_json_on_the_webhook() {
    // Telegram sends a paid photo's sizes as a list; teloxide expects one size and loses the
    // whole message.
    let mut json = raw("message_paid_media.json");
    json["message"]["paid_media"]["paid_media"][1] = serde_json::json!({
        "type": "photo",
        "photo": [{"file_id": "AgAD", "file_unique_id": "AQAD", "width": 90, "height": 90}]
    });
    json["message"]["caption"] = "New collection".into();
    let Inbound::Message { message, .. } = interpret(&as_posted(&json), now()) else {
        panic!("not read as a message");
    };
    assert_eq!(
        message.content.body,
        MessageBody::Unsupported {
            kind: "paid_media".into()
        }
    );
    assert_eq!(message.content.caption.as_deref(), Some("New collection"));
}

#[test]
fn an_update_of_a_kind_this_code_does_not_know_is_unreadable() {
    let update = parse(&serde_json::json!({
        "update_id": 850_199_999,
        "some_future_update": { "id": 1 }
    }))
    .expect("still an update");
    assert_eq!(
        interpret(&update, now()),
        Inbound::Unreadable {
            reason: "an update of a kind this code does not know"
        }
    );
}
