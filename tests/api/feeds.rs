//! The subscriptions that follow one thing over WebSocket: `ticketEvents` and `messageAdded`
//! (one ticket) and `broadcastProgress` (one broadcast). Each delivers its own items in log
//! order with their fields, nothing of other tickets or broadcasts, and refuses callers without
//! the permission or outside the ticket's categories.

use std::time::Duration;

use app::commands::{CommandContext, CommandService};
use chrono::Utc;
use domain::broadcast::{Broadcast, BroadcastCommand, Outcome, RecipientOutcome, SkipReason};
use domain::content::TelegramMessageId;
use domain::{BroadcastId, CustomerId, StreamId, TicketId};
use eventlog::{Actor, Direction, EventLog, Position, RecordedEvent};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Agent, Server};
use crate::ws::{Protocol, Ws};

const TICKET_EVENTS: &str = "subscription($ticket: ID!, $after: String) {
    ticketEvents(ticketId: $ticket, after: $after) {
        cursor position stream version type actor { kind id actorId } payload } }";

const MESSAGES: &str = "subscription($ticket: ID) {
    messageAdded(ticketId: $ticket) {
        cursor messageId ticketId authorAgentId
        message { direction kind text caption createdAt seq } } }";

const PROGRESS: &str = "subscription($id: ID!) {
    broadcastProgress(id: $id) { cursor state delivered failed skipped total } }";

const REPLY: &str = "mutation($ticket: ID!, $text: String!) {
    replyToTicket(input: {ticketId: $ticket, text: $text}) { position messageId } }";

/// How long a subscription must stay silent to count as having nothing more to say.
const SILENCE: Duration = Duration::from_millis(300);

/// Runs a mutation that must succeed and returns its payload.
async fn mutate(server: &Server, by: &Agent, query: &str, variables: Value) -> Value {
    let data = server.ok(&by.token, query, variables).await;
    data.as_object().unwrap().values().next().unwrap().clone()
}

async fn reply(server: &Server, by: &Agent, ticket: Uuid, text: &str) -> Value {
    mutate(server, by, REPLY, json!({ "ticket": ticket, "text": text })).await
}

/// The events of `ticket`'s stream after `after`, as the log has them.
async fn stream_after(server: &Server, ticket: Uuid, after: Position) -> Vec<RecordedEvent> {
    server
        .log
        .read_stream(
            &StreamId::Ticket(TicketId(ticket)).name(),
            0,
            Direction::Forwards,
            1_000,
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.position > after)
        .collect()
}

/// Asserts a `ticketEvents` item is this event of the log.
fn assert_is(item: &Value, event: &RecordedEvent) {
    let position = event.position.to_string();
    assert_eq!(item["cursor"], position.as_str(), "{item}");
    assert_eq!(item["position"], position.as_str(), "{item}");
    assert_eq!(item["stream"], event.stream_id.as_str(), "{item}");
    assert_eq!(item["version"], event.stream_version, "{item}");
    assert_eq!(item["type"], event.event_type.as_str(), "{item}");
    assert_eq!(
        item["actor"]["actorId"],
        event.metadata.actor.id.as_str(),
        "{item}"
    );
    assert_eq!(item["payload"], event.payload, "{item}");
}

#[tokio::test]
async fn ticket_events_follow_one_ticket_in_log_order_and_nothing_else() {
    let server = Server::start("feed_ticket_events").await;
    let admin = server.admin().await;
    let (ticket, opened) = server
        .customer_writes(1, None, "my parcel never came")
        .await;
    let (other, _) = server.customer_writes(2, None, "hello?").await;

    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    ws.subscribe(
        "t",
        TICKET_EVENTS,
        json!({ "ticket": ticket, "after": opened.to_string() }),
    )
    .await;
    // Caused while the subscription may still be starting: the cursor makes it replay them.
    reply(&server, &admin, ticket, "It is on its way").await;
    reply(&server, &admin, other, "Hello!").await;
    mutate(
        &server,
        &admin,
        "mutation($ticket: ID!) { tagTicket(input: {ticketId: $ticket, tag: \"parcel\"}) { position } }",
        json!({ "ticket": ticket }),
    )
    .await;
    let first = stream_after(&server, ticket, opened).await;
    let types: Vec<&str> = first.iter().map(|e| e.event_type.as_str()).collect();
    // The first reply also opens the ticket.
    assert_eq!(
        types,
        [
            "ticket.agent_replied",
            "ticket.status_changed",
            "ticket.tag_added"
        ]
    );
    for event in &first {
        let item = ws.data("t").await["ticketEvents"].clone();
        assert_is(&item, event);
        assert_eq!(item["actor"]["kind"], "AGENT");
        assert_eq!(item["actor"]["actorId"], admin.id.as_str());
    }

    // Now surely live: a customer's message and the other ticket's changes.
    let last = first.last().unwrap().position;
    server.customer_writes(2, None, "still there?").await;
    let (same, _) = server.customer_writes(1, None, "thanks!").await;
    assert_eq!(same, ticket);
    let live = stream_after(&server, ticket, last).await;
    assert_eq!(live.len(), 1);
    let item = ws.data("t").await["ticketEvents"].clone();
    assert_is(&item, &live[0]);
    assert_eq!(item["type"], "ticket.customer_message_posted");
    assert_eq!(item["actor"]["kind"], "SYSTEM");
    assert_eq!(item["version"], first.last().unwrap().stream_version + 1);
    ws.quiet(SILENCE).await;
    ws.close().await;
    server.stop().await;
}

#[tokio::test]
async fn ticket_events_are_refused_without_the_permission_or_outside_the_agents_categories() {
    let server = Server::start("feed_ticket_refusals").await;
    let admin = server.admin().await;
    let billing = server.category(&admin, "Billing").await;
    let shipping = server.category(&admin, "Shipping").await;
    let (billed, _) = server
        .customer_writes(1, Some(billing), "double charge")
        .await;
    let (shipped, _) = server
        .customer_writes(2, Some(shipping), "late parcel")
        .await;
    let (loose, _) = server.customer_writes(3, None, "hi").await;
    let scoped = server
        .scoped_agent(&admin, "billing@example.com", &[billing])
        .await;
    let customers_only = server.api_token(&admin, &["customers:read"]).await;
    let tickets_reader = server.api_token(&admin, &["tickets:read"]).await;

    let mut ws = Ws::connect(&server, Protocol::TransportWs, &customers_only).await;
    ws.subscribe("1", TICKET_EVENTS, json!({ "ticket": billed }))
        .await;
    assert_eq!(ws.error_code("1").await, "FORBIDDEN");
    ws.close().await;

    // Outside their categories, uncategorized or unknown: all the same to the agent.
    let mut ws = Ws::connect(&server, Protocol::Legacy, &scoped.token).await;
    for (id, ticket) in [("2", shipped), ("3", loose), ("4", Uuid::now_v7())] {
        ws.subscribe(id, TICKET_EVENTS, json!({ "ticket": ticket }))
            .await;
        assert_eq!(ws.error_code(id).await, "NOT_FOUND", "{ticket}");
    }
    ws.subscribe("5", TICKET_EVENTS, json!({ "ticket": "not-a-uuid" }))
        .await;
    assert_eq!(ws.error_code("5").await, "VALIDATION");

    // Their own category's ticket they follow, until it moves out of their categories.
    let (_, before) = server.customer_writes(1, Some(billing), "any news?").await;
    ws.subscribe(
        "6",
        TICKET_EVENTS,
        json!({ "ticket": billed, "after": before.to_string() }),
    )
    .await;
    let mut reader = Ws::connect(&server, Protocol::TransportWs, &tickets_reader).await;
    reader
        .subscribe(
            "r",
            TICKET_EVENTS,
            json!({ "ticket": billed, "after": before.to_string() }),
        )
        .await;
    reply(&server, &admin, billed, "Refunded").await;
    // The first reply opens the ticket too.
    for expected in ["ticket.agent_replied", "ticket.status_changed"] {
        assert_eq!(ws.data("6").await["ticketEvents"]["type"], expected);
        assert_eq!(reader.data("r").await["ticketEvents"]["type"], expected);
    }
    mutate(
        &server,
        &admin,
        "mutation($ticket: ID!, $category: ID) {
            setTicketCategory(input: {ticketId: $ticket, categoryId: $category}) { position } }",
        json!({ "ticket": billed, "category": shipping }),
    )
    .await;
    reply(&server, &admin, billed, "Your parcel ships today").await;
    // The move ends the agent's feed before it shows anything of the ticket's new life…
    assert_eq!(ws.error_code("6").await, "NOT_FOUND");
    ws.completed("6").await;
    ws.quiet(SILENCE).await;
    // …while a caller who still sees the ticket goes on.
    for expected in ["ticket.category_changed", "ticket.agent_replied"] {
        assert_eq!(reader.data("r").await["ticketEvents"]["type"], expected);
    }
    ws.close().await;
    reader.close().await;
    server.stop().await;
}

/// Replies on `ticket` until `messageAdded` on `id` delivers one: from then on the
/// subscription is live. Returns how many warm-up replies were sent.
async fn warm_up(server: &Server, by: &Agent, ws: &mut Ws, id: &str, ticket: Uuid) -> usize {
    for sent in 1..=50 {
        reply(server, by, ticket, &format!("warm-up {sent}")).await;
        if tokio::time::timeout(Duration::from_millis(500), ws.data(id))
            .await
            .is_ok()
        {
            return sent;
        }
    }
    panic!("messageAdded never went live");
}

/// The next `messageAdded` item on `id` that is not a warm-up reply.
async fn next_message(ws: &mut Ws, id: &str) -> Value {
    loop {
        let item = ws.data(id).await["messageAdded"].clone();
        let warm_up = item["message"]["text"]
            .as_str()
            .is_some_and(|text| text.starts_with("warm-up"));
        if !warm_up {
            return item;
        }
    }
}

#[tokio::test]
async fn message_added_brings_one_tickets_messages_and_replies_in_order() {
    let server = Server::start("feed_messages").await;
    let admin = server.admin().await;
    let (ticket, _) = server
        .customer_writes(1, None, "my parcel never came")
        .await;
    let (other, _) = server.customer_writes(2, None, "hello?").await;

    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    ws.subscribe("m", MESSAGES, json!({ "ticket": ticket }))
        .await;
    warm_up(&server, &admin, &mut ws, "m", ticket).await;

    server.customer_writes(2, None, "not this one").await;
    reply(&server, &admin, other, "nor this one").await;
    let (_, posted) = server.customer_writes(1, None, "it came broken").await;
    mutate(
        &server,
        &admin,
        "mutation($ticket: ID!) { addInternalNote(input: {ticketId: $ticket, text: \"fragile\"}) { position } }",
        json!({ "ticket": ticket }),
    )
    .await;
    let replied = reply(&server, &admin, ticket, "Sorry! A new one is on its way").await;

    let customer = next_message(&mut ws, "m").await;
    assert_eq!(customer["cursor"], posted.to_string().as_str());
    assert_eq!(customer["ticketId"], ticket.to_string().as_str());
    assert_eq!(customer["authorAgentId"], Value::Null);
    assert_eq!(customer["message"]["direction"], "in");
    assert_eq!(customer["message"]["kind"], "text");
    assert_eq!(customer["message"]["text"], "it came broken");
    assert_eq!(customer["message"]["caption"], Value::Null);

    let answer = next_message(&mut ws, "m").await;
    assert_eq!(answer["cursor"], replied["position"]);
    assert_eq!(answer["messageId"], replied["messageId"]);
    assert_eq!(answer["ticketId"], ticket.to_string().as_str());
    assert_eq!(answer["authorAgentId"], admin.id.as_str());
    assert_eq!(answer["message"]["direction"], "out");
    assert_eq!(answer["message"]["text"], "Sorry! A new one is on its way");
    assert!(
        answer["message"]["seq"].as_i64().unwrap() > customer["message"]["seq"].as_i64().unwrap()
    );
    assert!(
        answer["message"]["createdAt"].as_str().unwrap()
            >= customer["message"]["createdAt"].as_str().unwrap()
    );
    // Nothing of the other ticket, and no internal note.
    ws.quiet(SILENCE).await;
    ws.close().await;
    server.stop().await;
}

#[tokio::test]
async fn message_added_keeps_to_the_agents_categories_and_refuses_the_rest() {
    let server = Server::start("feed_message_scope").await;
    let admin = server.admin().await;
    let billing = server.category(&admin, "Billing").await;
    let shipping = server.category(&admin, "Shipping").await;
    let (billed, _) = server
        .customer_writes(1, Some(billing), "double charge")
        .await;
    let (shipped, _) = server
        .customer_writes(2, Some(shipping), "late parcel")
        .await;
    let scoped = server
        .scoped_agent(&admin, "billing@example.com", &[billing])
        .await;
    let directory_only = server.api_token(&admin, &["directory:read"]).await;

    let mut ws = Ws::connect(&server, Protocol::Legacy, &directory_only).await;
    ws.subscribe("1", MESSAGES, json!({ "ticket": billed }))
        .await;
    assert_eq!(ws.error_code("1").await, "FORBIDDEN");
    ws.subscribe("2", MESSAGES, json!({})).await;
    assert_eq!(ws.error_code("2").await, "FORBIDDEN");
    ws.close().await;

    let mut ws = Ws::connect(&server, Protocol::TransportWs, &scoped.token).await;
    ws.subscribe("3", MESSAGES, json!({ "ticket": shipped }))
        .await;
    assert_eq!(ws.error_code("3").await, "NOT_FOUND");

    // Every ticket they may see: the billing ticket's messages, never the shipping ticket's.
    ws.subscribe("all", MESSAGES, json!({})).await;
    warm_up(&server, &scoped, &mut ws, "all", billed).await;
    server
        .customer_writes(2, Some(shipping), "where is it?")
        .await;
    reply(&server, &admin, shipped, "Shipped today").await;
    server.customer_writes(1, Some(billing), "any news?").await;
    let item = next_message(&mut ws, "all").await;
    assert_eq!(item["ticketId"], billed.to_string().as_str());
    assert_eq!(item["message"]["text"], "any news?");
    ws.quiet(SILENCE).await;
    ws.close().await;
    server.stop().await;
}

fn broadcast_commands(server: &Server) -> CommandService<eventlog::postgres::PostgresLog> {
    CommandService::new(server.log.clone())
}

/// Records outcomes as the bot's sender does, and returns the position written.
async fn record(server: &Server, broadcast: Uuid, outcomes: Vec<(i64, Outcome)>) -> Position {
    let command = BroadcastCommand::RecordOutcomes {
        outcomes: outcomes
            .into_iter()
            .map(|(customer, outcome)| RecipientOutcome {
                customer: CustomerId(customer),
                outcome,
            })
            .collect(),
        at: Utc::now(),
    };
    run_broadcast(server, broadcast, &command).await
}

async fn run_broadcast(server: &Server, broadcast: Uuid, command: &BroadcastCommand) -> Position {
    let executed = broadcast_commands(server)
        .execute::<Broadcast>(
            StreamId::Broadcast(BroadcastId(broadcast)),
            command,
            &CommandContext::new(Actor::system("test")),
        )
        .await
        .unwrap();
    executed.position.unwrap()
}

async fn create_broadcast(server: &Server, by: &Agent, text: &str) -> Uuid {
    let payload = mutate(
        server,
        by,
        "mutation($text: String!) { createBroadcast(input: {
            audience: {allCustomers: true}, content: {text: $text}}) { position broadcastId } }",
        json!({ "text": text }),
    )
    .await;
    // The first snapshot is the read model's row: let it hold the draft.
    server
        .caught_up(payload["position"].as_str().unwrap().parse().unwrap())
        .await;
    let id = payload["broadcastId"].as_str().unwrap();
    api::graphql::ids::uuid_of("Broadcast", &id.into()).unwrap()
}

async fn start_broadcast(server: &Server, by: &Agent, broadcast: Uuid) -> Value {
    mutate(
        server,
        by,
        "mutation($id: ID!) { startBroadcast(input: {broadcastId: $id}) { position } }",
        json!({ "id": broadcast }),
    )
    .await
}

/// Asserts a `broadcastProgress` item: `(cursor, state, delivered, failed, skipped, total)`.
fn assert_progress(item: &Value, expected: (&str, &str, i64, i64, i64, Option<i64>)) {
    let (cursor, state, delivered, failed, skipped, total) = expected;
    assert_eq!(
        item,
        &json!({
            "cursor": cursor, "state": state, "delivered": delivered, "failed": failed,
            "skipped": skipped, "total": total,
        })
    );
}

#[tokio::test]
async fn broadcast_progress_counts_one_broadcast_from_draft_to_completed() {
    let server = Server::start("feed_progress").await;
    let admin = server.admin().await;
    for customer in 1..=3 {
        server.customer_writes(customer, None, "hi").await;
    }
    let sale = create_broadcast(&server, &admin, "Summer sale").await;
    let other = create_broadcast(&server, &admin, "Winter sale").await;

    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    ws.subscribe("p", PROGRESS, json!({ "id": sale })).await;
    // The current counters come first, once the subscription follows the log.
    let first = ws.data("p").await["broadcastProgress"].clone();
    assert_progress(&first, ("", "draft", 0, 0, 0, None));

    // Each step waits for its item: an item shows the counters as the read model has them
    // when it is sent, at least as of its cursor.
    start_broadcast(&server, &admin, other).await;
    let started = start_broadcast(&server, &admin, sale).await;
    let started = started["position"].as_str().unwrap();
    // The start is `broadcast.started` and a batch of the frozen audience: an item each,
    // the last at the position the mutation answered.
    let first = ws.data("p").await["broadcastProgress"].clone();
    assert_eq!(first["state"], "running", "{first}");
    assert_progress(
        &ws.data("p").await["broadcastProgress"],
        (started, "running", 0, 0, 0, Some(3)),
    );
    let delivered = Outcome::Delivered {
        telegram_message_id: TelegramMessageId(9),
    };
    record(&server, other, vec![(1, delivered)]).await;
    let batch = record(
        &server,
        sale,
        vec![
            (
                1,
                Outcome::Delivered {
                    telegram_message_id: TelegramMessageId(10),
                },
            ),
            (
                2,
                Outcome::Failed {
                    reason: "Bad Request: chat not found".into(),
                    retryable: false,
                },
            ),
        ],
    )
    .await
    .to_string();
    assert_progress(
        &ws.data("p").await["broadcastProgress"],
        (&batch, "running", 1, 1, 0, Some(3)),
    );
    // The last recipient's outcome completes the broadcast (one append: the outcomes and
    // `broadcast.completed`): an item per event, the last one completed.
    let batch = record(
        &server,
        sale,
        vec![(
            3,
            Outcome::Skipped {
                reason: SkipReason::BlockedBot,
            },
        )],
    )
    .await
    .to_string();
    let first = ws.data("p").await["broadcastProgress"].clone();
    assert_eq!(first["skipped"], 1, "{first}");
    let last = ws.data("p").await["broadcastProgress"].clone();
    assert_eq!(last["state"], "completed", "{last}");
    assert_eq!(
        (
            &last["delivered"],
            &last["failed"],
            &last["skipped"],
            &last["total"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(3))
    );
    let _ = batch;
    // The other broadcast's start and outcomes never show.
    ws.quiet(SILENCE).await;
    ws.close().await;
    server.stop().await;
}

#[tokio::test]
async fn broadcast_progress_is_refused_without_the_permission_or_for_an_unknown_broadcast() {
    let server = Server::start("feed_progress_refusals").await;
    let admin = server.admin().await;
    let sale = create_broadcast(&server, &admin, "Summer sale").await;
    let tickets_only = server.api_token(&admin, &["tickets:read"]).await;
    let broadcasts_reader = server.api_token(&admin, &["broadcasts:read"]).await;

    let mut ws = Ws::connect(&server, Protocol::TransportWs, &tickets_only).await;
    ws.subscribe("1", PROGRESS, json!({ "id": sale })).await;
    assert_eq!(ws.error_code("1").await, "FORBIDDEN");
    ws.close().await;

    let mut ws = Ws::connect(&server, Protocol::Legacy, &broadcasts_reader).await;
    ws.subscribe("2", PROGRESS, json!({ "id": Uuid::now_v7() }))
        .await;
    assert_eq!(ws.error_code("2").await, "NOT_FOUND");
    ws.subscribe("3", PROGRESS, json!({ "id": "sale" })).await;
    assert_eq!(ws.error_code("3").await, "VALIDATION");
    ws.subscribe("4", PROGRESS, json!({ "id": sale })).await;
    let first = ws.data("4").await["broadcastProgress"].clone();
    assert_eq!(first["state"], "draft");
    ws.close().await;
    server.stop().await;
}

#[tokio::test]
async fn broadcast_progress_can_be_subscribed_to_the_moment_the_broadcast_is_created() {
    let server = Server::start("feed_progress_at_once").await;
    let admin = server.admin().await;
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    // Each broadcast is subscribed to as soon as createBroadcast answers, without waiting for
    // the read model: the first snapshot must still be its draft, never NOT_FOUND.
    for n in 0..5 {
        let payload = mutate(
            &server,
            &admin,
            "mutation($text: String!) { createBroadcast(input: {
                audience: {allCustomers: true}, content: {text: $text}}) { broadcastId } }",
            json!({ "text": format!("Notice {n}") }),
        )
        .await;
        let broadcast = api::graphql::ids::uuid_of(
            "Broadcast",
            &payload["broadcastId"].as_str().unwrap().into(),
        )
        .unwrap();
        let id = format!("{n}");
        ws.subscribe(&id, PROGRESS, json!({ "id": broadcast }))
            .await;
        let first = ws.data(&id).await["broadcastProgress"].clone();
        assert_eq!(first["state"], "draft", "{first}");
        ws.stop(&id).await;
    }
    ws.close().await;
    server.stop().await;
}
