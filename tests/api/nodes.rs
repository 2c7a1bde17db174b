//! `node(id:)`: every object with a global id comes back by it (messages, notes and the actors
//! of events too), with its parent's permission checks; what is missing or hidden is `null`.

use app::commands::{CommandContext, CommandService};
use chrono::{TimeDelta, Utc};
use domain::agent::Role;
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::CustomerProfile;
use domain::flow::RouteCustomerMessage;
use domain::ticket::Channel;
use domain::{CustomerId, MessageId, TicketId};
use eventlog::{Actor, Position};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Server, code};

const NODE: &str = "query($id: ID!) { node(id: $id) {
    __typename id
    ... on Message { messageId text }
    ... on Note { noteId text }
    ... on EventActor { kind actorId }
} }";

async fn open_ticket(server: &Server, customer: i64) -> Uuid {
    let ticket = Uuid::now_v7();
    let routed = CommandService::new(server.log.clone())
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
    server.caught_up(routed.executed.position.unwrap()).await;
    ticket
}

/// Runs a mutation that must succeed and waits until the read models show it.
async fn mutate(server: &Server, token: &str, mutation: &str, input: Value) -> Value {
    let query = format!(
        "mutation($input: {}Input!) {{ {mutation}(input: $input) {{ position }} }}",
        capitalized(mutation)
    );
    let data = server.ok(token, &query, json!({ "input": input })).await;
    let position: Position = data[mutation]["position"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    server.caught_up(position).await;
    data[mutation].clone()
}

fn capitalized(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

async fn category(server: &Server, token: &str, name: &str) -> String {
    let data = server
        .ok(
            token,
            "mutation($input: CreateCategoryInput!) { createCategory(input: $input) { position categoryId } }",
            json!({ "input": { "name": name } }),
        )
        .await;
    let position: Position = data["createCategory"]["position"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    server.caught_up(position).await;
    data["createCategory"]["categoryId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `node(id)` as `token` sees it: the node (null when absent), failing on errors.
async fn node(server: &Server, token: &str, id: &Value) -> Value {
    server.ok(token, NODE, json!({ "id": id })).await["node"].clone()
}

#[tokio::test]
async fn node_gives_back_messages_notes_and_actors_and_null_for_what_is_missing_or_hidden() {
    let server = Server::start("nodes").await;
    let admin = server.admin().await;
    let agent = server.agent(Role::Agent, "scoped@example.com").await;
    let shipping = category(&server, &admin.token, "Shipping").await;
    let billing = category(&server, &admin.token, "Billing").await;
    let ticket = open_ticket(&server, 2001).await;
    let ticket_id = ticket.to_string();
    mutate(
        &server,
        &admin.token,
        "setTicketCategory",
        json!({ "ticketId": ticket_id, "categoryId": shipping }),
    )
    .await;
    mutate(
        &server,
        &admin.token,
        "replyToTicket",
        json!({ "ticketId": ticket_id, "text": "on its way" }),
    )
    .await;
    mutate(
        &server,
        &admin.token,
        "addInternalNote",
        json!({ "ticketId": ticket_id, "text": "courier called" }),
    )
    .await;
    mutate(
        &server,
        &admin.token,
        "setAgentCategories",
        json!({ "agentId": agent.id, "categoryIds": [billing] }),
    )
    .await;

    let seen = server
        .ok(
            &admin.token,
            "query($id: ID!) { ticket(id: $id) { id
                messages(first: 10) { nodes { id messageId text } }
                notes(first: 10) { nodes { id noteId text } }
                history(first: 10) { nodes { actor { id kind actorId } } } } }",
            json!({ "id": ticket_id }),
        )
        .await["ticket"]
        .clone();
    let messages = seen["messages"]["nodes"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{seen:#}");
    let note = &seen["notes"]["nodes"][0];

    // Each comes back by its id, as the ticket shows it.
    for message in messages {
        let found = node(&server, &admin.token, &message["id"]).await;
        assert_eq!(found["__typename"], "Message");
        assert_eq!(found["id"], message["id"]);
        assert_eq!(found["messageId"], message["messageId"]);
        assert_eq!(found["text"], message["text"]);
    }
    let found = node(&server, &admin.token, &note["id"]).await;
    assert_eq!(found["__typename"], "Note");
    assert_eq!(found["noteId"], note["noteId"]);
    assert_eq!(found["text"], "courier called");
    let actors: Vec<&Value> = seen["history"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| &event["actor"])
        .collect();
    assert!(
        actors
            .iter()
            .any(|actor| actor["actorId"] == admin.id.as_str())
    );
    for actor in actors {
        let found = node(&server, &admin.token, &actor["id"]).await;
        assert_eq!(found["__typename"], "EventActor");
        assert_eq!(found["id"], actor["id"]);
        assert_eq!(found["kind"], actor["kind"]);
        assert_eq!(found["actorId"], actor["actorId"]);
    }

    // What does not exist is null, without an error; an id this API did not hand out is one.
    for missing in [
        api::graphql::ids::global("Message", Uuid::now_v7()),
        api::graphql::ids::global("Note", Uuid::now_v7()),
        api::graphql::ids::global("Ticket", Uuid::now_v7()),
        api::graphql::ids::global("Agent", Uuid::now_v7()),
        api::graphql::ids::global("Customer", 424_242),
    ] {
        let body = server
            .gql(Some(&admin.token), NODE, json!({ "id": missing }))
            .await;
        assert!(body["errors"].is_null(), "{body:#}");
        assert_eq!(body["data"]["node"], Value::Null, "{missing:?}");
    }
    for malformed in [
        json!("not an id!"),
        json!(api::graphql::ids::global("Nothing", 1)),
        json!(api::graphql::ids::global("Message", "not-a-uuid")),
        json!(api::graphql::ids::global("EventActor", "NOBODY:1")),
    ] {
        let body = server
            .gql(Some(&admin.token), NODE, json!({ "id": malformed }))
            .await;
        assert_eq!(code(&body), Some("VALIDATION"), "{malformed}: {body:#}");
    }

    // An agent working only billing does not get the ticket, its messages or its note: null.
    for hidden in [
        &seen["id"],
        &messages[0]["id"],
        &messages[1]["id"],
        &note["id"],
    ] {
        assert_eq!(
            node(&server, &agent.token, hidden).await,
            Value::Null,
            "{hidden}"
        );
    }
    // Moved to billing, all of it is theirs to see.
    mutate(
        &server,
        &admin.token,
        "setTicketCategory",
        json!({ "ticketId": ticket_id, "categoryId": billing }),
    )
    .await;
    assert_eq!(
        node(&server, &agent.token, &note["id"]).await["noteId"],
        note["noteId"]
    );
    assert_eq!(
        node(&server, &agent.token, &messages[0]["id"]).await["messageId"],
        messages[0]["messageId"]
    );
    server.stop().await;
}
