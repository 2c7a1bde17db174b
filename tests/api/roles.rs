//! Permissions follow the caller's role as the log has it now, never the role written in an
//! access token: a role changed or an agent deactivated where no session of theirs was ended
//! (another instance, a tool writing to the log) applies to the still-valid old token at once,
//! over HTTP and on an open WebSocket, and `me` shows the same role the checks use.

use app::commands::{CommandContext, CommandService};
use chrono::Utc;
use domain::agent::{Agent as AgentAggregate, AgentCommand, Role};
use domain::{AgentId, StreamId};
use eventlog::Actor;
use serde_json::json;

use crate::support::{Agent, Server, code};
use crate::ws::{Protocol, Ws};

const API_TOKENS: &str = "{ apiTokens { apiTokenId } }";
const CREATE_CATEGORY: &str = "mutation($name: String!) {
    createCategory(input: {name: $name}) { categoryId } }";
const ME: &str = "{ me { role } }";

fn agent_id(agent: &Agent) -> AgentId {
    AgentId::from_uuid(agent.id.parse().unwrap())
}

/// Writes `command` on `agent`'s stream straight to the log, as another instance or a tool
/// would: no session of the agent is ended here.
async fn in_the_log(server: &Server, agent: &Agent, command: AgentCommand) {
    CommandService::new(server.log.clone())
        .execute::<AgentAggregate>(
            StreamId::Agent(agent_id(agent)),
            &command,
            &CommandContext::new(Actor::system("test")),
        )
        .await
        .unwrap();
}

async fn change_role(server: &Server, by: &Agent, agent: &Agent, role: Role) {
    let command = AgentCommand::ChangeRole {
        role,
        by: agent_id(by),
        at: Utc::now(),
    };
    in_the_log(server, agent, command).await;
}

/// The code `token`'s admin query and admin mutation get (`None`: allowed).
async fn admin_codes(server: &Server, token: &str, name: &str) -> (Option<String>, Option<String>) {
    let query = server.gql(Some(token), API_TOKENS, json!({})).await;
    let mutation = server
        .gql(Some(token), CREATE_CATEGORY, json!({ "name": name }))
        .await;
    (
        code(&query).map(str::to_owned),
        code(&mutation).map(str::to_owned),
    )
}

#[tokio::test]
async fn an_old_token_carries_the_role_the_log_has_now_not_the_one_it_was_issued_with() {
    let server = Server::start("roles_current").await;
    let admin = server.admin().await;

    // An admin demoted to agent: their admin token no longer does what admins do.
    let demoted = server.agent(Role::Admin, "demoted@example.com").await;
    assert_eq!(
        admin_codes(&server, &demoted.token, "Before").await,
        (None, None)
    );
    change_role(&server, &admin, &demoted, Role::Agent).await;
    let forbidden = Some("FORBIDDEN".to_owned());
    assert_eq!(
        admin_codes(&server, &demoted.token, "After").await,
        (forbidden.clone(), forbidden.clone())
    );
    let me = server.ok(&demoted.token, ME, json!({})).await;
    assert_eq!(me["me"]["role"], "AGENT");
    let body = server
        .gql(
            Some(&demoted.token),
            "mutation($id: ID!) { changeAgentRole(input: {agentId: $id, role: ADMIN}) { position } }",
            json!({ "id": demoted.id }),
        )
        .await;
    assert_eq!(code(&body), Some("FORBIDDEN"), "{body:#}");

    // An agent promoted to admin: their agent token does what admins do at once.
    let promoted = server.agent(Role::Agent, "promoted@example.com").await;
    assert_eq!(
        admin_codes(&server, &promoted.token, "Early").await,
        (forbidden.clone(), forbidden.clone())
    );
    change_role(&server, &admin, &promoted, Role::Admin).await;
    assert_eq!(
        admin_codes(&server, &promoted.token, "Promoted").await,
        (None, None)
    );
    let me = server.ok(&promoted.token, ME, json!({})).await;
    assert_eq!(me["me"]["role"], "ADMIN");

    // A deactivated agent: their token is refused outright.
    let leaver = server.agent(Role::Admin, "leaver@example.com").await;
    let command = AgentCommand::Deactivate {
        by: agent_id(&admin),
        at: Utc::now(),
    };
    in_the_log(&server, &leaver, command).await;
    let (query, mutation) = admin_codes(&server, &leaver.token, "Gone").await;
    assert_eq!(query.as_deref(), Some("UNAUTHENTICATED"));
    assert_eq!(mutation.as_deref(), Some("UNAUTHENTICATED"));
    let body = server.gql(Some(&leaver.token), ME, json!({})).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    server.stop().await;
}

#[tokio::test]
async fn an_open_socket_carries_the_role_the_log_has_now() {
    let server = Server::start("roles_socket").await;
    let admin = server.admin().await;
    let demoted = server.agent(Role::Admin, "demoted@example.com").await;
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &demoted.token).await;
    ws.subscribe("tokens", API_TOKENS, json!({})).await;
    assert!(ws.data("tokens").await["apiTokens"].is_array());
    ws.completed("tokens").await;
    // The raw event feed is for admins and auditors.
    ws.subscribe("feed", "subscription { events { cursor } }", json!({}))
        .await;

    change_role(&server, &admin, &demoted, Role::Agent).await;
    // The running feed ends at the change with the refusal.
    assert_eq!(ws.error_code("feed").await, "FORBIDDEN");
    // New operations on the same socket are refused too, and `me` agrees.
    ws.subscribe("tokens again", API_TOKENS, json!({})).await;
    assert_eq!(ws.error_code("tokens again").await, "FORBIDDEN");
    ws.subscribe("me", ME, json!({})).await;
    assert_eq!(ws.data("me").await["me"]["role"], "AGENT");
    ws.close().await;
    server.stop().await;
}
