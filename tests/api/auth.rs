//! Sign-in, sessions, tokens and their refusals.

use domain::agent::Role;
use serde_json::json;

use crate::support::{PASSWORD, Server, code};

#[tokio::test]
async fn an_admin_signs_in_and_me_names_them() {
    let server = Server::start("login").await;
    let admin = server.admin().await;
    let me = server
        .ok(
            &admin.token,
            "{ me { agentId email role mustChangePassword } }",
            json!({}),
        )
        .await;
    assert_eq!(me["me"]["email"], "admin@example.com");
    assert_eq!(me["me"]["role"], "ADMIN");
    assert_eq!(me["me"]["agentId"], admin.id.as_str());
    let wrong = server
        .gql(
            None,
            "mutation { login(input: {email: \"admin@example.com\", password: \"nope nope nope\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&wrong), Some("UNAUTHENTICATED"));
    let anonymous = server.gql(None, "{ me { email } }", json!({})).await;
    assert_eq!(code(&anonymous), Some("UNAUTHENTICATED"));
    let _ = (PASSWORD, Role::Agent);
    server.stop().await;
}
