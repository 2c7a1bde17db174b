//! Mutated Telegram updates posted to the webhook never take the bot down nor hide what
//! happened to them: each answer is 200 or a 4xx, each 200 either recorded the update or
//! logged (or kept among the unrecorded updates) why not, and a good update sent after each
//! mutated one is recorded.
//!
//! The updates start from every fixture in `bot/tests/fixtures` and are mutated by a seeded
//! generator (fields removed, renamed, retyped, stretched, added; chat types changed; the
//! JSON text cut short), so a failure can be replayed with the same [`SEED`].

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use serde_json::{Value, json};
use testkit::telegram::FakeTelegram;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, registry};

use crate::support::{Desk, Receive, SECRET, fixture, fixtures};

/// How many mutated updates are posted (each followed by a good one).
const UPDATES: u32 = 1500;

/// The generator's seed: the same seed posts the same updates.
const SEED: u64 = 0x1ed9_e5d0_2026;

/// The first update id of the run; mutated updates take even ids after it, good ones odd.
const FIRST_UPDATE_ID: i64 = 870_000_000;

/// The messages the bot logged at INFO or above, by the update id they name.
fn logged() -> &'static Mutex<HashMap<u64, Vec<String>>> {
    static LOGGED: OnceLock<Mutex<HashMap<u64, Vec<String>>>> = OnceLock::new();
    LOGGED.get_or_init(Mutex::default)
}

/// Keeps every event at INFO or above that names an update id.
struct Capture;

#[derive(Default)]
struct Fields {
    update_id: Option<u64>,
    message: String,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "update_id" {
            self.update_id = Some(value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "update_id" {
            self.update_id = u64::try_from(value).ok();
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        // More verbose levels compare greater.
        if *event.metadata().level() > Level::INFO {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(id) = fields.update_id {
            logged()
                .lock()
                .unwrap()
                .entry(id)
                .or_default()
                .push(fields.message);
        }
    }
}

fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(registry().with(Capture))
            .expect("no other global subscriber in this test binary");
    });
}

/// Values that have broken parsers before: wrong types, extremes, odd text.
fn odd_value(rng: &mut fastrand::Rng) -> Value {
    match rng.u8(0..16) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-1),
        4 => json!(i64::from(i32::MAX) + 1),
        5 => json!(i64::MAX),
        6 => json!(u64::MAX),
        7 => json!(1e300),
        8 => json!(-2.5),
        9 => json!(""),
        10 => json!("\u{0}"),
        11 => json!("🎲\u{202e}עברית\u{fffd}"),
        12 => json!("x".repeat(rng.usize(1..20_000))),
        13 => json!([]),
        14 => json!({}),
        _ => json!([{"text": "?"}, 1, null]),
    }
}

/// Every path to a value inside `value`, but the update id.
fn paths(value: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match value {
        Value::Object(fields) => {
            for (key, item) in fields {
                if prefix.is_empty() && key == "update_id" {
                    continue;
                }
                prefix.push(json!(key));
                out.push(prefix.clone());
                paths(item, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                prefix.push(json!(index));
                out.push(prefix.clone());
                paths(item, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

/// The container holding the last step of `path`.
fn parent<'v>(value: &'v mut Value, path: &[Value]) -> Option<&'v mut Value> {
    let mut at = value;
    for step in &path[..path.len() - 1] {
        at = match step {
            Value::String(key) => at.get_mut(key)?,
            Value::Number(index) => at.get_mut(usize::try_from(index.as_u64()?).ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

fn mutate(update: &mut Value, rng: &mut fastrand::Rng) {
    let mut all = Vec::new();
    paths(update, &mut Vec::new(), &mut all);
    if all.is_empty() {
        return;
    }
    let path = all[rng.usize(..all.len())].clone();
    let Some(container) = parent(update, &path) else {
        return;
    };
    let last = path.last().unwrap();
    match (container, last) {
        (Value::Object(fields), Value::String(key)) => match rng.u8(0..6) {
            0 => {
                fields.remove(key);
            }
            1 => {
                if let Some(value) = fields.remove(key) {
                    fields.insert(format!("{key}_{}", rng.u8(..)), value);
                }
            }
            2 => {
                fields.insert(format!("future_field_{}", rng.u8(..)), odd_value(rng));
            }
            3 => {
                if let Some(Value::String(text)) = fields.get_mut(key) {
                    *text = text.repeat(rng.usize(2..200));
                } else {
                    fields.insert(key.clone(), odd_value(rng));
                }
            }
            4 if key == "type" => {
                let kinds = ["private", "group", "supergroup", "channel", "secret", ""];
                fields.insert(key.clone(), json!(kinds[rng.usize(..kinds.len())]));
            }
            _ => {
                fields.insert(key.clone(), odd_value(rng));
            }
        },
        (Value::Array(items), Value::Number(index)) => {
            let index = usize::try_from(index.as_u64().unwrap()).unwrap();
            match rng.u8(0..3) {
                0 => items.clear(),
                1 => {
                    let copy = items[index].clone();
                    items.extend(std::iter::repeat_n(copy, rng.usize(1..50)));
                }
                _ => items[index] = odd_value(rng),
            }
        }
        _ => {}
    }
}

/// A good text message, the `n`th of the run.
fn good_message(n: u32, template: &Value) -> Value {
    let mut update = template.clone();
    update["update_id"] = json!(FIRST_UPDATE_ID + 2 * i64::from(n) + 1);
    update["message"]["message_id"] = json!(100_000 + n);
    update["message"]["text"] = json!(format!("still there? ({n})"));
    update
}

/// Whether the log, the handled updates, the edits kept for a message still to come or the
/// unrecorded updates hold update `id`.
async fn recorded(desk: &Desk, id: i64) -> bool {
    let pattern = format!("telegram:%:{id}:%");
    sqlx::query_scalar(
        "select exists (select 1 from idempotency_keys where key like $1) \
            or exists (select 1 from telegram_updates_handled where update_key like $1) \
            or exists (select 1 from telegram_early_edits where update_key like $1) \
            or exists (select 1 from telegram_updates_unrecorded where update_id = $2)",
    )
    .bind(&pattern)
    .bind(id)
    .fetch_one(&desk.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn mutated_updates_are_answered_200_or_4xx_accounted_for_and_never_hold_up_the_next() {
    capture_logs();
    let telegram = FakeTelegram::start().await;
    let desk = Desk::start("fuzz", &telegram, Receive::Webhook).await;
    let seeds: Vec<Value> = fixtures("")
        .iter()
        .map(|name| fixture(name))
        .filter(|update| update.get("update_id").is_some())
        .collect();
    assert!(seeds.len() >= 40, "fixtures missing");
    let template = fixture("message_text");
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut statuses: HashMap<u16, u32> = HashMap::new();
    let mut unaccounted = Vec::new();
    let mut seen_messages = HashSet::new();
    let started = Instant::now();
    for n in 0..UPDATES {
        let id = FIRST_UPDATE_ID + 2 * i64::from(n);
        let mut update = seeds[rng.usize(..seeds.len())].clone();
        for _ in 0..rng.usize(1..4) {
            mutate(&mut update, &mut rng);
        }
        update["update_id"] = json!(id);
        let mut body = update.to_string();
        if rng.u8(..20) == 0 {
            // Cut short: not JSON any more.
            body.truncate(rng.usize(..body.len()));
        }
        let status = desk.post_raw(&body, Some(SECRET)).await;
        *statuses.entry(status).or_default() += 1;
        assert!(
            status == 200 || (400..500).contains(&status),
            "update {n} answered {status}: {body}"
        );
        if status == 200 {
            // The webhook answers once the update is handled.
            let logged_why = logged()
                .lock()
                .unwrap()
                .contains_key(&u64::try_from(id).unwrap());
            if !logged_why && !recorded(&desk, id).await {
                unaccounted.push(body.chars().take(2000).collect::<String>());
            }
        }
        let good = good_message(n, &template);
        desk.post(&good).await;
        let good_id = good["update_id"].as_i64().unwrap();
        assert!(
            recorded(&desk, good_id).await,
            "the good update after mutated update {n} was not recorded"
        );
        seen_messages.insert(good_id);
    }
    assert!(
        unaccounted.is_empty(),
        "{} updates answered 200 with no trace:\n{}",
        unaccounted.len(),
        unaccounted.join("\n")
    );
    // Every good message is on the customer's ticket.
    let posted = desk
        .payloads("ticket.customer_message_posted")
        .await
        .iter()
        .filter(|payload| {
            payload["content"]["body"]["text"]
                .as_str()
                .is_some_and(|text| text.starts_with("still there? ("))
        })
        .count();
    assert_eq!(posted, seen_messages.len());
    eprintln!(
        "{UPDATES} mutated updates in {:?}; answers: {statuses:?}",
        started.elapsed()
    );
    desk.stop().await;
}

/// The mutations themselves are sound: they change the update and keep its id.
#[test]
fn mutations_change_the_update_but_not_its_id() {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let original = fixture("message_photo_caption");
    let mut changed = 0;
    for _ in 0..200 {
        let mut update = original.clone();
        mutate(&mut update, &mut rng);
        assert_eq!(update["update_id"], original["update_id"]);
        if update != original {
            changed += 1;
        }
    }
    assert!(
        changed > 150,
        "only {changed} of 200 mutations changed anything"
    );
}
