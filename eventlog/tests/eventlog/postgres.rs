//! The Postgres backend against the conformance suite, plus its database-level guarantees.

use std::time::Duration;

use eventlog::postgres::{PostgresLog, PostgresLogOptions};
use eventlog::{AppendRequest, Direction, EventLog, ExpectedVersion, Position};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use testkit::eventually;
use uuid::Uuid;

use crate::suite::{self, Disruptions, event};

/// The pool sqlx::test offers is capped by its parent's size; the torture test needs more.
pub(crate) async fn log_with(
    _: PgPoolOptions,
    connect: PgConnectOptions,
    connections: u32,
) -> PostgresLog {
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .connect_with(connect)
        .await
        .unwrap();
    PostgresLog::with_options(
        pool,
        PostgresLogOptions {
            // Short, so a test that wrongly depended on polling would still be slow to pass,
            // not fast: notifications and local wake-ups do the real work.
            poll_interval: Duration::from_millis(250),
            ..PostgresLogOptions::default()
        },
    )
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[sqlx::test(migrations = "../migrations")]
        async fn $name(pool_options: PgPoolOptions, connect: PgConnectOptions) {
            suite::$name(log_with(pool_options, connect, 16).await).await;
        }
    )*};
}

conformance!(
    optimistic_concurrency_is_enforced,
    concurrent_appends_at_one_version_let_exactly_one_win,
    a_repeated_idempotency_key_appends_nothing_and_returns_the_first_receipt,
    an_idempotency_key_keeps_the_input_digest_it_was_applied_with,
    a_multi_stream_append_is_all_or_nothing,
    reads_page_through_streams_and_the_whole_log,
    a_subscription_from_the_middle_catches_up_then_follows_live,
);

/// Starts a transaction that appends one event (taking a position and a transaction id) and
/// holds it open for `hold` before committing or rolling back: the out-of-order commits that
/// break a naive reader.
pub(crate) async fn held_append(pool: &PgPool, stream: &str, hold: Duration, commit: bool) -> Uuid {
    let ev = event(9_000_000);
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "select * from append_events(null, array[$1], array[-2]::bigint[], array[1], array[$2], \
         array['test.held'], array[1], array[$3], array[$4])",
    )
    .bind(stream)
    .bind(ev.event_id)
    .bind(ev.payload.to_string())
    .bind(serde_json::to_string(&ev.metadata).unwrap())
    .execute(&mut *tx)
    .await
    .unwrap();
    // Not a wait for something: holding the transaction open is the point.
    tokio::time::sleep(hold).await;
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
    ev.event_id
}

#[sqlx::test(migrations = "../migrations")]
async fn torture_many_writers_many_subscribers_no_gap_no_duplicate(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let log = log_with(pool_options, connect, 40).await;
    let disrupt = disruptions(log.pool().clone());
    suite::torture(log, disrupt).await;
}

/// The torture test's disruptions: slow commits, rollbacks and connections that die inside an
/// append, among the writers' appends.
pub(crate) async fn disruptions(pool: PgPool) -> Disruptions {
    let mut done = Disruptions::default();
    for round in 0..20u64 {
        // One slow commit and one rollback per round, each holding its position 100-150 ms
        // while the writers commit later positions around it.
        let slow_stream = format!("ticket-slow-{}", round % 3);
        let slow = held_append(&pool, &slow_stream, Duration::from_millis(150), true);
        let doomed = held_append(&pool, "ticket-doomed", Duration::from_millis(100), false);
        let (slow, doomed) = tokio::join!(slow, doomed);
        done.committed.push(slow);
        done.rolled_back.push(doomed);
        // A connection that dies mid-transaction: the server rolls it back.
        if round % 5 == 0 {
            let mut conn = pool.acquire().await.unwrap().detach();
            sqlx::query("begin").execute(&mut conn).await.unwrap();
            let ev = event(8_000_000 + round);
            sqlx::query(
                "select * from append_events(null, array['ticket-crash'], array[-2]::bigint[], array[1], \
                 array[$1], array['test.crash'], array[1], array['{}'], array['{}'])",
            )
            .bind(ev.event_id)
            .execute(&mut conn)
            .await
            .unwrap();
            drop(conn);
            done.rolled_back.push(ev.event_id);
        }
    }
    done
}

/// Sessions of this database in a transaction that has taken a transaction id (so has
/// written) and waits, not yet committed: appends held open.
async fn open_appends(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity
         where datname = current_database() and state = 'idle in transaction'
           and backend_xid is not null",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_subscriber_waits_for_an_earlier_transaction_instead_of_skipping_it(pool: PgPool) {
    let log = PostgresLog::new(pool.clone());
    let mut subscription = log.subscribe_all(Position::START);

    // The early transaction takes its id and position first and commits last.
    let early = tokio::spawn({
        let pool = pool.clone();
        async move { held_append(&pool, "ticket-early", Duration::from_millis(400), true).await }
    });
    eventually(
        async || open_appends(&pool).await == 1,
        Duration::from_secs(10),
    )
    .await;
    let late = log
        .append(AppendRequest::to_stream(
            "ticket-late",
            ExpectedVersion::Any,
            vec![event(1)],
        ))
        .await
        .unwrap()
        .into_receipt();

    // The late event is committed but must not be delivered before the early one.
    use futures::StreamExt;
    let first = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let early = early.await.unwrap();
    assert_eq!(first.event_id, early);
    let second = tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.event_id, late.events[0].event_id);
    assert!(first.position < second.position);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_database_refuses_to_change_or_remove_events(pool: PgPool) {
    let log = PostgresLog::new(pool.clone());
    let _receipt = log
        .append(AppendRequest::to_stream(
            "ticket-1",
            ExpectedVersion::NoStream,
            vec![event(1)],
        ))
        .await
        .unwrap();
    for statement in [
        "update events set payload = '{}'",
        "update events set stream_version = 5",
        "delete from events",
        "truncate events",
    ] {
        let err = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    let count: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

/// prev_hash, event_type, payload::text, metadata::text, hash
type ChainRow = (Option<Vec<u8>>, String, String, String, Vec<u8>);

/// Recomputes `stream`'s hash chain in Rust from the stored rows and checks every link.
pub(crate) async fn assert_hash_chain(pool: &PgPool, stream: &str) {
    let rows: Vec<ChainRow> = sqlx::query_as(
        "select prev_hash, event_type, payload::text, metadata::text, hash \
         from events where stream_id = $1 order by stream_version",
    )
    .bind(stream)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut prev: Option<Vec<u8>> = None;
    for (prev_hash, event_type, payload, metadata, hash) in rows {
        assert_eq!(
            prev_hash, prev,
            "{stream}: prev_hash links to the previous event"
        );
        let mut h = Sha256::new();
        h.update(prev_hash.as_deref().unwrap_or_default());
        for part in [&event_type, &payload, &metadata] {
            h.update((part.len() as u32).to_be_bytes());
            h.update(part.as_bytes());
        }
        assert_eq!(
            h.finalize().to_vec(),
            hash,
            "{stream}: hash is sha256 over the documented fields"
        );
        prev = Some(hash);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn each_stream_carries_a_sha256_hash_chain(pool: PgPool) {
    let log = PostgresLog::new(pool.clone());
    for n in 0..5 {
        // Multi-stream appends (append_events) and single-event appends (the one-statement
        // path, with and without an idempotency key) chain into the same streams.
        let _receipt = log
            .append(
                AppendRequest::to_stream("ticket-a", ExpectedVersion::Any, vec![event(n)])
                    .and_stream("ticket-b", ExpectedVersion::Any, vec![event(100 + n)]),
            )
            .await
            .unwrap();
        let _receipt = log
            .append(AppendRequest::to_stream(
                "ticket-a",
                ExpectedVersion::Any,
                vec![event(200 + n)],
            ))
            .await
            .unwrap();
        let _receipt = log
            .append(
                AppendRequest::to_stream("ticket-b", ExpectedVersion::Any, vec![event(300 + n)])
                    .idempotent(format!("chain-{n}")),
            )
            .await
            .unwrap();
    }
    for stream in ["ticket-a", "ticket-b"] {
        assert_hash_chain(&pool, stream).await;
    }
    assert_eq!(log.stream_version("ticket-a").await.unwrap(), Some(9));
    assert_eq!(log.stream_version("ticket-b").await.unwrap(), Some(9));
    let read = log
        .read_stream("ticket-a", 1, Direction::Forwards, 1)
        .await
        .unwrap();
    let first = log
        .read_stream("ticket-a", 0, Direction::Forwards, 1)
        .await
        .unwrap();
    assert_eq!(read[0].prev_hash.as_ref(), Some(&first[0].hash));
}

/// Sessions of this database listening for notifications (their last statement a LISTEN).
async fn listening(log: &PostgresLog) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity
         where datname = current_database() and query ilike 'listen %'",
    )
    .fetch_one(log.pool())
    .await
    .unwrap()
}

/// Two logs over two pools stand for two processes. A subscription of one wakes on the other's
/// append through NOTIFY, long before its poll timer (an hour here) would look; each log skips
/// its own NOTIFYs, so this only works if the other's are told apart from them.
#[sqlx::test(migrations = "../migrations")]
async fn a_subscription_wakes_on_another_processes_append_through_notify(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    use futures::StreamExt;
    let mut logs = Vec::new();
    for _ in 0..2 {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(connect.clone())
            .await
            .unwrap();
        logs.push(PostgresLog::with_options(
            pool,
            PostgresLogOptions {
                poll_interval: Duration::from_secs(3_600),
                ..PostgresLogOptions::default()
            },
        ));
    }
    let (writer, reader) = (logs[0].clone(), logs[1].clone());
    // Each subscription is read by a task of its own, so it waits between events as a live
    // follower does. The writer's follows too: its NOTIFYs and the reader's share the channel.
    let follow = |log: PostgresLog| {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut events = log.subscribe_all(Position::START);
            while let Some(event) = events.next().await {
                if sender.send(event.unwrap().event_id).is_err() {
                    return;
                }
            }
        });
        (receiver, task)
    };
    let (mut own, own_task) = follow(writer.clone());
    let (mut other, other_task) = follow(reader);
    // Both logs listen for the other's NOTIFYs (a listener that connected late would look
    // at once, and find the event without a wake-up).
    eventually(
        async || listening(&writer).await == 2,
        Duration::from_secs(10),
    )
    .await;
    for n in 0..3 {
        // Both followers have read everything and wait for a wake-up. Not a wait for
        // something that shows: a follower still reading would find the event without being
        // woken, and the test would prove nothing, so give them the time to go idle.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let appended = writer
            .append(AppendRequest::to_stream(
                "ticket-woken",
                ExpectedVersion::Any,
                vec![event(n)],
            ))
            .await
            .unwrap();
        let id = appended.receipt().events[0].event_id;
        for follower in [&mut own, &mut other] {
            let next = tokio::time::timeout(Duration::from_secs(10), follower.recv())
                .await
                .expect("woken within seconds, not by the hourly poll")
                .unwrap();
            assert_eq!(next, id);
        }
    }
    // Let the test database go at once: no follower or listener left holding a connection.
    own_task.abort();
    other_task.abort();
    for log in &logs {
        log.stop_background();
        log.pool().close().await;
    }
}
