//! Broadcasts end to end: the real server (API, projections, scheduler, delivery worker and its
//! broadcast sender) on a real Postgres, the fake Bot API in place of Telegram. Broadcasts are
//! written, started, paused and cancelled through GraphQL; the fake counts what each chat got.

use std::time::{Duration, Instant};

use app::commands::{CommandContext, CommandService};
use chrono::{TimeDelta, Utc};
use domain::customer::{Customer, CustomerCommand, CustomerProfile};
use domain::{AgentId, CustomerId};
use eventlog::Actor;
use serde_json::{Value, json};
use testkit::eventually;
use testkit::telegram::{Failure, FakeTelegram};
use uuid::Uuid;

use crate::support::{Desk, PATIENCE, Receive};
use crate::unstorable::{admin_token, graphql};

const CREATE: &str =
    "mutation($input: CreateBroadcastInput!) { createBroadcast(input: $input) { broadcastId } }";
const START: &str =
    "mutation($input: BroadcastInput!) { startBroadcast(input: $input) { position } }";
const PAUSE: &str =
    "mutation($input: BroadcastInput!) { pauseBroadcast(input: $input) { position } }";
const CANCEL: &str =
    "mutation($input: BroadcastInput!) { cancelBroadcast(input: $input) { position } }";
const SCHEDULE: &str =
    "mutation($input: ScheduleBroadcastInput!) { scheduleBroadcast(input: $input) { position } }";

/// Registers customers `ids` straight through the command service (as the bot would on their
/// first message), with `language`.
async fn register(desk: &Desk, ids: impl IntoIterator<Item = i64>, language: &str) {
    let commands = CommandService::new(desk.log.clone());
    let context = CommandContext::new(Actor::system("test"));
    for id in ids {
        let command = CustomerCommand::Register {
            customer_id: CustomerId(id),
            profile: CustomerProfile {
                first_name: format!("Customer {id}"),
                last_name: None,
                username: None,
                language_code: Some(language.to_owned()),
            },
            at: Utc::now(),
        };
        commands
            .execute::<Customer>(CustomerId(id).stream(), &command, &context)
            .await
            .unwrap();
    }
}

async fn customer(desk: &Desk, id: i64, command: CustomerCommand) {
    CommandService::new(desk.log.clone())
        .execute::<Customer>(
            CustomerId(id).stream(),
            &command,
            &CommandContext::new(Actor::system("test")),
        )
        .await
        .unwrap();
}

/// Waits until the `customers` read model holds `n` customers.
async fn customers_projected(desk: &Desk, n: i64) {
    desk.wait_for_rows("select count(*) from customers", n)
        .await;
}

async fn ok(desk: &Desk, token: &str, query: &str, input: Value) -> Value {
    let body = graphql(desk, Some(token), query, json!({ "input": input })).await;
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body
}

async fn create(desk: &Desk, token: &str, audience: Value, content: Value) -> String {
    let body = ok(
        desk,
        token,
        CREATE,
        json!({ "audience": audience, "content": content }),
    )
    .await;
    body["data"]["createBroadcast"]["broadcastId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The broadcast's row: state and counters.
async fn row(desk: &Desk, id: &str) -> (String, i32, i32, i32, Option<i32>) {
    sqlx::query_as(
        "select state, delivered, failed, skipped, total_recipients from broadcasts where id = $1",
    )
    .bind(Uuid::parse_str(id).unwrap())
    .fetch_optional(&desk.pool)
    .await
    .unwrap()
    .unwrap_or_else(|| ("not projected yet".to_owned(), 0, 0, 0, None))
}

async fn wait_state(desk: &Desk, id: &str, state: &str, patience: Duration) {
    eventually(
        async || {
            let now = row(desk, id).await;
            if now.0 == state {
                Ok(())
            } else {
                Err(format!("waiting for {state}: {now:?}"))
            }
        },
        patience,
    )
    .await;
}

/// Each recipient row: (customer, state, reason).
async fn recipients(desk: &Desk, id: &str) -> Vec<(i64, String, Option<String>)> {
    sqlx::query_as(
        "select customer_id, state, reason from broadcast_recipients \
         where broadcast_id = $1 order by customer_id",
    )
    .bind(Uuid::parse_str(id).unwrap())
    .fetch_all(&desk.pool)
    .await
    .unwrap()
}

/// The accepted sends of `chats`, by chat.
fn got(telegram: &FakeTelegram, chats: impl IntoIterator<Item = i64>) -> Vec<(i64, usize)> {
    let accepted = telegram.accepted_per_chat();
    chats
        .into_iter()
        .map(|chat| (chat, accepted.get(&chat).copied().unwrap_or(0)))
        .collect()
}

#[tokio::test]
async fn a_broadcast_reaches_its_frozen_audience_once_and_records_every_outcome_with_its_reason() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("bc_frozen", &telegram, Receive::Webhook).await;
    let token = admin_token(&desk).await;
    let base = 7_100_000;
    register(&desk, base + 1..=base + 9, "en").await;
    let admin = AgentId(Uuid::now_v7());
    customer(
        &desk,
        base + 2,
        CustomerCommand::OptOutOfBroadcasts { at: Utc::now() },
    )
    .await;
    customer(
        &desk,
        base + 3,
        CustomerCommand::RecordBotBlocked { at: Utc::now() },
    )
    .await;
    customer(
        &desk,
        base + 4,
        CustomerCommand::Ban {
            by: admin,
            reason: None,
            at: Utc::now(),
        },
    )
    .await;
    customers_projected(&desk, 9).await;
    // Telegram's answers for some: blocked now, a refusal, two server errors then success.
    telegram.block_chat(base + 5);
    telegram.fail_chat(
        base + 6,
        Failure::BadRequest("chat not found".to_owned()),
        1,
    );
    telegram.fail_chat(
        base + 7,
        Failure::Api {
            code: 502,
            description: "Bad Gateway".to_owned(),
        },
        2,
    );

    let id = create(
        &desk,
        &token,
        json!({ "allCustomers": true }),
        json!({
            "text": "Our prices change on Monday",
            "buttons": [[
                { "label": "Read more", "url": "https://example.com/prices" },
                { "label": "Interested", "callbackData": "interested" }
            ]]
        }),
    )
    .await;
    ok(&desk, &token, START, json!({ "broadcastId": id })).await;
    // Arrives after the start: not in the frozen audience.
    register(&desk, [base + 10], "en").await;

    wait_state(&desk, &id, "completed", PATIENCE).await;
    let chats = base + 1..=base + 10;
    assert_eq!(
        got(&telegram, chats.clone()),
        chats
            .clone()
            .map(|chat| {
                let once = [base + 1, base + 7, base + 8, base + 9].contains(&chat);
                (chat, usize::from(once))
            })
            .collect::<Vec<_>>(),
        "each reachable recipient exactly once, nobody else"
    );
    // The message as Telegram got it: the text and the buttons.
    let sent = telegram
        .calls_of("sendMessage")
        .into_iter()
        .find(|call| call.chat_id() == Some(base + 1) && call.succeeded())
        .unwrap();
    assert_eq!(sent.text().as_deref(), Some("Our prices change on Monday"));
    let markup = sent.json_param("reply_markup").unwrap();
    assert_eq!(
        markup["inline_keyboard"][0][0]["url"],
        "https://example.com/prices"
    );

    let reason = |r: &str| Some(r.to_owned());
    assert_eq!(
        recipients(&desk, &id).await,
        [
            (base + 1, "delivered".to_owned(), None),
            (base + 2, "skipped".to_owned(), reason("opted_out")),
            (base + 3, "skipped".to_owned(), reason("blocked_bot")),
            (base + 4, "skipped".to_owned(), reason("banned")),
            (
                base + 5,
                "failed".to_owned(),
                reason("Forbidden: bot was blocked by the user")
            ),
            (
                base + 6,
                "failed".to_owned(),
                reason("Bad Request: chat not found")
            ),
            (base + 7, "delivered".to_owned(), None),
            (base + 8, "delivered".to_owned(), None),
            (base + 9, "delivered".to_owned(), None),
        ]
    );
    assert_eq!(
        row(&desk, &id).await,
        ("completed".to_owned(), 4, 2, 3, Some(9))
    );
    // The 403 recorded that the customer blocked the bot.
    desk.wait_for_rows(
        "select count(*) from customers where id = 7100005 and blocked_bot",
        1,
    )
    .await;
    desk.stop().await;
}

#[tokio::test]
async fn an_explicit_list_leaves_out_unknown_ids_and_a_customer_who_opts_out_meanwhile_is_skipped()
{
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start_configured(
        testkit::DatabaseName::fresh("bot_bc_explicit"),
        &telegram,
        Receive::Webhook,
        |config| config.with_messages_per_second(5).unwrap(),
    )
    .await;
    let token = admin_token(&desk).await;
    let base = 7_200_000;
    register(&desk, base + 1..=base + 40, "de").await;
    customers_projected(&desk, 40).await;
    let listed: Vec<String> = (base + 1..=base + 40)
        .chain([base + 99])
        .map(|id| id.to_string())
        .collect();
    let id = create(
        &desk,
        &token,
        json!({ "customerIds": listed }),
        json!({ "text": "Hallo" }),
    )
    .await;
    ok(&desk, &token, START, json!({ "broadcastId": id })).await;
    // At 5 messages a second the last recipients go out seconds later: one of them opts
    // out meanwhile.
    customer(
        &desk,
        base + 40,
        CustomerCommand::OptOutOfBroadcasts { at: Utc::now() },
    )
    .await;
    wait_state(&desk, &id, "completed", PATIENCE).await;
    let rows = recipients(&desk, &id).await;
    assert_eq!(
        rows.last(),
        Some(&(
            base + 99,
            "skipped".to_owned(),
            Some("unknown_customer".to_owned())
        ))
    );
    assert_eq!(
        rows[39],
        (
            base + 40,
            "skipped".to_owned(),
            Some("opted_out".to_owned())
        )
    );
    let accepted = telegram.accepted_per_chat();
    assert_eq!(accepted.get(&(base + 40)), None);
    assert!((base + 1..base + 40).all(|chat| accepted.get(&chat) == Some(&1)));
    desk.stop().await;
}

#[tokio::test]
async fn a_scheduled_broadcast_starts_on_time_and_once_also_across_a_restart_spanning_its_time() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("bc_scheduled", &telegram, Receive::Webhook).await;
    let token = admin_token(&desk).await;
    let base = 7_300_000;
    register(&desk, base + 1..=base + 3, "en").await;
    customers_projected(&desk, 3).await;

    // While the server runs.
    let on_time = create(
        &desk,
        &token,
        json!({ "allCustomers": true }),
        json!({ "text": "A" }),
    )
    .await;
    let due = Utc::now() + TimeDelta::seconds(3);
    ok(
        &desk,
        &token,
        SCHEDULE,
        json!({ "broadcastId": on_time, "sendAt": due.to_rfc3339() }),
    )
    .await;
    wait_state(&desk, &on_time, "completed", PATIENCE).await;
    let (started,): (chrono::DateTime<Utc>,) =
        sqlx::query_as("select started_at from broadcasts where id = $1")
            .bind(Uuid::parse_str(&on_time).unwrap())
            .fetch_one(&desk.pool)
            .await
            .unwrap();
    let late = started - due;
    assert!(
        late >= TimeDelta::zero() && late < TimeDelta::seconds(2),
        "started {late} after its time"
    );

    // Across a restart: due while nothing runs.
    let across = create(
        &desk,
        &token,
        json!({ "allCustomers": true }),
        json!({ "text": "B" }),
    )
    .await;
    let due = Utc::now() + TimeDelta::seconds(2);
    ok(
        &desk,
        &token,
        SCHEDULE,
        json!({ "broadcastId": across, "sendAt": due.to_rfc3339() }),
    )
    .await;
    let database = desk.stop_keeping_database().await;
    // The scenario is a time passing while nothing runs.
    let wait = (due - Utc::now() + TimeDelta::milliseconds(500))
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait).await;
    let restarted_at = Utc::now();
    let desk = Desk::start_on(database, &telegram, Receive::Webhook).await;
    wait_state(&desk, &across, "completed", PATIENCE).await;
    let (started,): (chrono::DateTime<Utc>,) =
        sqlx::query_as("select started_at from broadcasts where id = $1")
            .bind(Uuid::parse_str(&across).unwrap())
            .fetch_one(&desk.pool)
            .await
            .unwrap();
    assert!(
        started - restarted_at < TimeDelta::seconds(5),
        "started {} after the restart",
        started - restarted_at
    );
    assert_eq!(
        desk.count("broadcast.started").await,
        2,
        "each started once"
    );
    assert_eq!(
        got(&telegram, base + 1..=base + 3),
        [(base + 1, 2), (base + 2, 2), (base + 3, 2)],
        "two broadcasts, each once"
    );
    desk.stop().await;
}

#[tokio::test]
async fn pause_resume_and_cancel_from_a_second_instance_take_effect_within_a_second() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start_configured(
        testkit::DatabaseName::fresh("bot_bc_control"),
        &telegram,
        Receive::Webhook,
        |config| config.with_messages_per_second(20).unwrap(),
    )
    .await;
    // A second instance on the same database, without the bot: the API only.
    let other = testkit::TestApp::spawn(desk.app.database().alias(), |_| {}).await;
    let token = admin_token(&desk).await;
    let base = 7_400_000;
    register(&desk, base + 1..=base + 200, "en").await;
    customers_projected(&desk, 200).await;
    let on_other = |query: &'static str, id: &str| {
        let (http, url, token, id) = (
            desk.http.clone(),
            other.url("/graphql"),
            token.clone(),
            id.to_owned(),
        );
        async move {
            let body: Value = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "query": query, "variables": { "input": { "broadcastId": id } } }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(body.get("errors").is_none(), "{body}");
        }
    };
    let id = create(
        &desk,
        &token,
        json!({ "allCustomers": true }),
        json!({ "text": "Hi" }),
    )
    .await;
    on_other(START, &id).await;
    let sent = || telegram.accepted_per_chat().len();
    eventually(
        async || {
            if sent() >= 20 {
                Ok(())
            } else {
                Err(format!("{} sent", sent()))
            }
        },
        PATIENCE,
    )
    .await;

    // Pause: within a second nothing more goes out.
    on_other(PAUSE, &id).await;
    let paused_at = Instant::now();
    let settled = eventually(
        async || {
            let before = sent();
            tokio::time::sleep(Duration::from_millis(300)).await;
            if sent() == before {
                Ok(before)
            } else {
                Err("still sending".to_owned())
            }
        },
        Duration::from_secs(5),
    )
    .await;
    assert!(
        paused_at.elapsed() < Duration::from_millis(1_600),
        "the pause took {:?}",
        paused_at.elapsed()
    );
    assert!(settled < 200, "the pause came before the end");
    wait_state(&desk, &id, "paused", PATIENCE).await;

    // Resume (startBroadcast on a paused one), then cancel.
    on_other(START, &id).await;
    eventually(
        async || {
            if sent() > settled + 10 {
                Ok(())
            } else {
                Err(format!("{} sent", sent()))
            }
        },
        PATIENCE,
    )
    .await;
    on_other(CANCEL, &id).await;
    let cancelled_at = Instant::now();
    let last = eventually(
        async || {
            let before = sent();
            tokio::time::sleep(Duration::from_millis(300)).await;
            if sent() == before {
                Ok(before)
            } else {
                Err("still sending".to_owned())
            }
        },
        Duration::from_secs(5),
    )
    .await;
    assert!(cancelled_at.elapsed() < Duration::from_millis(1_600));
    assert!(last < 200, "the cancel came before the end");
    // Whatever went out is recorded, the rest never goes.
    eventually(
        async || {
            let (state, delivered, ..) = row(&desk, &id).await;
            let accepted = i32::try_from(sent()).unwrap();
            if state == "cancelled" && delivered == accepted {
                Ok(())
            } else {
                Err(format!("{state}: {delivered} recorded, {accepted} sent"))
            }
        },
        PATIENCE,
    )
    .await;
    let rows = recipients(&desk, &id).await;
    let cancelled = rows.iter().filter(|row| row.1 == "cancelled").count();
    assert_eq!(cancelled + last, 200);
    assert!(telegram.accepted_per_chat().values().all(|n| *n == 1));
    drop(other);
    desk.stop().await;
}

#[tokio::test]
async fn delivery_slows_to_telegrams_caps_without_losing_or_doubling_a_message() {
    let telegram = FakeTelegram::start().await;
    telegram.enforce_caps(20);
    let desk = Desk::start_configured(
        testkit::DatabaseName::fresh("bot_bc_caps"),
        &telegram,
        Receive::Webhook,
        // Set above what Telegram (here) takes: its 429s must slow the bot down.
        |config| config.with_messages_per_second(60).unwrap(),
    )
    .await;
    let token = admin_token(&desk).await;
    let base = 7_500_000;
    register(&desk, base + 1..=base + 60, "en").await;
    customers_projected(&desk, 60).await;
    let id = create(
        &desk,
        &token,
        json!({ "allCustomers": true }),
        json!({ "text": "Hi" }),
    )
    .await;
    let started = Instant::now();
    ok(&desk, &token, START, json!({ "broadcastId": id })).await;
    wait_state(&desk, &id, "completed", Duration::from_secs(120)).await;
    let took = started.elapsed();
    let accepted = telegram.accepted_per_chat();
    assert_eq!(accepted.len(), 60, "nothing lost");
    assert!(accepted.values().all(|n| *n == 1), "nothing doubled");
    assert!(telegram.refused_by_caps() > 0, "the caps were met");
    // Never faster than Telegram allows: 60 messages within 20/s (and its 2-message bucket)
    // take at least about 3 s. Each 429 stops the whole bot for a second, so it is slower.
    assert!(took > Duration::from_millis(2_900), "took {took:?}");
    assert_eq!(row(&desk, &id).await.1, 60);
    desk.stop().await;
}

/// A private text message update from `customer`.
fn message(update_id: i64, customer: i64, text: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": Utc::now().timestamp(),
            "chat": { "id": customer, "type": "private", "first_name": "Cat" },
            "from": { "id": customer, "is_bot": false, "first_name": "Cat", "language_code": "en" },
            "text": text
        }
    })
}

#[tokio::test]
async fn a_reply_written_during_a_broadcast_reaches_its_chat_within_the_stated_bound() {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("bc_reply", &telegram, Receive::Webhook).await;
    let token = admin_token(&desk).await;
    let base = 7_600_000;
    register(&desk, base + 1..=base + 150, "en").await;
    // A customer outside the broadcast's segment with a ticket, and one inside it.
    let outsider = 7_699_001;
    let insider = base + 150;
    desk.post(&message(1, outsider, "help")).await;
    desk.post(&message(2, insider, "help too")).await;
    desk.wait_for_rows("select count(*) from tickets", 2).await;
    customers_projected(&desk, 151).await;
    let ticket_of = async |customer: i64| -> String {
        let (id,): (Uuid,) = sqlx::query_as("select id from tickets where customer_id = $1")
            .bind(customer)
            .fetch_one(&desk.pool)
            .await
            .unwrap();
        id.to_string()
    };
    let id = create(
        &desk,
        &token,
        json!({ "customerIds": (base + 1..=base + 150).map(|c| c.to_string()).collect::<Vec<_>>() }),
        json!({ "text": "News" }),
    )
    .await;
    ok(&desk, &token, START, json!({ "broadcastId": id })).await;
    // At 30/s the 150 messages take five seconds: reply in the middle.
    eventually(
        async || {
            let n = telegram.accepted_per_chat().len();
            if n >= 40 {
                Ok(())
            } else {
                Err(format!("{n} sent"))
            }
        },
        PATIENCE,
    )
    .await;
    let mut latencies = Vec::new();
    for customer in [outsider, insider] {
        let ticket = ticket_of(customer).await;
        ok(
            &desk,
            &token,
            "mutation($input: ReplyToTicketInput!) { replyToTicket(input: $input) { messageId } }",
            json!({ "ticketId": ticket, "text": format!("reply to {customer}") }),
        )
        .await;
        let written = Instant::now();
        let call = eventually(
            async || {
                telegram
                    .calls_of("sendMessage")
                    .into_iter()
                    .find(|call| call.text() == Some(format!("reply to {customer}")))
                    .ok_or("not yet")
            },
            PATIENCE,
        )
        .await;
        latencies.push(call.at.saturating_duration_since(written));
    }
    let broadcast_done = row(&desk, &id).await.0;
    assert_ne!(
        broadcast_done, "completed",
        "the replies came while it was sending"
    );
    // The bound (docs/architecture.md): the log's way to the worker, one token of the
    // bot-wide limit (33 ms at 30/s), and for a recipient of the broadcast the rest of its
    // chat's second.
    assert!(latencies[0] < Duration::from_millis(500), "{latencies:?}");
    assert!(latencies[1] < Duration::from_millis(1_500), "{latencies:?}");
    wait_state(&desk, &id, "completed", PATIENCE).await;
    desk.stop().await;
}
