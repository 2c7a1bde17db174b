//! Sending broadcasts: each running broadcast goes to the recipients its start froze in the
//! log, within Telegram's limits and after agents' replies, and every outcome is recorded in
//! batches.
//!
//! It runs inside the delivery worker (the one process holding the delivery lock) and shares
//! its [`Sender`]: the same rate limiters (about 30 messages/s for the whole bot, 1/s per chat)
//! and the same 429 pause. Replies keep priority: a broadcast message never takes a bot-wide
//! token while a reply waits for one (see `overall.rs`).
//!
//! # One broadcast
//!
//! The worker looks for running or paused broadcasts in the `broadcasts` read model every
//! half second and runs one job per broadcast. A job reads the broadcast's stream (the state:
//! frozen recipients, outcomes so far, status) and walks the recipients without an outcome in
//! ascending id order:
//!
//! - every 100 recipients it reads their current state in the `customers` read model: one
//!   who opted out, blocked the bot or was banned since the start is recorded as skipped with
//!   that reason, without a message;
//! - each message takes a place in the broadcast's *window* (below), then its turn from the
//!   rate limiters, and goes out in a task of its own: the text (with the broadcast's
//!   formatting), or one media file by file id with the text as caption, with the inline
//!   keyboard (callback buttons carry `bb:` data, and the unsubscribe row `bu:`);
//!   `allow_paid_broadcast` is set when configured;
//! - 429: Telegram throttles the whole bot; every send waits `retry_after` (saved, so a
//!   restart waits too) and the message goes again. 403 "bot was blocked by the user": the
//!   customer is recorded as having blocked the bot (`RecordBotBlocked`) and the recipient as
//!   failed. Network errors and 5xx: tried again with the worker's backoff for as long as a
//!   reply would be (`LEDGERDESK_DELIVERY_RETRY_HOURS`), then failed as retryable. Any other
//!   refusal: failed, with Telegram's description;
//! - outcomes are recorded in `broadcast.outcomes_recorded` events of up to 100 recipients,
//!   written when 100 are ready or a quarter second after the first of them; the batch that
//!   leaves nobody pending completes the broadcast (the decider adds `broadcast.completed`).
//!
//! Pause, resume and cancel may come from any instance: the job follows the broadcast's
//! stream (its version, every quarter second; new events only when it moved), so they take
//! effect within half a second. A pause stops new messages; a cancel stops them for good and
//! drops the retries of messages not yet accepted; messages Telegram already accepted still
//! get their outcome, so the counters match what was sent.
//!
//! # The window, and what a crash can send twice
//!
//! Telegram's acceptance and the outcome event are not one transaction. A job holds at most
//! [`BroadcastOptions::window`] recipients (W, 256 by default) between taking a message's
//! place and the commit of the event that records its outcome: a place is released only
//! once its outcome is in the log. So when the process dies (kill -9, power loss) at most W
//! recipients of each running broadcast have a message out and no outcome; the next run sends
//! to them again, and those whose message had gone out receive it twice. Every other
//! recipient receives it exactly once: a recipient with an outcome is never sent to again. A
//! graceful stop sends nothing twice: the job stops taking places, lets the messages in
//! flight finish, records their outcomes and returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use app::commands::{CommandContext, CommandError};
use chrono::Utc;
use domain::broadcast::{
    Broadcast, BroadcastCommand, BroadcastContent, BroadcastError, BroadcastEvent, BroadcastStatus,
    Outcome, RecipientOutcome,
};
use domain::content::TelegramMessageId;
use domain::customer::{Customer, CustomerCommand};
use domain::settings::{BotText, Settings};
use domain::{BroadcastId, CustomerId, Decider, DomainEvent, StreamId};
use eventlog::{Actor, ActorKind, Direction, EventLog};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::broadcast_message::message;
use super::job::Context;
use super::send::{Attempt, Part};

/// The reason recorded when the customer blocked the bot (Telegram's own words).
const BLOCKED: &str = "Forbidden: bot was blocked by the user";

/// Recipients whose current state is read in one query, just before their messages.
const CHECK_BATCH: usize = 100;

/// Tuning of the broadcast sender.
#[derive(Debug, Clone)]
pub struct BroadcastOptions {
    /// W: the most recipients of one broadcast between taking a message's place and the
    /// commit of their outcome, hence the most that a crash can make receive it twice.
    pub window: usize,
    /// How often running broadcasts are looked for.
    pub discover_every: Duration,
    /// How often a job looks at its broadcast's stream for a pause, resume or cancel.
    pub follow_every: Duration,
    /// The longest an outcome waits to be written with others.
    pub flush_after: Duration,
    /// Send `allow_paid_broadcast` (Telegram then allows up to 1000 messages/s, for a fee).
    pub allow_paid_broadcast: bool,
}

impl Default for BroadcastOptions {
    fn default() -> Self {
        BroadcastOptions {
            window: 256,
            discover_every: Duration::from_millis(500),
            follow_every: Duration::from_millis(250),
            flush_after: Duration::from_millis(250),
            allow_paid_broadcast: false,
        }
    }
}

/// Runs a job for every running broadcast until `stop`, then lets the jobs finish what they
/// sent.
pub(super) async fn run(ctx: Arc<Context>, options: BroadcastOptions, stop: CancellationToken) {
    let pool = ctx.commands.log().pool().clone();
    let mut jobs: JoinSet<Uuid> = JoinSet::new();
    // The broadcast of each job's task.
    let mut running: HashMap<tokio::task::Id, Uuid> = HashMap::new();
    // Jobs that ended: not started again for a while (a broadcast left running that its job
    // cannot finish, such as one started before audiences were recorded, is looked at again
    // only now and then).
    let mut rested: HashMap<Uuid, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(options.discover_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(done) = jobs.join_next_with_id() => {
                let task = match done {
                    Ok((task, _)) => task,
                    Err(error) => {
                        tracing::error!(%error, "a broadcast job failed");
                        error.id()
                    }
                };
                if let Some(id) = running.remove(&task) {
                    rested.insert(id, Instant::now());
                }
            }
            _ = tick.tick() => {
                let active = match projections::broadcasts::queries::active(&pool).await {
                    Ok(active) => active,
                    Err(error) => {
                        tracing::warn!(%error, "cannot look for running broadcasts");
                        continue;
                    }
                };
                rested.retain(|_, ended| ended.elapsed() < Duration::from_secs(60));
                for id in active {
                    if running.values().any(|running| *running == id)
                        || rested.contains_key(&id)
                    {
                        continue;
                    }
                    let task = jobs.spawn(job(
                        Arc::clone(&ctx),
                        options.clone(),
                        BroadcastId(id),
                        stop.clone(),
                    ));
                    running.insert(task.id(), id);
                }
            }
        }
    }
    while jobs.join_next().await.is_some() {}
}

/// A broadcast's state as this job follows it from the log.
struct Follow {
    stream: String,
    state: Broadcast,
    /// The next stream version to read.
    next: u64,
}

impl Follow {
    /// Reads the events of the stream from `self.next` on.
    async fn catch_up(&mut self, ctx: &Context) -> Result<(), eventlog::Error> {
        const PAGE: usize = 1_000;
        loop {
            let events = match ctx
                .commands
                .log()
                .read_stream(&self.stream, self.next, Direction::Forwards, PAGE)
                .await
            {
                Ok(events) => events,
                Err(eventlog::Error::StreamNotFound { .. }) => return Ok(()),
                Err(error) => return Err(error),
            };
            for event in &events {
                match BroadcastEvent::decode(
                    &event.event_type,
                    event.schema_version,
                    &event.payload,
                ) {
                    Ok(decoded) => {
                        let state = std::mem::take(&mut self.state);
                        self.state = state.evolve(&decoded);
                    }
                    Err(_) => tracing::error!(stream = %self.stream,
                        version = event.stream_version, "cannot read a broadcast event; skipped"),
                }
                self.next = event.stream_version + 1;
            }
            if events.len() < PAGE {
                return Ok(());
            }
        }
    }

    fn status(&self) -> Option<BroadcastStatus> {
        self.state.state().map(|state| state.status)
    }
}

/// Follows the stream every `every` and publishes the status; ends when the broadcast is
/// finished or the job no longer needs it.
async fn follow(
    ctx: Arc<Context>,
    mut follow: Follow,
    status: watch::Sender<BroadcastStatus>,
    every: Duration,
    done: CancellationToken,
) {
    loop {
        tokio::select! {
            () = done.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let moved = match ctx.commands.log().stream_version(&follow.stream).await {
            Ok(Some(version)) => version >= follow.next,
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "cannot look at a broadcast's stream");
                false
            }
        };
        if !moved {
            continue;
        }
        if let Err(error) = follow.catch_up(&ctx).await {
            tracing::warn!(%error, "cannot read a broadcast's stream");
            continue;
        }
        if let Some(now) = follow.status() {
            status.send_if_modified(|current| {
                let changed = *current != now;
                *current = now;
                changed
            });
            if now.is_finished() {
                return;
            }
        }
    }
}

/// Sends one broadcast to its recipients without an outcome; returns its id once it is done,
/// paused work included (the job waits while paused), or the worker stops.
async fn job(
    ctx: Arc<Context>,
    options: BroadcastOptions,
    id: BroadcastId,
    stop: CancellationToken,
) -> Uuid {
    let mut followed = Follow {
        stream: id.stream().name(),
        state: Broadcast::default(),
        next: 0,
    };
    let mut pauses = ctx.sender.pauses();
    while let Err(error) = followed.catch_up(&ctx).await {
        tracing::warn!(%error, broadcast.id = %id.0, "cannot read the broadcast; retrying");
        if !ctx.sender.sleep(pauses.next_pause()).await {
            return id.0;
        }
    }
    let Some(state) = followed.state.state() else {
        return id.0;
    };
    if state.status.is_finished() {
        return id.0;
    }
    if !state.frozen {
        tracing::warn!(broadcast.id = %id.0,
            "this broadcast started before audiences were recorded in the log: it is not sent \
             (cancel it and start a copy)");
        return id.0;
    }
    let work: Vec<CustomerId> = state.pending().collect();
    let mut messages = Messages::new(&ctx, id, state.content.clone()).await;
    let (status_tx, mut status) = watch::channel(state.status);
    tracing::info!(broadcast.id = %id.0, pending = work.len(), "sending a broadcast");

    let done = CancellationToken::new();
    let follower = tokio::spawn(follow(
        Arc::clone(&ctx),
        followed,
        status_tx,
        options.follow_every,
        done.clone(),
    ));
    let window = Arc::new(Semaphore::new(options.window.max(1)));
    let (outcomes, recorded) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record(Arc::clone(&ctx), id, recorded, options.flush_after));
    let mut sends = JoinSet::new();
    let pool = ctx.commands.log().pool().clone();

    'dispatch: for chunk in work.chunks(CHECK_BATCH) {
        let current = loop {
            let ids: Vec<i64> = chunk.iter().map(|customer| customer.0).collect();
            match projections::customers::queries::recipients_now(&pool, &ids).await {
                Ok(rows) => {
                    break rows
                        .into_iter()
                        .map(|row| (row.id, row))
                        .collect::<HashMap<i64, _>>();
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the recipients' state; retrying");
                    if !ctx.sender.sleep(pauses.next_pause()).await {
                        break 'dispatch;
                    }
                }
            }
        };
        let mut next = 0;
        while let Some(customer) = chunk.get(next).copied() {
            // Paused: wait; finished (cancelled): stop.
            let now = *status.borrow_and_update();
            match now {
                BroadcastStatus::Running => {}
                BroadcastStatus::Paused => {
                    tokio::select! {
                        changed = status.changed() => if changed.is_err() { break 'dispatch },
                        () = stop.cancelled() => break 'dispatch,
                    }
                    continue;
                }
                _ => break 'dispatch,
            }
            let permit = tokio::select! {
                permit = Arc::clone(&window).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break 'dispatch,
                },
                () = stop.cancelled() => break 'dispatch,
                changed = status.changed() => {
                    if changed.is_err() {
                        break 'dispatch;
                    }
                    continue;
                }
            };
            let recipient = current.get(&customer.0);
            if let Some(reason) = recipient.and_then(|recipient| recipient.excluded) {
                let outcome = RecipientOutcome {
                    customer,
                    outcome: Outcome::Skipped { reason },
                };
                if outcomes.send((outcome, permit)).is_err() {
                    break 'dispatch;
                }
                next += 1;
                continue;
            }
            let turn = tokio::select! {
                turn = ctx.sender.broadcast_turn(customer.0) => turn,
                changed = status.changed() => {
                    if changed.is_err() {
                        break 'dispatch;
                    }
                    continue;
                }
            };
            if ctx.sender.stopping() {
                break 'dispatch;
            }
            let language = recipient.and_then(|recipient| recipient.language_code.as_deref());
            let part = messages.for_language(language);
            sends.spawn(send_one(
                Arc::clone(&ctx),
                part,
                customer,
                turn,
                status.clone(),
                outcomes.clone(),
                permit,
            ));
            next += 1;
            // Reap the sends that ended, so the set stays small.
            while sends.try_join_next().is_some() {}
        }
    }
    while sends.join_next().await.is_some() {}
    drop(outcomes);
    if recorder.await.is_err() {
        tracing::error!(broadcast.id = %id.0, "the broadcast's recorder failed");
    }
    done.cancel();
    let _ = follower.await;
    id.0
}

/// Sends the broadcast to one recipient, trying transient failures again, and hands the
/// outcome (with the recipient's place in the window) to the recorder. No outcome when the
/// worker stops or the broadcast is cancelled before Telegram accepted the message.
async fn send_one(
    ctx: Arc<Context>,
    part: Arc<Part>,
    customer: CustomerId,
    has_turn: bool,
    mut status: watch::Receiver<BroadcastStatus>,
    outcomes: mpsc::UnboundedSender<(RecipientOutcome, OwnedSemaphorePermit)>,
    permit: OwnedSemaphorePermit,
) {
    let chat = customer.0;
    let mut has_turn = has_turn;
    let mut pauses = ctx.sender.pauses();
    let mut attempts = 0u32;
    let started = Instant::now();
    let outcome = loop {
        attempts += 1;
        let reason = match ctx.sender.attempt_broadcast(chat, &part, has_turn).await {
            Attempt::Accepted(id) => {
                break Outcome::Delivered {
                    telegram_message_id: TelegramMessageId(id),
                };
            }
            Attempt::Blocked => {
                record_blocked(&ctx, customer).await;
                break Outcome::Failed {
                    reason: BLOCKED.to_owned(),
                    retryable: false,
                };
            }
            Attempt::Permanent(reason) => {
                break Outcome::Failed {
                    reason,
                    retryable: false,
                };
            }
            Attempt::Stopped => return,
            Attempt::Transient(reason) => reason,
        };
        has_turn = false;
        if started.elapsed() >= ctx.retry_for {
            break Outcome::Failed {
                reason: format!("{reason} (gave up after {attempts} attempts)"),
                retryable: true,
            };
        }
        tracing::info!(attempt = attempts, %reason, "a broadcast message failed; retrying");
        if !ctx.sender.sleep(pauses.next_pause()).await {
            return;
        }
        // Paused meanwhile: wait; cancelled: this recipient gets nothing.
        loop {
            let now = *status.borrow_and_update();
            match now {
                BroadcastStatus::Paused => {
                    if status.changed().await.is_err() {
                        return;
                    }
                }
                BroadcastStatus::Cancelled => return,
                _ => break,
            }
        }
    };
    let _ = outcomes.send((RecipientOutcome { customer, outcome }, permit));
}

async fn record_blocked(ctx: &Context, customer: CustomerId) {
    let command = CustomerCommand::RecordBotBlocked { at: Utc::now() };
    let context = CommandContext::new(sender_actor());
    let mut pauses = ctx.sender.pauses();
    for _ in 0..5 {
        match ctx
            .commands
            .execute::<Customer>(customer.stream(), &command, &context)
            .await
        {
            Ok(_) | Err(CommandError::Rejected(_)) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot record that a customer blocked the bot; retrying");
                tokio::time::sleep(pauses.next_pause().min(Duration::from_secs(5))).await;
            }
        }
    }
}

fn sender_actor() -> Actor {
    Actor::new(ActorKind::Bot, "broadcast-sender")
}

/// Writes outcomes in batches of up to 100, when 100 are ready or `flush_after` after the
/// first, and only then releases their places in the window. Ends once every sender has
/// handed its outcome over and the last batch is written.
async fn record(
    ctx: Arc<Context>,
    id: BroadcastId,
    mut outcomes: mpsc::UnboundedReceiver<(RecipientOutcome, OwnedSemaphorePermit)>,
    flush_after: Duration,
) {
    let batch_size = domain::validate::MAX_OUTCOME_BATCH;
    let mut batch: Vec<(RecipientOutcome, OwnedSemaphorePermit)> = Vec::new();
    let mut due: Option<Instant> = None;
    loop {
        let wait = async {
            match due {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            next = outcomes.recv() => match next {
                Some(item) => {
                    if batch.is_empty() {
                        due = Some(Instant::now() + flush_after);
                    }
                    batch.push(item);
                    if batch.len() >= batch_size {
                        write(&ctx, id, &mut batch).await;
                        due = None;
                    }
                }
                None => {
                    write(&ctx, id, &mut batch).await;
                    return;
                }
            },
            () = wait => {
                write(&ctx, id, &mut batch).await;
                due = None;
            }
        }
    }
}

/// Records a batch of outcomes (with an idempotency key made of the broadcast and the batch's
/// first recipient, which no other batch holds, so a write repeated after a lost answer is a
/// replay); releases the batch's places once written or given up.
async fn write(
    ctx: &Context,
    id: BroadcastId,
    batch: &mut Vec<(RecipientOutcome, OwnedSemaphorePermit)>,
) {
    if batch.is_empty() {
        return;
    }
    let outcomes: Vec<RecipientOutcome> =
        batch.iter().map(|(outcome, _)| outcome.clone()).collect();
    let first = outcomes
        .iter()
        .map(|outcome| outcome.customer.0)
        .min()
        .unwrap_or_default();
    let context = CommandContext::new(sender_actor())
        .idempotent(format!("broadcast-outcomes:{}:{first}", id.0));
    let command = BroadcastCommand::RecordOutcomes {
        outcomes,
        at: Utc::now(),
    };
    let mut pauses = ctx.sender.pauses();
    let mut failures = 0u32;
    loop {
        match ctx
            .commands
            .execute::<Broadcast>(id.stream(), &command, &context)
            .await
        {
            Ok(_) => break,
            Err(CommandError::Rejected(BroadcastError::DuplicateRecipient(_))) => {
                // Written by a repeat that lost its answer: nothing to do.
                break;
            }
            Err(CommandError::Rejected(error)) => {
                tracing::error!(broadcast.id = %id.0, %error, "broadcast outcomes refused");
                break;
            }
            Err(error) => {
                failures += 1;
                // Stopping: a few tries, then the recipients stay pending for the next run.
                if ctx.sender.stopping() && failures >= 3 {
                    tracing::error!(broadcast.id = %id.0, %error,
                        "stopping; gave up recording broadcast outcomes");
                    break;
                }
                tracing::warn!(broadcast.id = %id.0, %error,
                    "cannot record broadcast outcomes; retrying");
                let pause = pauses.next_pause();
                tokio::time::sleep(if ctx.sender.stopping() {
                    pause.min(Duration::from_secs(1))
                } else {
                    pause
                })
                .await;
            }
        }
    }
    let counted = |what: &'static str, n: usize| {
        metrics::counter!("ledgerdesk_broadcast_outcomes_total", "outcome" => what)
            .increment(u64::try_from(n).unwrap_or(u64::MAX));
    };
    let BroadcastCommand::RecordOutcomes { outcomes, .. } = &command else {
        return;
    };
    let delivered = outcomes
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Delivered { .. }))
        .count();
    counted("delivered", delivered);
    counted("not_delivered", outcomes.len() - delivered);
    batch.clear();
}

/// The broadcast's message in each language met so far: only the unsubscribe button's label
/// differs (the `UnsubscribeButton` text of the settings, in the customer's language).
struct Messages {
    id: BroadcastId,
    content: BroadcastContent,
    settings: Settings,
    built: HashMap<Option<String>, Arc<Part>>,
}

impl Messages {
    async fn new(ctx: &Context, id: BroadcastId, content: BroadcastContent) -> Self {
        let settings = match ctx.commands.state::<Settings>(StreamId::Settings).await {
            Ok(settings) => settings,
            Err(error) => {
                // The built-in texts stand in.
                tracing::warn!(%error, "cannot read the settings for a broadcast's texts");
                Settings::default()
            }
        };
        Messages {
            id,
            content,
            settings,
            built: HashMap::new(),
        }
    }

    fn for_language(&mut self, language: Option<&str>) -> Arc<Part> {
        let key = language.map(str::to_owned);
        if let Some(part) = self.built.get(&key) {
            return Arc::clone(part);
        }
        let label = self.settings.bot_text(BotText::UnsubscribeButton, language);
        let part = Arc::new(message(self.id, &self.content, Some(label)));
        self.built.insert(key, Arc::clone(&part));
        part
    }
}
