//! The conformance suite: what every [`EventLog`] backend must do, written once.
//!
//! Each function takes a log over an empty store and panics on the first broken promise.
//! Backends call them from their own test modules (see `postgres.rs`).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use eventlog::{
    Actor, AppendOutcome, AppendRequest, Direction, Error, EventLog, ExpectedVersion, Metadata,
    NewEvent, Position, Receipt, RecordedEvent,
};
use futures::StreamExt;
use serde_json::json;
use testkit::eventually;
use uuid::Uuid;

/// A test event numbered `n`.
pub(crate) fn event(n: u64) -> NewEvent {
    NewEvent::new(
        "test.happened",
        json!({ "n": n, "text": format!("event number {n}") }),
        Metadata::new(Actor::system("conformance")),
    )
}

fn events(range: std::ops::Range<u64>) -> Vec<NewEvent> {
    range.map(event).collect()
}

async fn append<L: EventLog>(
    log: &L,
    stream: &str,
    expected: ExpectedVersion,
    evs: Vec<NewEvent>,
) -> Receipt {
    log.append(AppendRequest::to_stream(stream, expected, evs))
        .await
        .expect("append should succeed")
        .into_receipt()
}

/// Reads the whole log from the start until at least `count` events were read and the log has
/// nothing more to give. Visibility in the whole-log order may trail commits a little (an older
/// transaction anywhere on the server holds readers back), so it waits, within bounds.
pub(crate) async fn read_everything<L: EventLog>(log: &L, count: usize) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut cursor = Position::START;
    eventually(
        async || {
            loop {
                let page = log.read_all(cursor, 1_000).await.expect("read_all");
                if page.events.is_empty() {
                    break;
                }
                cursor = page.next;
                all.extend(page.events);
            }
            if all.len() >= count {
                Ok(())
            } else {
                Err(format!(
                    "only {} of {count} events became readable",
                    all.len()
                ))
            }
        },
        Duration::from_secs(30),
    )
    .await;
    all
}

fn assert_conflict(
    result: Result<AppendOutcome, Error>,
    stream: &str,
    expected: ExpectedVersion,
    actual: Option<u64>,
) {
    match result {
        Err(Error::Conflict {
            stream: s,
            expected: e,
            actual: a,
        }) => {
            assert_eq!((s.as_str(), e, a), (stream, expected, actual));
        }
        other => panic!("expected a conflict on {stream}, got {other:?}"),
    }
}

pub(crate) async fn optimistic_concurrency_is_enforced<L: EventLog>(log: L) {
    let s = "ticket-occ";
    let first = append(&log, s, ExpectedVersion::NoStream, events(0..2)).await;
    assert_eq!(first.version_of(s), Some(1));
    append(&log, s, ExpectedVersion::Exact(1), events(2..3)).await;

    assert_conflict(
        log.append(AppendRequest::to_stream(
            s,
            ExpectedVersion::Exact(1),
            events(9..10),
        ))
        .await,
        s,
        ExpectedVersion::Exact(1),
        Some(2),
    );
    assert_conflict(
        log.append(AppendRequest::to_stream(
            s,
            ExpectedVersion::NoStream,
            events(9..10),
        ))
        .await,
        s,
        ExpectedVersion::NoStream,
        Some(2),
    );
    assert_conflict(
        log.append(AppendRequest::to_stream(
            "ticket-none",
            ExpectedVersion::StreamExists,
            events(9..10),
        ))
        .await,
        "ticket-none",
        ExpectedVersion::StreamExists,
        None,
    );
    assert_conflict(
        log.append(AppendRequest::to_stream(
            "ticket-none",
            ExpectedVersion::Exact(0),
            events(9..10),
        ))
        .await,
        "ticket-none",
        ExpectedVersion::Exact(0),
        None,
    );

    append(&log, s, ExpectedVersion::StreamExists, events(3..4)).await;
    append(&log, s, ExpectedVersion::Any, events(4..5)).await;
    append(&log, "ticket-any", ExpectedVersion::Any, events(5..6)).await;

    let stored = log
        .read_stream(s, 0, Direction::Forwards, 100)
        .await
        .expect("read");
    let numbers: Vec<u64> = stored
        .iter()
        .map(|e| e.payload["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(
        numbers,
        vec![0, 1, 2, 3, 4],
        "refused appends must leave no trace"
    );
    assert_eq!(log.stream_version(s).await.expect("version"), Some(4));
    assert_eq!(
        log.stream_version("ticket-none").await.expect("version"),
        None
    );
}

pub(crate) async fn concurrent_appends_at_one_version_let_exactly_one_win<L: EventLog>(log: L) {
    let s = "ticket-race";
    append(&log, s, ExpectedVersion::NoStream, events(0..1)).await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                log.append(AppendRequest::to_stream(
                    s,
                    ExpectedVersion::Exact(0),
                    events(100 + i..101 + i),
                ))
                .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(AppendOutcome::Appended(_)) => won += 1,
            Err(Error::Conflict {
                actual: Some(1), ..
            }) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(log.stream_version(s).await.expect("version"), Some(1));

    // With no expectation every writer gets through, each at its own version.
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                log.append(AppendRequest::to_stream(
                    s,
                    ExpectedVersion::Any,
                    events(200 + i..201 + i),
                ))
                .await
            })
        })
        .collect();
    let mut versions = HashSet::new();
    for task in tasks {
        let outcome = task
            .await
            .expect("task")
            .expect("an Any append always goes through");
        assert!(versions.insert(outcome.receipt().version_of(s).expect("version")));
    }
    assert_eq!(versions, (2..14).collect::<HashSet<u64>>());
}

pub(crate) async fn an_idempotency_key_keeps_the_input_digest_it_was_applied_with<L: EventLog>(
    log: L,
) {
    let digest = vec![7u8; 32];
    let requests = [
        // One event to one stream, a multi-stream append, and an append of nothing.
        AppendRequest::to_stream("customer-50", ExpectedVersion::NoStream, events(0..1)),
        AppendRequest::to_stream("customer-51", ExpectedVersion::NoStream, events(1..3))
            .and_stream("customer-52", ExpectedVersion::NoStream, events(3..4)),
        AppendRequest::default(),
    ];
    for (n, request) in requests.into_iter().enumerate() {
        let key = format!("digest-{n}");
        let request = request.idempotent(&key).with_input_digest(digest.clone());
        let first = log.append(request.clone()).await.expect("first");
        assert!(!first.is_replay());
        assert_eq!(first.receipt().input_digest, None, "a fresh append");

        // A replay hands the stored digest back, whatever the repeat carried.
        for repeat in [
            request.clone(),
            request.clone().with_input_digest(vec![8u8; 32]),
            AppendRequest {
                input_digest: None,
                ..request.clone()
            },
        ] {
            match log.append(repeat).await.expect("replay") {
                AppendOutcome::AlreadyApplied(receipt) => {
                    assert_eq!(receipt.events, first.receipt().events);
                    assert_eq!(receipt.input_digest.as_ref(), Some(&digest));
                    assert!(receipt.same_input(Some(&digest)));
                    assert!(!receipt.same_input(Some(&[8u8; 32])));
                }
                other => panic!("expected a replay, got {other:?}"),
            }
        }
        let applied = log
            .applied(&key)
            .await
            .expect("applied")
            .expect("a receipt");
        assert_eq!(applied.input_digest.as_ref(), Some(&digest));
    }

    // A key applied without a digest (as keys were before digests were stored) answers any input.
    let plain = AppendRequest::to_stream("customer-53", ExpectedVersion::NoStream, events(4..5))
        .idempotent("no-digest");
    assert!(!log.append(plain.clone()).await.expect("first").is_replay());
    let replay = log
        .append(plain.with_input_digest(digest.clone()))
        .await
        .expect("replay");
    assert!(replay.is_replay());
    assert_eq!(replay.receipt().input_digest, None);
    assert!(replay.receipt().same_input(Some(&digest)));

    // A digest is bounded.
    let overlong = AppendRequest::to_stream("customer-54", ExpectedVersion::Any, events(5..6))
        .idempotent("overlong")
        .with_input_digest(vec![1u8; 65]);
    assert!(matches!(log.append(overlong).await, Err(Error::Invalid(_))));
}

pub(crate) async fn a_repeated_idempotency_key_appends_nothing_and_returns_the_first_receipt<
    L: EventLog,
>(
    log: L,
) {
    let s = "customer-42";
    let request = AppendRequest::to_stream(s, ExpectedVersion::NoStream, events(0..2))
        .idempotent("telegram-update-1001");
    let first = log.append(request.clone()).await.expect("first");
    assert!(!first.is_replay());

    // The very same request: it would now conflict, but it was applied, so it is a replay.
    let again = log.append(request).await.expect("replay");
    assert_eq!(
        again,
        AppendOutcome::AlreadyApplied(first.receipt().clone())
    );

    // Another request under the same key (e.g. a retried command that decided differently).
    let other = AppendRequest::to_stream(s, ExpectedVersion::Any, events(5..8))
        .idempotent("telegram-update-1001");
    let replay = log.append(other).await.expect("replay");
    assert_eq!(
        replay,
        AppendOutcome::AlreadyApplied(first.receipt().clone())
    );
    assert_eq!(log.stream_version(s).await.expect("version"), Some(1));

    // The log answers what a key did without claiming it.
    assert_eq!(
        log.applied("telegram-update-1001").await.expect("applied"),
        Some(first.receipt().clone())
    );
    assert_eq!(log.applied("never-used").await.expect("applied"), None);

    // The key is recorded in each event's metadata.
    let stored = log
        .read_stream(s, 0, Direction::Forwards, 10)
        .await
        .expect("read");
    assert!(
        stored
            .iter()
            .all(|e| e.metadata.idempotency_key.as_deref() == Some("telegram-update-1001"))
    );

    // A key whose command appended nothing is remembered too.
    let empty = log
        .append(AppendRequest::default().idempotent("mutation-7"))
        .await
        .expect("empty");
    assert_eq!(empty, AppendOutcome::Appended(Default::default()));
    let empty_again = log
        .append(
            AppendRequest::to_stream(s, ExpectedVersion::Any, events(9..10))
                .idempotent("mutation-7"),
        )
        .await
        .expect("empty replay");
    assert_eq!(
        empty_again,
        AppendOutcome::AlreadyApplied(Default::default())
    );
    assert_eq!(log.stream_version(s).await.expect("version"), Some(1));

    // Racing deliveries of one update: one effect.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                log.append(
                    AppendRequest::to_stream("customer-43", ExpectedVersion::Any, events(i..i + 1))
                        .idempotent("telegram-update-2002"),
                )
                .await
            })
        })
        .collect();
    let mut receipts = Vec::new();
    for task in tasks {
        receipts.push(task.await.expect("task").expect("append"));
    }
    assert_eq!(receipts.iter().filter(|o| !o.is_replay()).count(), 1);
    let first = receipts[0].receipt();
    assert!(receipts.iter().all(|o| o.receipt() == first));
    assert_eq!(
        log.stream_version("customer-43").await.expect("version"),
        Some(0)
    );
}

pub(crate) async fn a_multi_stream_append_is_all_or_nothing<L: EventLog>(log: L) {
    append(&log, "ticket-b", ExpectedVersion::NoStream, events(0..1)).await;

    // The second stream's expectation fails: the first stream gets nothing either.
    let request = AppendRequest::to_stream("ticket-a", ExpectedVersion::NoStream, events(1..3))
        .and_stream("ticket-b", ExpectedVersion::Exact(7), events(3..4));
    assert_conflict(
        log.append(request).await,
        "ticket-b",
        ExpectedVersion::Exact(7),
        Some(0),
    );
    assert!(matches!(
        log.read_stream("ticket-a", 0, Direction::Forwards, 10)
            .await,
        Err(Error::StreamNotFound { .. })
    ));

    // An invalid event in the second stream: nothing at all.
    let mut huge = event(99);
    huge.payload = json!({ "blob": "x".repeat(eventlog::limits::PAYLOAD_BYTES) });
    let request = AppendRequest::to_stream("ticket-a", ExpectedVersion::NoStream, events(1..3))
        .and_stream("ticket-b", ExpectedVersion::Exact(0), vec![huge]);
    assert!(matches!(log.append(request).await, Err(Error::Invalid(_))));

    // An event id already in the log: nothing at all.
    let existing = log
        .read_stream("ticket-b", 0, Direction::Forwards, 1)
        .await
        .expect("read")[0]
        .event_id;
    let mut reused = event(98);
    reused.event_id = existing;
    let request = AppendRequest::to_stream("ticket-a", ExpectedVersion::NoStream, events(1..3))
        .and_stream("ticket-b", ExpectedVersion::Exact(0), vec![reused]);
    assert!(matches!(log.append(request).await, Err(Error::Invalid(_))));
    assert_eq!(log.stream_version("ticket-a").await.expect("version"), None);
    assert_eq!(read_everything(&log, 1).await.len(), 1);

    // Both expectations hold: both streams get their events, in one contiguous run of the log.
    let request = AppendRequest::to_stream("ticket-a", ExpectedVersion::NoStream, events(1..3))
        .and_stream("ticket-b", ExpectedVersion::Exact(0), events(3..4));
    let receipt = log.append(request).await.expect("append").into_receipt();
    assert_eq!(receipt.version_of("ticket-a"), Some(1));
    assert_eq!(receipt.version_of("ticket-b"), Some(1));
    let all = read_everything(&log, 4).await;
    let tail: Vec<Uuid> = all[1..].iter().map(|e| e.event_id).collect();
    let written: Vec<Uuid> = receipt.events.iter().map(|e| e.event_id).collect();
    assert_eq!(tail, written);

    // Malformed requests are refused with a reason.
    for bad in [
        AppendRequest::to_stream("", ExpectedVersion::Any, events(0..1)),
        AppendRequest::to_stream("s".repeat(201), ExpectedVersion::Any, events(0..1)),
        AppendRequest::to_stream("x", ExpectedVersion::Any, events(0..1)).and_stream(
            "x",
            ExpectedVersion::Any,
            events(1..2),
        ),
        AppendRequest::to_stream("x", ExpectedVersion::Any, events(0..1_001)),
        AppendRequest::to_stream("x", ExpectedVersion::Any, events(0..1)).idempotent(""),
        AppendRequest::to_stream(
            "x",
            ExpectedVersion::Any,
            vec![NewEvent {
                event_type: String::new(),
                ..event(0)
            }],
        ),
        AppendRequest::to_stream(
            "x",
            ExpectedVersion::Any,
            vec![event(0).with_schema_version(0)],
        ),
    ] {
        assert!(matches!(log.append(bad).await, Err(Error::Invalid(_))));
    }
}

pub(crate) async fn reads_page_through_streams_and_the_whole_log<L: EventLog>(log: L) {
    for chunk in 0..25u64 {
        let stream = format!("ticket-{}", chunk % 3);
        append(
            &log,
            &stream,
            ExpectedVersion::Any,
            events(chunk * 10..chunk * 10 + 10),
        )
        .await;
    }
    read_everything(&log, 250).await;
    let mut seen = Vec::new();
    let mut cursor = Position::START;
    loop {
        let page = log.read_all(cursor, 37).await.expect("page");
        assert!(page.events.len() <= 37);
        if page.events.is_empty() {
            assert_eq!(page.next, cursor);
            break;
        }
        assert_eq!(page.next, page.events.last().expect("last").position);
        cursor = page.next;
        seen.extend(page.events);
    }
    let numbers: Vec<u64> = seen
        .iter()
        .map(|e| e.payload["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(numbers, (0..250).collect::<Vec<_>>());
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(
        log.head().await.expect("head"),
        seen.last().expect("last").position
    );
    assert!(
        log.read_all(cursor, 10)
            .await
            .expect("tail")
            .events
            .is_empty()
    );
    // Counting follows the same order and stops at the cap.
    let count = |after, cap| log.count_after(after, cap);
    assert_eq!(count(Position::START, u64::MAX).await.expect("count"), 250);
    assert_eq!(count(Position::START, 100).await.expect("capped"), 100);
    assert_eq!(count(seen[199].position, 1_000).await.expect("tail"), 50);
    assert_eq!(count(cursor, 1_000).await.expect("none"), 0);

    let forwards = log
        .read_stream("ticket-1", 10, Direction::Forwards, 5)
        .await
        .expect("forwards");
    assert_eq!(
        forwards
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        vec![10, 11, 12, 13, 14]
    );
    let backwards = log
        .read_stream("ticket-1", u64::MAX, Direction::Backwards, 3)
        .await
        .expect("backwards");
    assert_eq!(
        backwards
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        vec![79, 78, 77]
    );
    let past_end = log
        .read_stream("ticket-1", 500, Direction::Forwards, 5)
        .await
        .expect("past end");
    assert!(past_end.is_empty());
    assert!(matches!(
        log.read_stream("ticket-404", 0, Direction::Forwards, 5).await,
        Err(Error::StreamNotFound { stream }) if stream == "ticket-404"
    ));
    assert_eq!(
        log.stream_version("ticket-1").await.expect("version"),
        Some(79)
    );
}

pub(crate) async fn a_subscription_from_the_middle_catches_up_then_follows_live<L: EventLog>(
    log: L,
) {
    for n in 0..100 {
        append(
            &log,
            &format!("ticket-{}", n % 7),
            ExpectedVersion::Any,
            events(n..n + 1),
        )
        .await;
    }
    let all = read_everything(&log, 100).await;
    let middle = all[39].position;
    let mut subscription = log.subscribe_all(middle);
    for expected in 40..100 {
        let event = next(&mut subscription).await;
        assert_eq!(event.payload["n"], expected);
    }
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for n in 100..110 {
                append(&log, "ticket-live", ExpectedVersion::Any, events(n..n + 1)).await;
                // Not a wait for something: the pause spreads the appends out, so the
                // subscription follows them one by one, live, instead of in one page.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    for expected in 100..110 {
        let event = next(&mut subscription).await;
        assert_eq!(event.payload["n"], expected);
    }
    writer.await.expect("writer");
    // Nothing more arrives.
    let extra = tokio::time::timeout(Duration::from_millis(300), subscription.next()).await;
    assert!(extra.is_err(), "unexpected extra item: {extra:?}");
}

async fn next(
    subscription: &mut futures::stream::BoxStream<'static, Result<RecordedEvent, Error>>,
) -> RecordedEvent {
    tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("an event within 10 s")
        .expect("the subscription does not end")
        .expect("no error")
}

/// What a backend's disruptions did during the torture test.
#[derive(Debug, Default)]
pub(crate) struct Disruptions {
    /// Events that committed (late, out of order).
    pub(crate) committed: Vec<Uuid>,
    /// Events whose transaction rolled back after taking a position.
    pub(crate) rolled_back: Vec<Uuid>,
}

/// The torture test's size.
pub(crate) const WRITERS: u64 = 16;
pub(crate) const EVENTS_PER_WRITER: u64 = 1_000;
const STREAMS: u64 = 64;

/// Many writers append into random streams while subscribers follow: live ones started before
/// the writers, catching-up ones started from the beginning in the middle of the run. Every
/// subscriber must see every committed event exactly once, in the same order, with each
/// stream's versions in order. `disrupt` runs alongside, doing whatever the backend can do to
/// break that (slow commits, rollbacks after taking a position).
pub(crate) async fn torture<L, D>(log: L, disrupt: D)
where
    L: EventLog,
    D: Future<Output = Disruptions> + Send + 'static,
{
    let collect = |after: Position| {
        let mut subscription = log.subscribe_all(after);
        tokio::spawn(async move {
            let mut got: Vec<RecordedEvent> = Vec::new();
            let target = (WRITERS * EVENTS_PER_WRITER) as usize;
            // Stops when it stays quiet long enough after the writers' share has arrived.
            loop {
                let wait = if got.len() >= target {
                    Duration::from_secs(2)
                } else {
                    Duration::from_secs(60)
                };
                match tokio::time::timeout(wait, subscription.next()).await {
                    Ok(Some(Ok(event))) => got.push(event),
                    Ok(Some(Err(err))) => panic!("subscription failed: {err}"),
                    Ok(None) => panic!("subscription ended"),
                    Err(_) => return got,
                }
            }
        })
    };

    let live: Vec<_> = (0..3).map(|_| collect(Position::START)).collect();
    let disruption = tokio::spawn(disrupt);

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                // A cheap deterministic spread over the streams, different per writer.
                let mut x = w * 7919 + 1;
                for i in 0..EVENTS_PER_WRITER {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let stream = format!("ticket-{}", (x >> 33) % STREAMS);
                    let request = if i % 50 == 49 {
                        // Now and then a two-stream append (one event each side).
                        let other = format!("customer-{}", (x >> 40) % STREAMS);
                        AppendRequest::to_stream(
                            stream,
                            ExpectedVersion::Any,
                            events(w * 1_000_000 + i..w * 1_000_000 + i + 1),
                        )
                        .and_stream(
                            other,
                            ExpectedVersion::Any,
                            events(w * 1_000_000 + 500_000 + i..w * 1_000_000 + 500_001 + i),
                        )
                    } else {
                        AppendRequest::to_stream(
                            stream,
                            ExpectedVersion::Any,
                            events(w * 1_000_000 + i..w * 1_000_000 + i + 1),
                        )
                    };
                    let outcome = log.append(request).await.expect("append");
                    ids.extend(outcome.receipt().events.iter().map(|e| e.event_id));
                }
                ids
            })
        })
        .collect();

    // Late subscribers start from zero while the writers are busy: once a tenth of the
    // writers' events is readable.
    let some = (WRITERS * EVENTS_PER_WRITER / 10).max(1);
    eventually(
        async || {
            let readable = log.count_after(Position::START, some).await.expect("count");
            if readable >= some {
                Ok(())
            } else {
                Err(format!("{readable} of {some} events readable"))
            }
        },
        Duration::from_secs(60),
    )
    .await;
    let catching_up: Vec<_> = (0..2).map(|_| collect(Position::START)).collect();

    let mut written = HashSet::new();
    for writer in writers {
        for id in writer.await.expect("writer") {
            assert!(written.insert(id));
        }
    }
    let disruptions = disruption.await.expect("disruption");
    written.extend(disruptions.committed.iter().copied());
    let rolled_back: HashSet<Uuid> = disruptions.rolled_back.into_iter().collect();

    let reference: Vec<Uuid> = read_everything(&log, written.len())
        .await
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        reference.len(),
        written.len(),
        "read_all must hold exactly the committed events"
    );
    assert_eq!(reference.iter().copied().collect::<HashSet<_>>(), written);

    for (i, subscriber) in live.into_iter().chain(catching_up).enumerate() {
        let got = subscriber.await.expect("subscriber");
        let ids: Vec<Uuid> = got.iter().map(|e| e.event_id).collect();
        assert_eq!(
            ids.len(),
            written.len(),
            "subscriber {i} received {} of {} events",
            ids.len(),
            written.len()
        );
        assert_eq!(
            ids, reference,
            "subscriber {i} saw another order than read_all"
        );
        assert!(
            ids.iter().all(|id| !rolled_back.contains(id)),
            "subscriber {i} saw a rolled-back event"
        );
        assert!(
            got.windows(2).all(|w| w[0].position < w[1].position),
            "subscriber {i}: positions not increasing"
        );
        let mut versions: HashMap<&str, u64> = HashMap::new();
        for event in &got {
            let next = versions.entry(&event.stream_id).or_insert(0);
            assert_eq!(
                event.stream_version, *next,
                "subscriber {i}: {} out of order",
                event.stream_id
            );
            *next += 1;
        }
    }
}
