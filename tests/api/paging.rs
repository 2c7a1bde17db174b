//! Relay paging both ways on every connection: `first`/`after` forwards, `last`/`before`
//! backwards, edges always in the list's order, `pageInfo` as the cursor connections spec says;
//! and a list paged by a stable order while its tickets change.

use std::collections::HashSet;

use app::commands::{CommandContext, CommandService};
use chrono::{TimeDelta, Utc};
use domain::agent::Role;
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::CustomerProfile;
use domain::flow::RouteCustomerMessage;
use domain::ticket::Channel;
use domain::{CustomerId, MessageId, TicketId};
use eventlog::{Actor, EventLog, Position};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::queries::generated;
use crate::support::{Server, code};

/// The selection of a page: its edges and the whole `pageInfo`.
const PAGE: &str = "pageInfo { hasPreviousPage hasNextPage startCursor endCursor }";

/// Which way to walk a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// `first` and `after`, from the start.
    Forwards,
    /// `last` and `before`, from the end.
    Backwards,
}

/// Walks a whole connection `size` rows at a time; returns every edge's node in list order and
/// how many requests it took. `query` takes `$first`, `$after`, `$last` and `$before` and
/// selects, at `path`, `edges { cursor node { … } }` and [`PAGE`]. Checks every page's
/// `pageInfo` on the way.
async fn walk(
    server: &Server,
    token: &str,
    query: &str,
    variables: &Value,
    path: &[&str],
    way: Way,
    size: i32,
) -> (Vec<Value>, usize) {
    let mut pages: Vec<Vec<Value>> = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let mut vars = variables.clone();
        let vars_map = vars.as_object_mut().unwrap();
        match way {
            Way::Forwards => {
                vars_map.insert("first".into(), json!(size));
                vars_map.insert("after".into(), cursor.clone());
            }
            Way::Backwards => {
                vars_map.insert("last".into(), json!(size));
                vars_map.insert("before".into(), cursor.clone());
            }
        }
        let data = server.ok(token, query, vars).await;
        let mut connection = &data;
        for key in path {
            connection = &connection[*key];
        }
        let edges = connection["edges"].as_array().unwrap();
        let info = &connection["pageInfo"];
        assert!(edges.len() <= usize::try_from(size).unwrap());
        assert_eq!(
            info["startCursor"],
            edges
                .first()
                .map_or(Value::Null, |edge| edge["cursor"].clone()),
            "startCursor is the first edge's cursor"
        );
        assert_eq!(
            info["endCursor"],
            edges
                .last()
                .map_or(Value::Null, |edge| edge["cursor"].clone()),
            "endCursor is the last edge's cursor"
        );
        let nodes: Vec<Value> = edges.iter().map(|edge| edge["node"].clone()).collect();
        let more = match way {
            Way::Forwards => {
                assert_eq!(info["hasPreviousPage"], json!(!cursor.is_null()), "{info}");
                cursor = info["endCursor"].clone();
                info["hasNextPage"].as_bool().unwrap()
            }
            Way::Backwards => {
                assert_eq!(info["hasNextPage"], json!(!cursor.is_null()), "{info}");
                cursor = info["startCursor"].clone();
                info["hasPreviousPage"].as_bool().unwrap()
            }
        };
        pages.push(nodes);
        if !more {
            break;
        }
        assert!(!cursor.is_null(), "more rows announced after an empty page");
    }
    let requests = pages.len();
    if way == Way::Backwards {
        pages.reverse();
    }
    (pages.into_iter().flatten().collect(), requests)
}

/// The values of `field` of `nodes`, as text.
fn values(nodes: &[Value], field: &str) -> Vec<String> {
    nodes
        .iter()
        .map(|node| match &node[field] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Asserts that `walked` visits every one of `expected` exactly once, in order.
fn each_once_in_order(walked: &[String], expected: &[String], what: &str) {
    let unique: HashSet<&String> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len(), "{what}: a row came twice");
    assert_eq!(walked, expected, "{what}");
}

/// Customer `customer` writes `count` messages, one after another, through the command
/// service as the bot would; returns their ticket once every read model shows them all.
async fn long_conversation(server: &Server, customer: i64, count: i32) -> Uuid {
    let commands = CommandService::new(server.log.clone());
    let ctx = CommandContext::new(Actor::system("test"));
    let mut ticket = None;
    let mut last = Position::START;
    for n in 1..=count {
        let routed = commands
            .route_customer_message(
                &RouteCustomerMessage {
                    customer: CustomerId(customer),
                    profile: CustomerProfile {
                        first_name: "Patient".into(),
                        last_name: None,
                        username: None,
                        language_code: Some("en".into()),
                    },
                    category: None,
                    new_ticket_id: TicketId(Uuid::now_v7()),
                    channel: Channel::Telegram,
                    message: CustomerMessage {
                        message_id: MessageId(Uuid::now_v7()),
                        // Telegram numbers messages per chat: this customer's own numbers.
                        telegram_message_id: TelegramMessageId(n),
                        reply_to: None,
                        content: MessageContent::text(format!("message {n}")),
                    },
                    reopen_window: TimeDelta::days(7),
                    at: Utc::now(),
                },
                &ctx,
            )
            .await
            .unwrap();
        ticket = Some(routed.ticket_id.0);
        last = routed.executed.position.unwrap();
    }
    server.caught_up(last).await;
    ticket.unwrap()
}

#[tokio::test]
async fn the_newest_messages_of_a_long_ticket_come_in_one_request_and_paging_back_visits_each_once()
{
    let server = Server::start("p_long").await;
    let admin = server.admin().await;
    let ticket = long_conversation(&server, 4242, 1_300).await;
    let seqs: Vec<i64> =
        sqlx::query_scalar("select seq from messages where ticket_id = $1 order by seq")
            .bind(ticket)
            .fetch_all(&server.pool)
            .await
            .unwrap();
    assert_eq!(seqs.len(), 1_300);
    let seqs: Vec<String> = seqs.iter().map(ToString::to_string).collect();

    // The 50 newest, in one request, in ticket order.
    let newest = server
        .ok(
            &admin.token,
            &format!(
                "query($id: ID!) {{ ticket(id: $id) {{ messages(last: 50) {{
                    edges {{ cursor node {{ seq text }} }} {PAGE} }} }} }}"
            ),
            json!({ "id": ticket }),
        )
        .await;
    let messages = &newest["ticket"]["messages"];
    let nodes: Vec<Value> = messages["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect();
    each_once_in_order(&values(&nodes, "seq"), &seqs[1_250..], "the 50 newest");
    assert_eq!(nodes[49]["text"], "message 1300");
    assert_eq!(messages["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(messages["pageInfo"]["hasNextPage"], false);

    // Back to the start, 50 at a time: every message once; the last page says nothing precedes.
    let query = format!(
        "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {{
            ticket(id: $id) {{ messages(first: $first, after: $after, last: $last, before: $before) {{
                edges {{ cursor node {{ seq }} }} {PAGE} }} }} }}"
    );
    let vars = json!({ "id": ticket });
    let path = ["ticket", "messages"];
    let (back, requests) = walk(
        &server,
        &admin.token,
        &query,
        &vars,
        &path,
        Way::Backwards,
        50,
    )
    .await;
    each_once_in_order(&values(&back, "seq"), &seqs, "messages, backwards");
    assert_eq!(requests, 26);
    let (forth, _) = walk(
        &server,
        &admin.token,
        &query,
        &vars,
        &path,
        Way::Forwards,
        100,
    )
    .await;
    each_once_in_order(&values(&forth, "seq"), &seqs, "messages, forwards");

    // Between two cursors: only what lies strictly between them, from either end.
    let edges = server
        .ok(
            &admin.token,
            "query($id: ID!) { ticket(id: $id) { messages(first: 10) { edges { cursor } } } }",
            json!({ "id": ticket }),
        )
        .await;
    let cursors = edges["ticket"]["messages"]["edges"].as_array().unwrap();
    for (ask, expected) in [("first: 3", &seqs[3..6]), ("last: 3", &seqs[5..8])] {
        let between = server
            .ok(
                &admin.token,
                &format!(
                    "query($id: ID!, $after: String!, $before: String!) {{ ticket(id: $id) {{
                        messages({ask}, after: $after, before: $before) {{
                            nodes {{ seq }} pageInfo {{ hasPreviousPage hasNextPage }} }} }} }}"
                ),
                json!({ "id": ticket, "after": cursors[2]["cursor"], "before": cursors[8]["cursor"] }),
            )
            .await;
        let messages = &between["ticket"]["messages"];
        let nodes = messages["nodes"].as_array().unwrap();
        assert_eq!(values(nodes, "seq"), expected, "{ask}");
        // Both ways, more rows lie in the range beyond the page, and a cursor on the other side.
        assert_eq!(messages["pageInfo"]["hasPreviousPage"], true, "{ask}");
        assert_eq!(messages["pageInfo"]["hasNextPage"], true, "{ask}");
    }

    // The history: the newest events first, then back to the ticket's opening.
    let versions: Vec<String> = {
        let stream = TicketId(ticket).stream().name();
        let head = server.log.stream_version(&stream).await.unwrap().unwrap();
        (0..=head).map(|version| version.to_string()).collect()
    };
    assert!(versions.len() > 1_300);
    let query = format!(
        "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {{
            ticket(id: $id) {{ history(first: $first, after: $after, last: $last, before: $before) {{
                edges {{ cursor node {{ version type }} }} {PAGE} }} }} }}"
    );
    let path = ["ticket", "history"];
    let (back, _) = walk(
        &server,
        &admin.token,
        &query,
        &vars,
        &path,
        Way::Backwards,
        100,
    )
    .await;
    each_once_in_order(&values(&back, "version"), &versions, "history, backwards");
    assert_eq!(back[0]["type"], "ticket.opened");
    let (forth, _) = walk(
        &server,
        &admin.token,
        &query,
        &vars,
        &path,
        Way::Forwards,
        77,
    )
    .await;
    each_once_in_order(&values(&forth, "version"), &versions, "history, forwards");
    server.stop().await;
}

#[tokio::test]
async fn every_connection_pages_backwards_through_the_same_rows_as_forwards() {
    let server = Server::start("p_every").await;
    generated(&server).await;
    let admin = server.agent(Role::Admin, "root@test.invalid").await;
    let args = "first: $first, after: $after, last: $last, before: $before";
    let vars = "$first: Int, $after: String, $last: Int, $before: String";

    // Each connection, and the ticket and broadcast that have the most rows in it.
    let (busiest, notes): (Uuid, i64) = sqlx::query_as(
        "select ticket_id, count(*) from ticket_notes group by 1 order by 2 desc, 1 limit 1",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert!(notes > 2, "the history has a ticket with several notes");
    let (broadcast, recipients): (Uuid, i64) = sqlx::query_as(
        "select broadcast_id, count(*) from broadcast_recipients group by 1 order by 2 desc, 1 limit 1",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert!(
        recipients > 2,
        "the history has a broadcast with several recipients"
    );
    let cases: Vec<(String, Value, Vec<&str>, &str, i32)> = vec![
        (
            format!(
                "query({vars}) {{ tickets({args}) {{ edges {{ cursor node {{ id }} }} {PAGE} }} }}"
            ),
            json!({}),
            vec!["tickets"],
            "id",
            37,
        ),
        (
            format!(
                "query({vars}) {{ tickets({args}, orderBy: CREATED_AT_ASC, filter: {{status: [CLOSED, RESOLVED]}}) {{
                    edges {{ cursor node {{ id }} }} {PAGE} }} }}"
            ),
            json!({}),
            vec!["tickets"],
            "id",
            11,
        ),
        (
            format!(
                "query({vars}) {{ customers({args}) {{ edges {{ cursor node {{ id }} }} {PAGE} }} }}"
            ),
            json!({}),
            vec!["customers"],
            "id",
            29,
        ),
        (
            format!(
                "query({vars}) {{ broadcasts({args}) {{ edges {{ cursor node {{ id }} }} {PAGE} }} }}"
            ),
            json!({}),
            vec!["broadcasts"],
            "id",
            2,
        ),
        (
            format!(
                "query($id: ID!, {vars}) {{ broadcast(id: $id) {{ recipients({args}) {{
                    edges {{ cursor node {{ customerId }} }} {PAGE} }} }} }}"
            ),
            json!({ "id": broadcast }),
            vec!["broadcast", "recipients"],
            "customerId",
            3,
        ),
        (
            format!(
                "query($id: ID!, {vars}) {{ ticket(id: $id) {{ notes({args}) {{
                    edges {{ cursor node {{ id }} }} {PAGE} }} }} }}"
            ),
            json!({ "id": busiest }),
            vec!["ticket", "notes"],
            "id",
            2,
        ),
    ];
    for (query, variables, path, field, size) in cases {
        let (forth, _) = walk(
            &server,
            &admin.token,
            &query,
            &variables,
            &path,
            Way::Forwards,
            size,
        )
        .await;
        let forth = values(&forth, field);
        assert!(
            forth.len() > usize::try_from(size).unwrap(),
            "{path:?} spans pages"
        );
        let (back, _) = walk(
            &server,
            &admin.token,
            &query,
            &variables,
            &path,
            Way::Backwards,
            size,
        )
        .await;
        each_once_in_order(&values(&back, field), &forth, &format!("{path:?}"));
    }
    server.stop().await;
}

#[tokio::test]
async fn first_and_last_together_and_out_of_bounds_last_are_refused() {
    let server = Server::start("p_refused").await;
    let admin = server.admin().await;
    let (ticket, _) = server.customer_writes(77, None, "hello").await;
    for query in [
        "{ tickets(first: 5, last: 5) { nodes { id } } }",
        "{ customers(first: 1, last: 1) { nodes { id } } }",
        "{ broadcasts(first: 0, last: 0) { nodes { id } } }",
        "{ tickets(last: 101) { nodes { id } } }",
        "{ tickets(last: -1) { nodes { id } } }",
        "{ tickets(last: 1, before: \"bm9wZQ\") { nodes { id } } }",
    ] {
        let body = server.gql(Some(&admin.token), query, json!({})).await;
        assert_eq!(code(&body), Some("VALIDATION"), "{query}: {body}");
        assert!(body["data"].is_null(), "{query}: {body}");
    }
    for field in ["messages", "notes", "history"] {
        let body = server
            .gql(
                Some(&admin.token),
                &format!(
                    "query($id: ID!) {{ ticket(id: $id) {{ {field}(first: 2, last: 2) {{ nodes {{ __typename }} }} }} }}"
                ),
                json!({ "id": ticket }),
            )
            .await;
        assert_eq!(code(&body), Some("VALIDATION"), "{field}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("first and last"), "{message}");
    }
    server.stop().await;
}

/// Pages through `tickets` in `order`, 5 at a time; after each page, moves the list under the
/// reader: the unseen ticket of oldest activity gets a message (it jumps to the top of the
/// activity order), so does a ticket already seen, and a new customer opens a ticket. Returns
/// the ids seen, in order.
async fn page_while_tickets_change(
    server: &Server,
    token: &str,
    order: &str,
    customers: &[i64],
    newcomer: &mut i64,
) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = server
            .ok(
                token,
                &format!(
                    "query($after: String) {{ tickets(first: 5, after: $after, orderBy: {order}) {{
                        nodes {{ ticketId }} pageInfo {{ hasNextPage endCursor }} }} }}"
                ),
                json!({ "after": after }),
            )
            .await;
        let page = &data["tickets"];
        seen.extend(values(page["nodes"].as_array().unwrap(), "ticketId"));
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return seen;
        }
        after = page["pageInfo"]["endCursor"].clone();

        let unseen: Vec<i64> = sqlx::query_scalar(
            "select customer_id from tickets where customer_id = any($1) \
             and not (id::text = any($2)) order by last_activity_at, id limit 1",
        )
        .bind(customers)
        .bind(&seen)
        .fetch_all(&server.pool)
        .await
        .unwrap();
        for customer in unseen {
            server.customer_writes(customer, None, "any news?").await;
        }
        let seen_one: i64 =
            sqlx::query_scalar("select customer_id from tickets where id::text = $1")
                .bind(&seen[0])
                .fetch_one(&server.pool)
                .await
                .unwrap();
        server.customer_writes(seen_one, None, "me again").await;
        *newcomer += 1;
        server.customer_writes(*newcomer, None, "hello").await;
    }
}

#[tokio::test]
async fn paging_by_creation_while_tickets_change_neither_skips_nor_repeats() {
    let server = Server::start("p_moving").await;
    let admin = server.admin().await;
    let customers: Vec<i64> = (1..=23).collect();
    let mut tickets = Vec::new();
    for customer in &customers {
        let (ticket, _) = server.customer_writes(*customer, None, "help").await;
        tickets.push(ticket.to_string());
    }
    let mut newcomer = 1_000;

    // By creation, newest first: each ticket of the start exactly once, in creation order;
    // tickets opened meanwhile come before the first page, where the reader already was.
    let by_creation = page_while_tickets_change(
        &server,
        &admin.token,
        "CREATED_AT_DESC",
        &customers,
        &mut newcomer,
    )
    .await;
    let mut newest_first = tickets.clone();
    newest_first.reverse();
    each_once_in_order(&by_creation, &newest_first, "by creation");

    // By activity, the same changes carry unseen tickets past the reader: they are skipped.
    let customers: Vec<i64> = (1..=newcomer).filter(|c| *c <= 23 || *c > 1_000).collect();
    let before: i64 = sqlx::query_scalar("select count(*) from tickets")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    let by_activity = page_while_tickets_change(
        &server,
        &admin.token,
        "LAST_ACTIVITY_DESC",
        &customers,
        &mut newcomer,
    )
    .await;
    let distinct: HashSet<&String> = by_activity.iter().collect();
    assert!(
        i64::try_from(distinct.len()).unwrap() < before,
        "activity order skipped none of {before} tickets: {by_activity:?}"
    );
    server.stop().await;
}
