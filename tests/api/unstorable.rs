//! Text Postgres cannot store (a NUL character) is refused with `VALIDATION` wherever a client
//! sends it, naming the argument, and a client sending it costs other clients nothing: their
//! appends are never refused or slowed down with its requests.

use serde_json::{Value, json};

use crate::support::{Server, code};
use crate::ws::{Frame, Protocol, Ws};

const REPLY: &str = "mutation($input: ReplyToTicketInput!) {
    replyToTicket(input: $input) { messageId } }";

/// The code and message of a refused request.
fn refusal(body: &Value) -> (String, String) {
    let code = code(body).unwrap_or_else(|| panic!("expected an error: {body:#}"));
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    (code.to_owned(), message.to_owned())
}

#[tokio::test]
async fn a_nul_in_any_argument_is_refused_as_validation_naming_the_argument() {
    let server = Server::start("nul_validation").await;
    let admin = server.admin().await;
    let (ticket, _) = server.customer_writes(7_100_001, None, "hello").await;
    let ticket = ticket.to_string();
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "a reply",
            REPLY,
            json!({"input": {"ticketId": ticket, "text": "a\u{0}b"}}),
        ),
        (
            "a note",
            "mutation($input: AddInternalNoteInput!) {
                addInternalNote(input: $input) { messageId } }",
            json!({"input": {"ticketId": ticket, "text": "\u{0}"}}),
        ),
        (
            "a tag",
            "mutation($input: TagTicketInput!) { tagTicket(input: $input) { ticketId } }",
            json!({"input": {"ticketId": ticket, "tag": "vip\u{0}"}}),
        ),
        (
            "a template",
            "mutation($input: CreateTemplateInput!) {
                createTemplate(input: $input) { templateId } }",
            json!({"input": {"title": "Hi", "text": "Hello \u{0} there"}}),
        ),
        (
            "a ticket search",
            "query($filter: TicketFilter) { tickets(filter: $filter) { totalCount } }",
            json!({"filter": {"search": "par\u{0}cel"}}),
        ),
        (
            "a tag filter",
            "query($filter: TicketFilter) { tickets(filter: $filter) { totalCount } }",
            json!({"filter": {"tag": "\u{0}"}}),
        ),
        (
            "a customer search",
            "query($search: String) { customers(search: $search) { totalCount } }",
            json!({"search": "An\u{0}na"}),
        ),
        (
            "an email at sign-in",
            "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
            json!({"input": {"email": "admin@example.com\u{0}", "password": "x"}}),
        ),
        (
            "a literal in the document",
            r#"{ tickets(filter: {search: "par\u0000cel"}) { totalCount } }"#,
            json!({}),
        ),
    ];
    for (what, query, variables) in cases {
        let body = server.gql(Some(&admin.token), query, variables).await;
        let (code, message) = refusal(&body);
        assert_eq!(code, "VALIDATION", "{what}: {body:#}");
        assert!(
            message.contains("NUL character (U+0000)"),
            "{what}: {message}"
        );
        assert!(body["data"].is_null(), "{what}: nothing ran: {body:#}");
    }
    // Where it is, in words the integrator can act on.
    let body = server
        .gql(
            Some(&admin.token),
            REPLY,
            json!({"input": {"ticketId": ticket, "text": "a\u{0}b"}}),
        )
        .await;
    assert!(
        refusal(&body)
            .1
            .starts_with("the variable $input at `text` holds"),
        "{body:#}"
    );
    // Nothing of it reached the log.
    let replies: i64 = sqlx::query_scalar(
        "select count(*) from events where event_type in \
         ('ticket.agent_replied', 'ticket.note_added', 'ticket.tag_added')",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(replies, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_client_sending_nul_replies_refuses_none_of_the_replies_other_clients_send_meanwhile() {
    const CLIENTS: usize = 8;
    const REPLIES: usize = 15;
    let owned = Server::start("nul_batches").await;
    let server = &owned;
    let admin = server.admin().await;
    let mut tickets = Vec::new();
    for n in 0..=CLIENTS {
        let customer = 7_200_000 + i64::try_from(n).unwrap();
        tickets.push(server.customer_writes(customer, None, "hello").await.0);
    }
    let token = admin.token.as_str();
    let reply = |ticket: uuid::Uuid, text: String| async move {
        server
            .gql(
                Some(token),
                REPLY,
                json!({"input": {"ticketId": ticket, "text": text}}),
            )
            .await
    };
    // The bad client sends NUL replies all along, as fast as it gets answers.
    let bad_ticket = tickets[CLIENTS];
    let bad = async {
        let mut codes = Vec::new();
        for n in 0..REPLIES * 2 {
            let body = reply(bad_ticket, format!("bad {n}\u{0}")).await;
            codes.push(code(&body).unwrap_or("none").to_owned());
        }
        codes
    };
    let good = futures::future::join_all(tickets[..CLIENTS].iter().map(|&ticket| async move {
        let mut bodies = Vec::new();
        for n in 0..REPLIES {
            bodies.push(reply(ticket, format!("good {n}")).await);
        }
        bodies
    }));
    let (bad_codes, good_bodies) = tokio::join!(bad, good);
    assert!(
        bad_codes.iter().all(|code| code == "VALIDATION"),
        "{bad_codes:?}"
    );
    for bodies in &good_bodies {
        for body in bodies {
            assert!(
                body.get("errors").is_none(),
                "a good reply failed: {body:#}"
            );
            assert!(body["data"]["replyToTicket"]["messageId"].is_string());
        }
    }
    let replies: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'ticket.agent_replied'")
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(replies, i64::try_from(CLIENTS * REPLIES).unwrap());
    owned.stop().await;
}

#[tokio::test]
async fn a_nul_in_a_subscription_argument_is_refused_as_validation_over_both_protocols() {
    let server = Server::start("nul_ws").await;
    let admin = server.admin().await;
    for protocol in [Protocol::TransportWs, Protocol::Legacy] {
        let mut ws = Ws::connect(&server, protocol, &admin.token).await;
        ws.subscribe(
            "variable",
            "subscription($id: ID) { messageAdded(ticketId: $id) { __typename } }",
            json!({"id": "a\u{0}"}),
        )
        .await;
        assert_eq!(
            ws.error_code("variable").await,
            "VALIDATION",
            "{protocol:?}"
        );
        ws.subscribe(
            "literal",
            r#"subscription { ticketsChanged(showing: ["\u0000"]) { __typename } }"#,
            json!({}),
        )
        .await;
        let (code, message) = ws_refusal(&mut ws, "literal").await;
        assert_eq!(code, "VALIDATION", "{protocol:?}");
        assert!(
            message.starts_with("the argument `showing` of `ticketsChanged` at `[0]` holds"),
            "{message}"
        );
        // The socket goes on serving.
        ws.subscribe("good", "{ __typename }", json!({})).await;
        assert_eq!(ws.data("good").await["__typename"], "Query");
        ws.close().await;
    }
    server.stop().await;
}

/// The code and message of the error that ends operation `id` (an `error` message, or a
/// result carrying errors).
async fn ws_refusal(ws: &mut Ws, id: &str) -> (String, String) {
    loop {
        match ws.frame().await {
            Frame::Json(value) if value["id"] == id => {
                let errors = match value["type"].as_str() {
                    Some("error") => value["payload"].clone(),
                    _ => value["payload"]["errors"].clone(),
                };
                let first = &errors[0];
                return (
                    first["extensions"]["code"].as_str().unwrap().to_owned(),
                    first["message"].as_str().unwrap().to_owned(),
                );
            }
            Frame::Json(_) => {}
            other => panic!("expected an error for {id}, got {other:?}"),
        }
    }
}
