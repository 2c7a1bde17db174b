//! Updates Postgres cannot store as they are never hold the queue: a NUL character anywhere in
//! what a customer sends is replaced and the message recorded, and an update that can never
//! be recorded is kept among the unrecorded updates (visible to admins) while the updates
//! behind it are recorded, over the webhook and over long polling alike.

use api::auth::{AuthConfig, AuthService, NewAgent};
use app::commands::{CommandContext, CommandService};
use domain::agent::Role;
use eventlog::{Actor, AppendRequest, EventLog, ExpectedVersion, Metadata, NewEvent};
use serde_json::{Value, json};
use testkit::eventually;
use testkit::telegram::FakeTelegram;

use crate::support::{Desk, PATIENCE, Receive, SECRET, fixture, fixtures, sender_of};

/// Every message fixture with a NUL put into each of its strings (text, caption, names, user
/// name, language, file names and ids, venue title and address, contact name, forward
/// names…), except the `type` fields that say what an object is (without them the update
/// would not be a private message at all) and MIME types, which teloxide parses (a broken one
/// makes the whole update unreadable to it, another matter than storing it). Each gets its
/// own update and message id.
fn poisoned_messages() -> Vec<Value> {
    let names = fixtures("message_");
    assert!(names.len() >= 30, "fixtures missing: {names:?}");
    names
        .iter()
        .enumerate()
        .map(|(n, name)| {
            let mut update = fixture(name);
            poison(&mut update);
            update["update_id"] = json!(990_000_000 + i64::try_from(n).unwrap());
            update["message"]["message_id"] = json!(70_000 + i64::try_from(n).unwrap());
            update
        })
        .collect()
}

fn poison(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (key, item) in fields.iter_mut() {
                match item {
                    Value::String(text) if key != "type" && key != "mime_type" => {
                        let middle = text.chars().count() / 2;
                        let at = text
                            .char_indices()
                            .nth(middle)
                            .map_or(text.len(), |(i, _)| i);
                        text.insert(at, '\0');
                    }
                    _ => poison(item),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(poison),
        _ => {}
    }
}

/// A good message of `customer` with update id `update_id`.
fn good_message(update_id: i64, customer: i64, text: &str) -> Value {
    let mut update = fixture("message_text");
    update["update_id"] = json!(update_id);
    update["message"]["message_id"] = json!(update_id % 1_000_000);
    update["message"]["from"]["id"] = json!(customer);
    update["message"]["chat"]["id"] = json!(customer);
    update["message"]["text"] = json!(text);
    update
}

async fn count_sql(desk: &Desk, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&desk.pool).await.unwrap()
}

async fn every_nul_is_replaced_and_nothing_waits(receive: Receive, tag: &str) {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start(tag, &telegram, receive).await;
    let poisoned = poisoned_messages();
    let n = i64::try_from(poisoned.len()).unwrap();
    // Each bad update is followed by a good one of another customer: neither waits.
    for (i, bad) in poisoned.iter().enumerate() {
        let good = good_message(
            991_000_000 + i64::try_from(i).unwrap(),
            5_550_000 + i64::try_from(i).unwrap(),
            "after the bad one",
        );
        match receive {
            Receive::Webhook => {
                let before = desk.count("ticket.customer_message_posted").await;
                let status = desk.post_raw(&bad.to_string(), Some(SECRET)).await;
                assert_eq!(status, 200, "webhook answered {status} to {bad}");
                // The webhook answers once the update is handled.
                assert_eq!(
                    desk.count("ticket.customer_message_posted").await,
                    before + 1,
                    "not recorded: {bad}"
                );
                desk.post(&good).await;
            }
            Receive::Polling => {
                telegram.push_update(bad.clone());
                telegram.push_update(good);
            }
        }
    }
    desk.wait_for("ticket.customer_message_posted", 2 * n).await;
    if receive == Receive::Polling {
        eventually(async || telegram.pending_updates() == 0, PATIENCE).await;
    }
    assert_eq!(desk.count("ticket.customer_message_posted").await, 2 * n);
    // Every poisoned message is on the log with U+FFFD where each NUL was, and nothing was
    // given up on.
    // (As the log reads them: the content is stored sealed.)
    let replaced = desk
        .payloads("ticket.customer_message_posted")
        .await
        .iter()
        .filter(|payload| payload.to_string().contains('\u{FFFD}'))
        .count();
    let replaced = i64::try_from(replaced).unwrap();
    // All but those whose stored content holds no text of the customer's: a location (two
    // numbers), a dice (whose emoji with a NUL is no dice teloxide knows: kept as an
    // unsupported dice), a pin, a chat event, a story (two ids) and a giveaway (its kind).
    let without_text = [
        "message_location",
        "message_dice",
        "message_pinned",
        "message_write_access_allowed",
        "message_story",
        "message_giveaway",
    ];
    assert_eq!(
        replaced,
        n - i64::try_from(without_text.len()).unwrap(),
        "each poisoned message keeps its replaced characters"
    );
    assert_eq!(
        count_sql(&desk, "select count(*) from telegram_updates_unrecorded").await,
        0
    );
    // The read models show them too: texts, captions, file names, venue titles, contact
    // names, and the customers' names.
    desk.wait_for_rows(
        "select count(*) from messages where direction = 'in'",
        2 * n,
    )
    .await;
    for (what, sql) in [
        (
            "a text",
            "select count(*) from messages where strpos(text, chr(65533)) > 0",
        ),
        (
            "a caption",
            "select count(*) from messages where strpos(caption, chr(65533)) > 0",
        ),
        (
            "a file name, venue title or contact name",
            "select count(*) from messages where kind in ('document', 'venue', 'contact') \
             and strpos(details::text, chr(65533)) > 0",
        ),
        (
            "a forwarded-from name",
            "select count(*) from messages where strpos(forward_origin::text, chr(65533)) > 0",
        ),
    ] {
        assert!(count_sql(&desk, sql).await > 0, "no {what} with U+FFFD");
    }
    desk.wait_for_rows(
        "select count(*) from customers where strpos(first_name, chr(65533)) > 0",
        1,
    )
    .await;
    let posted = desk.payloads("ticket.customer_message_posted").await;
    for kept in [
        "Galata\u{FFFD} Kulesi",
        "Meh\u{FFFD}met",
        "invoice-\u{FFFD}48213.pdf",
    ] {
        assert!(
            posted
                .iter()
                .any(|payload| payload.to_string().contains(kept)),
            "{kept:?} is not on the log"
        );
    }
    desk.stop().await;
}

#[tokio::test]
async fn a_nul_in_any_text_of_a_message_posted_to_the_webhook_is_replaced_and_recorded() {
    every_nul_is_replaced_and_nothing_waits(Receive::Webhook, "nul_hook").await;
}

#[tokio::test]
async fn a_nul_in_any_text_of_a_polled_message_is_replaced_and_recorded() {
    every_nul_is_replaced_and_nothing_waits(Receive::Polling, "nul_poll").await;
}

/// Makes every later message of `customer` unrecordable: their stream gets an event this code
/// cannot read (as a newer version of Ledgerdesk might have written).
async fn break_the_stream_of(desk: &Desk, customer: i64) {
    let _ = desk
        .log
        .append(AppendRequest::to_stream(
            format!("customer-{customer}"),
            ExpectedVersion::Any,
            vec![NewEvent::new(
                "customer.from_a_newer_version",
                json!({"what": "this code cannot read it"}),
                Metadata::new(Actor::system("test")),
            )],
        ))
        .await
        .unwrap();
}

pub(crate) async fn admin_token(desk: &Desk) -> String {
    let auth = AuthService::new(
        CommandService::new(desk.log.clone()),
        None,
        AuthConfig::default(),
    )
    .await
    .unwrap();
    let password = "correct horse battery staple";
    auth.create_agent(
        NewAgent {
            email: "admin@example.com".to_owned(),
            name: "Admin".to_owned(),
            role: Role::Admin,
            password: Some(password.to_owned()),
            by: None,
        },
        &CommandContext::new(Actor::system("test")),
    )
    .await
    .unwrap();
    let body = graphql(
        desk,
        None,
        "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
        json!({"input": {"email": "admin@example.com", "password": password}}),
    )
    .await;
    body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {body}"))
        .to_owned()
}

pub(crate) async fn graphql(
    desk: &Desk,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = desk
        .http
        .post(desk.app.url("/graphql"))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

async fn an_unrecordable_update_is_kept_and_the_queue_moves_on(receive: Receive, tag: &str) {
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start(tag, &telegram, receive).await;
    let broken_customer = 6_660_001;
    break_the_stream_of(&desk, broken_customer).await;
    let mut bad = good_message(992_000_001, broken_customer, "my order is late\u{0}!");
    bad["message"]["from"]["first_name"] = json!("Bro\u{0}ken");
    let good = good_message(992_000_002, 6_660_002, "a good message after it");
    match receive {
        Receive::Webhook => {
            let status = desk.post_raw(&bad.to_string(), Some(SECRET)).await;
            assert_eq!(status, 200, "the webhook answers 200 and moves on");
            // Telegram delivering it again changes nothing.
            assert_eq!(desk.post_raw(&bad.to_string(), Some(SECRET)).await, 200);
            desk.post(&good).await;
        }
        Receive::Polling => {
            telegram.push_update(bad.clone());
            telegram.push_update(good);
        }
    }
    desk.wait_for("ticket.customer_message_posted", 1).await;
    if receive == Receive::Polling {
        eventually(async || telegram.pending_updates() == 0, PATIENCE).await;
    }
    desk.wait_for_rows("select count(*) from telegram_updates_unrecorded", 1)
        .await;
    let (update_id, raw, error): (i64, Value, String) =
        sqlx::query_as("select update_id, raw_update, error from telegram_updates_unrecorded")
            .fetch_one(&desk.pool)
            .await
            .unwrap();
    assert_eq!(update_id, 992_000_001);
    assert_eq!(raw["message"]["text"], json!("my order is late\u{FFFD}!"));
    assert_eq!(sender_of(&raw), broken_customer);
    assert!(error.contains("cannot be read"), "{error}");
    assert_eq!(desk.count("ticket.customer_message_posted").await, 1);

    // Admins see it over GraphQL; agents do not.
    let token = admin_token(&desk).await;
    let query = "query($first: Int) { unrecordedUpdates(first: $first) {
        edges { cursor node { updateId rawUpdate error recordedAt } }
        pageInfo { hasNextPage } } }";
    let body = graphql(&desk, Some(&token), query, json!({"first": 10})).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let edges = body["data"]["unrecordedUpdates"]["edges"]
        .as_array()
        .unwrap();
    assert_eq!(edges.len(), 1, "{body:#}");
    let node = &edges[0]["node"];
    assert_eq!(node["updateId"], json!("992000001"));
    assert_eq!(
        node["rawUpdate"]["message"]["from"]["first_name"],
        json!("Bro\u{FFFD}ken")
    );
    assert!(node["error"].as_str().unwrap().contains("cannot be read"));
    let anonymous = graphql(&desk, None, query, json!({"first": 10})).await;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED")
    );
    desk.stop().await;
}

#[tokio::test]
async fn a_webhook_update_that_can_never_be_recorded_is_kept_for_admins_and_the_next_is_recorded() {
    an_unrecordable_update_is_kept_and_the_queue_moves_on(Receive::Webhook, "unrec_hook").await;
}

#[tokio::test]
async fn a_polled_update_that_can_never_be_recorded_is_kept_for_admins_and_polling_moves_on() {
    an_unrecordable_update_is_kept_and_the_queue_moves_on(Receive::Polling, "unrec_poll").await;
}
