//! The delivery worker end to end: commands on a real Postgres log (a fresh database per
//! test), the real worker and teloxide client, and the fake Bot API server in place of
//! Telegram. Tests wait by polling the log or the fake with a deadline, never by sleeping.

use std::num::NonZeroU32;
use std::time::Duration;

use app::commands::{CommandContext, CommandService};
use bot::callback::CallbackData;
use bot::delivery::{DeliveryOptions, DeliveryWorker};
use chrono::{TimeDelta, Utc};
use domain::content::{
    CustomerMessage, MediaKind, MessageContent, OutgoingMedia, ReplyContent, TelegramMessageId,
};
use domain::customer::CustomerProfile;
use domain::flow::RouteCustomerMessage;
use domain::ticket::{Actor as TicketActor, Channel, ReplyAsAgent, TicketCommand};
use domain::{AgentId, CustomerId, MessageId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, ActorKind, Direction, EventLog, RecordedEvent};
use serde_json::Value;
use sqlx::PgPool;
use testkit::eventually;
use testkit::telegram::{Call, Failure, FakeTelegram};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

/// Limits high enough that tests do not wait on them, and short backoffs.
fn options() -> DeliveryOptions {
    DeliveryOptions {
        messages_per_second: NonZeroU32::new(200).unwrap(),
        messages_per_chat_per_second: NonZeroU32::new(100).unwrap(),
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        checkpoint_interval: Duration::from_millis(50),
        ..DeliveryOptions::default()
    }
}

struct Desk {
    log: PostgresLog,
    commands: CommandService<PostgresLog>,
    fake: FakeTelegram,
}

impl Desk {
    async fn new(pool: PgPool) -> Desk {
        let log = PostgresLog::new(pool);
        Desk {
            commands: CommandService::new(log.clone()),
            log,
            fake: FakeTelegram::start().await,
        }
    }

    fn worker(&self) -> Worker {
        self.worker_with(options())
    }

    fn worker_with(&self, options: DeliveryOptions) -> Worker {
        let stop = tokio_util::sync::CancellationToken::new();
        let worker = DeliveryWorker::new(
            CommandService::new(self.log.clone()),
            self.fake.bot(),
            options,
        );
        let handle = tokio::spawn(worker.run(stop.clone()));
        Worker {
            stop: stop.drop_guard(),
            handle,
        }
    }

    /// A customer writes; returns the ticket their message opened (or went to).
    async fn customer_writes(&self, customer: i64, text: &str) -> TicketId {
        let at = Utc::now();
        let route = RouteCustomerMessage {
            customer: CustomerId(customer),
            profile: CustomerProfile {
                first_name: "Ann".into(),
                last_name: None,
                username: None,
                language_code: Some("en".into()),
            },
            category: None,
            new_ticket_id: TicketId(Uuid::now_v7()),
            channel: Channel::Telegram,
            message: CustomerMessage {
                message_id: MessageId(Uuid::now_v7()),
                telegram_message_id: TelegramMessageId(
                    i32::try_from(Uuid::now_v7().as_u128() % 1_000_000).unwrap(),
                ),
                reply_to: None,
                content: MessageContent::text(text),
            },
            reopen_window: TimeDelta::days(7),
            at,
        };
        let ctx = CommandContext::new(Actor::new(ActorKind::Customer, customer.to_string()));
        self.commands
            .route_customer_message(&route, &ctx)
            .await
            .unwrap()
            .ticket_id
    }

    async fn ticket_command(&self, ticket: TicketId, command: TicketCommand) {
        let ctx = CommandContext::new(Actor::new(ActorKind::Agent, AGENT.0.to_string()));
        self.commands
            .execute_ticket(ticket, &command, &ctx)
            .await
            .unwrap();
    }

    /// An agent replies; returns the reply's id.
    async fn reply(&self, ticket: TicketId, content: ReplyContent) -> MessageId {
        let message_id = MessageId(Uuid::now_v7());
        self.ticket_command(
            ticket,
            TicketCommand::ReplyAsAgent(ReplyAsAgent {
                reply_to: None,
                message_id,
                agent: AGENT,
                template: None,
                content,
                at: Utc::now(),
            }),
        )
        .await;
        message_id
    }

    async fn resolve(&self, ticket: TicketId) {
        self.ticket_command(
            ticket,
            TicketCommand::Resolve {
                by: TicketActor::Agent { agent_id: AGENT },
                at: Utc::now(),
            },
        )
        .await;
    }

    async fn events(&self, stream: &str, event_type: &str) -> Vec<RecordedEvent> {
        match self
            .log
            .read_stream(stream, 0, Direction::Forwards, 10_000)
            .await
        {
            Ok(events) => events
                .into_iter()
                .filter(|e| e.event_type == event_type)
                .collect(),
            Err(eventlog::Error::StreamNotFound { .. }) => Vec::new(),
            Err(error) => panic!("reading {stream}: {error}"),
        }
    }

    /// Waits until `stream` holds at least `n` events of `event_type`; returns them all.
    async fn wait_for_events(
        &self,
        stream: &str,
        event_type: &str,
        n: usize,
    ) -> Vec<RecordedEvent> {
        eventually(
            async || {
                let events = self.events(stream, event_type).await;
                if events.len() >= n {
                    Ok(events)
                } else {
                    Err(format!(
                        "expected {n} {event_type} in {stream}, got {}; calls: {:#?}",
                        events.len(),
                        self.fake.calls()
                    ))
                }
            },
            WAIT,
        )
        .await
    }

    /// The outcome events recorded for one reply.
    async fn outcomes(&self, ticket: TicketId, reply: MessageId) -> Vec<RecordedEvent> {
        let stream = ticket_stream(ticket);
        let mut outcomes = self.events(&stream, "ticket.reply_delivered").await;
        outcomes.extend(self.events(&stream, "ticket.reply_delivery_failed").await);
        outcomes.retain(|e| e.payload["message_id"] == Value::String(reply.0.to_string()));
        outcomes
    }

    /// Waits for the one outcome of a reply.
    async fn wait_for_outcome(&self, ticket: TicketId, reply: MessageId) -> RecordedEvent {
        let mut outcomes = eventually(
            async || {
                let outcomes = self.outcomes(ticket, reply).await;
                if outcomes.is_empty() {
                    Err(format!(
                        "no outcome for reply {reply}; calls: {:#?}",
                        self.fake.calls()
                    ))
                } else {
                    Ok(outcomes)
                }
            },
            WAIT,
        )
        .await;
        assert_eq!(outcomes.len(), 1, "one outcome per reply: {outcomes:#?}");
        outcomes.remove(0)
    }

    /// Sends to `chat` so far.
    fn sends_to(&self, chat: i64) -> Vec<Call> {
        self.fake
            .calls()
            .into_iter()
            .filter(|c| c.method.starts_with("send") && c.chat_id() == Some(chat))
            .collect()
    }
}

struct Worker {
    /// Stops the worker when dropped.
    stop: tokio_util::sync::DropGuard,
    handle: tokio::task::JoinHandle<()>,
}

impl Worker {
    async fn stop(self) {
        drop(self.stop);
        tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("the worker stops")
            .unwrap();
    }
}

const AGENT: AgentId = AgentId(Uuid::from_u128(0xa9e47));

fn ticket_stream(ticket: TicketId) -> String {
    format!("ticket-{ticket}")
}

fn text(text: &str) -> ReplyContent {
    ReplyContent::text(text)
}

fn telegram_id(outcome: &RecordedEvent) -> i32 {
    i32::try_from(outcome.payload["telegram_message_id"].as_i64().unwrap()).unwrap()
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn an_agent_reply_reaches_the_customers_chat_and_is_recorded_delivered(pool: PgPool) {
    let desk = Desk::new(pool).await;
    let worker = desk.worker();
    let ticket = desk.customer_writes(1001, "my order is late").await;
    let reply = desk.reply(ticket, text("It ships today.")).await;

    let outcome = desk.wait_for_outcome(ticket, reply).await;
    assert_eq!(outcome.event_type, "ticket.reply_delivered");
    assert_eq!(outcome.metadata.actor.kind, ActorKind::Bot);

    let sends = desk.fake.calls_of("sendMessage");
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].chat_id(), Some(1001));
    assert_eq!(sends[0].text().as_deref(), Some("It ships today."));
    assert_eq!(sends[0].message_id, Some(telegram_id(&outcome)));
    worker.stop().await;
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn media_go_by_file_id_with_the_text_as_caption_or_after_them(pool: PgPool) {
    let desk = Desk::new(pool).await;
    let worker = desk.worker();
    let ticket = desk.customer_writes(1002, "what does it look like?").await;

    let captioned = desk
        .reply(
            ticket,
            ReplyContent {
                text: Some("Like this.".into()),
                media: vec![OutgoingMedia {
                    kind: MediaKind::Photo,
                    file_id: "PHOTO-FILE-ID".into(),
                }],
            },
        )
        .await;
    let outcome = desk.wait_for_outcome(ticket, captioned).await;
    assert_eq!(outcome.event_type, "ticket.reply_delivered");
    let photos = desk.fake.calls_of("sendPhoto");
    assert_eq!(photos.len(), 1);
    assert_eq!(photos[0].chat_id(), Some(1002));
    assert_eq!(photos[0].param("photo").as_deref(), Some("PHOTO-FILE-ID"));
    assert_eq!(photos[0].param("caption").as_deref(), Some("Like this."));
    assert_eq!(photos[0].message_id, Some(telegram_id(&outcome)));
    assert!(desk.fake.calls_of("sendMessage").is_empty());

    // Two media and a text: one message each, in order; the first message's id is recorded.
    let several = desk
        .reply(
            ticket,
            ReplyContent {
                text: Some("Both angles.".into()),
                media: vec![
                    OutgoingMedia {
                        kind: MediaKind::Document,
                        file_id: "DOC-ID".into(),
                    },
                    OutgoingMedia {
                        kind: MediaKind::Video,
                        file_id: "VIDEO-ID".into(),
                    },
                ],
            },
        )
        .await;
    let outcome = desk.wait_for_outcome(ticket, several).await;
    assert_eq!(outcome.event_type, "ticket.reply_delivered");
    let sends: Vec<_> = desk.sends_to(1002).into_iter().skip(1).collect();
    let methods: Vec<_> = sends.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(methods, ["senddocument", "sendvideo", "sendmessage"]);
    assert_eq!(sends[0].param("document").as_deref(), Some("DOC-ID"));
    assert_eq!(sends[0].param("caption"), None);
    assert_eq!(sends[1].param("video").as_deref(), Some("VIDEO-ID"));
    assert_eq!(sends[2].text().as_deref(), Some("Both angles."));
    assert_eq!(sends[0].message_id, Some(telegram_id(&outcome)));
    worker.stop().await;
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn a_429_is_waited_out_and_the_reply_sent_again_once(pool: PgPool) {
    let desk = Desk::new(pool).await;
    desk.fake
        .fail_next("sendMessage", Failure::RetryAfter(1), 1);
    let worker = desk.worker();
    let ticket = desk.customer_writes(1003, "hello?").await;
    let reply = desk.reply(ticket, text("Hi!")).await;

    let outcome = desk.wait_for_outcome(ticket, reply).await;
    assert_eq!(outcome.event_type, "ticket.reply_delivered");
    let sends = desk.fake.calls_of("sendMessage");
    assert_eq!(sends.len(), 2, "{sends:#?}");
    assert_eq!(sends[0].failure, Some(Failure::RetryAfter(1)));
    assert!(sends[1].succeeded());
    assert_eq!(sends[1].text().as_deref(), Some("Hi!"));
    assert_eq!(sends[1].message_id, Some(telegram_id(&outcome)));
    worker.stop().await;
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn network_errors_are_retried_until_telegram_answers(pool: PgPool) {
    let desk = Desk::new(pool).await;
    desk.fake.fail_next("sendMessage", Failure::Dropped, 2);
    let worker = desk.worker();
    let ticket = desk.customer_writes(1004, "anyone?").await;
    let reply = desk.reply(ticket, text("Yes.")).await;

    let outcome = desk.wait_for_outcome(ticket, reply).await;
    assert_eq!(outcome.event_type, "ticket.reply_delivered");
    let sends = desk.fake.calls_of("sendMessage");
    assert_eq!(sends.len(), 3, "{sends:#?}");
    assert_eq!(sends[2].message_id, Some(telegram_id(&outcome)));
    worker.stop().await;
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn network_errors_past_the_retry_window_are_a_retryable_failure(pool: PgPool) {
    let desk = Desk::new(pool.clone()).await;
    desk.fake.go_down(Failure::Dropped);
    let worker = desk.worker_with(DeliveryOptions {
        retry_for: Duration::from_millis(400),
        ..options()
    });
    let ticket = desk.customer_writes(1005, "hello").await;
    let reply = desk.reply(ticket, text("Hello!")).await;

    let outcome = desk.wait_for_outcome(ticket, reply).await;
    assert_eq!(outcome.event_type, "ticket.reply_delivery_failed");
    assert_eq!(outcome.payload["retryable"], Value::Bool(true));
    let reason = outcome.payload["reason"].as_str().unwrap();
    assert!(reason.starts_with("network error"), "{reason}");
    assert!(reason.contains("gave up after"), "{reason}");
    let sends = desk.fake.calls_of("sendMessage");
    assert!(sends.len() >= 2, "{sends:#?}");
    assert!(
        sends.last().unwrap().at - sends[0].at >= Duration::from_millis(400),
        "tried until the window closed"
    );
    // The schedule goes once the outcome is recorded.
    eventually(
        async || match retry_rows(&pool).await {
            0 => Ok(()),
            n => Err(format!("{n} retry rows left")),
        },
        WAIT,
    )
    .await;
    worker.stop().await;
}

/// Rows of `delivery_retries`.
async fn retry_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from delivery_retries")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The attempts recorded for reply `reply`, once it is being retried.
async fn attempts(pool: &PgPool, reply: MessageId) -> Option<i32> {
    sqlx::query_scalar("select attempts from delivery_retries where message_id = $1")
        .bind(reply.0)
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn a_long_outage_with_a_restart_in_it_ends_in_one_delivery(pool: PgPool) {
    let desk = Desk::new(pool.clone()).await;
    // Short pauses so that the outage outlasts the eight attempts (about 50 s with the
    // default pauses) after which replies used to be given up, in a few seconds.
    let quick = DeliveryOptions {
        max_send_attempts: 3,
        ..options()
    };
    desk.fake.go_down(Failure::Dropped);
    let ticket = desk.customer_writes(1014, "is anyone there?").await;
    let reply = desk.reply(ticket, text("Yes, we are.")).await;

    let worker = desk.worker_with(quick.clone());
    desk.fake.wait_for_calls("sendMessage", 10, WAIT).await;
    // The schedule is kept in the database while the worker tries.
    let before = eventually(
        async || match attempts(&pool, reply).await {
            Some(n) if n >= 10 => Ok(n),
            other => Err(format!("attempts recorded: {other:?}")),
        },
        WAIT,
    )
    .await;
    worker.stop().await;
    assert!(
        desk.outcomes(ticket, reply).await.is_empty(),
        "not given up"
    );

    // A new worker takes the schedule up where the old one left it.
    let worker = desk.worker_with(quick);
    let sent_before = desk.fake.calls_of("sendMessage").len();
    desk.fake
        .wait_for_calls("sendMessage", sent_before + 5, WAIT)
        .await;
    let after = attempts(&pool, reply).await.unwrap();
    assert!(after > before, "the count goes on: {before} then {after}");
    assert!(
        desk.outcomes(ticket, reply).await.is_empty(),
        "not given up"
    );

    desk.fake.come_back();
    let outcome = desk.wait_for_outcome(ticket, reply).await;
    worker.stop().await;
    assert_eq!(outcome.event_type, "ticket.reply_delivered");
    let delivered: Vec<Call> = desk
        .fake
        .calls_of("sendMessage")
        .into_iter()
        .filter(Call::succeeded)
        .collect();
    assert_eq!(delivered.len(), 1, "sent exactly once: {delivered:#?}");
    assert_eq!(delivered[0].message_id, Some(telegram_id(&outcome)));
    assert_eq!(retry_rows(&pool).await, 0);
}

/// Waits until the fake has seen a `sendMessage` attempt at `when` or later.
async fn an_attempt_after(desk: &Desk, when: std::time::Instant) {
    eventually(
        async || {
            desk.fake
                .calls_of("sendMessage")
                .iter()
                .any(|call| call.at >= when)
                .then_some(())
                .ok_or_else(|| "no attempt that late yet".to_owned())
        },
        Duration::from_secs(120),
    )
    .await;
}

/// The same with the clock's own time: Telegram out of reach for more than a minute (replies
/// used to be given up after about 50 s of network errors), the worker restarted half way
/// through, pauses of at most 2 s so that attempts keep coming all along.
#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn an_outage_of_more_than_a_minute_with_a_restart_in_it_ends_in_one_delivery(pool: PgPool) {
    let desk = Desk::new(pool.clone()).await;
    let patient = DeliveryOptions {
        first_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        ..options()
    };
    desk.fake.go_down(Failure::Dropped);
    let down = std::time::Instant::now();
    let ticket = desk.customer_writes(1016, "hello? anyone?").await;
    let reply = desk.reply(ticket, text("Here we are.")).await;

    let worker = desk.worker_with(patient.clone());
    an_attempt_after(&desk, down + Duration::from_secs(35)).await;
    worker.stop().await;
    assert!(
        desk.outcomes(ticket, reply).await.is_empty(),
        "not given up"
    );

    let worker = desk.worker_with(patient);
    an_attempt_after(&desk, down + Duration::from_secs(65)).await;
    assert!(
        desk.outcomes(ticket, reply).await.is_empty(),
        "not given up after a minute"
    );
    desk.fake.come_back();
    let outcome = desk.wait_for_outcome(ticket, reply).await;
    worker.stop().await;
    assert!(down.elapsed() > Duration::from_secs(60));
    assert_eq!(outcome.event_type, "ticket.reply_delivered");
    let delivered: Vec<Call> = desk
        .fake
        .calls_of("sendMessage")
        .into_iter()
        .filter(Call::succeeded)
        .collect();
    assert_eq!(delivered.len(), 1, "sent exactly once: {delivered:#?}");
    assert_eq!(retry_rows(&pool).await, 0);
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn a_server_error_is_tried_again_within_a_second(pool: PgPool) {
    let desk = Desk::new(pool).await;
    desk.fake.fail_next(
        "sendMessage",
        Failure::Api {
            code: 502,
            description: "Bad Gateway".into(),
        },
        1,
    );
    // Then a proxy's error page: not the Bot API, tried again as quickly.
    desk.fake.fail_next("sendMessage", Failure::Page(503), 1);
    // The default pauses: the first lies between 250 and 500 ms.
    let worker = desk.worker_with(DeliveryOptions {
        first_backoff: DeliveryOptions::default().first_backoff,
        ..options()
    });
    let ticket = desk.customer_writes(1015, "hello?").await;
    let reply = desk.reply(ticket, text("Here.")).await;

    let outcome = desk.wait_for_outcome(ticket, reply).await;
    worker.stop().await;
    assert_eq!(outcome.event_type, "ticket.reply_delivered");
    let sends = desk.fake.calls_of("sendMessage");
    assert_eq!(sends.len(), 3, "{sends:#?}");
    assert_eq!(sends[1].failure, Some(Failure::Page(503)));
    // teloxide alone would sit on each 5xx answer for 10 s before even reporting it; the
    // pauses here are 0.25-0.5 s, then 0.5-1 s (the bound leaves room for a slow machine).
    for pair in sends.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap < Duration::from_secs(4), "retried after {gap:?}");
    }
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn a_retry_asked_for_sends_a_failed_reply_again(pool: PgPool) {
    let desk = Desk::new(pool).await;
    desk.fake.fail_next(
        "sendPhoto",
        Failure::BadRequest("wrong file identifier/HTTP URL specified".into()),
        1,
    );
    let worker = desk.worker();
    let ticket = desk.customer_writes(1016, "photo?").await;
    let reply = desk
        .reply(
            ticket,
            ReplyContent {
                text: Some("Here it is.".into()),
                media: vec![OutgoingMedia {
                    kind: MediaKind::Photo,
                    file_id: "PHOTO".into(),
                }],
            },
        )
        .await;
    let failed = desk.wait_for_outcome(ticket, reply).await;
    assert_eq!(failed.event_type, "ticket.reply_delivery_failed");

    let retry = TicketCommand::RetryDelivery {
        message_id: reply,
        by: AGENT,
        at: Utc::now(),
    };
    desk.ticket_command(ticket, retry.clone()).await;
    let stream = ticket_stream(ticket);
    desk.wait_for_events(&stream, "ticket.reply_delivered", 1)
        .await;
    // Asked again while it is on its way or after: nothing more is sent.
    let ctx = CommandContext::new(Actor::new(ActorKind::Agent, AGENT.0.to_string()));
    let again = desk.commands.execute_ticket(ticket, &retry, &ctx).await;
    assert!(again.is_err(), "a delivered reply is not sent again");
    let later = desk.reply(ticket, text("Anything else?")).await;
    desk.wait_for_outcome(ticket, later).await;
    worker.stop().await;

    let photos = desk.fake.calls_of("sendPhoto");
    assert_eq!(photos.len(), 2, "{photos:#?}");
    assert!(photos[1].succeeded());
    assert_eq!(photos[1].text().as_deref(), Some("Here it is."));
    assert_eq!(
        desk.events(&stream, "ticket.reply_delivery_retry_requested")
            .await
            .len(),
        1
    );
    let delivered = desk.events(&stream, "ticket.reply_delivered").await;
    let delivered: Vec<_> = delivered
        .iter()
        .filter(|e| e.payload["message_id"] == Value::String(reply.0.to_string()))
        .collect();
    assert_eq!(delivered.len(), 1);
    assert_eq!(photos[1].message_id, Some(telegram_id(delivered[0])));
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn a_blocked_bot_marks_the_customer_and_fails_the_reply_without_retry(pool: PgPool) {
    let desk = Desk::new(pool).await;
    desk.fake.block_chat(1006);
    let worker = desk.worker();
    let ticket = desk.customer_writes(1006, "bye").await;
    let reply = desk.reply(ticket, text("Sorry to see you go.")).await;

    let outcome = desk.wait_for_outcome(ticket, reply).await;
    assert_eq!(outcome.event_type, "ticket.reply_delivery_failed");
    assert_eq!(outcome.payload["retryable"], Value::Bool(false));
    assert_eq!(
        outcome.payload["reason"],
        Value::String("Forbidden: bot was blocked by the user".into())
    );
    let blocked = desk
        .wait_for_events("customer-1006", "customer.blocked_bot", 1)
        .await;
    assert_eq!(blocked.len(), 1);

    // A later reply to the same chat goes after this one's outcome, so by its outcome the
    // worker has shown it did not try the first again.
    let second = desk.reply(ticket, text("Still there?")).await;
    desk.wait_for_outcome(ticket, second).await;
    assert_eq!(desk.sends_to(1006).len(), 2);
    worker.stop().await;
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn a_reply_delivered_after_a_block_records_that_the_customer_unblocked_the_bot(pool: PgPool) {
    let desk = Desk::new(pool).await;
    desk.fake.block_chat(1012);
    let worker = desk.worker();
    let ticket = desk.customer_writes(1012, "hello").await;
    let first = desk.reply(ticket, text("Hi!")).await;
    let outcome = desk.wait_for_outcome(ticket, first).await;
    assert_eq!(outcome.event_type, "ticket.reply_delivery_failed");
    desk.wait_for_events("customer-1012", "customer.blocked_bot", 1)
        .await;
    assert!(
        desk.events("customer-1012", "customer.unblocked_bot")
            .await
            .is_empty()
    );

    // The customer unblocks the bot; the next reply goes through.
    desk.fake.unblock_chat(1012);
    let second = desk.reply(ticket, text("Welcome back.")).await;
    let outcome = desk.wait_for_outcome(ticket, second).await;
    assert_eq!(outcome.event_type, "ticket.reply_delivered");
    let unblocked = desk
        .wait_for_events("customer-1012", "customer.unblocked_bot", 1)
        .await;
    assert_eq!(unblocked.len(), 1);
    assert_eq!(unblocked[0].metadata.actor.kind, ActorKind::Bot);
    let history = desk
        .log
        .read_stream("customer-1012", 0, Direction::Forwards, 100)
        .await
        .unwrap();
    let kinds: Vec<&str> = history
        .iter()
        .map(|e| e.event_type.as_str())
        .filter(|kind| kind.ends_with("blocked_bot"))
        .collect();
    assert_eq!(kinds, ["customer.blocked_bot", "customer.unblocked_bot"]);

    // A further delivery to a customer who does not block the bot records nothing more.
    let third = desk.reply(ticket, text("Anything else?")).await;
    desk.wait_for_outcome(ticket, third).await;
    assert_eq!(
        desk.events("customer-1012", "customer.unblocked_bot")
            .await
            .len(),
        1
    );
    worker.stop().await;
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn a_refused_file_id_is_a_failure_with_telegrams_reason(pool: PgPool) {
    let desk = Desk::new(pool).await;
    desk.fake.fail_next(
        "sendPhoto",
        Failure::BadRequest("wrong file identifier/HTTP URL specified".into()),
        1,
    );
    let worker = desk.worker();
    let ticket = desk.customer_writes(1007, "photo?").await;
    let reply = desk
        .reply(
            ticket,
            ReplyContent {
                text: None,
                media: vec![OutgoingMedia {
                    kind: MediaKind::Photo,
                    file_id: "EXPIRED".into(),
                }],
            },
        )
        .await;

    let outcome = desk.wait_for_outcome(ticket, reply).await;
    assert_eq!(outcome.event_type, "ticket.reply_delivery_failed");
    assert_eq!(outcome.payload["retryable"], Value::Bool(false));
    let reason = outcome.payload["reason"].as_str().unwrap();
    assert!(reason.contains("wrong file identifier"), "{reason}");

    let second = desk.reply(ticket, text("Let me resend.")).await;
    desk.wait_for_outcome(ticket, second).await;
    assert_eq!(desk.fake.calls_of("sendPhoto").len(), 1);
    worker.stop().await;
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn after_a_restart_no_reply_is_sent_twice(pool: PgPool) {
    let desk = Desk::new(pool.clone()).await;
    let ticket = desk.customer_writes(1008, "question").await;

    let worker = desk.worker();
    let first = desk.reply(ticket, text("first")).await;
    desk.wait_for_outcome(ticket, first).await;
    worker.stop().await;

    // Written while no worker runs.
    let second = desk.reply(ticket, text("second")).await;
    let worker = desk.worker();
    desk.wait_for_outcome(ticket, second).await;
    worker.stop().await;

    // Even a worker that lost its checkpoint and reads the whole log again sends nothing
    // that has an outcome: the ticket, not the checkpoint, says what was delivered.
    sqlx::query("delete from delivery_checkpoints")
        .execute(&pool)
        .await
        .unwrap();
    let worker = desk.worker();
    let third = desk.reply(ticket, text("third")).await;
    desk.wait_for_outcome(ticket, third).await;
    worker.stop().await;

    let texts: Vec<_> = desk
        .fake
        .calls_of("sendMessage")
        .iter()
        .map(|c| c.text().unwrap())
        .collect();
    assert_eq!(texts, ["first", "second", "third"]);
    for reply in [first, second, third] {
        assert_eq!(desk.outcomes(ticket, reply).await.len(), 1);
    }
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn a_429_wait_is_kept_across_a_restart(pool: PgPool) {
    let desk = Desk::new(pool).await;
    desk.fake
        .fail_next("sendMessage", Failure::RetryAfter(3), 1);
    let ticket = desk.customer_writes(1013, "late").await;
    let reply = desk.reply(ticket, text("On its way.")).await;

    let worker = desk.worker();
    desk.fake.wait_for_calls("sendMessage", 1, WAIT).await;
    // Stopping cuts the wait short and leaves the reply without outcome.
    worker.stop().await;
    assert!(desk.outcomes(ticket, reply).await.is_empty());

    // The checkpoint stayed before the reply, so the next run sends it, but not before the
    // time Telegram asked for.
    let worker = desk.worker();
    let outcome = desk.wait_for_outcome(ticket, reply).await;
    worker.stop().await;
    assert_eq!(outcome.event_type, "ticket.reply_delivered");
    let sends = desk.fake.calls_of("sendMessage");
    assert_eq!(sends.len(), 2, "{sends:#?}");
    assert_eq!(sends[1].message_id, Some(telegram_id(&outcome)));
    let waited = sends[1].at - sends[0].at;
    assert!(
        waited >= Duration::from_secs(3),
        "sent again after {waited:?}"
    );
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn a_resolve_asks_the_customer_to_rate_with_five_buttons(pool: PgPool) {
    let desk = Desk::new(pool.clone()).await;
    let worker = desk.worker();
    let ticket = desk.customer_writes(1009, "thanks").await;
    desk.resolve(ticket).await;

    let prompts = desk.fake.wait_for_calls("sendMessage", 1, WAIT).await;
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0].chat_id(), Some(1009));
    let markup = prompts[0].json_param("reply_markup").unwrap();
    let rows = markup["inline_keyboard"].as_array().unwrap();
    let buttons: Vec<&Value> = rows.iter().flat_map(|r| r.as_array().unwrap()).collect();
    assert_eq!(buttons.len(), 5);
    for (button, rating) in buttons.iter().zip(1u8..) {
        let data = button["callback_data"].as_str().unwrap();
        assert_eq!(
            CallbackData::parse(data),
            Some(CallbackData::Rating { ticket, rating })
        );
        assert_eq!(button["text"].as_str(), Some(rating.to_string().as_str()));
    }
    worker.stop().await;

    // A restart that reads the resolve again does not ask again.
    sqlx::query("delete from delivery_checkpoints")
        .execute(&pool)
        .await
        .unwrap();
    let worker = desk.worker();
    let reply = desk.reply(ticket, text("Glad to help.")).await;
    desk.wait_for_outcome(ticket, reply).await;
    worker.stop().await;
    assert_eq!(desk.sends_to(1009).len(), 2);
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn a_ticket_already_rated_gets_no_prompt(pool: PgPool) {
    let desk = Desk::new(pool).await;
    let ticket = desk.customer_writes(1010, "done").await;
    desk.resolve(ticket).await;
    desk.ticket_command(
        ticket,
        TicketCommand::Rate {
            rating: 5,
            comment: None,
            at: Utc::now(),
        },
    )
    .await;
    // Same chat, later in the log: once this is delivered the resolve has been looked at.
    let reply = desk.reply(ticket, text("Thanks for the rating!")).await;

    let worker = desk.worker();
    desk.wait_for_outcome(ticket, reply).await;
    worker.stop().await;
    let sends = desk.sends_to(1010);
    assert_eq!(sends.len(), 1, "{sends:#?}");
    assert_eq!(sends[0].json_param("reply_markup"), None);
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn replies_to_one_chat_keep_their_order_while_chats_proceed_together(pool: PgPool) {
    let desk = Desk::new(pool).await;
    let first = desk.customer_writes(1011, "a").await;
    let second = desk.customer_writes(1012, "b").await;
    // The first chat's first send breaks and is retried: the rest of that chat waits behind it.
    desk.fake.fail_chat(1011, Failure::Dropped, 1);
    let mut replies = Vec::new();
    for n in 1..=4 {
        replies.push((first, desk.reply(first, text(&format!("a{n}"))).await));
        replies.push((second, desk.reply(second, text(&format!("b{n}"))).await));
    }

    let worker = desk.worker();
    for (ticket, reply) in &replies {
        let outcome = desk.wait_for_outcome(*ticket, *reply).await;
        assert_eq!(outcome.event_type, "ticket.reply_delivered");
    }
    worker.stop().await;

    let texts = |chat| {
        desk.sends_to(chat)
            .iter()
            .filter(|c| c.succeeded())
            .map(|c| c.text().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(1011), ["a1", "a2", "a3", "a4"]);
    assert_eq!(texts(1012), ["b1", "b2", "b3", "b4"]);
}

#[sqlx::test(migrator = "app::database::MIGRATOR")]
async fn a_rating_takes_the_buttons_off_the_prompt(pool: PgPool) {
    let desk = Desk::new(pool).await;
    let worker = desk.worker();
    let ticket = desk.customer_writes(1017, "solved, thanks").await;
    desk.resolve(ticket).await;
    let prompts = desk.fake.wait_for_calls("sendMessage", 1, WAIT).await;
    let prompt = prompts[0].message_id.unwrap();
    assert!(desk.fake.calls_of("editMessageReplyMarkup").is_empty());

    desk.ticket_command(
        ticket,
        TicketCommand::Rate {
            rating: 4,
            comment: None,
            at: Utc::now(),
        },
    )
    .await;
    let edits = desk
        .fake
        .wait_for_calls("editMessageReplyMarkup", 1, WAIT)
        .await;
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].chat_id(), Some(1017));
    assert_eq!(edits[0].param("message_id"), Some(prompt.to_string()));
    // No markup: Telegram removes the keyboard.
    assert_eq!(edits[0].json_param("reply_markup"), None);

    // Read again after a restart, the rating removes nothing twice.
    worker.stop().await;
    sqlx::query("delete from delivery_checkpoints")
        .execute(desk.log.pool())
        .await
        .unwrap();
    let worker = desk.worker();
    let reply = desk.reply(ticket, text("Thank you!")).await;
    desk.wait_for_outcome(ticket, reply).await;
    worker.stop().await;
    assert_eq!(desk.fake.calls_of("editMessageReplyMarkup").len(), 1);
}
