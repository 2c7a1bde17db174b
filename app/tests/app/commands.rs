//! The command service against the real Postgres log: multi-stream flows, concurrency,
//! idempotency and unreadable history.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use app::commands::{CommandContext, CommandError, CommandService, Executed};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use domain::content::{CustomerMessage, MessageContent, ReplyContent, TelegramMessageId};
use domain::customer::{Customer, CustomerCommand, CustomerError, CustomerProfile};
use domain::flow::{FlowError, RouteCustomerMessage, RouteOutcome};
use domain::ticket::{Channel, ReplyAsAgent, TicketCommand, TicketError, TicketEvent};
use domain::{AgentId, AnyEvent, CustomerId, DecodeError, DomainEvent, MessageId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{
    Actor, ActorKind, AppendOutcome, AppendRequest, Direction, Error, EventLog, ExpectedVersion,
    Metadata, NewEvent, Page, Position, RecordedEvent,
};
use futures::stream::BoxStream;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

const CUSTOMER: CustomerId = CustomerId(4242);

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn ticket_id(n: u128) -> TicketId {
    TicketId(Uuid::from_u128(n))
}

fn agent(n: u128) -> AgentId {
    AgentId(Uuid::from_u128(0xa000 + n))
}

fn message(n: i32) -> CustomerMessage {
    CustomerMessage {
        message_id: MessageId(Uuid::from_u128(0x100 + u128::from(n.unsigned_abs()))),
        telegram_message_id: TelegramMessageId(n),
        reply_to: None,
        content: MessageContent::text(format!("help #{n}")),
    }
}

fn route(n: i32, new_ticket: u128, at: DateTime<Utc>) -> RouteCustomerMessage {
    RouteCustomerMessage {
        customer: CUSTOMER,
        profile: CustomerProfile {
            first_name: "Ann".into(),
            last_name: None,
            username: None,
            language_code: Some("en".into()),
        },
        category: None,
        new_ticket_id: ticket_id(new_ticket),
        channel: Channel::Telegram,
        message: message(n),
        reopen_window: TimeDelta::days(7),
        at,
    }
}

fn reply(n: u128, at: DateTime<Utc>) -> TicketCommand {
    TicketCommand::ReplyAsAgent(ReplyAsAgent {
        reply_to: None,
        message_id: MessageId(Uuid::from_u128(0x5000 + n)),
        agent: agent(n),
        template: None,
        content: ReplyContent::text(format!("reply {n}")),
        at,
    })
}

fn by_agent() -> domain::ticket::Actor {
    domain::ticket::Actor::Agent { agent_id: agent(0) }
}

fn customer_ctx() -> CommandContext {
    CommandContext::new(Actor::new(ActorKind::Customer, CUSTOMER.to_string()))
}

fn agent_ctx(n: u128) -> CommandContext {
    CommandContext::new(Actor::new(ActorKind::Agent, agent(n).to_string()))
}

fn streams_and_types(executed: &Executed<AnyEvent>) -> Vec<(String, &'static str)> {
    executed
        .summary()
        .into_iter()
        .map(|(stream, _, event_type)| (stream.to_owned(), event_type))
        .collect()
}

async fn read(log: &impl EventLog, stream: &str) -> Vec<RecordedEvent> {
    match log
        .read_stream(stream, 0, Direction::Forwards, 10_000)
        .await
    {
        Err(Error::StreamNotFound { .. }) => Vec::new(),
        other => other.unwrap(),
    }
}

/// Opens ticket 1 for the customer with message 1 at t(0).
async fn open_ticket(service: &CommandService<impl EventLog>) -> TicketId {
    let routed = service
        .route_customer_message(&route(1, 1, t(0)), &customer_ctx())
        .await
        .unwrap();
    assert_eq!(routed.outcome, RouteOutcome::Opened);
    routed.ticket_id
}

#[sqlx::test(migrations = "../migrations")]
async fn a_customer_message_opens_a_ticket_then_posts_to_it_then_reopens_it_after_resolve(
    pool: PgPool,
) {
    let log = PostgresLog::new(pool);
    let service = CommandService::new(log.clone());
    let customer = CUSTOMER.stream().name();
    let ticket = ticket_id(1).stream().name();
    let correlation = Uuid::now_v7();

    // First message: registers the customer and opens a ticket, both streams in one append.
    let ctx = customer_ctx().correlated(correlation);
    let opened = service
        .route_customer_message(&route(1, 1, t(0)), &ctx)
        .await
        .unwrap();
    assert_eq!(opened.outcome, RouteOutcome::Opened);
    assert_eq!(opened.ticket_id, ticket_id(1));
    assert!(!opened.executed.replayed);
    assert_eq!(
        streams_and_types(&opened.executed),
        [
            (customer.clone(), "customer.registered"),
            (customer.clone(), "customer.ticket_opened"),
            (ticket.clone(), "ticket.opened"),
            (ticket.clone(), "ticket.customer_message_posted"),
        ]
    );
    let tx_of = |p: Position| p.parts().0;
    let first_tx = tx_of(opened.executed.events[0].position);
    assert!(
        opened
            .executed
            .events
            .iter()
            .all(|e| tx_of(e.position) == first_tx),
        "one append, one transaction"
    );
    assert_eq!(
        opened.executed.position,
        opened.executed.events.last().map(|e| e.position)
    );
    let stored = read(&log, &ticket).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].metadata.actor, ctx.actor);
    assert_eq!(stored[0].metadata.correlation_id, Some(correlation));

    // Second message: posted to the same ticket; the customer stream has nothing new to say.
    let posted = service
        .route_customer_message(&route(2, 2, t(5)), &customer_ctx())
        .await
        .unwrap();
    assert_eq!(posted.outcome, RouteOutcome::Posted);
    assert_eq!(posted.ticket_id, ticket_id(1));
    assert_eq!(
        posted.executed.summary(),
        [(ticket.as_str(), 2, "ticket.customer_message_posted")]
    );

    // An agent resolves it: the ticket and the customer's notes change together.
    let resolved = service
        .execute_ticket(
            ticket_id(1),
            &TicketCommand::Resolve {
                by: by_agent(),
                at: t(10),
            },
            &agent_ctx(0),
        )
        .await
        .unwrap();
    assert_eq!(
        streams_and_types(&resolved),
        [
            (customer.clone(), "customer.ticket_resolved"),
            (ticket.clone(), "ticket.resolved"),
        ]
    );

    // A message within the reopen window reopens it.
    let reopened = service
        .route_customer_message(&route(3, 3, t(60)), &customer_ctx())
        .await
        .unwrap();
    assert_eq!(reopened.outcome, RouteOutcome::Reopened);
    assert_eq!(reopened.ticket_id, ticket_id(1));
    assert!(matches!(
        reopened.executed.events_in(ticket_id(1).stream()).next(),
        Some(AnyEvent::Ticket(TicketEvent::Reopened(_)))
    ));

    // Resolved again, a message after the window starts a new ticket.
    service
        .execute_ticket(
            ticket_id(1),
            &TicketCommand::Resolve {
                by: by_agent(),
                at: t(70),
            },
            &agent_ctx(0),
        )
        .await
        .unwrap();
    let later = service
        .route_customer_message(&route(4, 4, t(70) + TimeDelta::days(8)), &customer_ctx())
        .await
        .unwrap();
    assert_eq!(later.outcome, RouteOutcome::Opened);
    assert_eq!(later.ticket_id, ticket_id(4));

    // Every version of both streams is there, in order, with no gap.
    for stream in [&customer, &ticket] {
        let versions: Vec<u64> = read(&log, stream)
            .await
            .iter()
            .map(|e| e.stream_version)
            .collect();
        assert_eq!(versions, (0..versions.len() as u64).collect::<Vec<_>>());
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn concurrent_replies_on_one_ticket_all_land_in_order(pool: PgPool) {
    let log = PostgresLog::new(pool);
    let service = CommandService::new(log.clone());
    let ticket = open_ticket(&service).await;

    let agents = 8u128;
    let tasks: Vec<_> = (1..=agents)
        .map(|n| {
            let service = service.clone();
            tokio::spawn(async move {
                service
                    .execute_ticket(ticket, &reply(n, t(1)), &agent_ctx(n))
                    .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        let executed = task.await.unwrap().unwrap();
        assert!(!executed.replayed);
        versions.extend(executed.events.iter().map(|e| e.version));
    }

    let stored = read(&log, &ticket.stream().name()).await;
    let stored_versions: Vec<u64> = stored.iter().map(|e| e.stream_version).collect();
    assert_eq!(
        stored_versions,
        (0..stored.len() as u64).collect::<Vec<_>>()
    );
    versions.sort_unstable();
    assert_eq!(
        versions,
        stored_versions[2..],
        "each task saw where it landed"
    );
    let replied: HashSet<String> = stored
        .iter()
        .filter(|e| e.event_type == "ticket.agent_replied")
        .map(|e| e.payload["message_id"].as_str().unwrap().to_owned())
        .collect();
    let expected: HashSet<String> = (1..=agents)
        .map(|n| Uuid::from_u128(0x5000 + n).to_string())
        .collect();
    assert_eq!(replied, expected, "no reply lost, none twice");
    // Opened, first message, 8 replies and the one move to "open" the first reply made.
    assert_eq!(stored.len(), 2 + 8 + 1);
}

/// What another writer executes just before the next append.
enum CutIn {
    Ticket(TicketId, TicketCommand),
    Customer(CustomerCommand),
}

/// A log that, just before the next append, lets another writer execute a command: the race
/// between a command's load and its append, made deterministic.
#[derive(Clone)]
struct Interleaved {
    inner: PostgresLog,
    next: Arc<Mutex<Option<CutIn>>>,
    /// A ticket another writer replies to before every append, for good.
    always: Arc<Mutex<Option<TicketId>>>,
    appends: Arc<AtomicUsize>,
    /// The streams of every append request, in order.
    requested: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Interleaved {
    fn new(inner: PostgresLog) -> Self {
        Interleaved {
            inner,
            next: Arc::default(),
            always: Arc::default(),
            appends: Arc::default(),
            requested: Arc::default(),
        }
    }

    fn before_next_append(&self, ticket: TicketId, command: TicketCommand) {
        *self.next.lock().unwrap() = Some(CutIn::Ticket(ticket, command));
    }

    fn before_next_append_on_customer(&self, command: CustomerCommand) {
        *self.next.lock().unwrap() = Some(CutIn::Customer(command));
    }

    /// From now on another writer replies to `ticket` before every append.
    fn before_every_append(&self, ticket: TicketId) {
        *self.always.lock().unwrap() = Some(ticket);
    }
}

impl EventLog for Interleaved {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, Error> {
        let always = *self.always.lock().unwrap();
        let cut_in = self.next.lock().unwrap().take().or_else(|| {
            always.map(|ticket| {
                let n = 0x10_0000 + self.appends.load(Ordering::SeqCst) as u128;
                CutIn::Ticket(ticket, reply(n, t(2)))
            })
        });
        let other = CommandService::new(self.inner.clone());
        match cut_in {
            Some(CutIn::Ticket(ticket, command)) => {
                other
                    .execute_ticket(ticket, &command, &agent_ctx(99))
                    .await
                    .unwrap();
            }
            Some(CutIn::Customer(command)) => {
                other
                    .execute::<Customer>(CUSTOMER.stream(), &command, &agent_ctx(99))
                    .await
                    .unwrap();
            }
            None => {}
        }
        self.appends.fetch_add(1, Ordering::SeqCst);
        self.requested.lock().unwrap().push(
            request
                .streams
                .iter()
                .map(|stream| stream.stream.clone())
                .collect(),
        );
        self.inner.append(request).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        self.inner.read_stream(stream, from, direction, limit).await
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, Error> {
        self.inner.stream_version(stream).await
    }

    async fn applied(&self, key: &str) -> Result<Option<eventlog::Receipt>, Error> {
        self.inner.applied(key).await
    }

    async fn read_all(&self, after: Position, limit: usize) -> Result<Page, Error> {
        self.inner.read_all(after, limit).await
    }

    async fn head(&self) -> Result<Position, Error> {
        self.inner.head().await
    }

    async fn count_after(&self, after: Position, cap: u64) -> Result<u64, Error> {
        self.inner.count_after(after, cap).await
    }

    fn subscribe_all(&self, after: Position) -> BoxStream<'static, Result<RecordedEvent, Error>> {
        self.inner.subscribe_all(after)
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_reply_that_lost_the_race_to_a_close_is_rejected_after_reload(pool: PgPool) {
    let log = Interleaved::new(PostgresLog::new(pool));
    let service = CommandService::new(log.clone());
    let ticket = open_ticket(&service).await;

    let close = TicketCommand::Close {
        by: by_agent(),
        at: t(2),
    };
    log.before_next_append(ticket, close);
    let appends_before = log.appends.load(Ordering::SeqCst);
    let result = service
        .execute_ticket(ticket, &reply(1, t(3)), &agent_ctx(1))
        .await;

    let Err(CommandError::Rejected(rejection)) = result else {
        panic!("expected a rejection, got {result:?}");
    };
    assert_eq!(rejection, FlowError::Ticket(TicketError::Closed));
    assert_eq!(
        CommandError::<FlowError>::Rejected(rejection).to_string(),
        "this ticket is closed",
        "the user sees the domain's message"
    );
    assert_eq!(
        log.appends.load(Ordering::SeqCst) - appends_before,
        1,
        "one append conflicted; the reload then rejected the reply without appending"
    );
    let types: Vec<String> = read(&log, &ticket.stream().name())
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        [
            "ticket.opened",
            "ticket.customer_message_posted",
            "ticket.closed"
        ]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_reply_that_lost_the_race_to_another_reply_is_retried_and_lands(pool: PgPool) {
    let log = Interleaved::new(PostgresLog::new(pool));
    let service = CommandService::new(log.clone());
    let ticket = open_ticket(&service).await;

    log.before_next_append(ticket, reply(2, t(2)));
    let executed = service
        .execute_ticket(ticket, &reply(1, t(3)), &agent_ctx(1))
        .await
        .unwrap();

    // The cut-in reply moved the ticket to "open" first; ours lands after it.
    assert_eq!(
        executed.summary(),
        [(ticket.stream().name().as_str(), 4, "ticket.agent_replied")]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_reply_checks_only_its_ticket_so_a_customer_change_meanwhile_costs_no_retry(
    pool: PgPool,
) {
    let log = Interleaved::new(PostgresLog::new(pool));
    let service = CommandService::new(log.clone());
    let ticket = open_ticket(&service).await;
    let ticket_stream = ticket.stream().name();
    let customer_stream = CUSTOMER.stream().name();

    // The customer is banned between the reply's load and its append.
    log.before_next_append_on_customer(CustomerCommand::Ban {
        by: agent(2),
        reason: None,
        at: t(2),
    });
    let appends_before = log.appends.load(Ordering::SeqCst);
    let executed = service
        .execute_ticket(ticket, &reply(1, t(3)), &agent_ctx(1))
        .await
        .unwrap();
    assert_eq!(
        log.appends.load(Ordering::SeqCst) - appends_before,
        1,
        "the reply went in on its first append"
    );
    assert_eq!(
        log.requested.lock().unwrap().last().unwrap(),
        std::slice::from_ref(&ticket_stream),
        "the reply's append names its ticket only"
    );
    assert!(
        executed
            .summary()
            .iter()
            .any(|(stream, _, event_type)| *stream == ticket_stream
                && *event_type == "ticket.agent_replied")
    );
    let customer_types: Vec<String> = read(&log, &customer_stream)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(customer_types.last().unwrap(), "customer.banned");

    // A command that notes something on the customer still checks the customer's version:
    // a change there meanwhile makes it decide again.
    log.before_next_append_on_customer(CustomerCommand::Unban {
        by: agent(2),
        at: t(4),
    });
    let appends_before = log.appends.load(Ordering::SeqCst);
    let resolved = service
        .execute_ticket(
            ticket,
            &TicketCommand::Resolve {
                by: by_agent(),
                at: t(5),
            },
            &agent_ctx(1),
        )
        .await
        .unwrap();
    assert_eq!(
        log.appends.load(Ordering::SeqCst) - appends_before,
        2,
        "the first append conflicted on the customer; the second went in"
    );
    let streams = log.requested.lock().unwrap().last().unwrap().clone();
    assert!(
        streams.contains(&customer_stream) && streams.contains(&ticket_stream),
        "{streams:?}"
    );
    assert!(
        resolved
            .summary()
            .iter()
            .any(|(stream, _, event_type)| *stream == customer_stream
                && *event_type == "customer.ticket_resolved"),
        "{:?}",
        resolved.summary()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn retries_are_bounded(pool: PgPool) {
    let log = Interleaved::new(PostgresLog::new(pool));
    let service = CommandService::new(log.clone()).with_max_attempts(1);
    let ticket = open_ticket(&service).await;

    log.before_next_append(ticket, reply(2, t(2)));
    let result = service
        .execute_ticket(ticket, &reply(1, t(3)), &agent_ctx(1))
        .await;
    assert!(
        matches!(
            result,
            Err(CommandError::Conflict {
                attempts: 1,
                last: Error::Conflict { .. },
                ..
            })
        ),
        "{result:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_command_losing_every_race_retries_for_its_time_budget_then_gives_up(pool: PgPool) {
    let budget = std::time::Duration::from_millis(1_500);
    let log = Interleaved::new(PostgresLog::new(pool));
    let service = CommandService::new(log.clone()).with_retry_budget(budget);
    let ticket = open_ticket(&service).await;

    log.before_every_append(ticket);
    let started = std::time::Instant::now();
    let result = service
        .execute_ticket(ticket, &reply(1, t(3)), &agent_ctx(1))
        .await;
    let took = started.elapsed();
    let Err(CommandError::Conflict {
        attempts, waited, ..
    }) = result
    else {
        panic!("expected to give up on contention: {result:?}");
    };
    // Far more than the ten attempts a fixed count allowed, and within the budget.
    assert!(attempts > 10, "{attempts} attempts in {waited:?}");
    // No pause starts that would end past the budget; the last attempt itself (and a sleep
    // woken late on a busy machine) may end a little after it.
    assert!(waited < budget + budget / 2, "{waited:?}");
    assert!(took < budget * 2, "{took:?}");

    // No budget: the first conflict is final.
    let service = CommandService::new(log.clone()).with_retry_budget(std::time::Duration::ZERO);
    let result = service
        .execute_ticket(ticket, &reply(2, t(4)), &agent_ctx(2))
        .await;
    assert!(
        matches!(result, Err(CommandError::Conflict { attempts: 1, .. })),
        "{result:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_same_idempotency_key_twice_has_one_effect(pool: PgPool) {
    let log = PostgresLog::new(pool);
    let service = CommandService::new(log.clone());

    // A Telegram update delivered twice.
    let ctx = customer_ctx().idempotent("telegram-update-1001");
    let first = service
        .route_customer_message(&route(1, 1, t(0)), &ctx)
        .await
        .unwrap();
    let second = service
        .route_customer_message(&route(1, 1, t(0)), &ctx)
        .await
        .unwrap();
    assert!(!first.executed.replayed);
    assert!(second.executed.replayed);
    assert_eq!(
        second.outcome,
        RouteOutcome::Opened,
        "answered as the first time"
    );
    assert_eq!(second.ticket_id, first.ticket_id);
    assert_eq!(second.executed.position, first.executed.position);
    assert_eq!(second.executed.events, first.executed.events);

    // A client mutation retried: the repeat would be a duplicate message id if decided again.
    let ticket = first.ticket_id;
    let ctx = agent_ctx(1).idempotent("mutation-7");
    let first = service
        .execute_ticket(ticket, &reply(1, t(1)), &ctx)
        .await
        .unwrap();
    let second = service
        .execute_ticket(ticket, &reply(1, t(1)), &ctx)
        .await
        .unwrap();
    assert!(!first.replayed);
    assert!(second.replayed);
    assert_eq!(second.position, first.position);
    assert_eq!(second.events, first.events);
    let stored = read(&log, &ticket.stream().name()).await;
    assert_eq!(
        stored
            .iter()
            .filter(|e| e.event_type == "ticket.agent_replied")
            .count(),
        1
    );
    assert_eq!(
        stored.last().unwrap().metadata.idempotency_key.as_deref(),
        Some("mutation-7")
    );

    // Without the key the same repeat is the domain's rejection.
    let again = service
        .execute_ticket(ticket, &reply(1, t(1)), &agent_ctx(1))
        .await;
    assert!(matches!(
        again,
        Err(CommandError::Rejected(FlowError::Ticket(
            TicketError::DuplicateMessageId
        )))
    ));
}

#[sqlx::test(migrations = "../migrations")]
async fn an_idempotency_key_applied_to_another_input_is_refused(pool: PgPool) {
    let log = PostgresLog::new(pool);
    let service = CommandService::new(log.clone());
    let ticket = open_ticket(&service).await;

    let ctx = agent_ctx(1)
        .idempotent("mutation-8")
        .with_input_digest([1u8; 32]);
    let first = service
        .execute_ticket(ticket, &reply(1, t(1)), &ctx)
        .await
        .unwrap();
    // The same input replays, even where deciding again would be refused (a duplicate id).
    let again = service
        .execute_ticket(ticket, &reply(1, t(1)), &ctx)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.position, first.position);
    let written = read(&log, &ticket.stream().name()).await.len();

    // Another input under the key: refused, whether the domain would accept it or not.
    let other = ctx.clone().with_input_digest([2u8; 32]);
    for command in [reply(2, t(2)), reply(1, t(1))] {
        let refused = service.execute_ticket(ticket, &command, &other).await;
        assert!(
            matches!(refused, Err(CommandError::KeyReused)),
            "{refused:?}"
        );
    }
    assert_eq!(read(&log, &ticket.stream().name()).await.len(), written);

    // A key applied without a digest replays whatever the input.
    let plain = agent_ctx(1).idempotent("mutation-9");
    service
        .execute_ticket(ticket, &reply(3, t(3)), &plain)
        .await
        .unwrap();
    let replayed = service
        .execute_ticket(ticket, &reply(4, t(4)), &plain.with_input_digest([3u8; 32]))
        .await
        .unwrap();
    assert!(replayed.replayed);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_single_aggregate_command_runs_and_its_rejections_carry_the_domain_message(pool: PgPool) {
    let log = PostgresLog::new(pool);
    let service = CommandService::new(log.clone());
    open_ticket(&service).await;

    let ban = CustomerCommand::Ban {
        by: agent(1),
        reason: Some("spam".into()),
        at: t(1),
    };
    let ctx = agent_ctx(1).idempotent("ban-1");
    let banned = service
        .execute::<Customer>(CUSTOMER.stream(), &ban, &ctx)
        .await
        .unwrap();
    assert_eq!(
        banned
            .events
            .iter()
            .map(|e| (e.version, e.event.event_type()))
            .collect::<Vec<_>>(),
        [(2, "customer.banned")]
    );
    let again = service
        .execute::<Customer>(CUSTOMER.stream(), &ban, &ctx)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.position, banned.position);

    let refused = service
        .route_customer_message(&route(2, 2, t(2)), &customer_ctx())
        .await
        .unwrap_err();
    assert_eq!(
        refused.rejection(),
        Some(&FlowError::Customer(CustomerError::Banned))
    );
    assert_eq!(refused.to_string(), "this customer is banned");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stored_event_that_cannot_be_decoded_is_a_decode_error(pool: PgPool) {
    let log = PostgresLog::new(pool);
    let service = CommandService::new(log.clone());
    let metadata = Metadata::new(Actor::system("test"));

    let broken = ticket_id(7);
    let appended = log
        .append(AppendRequest::to_stream(
            broken.stream().name(),
            ExpectedVersion::NoStream,
            vec![
                NewEvent::new(
                    "ticket.opened",
                    json!({ "not": "a ticket" }),
                    metadata.clone(),
                )
                .with_schema_version(2),
            ],
        ))
        .await
        .unwrap();
    assert!(!appended.is_replay());
    let result = service
        .execute_ticket(broken, &reply(1, t(1)), &agent_ctx(1))
        .await;
    match result {
        Err(CommandError::Decode {
            stream,
            version: 0,
            source: DecodeError::BadPayload { event_type, .. },
        }) => {
            assert_eq!(stream, broken.stream().name());
            assert_eq!(event_type, "ticket.opened");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }

    let unknown = ticket_id(8);
    let appended = log
        .append(AppendRequest::to_stream(
            unknown.stream().name(),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("ticket.exploded", json!({}), metadata)],
        ))
        .await
        .unwrap();
    assert!(!appended.is_replay());
    let result = service
        .execute::<domain::ticket::Ticket>(unknown.stream(), &reply(1, t(1)), &agent_ctx(1))
        .await;
    assert!(
        matches!(
            result,
            Err(CommandError::Decode {
                source: DecodeError::UnknownType { .. },
                ..
            })
        ),
        "{result:?}"
    );
}

fn tag(add: bool) -> TicketCommand {
    let (tag, by, at) = ("vip".to_owned(), agent(0), t(5));
    if add {
        TicketCommand::AddTag { tag, by, at }
    } else {
        TicketCommand::RemoveTag { tag, by, at }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_state_kept_in_memory_that_another_writer_made_stale_still_decides_right(pool: PgPool) {
    let log = PostgresLog::new(pool);
    // Two services are two processes: each keeps its own memory of the ticket.
    let here = CommandService::new(log.clone());
    let elsewhere = CommandService::new(log.clone());
    let ticket = open_ticket(&here).await;
    here.execute_ticket(ticket, &reply(1, t(1)), &agent_ctx(1))
        .await
        .unwrap();

    // Closed elsewhere: the reply decided here on the remembered (open) ticket must not land.
    let close = TicketCommand::Close {
        by: by_agent(),
        at: t(2),
    };
    elsewhere
        .execute_ticket(ticket, &close, &agent_ctx(2))
        .await
        .unwrap();
    let result = here
        .execute_ticket(ticket, &reply(3, t(3)), &agent_ctx(1))
        .await;
    let Err(CommandError::Rejected(rejection)) = result else {
        panic!("expected a rejection, got {result:?}");
    };
    assert_eq!(rejection, FlowError::Ticket(TicketError::Closed));
    let last = read(&log, &ticket.stream().name()).await.pop().unwrap();
    assert_eq!(last.event_type, "ticket.closed");
}

#[sqlx::test(migrations = "../migrations")]
async fn nothing_to_do_on_a_remembered_state_is_checked_on_the_stream(pool: PgPool) {
    let log = PostgresLog::new(pool);
    let here = CommandService::new(log.clone());
    let elsewhere = CommandService::new(log.clone());
    let ticket = open_ticket(&here).await;
    here.execute_ticket(ticket, &tag(true), &agent_ctx(0))
        .await
        .unwrap();

    // Removed elsewhere: here the ticket is still remembered with the tag, so adding it again
    // looks like nothing to do; the service must look at the stream before answering so.
    elsewhere
        .execute_ticket(ticket, &tag(false), &agent_ctx(0))
        .await
        .unwrap();
    let executed = here
        .execute_ticket(ticket, &tag(true), &agent_ctx(0))
        .await
        .unwrap();
    assert_eq!(
        streams_and_types(&executed),
        [(ticket.stream().name(), "ticket.tag_added")]
    );
    let types: Vec<String> = read(&log, &ticket.stream().name())
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types[types.len() - 3..],
        ["ticket.tag_added", "ticket.tag_removed", "ticket.tag_added"]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn commands_on_a_remembered_stream_decide_as_on_a_fresh_read(pool: PgPool) {
    let log = PostgresLog::new(pool);
    let remembering = CommandService::new(log.clone());
    let ticket = open_ticket(&remembering).await;
    for n in 1..=5 {
        remembering
            .execute_ticket(ticket, &reply(n, t(1)), &agent_ctx(n))
            .await
            .unwrap();
    }
    remembering
        .execute_ticket(ticket, &tag(true), &agent_ctx(0))
        .await
        .unwrap();

    // The state folded after each append equals the stream read from scratch: a duplicate
    // reply id and a tag already there are seen alike by both services.
    let reading = CommandService::new(log.clone()).with_cached_streams(0);
    for service in [&remembering, &reading] {
        let duplicate = service
            .execute_ticket(ticket, &reply(3, t(2)), &agent_ctx(3))
            .await;
        assert!(
            matches!(
                duplicate,
                Err(CommandError::Rejected(FlowError::Ticket(
                    TicketError::DuplicateMessageId
                )))
            ),
            "{duplicate:?}"
        );
        let again = service
            .execute_ticket(ticket, &tag(true), &agent_ctx(0))
            .await
            .unwrap();
        assert!(again.events.is_empty());
    }
    let fresh: domain::ticket::Ticket = remembering.state(ticket.stream()).await.unwrap();
    assert_eq!(fresh.state().map(|s| s.replies.len()), Some(5));
}
