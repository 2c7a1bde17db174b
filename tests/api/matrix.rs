//! The role × operation matrix: every operation, sent by every kind of caller, is refused
//! exactly when the permission table says so (`UNAUTHENTICATED` without a credential,
//! `FORBIDDEN` without the permission) and otherwise gets past the guard.

use api::auth::Permission;
use domain::agent::Role;
use serde_json::{Value, json};

use crate::support::{Server, code};

/// A random id: operations that pass the guard may still answer `NOT_FOUND`.
const ID: &str = "01939a3e-0000-7000-8000-000000000001";

/// Every guarded operation and the permission it needs.
fn operations() -> Vec<(&'static str, Permission)> {
    use Permission as P;
    vec![
        ("{ systemStatus { logHead } }", P::ReadSystem),
        ("{ apiTokens { name } }", P::ManageApiTokens),
        (
            "mutation { createApiToken(input: {name: \"x\", scopes: [\"events:read\"]}) { token } }",
            P::ManageApiTokens,
        ),
        (
            "mutation($id: ID!) { revokeApiToken(input: {apiTokenId: $id}) { revoked } }",
            P::ManageApiTokens,
        ),
        (
            "mutation { inviteAgent(input: {email: \"m@example.com\", name: \"M\", role: AGENT}) { agentId } }",
            P::ManageAgents,
        ),
        (
            "mutation($id: ID!) { changeAgentRole(input: {agentId: $id, role: AGENT}) { position } }",
            P::ManageAgents,
        ),
        (
            "mutation($id: ID!) { setAgentCategories(input: {agentId: $id, categoryIds: []}) { position } }",
            P::ManageAgents,
        ),
        (
            "mutation($id: ID!) { deactivateAgent(input: {agentId: $id}) { position } }",
            P::ManageAgents,
        ),
    ]
}

/// Whether a caller holds a permission.
type Allows = Box<dyn Fn(Permission) -> bool>;

#[tokio::test]
async fn every_operation_is_refused_exactly_when_the_permission_table_says_so() {
    let server = Server::start("matrix").await;
    let admin = server.admin().await;
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    let auditor = server.agent(Role::Auditor, "auditor@example.com").await;
    let created = server
        .ok(
            &admin.token,
            "mutation { createApiToken(input: {name: \"reader\", scopes: [\"tickets:read\"]}) { token } }",
            json!({}),
        )
        .await;
    let integrator = created["createApiToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let callers: Vec<(&str, Option<&str>, Allows)> = vec![
        ("anonymous", None, Box::new(|_| false)),
        (
            "agent",
            Some(&agent.token),
            Box::new(|p: Permission| p.granted_to(Role::Agent)),
        ),
        (
            "auditor",
            Some(&auditor.token),
            Box::new(|p: Permission| p.granted_to(Role::Auditor)),
        ),
        (
            "tickets:read token",
            Some(&integrator),
            Box::new(|p| p == Permission::ReadTickets),
        ),
        ("admin", Some(&admin.token), Box::new(|_| true)),
    ];
    let mut checked = 0;
    for (operation, permission) in operations() {
        for (who, token, allowed) in &callers {
            let body: Value = server.gql(*token, operation, json!({ "id": ID })).await;
            let got = code(&body);
            let expected_denial = match token {
                None => Some("UNAUTHENTICATED"),
                Some(_) if !allowed(permission) => Some("FORBIDDEN"),
                Some(_) => None,
            };
            match expected_denial {
                Some(denial) => assert_eq!(got, Some(denial), "{who} on {operation}: {body}"),
                None => assert!(
                    !matches!(got, Some("FORBIDDEN" | "UNAUTHENTICATED")),
                    "{who} should pass the guard of {operation}: {body}"
                ),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, operations().len() * callers.len());
    server.stop().await;
}
