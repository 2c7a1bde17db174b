//! Sign-in, sessions, tokens and their refusals.

use api::auth::Keys;
use base64::Engine;
use chrono::{Duration, Utc};
use domain::AgentId;
use domain::agent::Role;
use eventlog::Position;
use serde_json::{Value, json};

use crate::support::{PASSWORD, Server, code, test_config};

const LOGIN: &str = "mutation($email: String!, $password: String!) {
    login(input: {email: $email, password: $password}) { accessToken refreshToken mustChangePassword } }";
const REFRESH: &str = "mutation($token: String!) {
    refreshToken(input: {refreshToken: $token}) { accessToken refreshToken } }";
const STATUS: &str = "{ systemStatus { logHead projections { name lagEvents } } }";

async fn signing_keys(server: &Server) -> Keys {
    let secret: Vec<u8> = sqlx::query_scalar("select secret from auth_signing_key")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    Keys::from_secret(&secret)
}

fn b64(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

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
    assert_eq!(me["me"]["mustChangePassword"], false);
    let wrong = server
        .gql(
            None,
            LOGIN,
            json!({"email": "admin@example.com", "password": "nope nope nope"}),
        )
        .await;
    assert_eq!(code(&wrong), Some("UNAUTHENTICATED"));
    let unknown = server
        .gql(
            None,
            LOGIN,
            json!({"email": "who@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(code(&unknown), Some("UNAUTHENTICATED"));
    let anonymous = server.gql(None, "{ me { email } }", json!({})).await;
    assert_eq!(code(&anonymous), Some("UNAUTHENTICATED"));
    server.stop().await;
}

#[tokio::test]
async fn an_access_token_of_a_short_testing_lifetime_expires_after_its_clock_skew() {
    let mut config = test_config();
    config.auth.access_ttl = std::time::Duration::from_secs(1);
    let server = Server::start_with("short_ttl", config).await;
    let admin = server.admin().await;
    let issued = Utc::now();
    let me = "{ me { agentId } }";
    assert!(server.gql(Some(&admin.token), me, json!({})).await["errors"].is_null());

    // Refused once its second and the five seconds of allowed clock skew have passed.
    let refused = testkit::eventually(
        async || {
            let body = server.gql(Some(&admin.token), me, json!({})).await;
            match code(&body) {
                Some(_) => Ok(body),
                None => Err("still accepted".to_owned()),
            }
        },
        std::time::Duration::from_secs(30),
    )
    .await;
    assert!(
        Utc::now() - issued >= Duration::seconds(5),
        "refused too early"
    );
    assert_eq!(code(&refused), Some("UNAUTHENTICATED"));
    assert_eq!(
        refused["errors"][0]["message"],
        "the access token has expired"
    );
    server.stop().await;
}

#[tokio::test]
async fn expired_forged_unsigned_and_tampered_tokens_are_refused() {
    let server = Server::start("jwt").await;
    let admin = server.admin().await;
    assert!(
        server
            .gql(Some(&admin.token), STATUS, json!({}))
            .await
            .get("errors")
            .is_none()
    );
    let agent = AgentId::from_uuid(admin.id.parse().unwrap());
    let keys = signing_keys(&server).await;
    let now = Utc::now();
    let session = uuid::Uuid::now_v7();

    // Signed with the right key but expired a minute ago.
    let expired = keys.issue(
        agent,
        Role::Admin,
        session,
        0,
        now - Duration::minutes(20),
        now - Duration::minutes(1),
    );
    // Right claims, another key.
    let forged = Keys::from_secret(&[7_u8; 32]).issue(
        agent,
        Role::Admin,
        session,
        0,
        now,
        now + Duration::minutes(5),
    );
    // `alg: none`, no signature.
    let claims = json!({"sub": admin.id, "role": "admin", "iss": "ledgerdesk", "typ": "access",
        "iat": now.timestamp(), "exp": (now + Duration::minutes(5)).timestamp(), "sid": session, "ver": 0});
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    // A valid token whose claims were edited after signing (an agent making themselves admin).
    let valid_agent = server.agent(Role::Agent, "agent@example.com").await;
    let parts: Vec<&str> = valid_agent.token.split('.').collect();
    let mut edited: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    edited["role"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], b64(&edited), parts[2]);
    // HS256 header swapped for HS512 over the same payload.
    let swapped_alg = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "HS512", "typ": "JWT"})),
        parts[1],
        parts[2]
    );

    for (what, token) in [
        ("expired", expired),
        ("wrong signature", forged),
        ("alg none", unsigned),
        ("tampered claims", tampered.clone()),
        ("swapped algorithm", swapped_alg),
        ("garbage", "not-a-token".to_owned()),
    ] {
        let body = server.gql(Some(&token), STATUS, json!({})).await;
        assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{what}: {body}");
        assert!(
            body["data"].is_null() || body["data"]["systemStatus"].is_null(),
            "{what}"
        );
    }
    // The untampered agent token still works, and an agent may not manage tokens.
    let denied = server
        .gql(
            Some(&valid_agent.token),
            "{ apiTokens { name } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&denied), Some("FORBIDDEN"));
    server.stop().await;
}

#[tokio::test]
async fn a_refresh_token_works_once_and_its_reuse_revokes_the_whole_sign_in() {
    let server = Server::start("refresh").await;
    let admin = server.admin().await;
    let first = server
        .ok(&admin.token, REFRESH, json!({"token": admin.refresh}))
        .await;
    let rotated = first["refreshToken"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let access = first["refreshToken"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, admin.refresh);
    assert!(
        server
            .gql(Some(&access), STATUS, json!({}))
            .await
            .get("errors")
            .is_none()
    );

    // The old token again: refused, and the family (including `rotated`) is revoked.
    let reused = server
        .gql(None, REFRESH, json!({"token": admin.refresh}))
        .await;
    assert_eq!(code(&reused), Some("UNAUTHENTICATED"));
    let after = server.gql(None, REFRESH, json!({"token": rotated})).await;
    assert_eq!(code(&after), Some("UNAUTHENTICATED"), "{after}");

    // Another sign-in of the same agent is a separate family and still works.
    let other = server.login("admin@example.com", PASSWORD).await;
    let again = server
        .gql(None, REFRESH, json!({"token": other.refresh}))
        .await;
    assert!(again.get("errors").is_none(), "{again}");
    let unknown = server
        .gql(None, REFRESH, json!({"token": "0".repeat(64)}))
        .await;
    assert_eq!(code(&unknown), Some("UNAUTHENTICATED"));
    server.stop().await;
}

#[tokio::test]
async fn a_reused_refresh_token_ends_the_access_tokens_of_its_sign_in_only() {
    let server = Server::start("refreshaccess").await;
    let owner = server.admin().await;
    let other = server.login("admin@example.com", PASSWORD).await;
    // The thief rotates the copied token first; the owner then presents it again.
    let stolen = server
        .ok(&owner.token, REFRESH, json!({"token": owner.refresh}))
        .await;
    let thief = stolen["refreshToken"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    for token in [&owner.token, &thief, &other.token] {
        let body = server.gql(Some(token), STATUS, json!({})).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let reused = server
        .gql(None, REFRESH, json!({"token": owner.refresh}))
        .await;
    assert_eq!(code(&reused), Some("UNAUTHENTICATED"));
    for (who, token) in [("owner", &owner.token), ("thief", &thief)] {
        let body = server.gql(Some(token), STATUS, json!({})).await;
        assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{who}: {body}");
    }
    // Another sign-in of the same agent keeps working.
    let body = server.gql(Some(&other.token), STATUS, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn a_token_signed_with_the_real_key_for_a_sign_in_that_never_was_is_refused() {
    let server = Server::start("forgedsid").await;
    let admin = server.admin().await;
    let keys = signing_keys(&server).await;
    let agent = AgentId::from_uuid(admin.id.parse().unwrap());
    let now = Utc::now();
    // A token naming the agent's real sign-in passes: the key and the epoch are right, so only
    // the sign-in can refuse the forged one.
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(admin.token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let real_sid: uuid::Uuid = claims["sid"].as_str().unwrap().parse().unwrap();
    let ver = i32::try_from(claims["ver"].as_i64().unwrap()).unwrap();
    let issue = |sid| {
        keys.issue(
            agent,
            Role::Admin,
            sid,
            ver,
            now,
            now + Duration::minutes(5),
        )
    };
    let body = server.gql(Some(&issue(real_sid)), STATUS, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let body = server
        .gql(Some(&issue(uuid::Uuid::now_v7())), STATUS, json!({}))
        .await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn tokens_issued_or_valid_only_in_the_future_are_refused_beyond_the_clock_skew() {
    let server = Server::start("jwtfuture").await;
    let admin = server.admin().await;
    let keys = signing_keys(&server).await;
    // The admin's own claims (right key, sign-in and epoch), with other times.
    let mut claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(admin.token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let now = Utc::now().timestamp();
    claims["exp"] = json!(now + 3600);
    let body = server
        .gql(Some(&keys.sign(&claims)), STATUS, json!({}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let mut future_iat = claims.clone();
    future_iat["iat"] = json!(now + 600);
    let mut future_nbf = claims.clone();
    future_nbf["nbf"] = json!(now + 600);
    let mut malformed_nbf = claims.clone();
    malformed_nbf["nbf"] = json!("soon");
    for (what, claims) in [
        ("iat in the future", future_iat),
        ("nbf in the future", future_nbf),
        ("nbf not a time", malformed_nbf),
    ] {
        let body = server
            .gql(Some(&keys.sign(&claims)), STATUS, json!({}))
            .await;
        assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{what}: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn logout_ends_one_sign_in_or_every_session() {
    let server = Server::start("logout").await;
    let admin = server.admin().await;
    let second = server.login("admin@example.com", PASSWORD).await;
    server
        .ok(
            &admin.token,
            "mutation($t: String) { logout(input: {refreshToken: $t}) { ok } }",
            json!({"t": admin.refresh}),
        )
        .await;
    let refused = server
        .gql(None, REFRESH, json!({"token": admin.refresh}))
        .await;
    assert_eq!(code(&refused), Some("UNAUTHENTICATED"));
    // The other sign-in is untouched until `everywhere`.
    assert!(
        server
            .gql(Some(&second.token), STATUS, json!({}))
            .await
            .get("errors")
            .is_none()
    );
    server
        .ok(
            &second.token,
            "mutation { logout(input: {everywhere: true}) { ok } }",
            json!({}),
        )
        .await;
    for token in [&admin.token, &second.token] {
        let body = server.gql(Some(token), STATUS, json!({})).await;
        assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body}");
    }
    let body = server
        .gql(None, REFRESH, json!({"token": second.refresh}))
        .await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"));
    server.stop().await;
}

#[tokio::test]
async fn an_invited_agent_must_replace_the_one_time_password_before_anything_else() {
    let server = Server::start("invite").await;
    let admin = server.admin().await;
    let invited = server
        .ok(
            &admin.token,
            "mutation { inviteAgent(input: {email: \" New.Agent@Example.com \", name: \"New\", role: AGENT}) {
                agentId oneTimePassword position } }",
            json!({}),
        )
        .await;
    let one_time = invited["inviteAgent"]["oneTimePassword"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(invited["inviteAgent"]["position"].is_string());
    // Only a digest-free hash is stored, and nothing of the password reaches the log.
    let leaked: i64 =
        sqlx::query_scalar("select count(*) from events where payload::text like '%' || $1 || '%'")
            .bind(&one_time)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(leaked, 0);

    let login = server
        .gql(
            None,
            LOGIN,
            json!({"email": "new.agent@example.com", "password": one_time}),
        )
        .await;
    assert_eq!(
        login["data"]["login"]["mustChangePassword"], true,
        "{login}"
    );
    let token = login["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let blocked = server.gql(Some(&token), STATUS, json!({})).await;
    assert_eq!(code(&blocked), Some("FORBIDDEN"));
    let me = server
        .ok(&token, "{ me { mustChangePassword role } }", json!({}))
        .await;
    assert_eq!(me["me"]["mustChangePassword"], true);

    let change = "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { accessToken mustChangePassword } }";
    let weak = server
        .gql(Some(&token), change, json!({"c": one_time, "n": "short"}))
        .await;
    assert_eq!(code(&weak), Some("VALIDATION"));
    let wrong = server
        .gql(
            Some(&token),
            change,
            json!({"c": "not it at all", "n": PASSWORD}),
        )
        .await;
    assert_eq!(code(&wrong), Some("UNAUTHENTICATED"));
    let changed = server
        .ok(&token, change, json!({"c": one_time, "n": PASSWORD}))
        .await;
    assert_eq!(changed["changePassword"]["mustChangePassword"], false);
    let fresh = changed["changePassword"]["accessToken"].as_str().unwrap();
    assert!(
        server
            .gql(Some(fresh), STATUS, json!({}))
            .await
            .get("errors")
            .is_none()
    );
    // The token from before the change no longer works; the log recorded the change.
    assert_eq!(
        code(&server.gql(Some(&token), STATUS, json!({})).await),
        Some("UNAUTHENTICATED")
    );
    let recorded: i64 = sqlx::query_scalar(
        "select count(*) from events where event_type = 'agent.password_changed'",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(recorded, 1);

    // The same email cannot be invited twice.
    let again = server
        .gql(
            Some(&admin.token),
            "mutation { inviteAgent(input: {email: \"new.agent@example.com\", name: \"Again\", role: AUDITOR}) { agentId } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&again), Some("CONFLICT"));
    server.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_past_the_limit_are_delayed_and_successes_count_for_nothing() {
    let mut config = test_config();
    config.auth.logins_per_account_per_minute = 3;
    let server = Server::start_with("ratelimit", config).await;
    // Successful sign-ins are no failures, however many.
    server.admin().await;
    for _ in 0..5 {
        server.login("admin@example.com", PASSWORD).await;
    }
    let mut codes = Vec::new();
    for _ in 0..5 {
        let body = server
            .gql(
                None,
                LOGIN,
                json!({"email": "ADMIN@example.com", "password": "wrong password!"}),
            )
            .await;
        codes.push(code(&body).map(str::to_owned));
        if code(&body) == Some("RATE_LIMITED") {
            assert!(
                body["errors"][0]["extensions"]["retryAfter"]
                    .as_u64()
                    .unwrap()
                    >= 1
            );
        }
    }
    // Three failures a minute are free; the fourth is refused too and delays the next.
    assert_eq!(
        codes,
        [
            Some("UNAUTHENTICATED"),
            Some("UNAUTHENTICATED"),
            Some("UNAUTHENTICATED"),
            Some("UNAUTHENTICATED"),
            Some("RATE_LIMITED"),
        ]
        .map(|c| c.map(str::to_owned))
    );
    // While delayed, even the right password waits (from a device that never signed in).
    let right = server
        .gql(
            None,
            LOGIN,
            json!({"email": "admin@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(code(&right), Some("RATE_LIMITED"));
    server.stop().await;
}

#[tokio::test]
async fn role_changes_and_deactivation_take_effect_at_once() {
    let server = Server::start("roles").await;
    let admin = server.admin().await;
    let agent = server.agent(Role::Agent, "worker@example.com").await;
    let role =
        "mutation($id: ID!) { changeAgentRole(input: {agentId: $id, role: AUDITOR}) { position } }";
    let denied = server
        .gql(Some(&agent.token), role, json!({"id": admin.id}))
        .await;
    assert_eq!(code(&denied), Some("FORBIDDEN"));
    let changed = server.ok(&admin.token, role, json!({"id": agent.id})).await;
    assert!(changed["changeAgentRole"]["position"].is_string());
    assert_eq!(
        code(&server.gql(Some(&agent.token), STATUS, json!({})).await),
        Some("UNAUTHENTICATED")
    );
    let again = server.login("worker@example.com", PASSWORD).await;
    let me = server.ok(&again.token, "{ me { role } }", json!({})).await;
    assert_eq!(me["me"]["role"], "AUDITOR");

    let deactivate = "mutation($id: ID!) { deactivateAgent(input: {agentId: $id}) { position } }";
    let own = server
        .gql(Some(&admin.token), deactivate, json!({"id": admin.id}))
        .await;
    assert_eq!(code(&own), Some("CONFLICT"));
    server
        .ok(&admin.token, deactivate, json!({"id": agent.id}))
        .await;
    assert_eq!(
        code(&server.gql(Some(&again.token), STATUS, json!({})).await),
        Some("UNAUTHENTICATED")
    );
    let login = server
        .gql(
            None,
            LOGIN,
            json!({"email": "worker@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(code(&login), Some("UNAUTHENTICATED"));
    let refresh = server
        .gql(None, REFRESH, json!({"token": again.refresh}))
        .await;
    assert_eq!(code(&refresh), Some("UNAUTHENTICATED"));
    let missing = server
        .gql(
            Some(&admin.token),
            deactivate,
            json!({"id": uuid::Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(code(&missing), Some("NOT_FOUND"));
    server.stop().await;
}

#[tokio::test]
async fn api_tokens_carry_only_their_scopes_and_stop_when_revoked() {
    let server = Server::start("apitokens").await;
    let admin = server.admin().await;
    let create = "mutation($s: [String!]!) { createApiToken(input: {name: \"crm sync\", scopes: $s}) { apiTokenId token scopes } }";
    let bad = server
        .gql(Some(&admin.token), create, json!({"s": ["agents:manage"]}))
        .await;
    assert_eq!(code(&bad), Some("VALIDATION"));
    let created = server
        .ok(
            &admin.token,
            create,
            json!({"s": ["dashboard:read", "events:read"]}),
        )
        .await;
    let token = created["createApiToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = created["createApiToken"]["apiTokenId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(token.starts_with("ldk_"));
    let me = server
        .ok(&token, "{ me { apiTokenId scopes agentId } }", json!({}))
        .await;
    assert_eq!(me["me"]["scopes"], json!(["dashboard:read", "events:read"]));
    assert!(me["me"]["agentId"].is_null());
    assert!(
        server
            .gql(Some(&token), STATUS, json!({}))
            .await
            .get("errors")
            .is_none()
    );
    // A token can neither manage tokens nor sign out or change a password.
    let denied = server
        .gql(Some(&token), create, json!({"s": ["events:read"]}))
        .await;
    assert_eq!(code(&denied), Some("FORBIDDEN"));
    let logout = server
        .gql(
            Some(&token),
            "mutation { logout(input: {}) { ok } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&logout), Some("FORBIDDEN"));
    // The list never shows the secret.
    let list = server
        .ok(
            &admin.token,
            "{ apiTokens { apiTokenId name scopes revokedAt } }",
            json!({}),
        )
        .await;
    assert_eq!(list["apiTokens"][0]["name"], "crm sync");
    assert!(!list.to_string().contains(&token));
    let revoke = "mutation($id: ID!) { revokeApiToken(input: {apiTokenId: $id}) { revoked } }";
    let revoked = server.ok(&admin.token, revoke, json!({"id": id})).await;
    assert_eq!(revoked["revokeApiToken"]["revoked"], true);
    assert_eq!(
        code(&server.gql(Some(&token), STATUS, json!({})).await),
        Some("UNAUTHENTICATED")
    );
    let twice = server.ok(&admin.token, revoke, json!({"id": id})).await;
    assert_eq!(twice["revokeApiToken"]["revoked"], false);
    server.stop().await;
}

#[tokio::test]
async fn a_tickets_write_token_works_tickets_in_the_name_of_its_admin_while_they_are_one() {
    let server = Server::start("tokenwrite").await;
    let admin = server.admin().await;
    let other_admin = server.agent(Role::Admin, "second@example.com").await;
    let token = server
        .api_token(&admin, &["tickets:write", "tickets:read"])
        .await;
    let (ticket, _) = server
        .customer_writes(4_242, None, "Where is my parcel?")
        .await;
    let reply = "mutation($t: ID!, $text: String!) {
        replyToTicket(input: {ticketId: $t, text: $text}) { position } }";
    let sent = server
        .ok(
            &token,
            reply,
            json!({"t": ticket, "text": "From the CRM: it ships today."}),
        )
        .await;
    let position: Position = sent["replyToTicket"]["position"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    server.caught_up(position).await;

    // The reply is the admin's; the log records that the integration sent it.
    let read = server
        .ok(
            &admin.token,
            "query($t: ID!) { ticket(id: $t) {
                messages(first: 10) { nodes { text authorAgentId } }
                history(first: 20) { nodes { type actor { kind actorId } } } } }",
            json!({"t": ticket}),
        )
        .await;
    let messages = read["ticket"]["messages"]["nodes"].as_array().unwrap();
    let sent_message = messages
        .iter()
        .find(|m| m["text"] == "From the CRM: it ships today.")
        .unwrap_or_else(|| panic!("the reply is in the conversation: {messages:?}"));
    assert_eq!(sent_message["authorAgentId"], json!(admin.id));
    let history = read["ticket"]["history"]["nodes"].as_array().unwrap();
    let replied = history
        .iter()
        .find(|e| e["type"] == "ticket.agent_replied")
        .expect("the reply is in the ticket's history");
    assert_eq!(replied["actor"]["kind"], "INTEGRATOR");
    let me = server.ok(&token, "{ me { apiTokenId } }", json!({})).await;
    assert_eq!(replied["actor"]["actorId"], me["me"]["apiTokenId"]);

    // Once its admin is no longer an admin, the token writes nothing but still reads.
    server
        .ok(
            &other_admin.token,
            "mutation($id: ID!) { changeAgentRole(input: {agentId: $id, role: AGENT}) { position } }",
            json!({"id": admin.id}),
        )
        .await;
    let refused = server
        .gql(
            Some(&token),
            reply,
            json!({"t": ticket, "text": "Once more"}),
        )
        .await;
    assert_eq!(code(&refused), Some("FORBIDDEN"), "{refused}");
    let note = server
        .gql(
            Some(&token),
            "mutation($t: ID!) { addInternalNote(input: {ticketId: $t, text: \"x\"}) { position } }",
            json!({"t": ticket}),
        )
        .await;
    assert_eq!(code(&note), Some("FORBIDDEN"), "{note}");
    let still_reads = server
        .gql(
            Some(&token),
            "query($t: ID!) { ticket(id: $t) { id } }",
            json!({"t": ticket}),
        )
        .await;
    assert!(still_reads.get("errors").is_none(), "{still_reads}");
    server.stop().await;
}

#[tokio::test]
async fn ended_sessions_are_refused_by_this_instance_at_once_and_by_others_within_their_bound() {
    use api::auth::{AuthConfig, AuthService, Authentication};
    let server = Server::start("session_memory").await;
    let admin = server.admin().await;
    let agent = AgentId(admin.id.parse().unwrap());
    let accepted = |auth: Authentication| matches!(auth, Authentication::Authenticated(_));
    // Two instances over one database; the second trusts nothing it read (bound zero).
    let here = AuthService::new(
        app::commands::CommandService::new(server.log.clone()),
        None,
        AuthConfig::default(),
    )
    .await
    .unwrap();
    let untrusting = AuthConfig {
        session_check_ttl: std::time::Duration::ZERO,
        ..AuthConfig::default()
    };
    let elsewhere = AuthService::new(
        app::commands::CommandService::new(server.log.clone()),
        None,
        untrusting,
    )
    .await
    .unwrap();
    assert!(accepted(here.authenticate(Some(&admin.token)).await));
    assert!(accepted(elsewhere.authenticate(Some(&admin.token)).await));

    // The instance that ends the sessions forgets what it remembered of them.
    here.end_all_sessions(agent).await.unwrap();
    assert!(!accepted(here.authenticate(Some(&admin.token)).await));
    assert!(!accepted(elsewhere.authenticate(Some(&admin.token)).await));
    server.stop().await;
}
