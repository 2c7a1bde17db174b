//! Two-factor sign-in: enrolment, the challenge `login` hands out, codes and recovery codes,
//! replays, throttles, the team's policy with its restricted sign-in, an admin's reset, and
//! what the log records (never a secret or a code). Codes are computed here with totp-rs from
//! the `otpauth://` URI the server hands out, as an authenticator app would.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use domain::agent::Role;
use serde_json::{Value, json};
use totp_rs::TOTP;

use crate::support::{Agent, PASSWORD, Server, code, test_config};

const LOGIN: &str = "mutation($email: String!, $password: String!) {
    login(input: {email: $email, password: $password}) {
        accessToken refreshToken agentId mustEnrolSecondFactor deviceToken } }";
const SECOND: &str = "mutation($challenge: String!, $code: String, $recovery: String) {
    loginSecondFactor(input: {challenge: $challenge, code: $code, recoveryCode: $recovery}) {
        accessToken deviceToken mustEnrolSecondFactor } }";
const ENROL: &str = "mutation($password: String!) {
    enrolSecondFactor(input: {currentPassword: $password}) { secret otpauthUri } }";
const CONFIRM: &str = "mutation($code: String!) { confirmSecondFactor(input: {code: $code}) {
    recoveryCodes session { accessToken mustEnrolSecondFactor } } }";
const STATUS: &str = "{ systemStatus { logHead } }";
const ME: &str = "{ me { secondFactorEnrolled mustEnrolSecondFactor } }";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits until the current 30-second step has at least five seconds left, so a code computed
/// now is checked within the step it was computed for.
async fn early_in_a_step() {
    testkit::eventually(
        || async { (now() % 30 < 25).then_some(()) },
        Duration::from_secs(10),
    )
    .await;
}

/// The code an app shows `steps` steps from now.
fn code_at(app: &TOTP, steps: i64) -> String {
    let time = i64::try_from(now()).unwrap() + steps * 30;
    app.generate(u64::try_from(time).unwrap())
}

/// Enrols and confirms a second factor for `agent` (with the code of the previous step, which
/// is accepted); the app, the recovery codes and the new access token.
async fn enrol(server: &Server, agent: &Agent) -> (TOTP, Vec<String>, String) {
    let data = server
        .ok(&agent.token, ENROL, json!({"password": PASSWORD}))
        .await;
    let uri = data["enrolSecondFactor"]["otpauthUri"].as_str().unwrap();
    let app = TOTP::from_url(uri).unwrap();
    early_in_a_step().await;
    let data = server
        .ok(&agent.token, CONFIRM, json!({"code": code_at(&app, -1)}))
        .await;
    let confirmed = &data["confirmSecondFactor"];
    let codes = confirmed["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let token = confirmed["session"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    (app, codes, token)
}

/// Signs in with the password; the challenge of the `SECOND_FACTOR_REQUIRED` answer.
async fn challenge(server: &Server, email: &str) -> String {
    let body = server
        .gql(None, LOGIN, json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(code(&body), Some("SECOND_FACTOR_REQUIRED"), "{body:#}");
    assert!(body["errors"][0]["extensions"]["challengeExpiresAt"].is_string());
    body["errors"][0]["extensions"]["challenge"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn second(
    server: &Server,
    challenge: &str,
    code: Option<&str>,
    recovery: Option<&str>,
) -> Value {
    server
        .gql(
            None,
            SECOND,
            json!({"challenge": challenge, "code": code, "recovery": recovery}),
        )
        .await
}

/// The agent's events: types and payloads.
async fn agent_events(server: &Server, agent: &Agent) -> Vec<(String, Value)> {
    sqlx::query_as(
        "select event_type, payload from events where stream_id = $1 order by stream_version",
    )
    .bind(format!("agent-{}", agent.id))
    .fetch_all(&server.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn sign_in_asks_for_a_code_once_the_enrolment_is_confirmed_and_a_code_works_once() {
    let server = Server::start("tfa_flow").await;
    let ann = server.agent(Role::Agent, "ann@example.com").await;

    // Enrolling takes the current password.
    let body = server
        .gql(
            Some(&ann.token),
            ENROL,
            json!({"password": "not hers at all"}),
        )
        .await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    // Enrolling alone changes nothing at sign-in.
    let data = server
        .ok(&ann.token, ENROL, json!({"password": PASSWORD}))
        .await;
    let uri = data["enrolSecondFactor"]["otpauthUri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        uri.starts_with("otpauth://totp/Ledgerdesk:ann%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains(data["enrolSecondFactor"]["secret"].as_str().unwrap()));
    let again = server.login("ann@example.com", PASSWORD).await;
    let app = TOTP::from_url(&uri).unwrap();

    // A wrong code does not confirm; the app's current code does, and ends other sessions.
    early_in_a_step().await;
    let confirming = code_at(&app, 0);
    let wrong = if confirming == "000000" {
        "111111"
    } else {
        "000000"
    };
    let body = server
        .gql(Some(&again.token), CONFIRM, json!({"code": wrong}))
        .await;
    assert_eq!(code(&body), Some("VALIDATION"), "{body:#}");
    let data = server
        .ok(&again.token, CONFIRM, json!({"code": confirming}))
        .await;
    let confirmed = &data["confirmSecondFactor"];
    assert_eq!(confirmed["recoveryCodes"].as_array().unwrap().len(), 10);
    let token = confirmed["session"]["accessToken"].as_str().unwrap();
    assert_eq!(
        code(&server.gql(Some(&ann.token), STATUS, json!({})).await),
        Some("UNAUTHENTICATED")
    );
    assert_eq!(
        code(&server.gql(Some(&again.token), STATUS, json!({})).await),
        Some("UNAUTHENTICATED")
    );
    let me = server.ok(token, ME, json!({})).await;
    assert_eq!(me["me"]["secondFactorEnrolled"], json!(true));
    let body = server
        .gql(Some(token), CONFIRM, json!({"code": code_at(&app, 0)}))
        .await;
    assert_eq!(code(&body), Some("CONFLICT"), "confirming twice: {body:#}");
    let body = server
        .gql(Some(token), ENROL, json!({"password": PASSWORD}))
        .await;
    assert_eq!(code(&body), Some("CONFLICT"), "enrolling twice: {body:#}");

    // Now the password alone yields a challenge, not a session.
    let first = challenge(&server, "ann@example.com").await;
    // The code that confirmed is spent: the same code again is refused.
    let body = second(&server, &first, Some(&confirming), None).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("used already")
    );
    // The next step's code (a phone clock a little ahead) works, once.
    early_in_a_step().await;
    let next = code_at(&app, 1);
    let body = second(&server, &first, Some(&next), None).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let session = &body["data"]["loginSecondFactor"];
    assert!(session["deviceToken"].is_string());
    let access = session["accessToken"].as_str().unwrap();
    assert!(
        server
            .gql(Some(access), STATUS, json!({}))
            .await
            .get("errors")
            .is_none()
    );
    // The challenge is spent.
    let body = second(&server, &first, Some(&code_at(&app, 1)), None).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    // A new challenge refuses the replayed code, and a code older than the last accepted.
    let other = challenge(&server, "ann@example.com").await;
    let body = second(&server, &other, Some(&next), None).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "replay: {body:#}");
    let body = second(&server, &other, Some(&code_at(&app, 0)), None).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "older: {body:#}");
    // Exactly one of code and recoveryCode.
    let body = second(&server, &other, None, None).await;
    assert_eq!(code(&body), Some("VALIDATION"), "{body:#}");
    let body = second(&server, &other, Some("123456"), Some("abcde-fghij")).await;
    assert_eq!(code(&body), Some("VALIDATION"), "{body:#}");
    server.stop().await;
}

#[tokio::test]
async fn the_previous_steps_code_is_accepted_and_an_older_one_refused() {
    let server = Server::start("tfa_steps").await;
    let ann = server.agent(Role::Agent, "ann@example.com").await;
    // Confirmed with the previous step's code (see `enrol`).
    let (app, _, _) = enrol(&server, &ann).await;
    let challenge = challenge(&server, "ann@example.com").await;
    early_in_a_step().await;
    let body = second(&server, &challenge, Some(&code_at(&app, -2)), None).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("wrong code")
    );
    let body = second(&server, &challenge, Some(&code_at(&app, 0)), None).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    server.stop().await;
}

#[tokio::test]
async fn a_recovery_code_works_once_and_the_log_records_its_use_but_no_secret() {
    let server = Server::start("tfa_recovery").await;
    let ann = server.agent(Role::Agent, "ann@example.com").await;
    let (app, codes, _) = enrol(&server, &ann).await;

    let first = challenge(&server, "ann@example.com").await;
    // Typed with capitals and spaces, as people do.
    let typed = format!(" {} ", codes[3].to_uppercase().replace('-', " "));
    let body = second(&server, &first, None, Some(&typed)).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let other = challenge(&server, "ann@example.com").await;
    let body = second(&server, &other, None, Some(&codes[3])).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "spent: {body:#}");
    let body = second(&server, &other, None, Some(&codes[4])).await;
    assert!(body.get("errors").is_none(), "{body:#}");

    let events = agent_events(&server, &ann).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "agent.invited",
            "agent.second_factor_enrolled",
            "agent.recovery_code_used",
            "agent.recovery_code_used"
        ]
    );
    assert_eq!(events[2].1["remaining"], json!(9));
    assert_eq!(events[3].1["remaining"], json!(8));
    // Neither the secret nor any code is anywhere in the log.
    let everything: Vec<String> =
        sqlx::query_scalar("select payload::text || metadata::text from events")
            .fetch_all(&server.pool)
            .await
            .unwrap();
    let secret = app.get_secret_base32();
    for text in &everything {
        assert!(!text.contains(&secret), "the secret is in the log: {text}");
        for recovery in &codes {
            assert!(
                !text.contains(recovery.as_str()),
                "a recovery code is in the log: {text}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn wrong_codes_end_a_challenge_and_then_delay_the_account() {
    let server = Server::start("tfa_limits").await;
    let ann = server.agent(Role::Agent, "ann@example.com").await;
    let (app, _, _) = enrol(&server, &ann).await;
    early_in_a_step().await;
    let right = code_at(&app, 1);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };

    let first = challenge(&server, "ann@example.com").await;
    for _ in 0..5 {
        let body = second(&server, &first, Some(wrong), None).await;
        assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    }
    // Five wrong codes end the challenge, even for the right code.
    let body = second(&server, &first, Some(&right), None).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too many wrong codes")
    );
    // A new challenge: one more wrong code for the account, and the account waits.
    let other = challenge(&server, "ann@example.com").await;
    let body = second(&server, &other, Some(wrong), None).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    let body = second(&server, &other, Some(&right), None).await;
    assert_eq!(code(&body), Some("RATE_LIMITED"), "{body:#}");
    assert!(
        body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // An unknown challenge is refused.
    let body = second(&server, "not a challenge", Some(&right), None).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    // The log learned, once, that someone with the password is guessing codes.
    let types: Vec<String> = agent_events(&server, &ann)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        types,
        [
            "agent.invited",
            "agent.second_factor_enrolled",
            "agent.second_factor_throttled"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_required_second_factor_restricts_an_unenrolled_sign_in_to_enrolling() {
    let server = Server::start("tfa_policy").await;
    let admin = server.admin().await;
    server.agent(Role::Admin, "boss@example.com").await;
    let data = server
        .ok(
            &admin.token,
            "mutation { setTwoFactorPolicy(input: {policy: ADMINS}) { policy } }",
            json!({}),
        )
        .await;
    assert_eq!(data["setTwoFactorPolicy"]["policy"], json!("ADMINS"));
    let worker = server.agent(Role::Agent, "worker@example.com").await;
    let body = server
        .gql(
            Some(&worker.token),
            "mutation { setTwoFactorPolicy(input: {policy: OPTIONAL}) { policy } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), Some("FORBIDDEN"), "{body:#}");
    let data = server
        .ok(&worker.token, "{ twoFactorPolicy }", json!({}))
        .await;
    assert_eq!(data["twoFactorPolicy"], json!("ADMINS"));

    // An agent is not covered; an admin without a second factor gets a restricted sign-in.
    let body = server
        .gql(
            None,
            LOGIN,
            json!({"email": "worker@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(body["data"]["login"]["mustEnrolSecondFactor"], json!(false));
    let body = server
        .gql(
            None,
            LOGIN,
            json!({"email": "boss@example.com", "password": PASSWORD}),
        )
        .await;
    let login = &body["data"]["login"];
    assert_eq!(login["mustEnrolSecondFactor"], json!(true), "{body:#}");
    let restricted = Agent {
        id: login["agentId"].as_str().unwrap().to_owned(),
        email: "boss@example.com".into(),
        token: login["accessToken"].as_str().unwrap().to_owned(),
        refresh: login["refreshToken"].as_str().unwrap().to_owned(),
    };
    let body = server.gql(Some(&restricted.token), STATUS, json!({})).await;
    assert_eq!(code(&body), Some("FORBIDDEN"), "{body:#}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("enrolSecondFactor")
    );
    let me = server.ok(&restricted.token, ME, json!({})).await;
    assert_eq!(me["me"]["mustEnrolSecondFactor"], json!(true));
    // Refreshing keeps the restriction.
    let body = server
        .gql(
            None,
            "mutation($token: String!) { refreshToken(input: {refreshToken: $token}) {
                accessToken mustEnrolSecondFactor } }",
            json!({"token": restricted.refresh}),
        )
        .await;
    assert_eq!(
        body["data"]["refreshToken"]["mustEnrolSecondFactor"],
        json!(true),
        "{body:#}"
    );
    // Enrolling is what it may do; the confirmed enrolment brings a full session.
    let (_, _, token) = enrol(&server, &restricted).await;
    let body = server.gql(Some(&token), STATUS, json!({})).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    // The session that signed in before the policy is not cut short, but its refresh is
    // restricted from then on (here: the first admin, who has no second factor).
    let body = server
        .gql(
            None,
            "mutation($token: String!) { refreshToken(input: {refreshToken: $token}) {
                mustEnrolSecondFactor } }",
            json!({"token": admin.refresh}),
        )
        .await;
    assert_eq!(
        body["data"]["refreshToken"]["mustEnrolSecondFactor"],
        json!(true),
        "{body:#}"
    );

    let policy_set: Vec<Value> = sqlx::query_scalar(
        "select payload from events where event_type = 'settings.two_factor_policy_set'",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap();
    assert_eq!(policy_set.len(), 1);
    assert_eq!(policy_set[0]["policy"], json!("admins"));
    assert_eq!(policy_set[0]["by"], json!(admin.id));
    server.stop().await;
}

#[tokio::test]
async fn an_admin_resets_a_lost_device_and_an_agent_disables_their_own_with_a_code() {
    let server = Server::start_with("tfa_reset", test_config()).await;
    let admin = server.admin().await;
    let ann = server.agent(Role::Agent, "ann@example.com").await;
    let (_, _, token) = enrol(&server, &ann).await;

    let reset = "mutation($agent: ID!) { resetSecondFactor(input: {agentId: $agent}) {
        agentId removed } }";
    let body = server
        .gql(Some(&token), reset, json!({"agent": ann.id}))
        .await;
    assert_eq!(
        code(&body),
        Some("FORBIDDEN"),
        "an agent resets nobody: {body:#}"
    );
    let data = server
        .ok(&admin.token, reset, json!({"agent": ann.id}))
        .await;
    assert_eq!(data["resetSecondFactor"]["removed"], json!(true));
    // Her sessions ended; the password alone signs her in again.
    let body = server.gql(Some(&token), STATUS, json!({})).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    let ann = server.login("ann@example.com", PASSWORD).await;

    // She enrols again and turns it off herself, with a current code.
    let (app, codes, token) = enrol(&server, &ann).await;
    let disable = "mutation($code: String, $recovery: String) {
        disableSecondFactor(input: {code: $code, recoveryCode: $recovery}) { removed } }";
    early_in_a_step().await;
    let wrong = if code_at(&app, 1) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let body = server
        .gql(Some(&token), disable, json!({"code": wrong}))
        .await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    let body = server
        .gql(Some(&token), disable, json!({"recovery": "zzzzz-zzzzz"}))
        .await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    let data = server
        .ok(&token, disable, json!({"code": code_at(&app, 1)}))
        .await;
    assert_eq!(data["disableSecondFactor"]["removed"], json!(true));
    let body = server
        .gql(Some(&token), disable, json!({"recovery": codes[0]}))
        .await;
    assert_eq!(
        code(&body),
        Some("CONFLICT"),
        "nothing left to disable: {body:#}"
    );
    server.login("ann@example.com", PASSWORD).await;

    let events = agent_events(&server, &ann).await;
    let steps: Vec<(&str, Value)> = events
        .iter()
        .filter(|(t, _)| t.contains("second_factor"))
        .map(|(t, payload)| (t.as_str(), payload["by"].clone()))
        .collect();
    assert_eq!(
        steps,
        [
            ("agent.second_factor_enrolled", json!(ann.id)),
            ("agent.second_factor_reset", json!(admin.id)),
            ("agent.second_factor_enrolled", json!(ann.id)),
            ("agent.second_factor_disabled", json!(ann.id)),
        ]
    );
    server.stop().await;
}
