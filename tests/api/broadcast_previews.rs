//! `sendBroadcastPreview`: the draft goes through the real delivery worker to the fake Bot API,
//! counts nothing on the broadcast, and is refused where it must be.

use std::time::Duration;

use app::commands::{CommandContext, CommandService};
use bot::delivery::{DeliveryOptions, DeliveryWorker};
use chrono::Utc;
use domain::agent::Role;

use domain::customer::{Customer, CustomerCommand};
use domain::{BroadcastId, CustomerId, StreamId};
use eventlog::Actor;
use serde_json::{Value, json};
use testkit::telegram::{Failure, FakeTelegram};

use crate::broadcast_reports::{commands, draft, running};
use crate::support::{Agent, Server, code};

const PREVIEW: &str = "mutation($id: ID!, $chat: ID!) { sendBroadcastPreview(input: {
    broadcastId: $id, telegramUserId: $chat}) {
    previewId state telegramMessageId failureReason replayed } }";

fn worker(server: &Server, fake: &FakeTelegram) -> tokio_util::sync::DropGuard {
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(
        DeliveryWorker::new(
            CommandService::new(server.log.clone()),
            fake.bot(),
            DeliveryOptions {
                first_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(100),
                max_send_attempts: 2,
                messages_per_chat_per_second: std::num::NonZeroU32::new(100).unwrap(),
                checkpoint_interval: Duration::from_millis(50),
                ..DeliveryOptions::default()
            },
        )
        .run(stop.clone()),
    );
    stop.drop_guard()
}

async fn preview(server: &Server, agent: &Agent, broadcast: BroadcastId, chat: i64) -> Value {
    server
        .gql(
            Some(&agent.token),
            PREVIEW,
            json!({ "id": broadcast.0, "chat": chat.to_string() }),
        )
        .await
}

#[tokio::test]
async fn a_preview_goes_through_the_delivery_worker_to_one_chat_and_counts_nothing() {
    let server = Server::start("broadcast_preview").await;
    let admin = server.admin().await;
    let fake = FakeTelegram::start().await;
    let _worker = worker(&server, &fake);
    let broadcast = draft(&server).await;

    let body = preview(&server, &admin, broadcast, 777_001).await;
    let sent = &body["data"]["sendBroadcastPreview"];
    assert_eq!(sent["state"], "SENT", "{body:#}");
    let calls = fake.calls_of("sendMessage");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].chat_id(), Some(777_001));
    assert_eq!(calls[0].text().as_deref(), Some("New prices from Monday"));
    assert_eq!(
        sent["telegramMessageId"].as_i64(),
        calls[0].message_id.map(i64::from)
    );
    let keyboard = calls[0].json_param("reply_markup").unwrap();
    let labels: Vec<&str> = keyboard["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|button| button["text"].as_str().unwrap())
        .collect();
    assert!(labels.starts_with(&["Prices", "Yes", "No"]), "{labels:?}");

    // Telegram refuses the next one: its words come back.
    fake.fail_chat(777_002, Failure::BadRequest("chat not found".to_owned()), 1);
    let body = preview(&server, &admin, broadcast, 777_002).await;
    let refused = &body["data"]["sendBroadcastPreview"];
    assert_eq!(refused["state"], "FAILED", "{body:#}");
    assert_eq!(refused["failureReason"], "Bad Request: chat not found");

    // The broadcast counts nothing and is still a draft.
    let data = server
        .ok(
            &admin.token,
            "query($id: ID!) { broadcast(id: $id) { state delivered failed skipped totalRecipients } }",
            json!({ "id": broadcast.0 }),
        )
        .await;
    assert_eq!(
        data["broadcast"],
        json!({ "state": "DRAFT", "delivered": 0, "failed": 0, "skipped": 0,
                "totalRecipients": null })
    );
    let outcomes: i64 = sqlx::query_scalar(
        "select count(*) from events where event_type in \
         ('broadcast.preview_sent', 'broadcast.preview_failed')",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(outcomes, 2);
    server.stop().await;
}

#[tokio::test]
async fn previews_are_refused_when_they_must_be() {
    let server = Server::start("broadcast_preview_refused").await;
    let admin = server.admin().await;
    let fake = FakeTelegram::start().await;
    let _worker = worker(&server, &fake);
    let broadcast = draft(&server).await;

    // An auditor may read broadcasts, not write them; a token never previews.
    let auditor = server.agent(Role::Auditor, "auditor@example.com").await;
    assert_eq!(
        code(&preview(&server, &auditor, broadcast, 777_101).await),
        Some("FORBIDDEN")
    );
    let writer_token = Agent {
        token: server.api_token(&admin, &["broadcasts:read"]).await,
        ..admin.clone()
    };
    assert_eq!(
        code(&preview(&server, &writer_token, broadcast, 777_101).await),
        Some("FORBIDDEN")
    );
    // Not a user id; a customer who opted out.
    for chat in ["-1001234", "abc"] {
        let body = server
            .gql(
                Some(&admin.token),
                PREVIEW,
                json!({ "id": broadcast.0, "chat": chat }),
            )
            .await;
        assert_eq!(code(&body), Some("VALIDATION"), "{chat}: {body}");
    }
    server.customer_writes(777_102, None, "hi").await;
    commands(&server)
        .execute::<Customer>(
            StreamId::Customer(CustomerId(777_102)),
            &CustomerCommand::OptOutOfBroadcasts { at: Utc::now() },
            &CommandContext::new(Actor::system("test")),
        )
        .await
        .unwrap();
    assert_eq!(
        code(&preview(&server, &admin, broadcast, 777_102).await),
        Some("VALIDATION")
    );
    // Too many in a minute.
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    for _ in 0..10 {
        let body = preview(&server, &agent, broadcast, 777_103).await;
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    let body = preview(&server, &agent, broadcast, 777_103).await;
    assert_eq!(code(&body), Some("RATE_LIMITED"));
    // Once started, no more previews.
    // Nobody to send to: it completes at once, and nothing is sent to anyone.
    let started = running(&server, vec![]).await;
    assert_eq!(
        code(&preview(&server, &admin, started, 777_104).await),
        Some("CONFLICT")
    );
    // Nothing went to the refused chats.
    for call in fake.calls_of("sendMessage") {
        assert_eq!(call.chat_id(), Some(777_103));
    }
    server.stop().await;
}
