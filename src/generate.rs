//! `ledgerdesk generate`: fills an empty database with a realistic, valid support history, for
//! demos and benchmarks.

use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tools::generate::{GenerateOptions, generate as run};

use crate::cli::{DatabaseArgs, GenerateArgs};

/// Appends at least `args.events` generated events to the (empty) log.
pub async fn generate(database: &DatabaseArgs, args: &GenerateArgs) -> anyhow::Result<()> {
    let pool = crate::startup::prepare_database(
        &database.database_url(),
        &database.serving_role(),
        database.db_max_connections,
    )
    .await?;
    let log = app::personal::log(pool);
    let options = GenerateOptions {
        events: args.events,
        seed: args.seed,
        writers: usize::from(args.writers),
        ..GenerateOptions::default()
    };
    let bar = ProgressBar::new(args.events);
    bar.set_style(
        ProgressStyle::with_template(
            "[{elapsed_precise}] {wide_bar} {pos}/{len} events  {per_sec}  ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let report = {
        let bar = bar.clone();
        run(&log, &options, move |done| bar.set_position(done))
            .await
            .context("generating the history failed")?
    };
    bar.finish();
    tracing::info!(
        events = report.events,
        tickets = report.tickets,
        customers = report.customers,
        agents = report.agents,
        broadcasts = report.broadcasts,
        seconds = started.elapsed().as_secs_f64(),
        events_per_second = report.events_per_second(),
        "history generated"
    );
    Ok(())
}
