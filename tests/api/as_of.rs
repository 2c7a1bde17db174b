//! Time travel: `ticketAt`, `customerAt` and `broadcastAt` fold a stream up to a version or a
//! moment. Now, they equal what the read models show for a generated history; in the middle,
//! they show the earlier state; and who may ask is who may read the thing now.

use chrono::Utc;
use domain::agent::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::queries::generated;
use crate::support::{Server, code};

const MESSAGE_FIELDS: &str = "messageId seq direction kind text caption fileId
    telegramMessageId replyToTelegramMessageId deliveryState failureReason editedAt
    edits { kind text caption editedAt } createdAt";

const TICKET_FIELDS: &str = "ticketId customerId status priority categoryId assigneeId tags
    createdAt resolvedAt closedAt rating version customerMessageCount agentMessageCount
    noteCount";

fn ticket_at_query() -> String {
    format!(
        "query($id: ID!, $asOf: DateTime, $version: Int) {{
            ticketAt(id: $id, asOf: $asOf, version: $version) {{
                {TICKET_FIELDS} recordedAt
                messages(first: 100) {{ nodes {{ {MESSAGE_FIELDS} }} }}
                notes(first: 100) {{ nodes {{ noteId seq agentId text createdAt }} }}
            }} }}"
    )
}

/// `ticketAt` at `point` (`{"asOf": …}` or `{"version": …}`).
async fn ticket_at(server: &Server, token: &str, id: &str, point: Value) -> Value {
    let mut variables = json!({ "id": id });
    for (key, value) in point.as_object().unwrap() {
        variables[key] = value.clone();
    }
    server.ok(token, &ticket_at_query(), variables).await["ticketAt"].clone()
}

#[tokio::test]
async fn a_ticket_folded_up_to_now_equals_its_read_model_for_a_generated_history() {
    let server = Server::start("asof_now").await;
    generated(&server).await;
    let admin = server.agent(Role::Auditor, "auditor@test.invalid").await;
    // Tickets of every kind: the busiest (with notes, edits, deliveries), assigned, resolved,
    // rated and closed ones, each with at most 100 messages and notes so one page holds them.
    let ids: Vec<(Uuid,)> = sqlx::query_as(
        "(select id from tickets where customer_messages + agent_messages <= 100 and notes <= 100
            order by customer_messages + agent_messages + notes desc limit 12)
         union (select id from tickets where assignee_id is not null limit 4)
         union (select id from tickets where status = 'resolved' limit 4)
         union (select id from tickets where rating is not null limit 4)
         union (select id from tickets where status = 'closed' limit 4)
         union (select ticket_id from messages where edited_at is not null limit 4)
         union (select ticket_id from messages where delivery_state = 'failed' limit 4)",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap();
    assert!(ids.len() >= 12, "{ids:?}");
    let now = Utc::now();
    let mut compared_messages = 0;
    for (id,) in ids {
        let id = id.to_string();
        let live = server
            .ok(
                &admin.token,
                &format!(
                    "query($id: ID!) {{ ticket(id: $id) {{ {TICKET_FIELDS}
                        messages(first: 100) {{ nodes {{ {MESSAGE_FIELDS} }} }}
                        notes(first: 100) {{ nodes {{ noteId seq agentId text createdAt }} }}
                    }} }}"
                ),
                json!({ "id": id }),
            )
            .await["ticket"]
            .clone();
        let folded = ticket_at(&server, &admin.token, &id, json!({ "asOf": now })).await;
        for field in TICKET_FIELDS.split_whitespace() {
            assert_eq!(folded[field], live[field], "{field} of ticket {id}");
        }
        let live_messages = live["messages"]["nodes"].as_array().unwrap();
        assert!(!live_messages.is_empty());
        assert_eq!(
            folded["messages"], live["messages"],
            "messages of ticket {id}"
        );
        assert_eq!(folded["notes"], live["notes"], "notes of ticket {id}");
        compared_messages += live_messages.len();

        // The same point named by its version.
        let by_version = ticket_at(
            &server,
            &admin.token,
            &id,
            json!({ "version": live["version"] }),
        )
        .await;
        assert_eq!(by_version, folded);
    }
    assert!(
        compared_messages > 50,
        "{compared_messages} messages compared"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_ticket_as_of_a_moment_in_its_past_shows_it_as_it_was_then() {
    let server = Server::start("asof_past").await;
    let admin = server.admin().await;
    let agent = server.agent(Role::Agent, "agent@test.invalid").await;
    let (ticket, _) = server
        .customer_writes(4242, None, "my parcel is late")
        .await;
    let ticket = ticket.to_string();
    let assigned = server
        .ok(
            &admin.token,
            "mutation($t: ID!, $a: ID!) { assignTicket(input: {ticketId: $t, agentId: $a}) {
                position } }",
            json!({ "t": ticket, "a": agent.id }),
        )
        .await;
    server
        .caught_up(
            assigned["assignTicket"]["position"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        )
        .await;
    let replied = server
        .ok(
            &agent.token,
            "mutation($t: ID!) { replyToTicket(input: {ticketId: $t, text: \"on its way\"}) {
                position } }",
            json!({ "t": ticket }),
        )
        .await;
    server
        .caught_up(
            replied["replyToTicket"]["position"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        )
        .await;

    // The moment the customer's message was recorded, before the assignment.
    let history = server
        .ok(
            &admin.token,
            "query($t: ID!) { ticket(id: $t) { history(first: 50) { nodes {
                version type recordedAt } } } }",
            json!({ "t": ticket }),
        )
        .await;
    let events = history["ticket"]["history"]["nodes"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let assigned_at = types.iter().position(|t| *t == "ticket.assigned").unwrap();
    let before = &events[assigned_at - 1];
    let then = ticket_at(
        &server,
        &admin.token,
        &ticket,
        json!({ "asOf": before["recordedAt"] }),
    )
    .await;
    assert_eq!(then["assigneeId"], Value::Null, "{then:#}");
    assert_eq!(then["status"], "NEW");
    assert_eq!(then["version"], before["version"]);
    assert_eq!(then["agentMessageCount"], 0);
    assert_eq!(
        then["messages"]["nodes"][0]["text"], "my parcel is late",
        "{then:#}"
    );

    let now = ticket_at(
        &server,
        &admin.token,
        &ticket,
        json!({ "asOf": Utc::now() }),
    )
    .await;
    assert_eq!(now["assigneeId"], json!(agent.id));
    assert_eq!(now["status"], "OPEN");
    assert_eq!(now["agentMessageCount"], 1);
    assert_eq!(now["messages"]["nodes"][1]["text"], "on its way");
    assert_eq!(now["messages"]["nodes"][1]["deliveryState"], "pending");

    // By version: the opening alone holds no message yet.
    let opened = ticket_at(&server, &admin.token, &ticket, json!({ "version": 0 })).await;
    assert_eq!(opened["version"], 0);
    assert_eq!(opened["customerMessageCount"], 0);
    assert_eq!(opened["messages"]["nodes"], json!([]));

    // Before the ticket existed: null.
    let earlier = ticket_at(
        &server,
        &admin.token,
        &ticket,
        json!({ "asOf": "2020-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(earlier, Value::Null);
    server.stop().await;
}

#[tokio::test]
async fn time_travel_takes_exactly_one_point_and_is_read_as_the_thing_is_read_now() {
    let server = Server::start("asof_refusals").await;
    let admin = server.admin().await;
    let billing = server.category(&admin, "Billing").await;
    let shipping = server.category(&admin, "Shipping").await;
    let (ticket, _) = server
        .customer_writes(5151, Some(billing), "refund please")
        .await;
    let ticket = ticket.to_string();
    let query = ticket_at_query();

    for (variables, why) in [
        (json!({ "id": ticket }), "neither"),
        (
            json!({ "id": ticket, "version": 1, "asOf": Utc::now() }),
            "both",
        ),
        (json!({ "id": ticket, "version": -1 }), "negative"),
    ] {
        let body = server.gql(Some(&admin.token), &query, variables).await;
        assert_eq!(code(&body), Some("VALIDATION"), "{why}: {body:#}");
    }

    // An agent limited to another category sees no such ticket, nor its customer, now or then.
    let outsider = server
        .scoped_agent(&admin, "shipping@test.invalid", &[shipping])
        .await;
    let body = server
        .gql(
            Some(&outsider.token),
            &query,
            json!({ "id": ticket, "version": 1 }),
        )
        .await;
    assert_eq!(code(&body), Some("NOT_FOUND"), "{body:#}");
    let body = server
        .gql(
            Some(&outsider.token),
            "{ customerAt(id: \"5151\", version: 0) { firstName } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), Some("NOT_FOUND"), "{body:#}");
    // One limited to the ticket's category sees it.
    let insider = server
        .scoped_agent(&admin, "billing@test.invalid", &[billing])
        .await;
    let seen = ticket_at(&server, &insider.token, &ticket, json!({ "version": 1 })).await;
    assert_eq!(seen["messages"]["nodes"][0]["text"], "refund please");

    // Unknown things are not found.
    let body = server
        .gql(
            Some(&admin.token),
            &query,
            json!({ "id": Uuid::now_v7().to_string(), "version": 0 }),
        )
        .await;
    assert_eq!(code(&body), Some("NOT_FOUND"));
    let body = server
        .gql(
            Some(&admin.token),
            "query($id: ID!) { broadcastAt(id: $id, version: 0) { status } }",
            json!({ "id": Uuid::now_v7().to_string() }),
        )
        .await;
    assert_eq!(code(&body), Some("NOT_FOUND"));
    server.stop().await;
}

#[tokio::test]
async fn a_customer_and_a_broadcast_as_of_a_version_show_their_earlier_state() {
    let server = Server::start("asof_others").await;
    let admin = server.admin().await;
    server.customer_writes(6161, None, "hello").await;
    let banned = server
        .ok(
            &admin.token,
            "mutation { banCustomer(input: {customerId: \"6161\", reason: \"spam\"}) { position } }",
            json!({}),
        )
        .await;
    server
        .caught_up(
            banned["banCustomer"]["position"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        )
        .await;
    let customer_at = "query($v: Int, $at: DateTime) {
        customerAt(id: \"6161\", version: $v, asOf: $at) {
            customerId firstName banned banReason version registeredAt
            tickets { ticketId active } } }";
    let registered = server
        .ok(&admin.token, customer_at, json!({ "v": 0 }))
        .await["customerAt"]
        .clone();
    assert_eq!(registered["firstName"], "Customer 6161");
    assert_eq!(registered["banned"], false);
    assert_eq!(registered["banReason"], Value::Null);
    assert_eq!(registered["tickets"], json!([]), "{registered:#}");
    let now = server
        .ok(&admin.token, customer_at, json!({ "at": Utc::now() }))
        .await["customerAt"]
        .clone();
    assert_eq!(now["banned"], true);
    assert_eq!(now["banReason"], "spam");
    assert_eq!(now["tickets"].as_array().unwrap().len(), 1, "{now:#}");
    let live = server
        .ok(
            &admin.token,
            "{ customer(id: \"6161\") { banned banReason registeredAt } }",
            json!({}),
        )
        .await["customer"]
        .clone();
    assert_eq!(now["banned"], live["banned"]);
    assert_eq!(now["banReason"], live["banReason"]);
    // The log keeps the time the bot gave (nanoseconds); the read model keeps microseconds.
    let micros = |time: &Value| {
        time.as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap()
            .timestamp_micros()
    };
    assert_eq!(micros(&now["registeredAt"]), micros(&live["registeredAt"]));

    let created = server
        .ok(
            &admin.token,
            "mutation { createBroadcast(input: {audience: {allCustomers: true},
                content: {text: \"first draft\"}}) { broadcastId position } }",
            json!({}),
        )
        .await["createBroadcast"]
        .clone();
    let broadcast = created["broadcastId"].as_str().unwrap().to_owned();
    server
        .ok(
            &admin.token,
            "mutation($b: ID!) { updateBroadcast(input: {broadcastId: $b,
                audience: {language: \"de\"}, content: {text: \"second draft\"}}) { position } }",
            json!({ "b": broadcast }),
        )
        .await;
    let broadcast_at = "query($b: ID!, $v: Int) { broadcastAt(id: $b, version: $v) {
        status version content audience audienceSize } }";
    let first = server
        .ok(
            &admin.token,
            broadcast_at,
            json!({ "b": broadcast, "v": 0 }),
        )
        .await["broadcastAt"]
        .clone();
    assert_eq!(first["status"], "DRAFT");
    assert_eq!(first["content"]["text"], "first draft");
    assert_eq!(first["audience"]["type"], "all_customers");
    let second = server
        .ok(
            &admin.token,
            broadcast_at,
            json!({ "b": broadcast, "v": 1 }),
        )
        .await["broadcastAt"]
        .clone();
    assert_eq!(second["content"]["text"], "second draft");
    assert_eq!(second["audience"]["language"], "de");
    // Versions past the end show the stream as it is.
    let last = server
        .ok(
            &admin.token,
            broadcast_at,
            json!({ "b": broadcast, "v": 99 }),
        )
        .await["broadcastAt"]
        .clone();
    assert_eq!(last, second);
    server.stop().await;
}
