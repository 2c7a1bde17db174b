//! A database outage is not a mass sign-out: while Postgres cannot be reached, requests answer
//! `UNAVAILABLE` with `retryAfter` (never `UNAUTHENTICATED`), open sockets stay open, a feed's
//! items wait for the database rather than end the feed or vanish, and once the database is
//! back the same token works and every feed goes on from where it was, without a gap.
//!
//! The outage is real: the server reaches Postgres through a [`DatabaseProxy`] that the test
//! cuts (every connection ends, each new one is closed at once) and restores.

use std::time::{Duration, Instant};

use api::auth::{Caller, Permission, TicketScope};
use api::graphql::guard::LiveScope;
use api::live::LiveHub;
use domain::AgentId;
use domain::agent::Role;
use eventlog::EventLog;
use eventlog::postgres::PostgresLog;
use serde_json::{Value, json};
use testkit::{DatabaseProxy, eventually};

use crate::support::{Server, code, test_config};
use crate::ws::{Frame, Protocol, Ws};

const FEED: &str = "subscription($after: String) { events(after: $after) { cursor } }";

const MESSAGES: &str = "subscription { messageAdded { message { text } } }";

const ME: &str = "{ me { agentId role } }";

/// What a panel asks while the database is away: each must answer `UNAVAILABLE`.
fn requests(ticket: uuid::Uuid) -> Vec<(&'static str, Value)> {
    vec![
        (ME, json!({})),
        ("{ tickets(first: 10) { nodes { ticketId } } }", json!({})),
        (
            "query($id: ID!) { ticket(id: $id) { ticketId messages(first: 5) { nodes { text } } } }",
            json!({ "id": ticket }),
        ),
        (
            "{ customers(first: 10) { nodes { customerId } } }",
            json!({}),
        ),
        ("{ agents { agentId role } }", json!({})),
        (
            "mutation($input: ReplyToTicketInput!) { replyToTicket(input: $input) { messageId } }",
            json!({ "input": { "ticketId": ticket, "text": "are you there?" } }),
        ),
    ]
}

/// Asserts `body` says the database is away: `UNAVAILABLE` with a positive `retryAfter`.
fn assert_unavailable(body: &Value, what: &str) {
    assert_eq!(code(body), Some("UNAVAILABLE"), "{what}: {body:#}");
    let retry_after = body["errors"][0]["extensions"]["retryAfter"].as_u64();
    assert!(
        retry_after.is_some_and(|seconds| seconds > 0),
        "{what}: {body:#}"
    );
}

/// What the socket's two subscriptions delivered: the event feed's cursors and the texts of
/// `messageAdded`.
#[derive(Debug, Default)]
struct Seen {
    cursors: Vec<String>,
    texts: Vec<String>,
}

/// Where [`read`] stops.
enum Until<'a> {
    /// A `pong`.
    Pong,
    /// The event feed's item at this cursor.
    Cursor(&'a str),
    /// `messageAdded`'s item with this text.
    Text(&'a str),
}

/// Reads both subscriptions' results into `seen` until `until`; anything else (an error, a
/// `complete`, the socket closing) fails the test.
async fn read(ws: &mut Ws, seen: &mut Seen, until: Until<'_>) {
    loop {
        let value = match ws.frame().await {
            Frame::Json(value) => value,
            other => panic!("the socket should carry on, got {other:?}"),
        };
        if value["type"] == "pong" {
            if matches!(until, Until::Pong) {
                return;
            }
            continue;
        }
        assert_eq!(value["type"], "next", "{value}");
        let payload = &value["payload"];
        assert!(payload.get("errors").is_none(), "{payload:#}");
        if value["id"] == "feed" {
            let cursor = payload["data"]["events"]["cursor"].as_str().unwrap();
            seen.cursors.push(cursor.to_owned());
            if matches!(until, Until::Cursor(wanted) if wanted == cursor) {
                return;
            }
        } else {
            assert_eq!(value["id"], "messages", "{value}");
            let text = payload["data"]["messageAdded"]["message"]["text"]
                .as_str()
                .unwrap();
            seen.texts.push(text.to_owned());
            if matches!(until, Until::Text(wanted) if wanted == text) {
                return;
            }
        }
    }
}

#[tokio::test]
async fn a_database_outage_answers_unavailable_keeps_sockets_open_and_loses_no_event() {
    let proxy = DatabaseProxy::start().await;
    let mut config = test_config();
    // Sockets check their credential often, and every check reads the database.
    config.limits.socket_credential_check = Duration::from_millis(200);
    config.auth.session_check_ttl = Duration::ZERO;
    let server = Server::start_behind("outage", config, &proxy).await;
    let admin = server.admin().await;
    let (ticket, _) = server.customer_writes(9_300_001, None, "hello").await;
    let start = server.log.head().await.unwrap();

    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    ws.subscribe("feed", FEED, json!({ "after": start.to_string() }))
        .await;
    ws.subscribe("messages", MESSAGES, json!({})).await;
    let mut seen = Seen::default();
    // `messageAdded` starts from the moment the server set it up: it is live once it has
    // delivered one of the messages written meanwhile (the event feed, from its cursor,
    // delivers each of them anyway).
    for n in 0..50 {
        if !seen.texts.is_empty() {
            break;
        }
        let (_, live) = server
            .customer_writes(9_300_001, None, &format!("warm-up {n}"))
            .await;
        read(&mut ws, &mut seen, Until::Cursor(&live.to_string())).await;
    }
    if seen.texts.is_empty() {
        read(&mut ws, &mut seen, Until::Text("warm-up 49")).await;
    }

    proxy.cut();
    // Another instance still reaches the database and writes meanwhile.
    server
        .record_customer_message(
            9_300_002,
            None,
            "during the outage",
            Server::next_telegram_message(),
            None,
        )
        .await;
    // Every request answers UNAVAILABLE, for long enough that the socket's credential was
    // checked several times against the missing database.
    let cut_at = Instant::now();
    let mut rounds = 0;
    while rounds < 3 || cut_at.elapsed() < Duration::from_secs(2) {
        for (query, variables) in requests(ticket) {
            let body = server.gql(Some(&admin.token), query, variables).await;
            assert_unavailable(&body, query);
        }
        rounds += 1;
    }
    assert!(proxy.refused() > 0, "the server never tried the database");
    // Signing in cannot be checked either: not "wrong email or password".
    let body = server
        .gql(
            None,
            "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
            json!({ "input": { "email": admin.email, "password": crate::support::PASSWORD } }),
        )
        .await;
    assert_unavailable(&body, "login");
    // A new socket is asked to come back later, its credential neither accepted nor refused.
    let mut late = Ws::open(&server, Protocol::TransportWs).await;
    late.send(json!({ "type": "connection_init",
        "payload": { "authorization": format!("Bearer {}", admin.token) } }))
        .await;
    match late.frame().await {
        Frame::Closed(Some(1013)) => {}
        other => panic!("expected close 1013 (try again later), got {other:?}"),
    }
    // The legacy protocol says why first, then closes the same way.
    let mut legacy = Ws::open(&server, Protocol::Legacy).await;
    legacy
        .send(json!({ "type": "connection_init",
            "payload": { "authorization": format!("Bearer {}", admin.token) } }))
        .await;
    match legacy.frame().await {
        Frame::Json(message) => assert_eq!(message["type"], "connection_error", "{message}"),
        other => panic!("expected connection_error, got {other:?}"),
    }
    match legacy.frame().await {
        Frame::Closed(Some(1013)) => {}
        other => panic!("expected close 1013 (try again later), got {other:?}"),
    }
    // The open socket is still open, its subscription still running.
    ws.send(json!({ "type": "ping" })).await;
    read(&mut ws, &mut seen, Until::Pong).await;

    proxy.restore();
    // The same token works again.
    let me = eventually(
        async || {
            let body = server.gql(Some(&admin.token), ME, json!({})).await;
            body.get("errors").is_none().then_some(body)
        },
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(me["data"]["me"]["role"], "ADMIN");
    let (_, after) = server
        .customer_writes(9_300_003, None, "after the outage")
        .await;
    // The feed went on: every event after `start` up to `after`, once each, in order.
    if !seen.cursors.contains(&after.to_string()) {
        read(&mut ws, &mut seen, Until::Cursor(&after.to_string())).await;
    }
    let page = server.log.read_all(start, 1_000).await.unwrap();
    let logged: Vec<String> = page
        .events
        .iter()
        .filter(|event| event.position <= after)
        .map(|event| event.position.to_string())
        .collect();
    assert_eq!(seen.cursors, logged);
    // And so did the messages: the one written during the outage came once it was over.
    if !seen.texts.iter().any(|text| text == "after the outage") {
        read(&mut ws, &mut seen, Until::Text("after the outage")).await;
    }
    let texts: Vec<&str> = seen
        .texts
        .iter()
        .map(String::as_str)
        .filter(|text| !text.starts_with("warm-up"))
        .collect();
    assert_eq!(texts, ["during the outage", "after the outage"]);
    ws.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_feed_items_permission_check_waits_for_the_database_instead_of_refusing() {
    let server = Server::start("outage_item_check").await;
    let admin = server.admin().await;
    let (_, at) = server.customer_writes(9_300_101, None, "hello").await;
    // The check reads the agent's stream through a proxy of its own.
    let proxy = DatabaseProxy::start().await;
    // Room for the hub's follower and the log's listener besides the check's reads.
    let pool = app::database::pool_options(6)
        .connect(&proxy.url_for(&server.database_url()))
        .await
        .unwrap();
    let live = LiveHub::new(PostgresLog::new(pool));
    let caller = Caller::Agent {
        id: AgentId::from_uuid(admin.id.parse().unwrap()),
        role: Role::Admin,
        categories: Vec::new(),
        must_change_password: false,
        must_enrol_second_factor: false,
    };
    let scope = LiveScope::new(live.clone(), caller, Permission::ReadEvents);

    proxy.cut();
    let check = tokio::spawn(async move { scope.at(at).await });
    // It meets the outage again and again, and neither refuses nor gives up meanwhile.
    eventually(
        async || proxy.refused() >= 3 || check.is_finished(),
        Duration::from_secs(30),
    )
    .await;
    assert!(
        !check.is_finished(),
        "the check ended during the outage ({} tries): {:?}",
        proxy.refused(),
        check.await.unwrap().map_err(|e| (e.message, e.extensions))
    );

    proxy.restore();
    let scope = tokio::time::timeout(Duration::from_secs(30), check)
        .await
        .expect("the check goes on once the database is back")
        .unwrap()
        .map_err(|e| e.message)
        .unwrap();
    assert_eq!(scope, TicketScope::All);
    live.stop();
    server.stop().await;
}
