//! The projector runtime against a real Postgres: catch-up and live, crash safety, failures,
//! rebuild and swap under traffic, singleton takeover, read-your-writes.
//!
//! The projection under test records every event it applies as a row keyed by event id, so a
//! double application is a primary-key violation and a lost event is a missing row.

#![expect(clippy::unwrap_used, reason = "tests")]

mod read_models;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use app::ownership::{LockClass, LockKey};
use chrono::{TimeZone, Utc};
use domain::customer::{CustomerEvent, CustomerProfile, CustomerRegistered, ProfileUpdated};
use domain::{CustomerId, DomainEvent};
use eventlog::postgres::PostgresLog;
use eventlog::{
    Actor, ActorKind, AppendRequest, EventLog, ExpectedVersion, Metadata, NewEvent, Position,
};
use futures::future::BoxFuture;
use projections::checkpoint;
use projections::{
    ApplyError, Envelope, Exit, Projection, ProjectionRunner, RunnerOptions, Target, wait_for,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use testkit::eventually;
use uuid::Uuid;

/// Records each event as a row; can be told to fail on an event or stall inside a batch.
#[derive(Debug)]
struct Recorder {
    name: &'static str,
    table: &'static [&'static str],
    version: u32,
    label: &'static str,
    fail_on: Option<Uuid>,
    stall: Option<Arc<Stall>>,
    hold: Option<Arc<Hold>>,
    /// When set, the only stream whose events it wants.
    wants_stream: Option<String>,
    /// The size of every batch applied, in order.
    batches: Arc<std::sync::Mutex<Vec<usize>>>,
}

/// Once armed, holds the next batch inside `apply` until released.
#[derive(Debug)]
struct Hold {
    armed: AtomicBool,
    entered: tokio::sync::Notify,
    released: tokio::sync::Semaphore,
}

impl Default for Hold {
    fn default() -> Self {
        Hold {
            armed: AtomicBool::new(false),
            entered: tokio::sync::Notify::new(),
            released: tokio::sync::Semaphore::new(0),
        }
    }
}

#[derive(Debug, Default)]
struct Stall {
    after_events: AtomicU64,
    seen: AtomicU64,
    stalled: AtomicBool,
}

impl Recorder {
    fn new(name: &'static str, table: &'static str) -> Self {
        Recorder {
            name,
            table: Box::leak(Box::new([table])),
            version: 1,
            label: "a",
            fail_on: None,
            stall: None,
            hold: None,
            wants_stream: None,
            batches: Arc::default(),
        }
    }
}

impl Projection for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }

    fn wants(&self, event: &Envelope) -> bool {
        self.wants_stream
            .as_ref()
            .is_none_or(|stream| event.stream.to_string() == *stream)
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn tables(&self) -> &'static [&'static str] {
        self.table
    }

    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        target: Target,
        batch: &'a [Envelope],
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            self.batches.lock().unwrap().push(batch.len());
            // Held before writing anything: a transaction that has written holds every
            // reader of the log back until it ends.
            if let Some(hold) = &self.hold
                && hold.armed.swap(false, Ordering::SeqCst)
            {
                hold.entered.notify_one();
                let _ = hold.released.acquire().await;
            }
            if let Some(bad) = batch.iter().find(|e| Some(e.event_id) == self.fail_on) {
                return Err(ApplyError::Event {
                    position: bad.position,
                    reason: "this recorder refuses that event".to_owned(),
                });
            }
            let ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
            let streams: Vec<String> = batch.iter().map(|e| e.stream.to_string()).collect();
            let versions: Vec<i64> = batch.iter().map(|e| e.stream_version as i64).collect();
            let positions: Vec<String> = batch.iter().map(|e| e.position.to_string()).collect();
            let sql = format!(
                "insert into {} (event_id, stream, version, position, built_by, written_by)
                 select *, $5, $6 from unnest($1::uuid[], $2::text[], $3::int8[], $4::text[])",
                target.table(self.table[0])
            );
            sqlx::query(&sql)
                .bind(&ids)
                .bind(&streams)
                .bind(&versions)
                .bind(&positions)
                .bind(self.version as i32)
                .bind(self.label)
                .execute(&mut *conn)
                .await?;
            if let Some(stall) = &self.stall {
                let seen = stall.seen.fetch_add(batch.len() as u64, Ordering::SeqCst);
                if seen + batch.len() as u64 > stall.after_events.load(Ordering::SeqCst) {
                    // Rows are written, the checkpoint is not: the process "dies" here, hanging
                    // until the test aborts it.
                    stall.stalled.store(true, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                }
            }
            Ok(())
        })
    }
}

async fn create_table(pool: &PgPool, table: &str) {
    let sql = format!(
        "create table {table} (event_id uuid primary key, stream text not null,
            version bigint not null, position text not null, built_by int not null,
            written_by text not null);
         create index on {table} (stream, version)"
    );
    sqlx::raw_sql(&sql).execute(pool).await.unwrap();
}

/// A pool of our own: the one `sqlx::test` gives is capped at a few connections.
async fn pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(20)
        .connect_with(options)
        .await
        .unwrap()
}

/// A runner of `recorders` with the test timings.
fn runner(
    log: &PostgresLog,
    pool: &PgPool,
    recorders: Vec<Recorder>,
) -> ProjectionRunner<PostgresLog> {
    let projections = recorders
        .into_iter()
        .map(|recorder| Arc::new(recorder) as Arc<dyn Projection>)
        .collect();
    ProjectionRunner::new(log.clone(), pool.clone(), projections).with_options(fast_options())
}

/// The single number `sql` selects.
async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

fn fast_options() -> RunnerOptions {
    RunnerOptions {
        catch_up_page: 300,
        live_batch: 100,
        lock_retry: Duration::from_millis(100),
        request_poll: Duration::from_millis(100),
        swap_lock_timeout: Duration::from_millis(500),
        restart_backoff: Duration::from_millis(50),
        ..RunnerOptions::default()
    }
}

fn profile(name: &str) -> CustomerProfile {
    CustomerProfile {
        first_name: name.to_owned(),
        last_name: None,
        username: None,
        language_code: None,
    }
}

/// Appends `count` events spread over `streams` customer streams, a few per append.
async fn append_events(log: &PostgresLog, first_customer: i64, streams: i64, count: usize) {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut versions = vec![None::<u64>; streams as usize];
    let mut written = 0;
    while written < count {
        for (index, version) in versions.iter_mut().enumerate() {
            if written >= count {
                break;
            }
            let customer = CustomerId(first_customer + index as i64);
            let per_append = 3.min(count - written);
            let mut events = Vec::new();
            for n in 0..per_append {
                let event = if version.is_none() && n == 0 {
                    CustomerEvent::Registered(CustomerRegistered {
                        customer_id: customer,
                        at,
                        personal: profile("Ada"),
                    })
                } else {
                    CustomerEvent::ProfileUpdated(ProfileUpdated {
                        at,
                        personal: profile(&format!("Ada {written} {n}")),
                    })
                };
                let metadata = Metadata::new(Actor::new(ActorKind::Customer, "test"));
                events.push(
                    NewEvent::new(
                        event.event_type(),
                        serde_json::to_value(&event).unwrap(),
                        metadata,
                    )
                    .with_schema_version(event.schema_version()),
                );
            }
            let expected = match version {
                None => ExpectedVersion::NoStream,
                Some(v) => ExpectedVersion::Exact(*v),
            };
            let stream = customer.stream().name();
            let _ = log
                .append(AppendRequest::to_stream(stream, expected, events))
                .await
                .unwrap();
            *version = Some(version.map_or(per_append as u64 - 1, |v| v + per_append as u64));
            written += per_append;
        }
    }
}

async fn everything(log: &PostgresLog) -> Vec<eventlog::RecordedEvent> {
    let mut all = Vec::new();
    let mut cursor = Position::START;
    loop {
        let page = log.read_all(cursor, 5_000).await.unwrap();
        if page.events.is_empty() {
            return all;
        }
        cursor = page.next;
        all.extend(page.events);
    }
}

/// Waits until the log shows `count` events, and returns them all. Readers see an event only
/// once no older transaction of the whole cluster is still open (the log's gap-free rule), so
/// an open transaction of a test running beside this one holds events back for a moment.
async fn at_least(log: &PostgresLog, count: usize) -> Vec<eventlog::RecordedEvent> {
    eventually(
        async || {
            let all = everything(log).await;
            if all.len() >= count {
                Ok(all)
            } else {
                Err(format!("the log shows {} of {count} events", all.len()))
            }
        },
        Duration::from_secs(30),
    )
    .await
}

/// Waits until the log shows `count` events, and returns its head.
async fn head_after(log: &PostgresLog, count: usize) -> Position {
    at_least(log, count).await.last().unwrap().position
}

/// Waits until the log shows `count` events and the `projections` have applied them all;
/// returns the head.
async fn caught_up(
    log: &PostgresLog,
    pool: &PgPool,
    projections: &[&str],
    count: usize,
) -> Position {
    let head = head_after(log, count).await;
    wait_for(pool, projections, head, Duration::from_secs(30))
        .await
        .unwrap();
    head
}

/// The recorder's table must hold exactly the log's events, once each.
async fn assert_exactly_the_log(pool: &PgPool, log: &PostgresLog, table: &str) {
    let all = everything(log).await;
    let sql = format!("select event_id from {table} order by position");
    let rows: Vec<Uuid> = sqlx::query_scalar(&sql).fetch_all(pool).await.unwrap();
    let expected: Vec<Uuid> = all.iter().map(|e| e.event_id).collect();
    assert_eq!(rows.len(), expected.len(), "row count differs from the log");
    assert_eq!(rows, expected, "rows differ from the log's events");
}

/// Waits (at most 30 s, then fails) until the live tables of `name` were built by `version`;
/// answers the version they were seen built by.
async fn until_live_version(pool: &PgPool, name: &str, version: u32) -> u32 {
    eventually(
        async || {
            let seen = live_checkpoint(pool, name).await.version;
            if seen == version {
                Ok(seen)
            } else {
                Err(format!(
                    "the live tables of {name} are version {seen}, not {version}"
                ))
            }
        },
        Duration::from_secs(30),
    )
    .await
}

/// Whether some session holds the ownership lock of the projection `name` (a runner runs it).
async fn owned(pool: &PgPool, name: &str) -> bool {
    let (class, object) = LockKey::new(LockClass::PROJECTION, name).parts();
    sqlx::query_scalar(
        "select exists (select 1 from pg_locks
         where locktype = 'advisory' and granted and objsubid = 2
           and classid = ($1::int8 & 4294967295)::text::oid
           and objid = ($2::int8 & 4294967295)::text::oid)",
    )
    .bind(i64::from(class))
    .bind(i64::from(object))
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn live_checkpoint(pool: &PgPool, name: &str) -> checkpoint::Checkpoint {
    checkpoint::list(pool)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.projection == name && c.target == Target::Live)
        .unwrap()
}

fn spawn_runner<L: EventLog>(
    runner: ProjectionRunner<L>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Vec<(String, Exit)>>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Sending on `stop`, or dropping it, cancels the runner's token.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let handle = tokio::spawn(runner.run(shutdown.clone()));
    tokio::spawn(async move {
        let _ = stopped.await;
        shutdown.cancel();
    });
    (stop, handle)
}

#[sqlx::test(migrations = "../migrations")]
async fn a_projection_catches_up_in_pages_then_follows_the_log_live(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    create_table(&pool, "recorded").await;
    append_events(&log, 1, 20, 1_000).await;
    head_after(&log, 1_000).await;

    let projection: Arc<dyn Projection> = Arc::new(Recorder::new("recorder", "recorded"));
    let runner = ProjectionRunner::new(log.clone(), pool.clone(), vec![projection])
        .with_options(fast_options());
    let (stop, handle) = spawn_runner(runner);

    // Live traffic while it catches up.
    append_events(&log, 100, 10, 500).await;
    let head = caught_up(&log, &pool, &["recorder"], 1_500).await;
    assert_exactly_the_log(&pool, &log, "recorded").await;
    let checkpoint = live_checkpoint(&pool, "recorder").await;
    assert_eq!(checkpoint.position, head);
    assert_eq!(checkpoint.events_seen, 1_500);

    stop.send(()).unwrap();
    let exits = handle.await.unwrap();
    assert_eq!(exits, vec![("recorder".to_owned(), Exit::Shutdown)]);
}

#[sqlx::test(migrations = "../migrations")]
async fn events_that_arrive_while_a_projection_applies_go_to_every_projection_as_one_batch(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    create_table(&pool, "quick").await;
    create_table(&pool, "slow").await;
    let quick = Recorder::new("quick", "quick");
    let quick_batches = Arc::clone(&quick.batches);
    let hold = Arc::new(Hold::default());
    let slow = Recorder {
        hold: Some(Arc::clone(&hold)),
        ..Recorder::new("slow", "slow")
    };
    let observed = Observed::new(log.clone());
    let projections = vec![
        Arc::new(quick) as Arc<dyn Projection>,
        Arc::new(slow) as Arc<dyn Projection>,
    ];
    let (stop, handle) = spawn_runner(
        ProjectionRunner::new(observed.clone(), pool.clone(), projections)
            .with_options(fast_options()),
    );
    append_events(&log, 1, 3, 9).await;
    caught_up(&log, &pool, &["quick", "slow"], 9).await;

    // Both follow the shared reader now. The slow one takes the next event and keeps applying
    // it while 60 more are appended, one append at a time.
    hold.armed.store(true, Ordering::SeqCst);
    let before = quick_batches.lock().unwrap().len();
    append_events(&log, 100, 1, 1).await;
    tokio::time::timeout(Duration::from_secs(10), hold.entered.notified())
        .await
        .expect("the slow projection never took the event");
    for customer in 200..220 {
        append_events(&log, customer, 1, 3).await;
    }
    let head = head_after(&log, 70).await;
    // The reader reads all of it while the slow projection still applies.
    eventually(
        async || match *observed.read_up_to.lock().unwrap() {
            Some(read) if read >= head => Ok(()),
            read => Err(format!("the shared reader read up to {read:?}, not {head}")),
        },
        Duration::from_secs(10),
    )
    .await;
    hold.released.add_permits(1);
    wait_for(&pool, &["quick", "slow"], head, Duration::from_secs(30))
        .await
        .unwrap();

    let sizes = quick_batches.lock().unwrap()[before..].to_vec();
    assert_eq!(sizes.iter().sum::<usize>(), 61, "batches: {sizes:?}");
    assert!(
        sizes.len() <= 2,
        "the 60 events reached the quick projection in {} batches ({sizes:?}), not gathered \
         while the slow one applied",
        sizes.len()
    );
    assert_exactly_the_log(&pool, &log, "quick").await;
    assert_exactly_the_log(&pool, &log, "slow").await;
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_batch_of_events_a_projection_does_not_want_only_moves_its_checkpoint(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    create_table(&pool, "picky").await;
    let wanted = CustomerId(500).stream().name();
    let picky = Recorder {
        wants_stream: Some(wanted.clone()),
        ..Recorder::new("picky", "picky")
    };
    let batches = Arc::clone(&picky.batches);
    let (stop, handle) = spawn_runner(runner(&log, &pool, vec![picky]));

    // Catch-up and live, none of it wanted.
    append_events(&log, 1, 5, 30).await;
    caught_up(&log, &pool, &["picky"], 30).await;
    append_events(&log, 10, 5, 20).await;
    let head = caught_up(&log, &pool, &["picky"], 50).await;
    assert!(batches.lock().unwrap().is_empty(), "nothing was applied");
    assert_eq!(count(&pool, "select count(*) from picky").await, 0);
    let checkpoint = live_checkpoint(&pool, "picky").await;
    assert_eq!((checkpoint.position, checkpoint.events_seen), (head, 50));

    // A wanted event is applied as before.
    append_events(&log, 500, 1, 1).await;
    caught_up(&log, &pool, &["picky"], 51).await;
    let streams: Vec<String> = sqlx::query_scalar("select stream from picky")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(streams, vec![wanted]);
    assert_eq!(live_checkpoint(&pool, "picky").await.events_seen, 51);

    // Unwanted batches in quick succession move the stored checkpoint at most every few
    // milliseconds; stopping right after them stores where the projection got to, and a new
    // runner goes on from there: every event counted once, the wanted one applied once.
    append_events(&log, 20, 5, 40).await;
    stop.send(()).unwrap();
    handle.await.unwrap();
    let stored = live_checkpoint(&pool, "picky").await;
    let all = everything(&log).await;
    let through = all.iter().filter(|e| e.position <= stored.position).count();
    assert_eq!(
        stored.events_seen, through as u64,
        "seen events match the stored position"
    );
    let again = Recorder {
        wants_stream: Some(CustomerId(500).stream().name()),
        ..Recorder::new("picky", "picky")
    };
    let (stop, handle) = spawn_runner(runner(&log, &pool, vec![again]));
    let head = caught_up(&log, &pool, &["picky"], 91).await;
    let checkpoint = live_checkpoint(&pool, "picky").await;
    assert_eq!((checkpoint.position, checkpoint.events_seen), (head, 91));
    assert_eq!(count(&pool, "select count(*) from picky").await, 1);
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_projector_killed_mid_batch_resumes_without_loss_or_double_application(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    create_table(&pool, "recorded").await;
    append_events(&log, 1, 30, 3_000).await;

    // Kill it five times, each time in the middle of a batch whose rows are already written.
    for round in 1..=5_u64 {
        let stall = Arc::new(Stall::default());
        stall.after_events.store(150 + round * 37, Ordering::SeqCst);
        let mut recorder = Recorder::new("recorder", "recorded");
        recorder.stall = Some(Arc::clone(&stall));
        let runner = runner(&log, &pool, vec![recorder]);
        let (_stop, handle) = spawn_runner(runner);
        // More traffic meanwhile.
        append_events(&log, 1_000 * round as i64, 5, 100).await;
        eventually(
            async || {
                if stall.stalled.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    Err(format!("round {round} never stalled"))
                }
            },
            Duration::from_secs(10),
        )
        .await;
        handle.abort();
        let _ = handle.await;
    }

    let runner = runner(&log, &pool, vec![Recorder::new("recorder", "recorded")]);
    let (stop, handle) = spawn_runner(runner);
    caught_up(&log, &pool, &["recorder"], 3_500).await;
    // A double application would have been a primary-key violation, and thus a failure.
    assert_eq!(live_checkpoint(&pool, "recorder").await.failure, None);
    assert_exactly_the_log(&pool, &log, "recorded").await;
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_projection_that_fails_on_an_event_stops_before_it_and_the_others_go_on(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    create_table(&pool, "good_rows").await;
    create_table(&pool, "bad_rows").await;
    append_events(&log, 1, 10, 900).await;
    let all = at_least(&log, 900).await;
    let poison = &all[613];

    let mut bad = Recorder::new("bad", "bad_rows");
    bad.fail_on = Some(poison.event_id);
    let runner = ProjectionRunner::new(
        log.clone(),
        pool.clone(),
        vec![
            Arc::new(Recorder::new("good", "good_rows")) as _,
            Arc::new(bad) as _,
        ],
    )
    .with_options(fast_options());
    let (stop, handle) = spawn_runner(runner);

    append_events(&log, 500, 3, 60).await;
    let head = caught_up(&log, &pool, &["good"], 960).await;
    assert_exactly_the_log(&pool, &log, "good_rows").await;

    let err = wait_for(&pool, &["bad"], head, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, projections::WaitError::Failed { projection, .. } if projection == "bad"),
        "{err}"
    );
    let checkpoint = live_checkpoint(&pool, "bad").await;
    assert_eq!(checkpoint.position, all[612].position);
    let failure = checkpoint.failure.unwrap();
    assert_eq!(failure.event_id, poison.event_id);
    assert_eq!(failure.position, poison.position);
    assert_eq!(failure.event_type, poison.event_type);
    assert!(failure.error.contains("refuses"), "{}", failure.error);
    let rows: i64 = count(&pool, "select count(*) from bad_rows").await;
    assert_eq!(rows, 613);

    stop.send(()).unwrap();
    let mut exits = handle.await.unwrap();
    exits.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        matches!(&exits[0], (name, Exit::Failed(f)) if name == "bad" && f.event_id == poison.event_id)
    );
    assert_eq!(exits[1], ("good".to_owned(), Exit::Shutdown));
}

#[sqlx::test(migrations = "../migrations")]
async fn a_new_version_rebuilds_into_shadow_tables_and_swaps_while_readers_never_see_less(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    create_table(&pool, "recorded").await;
    append_events(&log, 1, 40, 4_000).await;
    let head = head_after(&log, 4_000).await;

    let v1 = runner(&log, &pool, vec![Recorder::new("recorder", "recorded")]);
    let (stop, handle) = spawn_runner(v1);
    wait_for(&pool, &["recorder"], head, Duration::from_secs(30))
        .await
        .unwrap();
    stop.send(()).unwrap();
    handle.await.unwrap();
    let indexes_before: Vec<String> = sqlx::query_scalar(
        "select indexname::text from pg_indexes where tablename = 'recorded' order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();

    // A reader that must never see the table shrink (nor empty), before, during and after.
    let watching = Arc::new(AtomicBool::new(true));
    let reader = {
        let pool = pool.clone();
        let watching = Arc::clone(&watching);
        tokio::spawn(async move {
            let mut last = 0_i64;
            let mut reads = 0_u64;
            while watching.load(Ordering::SeqCst) {
                let count: i64 = sqlx::query_scalar("select count(*) from recorded")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                assert!(count >= last, "readers saw {count} rows after {last}");
                last = count;
                reads += 1;
            }
            reads
        })
    };
    // Traffic during the rebuild.
    let writer = {
        let log = log.clone();
        tokio::spawn(async move { append_events(&log, 10_000, 10, 600).await })
    };

    let mut v2 = Recorder::new("recorder", "recorded");
    v2.version = 2;
    let runner = runner(&log, &pool, vec![v2]);
    let (stop, handle) = spawn_runner(runner);
    writer.await.unwrap();
    let head = head_after(&log, 4_600).await;
    wait_for(&pool, &["recorder"], head, Duration::from_secs(60))
        .await
        .unwrap();
    until_live_version(&pool, "recorder", 2).await;
    watching.store(false, Ordering::SeqCst);
    assert!(reader.await.unwrap() > 10, "the reader hardly read");

    let checkpoint = live_checkpoint(&pool, "recorder").await;
    assert_eq!(checkpoint.version, 2);
    assert_exactly_the_log(&pool, &log, "recorded").await;
    // Every row now comes from the rebuild: none written by version 1 is left.
    let old: i64 = count(&pool, "select count(*) from recorded where built_by = 1").await;
    assert_eq!(old, 0);
    let shadows: i64 = count(
        &pool,
        "select count(*) from pg_tables where schemaname = 'ld_shadow'",
    )
    .await;
    assert_eq!(shadows, 0, "the shadow tables were moved, not left behind");
    let indexes_after: Vec<String> = sqlx::query_scalar(
        "select indexname::text from pg_indexes where tablename = 'recorded' order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(indexes_after, indexes_before);
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn one_process_runs_a_projection_and_another_takes_over_when_it_dies(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    create_table(&pool, "recorded").await;
    append_events(&log, 1, 10, 300).await;

    let mut first = Recorder::new("recorder", "recorded");
    first.label = "first";
    let mut second = Recorder::new("recorder", "recorded");
    second.label = "second";
    let (_stop_first, first) = spawn_runner(runner(&log, &pool, vec![first]));
    caught_up(&log, &pool, &["recorder"], 300).await;
    let (stop_second, second) = spawn_runner(runner(&log, &pool, vec![second]));
    append_events(&log, 100, 5, 200).await;
    caught_up(&log, &pool, &["recorder"], 500).await;
    let by_second: i64 = count(
        &pool,
        "select count(*) from recorded where written_by = 'second'",
    )
    .await;
    assert_eq!(by_second, 0, "the standby wrote while the owner was alive");

    // The owner dies: its connections close and Postgres releases its lock.
    first.abort();
    let _ = first.await;
    append_events(&log, 200, 5, 200).await;
    caught_up(&log, &pool, &["recorder"], 700).await;
    let by_second: i64 = count(
        &pool,
        "select count(*) from recorded where written_by = 'second'",
    )
    .await;
    assert_eq!(by_second, 200);
    assert_exactly_the_log(&pool, &log, "recorded").await;
    stop_second.send(()).unwrap();
    second.await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_requested_rebuild_runs_here_or_in_the_process_that_owns_the_projection(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    create_table(&pool, "recorded").await;
    append_events(&log, 1, 10, 800).await;
    let head = head_after(&log, 800).await;
    let recorder = || vec![Arc::new(Recorder::new("recorder", "recorded")) as Arc<dyn Projection>];

    // Nobody runs it: the rebuild runs here, reporting progress.
    let pages = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let runner = {
        let (pages, done) = (Arc::clone(&pages), Arc::clone(&done));
        ProjectionRunner::new(log.clone(), pool.clone(), recorder())
            .with_options(fast_options())
            .with_progress(Arc::new(move |progress| {
                pages.fetch_add(1, Ordering::SeqCst);
                if progress.done {
                    assert_eq!(progress.events, 800);
                    done.store(true, Ordering::SeqCst);
                }
            }))
    };
    let report = runner.rebuild_now().await.unwrap();
    assert_eq!(report.failed, None);
    assert!(report.requested_elsewhere.is_empty());
    assert!(done.load(Ordering::SeqCst));
    assert!(
        pages.load(Ordering::SeqCst) >= 3,
        "progress came once per page"
    );
    assert_eq!(live_checkpoint(&pool, "recorder").await.position, head);
    assert_exactly_the_log(&pool, &log, "recorded").await;

    // Another process runs it: the request reaches that process, which rebuilds.
    let (stop, handle) = spawn_runner(
        ProjectionRunner::new(log.clone(), pool.clone(), recorder()).with_options(fast_options()),
    );
    let started_before = live_checkpoint(&pool, "recorder").await.started_at;
    eventually(
        async || owned(&pool, "recorder").await,
        Duration::from_secs(10),
    )
    .await;
    let report = ProjectionRunner::new(log.clone(), pool.clone(), recorder())
        .with_options(fast_options())
        .rebuild_now()
        .await
        .unwrap();
    assert_eq!(report.requested_elsewhere, vec!["recorder".to_owned()]);
    eventually(
        async || {
            let checkpoint = live_checkpoint(&pool, "recorder").await;
            if checkpoint.rebuild_requested_at.is_none() && checkpoint.started_at > started_before {
                Ok(())
            } else {
                Err("the owning process did not rebuild")
            }
        },
        Duration::from_secs(10),
    )
    .await;
    assert_exactly_the_log(&pool, &log, "recorded").await;
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn status_shows_lag_and_waiting_for_a_position_nobody_projects_times_out(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    create_table(&pool, "recorded").await;
    append_events(&log, 1, 5, 50).await;
    let head = head_after(&log, 50).await;
    let projections = vec![Arc::new(Recorder::new("recorder", "recorded")) as Arc<dyn Projection>];

    let before = projections::status(&log, &pool, &projections)
        .await
        .unwrap();
    assert_eq!(before[0].live, None);
    assert!(before[0].lag >= 50, "lag {}", before[0].lag);
    let err = wait_for(&pool, &["recorder"], head, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(
        matches!(err, projections::WaitError::Timeout { ref lagging, .. } if lagging == &["recorder"])
    );

    let (stop, handle) = spawn_runner(
        ProjectionRunner::new(log.clone(), pool.clone(), projections.clone())
            .with_options(fast_options()),
    );
    wait_for(&pool, &["recorder"], head, Duration::from_secs(30))
        .await
        .unwrap();
    let after = projections::status(&log, &pool, &projections)
        .await
        .unwrap();
    assert_eq!(after[0].lag, 0);
    assert_eq!(after[0].live.as_ref().unwrap().position, head);
    assert_eq!(after[0].failure, None);
    stop.send(()).unwrap();
    handle.await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rebuild_that_fails_on_an_event_leaves_the_live_tables_serving(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    create_table(&pool, "recorded").await;
    append_events(&log, 1, 10, 1_200).await;
    let head = head_after(&log, 1_200).await;
    let all = everything(&log).await;

    let (stop, handle) = spawn_runner(runner(
        &log,
        &pool,
        vec![Recorder::new("recorder", "recorded")],
    ));
    wait_for(&pool, &["recorder"], head, Duration::from_secs(30))
        .await
        .unwrap();
    stop.send(()).unwrap();
    handle.await.unwrap();

    // Version 2 cannot apply event 700: its rebuild stops there, before any swap.
    let mut v2 = Recorder::new("recorder", "recorded");
    v2.version = 2;
    v2.fail_on = Some(all[700].event_id);
    let (stop, handle) = spawn_runner(runner(&log, &pool, vec![v2]));
    eventually(
        async || {
            if handle.is_finished() {
                Ok(())
            } else {
                Err("the failed rebuild's task did not end")
            }
        },
        Duration::from_secs(30),
    )
    .await;
    drop(stop);
    let exits = handle.await.unwrap();
    assert!(
        matches!(&exits[..], [(_, Exit::Failed(f))] if f.event_id == all[700].event_id),
        "{exits:?}"
    );

    // Readers still see the whole version-1 model; the failure is on record.
    let live = live_checkpoint(&pool, "recorder").await;
    assert_eq!((live.version, live.position), (1, head));
    assert_exactly_the_log(&pool, &log, "recorded").await;
    let rows_by_v1: i64 = count(&pool, "select count(*) from recorded where built_by = 1").await;
    assert_eq!(rows_by_v1, 1_200);
    let projections = vec![Arc::new(Recorder::new("recorder", "recorded")) as Arc<dyn Projection>];
    let status = projections::status(&log, &pool, &projections)
        .await
        .unwrap();
    let failure = status[0].failure.as_ref().unwrap();
    assert_eq!(failure.position, all[700].position);
    let shadow = status[0].rebuilding.as_ref().unwrap();
    assert_eq!(shadow.position, all[699].position);
}

/// The real log, watched and steered by the test: with a `gate`, `head()` waits until the test
/// opens it, so the shared reader fixes where it starts only when the test says so; and
/// `read_up_to` is the position of the last event its subscriptions gave out (the shared
/// reader's: the projections catch up with `read_all`).
#[derive(Clone)]
struct Observed {
    inner: PostgresLog,
    gate: Option<Arc<tokio::sync::Semaphore>>,
    read_up_to: Arc<std::sync::Mutex<Option<Position>>>,
}

impl Observed {
    fn new(inner: PostgresLog) -> Self {
        Observed {
            inner,
            gate: None,
            read_up_to: Arc::default(),
        }
    }
}

impl EventLog for Observed {
    async fn append(
        &self,
        request: AppendRequest,
    ) -> Result<eventlog::AppendOutcome, eventlog::Error> {
        self.inner.append(request).await
    }

    async fn applied(&self, key: &str) -> Result<Option<eventlog::Receipt>, eventlog::Error> {
        self.inner.applied(key).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        direction: eventlog::Direction,
        limit: usize,
    ) -> Result<Vec<eventlog::RecordedEvent>, eventlog::Error> {
        self.inner.read_stream(stream, from, direction, limit).await
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, eventlog::Error> {
        self.inner.stream_version(stream).await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<eventlog::Page, eventlog::Error> {
        self.inner.read_all(after, limit).await
    }

    async fn head(&self) -> Result<Position, eventlog::Error> {
        if let Some(gate) = &self.gate {
            drop(gate.acquire().await);
        }
        self.inner.head().await
    }

    async fn count_after(&self, after: Position, cap: u64) -> Result<u64, eventlog::Error> {
        self.inner.count_after(after, cap).await
    }

    fn subscribe_all(
        &self,
        after: Position,
    ) -> futures::stream::BoxStream<'static, Result<eventlog::RecordedEvent, eventlog::Error>> {
        use futures::StreamExt;
        let read_up_to = Arc::clone(&self.read_up_to);
        self.inner
            .subscribe_all(after)
            .inspect(move |item| {
                if let Ok(event) = item {
                    *read_up_to.lock().unwrap() = Some(event.position);
                }
            })
            .boxed()
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_projection_that_catches_up_before_the_shared_reader_starts_misses_nothing(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    create_table(&pool, "quick").await;
    append_events(&log, 1, 1, 3).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let late = Observed {
        gate: Some(Arc::clone(&gate)),
        ..Observed::new(log.clone())
    };
    let projection: Arc<dyn Projection> = Arc::new(Recorder::new("quick", "quick"));
    let runner =
        ProjectionRunner::new(late, pool.clone(), vec![projection]).with_options(fast_options());
    let (stop, handle) = spawn_runner(runner);

    // The projection takes its lock. Then, were it not waiting for the reader, it would catch
    // up with the first three events: the pause gives it the time to (not a wait for
    // something to happen; what must not happen shows only later, as a lost event). Then
    // three more come before the reader starts (at the head, after them) and three after.
    eventually(
        async || owned(&pool, "quick").await,
        Duration::from_secs(10),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    append_events(&log, 2, 1, 3).await;
    head_after(&log, 6).await;
    gate.add_permits(1_000);
    append_events(&log, 3, 1, 3).await;
    let head = head_after(&log, 9).await;
    wait_for(&pool, &["quick"], head, Duration::from_secs(30))
        .await
        .unwrap();
    assert_exactly_the_log(&pool, &log, "quick").await;
    stop.send(()).unwrap();
    handle.await.unwrap();
}
