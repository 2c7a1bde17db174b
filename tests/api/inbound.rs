//! What the bot learns from Telegram, as GraphQL shows it: the bot's texts per language (and
//! who may change them), a customer's `/start` payloads, the versions of an edited message,
//! and the formatting of a text.

use app::commands::{CommandContext, CommandService};
use chrono::{SubsecRound, TimeDelta, Utc};
use domain::agent::Role;
use domain::content::{MessageBody, MessageContent, TelegramFile, TelegramMessageId, TextEntity};
use domain::customer::{Customer, CustomerCommand};
use domain::settings::{BotText, Settings};
use domain::ticket::{EditCustomerMessage, TicketCommand};
use domain::{CustomerId, StreamId, TicketId};
use eventlog::Actor;
use serde_json::json;

use crate::support::{Server, code};

const SET_BOT_TEXT: &str = "mutation($input: SetBotTextInput!) {
    setBotText(input: $input) { position replayed } }";

const BOT_TEXTS: &str = "query($language: String) {
    botTexts(language: $language) { key language text customText builtInText maxLength } }";

#[tokio::test]
async fn admins_set_the_bot_texts_per_language_and_nobody_else_may() {
    let server = Server::start("bot_texts").await;
    let admin = server.admin().await;
    let set = |key: &str, language: &str, text: Option<&str>| json!({ "input": { "key": key, "language": language, "text": text } });
    let data = server
        .ok(
            &admin.token,
            SET_BOT_TEXT,
            set("HELP", "ru", Some("Спросите нас о чём угодно.")),
        )
        .await;
    assert!(data["setBotText"]["position"].is_string());
    // The English greeting is the greeting setting.
    server
        .ok(
            &admin.token,
            SET_BOT_TEXT,
            set("GREETING", "en", Some("Welcome!")),
        )
        .await;
    // A language of the admins' own.
    server
        .ok(
            &admin.token,
            SET_BOT_TEXT,
            set("GREETING", "de", Some("Willkommen!")),
        )
        .await;
    let settings = CommandService::new(server.log.clone())
        .state::<Settings>(StreamId::Settings)
        .await
        .unwrap();
    assert_eq!(settings.greeting.as_deref(), Some("Welcome!"));

    let ru = server
        .ok(&admin.token, BOT_TEXTS, json!({ "language": "ru" }))
        .await;
    let ru = ru["botTexts"].as_array().unwrap();
    assert_eq!(ru.len(), BotText::ALL.len());
    let help = ru.iter().find(|entry| entry["key"] == "HELP").unwrap();
    assert_eq!(help["text"], "Спросите нас о чём угодно.");
    assert_eq!(help["customText"], "Спросите нас о чём угодно.");
    assert_eq!(help["builtInText"], BotText::Help.built_in("ru").unwrap());
    let greeting = ru.iter().find(|entry| entry["key"] == "GREETING").unwrap();
    assert_eq!(greeting["text"], BotText::Greeting.built_in("ru").unwrap());
    assert!(greeting["customText"].is_null());
    let expired = ru.iter().find(|e| e["key"] == "BUTTON_EXPIRED").unwrap();
    assert_eq!(expired["maxLength"], 200);

    let all = server.ok(&admin.token, BOT_TEXTS, json!({})).await;
    let all = all["botTexts"].as_array().unwrap();
    assert_eq!(all.len(), 3 * BotText::ALL.len(), "en, ru and de");
    let en_greeting = all
        .iter()
        .find(|e| e["key"] == "GREETING" && e["language"] == "en")
        .unwrap();
    assert_eq!(en_greeting["text"], "Welcome!");
    let de_help = all
        .iter()
        .find(|e| e["key"] == "HELP" && e["language"] == "de")
        .unwrap();
    assert_eq!(de_help["text"], BotText::Help.built_in("en").unwrap());

    // Restoring the built-in text.
    server
        .ok(&admin.token, SET_BOT_TEXT, set("HELP", "ru", None))
        .await;
    let ru = server
        .ok(&admin.token, BOT_TEXTS, json!({ "language": "ru" }))
        .await;
    let help = ru["botTexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["key"] == "HELP")
        .unwrap()
        .clone();
    assert_eq!(help["text"], BotText::Help.built_in("ru").unwrap());

    // Bounds.
    let t = Some(admin.token.as_str());
    for input in [
        set("HELP", "EN", Some("x")),
        set("HELP", "english", Some("x")),
        set("HELP", "ru", Some(" ")),
        set("BUTTON_EXPIRED", "ru", Some(&"x".repeat(201))),
        set("HELP", "ru", Some(&"x".repeat(4097))),
    ] {
        let body = server.gql(t, SET_BOT_TEXT, input.clone()).await;
        assert_eq!(code(&body), Some("VALIDATION"), "{input}: {body}");
    }
    let body = server.gql(t, BOT_TEXTS, json!({ "language": "Ru" })).await;
    assert_eq!(code(&body), Some("VALIDATION"), "{body}");

    // Agents may neither change nor read them.
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    let body = server
        .gql(
            Some(&agent.token),
            SET_BOT_TEXT,
            set("HELP", "ru", Some("x")),
        )
        .await;
    assert_eq!(code(&body), Some("FORBIDDEN"));
    let body = server.gql(Some(&agent.token), BOT_TEXTS, json!({})).await;
    assert_eq!(code(&body), Some("FORBIDDEN"));
    // An admin demoted to agent is refused from the next request on.
    let demoted = server.agent(Role::Admin, "demoted@example.com").await;
    server
        .ok(
            &demoted.token,
            SET_BOT_TEXT,
            set("HELP", "ru", Some("Пишите.")),
        )
        .await;
    server
        .ok(
            &admin.token,
            "mutation($id: ID!) { changeAgentRole(input: {agentId: $id, role: AGENT}) { position } }",
            json!({ "id": demoted.id }),
        )
        .await;
    let body = server
        .gql(
            Some(&demoted.token),
            SET_BOT_TEXT,
            set("HELP", "ru", Some("x")),
        )
        .await;
    // (A role change also ends the agent's sessions: the old token no longer signs in.)
    assert!(
        matches!(code(&body), Some("FORBIDDEN" | "UNAUTHENTICATED")),
        "{body}"
    );
    let settings = CommandService::new(server.log.clone())
        .state::<Settings>(StreamId::Settings)
        .await
        .unwrap();
    assert_eq!(
        settings.custom_bot_text(BotText::Help, "ru"),
        Some("Пишите.")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_customer_shows_their_first_and_latest_start_payloads() {
    let server = Server::start("start_payloads").await;
    let admin = server.admin().await;
    let customer = 7_001;
    server.customer_writes(customer, None, "hello").await;
    let commands = CommandService::new(server.log.clone());
    let ctx = CommandContext::new(Actor::system("test"));
    let mut position = None;
    for payload in ["ads-spring", "ref-42"] {
        let executed = commands
            .execute::<Customer>(
                StreamId::Customer(CustomerId(customer)),
                &CustomerCommand::RecordStartPayload {
                    payload: payload.into(),
                    at: Utc::now(),
                },
                &ctx,
            )
            .await
            .unwrap();
        position = executed.position;
    }
    server.caught_up(position.unwrap()).await;
    let data = server
        .ok(
            &admin.token,
            "query($id: ID!) { customer(id: $id) { startPayload firstStartPayload startPayloadAt } }",
            json!({ "id": customer.to_string() }),
        )
        .await;
    assert_eq!(data["customer"]["firstStartPayload"], "ads-spring");
    assert_eq!(data["customer"]["startPayload"], "ref-42");
    assert!(data["customer"]["startPayloadAt"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn an_edited_message_keeps_its_earlier_versions() {
    let server = Server::start("message_edits").await;
    let admin = server.admin().await;
    let (ticket, _) = server
        .customer_sends(7_002, None, "my order is lost", 501, None)
        .await;
    let commands = CommandService::new(server.log.clone());
    let ctx = CommandContext::new(Actor::system("test"));
    // Whole seconds: the row's `editedAt` is kept to the microsecond.
    let first_edit = Utc::now().trunc_subsecs(0);
    let mut position = None;
    for (text, at) in [
        ("my order 12 is lost", first_edit),
        ("my order 123 is lost", first_edit + TimeDelta::seconds(5)),
    ] {
        let executed = commands
            .execute_ticket(
                TicketId(ticket),
                &TicketCommand::EditCustomerMessage(EditCustomerMessage {
                    telegram_message_id: TelegramMessageId(501),
                    content: MessageContent::text(text),
                    at,
                }),
                &ctx,
            )
            .await
            .unwrap();
        position = executed.position;
    }
    server.caught_up(position.unwrap()).await;
    let data = server
        .ok(
            &admin.token,
            "query($id: ID!) { ticket(id: $id) { messages(first: 10) { nodes {
                text editedAt edits { kind text caption editedAt } } } } }",
            json!({ "id": ticket.to_string() }),
        )
        .await;
    let message = &data["ticket"]["messages"]["nodes"][0];
    assert_eq!(message["text"], "my order 123 is lost");
    assert!(message["editedAt"].is_string());
    let edits = message["edits"].as_array().unwrap();
    let texts: Vec<&str> = edits.iter().map(|e| e["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["my order is lost", "my order 12 is lost"]);
    assert!(
        edits
            .iter()
            .all(|e| e["kind"] == "text" && e["caption"].is_null())
    );
    assert_eq!(edits[1]["editedAt"], message["editedAt"]);
    server.stop().await;
}

#[tokio::test]
async fn a_formatted_text_keeps_its_entities_in_utf16_offsets() {
    let server = Server::start("message_entities").await;
    let admin = server.admin().await;
    // "👋 " is three UTF-16 code units; the Cyrillic word after it is bold, the link a
    // text_link, the code a pre block with its language, the emoji a custom one.
    let text = "👋 Привет, see docs and run `ls` 🎉";
    let mut link = TextEntity::new("text_link", 15, 4);
    link.url = Some("https://example.com/docs".into());
    let mut pre = TextEntity::new("pre", 28, 4);
    pre.language = Some("sh".into());
    let mut emoji = TextEntity::new("custom_emoji", 33, 2);
    emoji.custom_emoji_id = Some("5368324170671202286".into());
    let mut mention = TextEntity::new("text_mention", 3, 6);
    mention.user_id = Some(7_001_234_567);
    let content = MessageContent {
        entities: vec![TextEntity::new("bold", 3, 6), mention, link, pre, emoji],
        ..MessageContent::text(text)
    };
    let (ticket, _) = server
        .record_customer_content(7_003, None, content, 601, None)
        .await;
    let photo = MessageContent {
        caption: Some("so _this_ one".into()),
        entities: vec![TextEntity::new("italic", 3, 6)],
        ..MessageContent::of(MessageBody::Photo {
            file: TelegramFile {
                file_id: "AgACphoto".into(),
                file_unique_id: "AQADphoto".into(),
            },
        })
    };
    let (_, position) = server
        .record_customer_content(7_003, None, photo, 602, None)
        .await;
    server.caught_up(position).await;
    let data = server
        .ok(
            &admin.token,
            "query($id: ID!) { ticket(id: $id) { messages(first: 10) { nodes {
                kind text caption
                entities { type offset length url language customEmojiId userId } } } } }",
            json!({ "id": ticket.to_string() }),
        )
        .await;
    let messages = data["ticket"]["messages"]["nodes"].as_array().unwrap();
    assert_eq!(messages[0]["text"], text);
    assert_eq!(
        messages[0]["entities"],
        json!([
            { "type": "bold", "offset": 3, "length": 6, "url": null, "language": null,
              "customEmojiId": null, "userId": null },
            { "type": "text_mention", "offset": 3, "length": 6, "url": null, "language": null,
              "customEmojiId": null, "userId": "7001234567" },
            { "type": "text_link", "offset": 15, "length": 4, "url": "https://example.com/docs",
              "language": null, "customEmojiId": null, "userId": null },
            { "type": "pre", "offset": 28, "length": 4, "url": null, "language": "sh",
              "customEmojiId": null, "userId": null },
            { "type": "custom_emoji", "offset": 33, "length": 2, "url": null, "language": null,
              "customEmojiId": "5368324170671202286", "userId": null },
        ])
    );
    // A caption's entities belong to the caption.
    assert_eq!(messages[1]["kind"], "photo");
    assert_eq!(messages[1]["caption"], "so _this_ one");
    assert_eq!(messages[1]["entities"][0]["type"], "italic");
    assert_eq!(messages[1]["entities"][0]["offset"], 3);
    server.stop().await;
}
