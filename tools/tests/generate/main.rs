//! The history generator against a real log: what it writes covers every event type, decodes,
//! replays through the deciders with gap-free stream versions, and is the same for the same
//! seed. Each test gets a fresh database (`#[sqlx::test]`, needs `DATABASE_URL`); the twins
//! to compare it with come from `testkit`.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain::agent::Agent;
use domain::audit::AuditEvent;
use domain::broadcast::Broadcast;
use domain::customer::{Customer, CustomerEvent};
use domain::settings::Settings;
use domain::ticket::Ticket;
use domain::{AnyEvent, AuditStream, Decider, DomainEvent, StreamId};
use eventlog::postgres::PostgresLog;
use eventlog::{ActorKind, EventLog, Position, RecordedEvent};
use sqlx::PgPool;
use testkit::{TestDatabase, eventually};
use tools::generate::{GenerateOptions, generate};

/// Reads the whole log. Readers only see transactions below the oldest one still running
/// anywhere on the server (other tests' included), so wait until all `expected` are readable.
async fn read_everything(log: &PostgresLog, expected: u64) -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    let mut after = Position::START;
    eventually(
        async || {
            loop {
                let page = log.read_all(after, 10_000).await.unwrap();
                if page.events.is_empty() {
                    break;
                }
                after = page.next;
                events.extend(page.events);
            }
            if events.len() as u64 >= expected {
                Ok(())
            } else {
                Err(format!(
                    "only {} of {expected} events became readable",
                    events.len()
                ))
            }
        },
        Duration::from_secs(60),
    )
    .await;
    events
}

fn decode(event: &RecordedEvent) -> AnyEvent {
    AnyEvent::decode(&event.event_type, event.schema_version, &event.payload).unwrap_or_else(
        |error| {
            panic!(
                "{} v{} of {} does not decode: {error}",
                event.event_type, event.stream_version, event.stream_id
            )
        },
    )
}

/// Checks one stream: versions 0..n without gaps, and its events fold into an existing
/// aggregate of the stream's kind.
fn replay_stream(stream: &str, events: &[RecordedEvent]) {
    let versions: Vec<u64> = events.iter().map(|e| e.stream_version).collect();
    let expected: Vec<u64> = (0..events.len() as u64).collect();
    assert_eq!(versions, expected, "versions of {stream}");
    let decoded: Vec<AnyEvent> = events.iter().map(decode).collect();
    macro_rules! typed {
        ($variant:ident) => {
            decoded
                .iter()
                .map(|event| match event {
                    AnyEvent::$variant(event) => event.clone(),
                    other => panic!("{} in {stream}", other.event_type()),
                })
                .collect::<Vec<_>>()
        };
    }
    match stream.parse::<StreamId>().unwrap() {
        StreamId::Ticket(id) => {
            let ticket = Ticket::replay(&typed!(Ticket));
            assert_eq!(ticket.state().unwrap().id, id, "{stream}");
        }
        StreamId::Customer(id) => {
            let customer = Customer::replay(&typed!(Customer));
            let state = customer.state().unwrap();
            assert_eq!(state.id, id);
            assert!(state.one_active_ticket_per_category(), "{stream}");
        }
        StreamId::Agent(id) => {
            let Agent::Invited(agent) = Agent::replay(&typed!(Agent)) else {
                panic!("{stream} was never invited");
            };
            assert_eq!(agent.id, id);
        }
        StreamId::Broadcast(id) => {
            let broadcast = Broadcast::replay(&typed!(Broadcast));
            let state = broadcast.state().unwrap();
            assert_eq!(state.id, id);
            assert!(state.tally.total() <= state.audience_size, "{stream}");
        }
        StreamId::Settings => {
            let settings = Settings::replay(&typed!(Settings));
            assert!(settings.uses_categories());
            assert!(!settings.templates.is_empty());
        }
        StreamId::Audit(which) => {
            // Records only; those of an agent's account name that agent.
            for event in typed!(Audit) {
                let named = match &event {
                    AuditEvent::SignedIn(e) => Some(e.agent),
                    AuditEvent::SignedOut(e) => Some(e.agent),
                    AuditEvent::SignInRefused(e) => e.agent,
                    AuditEvent::ApiTokenCreated(e) => Some(e.by),
                    AuditEvent::ApiTokenRevoked(e) => Some(e.by),
                    AuditEvent::ReplayRun(_) | AuditEvent::ExportMade(_) => None,
                };
                match which {
                    AuditStream::Agent(agent) => assert_eq!(named, Some(agent), "{stream}"),
                    AuditStream::Anonymous | AuditStream::Operations => {
                        assert_eq!(named, None, "{stream}");
                    }
                }
            }
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_generated_history_covers_every_event_type_and_replays_through_the_deciders(
    pool: PgPool,
) {
    let log = PostgresLog::new(pool);
    let options = GenerateOptions {
        events: 5_000,
        seed: 7,
        writers: 4,
        ..GenerateOptions::default()
    };
    let progress = AtomicU64::new(0);
    let report = generate(&log, &options, |n| {
        progress.fetch_max(n, Ordering::Relaxed);
    })
    .await
    .unwrap();
    assert!(report.events >= 5_000, "{report:?}");
    assert_eq!(progress.load(Ordering::Relaxed), report.events);

    let events = read_everything(&log, report.events).await;
    assert_eq!(events.len() as u64, report.events);

    // Every event type of the domain, and the report counts what the log holds.
    let all_types: BTreeSet<&str> = AnyEvent::all_stored_forms()
        .into_iter()
        .filter(|form| form.current)
        .map(|form| form.event_type)
        .collect();
    assert_eq!(all_types.len(), 79);
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for event in &events {
        *seen.entry(event.event_type.as_str()).or_default() += 1;
    }
    let missing: Vec<_> = all_types
        .iter()
        .filter(|t| !seen.contains_key(*t))
        .collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
    assert_eq!(seen, report.by_type);
    assert_eq!(seen["ticket.opened"], report.tickets);
    assert_eq!(seen["customer.registered"], report.customers);
    assert!((10..=50).contains(&report.agents), "{report:?}");

    // Every event carries an actor and a correlation id.
    for event in &events {
        assert!(event.metadata.correlation_id.is_some(), "{event:?}");
        if event.event_type == "customer.registered" {
            assert_eq!(event.metadata.actor.kind, ActorKind::Customer);
        }
    }

    // Each stream replays, and each ticket is noted on its customer's stream.
    let mut streams: BTreeMap<&str, Vec<RecordedEvent>> = BTreeMap::new();
    for event in &events {
        streams
            .entry(event.stream_id.as_str())
            .or_default()
            .push(event.clone());
    }
    for (stream, events) in &streams {
        replay_stream(stream, events);
    }
    let noted: BTreeSet<_> = events
        .iter()
        .filter(|e| e.event_type == "customer.ticket_opened")
        .map(|e| match decode(e) {
            AnyEvent::Customer(CustomerEvent::TicketOpened(noted)) => noted.ticket_id,
            other => panic!("{other:?}"),
        })
        .collect();
    let opened: BTreeSet<_> = streams
        .keys()
        .filter_map(|s| match s.parse::<StreamId>() {
            Ok(StreamId::Ticket(id)) => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(noted, opened);
}

/// A log on a fresh database of its own, migrated, and dropped when the test is done with it
/// (or fails).
async fn sibling_log(tag: &str) -> (PostgresLog, TestDatabase) {
    let database = TestDatabase::fresh(&format!("gen_{tag}")).await;
    (PostgresLog::new(database.pool().clone()), database)
}

/// The whole log as (stream, type), in log order.
async fn history(log: &PostgresLog, options: &GenerateOptions) -> Vec<(String, String)> {
    let report = generate(log, options, |_| {}).await.unwrap();
    read_everything(log, report.events)
        .await
        .into_iter()
        .map(|e| (e.stream_id, e.event_type))
        .collect()
}

fn per_stream(history: &[(String, String)]) -> BTreeMap<&str, Vec<&str>> {
    let mut streams: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (stream, event_type) in history {
        streams.entry(stream).or_default().push(event_type);
    }
    streams
}

#[sqlx::test(migrations = "../migrations")]
async fn the_same_seed_gives_the_same_history(pool: PgPool) {
    // One writer: the same log, event for event.
    let options = GenerateOptions {
        events: 1_500,
        seed: 42,
        writers: 1,
        ..GenerateOptions::default()
    };
    let first = history(&PostgresLog::new(pool.clone()), &options).await;
    let (twin, twin_db) = sibling_log("twin").await;
    let second = history(&twin, &options).await;
    drop((twin, twin_db));
    assert!(first.len() >= 1_500);
    assert_eq!(first, second);

    // Several writers interleave differently each run, but every stream is the same.
    let options = GenerateOptions {
        writers: 3,
        ..options
    };
    let (a, a_db) = sibling_log("multi_a").await;
    let (b, b_db) = sibling_log("multi_b").await;
    let third = history(&a, &options).await;
    let fourth = history(&b, &options).await;
    drop((a, a_db, b, b_db));
    assert_eq!(per_stream(&third), per_stream(&fourth));

    // Another seed, another history.
    let (other, other_db) = sibling_log("other").await;
    let fifth = history(
        &other,
        &GenerateOptions {
            seed: 43,
            writers: 1,
            ..options
        },
    )
    .await;
    drop((other, other_db));
    assert_ne!(first, fifth);
}

#[sqlx::test(migrations = "../migrations")]
async fn generating_into_a_log_that_has_a_history_is_refused(pool: PgPool) {
    let log = PostgresLog::new(pool);
    let options = GenerateOptions {
        events: 200,
        ..GenerateOptions::default()
    };
    // On a task of its own, as the CLI runs it (the future is Send).
    let first = tokio::spawn({
        let (log, options) = (log.clone(), options.clone());
        async move { generate(&log, &options, |_| {}).await }
    });
    first.await.unwrap().unwrap();
    let again = generate(&log, &options, |_| {}).await;
    assert!(
        matches!(again, Err(tools::generate::GenerateError::NotEmpty)),
        "{again:?}"
    );
}
