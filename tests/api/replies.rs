//! Telegram's reply links between a customer's messages and agent replies: an agent reply shows
//! the id Telegram gave it on delivery, and a message that replies to another resolves it.

use std::time::Duration;

use app::commands::CommandService;
use bot::delivery::DeliveryWorker;
use serde_json::{Value, json};
use testkit::eventually;
use testkit::telegram::FakeTelegram;

use crate::support::Server;

const MESSAGES: &str = "query($t: ID!) { ticket(id: $t) { messages(first: 10) { nodes {
    messageId direction text telegramMessageId replyToTelegramMessageId deliveryState
    replyTo { messageId direction text telegramMessageId }
} } } }";

async fn messages(server: &Server, token: &str, ticket: uuid::Uuid) -> Vec<Value> {
    let data = server.ok(token, MESSAGES, json!({ "t": ticket })).await;
    data["ticket"]["messages"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

/// The ticket's first message that `wanted` accepts, once the read model shows it.
async fn message_where(
    server: &Server,
    token: &str,
    ticket: uuid::Uuid,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    eventually(
        async || {
            messages(server, token, ticket)
                .await
                .into_iter()
                .find(|node| wanted(node))
                .ok_or_else(|| format!("{what} is not in the read model yet"))
        },
        Duration::from_secs(30),
    )
    .await
}

#[tokio::test]
async fn a_delivered_reply_shows_its_telegram_id_and_a_customer_reply_to_it_links_to_it() {
    let server = Server::start("replies_link").await;
    let admin = server.admin().await;
    let fake = FakeTelegram::start().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(
        DeliveryWorker::new(
            CommandService::new(server.log.clone()),
            fake.bot(),
            bot::delivery::DeliveryOptions::default(),
        )
        .run(stop.clone()),
    );

    let customer = 7_300_001;
    let (ticket, _) = server
        .customer_sends(customer, None, "my order is late", 910_001, None)
        .await;
    let sent = server
        .ok(
            &admin.token,
            "mutation($t: ID!) { replyToTicket(input: {ticketId: $t, text: \"It ships today.\"}) { messageId } }",
            json!({ "t": ticket }),
        )
        .await;
    let reply_id = sent["replyToTicket"]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Delivered: the reply carries the id Telegram answered sendMessage with.
    let delivered = eventually(
        async || {
            let nodes = messages(&server, &admin.token, ticket).await;
            nodes
                .into_iter()
                .find(|node| {
                    node["messageId"] == reply_id.as_str() && node["deliveryState"] == "delivered"
                })
                .ok_or_else(|| "the reply is not delivered yet".to_owned())
        },
        Duration::from_secs(30),
    )
    .await;
    let sends = fake.calls_of("sendMessage");
    assert_eq!(sends.len(), 1);
    let telegram_id = sends[0].message_id.unwrap();
    assert_eq!(delivered["telegramMessageId"], json!(telegram_id));
    assert_eq!(delivered["replyTo"], Value::Null);

    // The customer answers it with Telegram's reply, and then replies to their own message.
    server
        .customer_sends(customer, None, "Thanks!", 910_002, Some(telegram_id))
        .await;
    server
        .customer_sends(
            customer,
            None,
            "About my first message…",
            910_003,
            Some(910_001),
        )
        .await;

    let nodes = messages(&server, &admin.token, ticket).await;
    let thanks = nodes.iter().find(|node| node["text"] == "Thanks!").unwrap();
    assert_eq!(thanks["replyToTelegramMessageId"], json!(telegram_id));
    assert_eq!(thanks["replyTo"]["messageId"], json!(reply_id));
    assert_eq!(thanks["replyTo"]["direction"], "OUT");
    assert_eq!(thanks["replyTo"]["telegramMessageId"], json!(telegram_id));
    let about = nodes
        .iter()
        .find(|node| node["text"] == "About my first message…")
        .unwrap();
    assert_eq!(about["replyTo"]["text"], "my order is late");
    assert_eq!(about["replyTo"]["direction"], "IN");

    stop.cancel();
    worker.await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_reply_to_a_message_ledgerdesk_does_not_hold_resolves_to_nothing() {
    let server = Server::start("replies_unknown").await;
    let admin = server.admin().await;
    let (ticket, _) = server
        .customer_sends(7_300_002, None, "see above", 920_001, Some(919_999))
        .await;
    let nodes = messages(&server, &admin.token, ticket).await;
    assert_eq!(nodes[0]["replyToTelegramMessageId"], json!(919_999));
    assert_eq!(nodes[0]["replyTo"], Value::Null);
    server.stop().await;
}

const REPLY: &str = "mutation($t: ID!, $q: ID) {
    replyToTicket(input: {ticketId: $t, text: \"See your message above.\", replyToMessageId: $q}) { messageId } }";

#[tokio::test]
async fn an_agent_reply_quoting_a_customer_message_links_to_it() {
    let server = Server::start("replies_quote").await;
    let admin = server.admin().await;
    let fake = FakeTelegram::start().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(
        DeliveryWorker::new(
            CommandService::new(server.log.clone()),
            fake.bot(),
            bot::delivery::DeliveryOptions::default(),
        )
        .run(stop.clone()),
    );
    let (ticket, _) = server
        .customer_sends(7_300_003, None, "where is my parcel", 930_001, None)
        .await;
    let (other_ticket, _) = server
        .customer_sends(7_300_004, None, "someone else's question", 940_001, None)
        .await;
    let nodes = messages(&server, &admin.token, ticket).await;
    let quoted = nodes[0]["messageId"].as_str().unwrap().to_owned();
    let global = server
        .ok(
            &admin.token,
            "query($t: ID!) { ticket(id: $t) { messages(first: 1) { nodes { id } } } }",
            json!({ "t": ticket }),
        )
        .await["ticket"]["messages"]["nodes"][0]["id"]
        .clone();

    // By its global id (or its bare message id): the reply records the quoted Telegram id.
    let sent = server
        .ok(&admin.token, REPLY, json!({ "t": ticket, "q": global }))
        .await;
    let reply_id = sent["replyToTicket"]["messageId"].clone();
    let reply = message_where(&server, &admin.token, ticket, "the reply", |n| {
        n["messageId"] == reply_id
    })
    .await;
    assert_eq!(reply["direction"], "OUT");
    assert_eq!(reply["replyToTelegramMessageId"], json!(930_001));
    assert_eq!(reply["replyTo"]["messageId"], json!(quoted));
    assert_eq!(reply["replyTo"]["text"], "where is my parcel");

    // Telegram is asked to show the reply quoting the customer's message.
    let sent = eventually(
        async || {
            fake.calls_of("sendMessage")
                .into_iter()
                .find(|call| call.params["text"] == "See your message above.")
                .ok_or_else(|| "the reply was not sent yet".to_owned())
        },
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        sent.params["reply_parameters"]["message_id"],
        json!(930_001)
    );
    assert_eq!(
        sent.params["reply_parameters"]["allow_sending_without_reply"],
        json!(true)
    );

    // Once delivered, the reply itself can be quoted: by the id Telegram gave it.
    let delivered = message_where(&server, &admin.token, ticket, "the reply", |n| {
        n["messageId"] == reply_id && n["deliveryState"] == "delivered"
    })
    .await;
    let again = server
        .ok(&admin.token, REPLY, json!({ "t": ticket, "q": reply_id }))
        .await;
    let again_id = again["replyToTicket"]["messageId"].clone();
    let again = message_where(&server, &admin.token, ticket, "the second reply", |n| {
        n["messageId"] == again_id
    })
    .await;
    assert_eq!(
        again["replyToTelegramMessageId"],
        delivered["telegramMessageId"]
    );

    // A note cannot be quoted (Telegram never saw it); nor a message of another ticket.
    let note = server
        .ok(
            &admin.token,
            "mutation($t: ID!) { addInternalNote(input: {ticketId: $t, text: \"VIP\"}) { messageId } }",
            json!({ "t": ticket }),
        )
        .await;
    let refused = server
        .gql(
            Some(&admin.token),
            REPLY,
            json!({ "t": ticket, "q": note["addInternalNote"]["messageId"] }),
        )
        .await;
    assert_eq!(
        crate::support::code(&refused),
        Some("CONFLICT"),
        "{refused}"
    );
    let others = messages(&server, &admin.token, other_ticket).await;
    let foreign = others[0]["messageId"].clone();
    let refused = server
        .gql(
            Some(&admin.token),
            REPLY,
            json!({ "t": ticket, "q": foreign }),
        )
        .await;
    assert_eq!(
        crate::support::code(&refused),
        Some("NOT_FOUND"),
        "{refused}"
    );
    let refused = server
        .gql(
            Some(&admin.token),
            REPLY,
            json!({ "t": ticket, "q": "not an id" }),
        )
        .await;
    assert_eq!(
        crate::support::code(&refused),
        Some("VALIDATION"),
        "{refused}"
    );
    stop.cancel();
    worker.await.unwrap();
    server.stop().await;
}
