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
