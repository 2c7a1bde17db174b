//! `ledgerdesk replay`: rebuilds read models from the log, with a progress bar; with
//! `--verify`, rebuilds them into scratch tables and compares them with the live ones instead.
//!
//! The rebuild goes into shadow tables while the live ones keep serving, and is swapped in once
//! caught up (see the `projections` crate). A projection that a running `ledgerdesk serve` owns
//! is rebuilt by that process instead: this command asks it to and follows its progress.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use domain::AuditStream;
use domain::audit::{AuditEvent, ReplayRun};
use eventlog::postgres::PostgresLog;
use eventlog::{EventLog, Position};
use indicatif::{ProgressBar, ProgressStyle};
use projections::{Projection, ProjectionRunner, Target};
use secrecy::ExposeSecret;

use crate::cli::DatabaseArgs;

/// Rebuilds the named projections (all when `names` is empty).
pub async fn replay(database: &DatabaseArgs, names: &[String]) -> anyhow::Result<()> {
    let selected = select(names)?;
    // Migrated as the owner; rebuilt as the serving role, which owns the read models (a
    // rebuild drops the live tables and moves the shadow ones in).
    let owner =
        crate::startup::prepare_database(&database.database_url(), &database.serving_role(), 2)
            .await?;
    owner.close().await;
    let url = database.serving_url()?;
    let pool = app::database::connect_existing(url.expose_secret(), database.db_max_connections)
        .await
        .context("cannot connect to the database as the serving role")?;
    let log = app::personal::log(pool.clone());
    let total = log
        .count_after(Position::START, u64::MAX)
        .await
        .context("cannot count the events of the log")?;
    let names: Vec<&str> = selected.iter().map(|p| p.name()).collect();

    let bar = progress_bar(total);
    bar.set_message(names.join(", "));
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let report = {
        let bar = bar.clone();
        ProjectionRunner::new(log.clone(), pool.clone(), selected.clone())
            .with_progress(Arc::new(move |progress| {
                bar.set_position(progress.events.min(total));
                if progress.done {
                    bar.set_position(total);
                }
            }))
            .rebuild_now()
            .await
            .context("the rebuild failed")?
    };
    let outcome = if report.failed.is_some() {
        "failed"
    } else {
        "rebuilt"
    };
    record_run(&log, &names, false, outcome, 0, started_at).await?;
    if let Some(failure) = report.failed {
        bar.abandon_with_message("stopped on an event");
        bail!(
            "a projection stopped on event {} ({}) at position {}: {}",
            failure.event_id,
            failure.event_type,
            failure.position,
            failure.error
        );
    }
    if !report.requested_elsewhere.is_empty() {
        bar.set_message(format!(
            "{} (rebuilt by the running server)",
            report.requested_elsewhere.join(", ")
        ));
        follow_elsewhere(&pool, &report.requested_elsewhere, &bar).await?;
    }
    bar.finish_with_message(format!("{} rebuilt", names.join(", ")));
    let elapsed = started.elapsed();
    tracing::info!(
        projections = ?names,
        events = total,
        seconds = elapsed.as_secs_f64(),
        events_per_second = total as f64 / elapsed.as_secs_f64().max(1e-9),
        "replay finished"
    );
    Ok(())
}

/// `replay --verify`: rebuilds the named projections (all when `names` is empty) into scratch
/// tables and compares them, row by row, with the live tables (see `projections`' `verify`).
/// Prints each difference on standard output; fails when any row differs or a projection could
/// not be compared.
pub async fn verify(database: &DatabaseArgs, names: &[String]) -> anyhow::Result<()> {
    let selected = select(names)?;
    let owner =
        crate::startup::prepare_database(&database.database_url(), &database.serving_role(), 2)
            .await?;
    owner.close().await;
    let url = database.serving_url()?;
    let pool = app::database::connect_existing(url.expose_secret(), database.db_max_connections)
        .await
        .context("cannot connect to the database as the serving role")?;
    let log = app::personal::log(pool.clone());
    let total = log
        .count_after(Position::START, u64::MAX)
        .await
        .context("cannot count the events of the log")?;
    let names: Vec<&str> = selected.iter().map(|p| p.name()).collect();
    let bar = progress_bar(total);
    bar.set_message(format!("verifying {}", names.join(", ")));
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let report = {
        let bar = bar.clone();
        ProjectionRunner::new(log.clone(), pool.clone(), selected)
            .with_progress(Arc::new(move |progress| {
                bar.set_position(progress.events.min(total));
            }))
            .verify()
            .await
            .context("the verification failed")?
    };
    bar.finish_with_message(format!("{} rebuilt and compared", names.join(", ")));
    let differing_rows: u64 = report.projections.iter().map(|v| v.differing_rows).sum();
    let outcome = if report.clean() { "equal" } else { "different" };
    record_run(&log, &names, true, outcome, differing_rows, started_at).await?;
    pool.close().await;
    let mut out = std::io::stdout().lock();
    let mut differing = 0_u64;
    let mut problems = 0_usize;
    for verdict in &report.projections {
        if let Some(stopped) = &verdict.live_stopped_on {
            writeln!(
                out,
                "{}: the live copy stopped on {stopped}; compared up to just before it",
                verdict.projection
            )?;
        }
        if let Some(problem) = &verdict.problem {
            problems += 1;
            writeln!(out, "{}: not compared: {problem}", verdict.projection)?;
            continue;
        }
        differing += verdict.differing_rows;
        for difference in &verdict.differences {
            match &difference.column {
                Some(column) => writeln!(
                    out,
                    "{}: table {} row {} column {}: live {} rebuilt {}",
                    verdict.projection,
                    difference.table,
                    difference.key,
                    column,
                    difference.live,
                    difference.rebuilt
                )?,
                None if difference.rebuilt.is_null() => writeln!(
                    out,
                    "{}: table {} row {}: only in the live table: {}",
                    verdict.projection, difference.table, difference.key, difference.live
                )?,
                None => writeln!(
                    out,
                    "{}: table {} row {}: missing from the live table, rebuilt as {}",
                    verdict.projection, difference.table, difference.key, difference.rebuilt
                )?,
            }
        }
        let shown = verdict
            .differences
            .iter()
            .map(|d| (&d.table, d.key.to_string()))
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64;
        if verdict.differing_rows > shown {
            writeln!(
                out,
                "{}: {} more differing rows not shown (at most {} per table)",
                verdict.projection,
                verdict.differing_rows - shown,
                projections::runner::MAX_REPORTED
            )?;
        }
        writeln!(
            out,
            "{}: {} live rows at position {}, {} differ",
            verdict.projection, verdict.live_rows, verdict.position, verdict.differing_rows
        )?;
    }
    tracing::info!(
        projections = ?names,
        events = total,
        seconds = started.elapsed().as_secs_f64(),
        differing_rows = differing,
        "verification finished"
    );
    if differing > 0 || problems > 0 {
        bail!(
            "the read models differ from a rebuild from the log: {differing} rows differ, \
             {problems} read models could not be compared"
        );
    }
    writeln!(out, "every read model equals a rebuild from the log")?;
    Ok(())
}

/// Records the run in the audit trail (`audit-operations`).
async fn record_run(
    log: &PostgresLog,
    names: &[&str],
    verify: bool,
    outcome: &str,
    differing_rows: u64,
    started_at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let event = AuditEvent::ReplayRun(ReplayRun {
        projections: names.iter().map(|name| (*name).to_owned()).collect(),
        verify,
        outcome: outcome.to_owned(),
        differing_rows,
        started_at,
        at: chrono::Utc::now(),
    });
    app::audit_trail::record(
        log,
        AuditStream::Operations,
        &event,
        eventlog::Actor::system("cli"),
    )
    .await
    .context("cannot record the run in the audit trail")?;
    Ok(())
}

fn select(names: &[String]) -> anyhow::Result<Vec<Arc<dyn Projection>>> {
    let all = projections::models::all();
    if names.is_empty() {
        return Ok(all);
    }
    let known: Vec<&str> = all.iter().map(|p| p.name()).collect();
    let mut selected = Vec::new();
    for name in names {
        match all.iter().find(|p| p.name() == name) {
            Some(projection) => selected.push(Arc::clone(projection)),
            None => bail!(
                "no projection is called `{name}`; known projections: {}",
                known.join(", ")
            ),
        }
    }
    Ok(selected)
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{msg}\n[{elapsed_precise}] {wide_bar} {pos}/{len} events  {per_sec}  ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Follows rebuilds that a running server does, until each has swapped in.
async fn follow_elsewhere(
    pool: &sqlx::PgPool,
    names: &[String],
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    loop {
        let checkpoints = projections::checkpoint::list(pool).await?;
        let pending: Vec<_> = names
            .iter()
            .filter(|name| {
                checkpoints.iter().any(|c| {
                    &c.projection == *name
                        && c.target == Target::Live
                        && c.rebuild_requested_at.is_some()
                })
            })
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let slowest = checkpoints
            .iter()
            .filter(|c| c.target == Target::Shadow && names.contains(&c.projection))
            .map(|c| c.events_seen)
            .min();
        if let Some(events) = slowest {
            bar.set_position(events);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
