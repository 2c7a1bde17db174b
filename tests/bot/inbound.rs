//! Updates into commands: fixtures posted to the webhook (and served by `getUpdates`) end up
//! as events and read-model rows, exactly once; bad requests record nothing.
use app::commands::{CommandContext, CommandService};
use chrono::Utc;
use domain::customer::{Customer, CustomerCommand};
use domain::settings::{Settings, SettingsCommand};
use domain::ticket::{Actor as TicketActor, TicketCommand};
use domain::{AgentId, CategoryId, CustomerId, StreamId, TicketId};
use eventlog::postgres::PostgresLog;
use serde_json::{Value, json};
use testkit::eventually;
use testkit::telegram::FakeTelegram;
use uuid::Uuid;

use crate::support::{Desk, PATIENCE, Receive, SECRET, fixture, fixtures, sender_of};

fn admin() -> (AgentId, CommandContext) {
    (
        AgentId::from_uuid(Uuid::now_v7()),
        CommandContext::new(eventlog::Actor::system("test")),
    )
}

async fn add_category(log: &PostgresLog, name: &str) -> CategoryId {
    let (by, ctx) = admin();
    let category_id = CategoryId::from_uuid(Uuid::now_v7());
    CommandService::new(log.clone())
        .execute::<Settings>(
            StreamId::Settings,
            &SettingsCommand::AddCategory {
                category_id,
                name: name.to_owned(),
                by,
                at: Utc::now(),
            },
            &ctx,
        )
        .await
        .unwrap();
    category_id
}

/// The ticket the customer's messages went to (from the log, not a read model).
async fn ticket_of(desk: &Desk, customer: i64) -> TicketId {
    let stream: String = sqlx::query_scalar(
        "select stream_id from events where event_type = 'ticket.opened' \
         and payload->>'customer' = $1 order by tx_id, position limit 1",
    )
    .bind(customer.to_string())
    .fetch_one(&desk.pool)
    .await
    .unwrap();
    TicketId::from_uuid(stream.strip_prefix("ticket-").unwrap().parse().unwrap())
}

#[tokio::test]
async fn every_message_kind_posted_to_the_webhook_reaches_the_ticket_and_its_read_model() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("kinds", &telegram, Receive::Webhook).await;
    let names = fixtures("message_");
    assert!(names.len() >= 17, "fixtures missing: {names:?}");
    let mut per_customer = std::collections::BTreeMap::<i64, usize>::new();
    for name in &names {
        let update = fixture(name);
        *per_customer.entry(sender_of(&update)).or_default() += 1;
        desk.post(&update).await;
    }
    let customers = i64::try_from(per_customer.len()).unwrap();
    let messages = i64::try_from(names.len()).unwrap();
    // One ticket per customer (its first message opens it), and every message on it.
    assert_eq!(desk.count("ticket.opened").await, customers);
    assert_eq!(desk.count("ticket.customer_message_posted").await, messages);
    desk.wait_for_rows(
        "select count(*) from messages where direction = 'in'",
        messages,
    )
    .await;
    let kinds: Vec<String> = sqlx::query_scalar("select distinct kind from messages order by kind")
        .fetch_all(&desk.pool)
        .await
        .unwrap();
    for kind in [
        "animation",
        "audio",
        "contact",
        "document",
        "location",
        "photo",
        "sticker",
        "text",
        "venue",
        "video",
        "video_note",
        "voice",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    // The largest photo size, the forward origin and the reply are kept.
    let photo = fixture("message_photo");
    let sizes = photo["message"]["photo"].as_array().unwrap();
    let largest = sizes
        .iter()
        .max_by_key(|size| size["width"].as_i64().unwrap() * size["height"].as_i64().unwrap())
        .unwrap();
    let stored: i64 = sqlx::query_scalar("select count(*) from messages where file_id = $1")
        .bind(largest["file_id"].as_str().unwrap())
        .fetch_one(&desk.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "the largest photo size is stored");
    let forwarded: i64 =
        sqlx::query_scalar("select count(*) from messages where forward_origin is not null")
            .fetch_one(&desk.pool)
            .await
            .unwrap();
    // The four kinds of origin, and a channel's paid media.
    assert_eq!(forwarded, 5, "the forward origins are kept");
    let reply = fixture("message_reply");
    let reply_to: Option<i32> = sqlx::query_scalar(
        "select reply_to_telegram_message_id from messages where telegram_message_id = $1",
    )
    .bind(i32::try_from(reply["message"]["message_id"].as_i64().unwrap()).unwrap())
    .fetch_one(&desk.pool)
    .await
    .unwrap();
    assert_eq!(
        reply_to.map(i64::from),
        reply["message"]["reply_to_message"]["message_id"].as_i64()
    );
    // The bot says nothing back to ordinary messages.
    assert!(telegram.calls_of("sendMessage").is_empty());
    desk.stop().await;
}

#[tokio::test]
async fn the_same_update_delivered_twice_has_one_effect() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("dupes", &telegram, Receive::Webhook).await;
    let update = fixture("message_text");
    desk.post(&update).await;
    let after_first = desk.events().await;
    desk.post(&update).await;
    // Concurrent retries too.
    let (a, b, c) = tokio::join!(desk.post(&update), desk.post(&update), desk.post(&update));
    let ((), (), ()) = (a, b, c);
    assert_eq!(desk.events().await, after_first);
    assert_eq!(desk.count("ticket.opened").await, 1);
    // A /start repeated does not greet twice.
    let start = fixture("command_start");
    desk.post(&start).await;
    desk.post(&start).await;
    telegram.wait_for_calls("sendMessage", 1, PATIENCE).await;
    assert_eq!(telegram.calls_of("sendMessage").len(), 1);
    desk.stop().await;
}

#[tokio::test]
async fn a_request_without_the_secret_or_with_a_broken_body_records_nothing() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("refused", &telegram, Receive::Webhook).await;
    let update = fixture("message_text").to_string();
    let before = desk.events().await;
    assert_eq!(desk.post_raw(&update, None).await, 401);
    assert_eq!(desk.post_raw(&update, Some("wrong-secret")).await, 401);
    assert_eq!(desk.post_raw(&update, Some(&SECRET[1..])).await, 401);
    assert_eq!(
        desk.post_raw("{\"update_id\": 5, \"message\": ", Some(SECRET))
            .await,
        400
    );
    assert_eq!(desk.post_raw("not json at all", Some(SECRET)).await, 400);
    assert_eq!(
        desk.post_raw("{\"no_update_id\": true}", Some(SECRET))
            .await,
        400
    );
    let huge = format!(
        "{{\"update_id\": 1, \"pad\": \"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    assert_eq!(desk.post_raw(&huge, Some(SECRET)).await, 413);
    assert_eq!(desk.events().await, before, "nothing recorded");
    // The same update with the secret goes through.
    assert_eq!(desk.post_raw(&update, Some(SECRET)).await, 200);
    assert_eq!(desk.count("ticket.opened").await, 1);
    desk.stop().await;
}

#[tokio::test]
async fn updates_that_are_not_for_us_are_answered_and_ignored() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("ignored", &telegram, Receive::Webhook).await;
    let before = desk.events().await;
    for name in fixtures("ignored_") {
        desk.post(&fixture(&name)).await;
    }
    assert_eq!(desk.events().await, before);
    assert!(telegram.calls_of("sendMessage").is_empty());
    desk.stop().await;
}

#[tokio::test]
async fn start_greets_offers_categories_and_a_chosen_category_files_the_next_ticket() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("start", &telegram, Receive::Webhook).await;
    let billing = add_category(&desk.log, "Billing").await;
    let shipping = add_category(&desk.log, "Shipping").await;
    let start = fixture("command_start");
    let customer = sender_of(&start);
    desk.post(&start).await;
    assert_eq!(desk.count("customer.registered").await, 1);
    let greeting = telegram.wait_for_calls("sendMessage", 1, PATIENCE).await;
    assert_eq!(greeting[0].chat_id(), Some(customer));
    // The greeting, then the question above the topic buttons.
    assert_eq!(
        greeting[0].text(),
        Some(format!(
            "{}\n\n{}",
            bot::inbound::DEFAULT_GREETING,
            domain::settings::BotText::CategoryQuestion.english()
        ))
    );
    let keyboard = greeting[0].json_param("reply_markup").unwrap();
    let buttons: Vec<(String, String)> = keyboard["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().clone())
        .map(|button| {
            (
                button["text"].as_str().unwrap().to_owned(),
                button["callback_data"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        buttons,
        vec![
            ("Billing".to_owned(), format!("cat:{billing}")),
            ("Shipping".to_owned(), format!("cat:{shipping}")),
        ]
    );

    // The customer presses "Shipping".
    let mut press = fixture("callback_query_category");
    press["callback_query"]["from"]["id"] = json!(customer);
    press["callback_query"]["data"] = json!(format!("cat:{shipping}"));
    desk.post(&press).await;
    let answered = telegram
        .wait_for_calls("answerCallbackQuery", 1, PATIENCE)
        .await;
    assert_eq!(
        answered[0].param("callback_query_id").as_deref(),
        press["callback_query"]["id"].as_str()
    );
    let chosen = desk.payloads("customer.category_chosen").await;
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0]["category"], json!(shipping.to_string()));

    // Their next message opens a ticket in Shipping.
    let mut message = fixture("message_text");
    message["message"]["from"]["id"] = json!(customer);
    message["message"]["chat"]["id"] = json!(customer);
    desk.post(&message).await;
    let opened = desk.payloads("ticket.opened").await;
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["category"], json!(shipping.to_string()));

    // A button for a category that does not exist is answered and changes nothing.
    let mut forged = press.clone();
    forged["update_id"] = json!(press["update_id"].as_i64().unwrap() + 1000);
    forged["callback_query"]["id"] = json!("forged-query");
    forged["callback_query"]["data"] = json!(format!("cat:{}", Uuid::now_v7()));
    desk.post(&forged).await;
    telegram
        .wait_for_calls("answerCallbackQuery", 2, PATIENCE)
        .await;
    assert_eq!(desk.count("customer.category_chosen").await, 1);
    desk.stop().await;
}

#[tokio::test]
async fn help_answers_and_close_closes_the_customers_ticket() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("close", &telegram, Receive::Webhook).await;
    desk.post(&fixture("command_help")).await;
    let help = telegram.wait_for_calls("sendMessage", 1, PATIENCE).await;
    assert_eq!(help[0].text().as_deref(), Some(bot::inbound::HELP));

    let message = fixture("message_text");
    let customer = sender_of(&message);
    desk.post(&message).await;
    let mut close = fixture("command_close");
    close["message"]["from"]["id"] = json!(customer);
    close["message"]["chat"]["id"] = json!(customer);
    desk.post(&close).await;
    assert_eq!(desk.count("ticket.closed").await, 1);
    assert_eq!(desk.count("customer.ticket_closed").await, 1);
    let answers = telegram.wait_for_calls("sendMessage", 2, PATIENCE).await;
    assert_eq!(answers[1].chat_id(), Some(customer));
    assert!(answers[1].text().unwrap().contains("closed"));
    // The next message opens a new ticket.
    let mut again = message.clone();
    again["update_id"] = json!(message["update_id"].as_i64().unwrap() + 500);
    again["message"]["message_id"] = json!(9_001);
    desk.post(&again).await;
    assert_eq!(desk.count("ticket.opened").await, 2);
    desk.stop().await;
}

#[tokio::test]
async fn an_edit_is_recorded_on_the_ticket_holding_the_message() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("edit", &telegram, Receive::Webhook).await;
    let message = fixture("message_text");
    let edited = fixture("edited_message");
    assert_eq!(
        message["message"]["message_id"],
        edited["edited_message"]["message_id"]
    );
    desk.post(&message).await;
    desk.post(&edited).await;
    let edits = desk.payloads("ticket.customer_message_edited").await;
    assert_eq!(edits.len(), 1);
    assert_eq!(
        edits[0]["content"]["body"]["text"],
        edited["edited_message"]["text"]
    );
    desk.wait_for_rows(
        "select count(*) from messages where edited_at is not null",
        1,
    )
    .await;
    desk.stop().await;
}

#[tokio::test]
async fn a_banned_customers_message_is_kept_but_opens_nothing_and_gets_no_answer() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("banned", &telegram, Receive::Webhook).await;
    let message = fixture("message_text");
    let customer = sender_of(&message);
    let mut hello = fixture("command_start");
    hello["message"]["from"]["id"] = json!(customer);
    hello["message"]["chat"]["id"] = json!(customer);
    desk.post(&hello).await;
    telegram.wait_for_calls("sendMessage", 1, PATIENCE).await;
    let (by, ctx) = admin();
    CommandService::new(desk.log.clone())
        .execute::<Customer>(
            StreamId::Customer(CustomerId(customer)),
            &CustomerCommand::Ban {
                by,
                reason: Some("abuse".into()),
                at: Utc::now(),
            },
            &ctx,
        )
        .await
        .unwrap();
    desk.post(&message).await;
    let mut start = fixture("command_start_with_payload");
    start["message"]["from"]["id"] = json!(customer);
    start["message"]["chat"]["id"] = json!(customer);
    desk.post(&start).await;
    let refused = desk.payloads("customer.message_refused").await;
    assert_eq!(refused.len(), 2, "both messages kept");
    assert_eq!(
        refused[0]["content"]["body"]["text"],
        message["message"]["text"]
    );
    assert_eq!(desk.count("ticket.opened").await, 0);
    // Only the greeting from before the ban (the webhook answers once the update is handled).
    assert_eq!(telegram.calls_of("sendMessage").len(), 1);
    desk.stop().await;
}

#[tokio::test]
async fn blocking_and_unblocking_the_bot_is_recorded() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("blocked", &telegram, Receive::Webhook).await;
    // Unknown customers are ignored.
    desk.post(&fixture("my_chat_member_kicked")).await;
    assert_eq!(desk.count("customer.blocked_bot").await, 0);
    let kicked = fixture("my_chat_member_kicked");
    let customer = kicked["my_chat_member"]["from"]["id"].as_i64().unwrap();
    let mut start = fixture("command_start");
    start["message"]["from"]["id"] = json!(customer);
    start["message"]["chat"]["id"] = json!(customer);
    desk.post(&start).await;
    let mut kicked_again = kicked.clone();
    kicked_again["update_id"] = json!(kicked["update_id"].as_i64().unwrap() + 1000);
    desk.post(&kicked_again).await;
    assert_eq!(desk.count("customer.blocked_bot").await, 1);
    let mut member = fixture("my_chat_member_member");
    member["my_chat_member"]["from"]["id"] = json!(customer);
    member["my_chat_member"]["chat"]["id"] = json!(customer);
    desk.post(&member).await;
    assert_eq!(desk.count("customer.unblocked_bot").await, 1);
    desk.wait_for_rows(
        "select count(*) from customers where blocked_bot = false",
        1,
    )
    .await;
    desk.stop().await;
}

#[tokio::test]
async fn a_rating_button_rates_the_customers_resolved_ticket_only() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("rating", &telegram, Receive::Webhook).await;
    let message = fixture("message_text");
    let customer = sender_of(&message);
    desk.post(&message).await;
    let ticket = ticket_of(&desk, customer).await;
    let rating = |update_id: i64, query: &str, from: i64, stars: u8| -> Value {
        let mut press = fixture("callback_query_rating");
        press["update_id"] = json!(update_id);
        press["callback_query"]["id"] = json!(query);
        press["callback_query"]["from"]["id"] = json!(from);
        press["callback_query"]["data"] = json!(format!("csat:{ticket}:{stars}"));
        press
    };
    // Not resolved yet: refused, but answered.
    desk.post(&rating(1, "q1", customer, 4)).await;
    telegram
        .wait_for_calls("answerCallbackQuery", 1, PATIENCE)
        .await;
    assert_eq!(desk.count("ticket.rated").await, 0);
    let ctx = CommandContext::new(eventlog::Actor::system("test"));
    CommandService::new(desk.log.clone())
        .execute_ticket(
            ticket,
            &TicketCommand::Resolve {
                by: TicketActor::System,
                at: Utc::now(),
            },
            &ctx,
        )
        .await
        .unwrap();
    // Someone else's press on a forged button: refused.
    desk.post(&rating(2, "q2", customer + 1, 1)).await;
    // The customer's own press: recorded once, answered each time.
    desk.post(&rating(3, "q3", customer, 5)).await;
    desk.post(&rating(4, "q4", customer, 2)).await;
    let answers = telegram
        .wait_for_calls("answerCallbackQuery", 4, PATIENCE)
        .await;
    let rated = desk.payloads("ticket.rated").await;
    assert_eq!(rated.len(), 1);
    assert_eq!(rated[0]["rating"], json!(5));
    assert!(answers[2].param("text").unwrap().contains("Thank you"));
    desk.stop().await;
}

#[tokio::test]
async fn polling_records_every_update_once_across_a_restart() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("polling", &telegram, Receive::Polling).await;
    let names = fixtures("message_");
    for name in names.iter().take(5) {
        telegram.push_update(fixture(name));
    }
    desk.wait_for("ticket.customer_message_posted", 5).await;
    telegram.wait_for_calls("deleteWebhook", 1, PATIENCE).await;
    let database = desk.stop_keeping_database().await;
    // The same updates again (Telegram resends what was not confirmed), and new ones.
    for name in names.iter().take(8) {
        telegram.push_update(fixture(name));
    }
    let desk = Desk::start_on(database, &telegram, Receive::Polling).await;
    desk.wait_for("ticket.customer_message_posted", 8).await;
    // Let the poller take (and confirm) anything else the fake still holds.
    eventually(async || telegram.pending_updates() == 0, PATIENCE).await;
    assert_eq!(
        desk.count("ticket.customer_message_posted").await,
        8,
        "each message recorded once"
    );
    desk.stop().await;
}

#[tokio::test]
async fn the_webhook_is_registered_with_its_secret_at_start() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("register", &telegram, Receive::Webhook).await;
    let calls = telegram.wait_for_calls("setWebhook", 1, PATIENCE).await;
    assert_eq!(
        calls[0].param("url").as_deref(),
        Some("https://desk.example/telegram/webhook")
    );
    assert_eq!(calls[0].param("secret_token").as_deref(), Some(SECRET));
    desk.stop().await;
}

#[tokio::test]
async fn a_customer_message_and_an_agent_reply_make_the_round_trip() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("roundtrip", &telegram, Receive::Webhook).await;
    let message = fixture("message_text");
    let customer = sender_of(&message);
    desk.post(&message).await;
    let ticket = ticket_of(&desk, customer).await;
    // The read models show the ticket and the message.
    desk.wait_for_rows(
        "select count(*) from tickets t join messages m on m.ticket_id = t.id \
         where m.direction = 'in'",
        1,
    )
    .await;
    let shown: Option<String> = sqlx::query_scalar(
        "select m.text from messages m join tickets t on t.id = m.ticket_id \
         where t.customer_id = $1",
    )
    .bind(customer)
    .fetch_one(&desk.pool)
    .await
    .unwrap();
    assert_eq!(shown.as_deref(), message["message"]["text"].as_str());

    // An agent replies through the command service.
    let reply_id = domain::MessageId::from_uuid(Uuid::now_v7());
    let agent = AgentId::from_uuid(Uuid::now_v7());
    let ctx = CommandContext::new(eventlog::Actor::new(
        eventlog::ActorKind::Agent,
        agent.to_string(),
    ));
    CommandService::new(desk.log.clone())
        .execute_ticket(
            ticket,
            &TicketCommand::ReplyAsAgent(domain::ticket::ReplyAsAgent {
                reply_to: None,
                message_id: reply_id,
                agent,
                template: None,
                content: domain::content::ReplyContent::text("It ships tomorrow."),
                at: Utc::now(),
            }),
            &ctx,
        )
        .await
        .unwrap();
    let sent = telegram.wait_for_calls("sendMessage", 1, PATIENCE).await;
    assert_eq!(sent[0].chat_id(), Some(customer));
    assert_eq!(sent[0].text().as_deref(), Some("It ships tomorrow."));
    desk.wait_for("ticket.reply_delivered", 1).await;
    let delivered = desk.payloads("ticket.reply_delivered").await;
    assert_eq!(delivered[0]["message_id"], json!(reply_id.to_string()));
    assert_eq!(
        delivered[0]["telegram_message_id"],
        json!(sent[0].message_id.unwrap())
    );
    desk.wait_for_rows(
        "select count(*) from messages where delivery_state = 'delivered'",
        1,
    )
    .await;
    desk.stop().await;
}

#[tokio::test]
async fn dates_that_cannot_be_real_are_recorded_as_the_time_of_receipt() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("dates", &telegram, Receive::Webhook).await;
    let at = |payload: &Value| {
        chrono::DateTime::parse_from_rfc3339(payload["at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    // A real date in the past is kept as Telegram gave it.
    let kept = fixture("message_text");
    desk.post(&kept).await;
    let opened = desk.payloads("ticket.opened").await;
    assert_eq!(
        at(&opened[0]).timestamp(),
        kept["message"]["date"].as_i64().unwrap()
    );
    // Far in the future (2^40 s is the year 36812) and before the Bot API existed.
    for (n, date) in [(1_i64, 1_i64 << 40), (2, 1_000)] {
        let mut message = fixture("message_text");
        let customer = 7_000 + n;
        message["update_id"] = json!(kept["update_id"].as_i64().unwrap() + n);
        message["message"]["from"]["id"] = json!(customer);
        message["message"]["chat"]["id"] = json!(customer);
        message["message"]["date"] = json!(date);
        let before = Utc::now();
        desk.post(&message).await;
        let after = Utc::now();
        let opened = desk.payloads("ticket.opened").await;
        let received = at(opened.last().unwrap());
        assert!(
            before <= received && received <= after,
            "{date}: {received}"
        );
    }
    // An edit dated in the future.
    let mut edited = fixture("edited_message");
    edited["edited_message"]["edit_date"] = json!(1_i64 << 40);
    let before = Utc::now();
    desk.post(&edited).await;
    let after = Utc::now();
    let edits = desk.payloads("ticket.customer_message_edited").await;
    let received = at(&edits[0]);
    assert!(before <= received && received <= after, "{received}");
    desk.stop().await;
}
