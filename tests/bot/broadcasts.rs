//! What customers do with broadcasts through the bot: `/stop` and the unsubscribe button opt
//! them out (never out of their tickets' replies), `/start` opts them back in, and presses of
//! a broadcast's callback buttons are recorded once per update and answered.

use app::commands::{CommandContext, CommandService};
use chrono::Utc;
use domain::broadcast::{
    Audience, Broadcast, BroadcastCommand, BroadcastContent, ButtonAction, InlineButton,
    ResolvedAudience, TextFormat,
};
use domain::settings::BotText;
use domain::ticket::{ReplyAsAgent, TicketCommand};
use domain::{AgentId, BroadcastId, CustomerId, StreamId, TicketId};
use serde_json::{Value, json};
use testkit::telegram::FakeTelegram;
use uuid::Uuid;

use crate::support::{Desk, PATIENCE, Receive, fixture, sender_of};

/// A command from `customer` as update `update_id`.
fn command(customer: i64, update_id: i64, text: &str) -> Value {
    let mut update = fixture("command_help");
    update["update_id"] = json!(update_id);
    update["message"]["message_id"] = json!(update_id % 100_000);
    update["message"]["from"]["id"] = json!(customer);
    update["message"]["chat"]["id"] = json!(customer);
    update["message"]["text"] = json!(text);
    update["message"]["entities"][0]["length"] = json!(text.chars().count());
    update
}

/// A press by `customer` of a button carrying `data`, as update `update_id`.
fn press(customer: i64, update_id: i64, data: &str) -> Value {
    let mut update = fixture("callback_query_rating");
    update["update_id"] = json!(update_id);
    update["callback_query"]["id"] = json!(format!("query-{update_id}"));
    update["callback_query"]["from"]["id"] = json!(customer);
    update["callback_query"]["data"] = json!(data);
    update
}

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

async fn opted_out(desk: &Desk, customer: i64, expected: bool) {
    testkit::eventually(
        async || {
            let row: Option<bool> =
                sqlx::query_scalar("select opted_out_of_broadcasts from customers where id = $1")
                    .bind(customer)
                    .fetch_optional(&desk.pool)
                    .await
                    .unwrap();
            if row == Some(expected) {
                Ok(())
            } else {
                Err(format!("customers shows {row:?}"))
            }
        },
        PATIENCE,
    )
    .await;
}

#[tokio::test]
async fn stop_opts_out_start_opts_back_in_and_replies_still_reach_an_opted_out_customer() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("optout", &telegram, Receive::Webhook).await;
    let message = fixture("message_text");
    let customer = sender_of(&message);
    desk.post(&message).await;
    let ticket = ticket_of(&desk, customer).await;

    let stop = command(customer, 700_001, "/stop");
    desk.post(&stop).await;
    assert_eq!(desk.count("customer.opted_out_of_broadcasts").await, 1);
    let answers = telegram.wait_for_calls("sendMessage", 1, PATIENCE).await;
    assert_eq!(answers[0].chat_id(), Some(customer));
    assert_eq!(
        answers[0].text().as_deref(),
        Some(BotText::Unsubscribed.english())
    );
    opted_out(&desk, customer, true).await;
    // The same update again: nothing more, not even an answer. Another /stop: answered,
    // nothing recorded (they are out already).
    desk.post(&stop).await;
    desk.post(&command(customer, 700_002, "/STOP")).await;
    telegram.wait_for_calls("sendMessage", 2, PATIENCE).await;
    assert_eq!(desk.count("customer.opted_out_of_broadcasts").await, 1);

    // An agent's reply still reaches them.
    let agent = AgentId::from_uuid(Uuid::now_v7());
    CommandService::new(desk.log.clone())
        .execute_ticket(
            ticket,
            &TicketCommand::ReplyAsAgent(ReplyAsAgent {
                reply_to: None,
                message_id: domain::MessageId::from_uuid(Uuid::now_v7()),
                agent,
                template: None,
                content: domain::content::ReplyContent::text("Your order ships today."),
                at: Utc::now(),
            }),
            &CommandContext::new(eventlog::Actor::new(
                eventlog::ActorKind::Agent,
                agent.to_string(),
            )),
        )
        .await
        .unwrap();
    desk.wait_for("ticket.reply_delivered", 1).await;
    let sent = telegram.wait_for_calls("sendMessage", 3, PATIENCE).await;
    assert_eq!(sent[2].chat_id(), Some(customer));
    assert_eq!(sent[2].text().as_deref(), Some("Your order ships today."));

    // /start opts them back in, and says so after the greeting; a second /start does not.
    desk.post(&command(customer, 700_003, "/start")).await;
    assert_eq!(desk.count("customer.opted_into_broadcasts").await, 1);
    let sent = telegram.wait_for_calls("sendMessage", 4, PATIENCE).await;
    assert_eq!(
        sent[3].text().as_deref(),
        Some(
            format!(
                "{}\n\n{}",
                bot::inbound::DEFAULT_GREETING,
                BotText::Resubscribed.english()
            )
            .as_str()
        )
    );
    opted_out(&desk, customer, false).await;
    desk.post(&command(customer, 700_004, "/start")).await;
    let sent = telegram.wait_for_calls("sendMessage", 5, PATIENCE).await;
    assert_eq!(
        sent[4].text().as_deref(),
        Some(bot::inbound::DEFAULT_GREETING)
    );
    assert_eq!(desk.count("customer.opted_into_broadcasts").await, 1);
    desk.stop().await;
}

#[tokio::test]
async fn the_unsubscribe_button_opts_out_and_answers_on_the_button() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("unsubscribe", &telegram, Receive::Webhook).await;
    let message = fixture("message_text");
    let customer = sender_of(&message);
    desk.post(&message).await;

    let button = format!("bu:{}", Uuid::now_v7());
    let first = press(customer, 710_001, &button);
    desk.post(&first).await;
    assert_eq!(desk.count("customer.opted_out_of_broadcasts").await, 1);
    let answers = telegram
        .wait_for_calls("answerCallbackQuery", 1, PATIENCE)
        .await;
    assert_eq!(
        answers[0].param("callback_query_id").as_deref(),
        Some("query-710001")
    );
    assert_eq!(
        answers[0].param("text").as_deref(),
        Some(BotText::Unsubscribed.english())
    );
    opted_out(&desk, customer, true).await;
    desk.post(&first).await;
    desk.post(&press(customer, 710_002, &button)).await;
    telegram
        .wait_for_calls("answerCallbackQuery", 2, PATIENCE)
        .await;
    assert_eq!(desk.count("customer.opted_out_of_broadcasts").await, 1);
    // Nothing was sent into the chat: the answer is on the button.
    assert!(telegram.calls_of("sendMessage").is_empty());
    desk.stop().await;
}

/// A broadcast with a link button (0) and two callback buttons (1, 2); started when `start`.
/// A broadcast drafted, and started for `recipients` when given.
async fn broadcast(desk: &Desk, recipients: Option<Vec<i64>>) -> BroadcastId {
    let commands = CommandService::new(desk.log.clone());
    let ctx = CommandContext::new(eventlog::Actor::system("test"));
    let id = BroadcastId(Uuid::now_v7());
    let by = AgentId::from_uuid(Uuid::now_v7());
    let callback = |label: &str, data: &str| InlineButton {
        label: label.into(),
        action: ButtonAction::Callback { data: data.into() },
    };
    let content = BroadcastContent {
        text: Some("Do you like our new app?".into()),
        format: TextFormat::Plain,
        media: None,
        unsubscribe_button: true,
        buttons: vec![
            vec![InlineButton {
                label: "Open".into(),
                action: ButtonAction::Url {
                    url: "https://example.com".into(),
                },
            }],
            vec![callback("Yes", "vote:yes"), callback("No", "vote:no")],
        ],
    };
    let draft = BroadcastCommand::Draft {
        broadcast_id: id,
        audience: Audience::AllCustomers,
        content,
        by,
        at: Utc::now(),
    };
    commands
        .execute::<Broadcast>(StreamId::Broadcast(id), &draft, &ctx)
        .await
        .unwrap();
    if let Some(recipients) = recipients {
        let start = BroadcastCommand::Start {
            audience: ResolvedAudience {
                segment: Audience::AllCustomers,
                recipients: recipients.into_iter().map(CustomerId).collect(),
                excluded: vec![],
            },
            by: Some(by),
            at: Utc::now(),
        };
        commands
            .execute::<Broadcast>(StreamId::Broadcast(id), &start, &ctx)
            .await
            .unwrap();
    }
    id
}

#[tokio::test]
async fn presses_of_a_broadcasts_callback_buttons_are_recorded_once_per_update_and_answered() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("presses", &telegram, Receive::Webhook).await;
    let customer = 6_100_000_001;
    let running = broadcast(&desk, Some(vec![customer])).await;
    let draft = broadcast(&desk, None).await;

    let yes = press(customer, 720_001, &format!("bb:{}:1", running.0));
    desk.post(&yes).await;
    desk.post(&yes).await;
    desk.post(&press(customer, 720_002, &format!("bb:{}:2", running.0)))
        .await;
    desk.post(&press(customer, 720_003, &format!("bb:{}:1", running.0)))
        .await;
    let answers = telegram
        .wait_for_calls("answerCallbackQuery", 3, PATIENCE)
        .await;
    for answer in &answers[..3] {
        assert_eq!(
            answer.param("text").as_deref(),
            Some(BotText::BroadcastButtonThanks.english())
        );
    }
    let pressed = desk.payloads("broadcast.button_pressed").await;
    assert_eq!(pressed.len(), 3, "{pressed:#?}");
    assert_eq!(pressed[0]["customer"], json!(customer));
    assert_eq!(pressed[0]["index"], json!(1));
    assert_eq!(pressed[0]["label"], json!("Yes"));
    assert_eq!(pressed[0]["data"], json!("vote:yes"));
    assert_eq!(pressed[1]["data"], json!("vote:no"));

    // A link button, a button the broadcast lacks, a broadcast that never started, one that
    // does not exist, a customer it was not sent to: answered as expired, nothing recorded.
    for (n, (from, data)) in [
        (customer, format!("bb:{}:0", running.0)),
        (customer, format!("bb:{}:3", running.0)),
        (customer, format!("bb:{}:1", draft.0)),
        (customer, format!("bb:{}:1", Uuid::now_v7())),
        (customer + 1, format!("bb:{}:1", running.0)),
    ]
    .into_iter()
    .enumerate()
    {
        let update = 720_100 + i64::try_from(n).unwrap();
        desk.post(&press(from, update, &data)).await;
    }
    let answers = telegram
        .wait_for_calls("answerCallbackQuery", 8, PATIENCE)
        .await;
    for answer in &answers[3..] {
        assert_eq!(
            answer.param("text").as_deref(),
            Some(BotText::ButtonExpired.english()),
            "{answer:?}"
        );
    }
    assert_eq!(desk.count("broadcast.button_pressed").await, 3);

    // The read model counts them per customer and button.
    desk.wait_for_rows(
        "select coalesce(sum(presses), 0)::bigint from broadcast_button_presses",
        3,
    )
    .await;
    let rows: Vec<(i16, i32)> = sqlx::query_as(
        "select button_index, presses from broadcast_button_presses \
         where broadcast_id = $1 and customer_id = $2 order by button_index",
    )
    .bind(running.0)
    .bind(customer)
    .fetch_all(&desk.pool)
    .await
    .unwrap();
    assert_eq!(rows, [(1, 2), (2, 1)]);
    desk.stop().await;
}
