//! The panel's own audit trail: sign-ins (and refused ones, with the address), sign-outs and
//! API tokens created and revoked are events of `audit-…` streams, never with a password, a
//! token or an email typed in a refused sign-in, and admins and auditors follow them in the
//! same `events` feed as everything else.

use domain::agent::Role;
use domain::{AgentId, AuditStream, StreamId};
use eventlog::{Direction, EventLog};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{PASSWORD, Server, code};
use crate::ws::{Protocol, Ws};

/// The events of an audit stream: (type, payload), oldest first.
async fn trail(server: &Server, stream: AuditStream) -> Vec<(String, Value)> {
    match server
        .log
        .read_stream(
            &StreamId::Audit(stream).name(),
            0,
            Direction::Forwards,
            1_000,
        )
        .await
    {
        Ok(events) => events
            .into_iter()
            .map(|event| (event.event_type, event.payload))
            .collect(),
        Err(eventlog::Error::StreamNotFound { .. }) => Vec::new(),
        Err(other) => panic!("{other}"),
    }
}

fn agent_stream(id: &str) -> AuditStream {
    AuditStream::Agent(AgentId::from_uuid(id.parse::<Uuid>().unwrap()))
}

async fn login(server: &Server, email: &str, password: &str) -> Value {
    server
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) {
                accessToken } }",
            json!({ "e": email, "p": password }),
        )
        .await
}

#[tokio::test]
async fn sign_ins_refusals_and_sign_outs_are_recorded_with_the_address_and_no_secret() {
    let server = Server::start("trail_sign_in").await;
    let agent = server.agent(Role::Agent, "agent@test.invalid").await;
    let stream = agent_stream(&agent.id);

    // Three wrong passwords from one address within a minute: the first is recorded, the
    // others are counted for the next record.
    for guess in ["guess-one-1234", "guess-two-1234", "guess-three-1234"] {
        let refused = login(&server, "agent@test.invalid", guess).await;
        assert_eq!(code(&refused), Some("UNAUTHENTICATED"), "{refused:#}");
    }
    // An email of no account goes to the anonymous stream, without the email.
    let refused = login(&server, "nobody@test.invalid", "secret-typed-here").await;
    assert_eq!(code(&refused), Some("UNAUTHENTICATED"));
    let signed_out = server
        .ok(
            &agent.token,
            "mutation($r: String!) { logout(input: {refreshToken: $r}) { __typename } }",
            json!({ "r": agent.refresh }),
        )
        .await;
    assert!(signed_out["logout"].is_object(), "{signed_out:#}");

    let events = trail(&server, stream).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "audit.signed_in",
            "audit.sign_in_refused",
            "audit.signed_out"
        ],
        "{events:#?}"
    );
    let signed_in = &events[0].1;
    assert_eq!(signed_in["agent"], agent.id.as_str());
    assert_eq!(signed_in["address"], "127.0.0.1");
    assert_eq!(signed_in["second_factor"], false);
    let refusal = &events[1].1;
    assert_eq!(refusal["agent"], agent.id.as_str());
    assert_eq!(refusal["address"], "127.0.0.1");
    assert_eq!(refusal["reason"], "wrong_credentials");
    assert_eq!(refusal["attempts"], 1);
    assert_eq!(events[2].1["everywhere"], false);

    let anonymous = trail(&server, AuditStream::Anonymous).await;
    assert_eq!(anonymous.len(), 1, "{anonymous:#?}");
    assert_eq!(anonymous[0].1["agent"], Value::Null);
    assert_eq!(anonymous[0].1["address"], "127.0.0.1");

    // No password, guess, token or typed email anywhere in the log.
    let payloads: Vec<(String,)> = sqlx::query_as("select payload::text from events")
        .fetch_all(&server.pool)
        .await
        .unwrap();
    for secret in [
        PASSWORD,
        "guess-one-1234",
        "secret-typed-here",
        "nobody@test.invalid",
        agent.token.as_str(),
        agent.refresh.as_str(),
    ] {
        assert!(
            payloads.iter().all(|(payload,)| !payload.contains(secret)),
            "{secret} is in the log"
        );
    }

    // Signing out everywhere is recorded as such.
    let again = server.login("agent@test.invalid", PASSWORD).await;
    server
        .ok(
            &again.token,
            "mutation { logout(input: {everywhere: true}) { __typename } }",
            json!({}),
        )
        .await;
    let events = trail(&server, stream).await;
    let last = events.last().unwrap();
    assert_eq!(last.0, "audit.signed_out");
    assert_eq!(last.1["everywhere"], true);
    server.stop().await;
}

#[tokio::test]
async fn a_flood_of_refused_sign_ins_records_one_event_per_address_and_account() {
    // The throttle of the account at this address holds back all but the first three.
    let mut config = crate::support::test_config();
    config.auth.logins_per_account_per_minute = 3;
    let server = Server::start_with("trail_flood", config).await;
    let agent = server.agent(Role::Agent, "flooded@test.invalid").await;
    let mut rate_limited = 0;
    for n in 0..12 {
        let refused = login(
            &server,
            "flooded@test.invalid",
            &format!("wrong-guess-{n:04}"),
        )
        .await;
        match code(&refused) {
            Some("RATE_LIMITED") => rate_limited += 1,
            Some("UNAUTHENTICATED") => {}
            other => panic!("{other:?}: {refused:#}"),
        }
    }
    assert!(rate_limited > 0, "the throttle held some of them back");
    let refusals: Vec<_> = trail(&server, agent_stream(&agent.id))
        .await
        .into_iter()
        .filter(|(t, _)| t == "audit.sign_in_refused")
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    server.stop().await;
}

#[tokio::test]
async fn api_tokens_created_and_revoked_are_recorded_without_the_token_and_auditors_follow_the_trail()
 {
    let server = Server::start("trail_tokens").await;
    let admin = server.admin().await;
    let auditor = server.agent(Role::Auditor, "auditor@test.invalid").await;
    let created = server
        .ok(
            &admin.token,
            "mutation { createApiToken(input: {name: \"CRM\", scopes: [\"tickets:read\"]}) {
                apiTokenId token } }",
            json!({}),
        )
        .await["createApiToken"]
        .clone();
    let id = created["apiTokenId"].as_str().unwrap();
    let secret = created["token"].as_str().unwrap();
    let revoked = server
        .ok(
            &admin.token,
            "mutation($id: ID!) { revokeApiToken(input: {apiTokenId: $id}) { revoked } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(revoked["revokeApiToken"]["revoked"], true);

    let events = trail(&server, agent_stream(&admin.id)).await;
    let tokens: Vec<&(String, Value)> = events
        .iter()
        .filter(|(t, _)| t.starts_with("audit.api_token"))
        .collect();
    assert_eq!(tokens.len(), 2, "{events:#?}");
    assert_eq!(tokens[0].0, "audit.api_token_created");
    assert_eq!(tokens[0].1["token_id"], id);
    assert_eq!(tokens[0].1["name"], "CRM");
    assert_eq!(tokens[0].1["scopes"], json!(["tickets:read"]));
    assert_eq!(tokens[0].1["by"], admin.id.as_str());
    assert_eq!(tokens[1].0, "audit.api_token_revoked");
    assert_eq!(tokens[1].1["token_id"], id);
    let payloads: Vec<(String,)> = sqlx::query_as("select payload::text from events")
        .fetch_all(&server.pool)
        .await
        .unwrap();
    assert!(payloads.iter().all(|(p,)| !p.contains(secret)));

    // An auditor follows the audit streams in the events feed.
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &auditor.token).await;
    ws.subscribe(
        "trail",
        "subscription { events(from: BEGINNING, streamPrefix: \"audit-\") { stream type } }",
        json!({}),
    )
    .await;
    // The admin's and the auditor's sign-ins, the token's creation and revocation.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let item = ws.data("trail").await;
        seen.push(item["events"]["type"].as_str().unwrap().to_owned());
    }
    for expected in [
        "audit.signed_in",
        "audit.api_token_created",
        "audit.api_token_revoked",
    ] {
        assert!(seen.iter().any(|t| t == expected), "{expected} in {seen:?}");
    }
    ws.close().await;
    // An agent may not follow the feed.
    let agent = server.agent(Role::Agent, "agent@test.invalid").await;
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &agent.token).await;
    ws.subscribe(
        "trail",
        "subscription { events(from: BEGINNING, streamPrefix: \"audit-\") { type } }",
        json!({}),
    )
    .await;
    assert_eq!(ws.error_code("trail").await, "FORBIDDEN");
    ws.close().await;
    server.stop().await;
}
