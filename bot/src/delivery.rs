//! The outbound delivery worker: follows the log and sends agent replies and satisfaction
//! prompts to customers on Telegram, recording each reply's outcome as an event; and, sharing
//! its rate limits (replies first), sends running broadcasts (see [`broadcast`]).
//!
//! It owns the way from the log to Telegram and back: which events call for a message, the
//! rate limits, Telegram's errors, and where it stands in the log. It holds no business rule
//! (the ticket decider says whether an outcome may be recorded) and writes to the log only
//! through the command service. Exactly one must run per database (DESIGN.md: singletons
//! take a Postgres advisory lock); two would send every reply twice.
//!
//! # What it sends
//!
//! - `ticket.agent_replied`: unless the ticket already records an outcome for that reply, the
//!   reply goes to the customer's private chat (whose id is the customer's Telegram user id).
//!   Text goes with `sendMessage`; media go by file id with `sendPhoto`, `sendVideo`,
//!   `sendDocument`, `sendAudio`, `sendVoice` or `sendAnimation`. One medium carries the text
//!   as its caption when the text fits one (1024 UTF-16 units, as Telegram counts); otherwise
//!   the media go one after another and the text follows on its own. The outcome is recorded on the ticket:
//!   `RecordDelivery` with the id of the first Telegram message, or `RecordDeliveryFailure`
//!   with Telegram's description (noting how many messages went out before, if any).
//! - `ticket.resolved`: when it is the ticket's latest resolve, the ticket is not rated, the
//!   resolve is younger than [`DeliveryOptions::csat_max_age`] and no prompt was sent for it,
//!   the customer gets the rating prompt (the settings' `RatingPrompt` text in the customer's
//!   language, see `domain::settings::texts`) with five inline buttons 1–5 whose data is
//!   [`CallbackData::Rating`](crate::callback::CallbackData::Rating).
//! - `ticket.reply_delivery_retry_requested` (an agent's `retryDelivery` of a failed reply): the
//!   reply, read back from its `ticket.agent_replied` event, goes again as a new one would.
//! - `ticket.rated`: the buttons of the ticket's prompts still showing them are removed with
//!   `editMessageReplyMarkup` (noted in `delivery_csat_prompts.keyboard_removed_at`).
//! - `broadcast.preview_requested` (an agent's `sendBroadcastPreview`): the draft the event
//!   carries goes to the chat asked for, as the broadcast message, and the outcome is recorded
//!   on the broadcast (`broadcast.preview_sent` / `broadcast.preview_failed`, see [`preview`]).
//!
//! # Telegram's limits and errors
//!
//! Every message waits for two rate limiters (governor): one per chat (1/s by default) and
//! one for the whole bot (30/s). Each chat has one lane: its messages go strictly in log
//! order, one at a time, while other chats proceed in parallel. Requests go through
//! teloxide's client but their answers are read here ([`call`]): teloxide sleeps 10 s before
//! reading a 5xx answer.
//!
//! - 429 `retry_after`: Telegram throttles the whole bot, so every lane pauses until then;
//!   the message is sent again afterwards, as often as Telegram asks. The end of the pause is
//!   saved (`delivery_pauses`) and a restarted worker waits for it too.
//! - 403 "bot was blocked by the user": the customer is recorded as having blocked the bot
//!   (`RecordBotBlocked`) and the reply as failed, not retryable. No retry. A later reply
//!   that Telegram accepts records that the customer unblocked the bot (`RecordBotUnblocked`,
//!   no event when they had not blocked it).
//! - Network errors, 5xx, a 429 without `retry_after`, unreadable answers: a reply is tried
//!   again with exponential backoff (capped, with jitter) until
//!   [`DeliveryOptions::retry_for`] has passed since its first failure, then recorded as a
//!   retryable failure. The schedule (attempts, next attempt, last error, the parts already
//!   accepted) is a row of `delivery_retries`, saved after each failure and resumed after a
//!   restart; the API shows the reply as retrying from it. Satisfaction prompts and button
//!   removals are tried [`DeliveryOptions::max_send_attempts`] times.
//! - Any other refusal (a bad file id, chat not found…): a failure, not retryable, with
//!   Telegram's description.
//!
//! Logs carry ticket and message ids, never the bot token (network errors embed the request
//! URL, so they are never displayed) nor message text.
//!
//! # Checkpoint
//!
//! The worker's place in the log is a row of its own table, `delivery_checkpoints`
//! (`migrations/0006_delivery.sql`; the worker's other tables come with
//! `migrations/0016_delivery_retries.sql`), keyed by [`DeliveryOptions::name`]. It does not reuse
//! `projection_checkpoints`: that table describes read models (versions, shadow copies,
//! rebuilds) and the projector runtime owns its rows. Jobs for different chats finish out of
//! order, so the checkpoint only moves up to the event just before the oldest job still
//! running; it never passes an event whose outcome is not yet recorded. It is saved every
//! [`DeliveryOptions::checkpoint_interval`] and on shutdown, and only moves forward.
//!
//! The checkpoint saves work; it is not what prevents duplicates. Before sending a reply the
//! worker loads the ticket and sends only when the reply has no outcome yet, and before
//! sending a prompt it looks for the `ticket.resolved` event's row in `delivery_csat_prompts`.
//! So replaying events after the checkpoint (after a crash, or a checkpoint saved late) sends
//! nothing twice, except within the windows below.
//!
//! # What remains at-least-once
//!
//! - **Replies.** Telegram's acceptance and the `ticket.reply_delivered` event are not one
//!   transaction. If the process dies (or the database stays unreachable through shutdown)
//!   after Telegram accepted a message and before the outcome event commits, the reply has no
//!   outcome, and the next run sends it again: the customer sees it twice. For a reply of
//!   several messages (media, then text) the same holds for the messages already accepted
//!   when the process died. A network error whose request Telegram did in fact accept is
//!   retried the same way (the Bot API has no idempotency key). Nothing else re-sends: an
//!   outcome, once recorded, is final for this worker; only an agent's retry request makes a
//!   failed reply pending again. Outcomes are written with an idempotency key per try of the
//!   reply (the ticket's version when the try began), so a write retried after a lost answer
//!   is a replay, while the next try after a retry request records its own outcome.
//! - **Satisfaction prompts.** The log has no event for a prompt, so the row in
//!   `delivery_csat_prompts` plays that part, with the same window: a crash between
//!   Telegram's acceptance and the row's commit asks the customer twice.
//!
//! # Shutdown
//!
//! When the `shutdown` token is cancelled the worker reads no more events, drops the jobs
//! queued behind each chat's current one, lets each lane finish the message it is sending
//! and record the outcome (waits for a 429 or a backoff are cut short, leaving that reply
//! without outcome), saves the checkpoint and returns. Whatever did not finish is before the
//! saved checkpoint and is picked up by the next run.

mod broadcast;
#[allow(
    dead_code,
    reason = "the broadcast sender and the preview are its users"
)]
mod broadcast_message;
mod call;
mod job;
mod overall;
mod preview;
mod prompt;
mod send;
mod tracker;
mod upload;

pub use broadcast::BroadcastOptions;

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use app::commands::CommandService;
use eventlog::postgres::PostgresLog;
use eventlog::{EventLog, Position, RecordedEvent};
use futures::StreamExt;
use teloxide::Bot;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::job::{Context, Ended, Job};
use self::send::{RetryPolicy, Sender};
use self::tracker::Tracker;
use crate::store::DeliveryStore;

/// How long a reply is tried through transient failures unless configured otherwise.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(24 * 3600);

/// Tuning of the delivery worker. The defaults follow Telegram's published limits.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// The worker's name: its checkpoint row in `delivery_checkpoints`.
    pub name: String,
    /// Messages per second over all chats (Telegram allows about 30).
    pub messages_per_second: NonZeroU32,
    /// Messages per second to one chat (Telegram allows about 1).
    pub messages_per_chat_per_second: NonZeroU32,
    /// Attempts at a satisfaction prompt (or at removing its buttons) through network errors
    /// and 5xx before it is given up. 429s do not count: they are waited out. Replies are
    /// tried for [`DeliveryOptions::retry_for`] instead.
    pub max_send_attempts: u32,
    /// How long a reply is tried again through network errors, 5xx and 429s without a wait,
    /// counted from its first failure; then it is recorded as a retryable failure.
    pub retry_for: Duration,
    /// The pause after the first failed attempt; it doubles with each further one.
    pub first_backoff: Duration,
    /// The longest pause between two attempts (also for writing outcomes to the log).
    pub max_backoff: Duration,
    /// How many jobs (running and queued behind their chat) may wait before the worker stops
    /// reading the log.
    pub max_pending_jobs: usize,
    /// How often the checkpoint is saved while it moves.
    pub checkpoint_interval: Duration,
    /// Resolves older than this get no satisfaction prompt (after a long outage, or when the
    /// worker first runs over an old log).
    pub csat_max_age: Duration,
    /// How broadcasts are sent (see [`BroadcastOptions`]).
    pub broadcast: BroadcastOptions,
    /// Media storage, to send files agents uploaded (`None`: such replies fail).
    pub media: Option<media::MediaService>,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            name: "delivery".to_owned(),
            messages_per_second: NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN),
            messages_per_chat_per_second: NonZeroU32::MIN,
            max_send_attempts: 8,
            retry_for: DEFAULT_RETRY_FOR,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            max_pending_jobs: 1_000,
            checkpoint_interval: Duration::from_secs(1),
            csat_max_age: Duration::from_secs(24 * 60 * 60),
            broadcast: BroadcastOptions::default(),
            media: None,
        }
    }
}

/// Follows the log and delivers replies and satisfaction prompts (see the [module
/// docs](self)).
pub struct DeliveryWorker {
    commands: CommandService<PostgresLog>,
    bot: Bot,
    options: DeliveryOptions,
}

impl std::fmt::Debug for DeliveryWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bot holds the token: leave it out.
        f.debug_struct("DeliveryWorker")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl DeliveryWorker {
    /// A worker following the log of `commands` and recording outcomes through it (the log's
    /// pool also holds the worker's own tables), sending with `bot`.
    pub fn new(commands: CommandService<PostgresLog>, bot: Bot, options: DeliveryOptions) -> Self {
        DeliveryWorker {
            commands,
            bot,
            options,
        }
    }

    /// Runs until `shutdown` is cancelled, then finishes what it is sending, saves its
    /// checkpoint and returns. Errors of the database or of Telegram are logged and retried;
    /// they never end the worker.
    pub async fn run(self, shutdown: CancellationToken) {
        let DeliveryWorker {
            commands,
            bot,
            options,
        } = self;
        let log = commands.log().clone();
        let retry = RetryPolicy {
            max_attempts: options.max_send_attempts.max(1),
            first_backoff: options.first_backoff,
            max_backoff: options.max_backoff.max(options.first_backoff),
        };
        let store = DeliveryStore::new(log.pool().clone(), options.name.clone());
        let sender = Sender::new(
            bot,
            options.messages_per_second,
            options.messages_per_chat_per_second,
            retry,
            store.clone(),
            shutdown.clone(),
            options.broadcast.allow_paid_broadcast,
        )
        .with_media(options.media.clone());
        let ctx = Arc::new(Context {
            commands,
            store: store.clone(),
            sender: Arc::clone(&sender),
            csat_max_age: options.csat_max_age,
            retry_for: options.retry_for,
        });

        let broadcasting = tokio::spawn(broadcast::run(
            Arc::clone(&ctx),
            options.broadcast.clone(),
            shutdown.clone(),
        ));

        let mut pauses = sender.pauses();
        let start = loop {
            let read =
                async { Ok::<_, sqlx::Error>((store.checkpoint().await?, store.pause().await?)) };
            match read.await {
                Ok((position, pause)) => {
                    if let Some(not_before) = pause {
                        sender.resume_pause(not_before);
                    }
                    break position;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the delivery checkpoint; retrying");
                    if !sender.sleep(pauses.next_pause()).await {
                        let _ = broadcasting.await;
                        return;
                    }
                }
            }
        };
        tracing::info!(worker = %options.name, checkpoint = %start, "delivery worker started");

        let mut tracker = Tracker::new(start);
        let mut saved = start;
        let mut lanes = Lanes::default();
        let mut events = log.subscribe_all(start);
        // An event that could not be looked at (the database failed): tried again first.
        let mut again: Option<RecordedEvent> = None;
        // The pauses of the current run of failures, started again once an event is looked at.
        let mut pauses = sender.pauses();
        let mut tick = tokio::time::interval(options.checkpoint_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u32;

        loop {
            let room = lanes.len() < options.max_pending_jobs.max(1);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some((chat, position, ended)) = lanes.next_done() => {
                    if ended == Ended::Finished {
                        tracker.finished(position);
                    }
                    lanes.next_for(chat, &ctx);
                }
                _ = tick.tick() => {
                    saved = save(&store, &tracker, saved).await;
                    ticks = ticks.wrapping_add(1);
                    if ticks.is_multiple_of(60) {
                        sender.forget_idle_chats();
                    }
                }
                next = next_event(&mut events, &mut again), if room => {
                    let event = match next {
                        Some(Ok(event)) => event,
                        Some(Err(error)) => {
                            tracing::warn!(%error, "reading the log failed; resubscribing");
                            if !sender.sleep(pauses.next_pause()).await {
                                break;
                            }
                            events = log.subscribe_all(tracker.last_read());
                            continue;
                        }
                        None => {
                            // Subscriptions end only after an error; resubscribe all the same.
                            if !sender.sleep(pauses.next_pause()).await {
                                break;
                            }
                            events = log.subscribe_all(tracker.last_read());
                            continue;
                        }
                    };
                    match job::job_for(&ctx, &event).await {
                        Ok(Some(job)) => {
                            pauses = sender.pauses();
                            tracker.started(job.position);
                            lanes.push(job, &ctx);
                        }
                        Ok(None) => {
                            pauses = sender.pauses();
                            tracker.passed(event.position);
                        }
                        Err(error) => {
                            tracing::warn!(%error, position = %event.position,
                                "cannot look at an event now; retrying");
                            again = Some(event);
                            if !sender.sleep(pauses.next_pause()).await {
                                break;
                            }
                        }
                    }
                }
            }
        }

        // Stopping: drop what waits behind each chat, let the current messages finish.
        let dropped = lanes.drop_waiting();
        tracing::info!(dropped, running = lanes.len(), "delivery worker stopping");
        while let Some((_, position, ended)) = lanes.next_done().await {
            if ended == Ended::Finished {
                tracker.finished(position);
            }
        }
        let saved = save(&store, &tracker, saved).await;
        if broadcasting.await.is_err() {
            tracing::error!("the broadcast sender panicked");
        }
        tracing::info!(checkpoint = %saved, "delivery worker stopped");
    }
}

/// The event to look at next: the one to try again, else the subscription's next.
async fn next_event(
    events: &mut futures::stream::BoxStream<'static, Result<RecordedEvent, eventlog::Error>>,
    again: &mut Option<RecordedEvent>,
) -> Option<Result<RecordedEvent, eventlog::Error>> {
    match again.take() {
        Some(event) => Some(Ok(event)),
        None => events.next().await,
    }
}

/// Saves the checkpoint when it moved; returns where it now stands.
async fn save(store: &DeliveryStore, tracker: &Tracker, saved: Position) -> Position {
    let safe = tracker.safe();
    if safe <= saved {
        return saved;
    }
    match store.save_checkpoint(safe).await {
        Ok(()) => safe,
        Err(error) => {
            // The next save tries again; until then a restart only re-reads a few events.
            tracing::warn!(%error, "cannot save the delivery checkpoint");
            saved
        }
    }
}

/// One lane per chat: the job running for it and those waiting behind.
#[derive(Debug, Default)]
struct Lanes {
    /// Chats with a running job, and the jobs queued behind it.
    queued: HashMap<i64, VecDeque<Job>>,
    running: JoinSet<Ended>,
    /// The chat and event of each running task.
    tasks: HashMap<tokio::task::Id, (i64, Position)>,
    /// Jobs running or queued.
    len: usize,
}

impl Lanes {
    fn len(&self) -> usize {
        self.len
    }

    /// Runs `job` now if its chat is idle, else queues it behind the chat's current job.
    fn push(&mut self, job: Job, ctx: &Arc<Context>) {
        self.len += 1;
        match self.queued.get_mut(&job.chat) {
            Some(queue) => queue.push_back(job),
            None => {
                self.queued.insert(job.chat, VecDeque::new());
                self.spawn(job, ctx);
            }
        }
    }

    fn spawn(&mut self, job: Job, ctx: &Arc<Context>) {
        let key = (job.chat, job.position);
        let handle = self.running.spawn(job::run(Arc::clone(ctx), job));
        self.tasks.insert(handle.id(), key);
    }

    /// Waits for a running job to end: its chat, its event and how it ended (`None` when
    /// nothing runs).
    async fn next_done(&mut self) -> Option<(i64, Position, Ended)> {
        loop {
            let (id, ended) = match self.running.join_next_with_id().await? {
                Ok((id, ended)) => (id, ended),
                Err(error) => {
                    // A bug: keep the checkpoint before the job, so nothing is lost.
                    tracing::error!(%error, "a delivery job failed");
                    (error.id(), Ended::Abandoned)
                }
            };
            if let Some((chat, position)) = self.tasks.remove(&id) {
                self.len = self.len.saturating_sub(1);
                return Some((chat, position, ended));
            }
        }
    }

    /// Starts the next job of `chat`, whose previous job ended.
    fn next_for(&mut self, chat: i64, ctx: &Arc<Context>) {
        match self.queued.get_mut(&chat).and_then(VecDeque::pop_front) {
            Some(job) => self.spawn(job, ctx),
            None => {
                self.queued.remove(&chat);
            }
        }
    }

    /// Forgets every queued job; returns how many.
    fn drop_waiting(&mut self) -> usize {
        let dropped = self.queued.values().map(VecDeque::len).sum();
        self.queued.clear();
        self.len = self.len.saturating_sub(dropped);
        dropped
    }
}
