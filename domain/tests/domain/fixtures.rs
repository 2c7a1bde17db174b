//! Stored JSON samples of every event, in every schema version ever written.
//!
//! `tests/fixtures/events/<event type>.v<version>.json` holds one payload each. The tests prove
//! that (1) every stored form the code can read has a sample, (2) every sample decodes, (3) the
//! code still writes exactly the stored JSON for current versions (a changed payload shape
//! needs a new schema version and an upcast), and (4) encoding then decoding round-trips.
//!
//! To add the sample of a new event: add it to `samples()` and run the tests once with
//! `BLESS_FIXTURES=1`; existing files are never overwritten, so old versions stay as written.

use std::collections::BTreeSet;
use std::path::PathBuf;

use domain::codec::StoredForm;
use domain::content::{
    ForwardOrigin, MessageBody, MessageContent, TelegramFile, TelegramMessageId,
};
use domain::customer::CustomerEvent;
use domain::ticket::{Channel, CustomerMessagePosted, TicketEvent};
use domain::{AnyEvent, DecodeError, DomainEvent};

use crate::samples::{at, message, samples};

fn fixture_path(event_type: &str, schema_version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(format!("{event_type}.v{schema_version}.json"))
}

fn read_fixture(event_type: &str, schema_version: u32) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(fixture_path(event_type, schema_version)).ok()?;
    Some(serde_json::from_str(&text).expect("fixtures are valid JSON"))
}

fn bless(event: &AnyEvent) {
    let path = fixture_path(event.event_type(), event.schema_version());
    if std::env::var_os("BLESS_FIXTURES").is_some() && !path.exists() {
        let json = serde_json::to_string_pretty(event).expect("events serialize");
        std::fs::write(&path, json + "\n").expect("fixture directory is writable");
    }
}

fn decode(event_type: &str, schema_version: u32, payload: &serde_json::Value) -> AnyEvent {
    AnyEvent::decode(event_type, schema_version, payload)
        .unwrap_or_else(|e| panic!("{event_type} v{schema_version} decodes: {e}"))
}

#[test]
fn there_is_one_sample_of_every_event_type_the_code_writes() {
    let written: BTreeSet<(&str, u32)> = samples()
        .iter()
        .map(|e| (e.event_type(), e.schema_version()))
        .collect();
    let current: BTreeSet<(&str, u32)> = AnyEvent::all_stored_forms()
        .into_iter()
        .filter(|form| form.current)
        .map(|form| (form.event_type, form.schema_version))
        .collect();
    assert_eq!(written, current);
    assert_eq!(samples().len(), current.len(), "one sample per event type");
}

#[test]
fn every_stored_form_has_a_fixture_that_decodes() {
    for event in samples() {
        bless(&event);
    }
    let mut missing = Vec::new();
    for StoredForm {
        event_type,
        schema_version,
        ..
    } in AnyEvent::all_stored_forms()
    {
        match read_fixture(event_type, schema_version) {
            Some(payload) => {
                let event = decode(event_type, schema_version, &payload);
                assert_eq!(event.event_type(), event_type);
            }
            None => missing.push(fixture_path(event_type, schema_version)),
        }
    }
    assert!(
        missing.is_empty(),
        "missing fixtures (run with BLESS_FIXTURES=1 to write them): {missing:#?}"
    );
}

#[test]
fn every_fixture_file_belongs_to_a_known_stored_form() {
    let known: BTreeSet<String> = AnyEvent::all_stored_forms()
        .iter()
        .map(|form| format!("{}.v{}.json", form.event_type, form.schema_version))
        .collect();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
    for entry in std::fs::read_dir(dir).expect("fixture directory exists") {
        let name = entry
            .expect("readable entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(known.contains(&name), "{name} matches no stored form");
    }
}

#[test]
fn current_versions_are_written_exactly_as_stored_and_round_trip() {
    for event in samples() {
        let (event_type, version) = (event.event_type(), event.schema_version());
        let encoded = serde_json::to_value(&event).expect("events serialize");
        if let Some(stored) = read_fixture(event_type, version) {
            assert_eq!(
                encoded, stored,
                "{event_type} v{version} changed shape: bump its schema version and upcast"
            );
        }
        assert_eq!(decode(event_type, version, &encoded), event);
    }
}

#[test]
fn a_v1_ticket_opened_without_channel_is_upcast_to_telegram() {
    let v1 = read_fixture("ticket.opened", 1).expect("the v1 sample exists");
    assert!(v1.get("channel").is_none(), "v1 predates the channel");
    let AnyEvent::Ticket(TicketEvent::Opened(opened)) = decode("ticket.opened", 1, &v1) else {
        panic!("ticket.opened decodes to TicketEvent::Opened");
    };
    assert_eq!(opened.channel, Channel::Telegram);
    let v2 = read_fixture("ticket.opened", 2).expect("the v2 sample exists");
    assert_eq!(
        decode("ticket.opened", 2, &v2),
        AnyEvent::Ticket(TicketEvent::Opened(opened)),
        "the v1 sample says the same as the v2 sample"
    );
}

#[test]
fn unknown_types_versions_and_payloads_are_reported() {
    let payload = serde_json::json!({});
    assert_eq!(
        AnyEvent::decode("ticket.teleported", 1, &payload),
        Err(DecodeError::UnknownType {
            event_type: "ticket.teleported".into()
        })
    );
    assert_eq!(
        AnyEvent::decode("nonsense", 1, &payload),
        Err(DecodeError::UnknownType {
            event_type: "nonsense".into()
        })
    );
    assert_eq!(
        AnyEvent::decode("ticket.opened", 3, &payload),
        Err(DecodeError::UnknownVersion {
            event_type: "ticket.opened".into(),
            schema_version: 3
        })
    );
    assert!(matches!(
        TicketEvent::decode("ticket.opened", 2, &payload),
        Err(DecodeError::BadPayload { ref event_type, schema_version: 2, .. })
            if event_type == "ticket.opened"
    ));
}

#[test]
fn each_aggregate_decodes_only_its_own_events() {
    let payload = serde_json::json!({ "at": "2026-03-02T10:00:00Z" });
    assert!(matches!(
        CustomerEvent::decode("customer.blocked_bot", 1, &payload),
        Ok(CustomerEvent::BlockedBot(_))
    ));
    assert!(matches!(
        TicketEvent::decode("customer.blocked_bot", 1, &payload),
        Err(DecodeError::UnknownType { .. })
    ));
}

#[test]
fn every_message_kind_round_trips() {
    let file = || TelegramFile {
        file_id: "f".into(),
        file_unique_id: "u".into(),
    };
    let bodies = [
        MessageBody::Text { text: "hi".into() },
        MessageBody::Photo { file: file() },
        MessageBody::Video { file: file() },
        MessageBody::Document {
            file: file(),
            file_name: Some("invoice.pdf".into()),
        },
        MessageBody::Audio { file: file() },
        MessageBody::Voice { file: file() },
        MessageBody::VideoNote { file: file() },
        MessageBody::Sticker {
            file: file(),
            emoji: Some("👍".into()),
        },
        MessageBody::Animation { file: file() },
        MessageBody::Location {
            latitude: 52.52,
            longitude: 13.405,
        },
        MessageBody::Venue {
            latitude: 52.52,
            longitude: 13.405,
            title: "Office".into(),
            address: "Main St 1".into(),
        },
        MessageBody::Contact {
            phone_number: "+49 30 1234567".into(),
            first_name: "Bob".into(),
            last_name: None,
            user_id: Some(42),
        },
    ];
    let origins = [
        None,
        Some(ForwardOrigin::User {
            user_id: 1,
            name: "Bob".into(),
        }),
        Some(ForwardOrigin::Chat {
            chat_id: -100,
            title: "Team".into(),
        }),
        Some(ForwardOrigin::Channel {
            chat_id: -1001,
            title: "News".into(),
            message_id: TelegramMessageId(3),
        }),
    ];
    for (body, forwarded_from) in bodies.into_iter().zip(origins.into_iter().cycle()) {
        let kind = body.kind();
        let event = AnyEvent::from(TicketEvent::CustomerMessagePosted(CustomerMessagePosted {
            message_id: message(),
            telegram_message_id: TelegramMessageId(1),
            reply_to: None,
            kind,
            at: at(),
            content: MessageContent {
                body,
                caption: None,
                forwarded_from,
                forwarded_at: None,
                media: None,
                media_group_id: None,
                entities: Vec::new(),
            },
        }));
        let json = serde_json::to_value(&event).expect("events serialize");
        assert_eq!(json["kind"], json["content"]["body"]["type"]);
        assert_eq!(
            decode("ticket.customer_message_posted", 1, &json),
            event,
            "{kind:?}"
        );
    }
}

#[test]
fn personal_data_sits_in_separable_fields() {
    // Everything personal lives under `personal` or `content`; the rest may stay in clear.
    // Settings and broadcasts hold team-authored text, not personal data.
    for event in samples() {
        if !["ticket.", "customer.", "agent."]
            .iter()
            .any(|prefix| event.event_type().starts_with(prefix))
        {
            continue;
        }
        let json = serde_json::to_value(&event).expect("events serialize");
        let object = json.as_object().expect("payloads are objects");
        let clear: Vec<&String> = object
            .keys()
            .filter(|key| !matches!(key.as_str(), "personal" | "content"))
            .collect();
        for key in clear {
            assert!(
                !matches!(
                    key.as_str(),
                    "text" | "caption" | "name" | "email" | "comment" | "first_name" | "username"
                ),
                "{}: `{key}` is personal data outside `personal`/`content`",
                event.event_type()
            );
        }
    }
}

#[test]
fn a_customer_message_stored_before_media_details_were_kept_decodes_without_them() {
    // The stored sample predates media details, albums and forward dates.
    let stored = read_fixture("ticket.customer_message_posted", 1).expect("the sample exists");
    assert!(stored["content"].get("media").is_none());
    let AnyEvent::Ticket(TicketEvent::CustomerMessagePosted(posted)) =
        decode("ticket.customer_message_posted", 1, &stored)
    else {
        panic!("decodes to CustomerMessagePosted");
    };
    assert_eq!(posted.content.media, None);
    assert_eq!(posted.content.forwarded_at, None);
    assert_eq!(posted.content.media_group_id, None);
    let edited = read_fixture("ticket.customer_message_edited", 1).expect("the sample exists");
    assert!(matches!(
        decode("ticket.customer_message_edited", 1, &edited),
        AnyEvent::Ticket(TicketEvent::CustomerMessageEdited(_))
    ));
}

#[test]
fn every_detail_telegram_gives_round_trips() {
    let file = |id: &str| TelegramFile::new(id, format!("{id}-unique"));
    let bodies = [
        MessageBody::Video { file: file("v") },
        MessageBody::Dice {
            emoji: "🎯".into(),
            value: 6,
        },
        MessageBody::Poll {
            question: "Which slot?".into(),
            options: vec!["Morning".into(), "Evening".into()],
            quiz: true,
            multiple_answers: false,
        },
        MessageBody::Story {
            chat_id: -100_123,
            story_id: 42,
        },
        MessageBody::Checklist {
            title: "Return".into(),
            tasks: vec![domain::content::ChecklistTask {
                text: "Pack".into(),
                done: true,
            }],
        },
        MessageBody::PaidMedia {
            star_count: 25,
            media: vec!["preview".into(), "video".into()],
        },
        MessageBody::Service {
            action: "pinned_message".into(),
            message: Some(TelegramMessageId(7)),
        },
        MessageBody::Unsupported {
            kind: "giveaway".into(),
        },
    ];
    for body in bodies {
        let kind = body.kind();
        let event = AnyEvent::from(TicketEvent::CustomerMessagePosted(CustomerMessagePosted {
            message_id: message(),
            telegram_message_id: TelegramMessageId(1),
            reply_to: None,
            kind,
            at: at(),
            content: MessageContent {
                forwarded_from: Some(ForwardOrigin::HiddenUser { name: "Bob".into() }),
                forwarded_at: Some(at()),
                media: Some(Box::new(domain::content::MediaDetails {
                    file_name: Some("clip.mp4".into()),
                    mime_type: Some("video/mp4".into()),
                    file_size: Some(5_000_000_000),
                    width: Some(1080),
                    height: Some(1920),
                    duration: Some(14),
                    thumbnail: Some(domain::content::Thumbnail {
                        file: file("t"),
                        width: 90,
                        height: 160,
                        file_size: Some(1200),
                    }),
                    title: Some("Song".into()),
                    performer: Some("Band".into()),
                    set_name: Some("Cats".into()),
                    animated: Some(false),
                    video: Some(true),
                })),
                media_group_id: Some("1387462093847".into()),
                ..MessageContent::of(body)
            },
        }));
        let json = serde_json::to_value(&event).expect("events serialize");
        assert_eq!(json["kind"], json["content"]["body"]["type"]);
        assert_eq!(
            decode("ticket.customer_message_posted", 1, &json),
            event,
            "{kind:?}"
        );
    }
}
