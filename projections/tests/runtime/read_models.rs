//! The real read models under the runtime: what live projection builds while a generated
//! history is being written equals, row for row, what a rebuild from the log builds.

use std::time::Duration;

use eventlog::postgres::PostgresLog;
use projections::generate::{GenerateOptions, generate};
use projections::{ProjectionRunner, RunnerOptions, wait_for};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

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

/// Upgrading to `messages` version 2: migration 0010 adds `search_terms` empty to the rows a
/// version 1 built. On its next start the runtime rebuilds the table from the log, and every
/// message with words in its text or caption then holds them.
#[sqlx::test(migrations = "../migrations")]
async fn upgrading_messages_to_version_2_fills_the_search_terms_of_older_rows(
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

    // What the tables look like right after migrating from version 1.
    sqlx::raw_sql(
        "update messages set search_terms = '{}';
         update projection_checkpoints set version = 1
          where projection = 'messages' and target = 'live'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let before: i64 = sqlx::query_scalar(termless).fetch_one(&pool).await.unwrap();
    assert_eq!(before, worded);

    let (stop, handle) = crate::spawn_runner(
        ProjectionRunner::new(log.clone(), pool.clone(), models).with_options(fast_options()),
    );
    let version = crate::until_live_version(&pool, "messages", 2).await;
    stop.send(()).unwrap();
    handle.await.unwrap();
    assert_eq!(version, 2, "the rebuild was swapped in");
    let after: i64 = sqlx::query_scalar(termless).fetch_one(&pool).await.unwrap();
    assert_eq!(after, 0, "every message with words has its terms");
    let rows: i64 = sqlx::query_scalar("select count(*) from messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    let checkpoint = crate::live_checkpoint(&pool, "messages").await;
    assert_eq!(checkpoint.position, head);
    assert!(rows >= worded);
}
