//! The WebSocket protocols as their reference clients see them: every close code of
//! `graphql-transport-ws` through the reference `graphql-ws` client (a Node script in
//! `tests/clients/`, run as a child process), and the legacy protocol's close after
//! `connection_error` through our own client speaking its frames.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::Server;
use crate::ws::{Frame, Protocol, Ws};

/// A query that runs until the client stops it.
const ENDLESS: &str = "subscription { events { cursor } }";

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Installs the reference clients (`npm ci`) once, when `scripts/test.sh` has not already.
fn ensure_clients_installed() {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap();
    if *installed || clients_dir().join("node_modules/graphql-ws").is_dir() {
        *installed = true;
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(clients_dir())
        .status()
        .expect("npm runs (Node.js 20 and npm are needed for the protocol tests)");
    assert!(status.success(), "npm ci in tests/clients failed");
    *installed = true;
}

/// Runs `tests/clients/<script>` with `args` and answers the one line of JSON it prints.
pub async fn node_script(script: &str, args: Vec<String>) -> Value {
    let script = clients_dir().join(script);
    tokio::task::spawn_blocking(move || {
        ensure_clients_installed();
        let output = Command::new("node")
            .arg(&script)
            .args(&args)
            .output()
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{args:?}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let outcome: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|err| panic!("{args:?}: {err}: {stdout}"));
        outcome
    })
    .await
    .unwrap()
}

/// Runs `scenario` of `tests/clients/graphql-ws.mjs` against `server`; answers what the
/// reference client saw (`closed {code reason name}`, `results`, `errors`).
async fn reference_client(server: &Server, scenario: &str, token: &str, query: &str) -> Value {
    let url = format!("ws://{}/graphql/ws", server.addr);
    let args = [scenario, &url, token, query].map(str::to_owned).to_vec();
    let outcome = node_script("graphql-ws.mjs", args).await;
    assert!(outcome.get("timedOut").is_none(), "{scenario}: {outcome}");
    outcome
}

/// Asserts the reference client saw the socket closed with `code`, named `name` by the
/// reference library, and answers the reason.
fn closed_with(outcome: &Value, code: u16, name: &str) -> String {
    let closed = &outcome["closed"];
    assert_eq!(closed["code"], json!(code), "{outcome}");
    assert_eq!(closed["name"], json!(name), "{outcome}");
    closed["reason"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_refused_or_missing_credential_in_connection_init_closes_with_4403_forbidden() {
    let server = Server::start("ws_forbidden").await;
    let outcome = reference_client(&server, "refused", "not-a-token", "").await;
    let reason = closed_with(&outcome, 4403, "Forbidden");
    assert!(reason.starts_with("Forbidden: "), "{reason}");
    let outcome = reference_client(&server, "anonymous", "", "").await;
    let reason = closed_with(&outcome, 4403, "Forbidden");
    assert!(reason.contains("connection_init"), "{reason}");
    server.stop().await;
}

#[tokio::test]
async fn subscribing_before_connection_init_closes_with_4401_unauthorized() {
    let server = Server::start("ws_unauthorized").await;
    let outcome = reference_client(&server, "subscribe-first", "", "{ __typename }").await;
    assert_eq!(closed_with(&outcome, 4401, "Unauthorized"), "Unauthorized");
    server.stop().await;
}

#[tokio::test]
async fn a_socket_without_connection_init_closes_with_4408_once_the_wait_is_over() {
    let mut config = crate::support::test_config();
    config.limits.socket_init_timeout = Duration::from_millis(1_500);
    let server = Server::start_with("ws_init_timeout", config).await;
    let started = Instant::now();
    let outcome = reference_client(&server, "silent", "", "").await;
    assert_eq!(
        closed_with(&outcome, 4408, "ConnectionInitialisationTimeout"),
        "Connection initialisation timeout"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1_500),
        "closed before the wait was over: {:?}",
        started.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn reusing_the_id_of_a_running_operation_closes_with_4409() {
    let server = Server::start("ws_same_id").await;
    let admin = server.admin().await;
    let outcome = reference_client(&server, "same-id", &admin.token, ENDLESS).await;
    assert_eq!(
        closed_with(&outcome, 4409, "SubscriberAlreadyExists"),
        "Subscriber for same-id already exists"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_second_connection_init_closes_with_4429() {
    let server = Server::start("ws_init_twice").await;
    let admin = server.admin().await;
    let outcome = reference_client(&server, "init-twice", &admin.token, "").await;
    assert_eq!(
        closed_with(&outcome, 4429, "TooManyInitialisationRequests"),
        "Too many initialisation requests"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_message_outside_the_protocol_closes_with_4400() {
    let server = Server::start("ws_bad_request").await;
    for scenario in ["not-json", "unknown-type"] {
        let outcome = reference_client(&server, scenario, "", "").await;
        let reason = closed_with(&outcome, 4400, "BadRequest");
        assert!(
            !reason.is_empty(),
            "{scenario}: the reason says what is wrong"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_reference_client_runs_an_operation_and_gets_validation_errors_as_an_error_message() {
    let server = Server::start("ws_reference_run").await;
    let admin = server.admin().await;
    let outcome = reference_client(&server, "run", &admin.token, "{ me { email } }").await;
    assert_eq!(
        outcome["results"],
        json!([{ "data": { "me": { "email": "admin@example.com" } } }]),
        "{outcome}"
    );
    assert_eq!(outcome["errors"], json!([]), "{outcome}");

    let outcome = reference_client(&server, "run", &admin.token, "{ me { nope } }").await;
    assert_eq!(
        outcome["results"],
        json!([]),
        "no `next` before `error`: {outcome}"
    );
    assert_eq!(
        outcome["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{outcome}"
    );
    server.stop().await;
}

/// The legacy protocol has no close codes of its own: `connection_error` says why, and a close
/// frame with the code of the newer protocol follows.
#[tokio::test]
async fn the_legacy_protocol_sends_connection_error_then_a_close_frame() {
    let mut config = crate::support::test_config();
    config.limits.socket_init_timeout = Duration::from_millis(500);
    let server = Server::start_with("ws_legacy_close", config).await;
    let admin = server.admin().await;
    let init = |token: &str| json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    let start = json!({ "type": "start", "id": "1", "payload": { "query": "{ __typename }" } });

    let cases: [(&str, Vec<Value>, u16); 4] = [
        ("refused", vec![init("not-a-token")], 4403),
        ("start first", vec![start], 4401),
        (
            "init twice",
            vec![init(&admin.token), init(&admin.token)],
            4429,
        ),
        ("silent", vec![], 4408),
    ];
    for (case, messages, code) in cases {
        let mut ws = Ws::open(&server, Protocol::Legacy).await;
        for message in messages {
            ws.send(message).await;
        }
        let error = loop {
            match ws.frame().await {
                Frame::Json(value) if value["type"] == "connection_ack" => {}
                Frame::Json(value) => break value,
                Frame::Closed(code) => panic!("{case}: closed ({code:?}) without connection_error"),
            }
        };
        assert_eq!(error["type"], "connection_error", "{case}: {error}");
        assert!(error["payload"]["message"].is_string(), "{case}: {error}");
        match ws.frame().await {
            Frame::Closed(closed) => assert_eq!(closed, Some(code), "{case}"),
            Frame::Json(value) => panic!("{case}: expected the close frame, got {value}"),
        }
    }
    server.stop().await;
}
