//! The write side over GraphQL: each mutation lands its event and answers its position; every
//! refusal carries the right code.

use std::time::Duration;

use app::commands::{CommandContext, CommandService};
use chrono::{TimeDelta, Utc};
use domain::agent::Role;
use domain::broadcast::{Broadcast, BroadcastStatus};
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::{Customer, CustomerProfile};
use domain::flow::RouteCustomerMessage;
use domain::settings::Settings;
use domain::ticket::{Channel, Priority, Ticket, TicketEvent, TicketStatus};
use domain::{AgentId, BroadcastId, CustomerId, MessageId, StreamId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, Direction, EventLog, Position};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Server, code};

const REPLY: &str = "mutation($input: ReplyToTicketInput!) {
    replyToTicket(input: $input) { position ticketId messageId replayed } }";
const NOTE: &str = "mutation($input: AddInternalNoteInput!) {
    addInternalNote(input: $input) { position ticketId messageId } }";
const ASSIGN: &str = "mutation($input: AssignTicketInput!) {
    assignTicket(input: $input) { position ticketId } }";
const STATUS: &str = "mutation($input: ChangeTicketStatusInput!) {
    changeTicketStatus(input: $input) { position ticketId } }";
const PRIORITY: &str = "mutation($input: SetTicketPriorityInput!) {
    setTicketPriority(input: $input) { position ticketId } }";
const CATEGORY: &str = "mutation($input: SetTicketCategoryInput!) {
    setTicketCategory(input: $input) { position ticketId } }";
const TAG: &str = "mutation($input: TagTicketInput!) {
    tagTicket(input: $input) { position ticketId } }";
const UNTAG: &str = "mutation($input: TagTicketInput!) {
    untagTicket(input: $input) { position ticketId } }";
const BAN: &str = "mutation($input: BanCustomerInput!) {
    banCustomer(input: $input) { position customerId } }";
const UNBAN: &str = "mutation($input: UnbanCustomerInput!) {
    unbanCustomer(input: $input) { position customerId } }";
const CREATE_CATEGORY: &str = "mutation($input: CreateCategoryInput!) {
    createCategory(input: $input) { position categoryId } }";
const RENAME_CATEGORY: &str = "mutation($input: RenameCategoryInput!) {
    renameCategory(input: $input) { position categoryId } }";
const REMOVE_CATEGORY: &str = "mutation($input: RemoveCategoryInput!) {
    removeCategory(input: $input) { position categoryId } }";
const CREATE_TEMPLATE: &str = "mutation($input: CreateTemplateInput!) {
    createTemplate(input: $input) { position templateId } }";
const UPDATE_TEMPLATE: &str = "mutation($input: UpdateTemplateInput!) {
    updateTemplate(input: $input) { position templateId } }";
const REMOVE_TEMPLATE: &str = "mutation($input: RemoveTemplateInput!) {
    removeTemplate(input: $input) { position templateId } }";
const GREETING: &str = "mutation($input: SetGreetingInput!) {
    setGreeting(input: $input) { position } }";
const CREATE_BROADCAST: &str = "mutation($input: CreateBroadcastInput!) {
    createBroadcast(input: $input) { position broadcastId } }";
const UPDATE_BROADCAST: &str = "mutation($input: UpdateBroadcastInput!) {
    updateBroadcast(input: $input) { position broadcastId } }";
const SCHEDULE_BROADCAST: &str = "mutation($input: ScheduleBroadcastInput!) {
    scheduleBroadcast(input: $input) { position broadcastId } }";
const START_BROADCAST: &str = "mutation($input: BroadcastInput!) {
    startBroadcast(input: $input) { position broadcastId } }";
const PAUSE_BROADCAST: &str = "mutation($input: BroadcastInput!) {
    pauseBroadcast(input: $input) { position broadcastId } }";
const CANCEL_BROADCAST: &str = "mutation($input: BroadcastInput!) {
    cancelBroadcast(input: $input) { position broadcastId } }";

fn commands(server: &Server) -> CommandService<PostgresLog> {
    CommandService::new(server.log.clone())
}

/// Opens a ticket the way the bot does, from customer `customer`'s first message, and waits
/// until the read models show it.
async fn open_ticket(server: &Server, customer: i64) -> Uuid {
    let ticket = Uuid::now_v7();
    let routed = commands(server)
        .route_customer_message(
            &RouteCustomerMessage {
                customer: CustomerId(customer),
                profile: CustomerProfile {
                    first_name: "Ann".into(),
                    last_name: None,
                    username: None,
                    language_code: Some("en".into()),
                },
                category: None,
                new_ticket_id: TicketId(ticket),
                channel: Channel::Telegram,
                message: CustomerMessage {
                    message_id: MessageId(Uuid::now_v7()),
                    telegram_message_id: TelegramMessageId(1),
                    reply_to: None,
                    content: MessageContent::text("my order is late"),
                },
                reopen_window: TimeDelta::days(7),
                at: Utc::now(),
            },
            &CommandContext::new(Actor::system("test")),
        )
        .await
        .unwrap();
    assert_eq!(routed.ticket_id, TicketId(ticket));
    caught_up(server, routed.executed.position.unwrap()).await;
    ticket
}

async fn caught_up(server: &Server, position: Position) {
    let all = projections::models::all();
    let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
    projections::wait_for(&server.pool, &names, position, Duration::from_secs(10))
        .await
        .unwrap();
}

/// The payload of a mutation that must succeed, checking it wrote a position.
async fn wrote(server: &Server, token: &str, query: &str, input: Value) -> Value {
    let data = server.ok(token, query, json!({ "input": input })).await;
    let payload = data.as_object().unwrap().values().next().unwrap().clone();
    let position = payload["position"].as_str().expect("a position");
    assert!(position.parse::<Position>().is_ok(), "{position}");
    payload
}

async fn refused(server: &Server, token: Option<&str>, query: &str, input: Value) -> String {
    let body = server.gql(token, query, json!({ "input": input })).await;
    code(&body)
        .unwrap_or_else(|| panic!("expected an error: {body:#}"))
        .to_owned()
}

async fn ticket_state(server: &Server, ticket: Uuid) -> domain::ticket::TicketState {
    let state = commands(server)
        .state::<Ticket>(StreamId::Ticket(TicketId(ticket)))
        .await
        .unwrap();
    state.state().unwrap().clone()
}

async fn ticket_events(server: &Server, ticket: Uuid) -> Vec<String> {
    server
        .log
        .read_stream(
            &StreamId::Ticket(TicketId(ticket)).name(),
            0,
            Direction::Forwards,
            1000,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

#[tokio::test]
async fn ticket_mutations_land_their_events_and_answer_positions() {
    let server = Server::start("ticket_mutations").await;
    let admin = server.admin().await;
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    let ticket = open_ticket(&server, 1001).await;
    let id = ticket.to_string();

    let reply = wrote(
        &server,
        &agent.token,
        REPLY,
        json!({ "ticketId": id, "text": "on it" }),
    )
    .await;
    assert_eq!(reply["ticketId"], id.as_str());
    assert_eq!(reply["replayed"], false);
    let media = wrote(
        &server,
        &agent.token,
        REPLY,
        json!({ "ticketId": id, "media": [{ "kind": "PHOTO", "fileId": "AgACAgIAAxkBAAI" }] }),
    )
    .await;
    let note = wrote(
        &server,
        &agent.token,
        NOTE,
        json!({ "ticketId": id, "text": "VIP" }),
    )
    .await;
    wrote(
        &server,
        &agent.token,
        ASSIGN,
        json!({ "ticketId": id, "agentId": admin.id }),
    )
    .await;
    wrote(
        &server,
        &agent.token,
        STATUS,
        json!({ "ticketId": id, "status": "PENDING" }),
    )
    .await;
    wrote(
        &server,
        &agent.token,
        PRIORITY,
        json!({ "ticketId": id, "priority": "URGENT" }),
    )
    .await;
    wrote(
        &server,
        &agent.token,
        TAG,
        json!({ "ticketId": id, "tag": "Refund" }),
    )
    .await;
    wrote(
        &server,
        &agent.token,
        TAG,
        json!({ "ticketId": id, "tag": "late" }),
    )
    .await;
    let last = wrote(
        &server,
        &agent.token,
        UNTAG,
        json!({ "ticketId": id, "tag": "late" }),
    )
    .await;
    let category = wrote(
        &server,
        &admin.token,
        CREATE_CATEGORY,
        json!({ "name": "Billing" }),
    )
    .await;
    let category_id = category["categoryId"].as_str().unwrap().to_owned();
    wrote(
        &server,
        &admin.token,
        CATEGORY,
        json!({ "ticketId": id, "categoryId": category_id }),
    )
    .await;

    // Nothing to change: no event, no position.
    let again = server
        .ok(
            &agent.token,
            TAG,
            json!({ "input": { "ticketId": id, "tag": "refund" } }),
        )
        .await;
    assert_eq!(again["tagTicket"]["position"], Value::Null);

    let state = ticket_state(&server, ticket).await;
    assert_eq!(state.status, TicketStatus::Pending);
    assert_eq!(state.priority, Priority::Urgent);
    assert_eq!(state.assignee, Some(AgentId(admin.id.parse().unwrap())));
    assert_eq!(state.tags.iter().collect::<Vec<_>>(), ["refund"]);
    assert_eq!(
        state.category.map(|c| c.0.to_string()),
        Some(category_id.clone())
    );
    for message in [&reply, &media, &note] {
        let message_id: Uuid = message["messageId"].as_str().unwrap().parse().unwrap();
        assert!(state.message_ids.contains(&MessageId(message_id)));
    }
    assert_eq!(
        ticket_events(&server, ticket).await,
        [
            "ticket.opened",
            "ticket.customer_message_posted",
            "ticket.agent_replied",
            // The first reply starts the work.
            "ticket.status_changed",
            "ticket.agent_replied",
            "ticket.note_added",
            "ticket.assigned",
            "ticket.status_changed",
            "ticket.priority_changed",
            "ticket.tag_added",
            "ticket.tag_added",
            "ticket.tag_removed",
            "ticket.category_changed",
        ]
    );

    // The read model catches up to the last position returned.
    caught_up(&server, last["position"].as_str().unwrap().parse().unwrap()).await;
    let (priority, tags): (String, Vec<String>) =
        sqlx::query_as("select priority, tags from tickets where id = $1")
            .bind(ticket)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(
        (priority.as_str(), tags),
        ("urgent", vec!["refund".to_owned()])
    );

    // Unassign, resolve, reopen with OPEN, close.
    wrote(
        &server,
        &agent.token,
        ASSIGN,
        json!({ "ticketId": id, "agentId": null }),
    )
    .await;
    wrote(
        &server,
        &agent.token,
        STATUS,
        json!({ "ticketId": id, "status": "RESOLVED" }),
    )
    .await;
    wrote(
        &server,
        &agent.token,
        STATUS,
        json!({ "ticketId": id, "status": "OPEN" }),
    )
    .await;
    assert_eq!(
        ticket_state(&server, ticket).await.status,
        TicketStatus::Open
    );
    wrote(
        &server,
        &agent.token,
        STATUS,
        json!({ "ticketId": id, "status": "CLOSED" }),
    )
    .await;
    let state = ticket_state(&server, ticket).await;
    assert_eq!((state.status, state.assignee), (TicketStatus::Closed, None));
    server.stop().await;
}

#[tokio::test]
async fn ticket_mutations_refuse_closed_unknown_and_malformed_targets() {
    let server = Server::start("ticket_refusals").await;
    let admin = server.admin().await;
    let t = Some(admin.token.as_str());
    let ticket = open_ticket(&server, 1002).await;
    let id = ticket.to_string();

    // Bad input.
    let empty = refused(&server, t, REPLY, json!({ "ticketId": id })).await;
    assert_eq!(empty, "VALIDATION");
    let long = "x".repeat(5000);
    assert_eq!(
        refused(&server, t, NOTE, json!({ "ticketId": id, "text": long })).await,
        "VALIDATION"
    );
    let tag = "t".repeat(40);
    assert_eq!(
        refused(&server, t, TAG, json!({ "ticketId": id, "tag": tag })).await,
        "VALIDATION"
    );
    assert_eq!(
        refused(
            &server,
            t,
            REPLY,
            json!({ "ticketId": "not an id", "text": "hi" })
        )
        .await,
        "VALIDATION"
    );
    assert_eq!(
        refused(
            &server,
            t,
            STATUS,
            json!({ "ticketId": id, "status": "NEW" })
        )
        .await,
        "VALIDATION"
    );
    let key = "k".repeat(200);
    assert_eq!(
        refused(
            &server,
            t,
            REPLY,
            json!({ "ticketId": id, "text": "hi", "idempotencyKey": key })
        )
        .await,
        "VALIDATION"
    );

    // Unknown targets.
    let unknown = Uuid::now_v7().to_string();
    assert_eq!(
        refused(
            &server,
            t,
            REPLY,
            json!({ "ticketId": unknown, "text": "hi" })
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        refused(
            &server,
            t,
            ASSIGN,
            json!({ "ticketId": id, "agentId": unknown })
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        refused(
            &server,
            t,
            CATEGORY,
            json!({ "ticketId": id, "categoryId": unknown })
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        refused(
            &server,
            t,
            REPLY,
            json!({ "ticketId": id, "templateId": unknown })
        )
        .await,
        "NOT_FOUND"
    );

    // A closed ticket takes no reply.
    wrote(
        &server,
        &admin.token,
        STATUS,
        json!({ "ticketId": id, "status": "CLOSED" }),
    )
    .await;
    assert_eq!(
        refused(&server, t, REPLY, json!({ "ticketId": id, "text": "hi" })).await,
        "CONFLICT"
    );
    assert_eq!(
        refused(&server, t, NOTE, json!({ "ticketId": id, "text": "hi" })).await,
        "CONFLICT"
    );
    assert_eq!(
        ticket_events(&server, ticket).await,
        [
            "ticket.opened",
            "ticket.customer_message_posted",
            "ticket.closed"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_has_one_effect() {
    let server = Server::start("idempotency").await;
    let admin = server.admin().await;
    let other = server.agent(Role::Agent, "other@example.com").await;
    let ticket = open_ticket(&server, 1003).await;
    let input =
        json!({ "ticketId": ticket.to_string(), "text": "hello", "idempotencyKey": "retry-1" });

    let first = wrote(&server, &admin.token, REPLY, input.clone()).await;
    let second = wrote(&server, &admin.token, REPLY, input.clone()).await;
    assert_eq!(first["messageId"], second["messageId"]);
    assert_eq!(first["position"], second["position"]);
    assert_eq!(
        (first["replayed"].clone(), second["replayed"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(
        ticket_events(&server, ticket).await,
        [
            "ticket.opened",
            "ticket.customer_message_posted",
            "ticket.agent_replied",
            "ticket.status_changed"
        ]
    );

    // The same key from another caller is their own piece of work.
    let theirs = wrote(&server, &other.token, REPLY, input).await;
    assert_ne!(theirs["messageId"], first["messageId"]);

    // Creating twice under one key makes one category.
    let create = json!({ "name": "Shipping", "idempotencyKey": "cat-1" });
    let a = wrote(&server, &admin.token, CREATE_CATEGORY, create.clone()).await;
    let b = wrote(&server, &admin.token, CREATE_CATEGORY, create).await;
    assert_eq!(a["categoryId"], b["categoryId"]);
    let settings = commands(&server)
        .state::<Settings>(StreamId::Settings)
        .await
        .unwrap();
    assert_eq!(settings.categories.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_input_is_refused() {
    let server = Server::start("idempotency_reuse").await;
    let admin = server.admin().await;
    let t = Some(admin.token.as_str());
    let ticket = open_ticket(&server, 1004).await;
    let other_ticket = open_ticket(&server, 1005).await;
    let input =
        json!({ "ticketId": ticket.to_string(), "text": "hello", "idempotencyKey": "reuse-1" });
    let first = wrote(&server, &admin.token, REPLY, input).await;

    // The same input, written in another order and inline rather than as a variable, replays.
    let inline = format!(
        "mutation {{ replyToTicket(input: {{ idempotencyKey: \"reuse-1\", text: \"hello\", \
         ticketId: \"{ticket}\" }}) {{ position ticketId messageId replayed }} }}"
    );
    let again = server.ok(&admin.token, &inline, json!({})).await;
    assert_eq!(again["replyToTicket"]["replayed"], json!(true));
    assert_eq!(again["replyToTicket"]["messageId"], first["messageId"]);

    // Another text, or another ticket, under the same key: refused, and nothing written.
    for (target, text) in [(ticket, "goodbye"), (other_ticket, "hello")] {
        let body = server
            .gql(
                t,
                REPLY,
                json!({ "input": { "ticketId": target.to_string(), "text": text, "idempotencyKey": "reuse-1" } }),
            )
            .await;
        assert_eq!(code(&body), Some("CONFLICT"), "{body:#}");
        assert_eq!(
            body["errors"][0]["message"],
            "this idempotency key was used with a different input"
        );
    }
    assert_eq!(
        ticket_events(&server, ticket).await,
        [
            "ticket.opened",
            "ticket.customer_message_posted",
            "ticket.agent_replied",
            "ticket.status_changed"
        ]
    );
    assert_eq!(
        ticket_events(&server, other_ticket).await,
        ["ticket.opened", "ticket.customer_message_posted"]
    );

    // A refusal in the domain (a closed ticket) under a reused key is the same conflict.
    wrote(
        &server,
        &admin.token,
        STATUS,
        json!({ "ticketId": other_ticket.to_string(), "status": "CLOSED" }),
    )
    .await;
    let body = server
        .gql(
            t,
            REPLY,
            json!({ "input": { "ticketId": other_ticket.to_string(), "text": "hello", "idempotencyKey": "reuse-1" } }),
        )
        .await;
    assert_eq!(code(&body), Some("CONFLICT"), "{body:#}");
    assert_eq!(
        body["errors"][0]["message"],
        "this idempotency key was used with a different input"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_of_the_longest_allowed_length_works_on_every_mutation() {
    let server = Server::start("long_keys").await;
    let admin = server.admin().await;
    let ticket = open_ticket(&server, 1010).await.to_string();
    // An integrator's caller id is the longest there is.
    let integrator = server.api_token(&admin, &["tickets:write"]).await;
    let mut used = Vec::new();
    let mut keys = 0;
    let mut call_as = async |token: &str, query: &'static str, input: Value| -> Value {
        keys += 1;
        let key = format!("{keys}{}", "k".repeat(128))[..128].to_owned();
        let mut input = input;
        input["idempotencyKey"] = json!(key);
        let first = wrote(&server, token, query, input.clone()).await;
        let again = server.ok(token, query, json!({ "input": input })).await;
        let again = again.as_object().unwrap().values().next().unwrap().clone();
        assert_eq!(again["position"], first["position"], "{query}");
        used.push(query);
        first
    };
    let ticket_mutations = [
        (REPLY, json!({ "ticketId": ticket, "text": "on it" })),
        (NOTE, json!({ "ticketId": ticket, "text": "VIP" })),
        (ASSIGN, json!({ "ticketId": ticket, "agentId": admin.id })),
        (STATUS, json!({ "ticketId": ticket, "status": "PENDING" })),
        (PRIORITY, json!({ "ticketId": ticket, "priority": "HIGH" })),
        (TAG, json!({ "ticketId": ticket, "tag": "vip" })),
        (UNTAG, json!({ "ticketId": ticket, "tag": "vip" })),
    ];
    for (query, input) in ticket_mutations {
        call_as(&integrator, query, input).await;
    }
    let mut call = async |query: &'static str, input: Value| -> Value {
        call_as(&admin.token, query, input).await
    };
    call(REPLY, json!({ "ticketId": ticket, "text": "done" })).await;
    call(STATUS, json!({ "ticketId": ticket, "status": "OPEN" })).await;
    let category = call(CREATE_CATEGORY, json!({ "name": "Shipping" })).await["categoryId"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        RENAME_CATEGORY,
        json!({ "categoryId": category, "name": "Delivery" }),
    )
    .await;
    call(
        CATEGORY,
        json!({ "ticketId": ticket, "categoryId": category }),
    )
    .await;
    call(BAN, json!({ "customerId": "1010" })).await;
    call(UNBAN, json!({ "customerId": "1010" })).await;
    let template =
        call(CREATE_TEMPLATE, json!({ "title": "Hi", "text": "Hello" })).await["templateId"]
            .as_str()
            .unwrap()
            .to_owned();
    call(
        UPDATE_TEMPLATE,
        json!({ "templateId": template, "title": "Hi", "text": "Hello!" }),
    )
    .await;
    call(REMOVE_TEMPLATE, json!({ "templateId": template })).await;
    call(GREETING, json!({ "text": "Welcome" })).await;
    let content = json!({ "text": "Sale!" });
    let broadcast = call(
        CREATE_BROADCAST,
        json!({ "audience": { "allCustomers": true }, "content": content }),
    )
    .await["broadcastId"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        UPDATE_BROADCAST,
        json!({ "broadcastId": broadcast, "audience": { "allCustomers": true }, "content": { "text": "Sale!!" } }),
    )
    .await;
    let later = (Utc::now() + TimeDelta::hours(1)).to_rfc3339();
    call(
        SCHEDULE_BROADCAST,
        json!({ "broadcastId": broadcast, "sendAt": later }),
    )
    .await;
    call(START_BROADCAST, json!({ "broadcastId": broadcast })).await;
    call(PAUSE_BROADCAST, json!({ "broadcastId": broadcast })).await;
    call(CANCEL_BROADCAST, json!({ "broadcastId": broadcast })).await;
    call(REMOVE_CATEGORY, json!({ "categoryId": category })).await;
    let mut every: Vec<&str> = every_mutation()
        .into_iter()
        .map(|(query, _)| query)
        .collect();
    every.sort_unstable();
    used.sort_unstable();
    used.dedup();
    assert_eq!(used, every, "every mutation taking a key was tried");
    server.stop().await;
}

/// One valid call of every mutation (targets need not exist: the guard answers first).
fn every_mutation() -> Vec<(&'static str, Value)> {
    let id = Uuid::now_v7().to_string();
    let content = json!({ "text": "Sale!" });
    vec![
        (REPLY, json!({ "ticketId": id, "text": "hi" })),
        (NOTE, json!({ "ticketId": id, "text": "hi" })),
        (ASSIGN, json!({ "ticketId": id, "agentId": id })),
        (STATUS, json!({ "ticketId": id, "status": "OPEN" })),
        (PRIORITY, json!({ "ticketId": id, "priority": "HIGH" })),
        (CATEGORY, json!({ "ticketId": id, "categoryId": null })),
        (TAG, json!({ "ticketId": id, "tag": "x" })),
        (UNTAG, json!({ "ticketId": id, "tag": "x" })),
        (BAN, json!({ "customerId": "1001" })),
        (UNBAN, json!({ "customerId": "1001" })),
        (CREATE_CATEGORY, json!({ "name": "x" })),
        (RENAME_CATEGORY, json!({ "categoryId": id, "name": "x" })),
        (REMOVE_CATEGORY, json!({ "categoryId": id })),
        (CREATE_TEMPLATE, json!({ "title": "x", "text": "x" })),
        (
            UPDATE_TEMPLATE,
            json!({ "templateId": id, "title": "x", "text": "x" }),
        ),
        (REMOVE_TEMPLATE, json!({ "templateId": id })),
        (GREETING, json!({ "text": "hello" })),
        (
            CREATE_BROADCAST,
            json!({ "audience": { "allCustomers": true }, "content": content }),
        ),
        (
            UPDATE_BROADCAST,
            json!({ "broadcastId": id, "audience": { "allCustomers": true }, "content": content }),
        ),
        (
            SCHEDULE_BROADCAST,
            json!({ "broadcastId": id, "sendAt": null }),
        ),
        (START_BROADCAST, json!({ "broadcastId": id })),
        (PAUSE_BROADCAST, json!({ "broadcastId": id })),
        (CANCEL_BROADCAST, json!({ "broadcastId": id })),
    ]
}

const SETTINGS_MUTATIONS: [&str; 7] = [
    CREATE_CATEGORY,
    RENAME_CATEGORY,
    REMOVE_CATEGORY,
    CREATE_TEMPLATE,
    UPDATE_TEMPLATE,
    REMOVE_TEMPLATE,
    GREETING,
];

#[tokio::test]
async fn anonymous_callers_and_auditors_change_nothing_and_agents_no_settings() {
    let server = Server::start("mutation_guards").await;
    let auditor = server.agent(Role::Auditor, "auditor@example.com").await;
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    for (query, input) in every_mutation() {
        assert_eq!(
            refused(&server, None, query, input.clone()).await,
            "UNAUTHENTICATED",
            "{query}"
        );
        assert_eq!(
            refused(&server, Some(&auditor.token), query, input.clone()).await,
            "FORBIDDEN",
            "{query}"
        );
        if SETTINGS_MUTATIONS.contains(&query) {
            assert_eq!(
                refused(&server, Some(&agent.token), query, input).await,
                "FORBIDDEN",
                "{query}"
            );
        }
    }
    // Only the agents themselves and the audit trail of their sign-ins are in the log.
    let (events,): (i64,) = sqlx::query_as(
        "select count(*) from events
         where stream_id not like 'agent-%' and stream_id not like 'audit-%'",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(events, 0);
    server.stop().await;
}

#[tokio::test]
async fn customers_are_banned_and_unbanned_once() {
    let server = Server::start("ban").await;
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    open_ticket(&server, 1004).await;
    let state = |server: &Server| {
        let commands = commands(server);
        async move {
            let customer = commands
                .state::<Customer>(StreamId::Customer(CustomerId(1004)))
                .await
                .unwrap();
            customer.state().unwrap().banned
        }
    };
    let ban = wrote(
        &server,
        &agent.token,
        BAN,
        json!({ "customerId": "1004", "reason": "spam" }),
    )
    .await;
    assert_eq!(ban["customerId"], "1004");
    assert!(state(&server).await);
    let again = server
        .ok(
            &agent.token,
            BAN,
            json!({ "input": { "customerId": "1004" } }),
        )
        .await;
    assert_eq!(again["banCustomer"]["position"], Value::Null);
    wrote(
        &server,
        &agent.token,
        UNBAN,
        json!({ "customerId": "1004" }),
    )
    .await;
    assert!(!state(&server).await);
    let t = Some(agent.token.as_str());
    assert_eq!(
        refused(&server, t, BAN, json!({ "customerId": "99" })).await,
        "NOT_FOUND"
    );
    assert_eq!(
        refused(&server, t, BAN, json!({ "customerId": "abc" })).await,
        "VALIDATION"
    );
    let reason = "r".repeat(2000);
    assert_eq!(
        refused(
            &server,
            t,
            BAN,
            json!({ "customerId": "1004", "reason": reason })
        )
        .await,
        "VALIDATION"
    );
    server.stop().await;
}

#[tokio::test]
async fn admins_manage_categories_templates_and_the_greeting() {
    let server = Server::start("settings_mutations").await;
    let admin = server.admin().await;
    let t = Some(admin.token.as_str());
    let billing = wrote(
        &server,
        &admin.token,
        CREATE_CATEGORY,
        json!({ "name": "Billing" }),
    )
    .await;
    let billing = billing["categoryId"].as_str().unwrap().to_owned();
    let shipping = wrote(
        &server,
        &admin.token,
        CREATE_CATEGORY,
        json!({ "name": "Shipping" }),
    )
    .await;
    let shipping = shipping["categoryId"].as_str().unwrap().to_owned();
    assert_eq!(
        refused(&server, t, CREATE_CATEGORY, json!({ "name": "billing" })).await,
        "CONFLICT"
    );
    assert_eq!(
        refused(&server, t, CREATE_CATEGORY, json!({ "name": "  " })).await,
        "VALIDATION"
    );
    wrote(
        &server,
        &admin.token,
        RENAME_CATEGORY,
        json!({ "categoryId": billing, "name": "Payments" }),
    )
    .await;
    wrote(
        &server,
        &admin.token,
        REMOVE_CATEGORY,
        json!({ "categoryId": shipping }),
    )
    .await;
    assert_eq!(
        refused(
            &server,
            t,
            RENAME_CATEGORY,
            json!({ "categoryId": shipping, "name": "x" })
        )
        .await,
        "NOT_FOUND"
    );

    let template = wrote(
        &server,
        &admin.token,
        CREATE_TEMPLATE,
        json!({ "title": "Thanks", "text": "Thank you for writing!" }),
    )
    .await;
    let template = template["templateId"].as_str().unwrap().to_owned();
    wrote(
        &server,
        &admin.token,
        UPDATE_TEMPLATE,
        json!({ "templateId": template, "title": "Thanks", "text": "Thanks a lot!" }),
    )
    .await;
    wrote(
        &server,
        &admin.token,
        GREETING,
        json!({ "text": "Hi! How can we help?" }),
    )
    .await;

    let settings = commands(&server)
        .state::<Settings>(StreamId::Settings)
        .await
        .unwrap();
    let names: Vec<&String> = settings.categories.values().collect();
    assert_eq!(names, ["Payments"]);
    let saved = settings.templates.values().next().unwrap();
    assert_eq!(saved.text, "Thanks a lot!");
    assert_eq!(settings.greeting.as_deref(), Some("Hi! How can we help?"));

    // A reply from a template sends the template's text.
    let ticket = open_ticket(&server, 1005).await;
    wrote(
        &server,
        &admin.token,
        REPLY,
        json!({ "ticketId": ticket.to_string(), "templateId": template }),
    )
    .await;
    let events = server
        .log
        .read_stream(
            &StreamId::Ticket(TicketId(ticket)).name(),
            0,
            Direction::Forwards,
            10,
        )
        .await
        .unwrap();
    let replied = events
        .iter()
        .map(|e| {
            <TicketEvent as domain::DomainEvent>::decode(
                &e.event_type,
                e.schema_version,
                &e.payload,
            )
            .unwrap()
        })
        .find_map(|event| match event {
            TicketEvent::AgentReplied(replied) => Some(replied),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        replied.template.map(|t| t.0.to_string()),
        Some(template.clone())
    );

    wrote(
        &server,
        &admin.token,
        REMOVE_TEMPLATE,
        json!({ "templateId": template }),
    )
    .await;
    assert_eq!(
        refused(
            &server,
            t,
            REMOVE_TEMPLATE,
            json!({ "templateId": template })
        )
        .await,
        "NOT_FOUND"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_broadcast_goes_from_draft_to_cancelled() {
    let server = Server::start("broadcast_mutations").await;
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    let t = Some(agent.token.as_str());
    open_ticket(&server, 1006).await;
    open_ticket(&server, 1007).await;
    let content = json!({
        "text": "Our summer sale starts today",
        "buttons": [[{ "label": "Shop", "url": "https://example.com" }]],
    });
    let created = wrote(
        &server,
        &agent.token,
        CREATE_BROADCAST,
        json!({ "audience": { "language": "en" }, "content": content }),
    )
    .await;
    let id = created["broadcastId"].as_str().unwrap().to_owned();
    let broadcast = BroadcastId(id.parse().unwrap());
    let state = |server: &Server| {
        let commands = commands(server);
        async move {
            commands
                .state::<Broadcast>(StreamId::Broadcast(broadcast))
                .await
                .unwrap()
                .state()
                .unwrap()
                .clone()
        }
    };

    wrote(
        &server,
        &agent.token,
        UPDATE_BROADCAST,
        json!({ "broadcastId": id, "audience": { "allCustomers": true }, "content": { "text": "Sale!" } }),
    )
    .await;
    let later = (Utc::now() + TimeDelta::hours(1)).to_rfc3339();
    wrote(
        &server,
        &agent.token,
        SCHEDULE_BROADCAST,
        json!({ "broadcastId": id, "sendAt": later }),
    )
    .await;
    assert!(matches!(
        state(&server).await.status,
        BroadcastStatus::Scheduled(_)
    ));
    let past = (Utc::now() - TimeDelta::hours(1)).to_rfc3339();
    assert_eq!(
        refused(
            &server,
            t,
            SCHEDULE_BROADCAST,
            json!({ "broadcastId": id, "sendAt": past })
        )
        .await,
        "VALIDATION"
    );
    wrote(
        &server,
        &agent.token,
        SCHEDULE_BROADCAST,
        json!({ "broadcastId": id, "sendAt": null }),
    )
    .await;
    assert_eq!(state(&server).await.status, BroadcastStatus::Draft);

    wrote(
        &server,
        &agent.token,
        START_BROADCAST,
        json!({ "broadcastId": id }),
    )
    .await;
    let started = state(&server).await;
    assert_eq!(
        (started.status, started.audience_size),
        (BroadcastStatus::Running, 2)
    );
    assert_eq!(
        refused(
            &server,
            t,
            UPDATE_BROADCAST,
            json!({ "broadcastId": id, "audience": { "allCustomers": true }, "content": { "text": "x" } })
        )
        .await,
        "CONFLICT"
    );
    wrote(
        &server,
        &agent.token,
        PAUSE_BROADCAST,
        json!({ "broadcastId": id }),
    )
    .await;
    assert_eq!(state(&server).await.status, BroadcastStatus::Paused);
    wrote(
        &server,
        &agent.token,
        START_BROADCAST,
        json!({ "broadcastId": id }),
    )
    .await;
    assert_eq!(state(&server).await.status, BroadcastStatus::Running);
    wrote(
        &server,
        &agent.token,
        CANCEL_BROADCAST,
        json!({ "broadcastId": id }),
    )
    .await;
    assert_eq!(state(&server).await.status, BroadcastStatus::Cancelled);
    assert_eq!(
        refused(&server, t, START_BROADCAST, json!({ "broadcastId": id })).await,
        "CONFLICT"
    );

    // Refusals: unknown broadcast, bad content, two button actions.
    let unknown = Uuid::now_v7().to_string();
    assert_eq!(
        refused(
            &server,
            t,
            PAUSE_BROADCAST,
            json!({ "broadcastId": unknown })
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        refused(
            &server,
            t,
            CREATE_BROADCAST,
            json!({ "audience": { "allCustomers": true }, "content": {} })
        )
        .await,
        "VALIDATION"
    );
    let both = json!({ "text": "x", "buttons": [[{ "label": "b", "url": "https://a.b", "callbackData": "c" }]] });
    assert_eq!(
        refused(
            &server,
            t,
            CREATE_BROADCAST,
            json!({ "audience": { "allCustomers": true }, "content": both })
        )
        .await,
        "VALIDATION"
    );
    server.stop().await;
}
