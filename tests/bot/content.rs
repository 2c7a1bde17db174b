//! Whatever a customer sends in their private chat reaches the team, with everything Telegram
//! told about it, over the webhook and over long polling alike: every kind (dice, polls,
//! stories, checklists, paid media, chat events, kinds this code does not model), every detail
//! of its file (sizes, durations, MIME types, dimensions, thumbnails, titles, sticker sets),
//! albums, forward dates, lengths only Telegram Premium allows, and messages teloxide cannot
//! read. Each fixture goes in as Telegram sends it and comes out of GraphQL.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use testkit::eventually;
use testkit::telegram::{Failure, FakeTelegram};

use crate::support::{Desk, PATIENCE, Receive, SECRET, fixture, fixtures};
use crate::unstorable::{admin_token, graphql};

/// Every field of a message the tests read back.
const MESSAGE_FIELDS: &str = "telegramMessageId kind text caption mediaGroupId forwardedAt
    forwardOrigin details serviceAction unsupportedKind
    media { kind fileId fileUniqueId fileName mimeType fileSize width height duration title
            performer setName emoji isAnimated isVideo
            thumbnail { fileId fileUniqueId width height fileSize } }
    album { kind fileId fileUniqueId }
    dice { emoji value }
    poll { question options quiz multipleAnswers }
    story { chatId storyId }
    checklist { title tasks { text done } }
    paidMedia { starCount media }";

/// Posts or queues `updates` and waits until `posted` customer messages are on the log.
async fn deliver(desk: &Desk, telegram: &FakeTelegram, receive: Receive, updates: &[Value]) {
    let before = desk.count("ticket.customer_message_posted").await;
    for update in updates {
        match receive {
            Receive::Webhook => desk.post(update).await,
            Receive::Polling => {
                telegram.push_update(update.clone());
            }
        }
    }
    let n = before + i64::try_from(updates.len()).unwrap();
    desk.wait_for("ticket.customer_message_posted", n).await;
    if receive == Receive::Polling {
        eventually(async || telegram.pending_updates() == 0, PATIENCE).await;
    }
    assert_eq!(desk.count("ticket.customer_message_posted").await, n);
}

/// Every customer message the read model holds, by Telegram message id, as GraphQL shows it
/// (waits until it holds `n`).
async fn messages(desk: &Desk, token: &str, n: usize) -> BTreeMap<i64, Value> {
    desk.wait_for_rows(
        "select count(*) from messages where direction = 'in'",
        i64::try_from(n).unwrap(),
    )
    .await;
    let tickets: Vec<uuid::Uuid> = sqlx::query_scalar("select id from tickets")
        .fetch_all(&desk.pool)
        .await
        .unwrap();
    let query = format!(
        "query($id: ID!) {{ ticket(id: $id) {{ messages(first: 50) {{ edges {{ node {{ {MESSAGE_FIELDS} }} }} }} }} }}"
    );
    let mut found = BTreeMap::new();
    for ticket in tickets {
        let body = graphql(
            desk,
            Some(token),
            &query,
            json!({ "id": ticket.to_string() }),
        )
        .await;
        assert!(body.get("errors").is_none(), "{body:#}");
        for edge in body["data"]["ticket"]["messages"]["edges"]
            .as_array()
            .unwrap()
        {
            let node = edge["node"].clone();
            found.insert(node["telegramMessageId"].as_i64().unwrap(), node);
        }
    }
    assert_eq!(found.len(), n, "{found:#?}");
    found
}

/// What GraphQL must show as `media` for the message of a fixture, from its JSON alone: the
/// file (a photo's largest size, an animation rather than its document copy) with every
/// detail Telegram gave, null where it gave none.
fn expected_media(message: &Value) -> Value {
    const KINDS: [&str; 8] = [
        "animation",
        "audio",
        "document",
        "photo",
        "sticker",
        "video",
        "video_note",
        "voice",
    ];
    let Some(kind) = KINDS.into_iter().find(|kind| message.get(*kind).is_some()) else {
        return Value::Null;
    };
    let area = |size: &Value| size["width"].as_i64().unwrap() * size["height"].as_i64().unwrap();
    let (file, thumbnail) = if kind == "photo" {
        let sizes = message["photo"].as_array().unwrap();
        let largest = sizes.iter().max_by_key(|size| area(size)).unwrap();
        let smallest = sizes.iter().min_by_key(|size| area(size)).unwrap();
        let thumbnail = if smallest == largest {
            Value::Null
        } else {
            smallest.clone()
        };
        (largest.clone(), thumbnail)
    } else {
        let file = message[kind].clone();
        let thumbnail = file.get("thumbnail").cloned().unwrap_or(Value::Null);
        (file, thumbnail)
    };
    let field = |name: &str| file.get(name).cloned().unwrap_or(Value::Null);
    let float = |value: &Value| value.as_f64().map_or(Value::Null, |n| json!(n));
    let sticker = |name: &str| {
        if kind == "sticker" {
            field(name)
        } else {
            Value::Null
        }
    };
    let (width, height) = if kind == "video_note" {
        (field("length"), field("length"))
    } else {
        (field("width"), field("height"))
    };
    json!({
        "kind": kind,
        "fileId": field("file_id"),
        "fileUniqueId": field("file_unique_id"),
        "fileName": field("file_name"),
        "mimeType": field("mime_type"),
        "fileSize": float(&field("file_size")),
        "width": width,
        "height": height,
        "duration": field("duration"),
        "title": field("title"),
        "performer": field("performer"),
        "setName": sticker("set_name"),
        "emoji": sticker("emoji"),
        "isAnimated": sticker("is_animated"),
        "isVideo": sticker("is_video"),
        "thumbnail": if thumbnail.is_null() { Value::Null } else { json!({
            "fileId": thumbnail["file_id"],
            "fileUniqueId": thumbnail["file_unique_id"],
            "width": thumbnail["width"],
            "height": thumbnail["height"],
            "fileSize": float(&thumbnail["file_size"]),
        }) },
    })
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str().map(|text| text.parse().unwrap())
}

async fn every_kind_arrives_with_every_detail(receive: Receive, tag: &str) {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start(tag, &telegram, receive).await;
    let names = fixtures("message_");
    assert!(names.len() >= 30, "fixtures missing: {names:?}");
    let updates: Vec<Value> = names.iter().map(|name| fixture(name)).collect();
    deliver(&desk, &telegram, receive, &updates).await;
    let token = admin_token(&desk).await;
    let shown = messages(&desk, &token, updates.len()).await;

    // Every file with all its details, for every media kind.
    let mut kinds = std::collections::BTreeSet::new();
    for (name, update) in names.iter().zip(&updates) {
        let message = &update["message"];
        let node = &shown[&message["message_id"].as_i64().unwrap()];
        assert_eq!(node["media"], expected_media(message), "{name}: {node:#}");
        kinds.insert(node["kind"].as_str().unwrap().to_owned());
        // Forward dates, as Telegram gave them.
        let forwarded_at = message["forward_origin"]["date"]
            .as_i64()
            .and_then(|unix| DateTime::from_timestamp(unix, 0));
        if name != "message_giveaway" {
            assert_eq!(time(&node["forwardedAt"]), forwarded_at, "{name}");
        }
    }
    for kind in [
        "animation",
        "audio",
        "checklist",
        "contact",
        "dice",
        "document",
        "location",
        "paid_media",
        "photo",
        "poll",
        "service",
        "sticker",
        "story",
        "text",
        "unsupported",
        "venue",
        "video",
        "video_note",
        "voice",
    ] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }

    // The album: its first message carries all of its media, in order; the others none.
    let group = json!("13874620938471625");
    let first = &shown[&230];
    assert_eq!(first["mediaGroupId"], group);
    assert_eq!(first["caption"], json!("Three sides of the damaged box"));
    let album: Vec<&Value> = first["album"].as_array().unwrap().iter().collect();
    let ids: Vec<&Value> = album.iter().map(|media| &media["fileId"]).collect();
    assert_eq!(
        ids,
        [
            &shown[&230]["media"]["fileId"],
            &shown[&231]["media"]["fileId"],
            &shown[&232]["media"]["fileId"],
        ]
    );
    assert_eq!(album[2]["kind"], json!("video"));
    for later in [231, 232] {
        assert_eq!(shown[&later]["mediaGroupId"], group);
        assert_eq!(shown[&later]["album"], Value::Null);
    }
    assert_eq!(
        shown[&213]["album"],
        Value::Null,
        "a lone photo is no album"
    );

    // What can be shown of the kinds that are neither text nor a file.
    assert_eq!(shown[&227]["dice"], json!({"emoji": "🎲", "value": 4}));
    assert_eq!(
        shown[&226]["poll"],
        json!({"question": "Which delivery slot suits you?",
               "options": ["Morning", "Afternoon", "Evening"],
               "quiz": false, "multipleAnswers": false})
    );
    assert_eq!(
        shown[&1048]["story"],
        json!({"chatId": "-1001122334455", "storyId": "42"})
    );
    assert_eq!(
        shown[&233]["checklist"],
        json!({"title": "Before I send it back", "tasks": [
            {"text": "Print the return label", "done": false},
            {"text": "Pack the shoes", "done": true}]})
    );
    assert_eq!(
        shown[&1049]["paidMedia"],
        json!({"starCount": 25, "media": ["preview", "video"]})
    );
    assert_eq!(shown[&228]["serviceAction"], json!("pinned_message"));
    assert_eq!(shown[&234]["serviceAction"], json!("write_access_allowed"));
    assert_eq!(shown[&1050]["unsupportedKind"], json!("giveaway"));
    // A text quoting another chat, which teloxide cannot read, keeps its words.
    assert_eq!(
        shown[&1046]["text"],
        json!("Is this offer still valid for my order?")
    );
    assert_eq!(shown[&1046]["kind"], json!("text"));
    desk.stop().await;
}

#[tokio::test]
async fn every_kind_a_customer_sends_to_the_webhook_arrives_with_every_detail() {
    every_kind_arrives_with_every_detail(Receive::Webhook, "kinds_hook").await;
}

#[tokio::test]
async fn every_kind_a_customer_sends_over_polling_arrives_with_every_detail() {
    every_kind_arrives_with_every_detail(Receive::Polling, "kinds_poll").await;
}

/// Lengths Telegram allows (Premium captions, long file names and titles) that are above
/// the limits on what agents write.
fn long_messages() -> Vec<Value> {
    let long = |n: usize, word: &str| word.repeat(n / word.len());
    let mut caption = fixture("message_photo_caption");
    caption["update_id"] = json!(850_200_001);
    caption["message"]["message_id"] = json!(301);
    caption["message"]["caption"] = json!(long(4000, "é la "));
    let mut document = fixture("message_document");
    document["update_id"] = json!(850_200_002);
    document["message"]["message_id"] = json!(302);
    document["message"]["document"]["file_name"] = json!(long(250, "facture-") + ".pdf");
    let mut forwarded = fixture("message_forwarded_hidden_user");
    forwarded["update_id"] = json!(850_200_003);
    forwarded["message"]["message_id"] = json!(303);
    forwarded["message"]["forward_origin"]["sender_user_name"] = json!(long(200, "Jean "));
    let mut venue = fixture("message_venue");
    venue["update_id"] = json!(850_200_004);
    venue["message"]["message_id"] = json!(304);
    venue["message"]["venue"]["title"] = json!(long(300, "Galata "));
    let mut contact = fixture("message_contact");
    contact["update_id"] = json!(850_200_005);
    contact["message"]["message_id"] = json!(305);
    contact["message"]["contact"]["phone_number"] =
        json!("+90 532 123 4567 ext. 1234567890 (office)");
    vec![caption, document, forwarded, venue, contact]
}

async fn long_values_are_kept(receive: Receive, tag: &str) {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start(tag, &telegram, receive).await;
    let updates = long_messages();
    deliver(&desk, &telegram, receive, &updates).await;
    let token = admin_token(&desk).await;
    let shown = messages(&desk, &token, updates.len()).await;
    let message = |n: usize| &updates[n]["message"];
    assert_eq!(shown[&301]["caption"], message(0)["caption"]);
    assert_eq!(
        shown[&302]["media"]["fileName"],
        message(1)["document"]["file_name"]
    );
    assert_eq!(
        shown[&303]["forwardOrigin"]["name"],
        message(2)["forward_origin"]["sender_user_name"]
    );
    assert_eq!(
        shown[&304]["details"]["title"],
        message(3)["venue"]["title"]
    );
    assert_eq!(
        shown[&305]["details"]["phone_number"],
        message(4)["contact"]["phone_number"]
    );
    desk.stop().await;
}

#[tokio::test]
async fn captions_names_and_titles_as_long_as_telegram_allows_are_kept_from_the_webhook() {
    long_values_are_kept(Receive::Webhook, "long_hook").await;
}

#[tokio::test]
async fn captions_names_and_titles_as_long_as_telegram_allows_are_kept_from_polling() {
    long_values_are_kept(Receive::Polling, "long_poll").await;
}

async fn what_cannot_be_read_is_kept_for_admins(receive: Receive, tag: &str) {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start(tag, &telegram, receive).await;
    // A photo whose sizes teloxide cannot read: the kind and caption are read by hand.
    let mut photo = fixture("message_photo_caption");
    photo["update_id"] = json!(850_300_001);
    photo["message"]["message_id"] = json!(401);
    photo["message"]["photo"] = json!({"sizes": "of a newer Bot API"});
    // A private message without a date: nothing to go on.
    let mut undated = fixture("message_text");
    undated["update_id"] = json!(850_300_002);
    undated["message"]["message_id"] = json!(402);
    undated["message"]["external_reply"] = json!({"origin": {"type": "unknown"}});
    undated["message"].as_object_mut().unwrap().remove("date");
    // An update of a kind no version of this code knows.
    let future = json!({"update_id": 850_300_003, "guest_message": {"message_id": 1}});
    let mut good = fixture("message_text");
    good["update_id"] = json!(850_300_004);
    good["message"]["message_id"] = json!(404);
    for update in [&photo, &undated, &future, &good] {
        match receive {
            Receive::Webhook => {
                let status = desk.post_raw(&update.to_string(), Some(SECRET)).await;
                assert_eq!(status, 200, "{update}");
            }
            Receive::Polling => {
                telegram.push_update(update.clone());
            }
        }
    }
    desk.wait_for("ticket.customer_message_posted", 2).await;
    desk.wait_for_rows("select count(*) from telegram_updates_unrecorded", 2)
        .await;
    if receive == Receive::Polling {
        eventually(async || telegram.pending_updates() == 0, PATIENCE).await;
    }
    let kept: Vec<(i64, Value, String)> = sqlx::query_as(
        "select update_id, raw_update, error from telegram_updates_unrecorded order by update_id",
    )
    .fetch_all(&desk.pool)
    .await
    .unwrap();
    assert_eq!(kept.len(), 2, "{kept:#?}");
    assert_eq!(kept[0].0, 850_300_002);
    assert_eq!(kept[0].1, undated, "the update is kept as Telegram sent it");
    assert!(kept[0].2.contains("cannot be read"), "{}", kept[0].2);
    assert_eq!(kept[1].0, 850_300_003);
    assert_eq!(kept[1].1, future);
    let token = admin_token(&desk).await;
    let shown = messages(&desk, &token, 2).await;
    assert_eq!(shown[&401]["kind"], json!("unsupported"));
    assert_eq!(shown[&401]["unsupportedKind"], json!("photo"));
    assert_eq!(shown[&401]["caption"], photo["message"]["caption"]);
    assert_eq!(shown[&404]["text"], good["message"]["text"]);
    desk.stop().await;
}

#[tokio::test]
async fn a_webhook_update_nothing_can_read_is_kept_for_admins_and_a_partly_readable_one_recorded() {
    what_cannot_be_read_is_kept_for_admins(Receive::Webhook, "unread_hook").await;
}

#[tokio::test]
async fn a_polled_update_nothing_can_read_is_kept_for_admins_and_a_partly_readable_one_recorded() {
    what_cannot_be_read_is_kept_for_admins(Receive::Polling, "unread_poll").await;
}

/// Polling reads `getUpdates` itself (as JSON, before teloxide): Telegram asking it to slow
/// down, an error answer and a broken connection only delay the updates waiting there.
#[tokio::test]
async fn polling_waits_out_failed_get_updates_calls_and_then_records_what_waited() {
    let telegram = FakeTelegram::start().await;
    telegram.fail_next("getUpdates", Failure::RetryAfter(1), 1);
    telegram.fail_next(
        "getUpdates",
        Failure::Api {
            code: 409,
            description: "Conflict: terminated by other getUpdates request".into(),
        },
        1,
    );
    telegram.fail_next("getUpdates", Failure::Dropped, 1);
    let desk = Desk::start("poll_fail", &telegram, Receive::Polling).await;
    let update = fixture("message_text_external_reply");
    telegram.push_update(update.clone());
    desk.wait_for("ticket.customer_message_posted", 1).await;
    eventually(async || telegram.pending_updates() == 0, PATIENCE).await;
    let calls = telegram.calls_of("getUpdates");
    assert!(calls.len() >= 4, "{} getUpdates calls", calls.len());
    assert!(calls.iter().take(3).all(|call| !call.succeeded()));
    let token = admin_token(&desk).await;
    let shown = messages(&desk, &token, 1).await;
    assert_eq!(shown[&1046]["text"], update["message"]["text"]);
    desk.stop().await;
}
