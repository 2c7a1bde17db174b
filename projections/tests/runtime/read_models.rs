//! The real read models under the runtime: what live projection builds while a generated
//! history is being written equals, row for row, what a rebuild from the log builds.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use domain::content::ReplyContent;
use domain::ticket::{AgentReplied, Channel, TicketEvent, TicketOpened};
use domain::{AgentId, CustomerId, DomainEvent, MessageId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, ActorKind, AppendRequest, EventLog, ExpectedVersion, Metadata, NewEvent};
use projections::{Projection, ProjectionRunner, RunnerOptions, wait_for};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tools::generate::{GenerateOptions, generate};
use uuid::Uuid;

use crate::{fast_options, head_after, pool};

#[sqlx::test(migrations = "../migrations")]
async fn a_rebuild_from_the_log_builds_exactly_what_live_projection_built(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    live_projection_equals_a_rebuild(options, fast_options()).await;
}

/// The shared live reader keeps one batch only: every projection falls behind it again and
/// again and catches up from the log in between, and still builds exactly what a rebuild does.
#[sqlx::test(migrations = "../migrations")]
async fn projections_that_keep_falling_behind_the_shared_reader_still_build_exactly_the_log(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    live_projection_equals_a_rebuild(
        options,
        RunnerOptions {
            live_feed_batches: 1,
            live_batch: 10,
            ..fast_options()
        },
    )
    .await;
}

async fn live_projection_equals_a_rebuild(options: PgConnectOptions, runner: RunnerOptions) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    let models = projections::models::all();
    let names: Vec<&str> = models.iter().map(|p| p.name()).collect();

    // Live: the projections follow the log while the history is written, in whatever batches
    // the subscription delivers.
    let runner =
        ProjectionRunner::new(log.clone(), pool.clone(), models.clone()).with_options(runner);
    let (stop, handle) = crate::spawn_runner(runner);
    let report = generate(
        &log,
        &GenerateOptions {
            events: 6_000,
            seed: 7,
            writers: 4,
            ..GenerateOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    let head = head_after(&log, usize::try_from(report.events).unwrap()).await;
    wait_for(&pool, &names, head, Duration::from_secs(60))
        .await
        .unwrap();
    stop.send(()).unwrap();
    handle.await.unwrap();

    // Keep what live projection built, then rebuild everything from the log and swap it in.
    let tables: Vec<&str> = models
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    sqlx::raw_sql("create schema snapshot")
        .execute(&pool)
        .await
        .unwrap();
    for table in &tables {
        let rows: i64 = sqlx::query_scalar(&format!("select count(*) from public.{table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(rows > 0, "live projection left {table} empty");
        sqlx::raw_sql(&format!(
            "create table snapshot.{table} as table public.{table}"
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
    let report = ProjectionRunner::new(log.clone(), pool.clone(), models.clone())
        .rebuild_now()
        .await
        .unwrap();
    assert_eq!(report.failed, None);
    for projection in &models {
        let checkpoint = crate::live_checkpoint(&pool, projection.name()).await;
        assert_eq!(checkpoint.position, head, "{}", projection.name());
    }

    for table in &tables {
        let differing: i64 = sqlx::query_scalar(&format!(
            "select count(*) from (
                 (table public.{table} except all table snapshot.{table})
                 union all
                 (table snapshot.{table} except all table public.{table})
             ) as differing"
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            differing, 0,
            "{table}: the rebuild differs from live projection"
        );
    }
}

/// Upgrading `messages` from an older version: migration 0010 adds `search_terms` empty to the
/// rows a version 1 built, migration 0015 adds `media` (and albums, forward dates) empty to
/// the rows a version 2 built. On its next start the runtime rebuilds the table from the log,
/// and every message with words in its text or caption then holds them, every customer
/// message with a file its media.
#[sqlx::test(migrations = "../migrations")]
async fn upgrading_messages_fills_the_search_terms_edit_histories_and_media_of_older_rows(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    let models = projections::models::all();
    let report = generate(
        &log,
        &GenerateOptions {
            events: 1_500,
            seed: 11,
            writers: 2,
            ..GenerateOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    let head = head_after(&log, usize::try_from(report.events).unwrap()).await;
    let (stop, handle) = crate::spawn_runner(
        ProjectionRunner::new(log.clone(), pool.clone(), models.clone())
            .with_options(fast_options()),
    );
    wait_for(&pool, &["messages"], head, Duration::from_secs(60))
        .await
        .unwrap();
    stop.send(()).unwrap();
    handle.await.unwrap();
    let with_words = "select count(*) from messages \
                      where coalesce(text, '') || coalesce(caption, '') ~ '[[:alnum:]]'";
    let worded: i64 = sqlx::query_scalar(with_words)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        worded > 100,
        "the history has messages with words: {worded}"
    );
    let termless = "select count(*) from messages where search_terms = '{}' \
                    and coalesce(text, '') || coalesce(caption, '') ~ '[[:alnum:]]'";

    let edited = "select count(*) from messages where edited_at is not null";
    let edited: i64 = sqlx::query_scalar(edited).fetch_one(&pool).await.unwrap();
    assert!(edited > 0, "the history has edited messages");
    let historyless = "select count(*) from messages \
                       where edited_at is not null and edits = '[]'";
    let mediumless = "select count(*) from messages \
                      where direction = 'in' and file_unique_id is not null and media is null";
    let with_files: i64 = sqlx::query_scalar(
        "select count(*) from messages where direction = 'in' and file_unique_id is not null",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(with_files > 10, "the history has media: {with_files}");
    assert_eq!(
        sqlx::query_scalar::<_, i64>(mediumless)
            .fetch_one(&pool)
            .await
            .unwrap(),
        0
    );

    // What the tables look like right after migrating from version 1 (no search terms) or 2
    // (no versions before an edit, no media details).
    sqlx::raw_sql(
        "update messages set search_terms = '{}', edits = '[]', media = null;
         update projection_checkpoints set version = 1
          where projection = 'messages' and target = 'live'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let before: i64 = sqlx::query_scalar(termless).fetch_one(&pool).await.unwrap();
    assert_eq!(before, worded);
    let before: i64 = sqlx::query_scalar(historyless)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(before, edited);
    let current = projections::models::all()
        .iter()
        .find(|p| p.name() == "messages")
        .unwrap()
        .version();

    let (stop, handle) = crate::spawn_runner(
        ProjectionRunner::new(log.clone(), pool.clone(), models).with_options(fast_options()),
    );
    let version = crate::until_live_version(&pool, "messages", current).await;
    stop.send(()).unwrap();
    handle.await.unwrap();
    assert_eq!(version, current, "the rebuild was swapped in");
    let after: i64 = sqlx::query_scalar(termless).fetch_one(&pool).await.unwrap();
    assert_eq!(after, 0, "every message with words has its terms");
    let after: i64 = sqlx::query_scalar(historyless)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(after, 0, "every edited message has its earlier versions");
    let after: i64 = sqlx::query_scalar(mediumless)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(after, 0, "every customer message with a file has its media");
    let rows: i64 = sqlx::query_scalar("select count(*) from messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    let checkpoint = crate::live_checkpoint(&pool, "messages").await;
    assert_eq!(checkpoint.position, head);
    assert!(rows >= worded);
}

/// `tickets` keeps the rows it wrote between batches, and a batch that rolls back must leave
/// none of its rows kept. Here the table refuses a ticket's second reply: the batch holding
/// both replies rolls back, the replies are applied again one by one from the table's row, the
/// first lands and the projection stops on the second. Had the rolled-back rows stayed kept,
/// both replies would count as applied and neither would be in the table. (Two things see to
/// it: the applier keeps only what a committed batch left, and `tickets` puts rows back only
/// once they are written; the test fails when both are undone.)
#[sqlx::test(migrations = "../migrations")]
async fn a_batch_that_rolls_back_leaves_no_kept_rows_so_its_events_apply_again(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    sqlx::query("alter table tickets add constraint one_reply_at_most check (agent_messages < 2)")
        .execute(&pool)
        .await
        .unwrap();
    let runner = ProjectionRunner::new(
        log.clone(),
        pool.clone(),
        vec![Arc::new(projections::tickets::Tickets) as Arc<dyn Projection>],
    )
    .with_options(fast_options());
    let (stop, handle) = crate::spawn_runner(runner);

    let ticket = TicketId(Uuid::now_v7());
    let stream = ticket.stream().name();
    let at = Utc::now();
    let opened = TicketEvent::Opened(TicketOpened {
        ticket_id: ticket,
        customer: CustomerId(7),
        category: None,
        channel: Channel::Telegram,
        at,
    });
    let first = log
        .append(AppendRequest::to_stream(
            stream.clone(),
            ExpectedVersion::NoStream,
            vec![new_event(&opened)],
        ))
        .await
        .unwrap()
        .into_receipt();
    let head = first.events[0].position;
    wait_for(&pool, &["tickets"], head, Duration::from_secs(10))
        .await
        .unwrap();

    // Both replies in one append, so they reach the projection in one batch.
    let reply = |n: i64| {
        TicketEvent::AgentReplied(AgentReplied {
            reply_to: None,
            message_id: MessageId(Uuid::now_v7()),
            agent: AgentId(Uuid::now_v7()),
            template: None,
            at: at + TimeDelta::seconds(n),
            content: ReplyContent::text(format!("reply {n}")),
        })
    };
    let replies = log
        .append(AppendRequest::to_stream(
            stream,
            ExpectedVersion::Exact(0),
            vec![new_event(&reply(1)), new_event(&reply(2))],
        ))
        .await
        .unwrap()
        .into_receipt();
    let second = &replies.events[1];
    let err = wait_for(
        &pool,
        &["tickets"],
        second.position,
        Duration::from_secs(10),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, projections::WaitError::Failed { .. }),
        "{err}"
    );
    let checkpoint = crate::live_checkpoint(&pool, "tickets").await;
    assert_eq!(checkpoint.position, replies.events[0].position);
    assert_eq!(checkpoint.failure.unwrap().event_id, second.event_id);
    let (replies_counted, version): (i32, i64) =
        sqlx::query_as("select agent_messages, version from tickets where id = $1")
            .bind(ticket.as_uuid())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((replies_counted, version), (1, 1));

    // Its only projection stopped, so the runner may have ended already.
    let _ = stop.send(());
    let exits = handle.await.unwrap();
    assert!(matches!(&exits[0], (name, projections::Exit::Failed(_)) if name == "tickets"));
}

fn new_event(event: &TicketEvent) -> NewEvent {
    NewEvent::new(
        event.event_type(),
        serde_json::to_value(event).unwrap(),
        Metadata::new(Actor::new(ActorKind::Agent, "test")),
    )
    .with_schema_version(event.schema_version())
}

/// `replay --verify`'s comparison while live projection follows a history being written: each
/// verification compares both copies at one position of the log, so it finds no difference
/// however the writes fall around it, and it leaves the live copy's checkpoints alone.
#[sqlx::test(migrations = "../migrations")]
async fn a_verification_while_the_history_is_written_finds_the_live_copies_equal_to_the_log(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options).await;
    let log = PostgresLog::new(pool.clone());
    let models = projections::models::all();
    let names: Vec<&str> = models.iter().map(|p| p.name()).collect();
    let (stop, handle) = crate::spawn_runner(
        ProjectionRunner::new(log.clone(), pool.clone(), models.clone())
            .with_options(fast_options()),
    );
    let writing = {
        let log = log.clone();
        tokio::spawn(async move {
            generate(
                &log,
                &GenerateOptions {
                    events: 4_000,
                    seed: 5,
                    writers: 2,
                    ..GenerateOptions::default()
                },
                |_| {},
            )
            .await
            .unwrap()
        })
    };
    let verifier = ProjectionRunner::new(log.clone(), pool.clone(), models.clone())
        .with_options(fast_options());
    let mut verified_while_writing = 0;
    while !writing.is_finished() {
        let report = verifier.verify().await.unwrap();
        assert!(report.clean(), "{report:#?}");
        verified_while_writing += 1;
    }
    assert!(verified_while_writing > 0);
    let report = writing.await.unwrap();
    let head = head_after(&log, usize::try_from(report.events).unwrap()).await;
    wait_for(&pool, &names, head, Duration::from_secs(60))
        .await
        .unwrap();
    let report = verifier.verify().await.unwrap();
    assert!(report.clean(), "{report:#?}");
    assert_eq!(report.projections.len(), models.len());
    for verdict in &report.projections {
        assert_eq!(verdict.position, head, "{}", verdict.projection);
        assert!(verdict.live_rows > 0, "{}", verdict.projection);
    }

    // A row changed behind the projection's back is named with its key and column.
    let ticket: Uuid = sqlx::query_scalar("select id from tickets limit 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("update tickets set priority = 'urgent', tags = '{tampered}' where id = $1")
        .bind(ticket)
        .execute(&pool)
        .await
        .unwrap();
    let report = verifier.verify().await.unwrap();
    assert!(!report.clean());
    let tickets = report
        .projections
        .iter()
        .find(|v| v.projection == "tickets")
        .unwrap();
    assert_eq!(tickets.differing_rows, 1);
    let columns: Vec<&str> = tickets
        .differences
        .iter()
        .map(|d| d.column.as_deref().unwrap())
        .collect();
    assert!(columns.contains(&"tags"), "{columns:?}");
    assert!(
        tickets
            .differences
            .iter()
            .all(|d| d.table == "tickets" && d.key == serde_json::json!({ "id": ticket })),
        "{tickets:#?}"
    );
    stop.send(()).unwrap();
    handle.await.unwrap();
}
