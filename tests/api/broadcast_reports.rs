//! What admins read of a broadcast besides its counters: the recipients report as CSV, button
//! presses per button and per recipient, the progress with its rate and ETA, the customers who
//! opted out. Each refused to callers without the permission.

use app::commands::{CommandContext, CommandService};
use chrono::Utc;
use domain::agent::Role;
use domain::broadcast::{
    Audience, Broadcast, BroadcastCommand, BroadcastContent, ButtonAction, InlineButton, Outcome,
    RecipientOutcome, ResolvedAudience, TextFormat,
};
use domain::content::TelegramMessageId;
use domain::customer::{Customer, CustomerCommand};
use domain::{AgentId, BroadcastId, CustomerId, StreamId};
use eventlog::{Actor, Position};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Server, code};
use crate::ws::{Protocol, Ws};

pub(crate) fn commands(server: &Server) -> CommandService<eventlog::postgres::PostgresLog> {
    CommandService::new(server.log.clone())
}

pub(crate) async fn run(
    server: &Server,
    broadcast: BroadcastId,
    command: &BroadcastCommand,
) -> Position {
    commands(server)
        .execute::<Broadcast>(
            StreamId::Broadcast(broadcast),
            command,
            &CommandContext::new(Actor::system("test")),
        )
        .await
        .unwrap()
        .position
        .unwrap()
}

/// A running broadcast to `recipients` (its frozen audience) with a link button (0) and two
/// callback buttons (1 "Yes", 2 "No"). Nothing sends it: the tests record outcomes themselves.
pub(crate) async fn running(server: &Server, recipients: Vec<i64>) -> BroadcastId {
    let id = draft(server).await;
    let started = run(
        server,
        id,
        &BroadcastCommand::Start {
            audience: ResolvedAudience {
                segment: Audience::AllCustomers,
                recipients: recipients.into_iter().map(CustomerId).collect(),
                excluded: vec![],
            },
            by: Some(AgentId::from_uuid(Uuid::now_v7())),
            at: Utc::now(),
        },
    )
    .await;
    server.caught_up(started).await;
    id
}

pub(crate) async fn draft(server: &Server) -> BroadcastId {
    let id = BroadcastId(Uuid::now_v7());
    let callback = |label: &str, data: &str| InlineButton {
        label: label.into(),
        action: ButtonAction::Callback { data: data.into() },
    };
    let content = BroadcastContent {
        text: Some("New prices from Monday".into()),
        format: TextFormat::Plain,
        media: None,
        unsubscribe_button: true,
        buttons: vec![
            vec![InlineButton {
                label: "Prices".into(),
                action: ButtonAction::Url {
                    url: "https://example.com/prices".into(),
                },
            }],
            vec![callback("Yes", "ok:yes"), callback("No", "ok:no")],
        ],
    };
    let position = run(
        server,
        id,
        &BroadcastCommand::Draft {
            broadcast_id: id,
            audience: Audience::AllCustomers,
            content,
            by: AgentId::from_uuid(Uuid::now_v7()),
            at: Utc::now(),
        },
    )
    .await;
    server.caught_up(position).await;
    id
}

fn delivered(customer: i64) -> RecipientOutcome {
    RecipientOutcome {
        customer: CustomerId(customer),
        outcome: Outcome::Delivered {
            telegram_message_id: TelegramMessageId(i32::try_from(customer % 1_000_000).unwrap()),
        },
    }
}

fn failed(customer: i64, reason: &str) -> RecipientOutcome {
    RecipientOutcome {
        customer: CustomerId(customer),
        outcome: Outcome::Failed {
            reason: reason.into(),
            retryable: false,
        },
    }
}

async fn record(server: &Server, broadcast: BroadcastId, outcomes: Vec<RecipientOutcome>) {
    let position = run(
        server,
        broadcast,
        &BroadcastCommand::RecordOutcomes {
            outcomes,
            at: Utc::now(),
        },
    )
    .await;
    server.caught_up(position).await;
}

async fn press(server: &Server, broadcast: BroadcastId, customer: i64, index: u8) {
    let position = run(
        server,
        broadcast,
        &BroadcastCommand::PressButton {
            customer: CustomerId(customer),
            index,
            at: Utc::now(),
        },
    )
    .await;
    server.caught_up(position).await;
}

async fn csv(server: &Server, token: Option<&str>, id: &str) -> reqwest::Response {
    let mut request = server.http.get(format!(
        "http://{}/broadcasts/{id}/recipients.csv",
        server.addr
    ));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The report's rows (header first), read with a real CSV reader.
async fn rows(response: reqwest::Response) -> Vec<Vec<String>> {
    let body = response.bytes().await.unwrap();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&body[..])
        .records()
        .map(|record| record.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn the_recipients_report_is_a_csv_file_safe_to_open_in_a_spreadsheet() {
    let server = Server::start("report_csv").await;
    let admin = server.admin().await;
    // A customer whose name a spreadsheet would run as a formula.
    let (_, position) = server.customer_writes(5_000_001, None, "hi").await;
    server.caught_up(position).await;
    let profile = domain::customer::CustomerProfile {
        first_name: "=HYPERLINK(\"http://evil\")".into(),
        last_name: Some("Smith, \"Jr\"".into()),
        username: Some("anna".into()),
        language_code: None,
    };
    let updated = commands(&server)
        .execute::<Customer>(
            StreamId::Customer(CustomerId(5_000_001)),
            &CustomerCommand::UpdateProfile {
                profile,
                at: Utc::now(),
            },
            &CommandContext::new(Actor::system("test")),
        )
        .await
        .unwrap();
    server.caught_up(updated.position.unwrap()).await;

    // 2,503 recipients, one of them still pending: three pages of the report, the last one
    // short.
    let recipients = [5_000_001, 5_000_002, 6_999_999]
        .into_iter()
        .chain((0..2_500).map(|n| 6_000_000 + n))
        .collect();
    let broadcast = running(&server, recipients).await;
    record(
        &server,
        broadcast,
        vec![delivered(5_000_001), failed(5_000_002, "-1+2 @x")],
    )
    .await;
    for start in (0..2_500).step_by(100) {
        let outcomes = (start..start + 100)
            .map(|n| delivered(6_000_000 + n))
            .collect();
        record(&server, broadcast, outcomes).await;
    }
    press(&server, broadcast, 5_000_001, 1).await;
    press(&server, broadcast, 5_000_001, 2).await;

    let response = csv(&server, Some(&admin.token), &broadcast.0.to_string()).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        format!(
            "attachment; filename=\"broadcast-{}-recipients.csv\"",
            broadcast.0
        )
        .as_str()
    );
    let report = rows(response).await;
    assert_eq!(
        report[0],
        [
            "customer_id",
            "state",
            "reason",
            "retryable",
            "telegram_message_id",
            "updated_at",
            "button_presses",
            "first_name",
            "last_name",
            "username"
        ]
    );
    assert_eq!(report.len(), 1 + 2_503);
    let ids: Vec<i64> = report[1..]
        .iter()
        .map(|row| row[0].parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in id order, no repeats"
    );
    let anna = &report[1];
    assert_eq!(anna[0], "5000001");
    assert_eq!(anna[1], "delivered");
    assert_eq!(anna[6], "2");
    assert_eq!(anna[7], "'=HYPERLINK(\"http://evil\")");
    assert_eq!(anna[8], "Smith, \"Jr\"");
    assert_eq!(anna[9], "anna");
    let refused = &report[2];
    assert_eq!(refused[1], "failed");
    assert_eq!(refused[2], "'-1+2 @x");
    assert_eq!(refused[3], "false");

    // Also by global id; an API token that may read broadcasts but not customers gets no names.
    let global = api::graphql::ids::global("Broadcast", broadcast.0);
    let reader = server.api_token(&admin, &["broadcasts:read"]).await;
    let rows_of_reader = rows(csv(&server, Some(&reader), &global.0).await).await;
    assert_eq!(rows_of_reader.len(), 1 + 2_503);
    assert_eq!(rows_of_reader[1][7], "");
    assert_eq!(rows_of_reader[1][6], "2");
    server.stop().await;
}

#[tokio::test]
async fn the_recipients_report_is_refused_without_the_permission() {
    let server = Server::start("report_authz").await;
    let admin = server.admin().await;
    let broadcast = running(&server, vec![5_100_001]).await;
    record(&server, broadcast, vec![delivered(5_100_001)]).await;
    let id = broadcast.0.to_string();

    let response = csv(&server, None, &id).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), Some("UNAUTHENTICATED"));
    assert_eq!(csv(&server, Some("not-a-token"), &id).await.status(), 401);
    let tickets_only = server.api_token(&admin, &["tickets:read"]).await;
    let response = csv(&server, Some(&tickets_only), &id).await;
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert!(!body.contains("5100001"), "{body}");
    assert_eq!(csv(&server, Some(&admin.token), "nope").await.status(), 400);
    let unknown = Uuid::now_v7().to_string();
    assert_eq!(
        csv(&server, Some(&admin.token), &unknown).await.status(),
        404
    );
    let auditor = server.agent(Role::Auditor, "auditor@example.com").await;
    assert_eq!(csv(&server, Some(&auditor.token), &id).await.status(), 200);
    server.stop().await;
}

const BROADCAST: &str = "query($id: ID!, $state: RecipientStateValue) { broadcast(id: $id) {
    buttonPresses { index label data presses customers }
    progress { state delivered failed skipped total pending ratePerSecond etaSeconds
               estimatedCompletionAt }
    recipients(first: 10, state: $state) { nodes { customerId state reason buttonPresses
               pressedButtons } }
} }";

#[tokio::test]
async fn presses_progress_and_recipients_show_on_the_broadcast() {
    let server = Server::start("broadcast_presses").await;
    let admin = server.admin().await;
    let broadcast = running(&server, (1..=10).collect()).await;
    record(
        &server,
        broadcast,
        vec![delivered(1), delivered(2), failed(3, "Forbidden")],
    )
    .await;
    press(&server, broadcast, 1, 1).await;
    press(&server, broadcast, 1, 1).await;
    press(&server, broadcast, 2, 1).await;
    press(&server, broadcast, 2, 2).await;

    let data = server
        .ok(&admin.token, BROADCAST, json!({ "id": broadcast.0 }))
        .await;
    let shown = &data["broadcast"];
    assert_eq!(
        shown["buttonPresses"],
        json!([
            { "index": 1, "label": "Yes", "data": "ok:yes", "presses": 3, "customers": 2 },
            { "index": 2, "label": "No", "data": "ok:no", "presses": 1, "customers": 1 },
        ])
    );
    let progress = &shown["progress"];
    assert_eq!(progress["state"], "running");
    assert_eq!(progress["delivered"], 2);
    assert_eq!(progress["failed"], 1);
    assert_eq!(progress["total"], 10);
    assert_eq!(progress["pending"], 7);
    // Three sends within the last seconds: a rate, and an ETA for the seven left.
    let rate = progress["ratePerSecond"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 3.0, "{progress}");
    let eta = progress["etaSeconds"].as_i64().unwrap();
    assert!(eta >= 2, "{progress}");
    assert!(progress["estimatedCompletionAt"].is_string());
    // Every frozen recipient has a row: the three with an outcome first (by id), then the
    // seven still pending.
    let nodes = shown["recipients"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 10);
    assert_eq!(nodes[0]["buttonPresses"], 2);
    assert_eq!(nodes[0]["pressedButtons"], json!([1]));
    assert_eq!(nodes[1]["pressedButtons"], json!([1, 2]));
    assert_eq!(nodes[2]["buttonPresses"], 0);
    assert_eq!(nodes[2]["reason"], "Forbidden");

    for (state, expected) in [
        ("FAILED", 1),
        ("DELIVERED", 2),
        ("SKIPPED", 0),
        ("PENDING", 7),
    ] {
        let data = server
            .ok(
                &admin.token,
                BROADCAST,
                json!({ "id": broadcast.0, "state": state }),
            )
            .await;
        let nodes = data["broadcast"]["recipients"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), expected, "{state}");
    }

    // Paused: no rate, no ETA.
    let paused = run(
        &server,
        broadcast,
        &BroadcastCommand::Pause {
            by: AgentId::from_uuid(Uuid::now_v7()),
            at: Utc::now(),
        },
    )
    .await;
    server.caught_up(paused).await;
    let data = server
        .ok(&admin.token, BROADCAST, json!({ "id": broadcast.0 }))
        .await;
    let progress = &data["broadcast"]["progress"];
    assert_eq!(progress["ratePerSecond"], Value::Null);
    assert_eq!(progress["etaSeconds"], Value::Null);
    assert_eq!(progress["pending"], 7);

    // Without a broadcast scope, nothing.
    let tickets_only = server.api_token(&admin, &["tickets:read"]).await;
    let body = server
        .gql(Some(&tickets_only), BROADCAST, json!({ "id": broadcast.0 }))
        .await;
    assert_eq!(code(&body), Some("FORBIDDEN"));
    assert_eq!(body["data"], Value::Null);
    server.stop().await;
}

#[tokio::test]
async fn customers_can_be_listed_by_their_opt_out() {
    let server = Server::start("customers_opted_out").await;
    let admin = server.admin().await;
    server.customer_writes(5_200_001, None, "hi").await;
    server.customer_writes(5_200_002, None, "hello").await;
    let opted = commands(&server)
        .execute::<Customer>(
            StreamId::Customer(CustomerId(5_200_002)),
            &CustomerCommand::OptOutOfBroadcasts { at: Utc::now() },
            &CommandContext::new(Actor::system("test")),
        )
        .await
        .unwrap();
    server.caught_up(opted.position.unwrap()).await;
    let list = "query($out: Boolean) { customers(first: 10, optedOutOfBroadcasts: $out) {
        nodes { customerId optedOutOfBroadcasts } } }";
    for (out, expected) in [
        (
            json!(true),
            json!([{ "customerId": "5200002", "optedOutOfBroadcasts": true }]),
        ),
        (
            json!(false),
            json!([{ "customerId": "5200001", "optedOutOfBroadcasts": false }]),
        ),
    ] {
        let data = server.ok(&admin.token, list, json!({ "out": out })).await;
        assert_eq!(data["customers"]["nodes"], expected);
    }
    let data = server.ok(&admin.token, list, json!({})).await;
    assert_eq!(data["customers"]["nodes"].as_array().unwrap().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn broadcast_progress_pushes_pending_rate_and_eta_as_outcomes_come() {
    let server = Server::start("progress_rate").await;
    let admin = server.admin().await;
    let broadcast = running(&server, (1..=300).collect()).await;
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    ws.subscribe(
        "p",
        "subscription($id: ID!) { broadcastProgress(id: $id) {
            state delivered pending ratePerSecond etaSeconds } }",
        json!({ "id": broadcast.0 }),
    )
    .await;
    let first = ws.data("p").await["broadcastProgress"].clone();
    assert_eq!(first["pending"], 300);
    assert_eq!(first["ratePerSecond"], 0.0);
    assert_eq!(first["etaSeconds"], Value::Null);

    // A batch of 100 sends: the next item shows them, a rate, and when the rest would be done.
    record(&server, broadcast, (1..=100).map(delivered).collect()).await;
    let item = ws.data("p").await["broadcastProgress"].clone();
    assert_eq!(item["delivered"], 100);
    assert_eq!(item["pending"], 200);
    let rate = item["ratePerSecond"].as_f64().unwrap();
    assert!(rate > 0.0 && rate <= 100.0, "{item}");
    let eta = item["etaSeconds"].as_i64().unwrap();
    assert!(eta >= 2, "{item}");
    ws.close().await;
    server.stop().await;
}
