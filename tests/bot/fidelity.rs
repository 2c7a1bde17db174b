//! Telegram as it really behaves: the same update delivered several times at once, an edit
//! before its message, customers in several languages, and `/start` deep links.

use std::time::Duration;

use app::commands::{CommandContext, CommandService};
use chrono::Utc;
use domain::settings::{BotText, Settings, SettingsCommand};
use domain::ticket::{Actor as TicketActor, TicketCommand};
use domain::{AgentId, CategoryId, StreamId, TicketId};
use eventlog::postgres::PostgresLog;
use serde_json::{Value, json};
use testkit::telegram::{BOT_ID, FakeTelegram};
use uuid::Uuid;

use crate::support::{Desk, PATIENCE, Receive, SECRET, fixture, sender_of};

/// How many deliveries of one update race each other.
const RACERS: usize = 8;

/// How long the fake Telegram takes to answer where a test widens the race.
const SLOW: Duration = Duration::from_millis(300);

async fn change_settings(log: &PostgresLog, command: SettingsCommand) {
    CommandService::new(log.clone())
        .execute::<Settings>(
            StreamId::Settings,
            &command,
            &CommandContext::new(eventlog::Actor::system("test")),
        )
        .await
        .unwrap();
}

async fn set_text(log: &PostgresLog, key: BotText, language: &str, text: &str) {
    change_settings(
        log,
        SettingsCommand::SetBotText {
            key,
            language: language.into(),
            text: Some(text.into()),
            by: AgentId::from_uuid(Uuid::now_v7()),
            at: Utc::now(),
        },
    )
    .await;
}

/// Posts `update` to the webhook `n` times at once; returns the statuses.
async fn race(desk: &Desk, update: &Value, n: usize) -> Vec<u16> {
    let body = update.to_string();
    futures::future::join_all((0..n).map(|_| desk.post_raw(&body, Some(SECRET)))).await
}

/// `/start` (with `text` after it, if any) from customer `customer` speaking `language`.
fn start(update_id: i64, customer: i64, language: Option<&str>, text: &str) -> Value {
    let mut update = fixture("command_start");
    update["update_id"] = json!(update_id);
    update["message"]["message_id"] = json!(update_id);
    update["message"]["from"]["id"] = json!(customer);
    update["message"]["chat"]["id"] = json!(customer);
    update["message"]["text"] = json!(text);
    match language {
        Some(language) => update["message"]["from"]["language_code"] = json!(language),
        None => {
            update["message"]["from"]
                .as_object_mut()
                .unwrap()
                .remove("language_code");
        }
    }
    update
}

/// A press of a button the bot did not make, by customer `customer` speaking `language`.
fn stray_press(update_id: i64, customer: i64, language: &str) -> Value {
    let mut press = fixture("callback_query_category");
    press["update_id"] = json!(update_id);
    press["callback_query"]["id"] = json!(format!("query-{update_id}"));
    press["callback_query"]["from"]["id"] = json!(customer);
    press["callback_query"]["from"]["language_code"] = json!(language);
    press["callback_query"]["message"]["chat"]["id"] = json!(customer);
    press["callback_query"]["data"] = json!("no-longer-ours");
    press
}

#[tokio::test]
async fn concurrent_deliveries_of_one_start_greet_once() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("start_race", &telegram, Receive::Webhook).await;
    // A slow Telegram keeps the first delivery busy while the others arrive.
    telegram.slow_down("sendMessage", SLOW);
    let update = fixture("command_start");
    let statuses = race(&desk, &update, RACERS).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // Every delivery was answered only after the update was handled: no greeting can follow.
    assert_eq!(telegram.calls_of("sendMessage").len(), 1);
    assert_eq!(desk.count("customer.registered").await, 1);
    // A later repeat is answered at once, without a greeting.
    assert_eq!(race(&desk, &update, 1).await, [200]);
    assert_eq!(telegram.calls_of("sendMessage").len(), 1);
    desk.stop().await;
}

#[tokio::test]
async fn concurrent_deliveries_of_one_button_press_answer_once() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("press_race", &telegram, Receive::Webhook).await;
    telegram.slow_down("answerCallbackQuery", SLOW);
    let press = stray_press(41, sender_of(&fixture("command_start")), "en");
    let statuses = race(&desk, &press, RACERS).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let answers = telegram.calls_of("answerCallbackQuery");
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert_eq!(
        answers[0].param("text").as_deref(),
        BotText::ButtonExpired.built_in("en")
    );
    desk.stop().await;
}

#[tokio::test]
async fn a_claim_left_by_a_crashed_handler_lapses_and_the_next_delivery_greets() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("start_crash", &telegram, Receive::Webhook).await;
    let update = fixture("command_start");
    // A handler claimed the update and died: its lease ran out a moment ago.
    let key = format!(
        "telegram:{BOT_ID}:{}:{}",
        update["update_id"], update["message"]["date"]
    );
    sqlx::query(
        "insert into telegram_updates_handled (update_key, claim_id, claimed_until)
         values ($1, $2, now() - interval '1 second')",
    )
    .bind(&key)
    .bind(Uuid::now_v7())
    .execute(&desk.pool)
    .await
    .unwrap();
    desk.post(&update).await;
    assert_eq!(telegram.calls_of("sendMessage").len(), 1);
    assert_eq!(desk.count("customer.registered").await, 1);
    let claimed: Option<chrono::DateTime<Utc>> = sqlx::query_scalar(
        "select claimed_until from telegram_updates_handled where update_key = $1",
    )
    .bind(&key)
    .fetch_one(&desk.pool)
    .await
    .unwrap();
    assert_eq!(claimed, None, "marked handled, the claim ended");
    desk.stop().await;
}

#[tokio::test]
async fn a_delivery_behind_a_live_claim_is_not_acknowledged_until_the_update_is_handled() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("start_held", &telegram, Receive::Webhook).await;
    let update = fixture("command_start");
    let key = format!(
        "telegram:{BOT_ID}:{}:{}",
        update["update_id"], update["message"]["date"]
    );
    // Another delivery holds the claim, and may still die: this one must not answer 200.
    sqlx::query(
        "insert into telegram_updates_handled (update_key, claim_id, claimed_until)
         values ($1, $2, now() + interval '1 hour')",
    )
    .bind(&key)
    .bind(Uuid::now_v7())
    .execute(&desk.pool)
    .await
    .unwrap();
    let status = desk.post_raw(&update.to_string(), Some(SECRET)).await;
    assert_eq!(status, 500, "Telegram must deliver it again");
    assert!(telegram.calls_of("sendMessage").is_empty());
    // The holder died; once its lease is over, the next delivery handles the update.
    sqlx::query(
        "update telegram_updates_handled set claimed_until = now() - interval '1 second'
         where update_key = $1",
    )
    .bind(&key)
    .execute(&desk.pool)
    .await
    .unwrap();
    desk.post(&update).await;
    assert_eq!(telegram.calls_of("sendMessage").len(), 1);
    desk.stop().await;
}

/// The read model's view of the customer's message `telegram_message_id`: its text, and the
/// texts of its earlier versions.
async fn message_versions(desk: &Desk, telegram_message_id: i64) -> (String, Vec<String>) {
    let (text, edits): (String, Value) = sqlx::query_as(
        "select text, edits from messages where telegram_message_id = $1 and direction = 'in'",
    )
    .bind(i32::try_from(telegram_message_id).unwrap())
    .fetch_one(&desk.pool)
    .await
    .unwrap();
    let earlier = edits
        .as_array()
        .unwrap()
        .iter()
        .map(|version| version["text"].as_str().unwrap().to_owned())
        .collect();
    (text, earlier)
}

#[tokio::test]
async fn an_edit_after_its_message_keeps_the_message_as_first_sent() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("edit_in_order", &telegram, Receive::Webhook).await;
    let message = fixture("message_text");
    let edited = fixture("edited_message");
    let id = message["message"]["message_id"].as_i64().unwrap();
    desk.post(&message).await;
    desk.post(&edited).await;
    desk.wait_for_rows(
        "select count(*) from messages where jsonb_array_length(edits) = 1",
        1,
    )
    .await;
    let (text, earlier) = message_versions(&desk, id).await;
    assert_eq!(text, edited["edited_message"]["text"].as_str().unwrap());
    assert_eq!(earlier, [message["message"]["text"].as_str().unwrap()]);
    desk.stop().await;
}

#[tokio::test]
async fn an_edit_before_its_message_is_kept_and_applied_when_the_message_comes() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("edit_first", &telegram, Receive::Webhook).await;
    let message = fixture("message_text");
    let edited = fixture("edited_message");
    let id = message["message"]["message_id"].as_i64().unwrap();
    // The edit comes first: nothing to edit yet, so it is kept, not dropped.
    desk.post(&edited).await;
    assert_eq!(desk.count("ticket.customer_message_edited").await, 0);
    let kept: i64 = sqlx::query_scalar("select count(*) from telegram_early_edits")
        .fetch_one(&desk.pool)
        .await
        .unwrap();
    assert_eq!(kept, 1);
    // A repeat of the edit keeps it once.
    desk.post(&edited).await;
    // The message comes: it is recorded as sent, then edited.
    desk.post(&message).await;
    assert_eq!(desk.count("ticket.customer_message_posted").await, 1);
    let edits = desk.payloads("ticket.customer_message_edited").await;
    assert_eq!(edits.len(), 1);
    assert_eq!(
        edits[0]["content"]["body"]["text"],
        edited["edited_message"]["text"]
    );
    let kept: i64 = sqlx::query_scalar("select count(*) from telegram_early_edits")
        .fetch_one(&desk.pool)
        .await
        .unwrap();
    assert_eq!(kept, 0, "applied and forgotten");
    desk.wait_for_rows(
        "select count(*) from messages where jsonb_array_length(edits) = 1",
        1,
    )
    .await;
    let (text, earlier) = message_versions(&desk, id).await;
    assert_eq!(text, edited["edited_message"]["text"].as_str().unwrap());
    assert_eq!(earlier, [message["message"]["text"].as_str().unwrap()]);
    // Both again, in any order: nothing new.
    desk.post(&message).await;
    desk.post(&edited).await;
    assert_eq!(desk.count("ticket.customer_message_edited").await, 1);
    desk.stop().await;
}

#[tokio::test]
async fn an_edit_racing_its_message_is_applied_once() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("edit_race", &telegram, Receive::Webhook).await;
    let message = fixture("message_text").to_string();
    let edited = fixture("edited_message").to_string();
    let (a, b) = tokio::join!(
        desk.post_raw(&edited, Some(SECRET)),
        desk.post_raw(&message, Some(SECRET))
    );
    assert_eq!((a, b), (200, 200));
    assert_eq!(desk.count("ticket.customer_message_posted").await, 1);
    assert_eq!(desk.count("ticket.customer_message_edited").await, 1);
    desk.stop().await;
}

#[tokio::test]
async fn customers_get_the_bots_texts_in_their_language() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("languages", &telegram, Receive::Webhook).await;
    // Before any update: the bot reads the settings at its first one.
    set_text(&desk.log, BotText::Help, "ru", "Спросите нас о чём угодно.").await;
    set_text(
        &desk.log,
        BotText::Greeting,
        "de",
        "Willkommen beim Support!",
    )
    .await;
    let (ivan, hans, pierre, nobody) = (7_100, 7_101, 7_102, 7_103);

    desk.post(&start(1, ivan, Some("ru"), "/start")).await;
    desk.post(&start(2, ivan, Some("ru"), "/help")).await;
    desk.post(&start(3, hans, Some("de-AT"), "/start")).await;
    desk.post(&start(4, hans, Some("de-AT"), "/help")).await;
    desk.post(&start(5, pierre, Some("fr"), "/start")).await;
    desk.post(&start(6, nobody, None, "/close")).await;
    desk.post(&stray_press(7, ivan, "ru")).await;

    let sent: Vec<(Option<i64>, Option<String>)> = telegram
        .calls_of("sendMessage")
        .iter()
        .map(|call| (call.chat_id(), call.text()))
        .collect();
    let text = |key: BotText, language: &str| key.built_in(language).map(str::to_owned);
    assert_eq!(
        sent,
        [
            (Some(ivan), text(BotText::Greeting, "ru")),
            (Some(ivan), Some("Спросите нас о чём угодно.".to_owned())),
            (Some(hans), Some("Willkommen beim Support!".to_owned())),
            // No German help of the admins: English.
            (Some(hans), text(BotText::Help, "en")),
            (Some(pierre), text(BotText::Greeting, "en")),
            (Some(nobody), text(BotText::NoOpenTicket, "en")),
        ]
    );
    let answers = telegram.calls_of("answerCallbackQuery");
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].param("text"), text(BotText::ButtonExpired, "ru"));
    desk.stop().await;
}

#[tokio::test]
async fn the_rating_prompt_and_the_topic_question_speak_the_customers_language() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("rating_language", &telegram, Receive::Webhook).await;
    change_settings(
        &desk.log,
        SettingsCommand::AddCategory {
            category_id: CategoryId::from_uuid(Uuid::now_v7()),
            name: "Оплата".into(),
            by: AgentId::from_uuid(Uuid::now_v7()),
            at: Utc::now(),
        },
    )
    .await;
    let ivan = 7_200;
    desk.post(&start(1, ivan, Some("ru"), "/start")).await;
    let greeting = telegram.calls_of("sendMessage");
    assert_eq!(
        greeting[0].text(),
        Some(format!(
            "{}\n\n{}",
            BotText::Greeting.built_in("ru").unwrap(),
            BotText::CategoryQuestion.built_in("ru").unwrap()
        ))
    );
    let mut message = fixture("message_text");
    message["message"]["from"]["id"] = json!(ivan);
    message["message"]["from"]["language_code"] = json!("ru");
    message["message"]["chat"]["id"] = json!(ivan);
    desk.post(&message).await;
    let stream: String = sqlx::query_scalar(
        "select stream_id from events where event_type = 'ticket.opened' limit 1",
    )
    .fetch_one(&desk.pool)
    .await
    .unwrap();
    let ticket = TicketId::from_uuid(stream.strip_prefix("ticket-").unwrap().parse().unwrap());
    CommandService::new(desk.log.clone())
        .execute_ticket(
            ticket,
            &TicketCommand::Resolve {
                by: TicketActor::System,
                at: Utc::now(),
            },
            &CommandContext::new(eventlog::Actor::system("test")),
        )
        .await
        .unwrap();
    let sent = telegram.wait_for_calls("sendMessage", 2, PATIENCE).await;
    assert_eq!(sent[1].chat_id(), Some(ivan));
    assert_eq!(
        sent[1].text().as_deref(),
        BotText::RatingPrompt.built_in("ru")
    );
    desk.stop().await;
}

#[tokio::test]
async fn start_payloads_are_kept_on_the_customer_first_and_latest() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("payloads", &telegram, Receive::Webhook).await;
    let lea = 7_300;
    desk.post(&start(1, lea, Some("fr"), "/start ads-spring_2026"))
        .await;
    desk.post(&start(2, lea, Some("fr"), "/start")).await;
    desk.post(&start(3, lea, Some("fr"), "/start ref-42")).await;
    desk.post(&start(4, lea, Some("fr"), "/start ref-42")).await;
    // Typed by hand, past Telegram's rules: kept, bounded, on one line; still greeted.
    let typed = format!("/start ../../etc\u{0}\n{}", "é".repeat(100));
    desk.post(&start(5, lea, Some("fr"), &typed)).await;
    let payloads: Vec<String> = desk
        .payloads("customer.start_payload_received")
        .await
        .iter()
        .map(|p| p["payload"].as_str().unwrap().to_owned())
        .collect();
    let weird = format!("../../etc\u{FFFD}\u{FFFD}{}", "é".repeat(53));
    assert_eq!(payloads, ["ads-spring_2026", "ref-42", weird.as_str()]);
    assert_eq!(
        telegram.calls_of("sendMessage").len(),
        5,
        "every /start greeted"
    );
    desk.wait_for_rows(
        "select count(*) from customers where first_start_payload = 'ads-spring_2026' \
         and start_payload like '../../etc%'",
        1,
    )
    .await;
    desk.stop().await;
}

#[tokio::test]
async fn polling_keeps_a_start_payload_and_greets_once() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("payload_polling", &telegram, Receive::Polling).await;
    let update = start(11, 7_400, Some("ru"), "/start promo_7");
    telegram.push_update(update.clone());
    telegram.push_update(update);
    desk.wait_for("customer.start_payload_received", 1).await;
    testkit::eventually(async || telegram.pending_updates() == 0, PATIENCE).await;
    let greetings = telegram.wait_for_calls("sendMessage", 1, PATIENCE).await;
    assert_eq!(
        greetings[0].text().as_deref(),
        BotText::Greeting.built_in("ru")
    );
    let payloads = desk.payloads("customer.start_payload_received").await;
    assert_eq!(payloads[0]["payload"], "promo_7");
    assert_eq!(telegram.calls_of("sendMessage").len(), 1);
    desk.stop().await;
}
