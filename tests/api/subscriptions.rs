//! Subscriptions over both WebSocket protocols: auth in `connection_init`, the resumable
//! `events` feed, the live ticket list (and how a lagging one catches up), and permission
//! refusals.

use std::collections::BTreeSet;
use std::time::Duration;

use api::auth::{Authentication, Caller, Scope};
use api::live::LiveHub;
use app::commands::{CommandContext, CommandService};
use chrono::Utc;
use domain::agent::Role;
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::ticket::{Channel, OpenTicket, Ticket, TicketCommand};
use domain::{AgentId, CustomerId, MessageId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, ActorKind, EventLog, Position};
use futures::StreamExt;
use serde_json::json;
use testkit::eventually;
use uuid::Uuid;

use crate::support::Server;
use crate::ws::{Frame, Protocol, WAIT, Ws};

const EVENTS: &str = "subscription($after: String, $prefix: String) {
    events(after: $after, streamPrefix: $prefix) {
        cursor position stream version type schemaVersion recordedAt actor { kind id } payload
    } }";

const START: &str = "00000000000000000000000000000000";

async fn open_ticket(log: &PostgresLog, customer: i64) -> Uuid {
    let commands = CommandService::new(log.clone());
    let id = Uuid::now_v7();
    let ctx = CommandContext::new(Actor::new(ActorKind::Customer, customer.to_string()));
    let command = TicketCommand::Open(OpenTicket {
        ticket_id: TicketId(id),
        customer: CustomerId(customer),
        category: None,
        channel: Channel::Telegram,
        first_message: CustomerMessage {
            message_id: MessageId(Uuid::now_v7()),
            telegram_message_id: TelegramMessageId(1),
            reply_to: None,
            content: MessageContent::text("my order never came"),
        },
        at: Utc::now(),
    });
    commands
        .execute::<Ticket>(TicketId(id).stream(), &command, &ctx)
        .await
        .unwrap();
    id
}

async fn assign(server: &Server, ticket: Uuid, agent: Uuid) {
    let commands = CommandService::new(server.log.clone());
    let ctx = CommandContext::new(Actor::new(ActorKind::Agent, agent.to_string()));
    let command = TicketCommand::Assign {
        agent: AgentId(agent),
        by: AgentId(agent),
        at: Utc::now(),
    };
    commands
        .execute::<Ticket>(TicketId(ticket).stream(), &command, &ctx)
        .await
        .unwrap();
}

/// The cursors of ticket events after `after` once the log lets readers see events of at least
/// `tickets` ticket streams. (A reader sees an event only once every older transaction in the
/// cluster has ended, so under parallel tests a just-committed event may take a moment.)
async fn visible_ticket_cursors(server: &Server, after: Position, tickets: usize) -> Vec<String> {
    eventually(
        async || {
            let mut streams = std::collections::HashSet::new();
            let mut at = after;
            loop {
                let page = server.log.read_all(at, 1_000).await.unwrap();
                if page.events.is_empty() {
                    break;
                }
                at = page.next;
                streams.extend(
                    page.events
                        .iter()
                        .filter(|e| e.stream_id.starts_with("ticket-"))
                        .map(|e| e.stream_id.clone()),
                );
            }
            if streams.len() >= tickets {
                Ok(())
            } else {
                Err(format!(
                    "the log shows {} of {tickets} tickets",
                    streams.len()
                ))
            }
        },
        WAIT,
    )
    .await;
    ticket_cursors(server, after).await
}

async fn ticket_cursors(server: &Server, after: Position) -> Vec<String> {
    let mut cursors = Vec::new();
    let mut at = after;
    loop {
        let page = server.log.read_all(at, 1_000).await.unwrap();
        if page.events.is_empty() {
            return cursors;
        }
        at = page.next;
        cursors.extend(
            page.events
                .iter()
                .filter(|e| e.stream_id.starts_with("ticket-"))
                .map(|e| e.position.to_string()),
        );
    }
}

async fn receive_cursors(ws: &mut Ws, id: &str, count: usize) -> Vec<String> {
    let mut cursors = Vec::with_capacity(count);
    for _ in 0..count {
        let data = ws.data(id).await;
        let event = &data["events"];
        assert_eq!(event["cursor"], event["position"]);
        cursors.push(event["cursor"].as_str().unwrap().to_owned());
    }
    cursors
}

#[tokio::test]
async fn the_event_feed_resumes_after_a_cursor_with_no_gap_and_no_duplicate() {
    let server = Server::start("sub_resume").await;
    let admin = server.admin().await;
    for customer in 1..=3 {
        open_ticket(&server.log, customer).await;
    }
    let first = visible_ticket_cursors(&server, Position::START, 3).await;
    assert!(first.len() >= 3);

    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    ws.subscribe("1", EVENTS, json!({ "after": START, "prefix": "ticket-" }))
        .await;
    let received = receive_cursors(&mut ws, "1", first.len()).await;
    assert_eq!(received, first);
    ws.close().await;

    // While nobody listens, more happens.
    let last: Position = received.last().unwrap().parse().unwrap();
    for customer in 4..=5 {
        open_ticket(&server.log, customer).await;
    }
    let missed = visible_ticket_cursors(&server, last, 2).await;
    assert!(!missed.is_empty());

    // The legacy protocol resumes just as well.
    let mut ws = Ws::connect(&server, Protocol::Legacy, &admin.token).await;
    ws.subscribe(
        "2",
        EVENTS,
        json!({ "after": received.last().unwrap(), "prefix": "ticket-" }),
    )
    .await;
    assert_eq!(receive_cursors(&mut ws, "2", missed.len()).await, missed);
    ws.quiet(Duration::from_millis(300)).await;

    // Live events keep arriving on the resumed feed, each once.
    open_ticket(&server.log, 6).await;
    let live = visible_ticket_cursors(&server, missed.last().unwrap().parse().unwrap(), 1).await;
    assert_eq!(receive_cursors(&mut ws, "2", live.len()).await, live);
    ws.quiet(Duration::from_millis(300)).await;
    ws.stop("2").await;
    ws.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_event_feed_starts_from_the_beginning_or_from_now_and_refuses_a_cursor_beyond_the_end()
{
    let server = Server::start("sub_from").await;
    let admin = server.admin().await;
    let from = "subscription($from: EventsFrom, $prefix: String) {
        events(from: $from, streamPrefix: $prefix) { cursor position } }";
    for customer in 1..=3 {
        open_ticket(&server.log, customer).await;
    }
    let stored = visible_ticket_cursors(&server, Position::START, 3).await;

    // BEGINNING replays every stored event, in log order.
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    ws.subscribe(
        "begin",
        from,
        json!({ "from": "BEGINNING", "prefix": "ticket-" }),
    )
    .await;
    assert_eq!(
        receive_cursors(&mut ws, "begin", stored.len()).await,
        stored
    );
    ws.close().await;

    // NOW (the default) brings only events after the subscription started: the first one it
    // delivers is newer than everything stored before.
    let mut ws = Ws::connect(&server, Protocol::Legacy, &admin.token).await;
    ws.subscribe("now", from, json!({ "prefix": "ticket-" }))
        .await;
    let mut first_live = None;
    for warm_up in 0..50 {
        open_ticket(&server.log, 100 + warm_up).await;
        if let Ok(data) = tokio::time::timeout(Duration::from_millis(500), ws.data("now")).await {
            first_live = Some(data["events"]["cursor"].as_str().unwrap().to_owned());
            break;
        }
    }
    let first_live = first_live.expect("the feed delivers a new event");
    assert!(
        first_live.as_str() > stored.last().unwrap().as_str(),
        "{first_live} is not newer than the stored events"
    );
    ws.close().await;

    // A well-formed cursor beyond the last event (from another database, say) is refused.
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    let beyond = Position::from_parts(u64::from(u32::MAX) << 20, 1).to_string();
    ws.subscribe("beyond", EVENTS, json!({ "after": beyond }))
        .await;
    let refusal = loop {
        match ws.frame().await {
            Frame::Json(value) if value["id"] == "beyond" => break value,
            Frame::Json(_) => {}
            other => panic!("expected the refusal, got {other:?}"),
        }
    };
    // An `error` frame, or a result carrying errors: the protocols say either.
    let error = match refusal["type"].as_str() {
        Some("error") => &refusal["payload"][0],
        _ => &refusal["payload"]["errors"][0],
    };
    assert_eq!(error["extensions"]["code"], "VALIDATION", "{refusal}");
    assert_eq!(
        error["message"],
        "this cursor is beyond the end of the log: is it from another database?"
    );
    // The start of the log and a cursor it handed out are fine.
    ws.subscribe(
        "start",
        EVENTS,
        json!({ "after": START, "prefix": "ticket-" }),
    )
    .await;
    assert_eq!(receive_cursors(&mut ws, "start", 1).await, stored[..1]);
    ws.close().await;
    server.stop().await;
}

#[tokio::test]
async fn events_appended_while_a_subscriber_catches_up_arrive_exactly_once() {
    let server = Server::start("sub_catchup").await;
    let admin = server.admin().await;
    // More than one catch-up page.
    for customer in 0..300 {
        open_ticket(&server.log, 1_000 + customer).await;
    }
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    ws.subscribe("1", EVENTS, json!({ "after": null, "prefix": "ticket-" }))
        .await;
    // Without `after` the feed is live only; with START it replays: take the replay below.
    ws.stop("1").await;
    ws.subscribe("2", EVENTS, json!({ "after": START, "prefix": "ticket-" }))
        .await;
    let writer = {
        let log = server.log.clone();
        tokio::spawn(async move {
            for customer in 0..40 {
                open_ticket(&log, 5_000 + customer).await;
            }
        })
    };
    let mut received = Vec::new();
    // Take events until the writer is done and every written event has arrived.
    loop {
        let payload = ws.next("2").await;
        assert!(payload.get("errors").is_none(), "{payload:#}");
        received.push(
            payload["data"]["events"]["cursor"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        if writer.is_finished() {
            // Compared once readers see every ticket event stored: an event still held back
            // by an older transaction elsewhere on the server arrives after those read here.
            let all = ticket_cursors(&server, Position::START).await;
            let stored: i64 =
                sqlx::query_scalar("select count(*) from events where stream_id like 'ticket-%'")
                    .fetch_one(&server.pool)
                    .await
                    .unwrap();
            if received.len() >= all.len() && all.len() == usize::try_from(stored).unwrap() {
                assert_eq!(received, all, "every event once, in log order");
                break;
            }
        }
    }
    writer.await.unwrap();
    ws.quiet(Duration::from_millis(300)).await;
    ws.close().await;
    server.stop().await;
}

#[tokio::test]
async fn tickets_changed_delivers_a_changed_ticket_after_a_command() {
    let server = Server::start("sub_tickets").await;
    let admin = server.admin().await;
    let query = "subscription($filter: TicketsChangedFilter) {
        ticketsChanged(filter: $filter) { cursor inFilter ticket { ticketId status assigneeId } } }";
    let mut all = Ws::connect(&server, Protocol::Legacy, &admin.token).await;
    all.subscribe("all", query, json!({})).await;
    let mut unassigned = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    unassigned
        .subscribe("u", query, json!({ "filter": { "unassigned": true } }))
        .await;
    // The list is live from when the hub registers a subscriber (no cursor): open warm-up
    // tickets until both lists report one, so the ticket under test cannot race the subscribe.
    // Each list may go live at a different warm-up ticket; later warm-up changes still queued
    // are skipped by `change_of`.
    let (mut all_live, mut unassigned_live) = (false, false);
    for warm_up in 0..50 {
        open_ticket(&server.log, 1_000 + warm_up).await;
        let wait = Duration::from_millis(500);
        if !all_live {
            all_live = tokio::time::timeout(wait, all.data("all")).await.is_ok();
        }
        if !unassigned_live {
            unassigned_live = tokio::time::timeout(wait, unassigned.data("u"))
                .await
                .is_ok();
        }
        if all_live && unassigned_live {
            break;
        }
    }
    assert!(
        all_live && unassigned_live,
        "the subscriptions never went live"
    );

    let ticket = open_ticket(&server.log, 77).await;
    for (ws, id) in [(&mut all, "all"), (&mut unassigned, "u")] {
        let change = change_of(ws, id, ticket).await;
        assert_eq!(change["ticket"]["status"], "NEW");
        assert_eq!(change["inFilter"], true);
    }

    let agent = Uuid::parse_str(&admin.id).unwrap();
    assign(&server, ticket, agent).await;
    let change = change_of(&mut all, "all", ticket).await;
    assert_eq!(change["ticket"]["assigneeId"], admin.id.as_str());
    assert_eq!(change["inFilter"], true);
    // It left the unassigned list: that list hears so once.
    let change = change_of(&mut unassigned, "u", ticket).await;
    assert_eq!(change["inFilter"], false);
    assert_eq!(change["ticket"]["ticketId"], ticket.to_string());

    // Another ticket joins the unassigned list, then leaves it when assigned. (Changes that
    // land in one batch are coalesced: the list sees the row as it is after the batch.)
    let other = open_ticket(&server.log, 78).await;
    let joined = change_of(&mut unassigned, "u", other).await;
    assert_eq!(joined["inFilter"], true);
    assign(&server, other, agent).await;
    let gone = change_of(&mut unassigned, "u", other).await;
    assert_eq!(gone["inFilter"], false);
    unassigned.quiet(Duration::from_millis(300)).await;
    all.close().await;
    unassigned.close().await;
    server.stop().await;
}

/// Opens warm-up tickets (customers from `first_customer` on) until the ticket list `id`
/// reports one: the list is live from when the hub registers it, with no cursor to start from.
async fn until_live(server: &Server, ws: &mut Ws, id: &str, first_customer: i64) {
    for warm_up in 0..50 {
        open_ticket(&server.log, first_customer + warm_up).await;
        if tokio::time::timeout(Duration::from_millis(500), ws.data(id))
            .await
            .is_ok()
        {
            return;
        }
    }
    panic!("the list {id} never went live");
}

#[tokio::test]
async fn tickets_changed_reports_a_shown_ticket_leaving_though_it_never_sent_it() {
    let server = Server::start("sub_showing").await;
    let admin = server.admin().await;
    let agent = Uuid::parse_str(&admin.id).unwrap();
    // The panel loaded these before it subscribed. A probe list sees the hub publish them, so
    // the list under test, subscribed after, never gets them as joining.
    let mut probe = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    probe
        .subscribe(
            "p",
            "subscription { ticketsChanged { ticket { ticketId } } }",
            json!({}),
        )
        .await;
    until_live(&server, &mut probe, "p", 2_000).await;
    let shown = open_ticket(&server.log, 10).await;
    let not_shown = open_ticket(&server.log, 11).await;
    change_of(&mut probe, "p", not_shown).await;
    probe.close().await;

    let query = "subscription($showing: [ID!]) {
        ticketsChanged(filter: {unassigned: true}, showing: $showing) {
            cursor inFilter ticket { ticketId } } }";
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    ws.subscribe("u", query, json!({ "showing": [shown] }))
        .await;
    until_live(&server, &mut ws, "u", 1_000).await;

    // Assigned, the shown ticket leaves the unassigned list, and the list says so.
    assign(&server, shown, agent).await;
    let left = change_of(&mut ws, "u", shown).await;
    assert_eq!(left["inFilter"], false, "{left}");
    // The ticket the panel does not show leaves silently: the next change is a new ticket.
    assign(&server, not_shown, agent).await;
    let next = open_ticket(&server.log, 12).await;
    let change = ws.data("u").await["ticketsChanged"].clone();
    assert_eq!(change["ticket"]["ticketId"], next.to_string(), "{change}");
    assert_eq!(change["inFilter"], true);

    // Bounded and checked.
    let too_many: Vec<String> = (0..101).map(|_| Uuid::now_v7().to_string()).collect();
    ws.subscribe("big", query, json!({ "showing": too_many }))
        .await;
    assert_eq!(ws.error_code("big").await, "VALIDATION");
    ws.subscribe("bad", query, json!({ "showing": ["nope"] }))
        .await;
    assert_eq!(ws.error_code("bad").await, "VALIDATION");
    ws.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_missing_or_bad_token_closes_the_connection_per_protocol() {
    let server = Server::start("sub_auth").await;
    for token in [None, Some("Bearer not-a-token")] {
        let init = match token {
            Some(token) => {
                json!({ "type": "connection_init", "payload": { "authorization": token } })
            }
            None => json!({ "type": "connection_init", "payload": {} }),
        };
        let mut ws = Ws::open(&server, Protocol::TransportWs).await;
        ws.send(init.clone()).await;
        match ws.frame().await {
            Frame::Closed(code) => assert_eq!(code, Some(4403), "graphql-transport-ws: Forbidden"),
            Frame::Json(value) => panic!("expected a close, got {value}"),
        }

        let mut ws = Ws::open(&server, Protocol::Legacy).await;
        ws.send(init).await;
        match ws.frame().await {
            Frame::Json(value) => assert_eq!(value["type"], "connection_error", "{value}"),
            Frame::Closed(code) => panic!("graphql-ws answers connection_error, closed {code:?}"),
        }
        match ws.frame().await {
            Frame::Closed(code) => {
                assert_eq!(code, Some(4403), "graphql-ws: a close frame follows")
            }
            Frame::Json(value) => panic!("expected a close, got {value}"),
        }
    }
    server.stop().await;
}

/// A socket reads a client's data in small pieces, so a message much larger than one read
/// must still arrive whole; one larger than the request body limit ends the socket, and the
/// server goes on serving others.
#[tokio::test]
async fn a_socket_takes_messages_up_to_the_body_limit_and_closes_on_a_larger_one() {
    let mut config = crate::support::test_config();
    config.limits.max_body_bytes = 64 * 1024;
    let server = Server::start_with("sub_sizes", config).await;
    let admin = server.admin().await;
    // A query padded with a comment to `bytes` in all.
    let padded = |bytes: usize| format!("{{ __typename }}\n#{}", "x".repeat(bytes - 17));
    for protocol in [Protocol::TransportWs, Protocol::Legacy] {
        let mut ws = Ws::connect(&server, protocol, &admin.token).await;
        ws.subscribe("big", &padded(60 * 1024), json!({})).await;
        assert_eq!(ws.data("big").await["__typename"], "Query");
        ws.subscribe("too-big", &padded(80 * 1024), json!({})).await;
        let code = loop {
            match ws.frame().await {
                Frame::Closed(code) => break code,
                // The end of the first operation may come first.
                Frame::Json(value) if value["id"] == "big" => {}
                Frame::Json(value) => {
                    panic!("a message above the limit closes the socket: {value}")
                }
            }
        };
        assert_eq!(code, Some(1009), "closed as too big over {protocol:?}");
    }
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    ws.subscribe("small", "{ __typename }", json!({})).await;
    assert_eq!(ws.data("small").await["__typename"], "Query");
    server.stop().await;
}

/// Reads frames until the server closes the socket, returning its close code; data frames of
/// the open subscription may come first.
async fn closed_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match ws.frame().await {
            Frame::Closed(code) => return code,
            Frame::Json(value) => assert!(
                matches!(value["type"].as_str(), Some("next" | "data")),
                "only data before the close, got {value}"
            ),
        }
    }
}

#[tokio::test]
async fn an_open_socket_closes_once_its_credential_ends() {
    let mut config = crate::support::test_config();
    config.limits.socket_credential_check = Duration::from_millis(200);
    let server = Server::start_with("sub_ended", config).await;
    let admin = server.admin().await;
    let agent = server.agent(Role::Agent, "worker@example.com").await;
    let token = server.api_token(&admin, &["events:read"]).await;
    let events = "subscription($after: String) { events(after: $after) { cursor } }";

    // A socket whose credential stays good stays open across several checks.
    let mut admin_ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    admin_ws.subscribe("1", events, json!({})).await;

    // Deactivating the agent closes the agent's socket, over either protocol.
    let mut agent_ws = Ws::connect(&server, Protocol::Legacy, &agent.token).await;
    agent_ws
        .subscribe("1", "subscription { ticketsChanged { cursor } }", json!({}))
        .await;
    let mut token_ws = Ws::connect(&server, Protocol::TransportWs, &token).await;
    token_ws.subscribe("1", events, json!({})).await;
    // Not a wait for something to happen: the sockets must stay open across three credential
    // checks (200 ms apart) while nothing changed, and no condition shows a check that passed.
    tokio::time::sleep(Duration::from_millis(600)).await;
    server
        .ok(
            &admin.token,
            "mutation($id: ID!) { deactivateAgent(input: {agentId: $id}) { position } }",
            json!({"id": agent.id}),
        )
        .await;
    assert_eq!(closed_code(&mut agent_ws).await, Some(4403));

    // Revoking the API token closes its socket.
    let tokens = server
        .ok(&admin.token, "{ apiTokens { apiTokenId } }", json!({}))
        .await;
    server
        .ok(
            &admin.token,
            "mutation($id: ID!) { revokeApiToken(input: {apiTokenId: $id}) { revoked } }",
            json!({"id": tokens["apiTokens"][0]["apiTokenId"]}),
        )
        .await;
    assert_eq!(closed_code(&mut token_ws).await, Some(4403));

    // (Narrowing an agent's categories closes nothing: each item a subscription delivers is
    // checked against the categories of the moment, see `authz.rs`.)

    // Meanwhile the admin's socket saw every check pass and still serves: a new event arrives.
    let (_, position) = server.customer_writes(7_001, None, "still there?").await;
    loop {
        let item = admin_ws.data("1").await;
        let cursor: Position = item["events"]["cursor"].as_str().unwrap().parse().unwrap();
        if cursor >= position {
            break;
        }
    }
    admin_ws.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_event_feed_is_refused_without_permission_or_with_a_bad_cursor() {
    let server = Server::start("sub_forbidden").await;
    let admin = server.admin().await;
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &agent.token).await;
    ws.subscribe("1", EVENTS, json!({ "after": START })).await;
    assert_eq!(ws.error_code("1").await, "FORBIDDEN");
    ws.close().await;

    let mut ws = Ws::connect(&server, Protocol::Legacy, &admin.token).await;
    ws.subscribe("1", EVENTS, json!({ "after": "yesterday" }))
        .await;
    assert_eq!(ws.error_code("1").await, "VALIDATION");
    ws.close().await;
    server.stop().await;
}

/// The next change of `ticket` on list `id`, skipping changes of warm-up tickets.
async fn change_of(ws: &mut Ws, id: &str, ticket: Uuid) -> serde_json::Value {
    loop {
        let change = ws.data(id).await["ticketsChanged"].clone();
        if change["ticket"]["ticketId"] == ticket.to_string() {
            return change;
        }
    }
}

/// A ticket list over a hub whose channels hold one batch, executed on the schema so the test
/// decides when the subscription reads (over a socket the server reads as fast as it can).
struct TinyHubList {
    hub: LiveHub,
    list: futures::stream::BoxStream<'static, async_graphql::Response>,
}

impl TinyHubList {
    async fn start(server: &Server, filter: serde_json::Value) -> TinyHubList {
        let state = api::AppState::new(
            CommandService::new(server.log.clone()),
            projections::models::all(),
            crate::support::test_config(),
        )
        .await
        .unwrap();
        let hub = LiveHub::with_capacity(server.log.clone(), 1);
        let schema = api::graphql::schema(api::graphql::Api {
            live: hub.clone(),
            ..(*state.api).clone()
        });
        let caller = Caller::Integrator {
            token_id: Uuid::now_v7(),
            scopes: BTreeSet::from([Scope::TicketsRead]),
            created_by: domain::AgentId::from_uuid(Uuid::now_v7()),
        };
        let request = async_graphql::Request::new(
            "subscription($filter: TicketsChangedFilter) {
                ticketsChanged(filter: $filter) { cursor inFilter ticket { ticketId status } } }",
        )
        .variables(async_graphql::Variables::from_json(
            json!({ "filter": filter }),
        ))
        .data(Authentication::Authenticated(caller));
        TinyHubList {
            hub,
            list: schema.execute_stream(request),
        }
    }

    /// The next change, if one comes within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<serde_json::Value> {
        let response = tokio::time::timeout(wait, self.list.next()).await.ok()??;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        Some(response.data.into_json().unwrap()["ticketsChanged"].clone())
    }
}

/// Waits until `receiver` has seen a batch after `after` holding `ticket`.
async fn published(
    receiver: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<api::live::TicketBatch>>,
    after: Position,
    ticket: Uuid,
) {
    loop {
        let batch = tokio::time::timeout(WAIT, receiver.recv())
            .await
            .expect("the hub never published the change");
        match batch {
            Ok(batch) if batch.position > after && batch.tickets.iter().any(|t| t.id == ticket) => {
                return;
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(closed) => panic!("{closed}"),
        }
    }
}

#[tokio::test]
async fn a_lagging_ticket_list_catches_up_from_the_log_instead_of_skipping_changes() {
    let server = Server::start("sub_lag").await;
    let admin = server.admin().await;
    let mut list = TinyHubList::start(&server, json!({ "unassigned": true })).await;

    // Open tickets until the list shows one: then its receiver exists and is drained.
    let mut warm_ups = Vec::new();
    let mut first = None;
    for customer in 1..=50 {
        warm_ups.push(open_ticket(&server.log, customer).await);
        if let Some(change) = list.next(Duration::from_millis(500)).await {
            first = Some(change);
            break;
        }
    }
    let first = first.expect("the list never went live");
    assert_eq!(first["inFilter"], true);
    let shown: Uuid = first["ticket"]["ticketId"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let shown_at: Position = first["cursor"].as_str().unwrap().parse().unwrap();

    // Three batches go by while the list does not read: with room for one, it lags.
    let (_, mut probe) = list.hub.tickets().await.unwrap();
    assign(&server, shown, Uuid::parse_str(&admin.id).unwrap()).await;
    published(&mut probe, shown_at, shown).await;
    let mut opened = Vec::new();
    for customer in 100..102 {
        let ticket = open_ticket(&server.log, customer).await;
        published(&mut probe, shown_at, ticket).await;
        opened.push(ticket);
    }

    // Once it reads again: the shown ticket left the list, the new ones joined, each once.
    let mut left = false;
    let mut joined = std::collections::HashSet::new();
    while !(left && joined.len() == opened.len()) {
        let change = list
            .next(WAIT)
            .await
            .unwrap_or_else(|| panic!("missed changes: left {left}, joined {joined:?}"));
        let ticket: Uuid = change["ticket"]["ticketId"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if ticket == shown {
            assert_eq!(change["inFilter"], false, "{change}");
            assert!(!left, "the shown ticket left twice");
            left = true;
        } else if opened.contains(&ticket) {
            assert_eq!(change["inFilter"], true, "{change}");
            assert_eq!(change["ticket"]["status"], "NEW");
            assert!(joined.insert(ticket), "{ticket} joined twice");
        } else {
            assert!(warm_ups.contains(&ticket), "a stranger: {change}");
        }
    }

    // Live again, without replaying the batch that waited in the channel.
    let later = open_ticket(&server.log, 200).await;
    let change = list
        .next(WAIT)
        .await
        .expect("the list stopped after catching up");
    assert_eq!(change["ticket"]["ticketId"], later.to_string());
    assert_eq!(change["inFilter"], true);
    server.stop().await;
}
