//! The role × operation matrix: every query, mutation and subscription of the schema, sent by
//! every kind of caller (anonymous, each role, an API token of each scope), is refused exactly
//! when the permission table says so (`UNAUTHENTICATED` without a credential, `FORBIDDEN`
//! without the permission) and otherwise gets past the guard. Subscriptions go over WebSocket.
//! A second test fails when the schema has an operation the matrix does not list.

use std::collections::BTreeSet;

use api::auth::{Permission, Scope};
use async_graphql::parser::types::{
    DocumentOperations, OperationType, Selection, TypeKind, TypeSystemDefinition,
};
use domain::agent::Role;
use serde_json::{Value, json};

use crate::support::{Server, code};
use crate::ws::{Frame, Protocol, Ws};

/// A random id: operations that pass the guard may still answer `NOT_FOUND`.
const ID: &str = "01939a3e-0000-7000-8000-000000000001";
/// The first cursor: `events` replays the log from it, so a caller who may read it gets data.
const START: &str = "00000000000000000000000000000000";

/// What an operation asks of its caller.
#[derive(Debug, Clone, Copy)]
enum Needs {
    /// Nothing: anyone may call it.
    Nothing,
    /// Any valid credential.
    Credential,
    /// A signed-in agent of any role (an API token has no password or session).
    Agent,
    /// The permission.
    Permission(Permission),
    /// The permission, held by a signed-in agent: the command records the agent who gave it,
    /// so an API token is refused even with the scope.
    AgentWith(Permission),
}

/// Every operation, one document each (`node` once per kind of id), and what it needs.
fn operations() -> Vec<(&'static str, Needs)> {
    use self::Needs::{Agent, AgentWith, Credential, Nothing, Permission as Holds};
    use api::auth::Permission as P;
    vec![
        // Queries.
        ("{ agents { __typename } }", Holds(P::ReadDirectory)),
        ("{ apiTokens { __typename } }", Holds(P::ManageApiTokens)),
        (
            "query($id: ID!) { broadcast(id: $id) { __typename } }",
            Holds(P::ReadBroadcasts),
        ),
        ("{ broadcasts { __typename } }", Holds(P::ReadBroadcasts)),
        ("{ categories { __typename } }", Holds(P::ReadDirectory)),
        (
            "query($customer: ID!) { customer(id: $customer) { __typename } }",
            Holds(P::ReadCustomers),
        ),
        ("{ customers { __typename } }", Holds(P::ReadCustomers)),
        ("{ dashboard { __typename } }", Holds(P::ReadDashboard)),
        ("{ me { __typename } }", Credential),
        (
            "query($ticketNode: ID!) { node(id: $ticketNode) { __typename } }",
            Holds(P::ReadTickets),
        ),
        (
            "query($customerNode: ID!) { node(id: $customerNode) { __typename } }",
            Holds(P::ReadCustomers),
        ),
        (
            "query($agentNode: ID!) { node(id: $agentNode) { __typename } }",
            Holds(P::ReadDirectory),
        ),
        (
            "query($broadcastNode: ID!) { node(id: $broadcastNode) { __typename } }",
            Holds(P::ReadBroadcasts),
        ),
        ("{ systemStatus { __typename } }", Holds(P::ReadSystem)),
        ("{ events(first: 1) { __typename } }", Holds(P::ReadEvents)),
        (
            "{ auditVerify(streamId: \"settings\") { __typename } }",
            Holds(P::ReadEvents),
        ),
        ("{ templates { __typename } }", Holds(P::ReadDirectory)),
        ("{ botTexts { __typename } }", Holds(P::ManageSettings)),
        (
            "query($id: ID!) { ticket(id: $id) { __typename } }",
            Holds(P::ReadTickets),
        ),
        ("{ tickets { __typename } }", Holds(P::ReadTickets)),
        (
            "query($id: ID!) { ticketAt(id: $id, version: 0) { __typename } }",
            Holds(P::ReadTickets),
        ),
        (
            "query($customer: ID!) { customerAt(id: $customer, version: 0) { __typename } }",
            Holds(P::ReadCustomers),
        ),
        (
            "query($id: ID!) { broadcastAt(id: $id, version: 0) { __typename } }",
            Holds(P::ReadBroadcasts),
        ),
        (
            "{ unrecordedUpdates { __typename } }",
            Holds(P::ManageSettings),
        ),
        ("{ twoFactorPolicy }", Holds(P::ReadDirectory)),
        // Mutations: sessions.
        (
            "mutation($email: String!, $password: String!) {
                login(input: {email: $email, password: $password}) { __typename } }",
            Nothing,
        ),
        (
            "mutation($refresh: String!) { refreshToken(input: {refreshToken: $refresh}) { refreshToken } }",
            Nothing,
        ),
        (
            "mutation { logout(input: {refreshToken: \"not-a-token\"}) { __typename } }",
            Agent,
        ),
        (
            "mutation { changePassword(input: {currentPassword: \"x\", newPassword: \"short\"}) { __typename } }",
            Agent,
        ),
        // Second factors. (Both a code and a recovery code: `VALIDATION` once past the guard.)
        (
            "mutation { loginSecondFactor(input: {challenge: \"x\", code: \"1\", recoveryCode: \"2\"}) { __typename } }",
            Nothing,
        ),
        (
            "mutation($password: String!) { enrolSecondFactor(input: {currentPassword: $password}) { __typename } }",
            Agent,
        ),
        (
            "mutation { confirmSecondFactor(input: {code: \"000000\"}) { __typename } }",
            Agent,
        ),
        (
            "mutation { disableSecondFactor(input: {code: \"000000\"}) { __typename } }",
            Agent,
        ),
        (
            "mutation($id: ID!) { resetSecondFactor(input: {agentId: $id}) { __typename } }",
            AgentWith(P::ManageAgents),
        ),
        (
            "mutation { setTwoFactorPolicy(input: {policy: OPTIONAL}) { __typename } }",
            AgentWith(P::ManageSettings),
        ),
        // Tickets.
        (
            "mutation($id: ID!) { replyToTicket(input: {ticketId: $id, text: \"hi\"}) { __typename } }",
            Holds(P::WriteTickets),
        ),
        (
            "mutation($id: ID!) { addInternalNote(input: {ticketId: $id, text: \"hi\"}) { __typename } }",
            Holds(P::WriteTickets),
        ),
        (
            "mutation($id: ID!) { retryDelivery(input: {messageId: $id}) { __typename } }",
            Holds(P::WriteTickets),
        ),
        (
            "mutation($id: ID!) { assignTicket(input: {ticketId: $id, agentId: $id}) { __typename } }",
            Holds(P::WriteTickets),
        ),
        (
            "mutation($id: ID!) { changeTicketStatus(input: {ticketId: $id, status: OPEN}) { __typename } }",
            Holds(P::WriteTickets),
        ),
        (
            "mutation($id: ID!) { setTicketPriority(input: {ticketId: $id, priority: HIGH}) { __typename } }",
            Holds(P::WriteTickets),
        ),
        (
            "mutation($id: ID!) { setTicketCategory(input: {ticketId: $id, categoryId: null}) { __typename } }",
            Holds(P::WriteTickets),
        ),
        (
            "mutation($id: ID!) { tagTicket(input: {ticketId: $id, tag: \"x\"}) { __typename } }",
            Holds(P::WriteTickets),
        ),
        (
            "mutation($id: ID!) { untagTicket(input: {ticketId: $id, tag: \"x\"}) { __typename } }",
            Holds(P::WriteTickets),
        ),
        // Customers.
        (
            "mutation($customer: ID!) { banCustomer(input: {customerId: $customer}) { __typename } }",
            AgentWith(P::ModerateCustomers),
        ),
        (
            "mutation($customer: ID!) { unbanCustomer(input: {customerId: $customer}) { __typename } }",
            AgentWith(P::ModerateCustomers),
        ),
        (
            "mutation($customer: ID!) { forgetCustomer(input: {customerId: $customer}) { __typename } }",
            AgentWith(P::ForgetCustomers),
        ),
        // Agents and API tokens.
        (
            "mutation { inviteAgent(input: {email: \"m@example.com\", name: \"M\", role: AGENT}) { __typename } }",
            AgentWith(P::ManageAgents),
        ),
        (
            "mutation($id: ID!) { changeAgentRole(input: {agentId: $id, role: AGENT}) { __typename } }",
            AgentWith(P::ManageAgents),
        ),
        (
            "mutation($id: ID!) { setAgentCategories(input: {agentId: $id, categoryIds: []}) { __typename } }",
            AgentWith(P::ManageAgents),
        ),
        (
            "mutation($id: ID!) { deactivateAgent(input: {agentId: $id}) { __typename } }",
            AgentWith(P::ManageAgents),
        ),
        (
            "mutation { createApiToken(input: {name: \"x\", scopes: [\"events:read\"]}) { __typename } }",
            AgentWith(P::ManageApiTokens),
        ),
        (
            "mutation($id: ID!) { revokeApiToken(input: {apiTokenId: $id}) { __typename } }",
            Holds(P::ManageApiTokens),
        ),
        // Settings.
        (
            "mutation { createCategory(input: {name: \"Matrix\"}) { __typename } }",
            AgentWith(P::ManageSettings),
        ),
        (
            "mutation($id: ID!) { renameCategory(input: {categoryId: $id, name: \"x\"}) { __typename } }",
            AgentWith(P::ManageSettings),
        ),
        (
            "mutation($id: ID!) { removeCategory(input: {categoryId: $id}) { __typename } }",
            AgentWith(P::ManageSettings),
        ),
        (
            "mutation { createTemplate(input: {title: \"Matrix\", text: \"x\"}) { __typename } }",
            AgentWith(P::ManageSettings),
        ),
        (
            "mutation($id: ID!) { updateTemplate(input: {templateId: $id, title: \"x\", text: \"x\"}) { __typename } }",
            AgentWith(P::ManageSettings),
        ),
        (
            "mutation($id: ID!) { removeTemplate(input: {templateId: $id}) { __typename } }",
            AgentWith(P::ManageSettings),
        ),
        (
            "mutation { setGreeting(input: {text: \"hello\"}) { __typename } }",
            AgentWith(P::ManageSettings),
        ),
        (
            "mutation { setBotText(input: {key: HELP, language: \"ru\", text: \"x\"}) { __typename } }",
            AgentWith(P::ManageSettings),
        ),
        // Broadcasts.
        (
            "mutation { createBroadcast(input: {audience: {allCustomers: true}, content: {text: \"x\"}}) { __typename } }",
            AgentWith(P::WriteBroadcasts),
        ),
        (
            "mutation($id: ID!) { updateBroadcast(input: {broadcastId: $id,
                audience: {allCustomers: true}, content: {text: \"x\"}}) { __typename } }",
            AgentWith(P::WriteBroadcasts),
        ),
        (
            "mutation($id: ID!) { scheduleBroadcast(input: {broadcastId: $id, sendAt: null}) { __typename } }",
            AgentWith(P::WriteBroadcasts),
        ),
        (
            "mutation($id: ID!) { startBroadcast(input: {broadcastId: $id}) { __typename } }",
            AgentWith(P::WriteBroadcasts),
        ),
        (
            "mutation($id: ID!) { pauseBroadcast(input: {broadcastId: $id}) { __typename } }",
            AgentWith(P::WriteBroadcasts),
        ),
        (
            "mutation($id: ID!) { cancelBroadcast(input: {broadcastId: $id}) { __typename } }",
            AgentWith(P::WriteBroadcasts),
        ),
        (
            "mutation($id: ID!) { sendBroadcastPreview(input: {broadcastId: $id,
                telegramUserId: \"42\"}) { __typename } }",
            AgentWith(P::WriteBroadcasts),
        ),
        // Subscriptions. Each answers at once when the guard lets it through: data, or an error
        // about its arguments.
        (
            "subscription($start: String) { events(after: $start) { cursor } }",
            Holds(P::ReadEvents),
        ),
        (
            "subscription($id: ID!) { ticketEvents(ticketId: $id) { cursor } }",
            Holds(P::ReadTickets),
        ),
        (
            "subscription { ticketsChanged(filter: {assignee: \"not-a-uuid\"}) { cursor } }",
            Holds(P::ReadTickets),
        ),
        (
            "subscription { messageAdded(ticketId: \"not-a-uuid\") { cursor } }",
            Holds(P::ReadTickets),
        ),
        (
            "subscription($id: ID!) { broadcastProgress(id: $id) { cursor } }",
            Holds(P::ReadBroadcasts),
        ),
    ]
}

/// A kind of caller.
#[derive(Debug, Clone, Copy)]
enum Who {
    Anonymous,
    Role(Role),
    Token(Scope),
}

impl Who {
    fn holds(self, permission: Permission) -> bool {
        match self {
            Who::Anonymous => false,
            Who::Role(role) => permission.granted_to(role),
            Who::Token(scope) => scope.grants(permission),
        }
    }

    /// The code that refuses this caller, or `None` when the guard must let it through.
    fn refusal(self, needs: Needs) -> Option<&'static str> {
        let agent = matches!(self, Who::Role(_));
        match (self, needs) {
            (_, Needs::Nothing) => None,
            (Who::Anonymous, _) => Some("UNAUTHENTICATED"),
            (_, Needs::Credential) => None,
            (_, Needs::Agent) if agent => None,
            (_, Needs::Permission(p)) if self.holds(p) => None,
            (_, Needs::AgentWith(p)) if agent && self.holds(p) => None,
            _ => Some("FORBIDDEN"),
        }
    }
}

/// The kind of a document's operation and the root field it selects.
fn root_field(document: &str) -> (OperationType, String) {
    let parsed =
        async_graphql::parser::parse_query(document).unwrap_or_else(|e| panic!("{document}: {e}"));
    let DocumentOperations::Single(operation) = parsed.operations else {
        panic!("one operation per document: {document}");
    };
    let items = &operation.node.selection_set.node.items;
    assert_eq!(items.len(), 1, "one root field per document: {document}");
    let Selection::Field(field) = &items[0].node else {
        panic!("a plain field: {document}");
    };
    (operation.node.ty, field.node.name.node.to_string())
}

/// How a response fared: `Err(code)` when refused by a guard, `Ok(())` when it got past it.
/// An error without a path (the document itself is wrong) fails the test: it proves nothing.
fn outcome(payload: &Value, what: &str) -> Result<(), String> {
    let Some(error) = payload["errors"].get(0) else {
        assert!(
            !payload["data"].is_null(),
            "{what}: neither data nor errors: {payload}"
        );
        return Ok(());
    };
    assert!(
        error.get("path").is_some(),
        "{what}: the document is not valid: {payload}"
    );
    match code(payload) {
        Some(refused @ ("FORBIDDEN" | "UNAUTHENTICATED")) => Err(refused.to_owned()),
        _ => Ok(()),
    }
}

#[test]
fn the_matrix_lists_every_operation_of_the_schema() {
    let sdl =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    // async-graphql's parser predates descriptions on the schema definition (GraphQL, October
    // 2021): leave ours out for it.
    let description = api::graphql::introspection::SCHEMA_DESCRIPTION;
    let sdl = sdl.replacen(&format!("\"\"\"\n{description}\n\"\"\"\n"), "", 1);
    let schema = async_graphql::parser::parse_schema(&sdl).unwrap();
    let mut roots = [
        (OperationType::Query, "Query".to_owned()),
        (OperationType::Mutation, "Mutation".to_owned()),
        (OperationType::Subscription, "Subscription".to_owned()),
    ];
    for definition in &schema.definitions {
        if let TypeSystemDefinition::Schema(root) = definition {
            let names = [
                &root.node.query,
                &root.node.mutation,
                &root.node.subscription,
            ];
            for (slot, name) in roots.iter_mut().zip(names) {
                if let Some(name) = name {
                    slot.1 = name.node.to_string();
                }
            }
        }
    }
    let mut in_schema = BTreeSet::new();
    for definition in &schema.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let TypeKind::Object(object) = &ty.node.kind else {
            continue;
        };
        if let Some((kind, _)) = roots
            .iter()
            .find(|(_, name)| *name == ty.node.name.node.as_str())
        {
            for field in &object.fields {
                in_schema.insert((format!("{kind:?}"), field.node.name.node.to_string()));
            }
        }
    }
    assert!(in_schema.len() > 40, "the SDL was not read: {in_schema:?}");
    let in_matrix: BTreeSet<(String, String)> = operations()
        .into_iter()
        .map(|(document, _)| {
            let (kind, field) = root_field(document);
            (format!("{kind:?}"), field)
        })
        .collect();
    let missing: Vec<_> = in_schema.difference(&in_matrix).collect();
    let unknown: Vec<_> = in_matrix.difference(&in_schema).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "the matrix is stale: missing {missing:?}, not in the schema {unknown:?}"
    );
}

#[tokio::test]
async fn every_operation_is_refused_exactly_when_the_permission_table_says_so() {
    let server = Server::start("matrix").await;
    let admin = server.admin().await;
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    let auditor = server.agent(Role::Auditor, "auditor@example.com").await;
    // `login` signs this agent in; `refreshToken` walks its chain of refresh tokens.
    let signing_in = server.agent(Role::Agent, "signin@example.com").await;
    let mut refresh = signing_in.refresh.clone();

    let mut callers: Vec<(Who, Option<String>)> = vec![
        (Who::Anonymous, None),
        (Who::Role(Role::Admin), Some(admin.token.clone())),
        (Who::Role(Role::Agent), Some(agent.token.clone())),
        (Who::Role(Role::Auditor), Some(auditor.token.clone())),
    ];
    for scope in Scope::ALL {
        let token = server.api_token(&admin, &[scope.as_str()]).await;
        callers.push((Who::Token(scope), Some(token)));
    }
    let ids = |kind: &str, key: &str| api::graphql::ids::global(kind, key).to_string();

    let mut checked = 0;
    for (document, needs) in operations() {
        let (kind, field) = root_field(document);
        for (who, token) in &callers {
            let what = format!("{who:?} on {field}");
            let variables = json!({
                "id": ID,
                "customer": "1001",
                "ticketNode": ids("Ticket", ID),
                "customerNode": ids("Customer", "1001"),
                "agentNode": ids("Agent", ID),
                "broadcastNode": ids("Broadcast", ID),
                "email": signing_in.email,
                "password": crate::support::PASSWORD,
                "refresh": refresh,
                "start": START,
            });
            let got = if kind == OperationType::Subscription {
                subscribe(&server, token.as_deref(), document, variables, &what).await
            } else {
                let body = server.gql(token.as_deref(), document, variables).await;
                if let Some(next) = body["data"]["refreshToken"]["refreshToken"].as_str() {
                    refresh = next.to_owned();
                }
                outcome(&body, &what)
            };
            match who.refusal(needs) {
                Some(refusal) => assert_eq!(got, Err(refusal.to_owned()), "{what}"),
                None => assert_eq!(got, Ok(()), "{what} should pass the guard"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, operations().len() * callers.len());
    server.stop().await;
}

/// Runs a subscription over WebSocket until its first answer. Without a credential the server
/// closes the connection at `connection_init`: that is its `UNAUTHENTICATED`.
async fn subscribe(
    server: &Server,
    token: Option<&str>,
    document: &str,
    variables: Value,
    what: &str,
) -> Result<(), String> {
    let Some(token) = token else {
        let mut ws = Ws::open(server, Protocol::TransportWs).await;
        ws.send(json!({ "type": "connection_init", "payload": {} }))
            .await;
        return match ws.frame().await {
            Frame::Closed(Some(4403 | 1002)) => Err("UNAUTHENTICATED".to_owned()),
            other => panic!("{what}: expected the connection to close, got {other:?}"),
        };
    };
    let mut ws = Ws::connect(server, Protocol::TransportWs, token).await;
    ws.subscribe("1", document, variables).await;
    let answer = match ws.frame().await {
        Frame::Json(frame) if frame["id"] == "1" && frame["type"] == "next" => {
            outcome(&frame["payload"], what)
        }
        Frame::Json(frame) if frame["id"] == "1" && frame["type"] == "error" => {
            let payload = json!({ "errors": frame["payload"] });
            outcome(&payload, what)
        }
        other => panic!("{what}: expected an answer, got {other:?}"),
    };
    ws.close().await;
    answer
}
