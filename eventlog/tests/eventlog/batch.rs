//! Group commit in the Postgres log: appends written together keep their own outcomes, a batch
//! the database refuses loses and doubles nothing, and two processes racing on the same streams
//! leave every stream whole.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use eventlog::postgres::{PostgresLog, PostgresLogOptions};
use eventlog::{AppendOutcome, AppendRequest, Direction, Error, EventLog, ExpectedVersion};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::postgres::assert_hash_chain;
use crate::suite::{event, read_everything};

fn log_over(pool: PgPool, batches: usize) -> PostgresLog {
    PostgresLog::with_options(
        pool,
        PostgresLogOptions {
            append_batches: batches,
            ..PostgresLogOptions::default()
        },
    )
}

fn tx_of(outcome: &AppendOutcome) -> u64 {
    outcome.receipt().events[0].position.parts().0
}

#[sqlx::test(migrations = "../migrations")]
async fn appends_that_wait_together_are_written_in_one_transaction(pool: PgPool) {
    // One batch at a time: while the first append is written, the others queue behind it.
    let log = log_over(pool, 1);
    let tasks: Vec<_> = (0..32u64)
        .map(|n| {
            let log = log.clone();
            tokio::spawn(async move {
                log.append(AppendRequest::to_stream(
                    format!("ticket-{n}"),
                    ExpectedVersion::NoStream,
                    vec![event(n)],
                ))
                .await
            })
        })
        .collect();
    let mut transactions = HashSet::new();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(matches!(outcome, AppendOutcome::Appended(_)));
        transactions.insert(tx_of(&outcome));
    }
    let stats = log.append_stats();
    assert!(stats.largest_batch > 1, "{stats:?}");
    assert!(
        transactions.len() < 32,
        "{} transactions",
        transactions.len()
    );
    assert_eq!(read_everything(&log, 32).await.len(), 32);
}

#[sqlx::test(migrations = "../migrations")]
async fn each_request_of_a_batch_keeps_its_own_outcome(pool: PgPool) {
    let log = log_over(pool.clone(), 2);
    // Applied before the batch: its repeat answers with this receipt even though its expected
    // version no longer holds.
    let earlier = log
        .append(
            AppendRequest::to_stream("ticket-k", ExpectedVersion::NoStream, vec![event(0)])
                .idempotent("earlier"),
        )
        .await
        .unwrap()
        .into_receipt();

    let outcomes = log
        .append_many(vec![
            // 0: opens ticket-a.
            AppendRequest::to_stream("ticket-a", ExpectedVersion::NoStream, vec![event(1)]),
            // 1: sees 0's event.
            AppendRequest::to_stream("ticket-a", ExpectedVersion::Exact(0), vec![event(2)]),
            // 2: expects what 1 already moved past.
            AppendRequest::to_stream("ticket-a", ExpectedVersion::Exact(0), vec![event(3)]),
            // 3: two events under a key.
            AppendRequest::to_stream("ticket-b", ExpectedVersion::Any, vec![event(4), event(5)])
                .idempotent("k1"),
            // 4: the same key again, elsewhere: applied by 3.
            AppendRequest::to_stream("ticket-c", ExpectedVersion::Any, vec![event(6)])
                .idempotent("k1"),
            // 5: a stream that does not exist.
            AppendRequest::to_stream("ticket-d", ExpectedVersion::StreamExists, vec![event(7)]),
            // 6: two streams at once, one of them moved by 0 and 1.
            AppendRequest::to_stream("ticket-a", ExpectedVersion::Exact(1), vec![event(8)])
                .and_stream("ticket-e", ExpectedVersion::NoStream, vec![event(9)]),
            // 7: the key applied before the batch.
            AppendRequest::to_stream("ticket-k", ExpectedVersion::NoStream, vec![event(10)])
                .idempotent("earlier"),
            // 8: two streams, one of them refused: nothing of it goes in.
            AppendRequest::to_stream("ticket-f", ExpectedVersion::Any, vec![event(11)]).and_stream(
                "ticket-e",
                ExpectedVersion::NoStream,
                vec![event(12)],
            ),
            // 9: a malformed request is refused before it is queued.
            AppendRequest::to_stream("", ExpectedVersion::Any, vec![event(13)]),
        ])
        .await;
    assert_eq!(outcomes.len(), 10);
    let mut outcomes = outcomes.into_iter();
    let mut next = || outcomes.next().unwrap();

    let a0 = next().unwrap();
    let a1 = next().unwrap();
    assert_eq!(a0.receipt().events[0].version, 0);
    assert_eq!(a1.receipt().events[0].version, 1);
    match next() {
        Err(Error::Conflict {
            stream,
            expected,
            actual,
        }) => assert_eq!(
            (stream.as_str(), expected, actual),
            ("ticket-a", ExpectedVersion::Exact(0), Some(1))
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let keyed = next().unwrap();
    assert!(matches!(keyed, AppendOutcome::Appended(_)));
    assert_eq!(keyed.receipt().events.len(), 2);
    match next().unwrap() {
        AppendOutcome::AlreadyApplied(receipt) => assert_eq!(&receipt, keyed.receipt()),
        other => panic!("expected the first receipt of k1, got {other:?}"),
    }
    assert!(
        matches!(next(), Err(Error::Conflict { ref stream, actual: None, .. }) if stream == "ticket-d")
    );
    let multi = next().unwrap();
    assert_eq!(multi.receipt().version_of("ticket-a"), Some(2));
    assert_eq!(multi.receipt().version_of("ticket-e"), Some(0));
    match next().unwrap() {
        AppendOutcome::AlreadyApplied(receipt) => assert_eq!(receipt, earlier),
        other => panic!("expected the earlier receipt, got {other:?}"),
    }
    assert!(
        matches!(next(), Err(Error::Conflict { ref stream, actual: Some(0), .. }) if stream == "ticket-e")
    );
    assert!(matches!(next(), Err(Error::Invalid(_))));

    // Everything accepted went in one transaction, in request order.
    let tx = tx_of(&a0);
    for outcome in [&a1, &keyed, &multi] {
        assert_eq!(tx_of(outcome), tx);
    }
    assert!(a0.receipt().events[0].position < a1.receipt().events[0].position);
    assert!(a1.receipt().events[0].position < keyed.receipt().events[0].position);
    assert_eq!(log.append_stats().batches, 1);

    // The log holds exactly the accepted events.
    let all = read_everything(&log, 7).await;
    let payload_numbers: Vec<u64> = all
        .iter()
        .map(|e| e.payload["n"].as_u64().unwrap())
        .collect();
    assert_eq!(payload_numbers, vec![0, 1, 2, 4, 5, 8, 9]);
    assert!(log.stream_version("ticket-c").await.unwrap().is_none());
    assert!(log.stream_version("ticket-f").await.unwrap().is_none());
    for stream in ["ticket-a", "ticket-b", "ticket-e", "ticket-k"] {
        assert_hash_chain(&pool, stream).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_batch_stores_each_key_with_its_input_digest(pool: PgPool) {
    let log = log_over(pool, 2);
    let outcomes = log
        .append_many(vec![
            AppendRequest::to_stream("ticket-a", ExpectedVersion::NoStream, vec![event(1)])
                .idempotent("a")
                .with_input_digest(vec![1u8; 32]),
            AppendRequest::to_stream("ticket-b", ExpectedVersion::NoStream, vec![event(2)])
                .idempotent("b"),
            AppendRequest::to_stream("ticket-c", ExpectedVersion::NoStream, vec![event(3)])
                .idempotent("c")
                .with_input_digest(vec![3u8; 32]),
            // The same key again in the batch: the digest of the request that applied it.
            AppendRequest::to_stream("ticket-d", ExpectedVersion::NoStream, vec![event(4)])
                .idempotent("c")
                .with_input_digest(vec![4u8; 32]),
        ])
        .await;
    let outcomes: Vec<AppendOutcome> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(log.append_stats().batches, 1);
    assert!(outcomes[..3].iter().all(|o| !o.is_replay()));
    assert!(outcomes[3].is_replay());
    assert_eq!(outcomes[3].receipt().input_digest, Some(vec![3u8; 32]));
    for (key, digest) in [
        ("a", Some(vec![1u8; 32])),
        ("b", None),
        ("c", Some(vec![3u8; 32])),
    ] {
        let applied = log.applied(key).await.unwrap().unwrap();
        assert_eq!(applied.input_digest, digest, "key {key}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_batch_of_plain_requests_goes_in_one_statement_and_keeps_each_outcome(pool: PgPool) {
    // No keys, one event per stream, no stream in two requests: the one-statement path.
    let log = log_over(pool.clone(), 1);
    for (stream, n) in [
        ("ticket-a", 0),
        ("ticket-b", 1),
        ("ticket-b", 2),
        ("ticket-x", 3),
    ] {
        let appended = log
            .append(AppendRequest::to_stream(
                stream,
                ExpectedVersion::Any,
                vec![event(n)],
            ))
            .await
            .unwrap();
        assert!(matches!(appended, AppendOutcome::Appended(_)));
    }
    let outcomes = log
        .append_many(vec![
            // 0: the version it expects.
            AppendRequest::to_stream("ticket-a", ExpectedVersion::Exact(0), vec![event(10)]),
            // 1: a version behind.
            AppendRequest::to_stream("ticket-b", ExpectedVersion::Exact(0), vec![event(11)]),
            // 2: a new stream.
            AppendRequest::to_stream("ticket-c", ExpectedVersion::NoStream, vec![event(12)]),
            // 3: a stream that would take it beside "no stream" where there is one: nothing
            // of the request goes in.
            AppendRequest::to_stream("ticket-d", ExpectedVersion::NoStream, vec![event(13)])
                .and_stream("ticket-x", ExpectedVersion::NoStream, vec![event(14)]),
            // 4: a stream that does not exist.
            AppendRequest::to_stream("ticket-e", ExpectedVersion::StreamExists, vec![event(16)]),
            // 5: two streams, both as expected.
            AppendRequest::to_stream("ticket-f", ExpectedVersion::Any, vec![event(17)]).and_stream(
                "ticket-g",
                ExpectedVersion::NoStream,
                vec![event(18)],
            ),
        ])
        .await;
    let stats = log.append_stats();
    assert_eq!((stats.batches, stats.plain_batches), (1, 1), "{stats:?}");
    let mut outcomes = outcomes.into_iter();
    let mut next = || outcomes.next().unwrap();

    let a = next().unwrap();
    assert_eq!(a.receipt().version_of("ticket-a"), Some(1));
    assert!(matches!(
        next(),
        Err(Error::Conflict { ref stream, expected: ExpectedVersion::Exact(0), actual: Some(1) })
            if stream == "ticket-b"
    ));
    let c = next().unwrap();
    assert_eq!(c.receipt().version_of("ticket-c"), Some(0));
    assert!(matches!(
        next(),
        Err(Error::Conflict { ref stream, expected: ExpectedVersion::NoStream, actual: Some(0) })
            if stream == "ticket-x"
    ));
    assert!(matches!(
        next(),
        Err(Error::Conflict { ref stream, actual: None, .. }) if stream == "ticket-e"
    ));
    let fg = next().unwrap();
    assert_eq!(fg.receipt().version_of("ticket-f"), Some(0));
    assert_eq!(fg.receipt().version_of("ticket-g"), Some(0));
    let tx = tx_of(&a);
    for outcome in [&c, &fg] {
        assert_eq!(tx_of(outcome), tx);
    }
    assert!(a.receipt().events[0].position < c.receipt().events[0].position);
    assert!(c.receipt().events[0].position < fg.receipt().events[0].position);

    // Now one request of a plain batch fails on its second stream: none of its events go in.
    let outcomes = log
        .append_many(vec![
            AppendRequest::to_stream("ticket-h", ExpectedVersion::NoStream, vec![event(20)])
                .and_stream("ticket-c", ExpectedVersion::NoStream, vec![event(21)]),
            AppendRequest::to_stream("ticket-a", ExpectedVersion::Exact(1), vec![event(22)]),
        ])
        .await;
    assert_eq!(log.append_stats().plain_batches, 2);
    let mut outcomes = outcomes.into_iter();
    assert!(matches!(
        outcomes.next().unwrap(),
        Err(Error::Conflict { ref stream, actual: Some(0), .. }) if stream == "ticket-c"
    ));
    let a2 = outcomes.next().unwrap().unwrap();
    assert_eq!(a2.receipt().version_of("ticket-a"), Some(2));
    for stream in ["ticket-d", "ticket-h"] {
        assert!(
            log.stream_version(stream).await.unwrap().is_none(),
            "{stream}"
        );
    }

    let all = read_everything(&log, 9).await;
    let numbers: Vec<u64> = all
        .iter()
        .map(|e| e.payload["n"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![0, 1, 2, 3, 10, 12, 17, 18, 22]);
    for stream in [
        "ticket-a", "ticket-b", "ticket-c", "ticket-f", "ticket-g", "ticket-x",
    ] {
        assert_hash_chain(&pool, stream).await;
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_batch_the_database_refuses_is_appended_request_by_request(pool: PgPool) {
    let log = log_over(pool.clone(), 2);
    let taken = event(1);
    let _first = log
        .append(AppendRequest::to_stream(
            "ticket-first",
            ExpectedVersion::Any,
            vec![taken.clone()],
        ))
        .await
        .unwrap();

    // The event id of request 1 is in the log already: the batch's insert fails and rolls back.
    let outcomes = log
        .append_many(vec![
            AppendRequest::to_stream("ticket-a", ExpectedVersion::NoStream, vec![event(2)]),
            AppendRequest::to_stream("ticket-b", ExpectedVersion::Any, vec![taken]),
            AppendRequest::to_stream("ticket-a", ExpectedVersion::Exact(0), vec![event(3)])
                .idempotent("after-the-refusal"),
        ])
        .await;
    let stats = log.append_stats();
    assert_eq!((stats.batches, stats.batches_retried_alone), (1, 1));
    let mut outcomes = outcomes.into_iter();
    let first = outcomes.next().unwrap().unwrap();
    assert!(matches!(outcomes.next().unwrap(), Err(Error::Invalid(_))));
    let third = outcomes.next().unwrap().unwrap();
    assert_eq!(first.receipt().version_of("ticket-a"), Some(0));
    assert_eq!(third.receipt().version_of("ticket-a"), Some(1));

    let all = read_everything(&log, 3).await;
    assert_eq!(all.len(), 3);
    assert!(log.stream_version("ticket-b").await.unwrap().is_none());
    // The key is held by the request that went in, once.
    assert_eq!(
        log.applied("after-the-refusal").await.unwrap().as_ref(),
        Some(third.receipt())
    );
    assert_hash_chain(&pool, "ticket-a").await;
}

/// Two logs over two pools stand for two processes: their batches do not know of each other,
/// so they race for the same stream versions and deadlock now and then.
#[sqlx::test(migrations = "../migrations")]
async fn two_processes_racing_on_the_same_streams_lose_and_double_nothing(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let logs = race(&connect, 6, true).await;
    let batched: u64 = logs.iter().map(|l| l.append_stats().batches).sum();
    assert!(batched > 0, "the writers' appends were batched");
}

/// The same race over more streams and one stream per request, so that most batches are
/// plain and go in one statement (see `append_stats().plain_batches`).
#[sqlx::test(migrations = "../migrations")]
async fn two_processes_racing_with_plain_batches_lose_and_double_nothing(
    _options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let logs = race(&connect, 48, false).await;
    let plain: u64 = logs.iter().map(|l| l.append_stats().plain_batches).sum();
    assert!(plain > 0, "some batches were plain");
}

/// Two processes of 12 writers each append 150 times to `streams` streams, every third time
/// expecting the version just read; with `pairs`, every fifth request also writes a second
/// stream, in the order another writer may take the other way round. Then every accepted
/// event is in the log exactly once, nothing else is, and every stream is whole.
async fn race(connect: &PgConnectOptions, streams: u64, pairs: bool) -> Vec<PostgresLog> {
    const WRITERS: u64 = 12;
    const APPENDS: u64 = 150;
    let mut logs = Vec::new();
    for _ in 0..2 {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(connect.clone())
            .await
            .unwrap();
        logs.push(log_over(pool, 2));
    }
    let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (side, log) in logs.iter().enumerate() {
        for writer in 0..WRITERS {
            let (log, accepted) = (log.clone(), accepted.clone());
            let side = u64::try_from(side).unwrap();
            tasks.push(tokio::spawn(async move {
                for n in 0..APPENDS {
                    let id = (side * 1_000 + writer) * 1_000 + n;
                    let stream = format!("ticket-{}", (writer * 7 + n) % streams);
                    // Every third append expects the version it just read: some lose the race
                    // and are refused; the rest take whatever version is next.
                    let expected = if n % 3 == 0 {
                        ExpectedVersion::from_current(log.stream_version(&stream).await.unwrap())
                    } else {
                        ExpectedVersion::Any
                    };
                    let mut request =
                        AppendRequest::to_stream(stream.clone(), expected, vec![event(id)]);
                    if pairs && n % 5 == 0 {
                        // Also write the same stream pair as another writer, in the other
                        // order, now and then: the deadlock-prone shape.
                        let other = format!("ticket-{}", (writer * 7 + n + 1) % streams);
                        request = AppendRequest::to_stream(
                            other,
                            ExpectedVersion::Any,
                            vec![event(id + 500)],
                        )
                        .and_stream(stream, expected, vec![event(id)]);
                    }
                    match log.append(request).await {
                        Ok(outcome) => {
                            let events = outcome.receipt().events.clone();
                            accepted.lock().unwrap().extend(events);
                        }
                        Err(Error::Conflict { .. }) => assert_ne!(expected, ExpectedVersion::Any),
                        Err(other) => panic!("append failed: {other}"),
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    let log = &logs[0];
    let all = read_everything(log, accepted.len()).await;

    // Every accepted event exactly once, nothing else.
    let ids: HashSet<_> = all.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), all.len(), "no event twice");
    assert_eq!(
        ids,
        accepted.iter().map(|e| e.event_id).collect::<HashSet<_>>()
    );
    // Each stream: versions 0, 1, 2, … in log order, and an unbroken hash chain.
    let mut versions: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for e in &all {
        versions
            .entry(e.stream_id.as_str())
            .or_default()
            .push(e.stream_version);
    }
    for (stream, seen) in &versions {
        let expected: Vec<u64> = (0..u64::try_from(seen.len()).unwrap()).collect();
        assert_eq!(seen, &expected, "{stream} in log order");
        assert_hash_chain(log.pool(), stream).await;
        let read = log
            .read_stream(stream, 0, Direction::Forwards, 10_000)
            .await
            .unwrap();
        assert_eq!(read.len(), seen.len());
    }
    logs
}

#[sqlx::test(migrations = "../migrations")]
async fn a_request_holding_a_nul_is_refused_alone_before_it_joins_a_batch(pool: PgPool) {
    let log = log_over(pool.clone(), 2);
    let mut nul_text = event(2);
    nul_text.payload = serde_json::json!({"n": 2, "text": "a\u{0}b"});
    let mut nul_tag = event(3);
    nul_tag.payload = serde_json::json!({"n": 3, "tags": ["ok", "\u{0}"]});
    let outcomes = log
        .append_many(vec![
            AppendRequest::to_stream("ticket-a", ExpectedVersion::NoStream, vec![event(1)]),
            AppendRequest::to_stream("ticket-b", ExpectedVersion::NoStream, vec![nul_text]),
            AppendRequest::to_stream("ticket-c", ExpectedVersion::NoStream, vec![nul_tag]),
            AppendRequest::to_stream("ticket-d", ExpectedVersion::NoStream, vec![event(4)])
                .idempotent("key-\u{0}"),
            AppendRequest::to_stream("ticket-e", ExpectedVersion::NoStream, vec![event(5)]),
        ])
        .await;
    let outcomes: Vec<_> = outcomes.into_iter().collect();
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    for refused in &outcomes[1..4] {
        match refused {
            Err(Error::Unstorable(message)) => assert!(message.contains("NUL"), "{message}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert!(matches!(&outcomes[1], Err(Error::Unstorable(m)) if m.contains("`text`")));
    assert!(matches!(&outcomes[2], Err(Error::Unstorable(m)) if m.contains("`tags[1]`")));
    assert!(outcomes[4].is_ok(), "{:?}", outcomes[4]);
    let stats = log.append_stats();
    assert_eq!(stats.batches_retried_alone, 0, "{stats:?}");
    assert_eq!(read_everything(&log, 2).await.len(), 2);
}
