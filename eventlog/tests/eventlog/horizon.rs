//! The read horizon: transactions that do not append, on another table of the log's database or
//! in another database of the same server, hold no reader back, and the log stays gap-free
//! with them open. Appends that are still running are the only ones that do, and the log names
//! the oldest.

use std::time::{Duration, Instant};

use eventlog::postgres::PostgresLog;
use eventlog::{AppendRequest, EventLog, ExpectedVersion, Position};
use futures::StreamExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use testkit::eventually;

use crate::postgres::{disruptions, held_append, log_with};
use crate::suite::{self, event};

/// A transaction that took a transaction id and stays open as long as this value lives: what a
/// long write anywhere on the server looks like to Postgres' snapshots.
struct OpenWrite {
    conn: PgConnection,
    xid: i64,
}

impl OpenWrite {
    /// Inserts into a table of the log's database that is not the log, and stays open.
    async fn on_another_table(connect: &PgConnectOptions) -> OpenWrite {
        let mut conn = PgConnection::connect_with(connect).await.unwrap();
        conn.execute("create table if not exists bystander (n integer)")
            .await
            .unwrap();
        conn.execute("begin").await.unwrap();
        conn.execute("insert into bystander values (1)")
            .await
            .unwrap();
        OpenWrite::opened(conn).await
    }

    /// Takes a transaction id in another database of the same server, and stays open.
    async fn in_another_database() -> OpenWrite {
        let mut conn = PgConnection::connect(&testkit::database::server_url())
            .await
            .unwrap();
        conn.execute("begin").await.unwrap();
        OpenWrite::opened(conn).await
    }

    async fn opened(mut conn: PgConnection) -> OpenWrite {
        let xid: i64 = sqlx::query_scalar("select pg_current_xact_id()::text::bigint")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        OpenWrite { conn, xid }
    }

    /// Whether the transaction is still the one that opened (never committed nor rolled back).
    async fn still_open(&mut self) -> bool {
        let xid: Option<i64> =
            sqlx::query_scalar("select pg_current_xact_id_if_assigned()::text::bigint")
                .fetch_one(&mut self.conn)
                .await
                .unwrap();
        xid == Some(self.xid)
    }
}

/// Both kinds of open writes, after checking that they do hold the server's oldest running
/// transaction back (the line readers stopped at before the horizon existed).
async fn open_writes_elsewhere(connect: &PgConnectOptions, pool: &PgPool) -> [OpenWrite; 2] {
    let writes = [
        OpenWrite::on_another_table(connect).await,
        OpenWrite::in_another_database().await,
    ];
    let xmin: i64 =
        sqlx::query_scalar("select pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
            .fetch_one(pool)
            .await
            .unwrap();
    let oldest = writes.iter().map(|w| w.xid).min().unwrap();
    assert!(
        xmin <= oldest,
        "the open writes must hold the server's xmin back ({xmin} > {oldest})"
    );
    writes
}

/// A subscriber follows the log live while a write transaction stays open in the log's
/// database (on another table) and another in another database of the server, for six
/// seconds: each event reaches it within a second, and `head` and `count_after` see it.
#[sqlx::test(migrations = "../migrations")]
async fn transactions_open_elsewhere_on_the_server_hold_no_subscriber_back(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let log = log_with(pool_options, connect.clone(), 8).await;
    let mut writes = open_writes_elsewhere(&connect, log.pool()).await;
    let opened = Instant::now();
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
    let follower = tokio::spawn({
        let log = log.clone();
        async move {
            let mut events = log.subscribe_all(Position::START);
            while let Some(event) = events.next().await {
                if sender.send(event.unwrap()).is_err() {
                    return;
                }
            }
        }
    });
    // Appends paced over six seconds: the point is that the writes stay open that long.
    let mut pace = tokio::time::interval(Duration::from_millis(300));
    let mut n = 0;
    while opened.elapsed() < Duration::from_secs(6) {
        pace.tick().await;
        let appended = log
            .append(AppendRequest::to_stream(
                "ticket-live",
                ExpectedVersion::Any,
                vec![event(n)],
            ))
            .await
            .unwrap();
        let committed = appended.receipt().events[0].clone();
        let got = tokio::time::timeout(Duration::from_secs(1), received.recv())
            .await
            .unwrap_or_else(|_| panic!("event {n} was not delivered within a second"))
            .unwrap();
        assert_eq!(got.event_id, committed.event_id);
        assert_eq!(log.head().await.unwrap(), committed.position);
        assert_eq!(
            log.count_after(Position::START, 1_000).await.unwrap(),
            n + 1
        );
        n += 1;
    }
    assert!(n >= 10, "only {n} appends in six seconds");
    // Transactions that do not append are not named as holding the log back.
    assert_eq!(log.held_back_by().await.unwrap(), None);
    for write in &mut writes {
        assert!(write.still_open().await);
    }
    follower.abort();
}

/// The torture test again, with a write transaction open on another table and another in
/// another database for the whole run: readers then depend on the registered appends alone
/// for their horizon, through slow commits, rollbacks and connections dying inside appends.
#[sqlx::test(migrations = "../migrations")]
async fn torture_with_transactions_open_elsewhere_on_the_server(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let log = log_with(pool_options, connect.clone(), 20).await;
    let mut writes = open_writes_elsewhere(&connect, log.pool()).await;
    let disrupt = disruptions(log.pool().clone());
    suite::torture(log, disrupt).await;
    for write in &mut writes {
        assert!(
            write.still_open().await,
            "the open writes lasted the whole run"
        );
    }
}

/// An append that stays open is what holds readers back: the log names it (database, process,
/// age) while it runs, and names nothing once it ended.
#[sqlx::test(migrations = "../migrations")]
async fn an_open_append_is_named_as_holding_the_log_back(pool: PgPool) {
    let log = PostgresLog::new(pool.clone());
    let database: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(log.held_back_by().await.unwrap(), None);
    let held = tokio::spawn({
        let pool = pool.clone();
        async move { held_append(&pool, "ticket-held", Duration::from_secs(3), true).await }
    });
    eventually(
        async || match log.held_back_by().await.unwrap() {
            Some(by) if by.age >= Duration::from_secs(1) => {
                assert_eq!(by.database, database);
                let pid = by.pid.expect("a running session");
                let appending: bool = sqlx::query_scalar(
                    "select state = 'idle in transaction' and backend_xid is not null \
                       from pg_stat_activity where pid = $1",
                )
                .bind(pid)
                .fetch_one(&pool)
                .await
                .unwrap();
                if appending {
                    Ok(())
                } else {
                    Err(format!("process {pid} is not the open append"))
                }
            }
            other => Err(format!("held back by {other:?}")),
        },
        Duration::from_secs(10),
    )
    .await;
    held.await.unwrap();
    assert_eq!(log.held_back_by().await.unwrap(), None);
}

/// An append registers before its transaction takes an id; a transaction that wrote something
/// else first has one already, so its append is refused (readers may have passed its id).
/// An insert of its own registers by itself.
#[sqlx::test(migrations = "../migrations")]
async fn an_append_after_another_write_of_its_transaction_is_refused(pool: PgPool) {
    sqlx::query("create table bystander (n integer)")
        .execute(&pool)
        .await
        .unwrap();
    let ev = event(1);
    for append in [
        "select * from append_events(null, array['ticket-late'], array[-2]::bigint[], array[1], \
         array[gen_random_uuid()], array['test.late'], array[1], array['{}'], array['{}'])",
        "select * from append_events('a-key', array['ticket-late'], array[-2]::bigint[], \
         array[1], array[gen_random_uuid()], array['test.late'], array[1], array['{}'], \
         array['{}'])",
        "insert into events (stream_id, stream_version, event_id, event_type, schema_version, \
         payload, metadata, hash) values ('ticket-late', 0, gen_random_uuid(), 'test.late', 1, \
         '{}', '{}', sha256(''))",
    ] {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("insert into bystander values (1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let err = sqlx::query(append).execute(&mut *tx).await.unwrap_err();
        let code = err.as_database_error().and_then(|db| db.code());
        assert_eq!(code.as_deref(), Some("LD002"), "{append}: {err}");
    }
    // Alone in its transaction, a plain insert registers through the trigger and is read.
    sqlx::query(
        "insert into events (stream_id, stream_version, event_id, event_type, schema_version, \
         payload, metadata, hash) values ('ticket-alone', 0, $1, 'test.alone', 1, '{}', \
         $2::text::jsonb, sha256(''))",
    )
    .bind(ev.event_id)
    .bind(serde_json::to_string(&ev.metadata).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    let log = PostgresLog::new(pool.clone());
    let page = log.read_all(Position::START, 10).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].event_id, ev.event_id);
}
