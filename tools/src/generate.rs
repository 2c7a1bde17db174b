//! A generator of a realistic, valid history for load tests, rebuild benchmarks and tests that
//! need "thousands of events across all aggregates".
//!
//! It simulates a support desk over a period (90 days by default) and writes what the real
//! command service could have written: every event comes from a domain decider (`decide` on
//! the current state, then `evolve`) or from the two-stream flow that routes customer
//! messages, with exact per-stream versions, the `customer.ticket_*` notes alongside ticket
//! events, an actor and a correlation id on every event. Time and ids are simulated: a clock
//! that advances through the period and UUID v7 ids built from it and a seeded PRNG, so a seed
//! always gives the same streams with the same events.
//!
//! The story: the first day sets up the settings (reopen window, categories, quick-reply
//! templates, greeting) and a team of 10–50 agents (roles, categories, passwords, a few
//! deactivated). Then customers write from Telegram and tickets live their lives: messages of
//! every kind (some edited, forwarded or replying), agent replies (some from templates, some
//! with media) each followed by a delivery outcome, notes, assignments, statuses, priorities,
//! categories, tags, resolves, reopens, closes and ratings; customers change profiles, pick
//! categories, block and unblock the bot, get banned (and keep writing) and unbanned, opt out
//! of broadcasts and back in. Last come a few broadcasts to the customers registered so far.
//!
//! Speed: nothing goes through the command service per command. Each writer decides in memory
//! and appends whole decisions in batches of up to 1,000 events; `writers` of them run
//! concurrently on disjoint customers, so no append ever conflicts. They share one task:
//! deciding is cheap next to an append, and while one writer waits for the database the others
//! decide (about 20k events/s on a loaded 2-core machine, 1M events in under a minute).
//!
//! The log must be empty: streams are created expecting that they do not exist yet. Nothing
//! here prints; the `progress` callback reports events appended so far.

mod broadcasts;
mod error;
mod outbox;
mod rng;
mod setup;
mod text;
mod tickets;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use domain::StreamId;
use eventlog::{AppendRequest, EventLog};

pub use error::GenerateError;
use outbox::Outbox;
use rng::Rng;
use tickets::{Recipient, TicketWriter};

/// 2026-11-01T00:00:00Z, the default "now" of the simulation.
const DEFAULT_END_SECS: i64 = 1_793_491_200;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// At least this many events are appended (a little more: the last lifecycles finish).
    pub events: u64,
    /// The same seed (with the same `writers`) gives the same streams and events.
    pub seed: u64,
    /// Concurrent writers, each with its own customers (at least 1).
    pub writers: usize,
    /// The simulated "now": the history ends here.
    pub end: DateTime<Utc>,
    /// How many days the history spans, up to `end`.
    pub days: u32,
    /// Most events in one append (1 to 1,000).
    pub batch_events: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            events: 10_000,
            seed: 1,
            writers: 8,
            end: DateTime::from_timestamp(DEFAULT_END_SECS, 0).unwrap_or_default(),
            days: 90,
            batch_events: eventlog::limits::EVENTS_PER_APPEND,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateReport {
    /// Events appended.
    pub events: u64,
    /// Append requests made.
    pub appends: u64,
    /// Events appended per event type.
    pub by_type: BTreeMap<&'static str, u64>,
    /// Tickets opened.
    pub tickets: u64,
    /// Customers registered.
    pub customers: u64,
    /// Agents invited.
    pub agents: u64,
    /// Broadcasts drafted.
    pub broadcasts: u64,
    /// The first simulated moment.
    pub start: DateTime<Utc>,
    /// The last simulated moment ("now").
    pub end: DateTime<Utc>,
    /// Wall-clock time the run took.
    pub elapsed: Duration,
}

impl GenerateReport {
    /// Events appended per wall-clock second.
    #[must_use]
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Appends a generated history of at least `options.events` events to an empty `log`.
///
/// `progress` is called after every append with the number of events appended so far.
///
/// # Errors
/// [`GenerateError::NotEmpty`] when the log already has a history, [`GenerateError::Log`] when
/// an append fails, and [`GenerateError::Rejected`] should the generator ever produce a
/// command the domain refuses.
pub async fn generate<L: EventLog>(
    log: &L,
    options: &GenerateOptions,
    progress: impl Fn(u64) + Send + Sync,
) -> Result<GenerateReport, GenerateError> {
    let started = Instant::now();
    if log
        .stream_version(&StreamId::Settings.name())
        .await?
        .is_some()
    {
        return Err(GenerateError::NotEmpty);
    }
    let seed = options.seed;
    let writers = options.writers.max(1);
    let end = options.end;
    let start = end - TimeDelta::days(i64::from(options.days.max(1)));
    let sink = Sink {
        log,
        appended: AtomicU64::new(0),
        appends: AtomicU64::new(0),
        progress: &progress,
    };
    let mut counts = BTreeMap::new();

    // The first day: settings and the team.
    let mut rng = Rng::lane(seed, 0);
    let mut outbox = Outbox::new(Rng::lane(seed, 1), options.batch_events);
    let team = usize::try_from((10 + options.events / 25_000 + rng.below(5)).min(50)).unwrap_or(50);
    let world = setup::setup(&mut rng, &mut outbox, start, end, team)?;
    sink.flush(outbox.drain()).await?;
    add_counts(&mut counts, &outbox);

    // Customers and tickets, writers side by side; room is kept for the broadcasts.
    let broadcast_count = 4 + usize::try_from(options.events / 250_000).unwrap_or(0);
    let reserve = broadcast_count as u64 * (8 + options.events / 7_000);
    let remaining = options
        .events
        .saturating_sub(sink.appended.load(Ordering::Relaxed) + reserve);
    let share = remaining.div_ceil(writers as u64);
    let mut ticket_writers: Vec<TicketWriter<'_>> = (0..writers as u64)
        .map(|lane| TicketWriter::new(&world, seed, lane, share, options.batch_events))
        .collect();
    futures::future::try_join_all(ticket_writers.iter_mut().map(|writer| sink.run(writer))).await?;

    // Broadcasts to the customers registered so far.
    let recipients: Vec<Recipient> = ticket_writers
        .iter()
        .flat_map(TicketWriter::recipients)
        .collect();
    let mut rng = Rng::lane(seed, 2);
    let mut outbox = Outbox::new(Rng::lane(seed, 3), options.batch_events);
    let broadcasts =
        broadcasts::broadcasts(&world, &mut rng, &mut outbox, &recipients, broadcast_count)?;
    sink.flush(outbox.drain()).await?;
    add_counts(&mut counts, &outbox);

    // Whatever is still missing: one more writer with customers of its own.
    let appended = sink.appended.load(Ordering::Relaxed);
    if appended < options.events {
        let lane = writers as u64;
        let mut writer = TicketWriter::new(
            &world,
            seed,
            lane,
            options.events - appended,
            options.batch_events,
        );
        sink.run(&mut writer).await?;
        ticket_writers.push(writer);
    }

    for writer in &ticket_writers {
        add_counts(&mut counts, &writer.outbox);
    }
    Ok(GenerateReport {
        events: sink.appended.load(Ordering::Relaxed),
        appends: sink.appends.load(Ordering::Relaxed),
        tickets: counts.get("ticket.opened").copied().unwrap_or(0),
        customers: counts.get("customer.registered").copied().unwrap_or(0),
        agents: world.agents,
        broadcasts,
        by_type: counts,
        start,
        end,
        elapsed: started.elapsed(),
    })
}

fn add_counts(counts: &mut BTreeMap<&'static str, u64>, outbox: &Outbox) {
    for (event_type, count) in &outbox.counts {
        *counts.entry(*event_type).or_default() += count;
    }
}

/// Appends requests and reports progress.
struct Sink<'a, L, P> {
    log: &'a L,
    appended: AtomicU64,
    appends: AtomicU64,
    progress: &'a P,
}

impl<L: EventLog, P: Fn(u64) + Sync> Sink<'_, L, P> {
    async fn append(&self, request: AppendRequest) -> Result<(), GenerateError> {
        let events = request.event_count() as u64;
        // No idempotency key: the outcome is always a fresh append.
        let _receipt = self.log.append(request).await?;
        self.appends.fetch_add(1, Ordering::Relaxed);
        let total = self.appended.fetch_add(events, Ordering::Relaxed) + events;
        (self.progress)(total);
        Ok(())
    }

    async fn flush(&self, requests: Vec<AppendRequest>) -> Result<(), GenerateError> {
        for request in requests {
            self.append(request).await?;
        }
        Ok(())
    }

    /// Runs one ticket writer to the end of its share, appending each batch as it fills.
    async fn run(&self, writer: &mut TicketWriter<'_>) -> Result<(), GenerateError> {
        while !writer.done() {
            writer.step()?;
            self.flush(writer.outbox.take_ready()).await?;
        }
        self.flush(writer.outbox.drain()).await
    }
}
