//! Authorization never lags the change that narrowed it: right after an admin narrows an
//! agent's categories, changes their role, deactivates them or revokes a token, no request
//! that starts afterwards (and no item a live feed delivers afterwards) shows anything the new
//! permissions exclude, however far the read models lag. And a category-limited agent sees
//! customers only through their tickets in those categories.

use std::time::Duration;

use domain::agent::Role;
use eventlog::Position;
use futures::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Agent, Server, code};
use crate::ws::{Frame, Protocol, Ws};

/// How many times each race is run: the read models usually lag only a few milliseconds.
const ROUNDS: usize = 6;
/// Requests fired at once right after each change.
const BURST: usize = 6;

const SET_CATEGORIES: &str = "mutation($agent: ID!, $categories: [ID!]!) {
    setAgentCategories(input: {agentId: $agent, categoryIds: $categories}) { position } }";

/// The reads an agent's panel makes, each of which could show an outside ticket: the list,
/// search, one ticket with its messages, `node`, and the customers.
fn reads(outside: Uuid, outside_customer: i64) -> Vec<(String, Value)> {
    let global = api::graphql::ids::global("Ticket", outside).0;
    vec![
        (
            "{ tickets(first: 100) { nodes { ticketId subject customer { openTicketId } } } }"
                .to_owned(),
            json!({}),
        ),
        (
            "query($q: String!) { tickets(first: 100, filter: {search: $q}) { nodes { ticketId } } }"
                .to_owned(),
            json!({ "q": "parcel" }),
        ),
        (
            "query($id: ID!) { ticket(id: $id) { ticketId messages(first: 10) { nodes { text } } } }"
                .to_owned(),
            json!({ "id": outside }),
        ),
        (
            "query($id: ID!) { node(id: $id) { id ... on Ticket { ticketId subject } } }"
                .to_owned(),
            json!({ "id": global }),
        ),
        (
            "query($id: ID!) { customer(id: $id) { customerId openTicketId } }".to_owned(),
            json!({ "id": outside_customer.to_string() }),
        ),
        (
            "{ customers(first: 100) { nodes { customerId openTicketId } } }".to_owned(),
            json!({}),
        ),
    ]
}

/// Fires every read `BURST` times at once with `token`; returns the response bodies.
async fn burst(server: &Server, token: &str, reads: &[(String, Value)]) -> Vec<Value> {
    let requests = (0..BURST).flat_map(|_| {
        reads
            .iter()
            .map(|(query, variables)| server.gql(Some(token), query, variables.clone()))
    });
    join_all(requests).await
}

/// Asserts no body names `outside` (a ticket id or its text) anywhere.
fn assert_nothing_of(bodies: &[Value], outside: &[&str], when: &str) {
    for body in bodies {
        let text = body.to_string();
        for secret in outside {
            assert!(
                !text.contains(secret),
                "{when}: a response shows {secret}: {body:#}"
            );
        }
    }
}

/// Asserts every body is refused as `UNAUTHENTICATED` with no data.
fn assert_all_refused(bodies: &[Value], when: &str) {
    for body in bodies {
        assert_eq!(code(body), Some("UNAUTHENTICATED"), "{when}: {body:#}");
        assert!(
            body["data"].is_null()
                || body["data"]
                    .as_object()
                    .is_some_and(|data| data.values().all(Value::is_null)),
            "{when}: data despite the refusal: {body:#}"
        );
    }
}

async fn set_categories(server: &Server, admin: &Agent, agent: &Agent, categories: &[Uuid]) {
    server
        .ok(
            &admin.token,
            SET_CATEGORIES,
            json!({ "agent": agent.id, "categories": categories }),
        )
        .await;
}

#[tokio::test]
async fn narrowing_an_agents_categories_applies_to_the_very_next_requests() {
    let server = Server::start("authz_narrow").await;
    let admin = server.admin().await;
    let billing = server.category(&admin, "Billing").await;
    let shipping = server.category(&admin, "Shipping").await;
    let (inside, _) = server
        .customer_writes(8_001, Some(billing), "double charge")
        .await;
    let (outside, _) = server
        .customer_writes(8_002, Some(shipping), "where is my parcel")
        .await;
    let agent = server
        .scoped_agent(&admin, "narrowed@example.com", &[billing, shipping])
        .await;
    let reads = reads(outside, 8_002);
    let outside_id = outside.to_string();
    let secrets = [outside_id.as_str(), "where is my parcel"];

    // Before: the agent sees the shipping ticket (so the checks below can fail).
    let seen = burst(&server, &agent.token, &reads[..1]).await;
    assert!(seen[0].to_string().contains(&outside_id), "{:#}", seen[0]);

    for round in 0..ROUNDS {
        // Narrowed to billing: every request that starts now sees billing only.
        set_categories(&server, &admin, &agent, &[billing]).await;
        let bodies = burst(&server, &agent.token, &reads).await;
        assert_nothing_of(&bodies, &secrets, &format!("round {round}, narrowed"));
        // The inside ticket is still there: the agent is limited, not locked out.
        assert!(
            bodies[0].to_string().contains(&inside.to_string()),
            "{:#}",
            bodies[0]
        );
        // Widened again, with the read models caught up, for the next round's race.
        let data = server
            .ok(
                &admin.token,
                SET_CATEGORIES,
                json!({ "agent": agent.id, "categories": [billing, shipping] }),
            )
            .await;
        server
            .caught_up(
                data["setAgentCategories"]["position"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
            )
            .await;
    }
    server.stop().await;
}

#[tokio::test]
async fn deactivation_role_change_and_revocation_apply_to_the_very_next_requests() {
    let server = Server::start("authz_revoke").await;
    let admin = server.admin().await;
    let billing = server.category(&admin, "Billing").await;
    let shipping = server.category(&admin, "Shipping").await;
    server
        .customer_writes(8_101, Some(billing), "double charge")
        .await;
    let (outside, _) = server
        .customer_writes(8_102, Some(shipping), "where is my parcel")
        .await;
    let reads = reads(outside, 8_102);
    let outside_id = outside.to_string();
    let secrets = [outside_id.as_str(), "where is my parcel"];

    // Fewer rounds: each signs three agents in, and password hashing is slow by design.
    for round in 0..ROUNDS / 2 {
        // Deactivated: every request that starts now is refused.
        let email = format!("leaver{round}@example.com");
        let leaver = server.agent(Role::Agent, &email).await;
        server
            .ok(
                &admin.token,
                "mutation($id: ID!) { deactivateAgent(input: {agentId: $id}) { position } }",
                json!({ "id": leaver.id }),
            )
            .await;
        let bodies = burst(&server, &leaver.token, &reads).await;
        assert_all_refused(&bodies, &format!("round {round}, deactivated"));

        // An admin given categories (which do not limit an admin) demoted to agent: from the
        // next request on the categories limit them, with the old token or a new one.
        let email = format!("demoted{round}@example.com");
        let demoted = server.agent(Role::Admin, &email).await;
        set_categories(&server, &admin, &demoted, &[billing]).await;
        let seen = burst(&server, &demoted.token, &reads[..1]).await;
        assert!(seen[0].to_string().contains(&outside_id), "{:#}", seen[0]);
        server
            .ok(
                &admin.token,
                "mutation($id: ID!) { changeAgentRole(input: {agentId: $id, role: AGENT}) { position } }",
                json!({ "id": demoted.id }),
            )
            .await;
        let bodies = burst(&server, &demoted.token, &reads).await;
        assert_nothing_of(&bodies, &secrets, &format!("round {round}, demoted"));
        let again = server.login(&email, crate::support::PASSWORD).await;
        let bodies = burst(&server, &again.token, &reads).await;
        assert_nothing_of(
            &bodies,
            &secrets,
            &format!("round {round}, demoted, new token"),
        );
        let me = server
            .ok(&again.token, "{ me { role categoryIds } }", json!({}))
            .await;
        assert_eq!(me["me"]["role"], "AGENT");
        // And what the agent role may not do is refused at once.
        let body = server
            .gql(
                Some(&again.token),
                "{ apiTokens { apiTokenId } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&body), Some("FORBIDDEN"), "{body:#}");

        // A revoked API token: every request that starts now is refused.
        let token = server
            .api_token(&admin, &["tickets:read", "customers:read"])
            .await;
        let tokens = server
            .ok(&admin.token, "{ apiTokens { apiTokenId } }", json!({}))
            .await;
        server
            .ok(
                &admin.token,
                "mutation($id: ID!) { revokeApiToken(input: {apiTokenId: $id}) { revoked } }",
                json!({ "id": tokens["apiTokens"][0]["apiTokenId"] }),
            )
            .await;
        let bodies = burst(&server, &token, &reads).await;
        assert_all_refused(&bodies, &format!("round {round}, revoked"));

        // An agent signed out everywhere: their access token is refused at once.
        let email = format!("signedout{round}@example.com");
        let signed_out = server.agent(Role::Agent, &email).await;
        server
            .ok(
                &signed_out.token,
                "mutation { logout(input: {everywhere: true}) { ok } }",
                json!({}),
            )
            .await;
        let bodies = burst(&server, &signed_out.token, &reads).await;
        assert_all_refused(&bodies, &format!("round {round}, signed out"));
    }
    server.stop().await;
}

/// Reads `messageAdded` on `id` up to the message at `until` (its cursor), returning the
/// texts seen on the way.
async fn messages_until(ws: &mut Ws, id: &str, until: Position) -> Vec<String> {
    let mut texts = Vec::new();
    loop {
        let item = ws.data(id).await["messageAdded"].clone();
        texts.push(item["message"]["text"].as_str().unwrap().to_owned());
        let cursor: Position = item["cursor"].as_str().unwrap().parse().unwrap();
        if cursor >= until {
            return texts;
        }
    }
}

/// Reads `ticketsChanged` on `id` up to a change covering `until`, returning the tickets
/// seen on the way.
async fn changes_until(ws: &mut Ws, id: &str, until: Position) -> Vec<String> {
    let mut tickets = Vec::new();
    loop {
        let item = ws.data(id).await["ticketsChanged"].clone();
        tickets.push(item["ticket"]["ticketId"].as_str().unwrap().to_owned());
        let cursor: Position = item["cursor"].as_str().unwrap().parse().unwrap();
        if cursor >= until {
            return tickets;
        }
    }
}

const MESSAGES: &str = "subscription { messageAdded { cursor message { text } } }";
const CHANGES: &str = "subscription { ticketsChanged { cursor ticket { ticketId } } }";

#[tokio::test]
async fn live_feeds_apply_the_categories_an_agent_has_when_each_item_happens() {
    let server = Server::start("authz_live").await;
    let admin = server.admin().await;
    let billing = server.category(&admin, "Billing").await;
    let shipping = server.category(&admin, "Shipping").await;
    let (inside, _) = server
        .customer_writes(8_201, Some(billing), "double charge")
        .await;
    let (outside, _) = server
        .customer_writes(8_202, Some(shipping), "where is my parcel")
        .await;
    let agent = server
        .scoped_agent(&admin, "live@example.com", &[billing, shipping])
        .await;
    let mut messages = Ws::connect(&server, Protocol::TransportWs, &agent.token).await;
    messages.subscribe("m", MESSAGES, json!({})).await;
    let mut list = Ws::connect(&server, Protocol::TransportWs, &agent.token).await;
    list.subscribe("l", CHANGES, json!({})).await;

    // Both categories first: shipping messages arrive once the feeds are live. Each feed
    // goes live when the server has handled its subscribe, on its own socket, so both must
    // show the same write.
    let mut sent = 0;
    let live_at = loop {
        sent += 1;
        let (_, at) = server
            .customer_writes(8_202, Some(shipping), &format!("parcel {sent}"))
            .await;
        let message = tokio::time::timeout(
            Duration::from_secs(1),
            messages_until(&mut messages, "m", at),
        )
        .await;
        let change =
            tokio::time::timeout(Duration::from_secs(1), changes_until(&mut list, "l", at)).await;
        if message.is_ok() && change.is_ok_and(|tickets| tickets.contains(&outside.to_string())) {
            break at;
        }
        assert!(sent < 20, "the feeds never went live");
    };
    // The shipping ticket's own feed, from the last message on.
    let mut events = Ws::connect(&server, Protocol::TransportWs, &agent.token).await;
    events
        .subscribe(
            "e",
            "subscription($id: ID!, $after: String) { ticketEvents(ticketId: $id, after: $after) { type } }",
            json!({ "id": outside, "after": live_at.to_string() }),
        )
        .await;

    let outside_id = outside.to_string();
    for round in 0..ROUNDS {
        // Narrowed to billing; then the shipping ticket gets a message, then the billing one.
        set_categories(&server, &admin, &agent, &[billing]).await;
        let (_, hidden) = server
            .customer_writes(8_202, Some(shipping), &format!("parcel hidden {round}"))
            .await;
        let (_, shown) = server
            .customer_writes(8_201, Some(billing), &format!("charge {round}"))
            .await;
        assert!(hidden < shown);
        // Everything up to the billing message: nothing of shipping.
        let texts = messages_until(&mut messages, "m", shown).await;
        assert_eq!(texts, [format!("charge {round}")], "round {round}");
        let tickets = changes_until(&mut list, "l", shown).await;
        assert!(!tickets.contains(&outside_id), "round {round}: {tickets:?}");
        assert!(
            tickets.contains(&inside.to_string()),
            "round {round}: {tickets:?}"
        );
        if round == 0 {
            // The shipping ticket's feed ends before showing the hidden message.
            assert_eq!(events.error_code("e").await, "NOT_FOUND");
        }
        // Widened again: shipping shows again, on the same subscriptions.
        set_categories(&server, &admin, &agent, &[billing, shipping]).await;
        let (_, back) = server
            .customer_writes(8_202, Some(shipping), &format!("parcel back {round}"))
            .await;
        let texts = messages_until(&mut messages, "m", back).await;
        assert_eq!(texts, [format!("parcel back {round}")], "round {round}");
        let tickets = changes_until(&mut list, "l", back).await;
        assert!(tickets.contains(&outside_id), "round {round}: {tickets:?}");
    }

    // Deactivated: the feeds end (the socket closes or the subscription is refused) before
    // anything after the deactivation shows.
    server
        .ok(
            &admin.token,
            "mutation($id: ID!) { deactivateAgent(input: {agentId: $id}) { position } }",
            json!({ "id": agent.id }),
        )
        .await;
    server
        .customer_writes(8_201, Some(billing), "after deactivation")
        .await;
    loop {
        match messages.frame().await {
            Frame::Closed(_) => break,
            Frame::Json(value) => {
                assert_ne!(
                    value["payload"]["data"]["messageAdded"]["message"]["text"],
                    "after deactivation",
                    "a deactivated agent got a message"
                );
                if value["type"] == "complete" || value["type"] == "error" {
                    break;
                }
            }
        }
    }
    messages.close().await;
    list.close().await;
    events.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_category_limited_agent_sees_customers_only_through_tickets_in_its_categories() {
    let server = Server::start("authz_customers").await;
    let admin = server.admin().await;
    let billing = server.category(&admin, "Billing").await;
    let shipping = server.category(&admin, "Shipping").await;
    // Ann: a billing ticket. Ben: a shipping ticket. Cleo: a closed billing ticket and an
    // open shipping one.
    server.customer_writes(8_301, Some(billing), "charge").await;
    let (bens, _) = server
        .customer_writes(8_302, Some(shipping), "parcel")
        .await;
    let (cleos_first, _) = server.customer_writes(8_303, Some(billing), "charge").await;
    let closed = server
        .ok(
            &admin.token,
            "mutation($id: ID!) { changeTicketStatus(input: {ticketId: $id, status: CLOSED}) {
                position } }",
            json!({ "id": cleos_first }),
        )
        .await;
    server
        .caught_up(
            closed["changeTicketStatus"]["position"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        )
        .await;
    let (cleos_second, _) = server
        .customer_writes(8_303, Some(shipping), "parcel")
        .await;
    assert_ne!(cleos_first, cleos_second, "a closed ticket is not reopened");
    let agent = server
        .scoped_agent(&admin, "billing@example.com", &[billing])
        .await;
    let customer = "query($id: ID!) { customer(id: $id) {
        customerId openTicketId ticketsTotal ticketsOpen } }";

    // The admin sees everyone, with every ticket.
    let cleo = server
        .ok(&admin.token, customer, json!({ "id": "8303" }))
        .await;
    assert_eq!(cleo["customer"]["openTicketId"], cleos_second.to_string());
    assert_eq!(cleo["customer"]["ticketsTotal"], 2);
    assert_eq!(cleo["customer"]["ticketsOpen"], 1);

    // The agent: Ann and Cleo (each has a billing ticket), not Ben.
    let list = server
        .ok(
            &agent.token,
            "{ customers(first: 50) { nodes { customerId openTicketId } } }",
            json!({}),
        )
        .await;
    let ids: Vec<&str> = list["customers"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["customerId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["8303", "8301"]);
    let text = list.to_string();
    assert!(!text.contains(&cleos_second.to_string()), "{list:#}");
    assert!(!text.contains(&bens.to_string()), "{list:#}");
    // Ben is as good as absent, by id and by global id.
    let body = server
        .gql(Some(&agent.token), customer, json!({ "id": "8302" }))
        .await;
    assert_eq!(code(&body), Some("NOT_FOUND"), "{body:#}");
    let body = server
        .gql(
            Some(&agent.token),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": api::graphql::ids::global("Customer", 8_302).0 }),
        )
        .await;
    assert!(body["data"]["node"].is_null(), "{body:#}");
    assert!(!body.to_string().contains("8302\""), "{body:#}");
    // Cleo shows without her shipping ticket: no open ticket, one ticket in all.
    let cleo = server
        .ok(&agent.token, customer, json!({ "id": "8303" }))
        .await;
    assert_eq!(cleo["customer"]["openTicketId"], Value::Null);
    assert_eq!(cleo["customer"]["ticketsTotal"], 1);
    assert_eq!(cleo["customer"]["ticketsOpen"], 0);
    // Through her billing ticket too.
    let ticket = server
        .ok(
            &agent.token,
            "query($id: ID!) { ticket(id: $id) { customer { openTicketId ticketsTotal } } }",
            json!({ "id": cleos_first }),
        )
        .await;
    assert_eq!(ticket["ticket"]["customer"]["openTicketId"], Value::Null);
    assert_eq!(ticket["ticket"]["customer"]["ticketsTotal"], 1);
    // Nor can the agent ban a customer they cannot see.
    let body = server
        .gql(
            Some(&agent.token),
            "mutation { banCustomer(input: {customerId: \"8302\", reason: \"spam\"}) { position } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), Some("NOT_FOUND"), "{body:#}");
    server.stop().await;
}
