//! The read side: every query against a generated history, checked against the read-model
//! tables; refusals by credential, scope and category; read-your-writes.

use std::collections::HashSet;
use std::time::Duration;

use app::commands::{CommandContext, CommandService};
use chrono::{TimeDelta, Utc};
use domain::agent::{Agent as AgentDecider, AgentCommand, Role};
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::CustomerProfile;
use domain::flow::RouteCustomerMessage;
use domain::ticket::Channel;
use domain::{AgentId, CategoryId, CustomerId, MessageId, TicketId};
use eventlog::{Actor, ActorKind, EventLog, Position};
use serde_json::{Value, json};
use testkit::eventually;
use tools::generate::{GenerateOptions, generate};
use uuid::Uuid;

use crate::support::{Server, code};

/// Generates a history into the server's log and waits until every read model has it.
pub(crate) async fn generated(server: &Server) -> Position {
    let options = GenerateOptions {
        events: 2_000,
        writers: 2,
        ..GenerateOptions::default()
    };
    let report = generate(&server.log, &options, |_| {}).await.unwrap();
    // The head counts an event only once every older transaction of the cluster has ended, so
    // under parallel tests it may trail the last append for a moment: wait until it shows them.
    eventually(
        async || {
            let visible = server
                .log
                .count_after(Position::START, report.events)
                .await
                .unwrap();
            if visible < report.events {
                Err(format!(
                    "the log shows {visible} of the {} generated events",
                    report.events
                ))
            } else {
                Ok(())
            }
        },
        Duration::from_secs(60),
    )
    .await;
    caught_up(server).await
}

async fn caught_up(server: &Server) -> Position {
    let head = server.log.head().await.unwrap();
    let all = projections::models::all();
    let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
    projections::wait_for(&server.pool, &names, head, Duration::from_secs(120))
        .await
        .unwrap();
    head
}

async fn count(server: &Server, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

/// Walks a `tickets` connection page by page; returns every node.
async fn all_tickets(server: &Server, token: &str, filter: Value, order: &str) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = server
            .ok(
                token,
                &format!(
                    "query($after: String, $filter: TicketFilter) {{
                        tickets(first: 37, after: $after, filter: $filter, orderBy: {order}) {{
                            edges {{ cursor node {{ ticketId status categoryId createdAt lastActivityAt }} }}
                            pageInfo {{ hasNextPage endCursor }} }} }}"
                ),
                json!({ "after": after, "filter": filter }),
            )
            .await;
        let page = &data["tickets"];
        let edges = page["edges"].as_array().unwrap();
        assert!(edges.len() <= 37);
        nodes.extend(edges.iter().map(|edge| edge["node"].clone()));
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return nodes;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

fn ids_of(nodes: &[Value]) -> Vec<String> {
    nodes
        .iter()
        .map(|node| node["ticketId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn ticket_pages_walk_every_ticket_once_in_order_and_filters_narrow_them() {
    let server = Server::start("q_tickets").await;
    generated(&server).await;
    let admin = server.agent(Role::Admin, "root@test.invalid").await;

    let every = all_tickets(&server, &admin.token, Value::Null, "LAST_ACTIVITY_DESC").await;
    let ids = ids_of(&every);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a ticket came twice");
    assert_eq!(
        ids.len() as i64,
        count(&server, "select count(*) from tickets").await
    );
    assert!(ids.len() > 37, "the history spans several pages");
    let activity: Vec<&str> = every
        .iter()
        .map(|node| node["lastActivityAt"].as_str().unwrap())
        .collect();
    let times: Vec<chrono::DateTime<Utc>> = activity.iter().map(|t| t.parse().unwrap()).collect();
    assert!(
        times.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest activity first"
    );

    let oldest_first = all_tickets(&server, &admin.token, Value::Null, "CREATED_AT_ASC").await;
    let created: Vec<chrono::DateTime<Utc>> = oldest_first
        .iter()
        .map(|node| node["createdAt"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(created.windows(2).all(|pair| pair[0] <= pair[1]));
    assert_eq!(oldest_first.len(), ids.len());

    let open = all_tickets(
        &server,
        &admin.token,
        json!({ "status": ["OPEN"] }),
        "CREATED_AT_DESC",
    )
    .await;
    assert!(open.iter().all(|node| node["status"] == "OPEN"));
    assert_eq!(
        open.len() as i64,
        count(
            &server,
            "select count(*) from tickets where status = 'open'"
        )
        .await
    );

    let (category,): (Uuid,) =
        sqlx::query_as("select category_id from tickets where category_id is not null limit 1")
            .fetch_one(&server.pool)
            .await
            .unwrap();
    let in_category = all_tickets(
        &server,
        &admin.token,
        json!({ "category": category.to_string(), "unassigned": false }),
        "LAST_ACTIVITY_DESC",
    )
    .await;
    assert_eq!(
        in_category.len() as i64,
        sqlx::query_scalar::<_, i64>(
            "select count(*) from tickets where category_id = $1 and assignee_id is not null"
        )
        .bind(category)
        .fetch_one(&server.pool)
        .await
        .unwrap()
    );

    // Full-text search finds the ticket of a message by one of its words.
    let (ticket, text): (Uuid, String) = sqlx::query_as(
        "select ticket_id, text from messages where direction = 'in' and text ~ '[a-z]{6,}' limit 1",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    let word = text
        .split(|c: char| !c.is_alphanumeric())
        .find(|word| word.len() >= 6)
        .unwrap();
    let found = all_tickets(
        &server,
        &admin.token,
        json!({ "search": word }),
        "LAST_ACTIVITY_DESC",
    )
    .await;
    assert!(
        ids_of(&found).contains(&ticket.to_string()),
        "{word} finds {ticket}"
    );
    assert!(found.len() < ids.len());
    // Case does not matter; every word must be in one message.
    let upper = all_tickets(
        &server,
        &admin.token,
        json!({ "search": word.to_uppercase() }),
        "LAST_ACTIVITY_DESC",
    )
    .await;
    assert_eq!(ids_of(&upper), ids_of(&found));
    let with_absent_word = all_tickets(
        &server,
        &admin.token,
        json!({ "search": format!("{word} qqzzxxnotaword") }),
        "LAST_ACTIVITY_DESC",
    )
    .await;
    assert!(with_absent_word.is_empty(), "{with_absent_word:?}");

    let too_long = server
        .gql(
            Some(&admin.token),
            "query($s: String) { tickets(filter: {search: $s}) { nodes { ticketId } } }",
            json!({ "s": "x".repeat(201) }),
        )
        .await;
    assert_eq!(code(&too_long), Some("VALIDATION"));
    let too_many = server
        .gql(
            Some(&admin.token),
            "{ tickets(first: 101) { nodes { ticketId } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&too_many), Some("VALIDATION"));
    let forged = server
        .gql(
            Some(&admin.token),
            "{ tickets(after: \"bm9wZQ\") { nodes { ticketId } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&forged), Some("VALIDATION"));
    server.stop().await;
}

#[tokio::test]
async fn a_ticket_shows_its_messages_in_order_its_history_and_the_other_queries_match_the_tables() {
    let server = Server::start("q_ticket").await;
    let head = generated(&server).await;
    let admin = server.agent(Role::Admin, "root@test.invalid").await;

    let (ticket, messages): (Uuid, i64) = sqlx::query_as(
        "select ticket_id, count(*) from messages group by ticket_id order by 2 desc, 1 limit 1",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert!(messages > 3);
    let mut seqs = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = server
            .ok(
                &admin.token,
                "query($id: ID!, $after: String, $at: String!) {
                    ticket(id: $id, consistency: {atLeast: $at}) {
                        id ticketId customer { customerId firstName }
                        messages(first: 3, after: $after) {
                            nodes { seq direction kind }
                            pageInfo { hasNextPage endCursor } }
                        history(first: 100) { nodes { type version position recordedAt actor { kind id } payload } } } }",
                json!({ "id": ticket.to_string(), "after": after, "at": head.to_string() }),
            )
            .await;
        let t = &data["ticket"];
        assert_eq!(t["ticketId"], ticket.to_string());
        assert!(t["customer"]["customerId"].is_string());
        let history = t["history"]["nodes"].as_array().unwrap();
        assert_eq!(history[0]["version"], 0);
        assert_eq!(history[0]["type"], "ticket.opened");
        assert!(
            history
                .windows(2)
                .all(|p| p[0]["version"].as_i64() < p[1]["version"].as_i64())
        );
        seqs.extend(
            t["messages"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_i64().unwrap()),
        );
        if !t["messages"]["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = t["messages"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seqs.len() as i64, messages);
    assert!(
        seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "ticket order"
    );

    // node(id) gives back the same ticket.
    let global = server
        .ok(
            &admin.token,
            "query($id: ID!) { ticket(id: $id) { id } }",
            json!({ "id": ticket.to_string() }),
        )
        .await["ticket"]["id"]
        .clone();
    let node = server
        .ok(
            &admin.token,
            "query($id: ID!) { node(id: $id) { id ... on Ticket { ticketId } } }",
            json!({ "id": global }),
        )
        .await;
    assert_eq!(node["node"]["ticketId"], ticket.to_string());

    // Dashboard counts equal the tables'.
    let dashboard = server
        .ok(
            &admin.token,
            "{ dashboard(days: 366) { totalTickets byStatus { status tickets } medianFirstResponseSeconds daily { day } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        dashboard["dashboard"]["totalTickets"].as_i64().unwrap(),
        count(&server, "select count(*) from dashboard_tickets").await
    );
    for status in dashboard["dashboard"]["byStatus"].as_array().unwrap() {
        let name = status["status"].as_str().unwrap().to_lowercase();
        let expected: i64 =
            sqlx::query_scalar("select count(*) from dashboard_tickets where status = $1")
                .bind(&name)
                .fetch_one(&server.pool)
                .await
                .unwrap();
        assert_eq!(status["tickets"].as_i64().unwrap(), expected, "{name}");
    }

    // Directory, customers and broadcasts.
    let directory = server
        .ok(
            &admin.token,
            "{ agents(includeInactive: true) { id agentId email role }
               categories(includeRemoved: true) { id name }
               templates(includeRemoved: true) { id title }
               customers(first: 100) { nodes { id customerId firstName } pageInfo { hasNextPage } }
               broadcasts(first: 20) { nodes { id broadcastId state recipients(first: 10) { nodes { customerId state } } } } }",
            json!({}),
        )
        .await;
    for (field, table) in [
        ("agents", "agents"),
        ("categories", "categories"),
        ("templates", "templates"),
    ] {
        assert_eq!(
            directory[field].as_array().unwrap().len() as i64,
            count(&server, &format!("select count(*) from {table}")).await,
            "{field}"
        );
    }
    let broadcasts = directory["broadcasts"]["nodes"].as_array().unwrap();
    assert_eq!(
        broadcasts.len() as i64,
        count(&server, "select count(*) from broadcasts").await
    );
    let customers = directory["customers"]["nodes"].as_array().unwrap();
    assert!(!customers.is_empty());
    for (kind, global) in [
        ("Agent", &directory["agents"][0]["id"]),
        ("Category", &directory["categories"][0]["id"]),
        ("Template", &directory["templates"][0]["id"]),
        ("Customer", &customers[0]["id"]),
        ("Broadcast", &broadcasts[0]["id"]),
    ] {
        let node = server
            .ok(
                &admin.token,
                "query($id: ID!) { node(id: $id) { id __typename } }",
                json!({ "id": global }),
            )
            .await;
        assert_eq!(node["node"]["__typename"], kind);
        assert_eq!(&node["node"]["id"], global);
    }
    let one = server
        .ok(
            &admin.token,
            "query($id: ID!) { customer(id: $id) { customerId } }",
            json!({ "id": customers[0]["customerId"] }),
        )
        .await;
    assert_eq!(one["customer"]["customerId"], customers[0]["customerId"]);
    server.stop().await;
}

async fn api_token(server: &Server, scopes: &[&str]) -> String {
    let token = format!("ldk_test_{}", Uuid::now_v7().simple());
    sqlx::query(
        "insert into api_tokens (id, name, scopes, token_hash, created_by) values ($1, 'test', $2, $3, $4)",
    )
    .bind(Uuid::now_v7())
    .bind(scopes.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    .bind(api::auth::tokens::digest(&token))
    .bind(Uuid::now_v7())
    .execute(&server.pool)
    .await
    .unwrap();
    token
}

#[tokio::test]
async fn callers_see_only_what_their_credential_and_categories_allow() {
    let server = Server::start("q_refusals").await;
    generated(&server).await;
    let admin = server.agent(Role::Admin, "root@test.invalid").await;

    let anonymous = server
        .gql(None, "{ tickets { nodes { ticketId } } }", json!({}))
        .await;
    assert_eq!(code(&anonymous), Some("UNAUTHENTICATED"));

    let customers_only = api_token(&server, &["customers:read"]).await;
    let refused = server
        .gql(
            Some(&customers_only),
            "{ tickets { nodes { ticketId } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&refused), Some("FORBIDDEN"));
    let allowed = server
        .ok(
            &customers_only,
            "{ customers(first: 1) { nodes { customerId } } }",
            json!({}),
        )
        .await;
    assert_eq!(allowed["customers"]["nodes"].as_array().unwrap().len(), 1);
    let tickets_only = api_token(&server, &["tickets:read"]).await;
    let no_customer = server
        .gql(
            Some(&tickets_only),
            "{ tickets(first: 1) { nodes { customer { firstName } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&no_customer), Some("FORBIDDEN"));
    let no_dashboard = server
        .gql(
            Some(&tickets_only),
            "{ dashboard { totalTickets } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&no_dashboard), Some("FORBIDDEN"));

    // An agent working one category sees only its tickets; others are NOT_FOUND to them.
    let (category,): (Uuid,) = sqlx::query_as(
        "select category_id from tickets where category_id is not null \
         group by category_id order by count(*) desc limit 1",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    let agent = server.agent(Role::Agent, "scoped@test.invalid").await;
    let agent_id = AgentId(agent.id.parse().unwrap());
    let admin_id = AgentId(admin.id.parse().unwrap());
    let assigned = CommandService::new(server.log.clone())
        .execute::<AgentDecider>(
            agent_id.stream(),
            &AgentCommand::AssignCategories {
                categories: vec![CategoryId(category)],
                by: admin_id,
                at: Utc::now(),
            },
            &CommandContext::new(Actor::new(ActorKind::Agent, admin.id.clone())),
        )
        .await
        .unwrap();
    // The scope is read from the directory read model: wait until it holds the assignment
    // (the head may trail it under parallel tests, so wait for the command's own position).
    server.caught_up(assigned.position.unwrap()).await;
    let visible = all_tickets(&server, &agent.token, Value::Null, "LAST_ACTIVITY_DESC").await;
    assert!(!visible.is_empty());
    let row: (Vec<Uuid>,) = sqlx::query_as("select category_ids from agents where id = $1")
        .bind(agent_id.as_uuid())
        .fetch_one(&server.pool)
        .await
        .unwrap();
    assert_eq!(row.0, vec![category]);
    let stray: Vec<&Value> = visible
        .iter()
        .filter(|node| node["categoryId"] != category.to_string())
        .collect();
    assert!(
        stray.is_empty(),
        "{category}: {} of {}: {:?}",
        stray.len(),
        visible.len(),
        stray.first()
    );
    let (outside,): (Uuid,) =
        sqlx::query_as("select id from tickets where category_id is distinct from $1 limit 1")
            .bind(category)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    let hidden = server
        .gql(
            Some(&agent.token),
            "query($id: ID!) { ticket(id: $id) { ticketId } }",
            json!({ "id": outside.to_string() }),
        )
        .await;
    assert_eq!(code(&hidden), Some("NOT_FOUND"));
    let hidden_node = server
        .gql(
            Some(&agent.token),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": api::graphql::ids::global("Ticket", outside).to_string() }),
        )
        .await;
    assert!(hidden_node["errors"].is_null(), "{hidden_node:#}");
    assert_eq!(hidden_node["data"]["node"], Value::Null);
    server.stop().await;
}

#[tokio::test]
async fn a_query_with_consistency_sees_the_write_it_names() {
    let server = Server::start("q_consistency").await;
    let admin = server.admin().await;
    let ticket = TicketId(Uuid::now_v7());
    let routed = CommandService::new(server.log.clone())
        .route_customer_message(
            &RouteCustomerMessage {
                customer: CustomerId(7_000_000_001),
                profile: CustomerProfile {
                    first_name: "Ada".into(),
                    last_name: None,
                    username: Some("ada".into()),
                    language_code: Some("en".into()),
                },
                category: None,
                new_ticket_id: ticket,
                channel: Channel::Telegram,
                message: CustomerMessage {
                    message_id: MessageId(Uuid::now_v7()),
                    telegram_message_id: TelegramMessageId(1),
                    reply_to: None,
                    content: MessageContent::text("my parcel never arrived"),
                },
                reopen_window: TimeDelta::days(7),
                at: Utc::now(),
            },
            &CommandContext::new(Actor::new(ActorKind::Customer, "7000000001")),
        )
        .await
        .unwrap();
    let position = routed.executed.position.unwrap().to_string();
    let data = server
        .ok(
            &admin.token,
            "query($id: ID!, $at: String!) {
                ticket(id: $id, consistency: {atLeast: $at}) {
                    subject status customerId customer { username }
                    messages { nodes { text direction } } }
                tickets(filter: {search: \"parcel\"}, consistency: {atLeast: $at}) { nodes { ticketId } } }",
            json!({ "id": ticket.0.to_string(), "at": position }),
        )
        .await;
    assert_eq!(data["ticket"]["status"], "NEW");
    assert_eq!(data["ticket"]["customerId"], "7000000001");
    assert_eq!(data["ticket"]["customer"]["username"], "ada");
    assert_eq!(
        data["ticket"]["messages"]["nodes"][0]["text"],
        "my parcel never arrived"
    );
    assert_eq!(data["ticket"]["messages"]["nodes"][0]["direction"], "IN");
    assert_eq!(
        data["tickets"]["nodes"][0]["ticketId"],
        ticket.0.to_string()
    );
    let bad = server
        .gql(
            Some(&admin.token),
            "{ tickets(consistency: {atLeast: \"nope\"}) { nodes { ticketId } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&bad), Some("VALIDATION"));
    server.stop().await;
}

#[tokio::test]
async fn a_page_of_tickets_shows_each_tickets_own_customer_and_assignee() {
    let server = Server::start("q_nested").await;
    let head = generated(&server).await;
    let admin = server.agent(Role::Admin, "root@test.invalid").await;
    let data = server
        .ok(
            &admin.token,
            "query($at: String!) {
                tickets(first: 100, consistency: {atLeast: $at}) { nodes {
                    ticketId customerId assigneeId
                    customer { customerId firstName }
                    assignee { agentId name } } } }",
            json!({ "at": head.to_string() }),
        )
        .await;
    let nodes = data["tickets"]["nodes"].as_array().unwrap();
    assert!(nodes.len() > 10);
    let mut assigned = 0;
    for node in nodes {
        let ticket: Uuid = node["ticketId"].as_str().unwrap().parse().unwrap();
        let (customer, first_name, assignee, name): (i64, String, Option<Uuid>, Option<String>) =
            sqlx::query_as(
                "select t.customer_id, c.first_name, t.assignee_id, a.name from tickets t \
                 join customers c on c.id = t.customer_id \
                 left join agents a on a.id = t.assignee_id where t.id = $1",
            )
            .bind(ticket)
            .fetch_one(&server.pool)
            .await
            .unwrap();
        assert_eq!(node["customer"]["customerId"], customer.to_string());
        assert_eq!(node["customerId"], customer.to_string());
        assert_eq!(node["customer"]["firstName"], first_name);
        match assignee {
            Some(agent) => {
                assigned += 1;
                assert_eq!(node["assignee"]["agentId"], agent.to_string());
                assert_eq!(node["assigneeId"], agent.to_string());
                assert_eq!(node["assignee"]["name"], name.unwrap());
            }
            None => assert_eq!(node["assignee"], Value::Null),
        }
    }
    assert!(assigned > 0, "the generated history assigns tickets");
    server.stop().await;
}
