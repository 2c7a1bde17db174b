//! Contention is not a refusal: replies that race on one busy ticket all go in, or (when
//! others kept winning for the whole retry budget) answer `CONTENDED` with `retryAfter`,
//! never `CONFLICT`, which stays for what will fail again as sent (a closed ticket).

use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};

use crate::support::{Server, code};

const REPLY: &str = "mutation($input: ReplyToTicketInput!) {
    replyToTicket(input: $input) { messageId } }";

/// Sends `count` replies to `ticket` at once; returns the bodies.
async fn burst(server: &Server, token: &str, ticket: uuid::Uuid, count: usize) -> Vec<Value> {
    join_all((0..count).map(|n| {
        server.gql(
            Some(token),
            REPLY,
            json!({ "input": { "ticketId": ticket, "text": format!("reply {n}") } }),
        )
    }))
    .await
}

/// The number of replies the log holds.
async fn replies_logged(server: &Server) -> i64 {
    sqlx::query_scalar("select count(*) from events where event_type = 'ticket.agent_replied'")
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

/// Asserts each body is a reply or `CONTENDED` (with `retryAfter`); returns how many went in.
fn tally(bodies: &[Value]) -> (usize, usize) {
    let (mut written, mut contended) = (0, 0);
    for body in bodies {
        match code(body) {
            None => {
                assert!(
                    body["data"]["replyToTicket"]["messageId"].is_string(),
                    "{body:#}"
                );
                written += 1;
            }
            Some("CONTENDED") => {
                let retry_after = body["errors"][0]["extensions"]["retryAfter"].as_u64();
                assert!(retry_after.is_some_and(|s| s > 0), "{body:#}");
                contended += 1;
            }
            Some(other) => panic!("a racing reply answered {other}: {body:#}"),
        }
    }
    (written, contended)
}

#[tokio::test]
async fn replies_racing_on_one_ticket_all_go_in_or_answer_contended_never_conflict() {
    let server = Server::start("contention").await;
    let admin = server.admin().await;
    let (ticket, _) = server.customer_writes(9_400_001, None, "busy").await;
    let mut written = 0;
    for _ in 0..4 {
        let bodies = burst(&server, &admin.token, ticket, 40).await;
        written += tally(&bodies).0;
    }
    assert_eq!(
        replies_logged(&server).await,
        i64::try_from(written).unwrap()
    );
    // A permanent refusal still says CONFLICT.
    server
        .ok(
            &admin.token,
            "mutation($id: ID!) {
                changeTicketStatus(input: {ticketId: $id, status: CLOSED}) { ticketId } }",
            json!({ "id": ticket }),
        )
        .await;
    let body = burst(&server, &admin.token, ticket, 1).await.remove(0);
    assert_eq!(code(&body), Some("CONFLICT"), "{body:#}");
    server.stop().await;
}

#[tokio::test]
async fn with_no_retry_budget_a_lost_race_answers_contended_with_retry_after() {
    let server = Server::start_configured("contended", |settings| {
        settings.command_retry_budget = Duration::ZERO;
    })
    .await;
    let admin = server.admin().await;
    let (ticket, _) = server.customer_writes(9_400_101, None, "busy").await;
    let (mut written, mut contended) = (0, 0);
    // Replies sent together race; without a budget a lost race is final at once.
    for _ in 0..20 {
        let bodies = burst(&server, &admin.token, ticket, 30).await;
        let (w, c) = tally(&bodies);
        written += w;
        contended += c;
        if contended > 0 {
            break;
        }
    }
    assert!(contended > 0, "no reply lost a race in 20 bursts of 30");
    assert_eq!(
        replies_logged(&server).await,
        i64::try_from(written).unwrap()
    );
    server.stop().await;
}
