//! A reply's delivery as agents see it: `retrying` with its attempts while Telegram is out of
//! reach, and `retryDelivery` to send a failed reply again, refused where it must be.

use std::time::Duration;

use app::commands::CommandService;
use bot::delivery::{DeliveryOptions, DeliveryWorker};
use domain::agent::Role;
use serde_json::{Value, json};
use testkit::eventually;
use testkit::telegram::{Failure, FakeTelegram};

use crate::support::{Server, code};

const MESSAGES: &str = "query($t: ID!) { ticket(id: $t) { messages(first: 10) { nodes {
    messageId direction deliveryState failureReason
    deliveryRetry { attempts firstFailedAt nextAttemptAt lastError }
} } } }";

const RETRY: &str = "mutation($m: ID!) { retryDelivery(input: {messageId: $m}) {
    position ticketId messageId replayed } }";

const PATIENCE: Duration = Duration::from_secs(30);

/// Waits until the message `id` of `ticket` satisfies `done`; returns its node.
async fn wait_for_message(
    server: &Server,
    token: &str,
    ticket: uuid::Uuid,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    eventually(
        async || {
            let data = server.ok(token, MESSAGES, json!({ "t": ticket })).await;
            let nodes = data["ticket"]["messages"]["nodes"]
                .as_array()
                .unwrap()
                .clone();
            let node = nodes
                .into_iter()
                .find(|node| node["messageId"] == id)
                .ok_or_else(|| format!("no message {id} yet"))?;
            if done(&node) {
                Ok(node)
            } else {
                Err(format!("not yet: {node}"))
            }
        },
        PATIENCE,
    )
    .await
}

async fn reply(server: &Server, token: &str, ticket: uuid::Uuid, text: &str) -> String {
    let sent = server
        .ok(
            token,
            "mutation($t: ID!, $x: String!) { replyToTicket(input: {ticketId: $t, text: $x}) { messageId } }",
            json!({ "t": ticket, "x": text }),
        )
        .await;
    sent["replyToTicket"]["messageId"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn worker(server: &Server, fake: &FakeTelegram) -> tokio_util::sync::DropGuard {
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(
        DeliveryWorker::new(
            CommandService::new(server.log.clone()),
            fake.bot(),
            DeliveryOptions {
                first_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(200),
                checkpoint_interval: Duration::from_millis(50),
                ..DeliveryOptions::default()
            },
        )
        .run(stop.clone()),
    );
    stop.drop_guard()
}

async fn count(server: &Server, event_type: &str) -> i64 {
    sqlx::query_scalar("select count(*) from events where event_type = $1")
        .bind(event_type)
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_reply_shows_retrying_with_its_attempts_while_telegram_is_out_of_reach() {
    let server = Server::start("delivery_retrying").await;
    let admin = server.admin().await;
    let fake = FakeTelegram::start().await;
    fake.go_down(Failure::Dropped);
    let _worker = worker(&server, &fake);
    let (ticket, _) = server.customer_writes(7_400_001, None, "hello?").await;
    let id = reply(&server, &admin.token, ticket, "We are here.").await;

    let retrying = wait_for_message(&server, &admin.token, ticket, &id, |node| {
        node["deliveryState"] == "retrying" && node["deliveryRetry"]["attempts"].as_i64() >= Some(2)
    })
    .await;
    let retry = &retrying["deliveryRetry"];
    assert!(
        retry["lastError"]
            .as_str()
            .unwrap()
            .starts_with("network error"),
        "{retry}"
    );
    assert!(retry["nextAttemptAt"].is_string() && retry["firstFailedAt"].is_string());
    // Already on its way: asking for a retry changes nothing.
    let again = server.ok(&admin.token, RETRY, json!({ "m": id })).await;
    assert_eq!(again["retryDelivery"]["position"], Value::Null);

    fake.come_back();
    let delivered = wait_for_message(&server, &admin.token, ticket, &id, |node| {
        node["deliveryState"] == "delivered"
    })
    .await;
    assert_eq!(delivered["deliveryRetry"], Value::Null);
    assert_eq!(
        count(&server, "ticket.reply_delivery_retry_requested").await,
        0
    );
    server.stop().await;
}

#[tokio::test]
async fn retry_delivery_sends_a_failed_reply_again_and_refuses_what_it_must() {
    let server = Server::start("delivery_retry").await;
    let admin = server.admin().await;
    let auditor = server.agent(Role::Auditor, "auditor@example.com").await;
    let fake = FakeTelegram::start().await;
    fake.fail_next(
        "sendMessage",
        Failure::BadRequest("chat not found".into()),
        1,
    );
    let _worker = worker(&server, &fake);
    let (ticket, _) = server.customer_writes(7_400_002, None, "hi").await;
    let id = reply(&server, &admin.token, ticket, "Hello!").await;
    let failed = wait_for_message(&server, &admin.token, ticket, &id, |node| {
        node["deliveryState"] == "failed"
    })
    .await;
    assert_eq!(failed["failureReason"], "Bad Request: chat not found");

    // Refused: a role without WriteTickets, an unknown message, a customer message.
    let body = server
        .gql(Some(&auditor.token), RETRY, json!({ "m": id }))
        .await;
    assert_eq!(code(&body), Some("FORBIDDEN"), "{body}");
    let unknown = uuid::Uuid::now_v7().to_string();
    let body = server
        .gql(Some(&admin.token), RETRY, json!({ "m": unknown }))
        .await;
    assert_eq!(code(&body), Some("NOT_FOUND"), "{body}");
    let data = server
        .ok(&admin.token, MESSAGES, json!({ "t": ticket }))
        .await;
    let customer_message = data["ticket"]["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| node["direction"] == "IN")
        .unwrap()["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = server
        .gql(Some(&admin.token), RETRY, json!({ "m": customer_message }))
        .await;
    assert_eq!(code(&body), Some("NOT_FOUND"), "{body}");
    assert_eq!(
        count(&server, "ticket.reply_delivery_retry_requested").await,
        0
    );

    // The failed reply goes again and is delivered.
    let done = server.ok(&admin.token, RETRY, json!({ "m": id })).await;
    assert!(done["retryDelivery"]["position"].is_string(), "{done}");
    assert_eq!(done["retryDelivery"]["messageId"], id.as_str());
    let delivered = wait_for_message(&server, &admin.token, ticket, &id, |node| {
        node["deliveryState"] == "delivered"
    })
    .await;
    assert_eq!(delivered["failureReason"], Value::Null);
    assert_eq!(
        count(&server, "ticket.reply_delivery_retry_requested").await,
        1
    );
    let sends = fake.calls_of("sendMessage");
    assert_eq!(sends.len(), 2, "{sends:#?}");
    assert!(sends[1].succeeded());

    // Delivered now: not failed, so refused.
    let body = server
        .gql(Some(&admin.token), RETRY, json!({ "m": id }))
        .await;
    assert_eq!(code(&body), Some("CONFLICT"), "{body}");
    assert_eq!(
        count(&server, "ticket.reply_delivery_retry_requested").await,
        1
    );
    assert_eq!(fake.calls_of("sendMessage").len(), 2);
    server.stop().await;
}
