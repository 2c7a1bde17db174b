//! The [`CommandService`]: loads, decides, appends and retries on conflict, for one stream
//! ([`CommandService::execute`]); the commands of two streams are in `flows.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use domain::{Decider, DomainEvent, StreamId};
use eventlog::{
    AppendOutcome, AppendRequest, CommittedEvent, Direction, Error, EventLog, ExpectedVersion,
    NewEvent, Receipt,
};
use uuid::Uuid;

use super::attempt::{Attempt, Loaded, Plan};
use super::cache::StateCache;
use super::context::CommandContext;
use super::outcome::{AppliedEvent, CommandError, Executed};

/// How long a command keeps deciding again while other writers keep changing its streams,
/// from its first attempt, before it gives up with [`CommandError::Conflict`].
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(2);

/// How many streams' states a service keeps in memory by default.
pub const DEFAULT_CACHED_STREAMS: usize = 4_096;

/// How many events one read of a stream asks for while loading it.
const LOAD_PAGE: usize = 1_000;

/// The ceiling of the pause after a command's first conflict; it doubles with each further
/// conflict, up to [`MAX_BACKOFF`]. The pause itself is drawn from zero to the ceiling.
const FIRST_BACKOFF: Duration = Duration::from_millis(2);

/// The highest ceiling of a pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(128);

/// Runs commands against deciders over an [`EventLog`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CommandService<L> {
    log: L,
    /// How long a command may keep retrying after conflicts.
    retry_budget: Duration,
    /// Most attempts per command, whatever the budget (tests).
    max_attempts: u32,
    /// States kept after the appends of this service and its clones (`None`: none kept).
    states: Option<Arc<StateCache>>,
}

impl<L: EventLog> CommandService<L> {
    /// A service over `log`, retrying a command that conflicts for up to
    /// [`DEFAULT_RETRY_BUDGET`] and keeping the states of up to [`DEFAULT_CACHED_STREAMS`]
    /// streams in memory.
    pub fn new(log: L) -> Self {
        CommandService {
            log,
            retry_budget: DEFAULT_RETRY_BUDGET,
            max_attempts: u32::MAX,
            states: Some(Arc::new(StateCache::new(DEFAULT_CACHED_STREAMS))),
        }
    }

    /// The same service keeping the states of up to `streams` streams (0: none, every command
    /// reads its streams). Clones made before share the old memory, not this one.
    pub fn with_cached_streams(mut self, streams: usize) -> Self {
        self.states = (streams > 0).then(|| Arc::new(StateCache::new(streams)));
        self
    }

    /// The same service retrying a command that conflicts for at most `budget` from its
    /// first attempt (zero: never; the first conflict is final).
    pub fn with_retry_budget(mut self, budget: Duration) -> Self {
        self.retry_budget = budget;
        self
    }

    /// The same service deciding each command at most `attempts` times (at least once),
    /// within its retry budget.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The log it writes to.
    pub fn log(&self) -> &L {
        &self.log
    }

    /// Executes a command against the one aggregate in `stream`: loads and folds the stream,
    /// decides, and appends the new events expecting the version it read. Retries on
    /// conflict.
    ///
    /// Ticket commands that change a ticket's lifecycle also write the customer's stream: send
    /// them through [`CommandService::execute_ticket`] instead.
    ///
    /// # Errors
    /// [`CommandError::Rejected`] with the decider's error, [`CommandError::Conflict`] when
    /// the streams kept changing for the whole retry budget, [`CommandError::Decode`] for an unreadable stored event and
    /// [`CommandError::Log`] when the log fails.
    #[tracing::instrument(skip_all, fields(stream = %stream))]
    pub async fn execute<D>(
        &self,
        stream: StreamId,
        command: &D::Command,
        ctx: &CommandContext,
    ) -> Result<Executed<D::Event>, CommandError<D::Error>>
    where
        D: Decider + Send + 'static,
        D::Event: DomainEvent,
    {
        let name = stream.name();
        let name = name.as_str();
        self.run(|fresh| async move {
            let loaded = match self.load::<D, D::Error>(name, fresh).await {
                Ok(loaded) => loaded,
                Err(error) => return Attempt::Failed(error),
            };
            match loaded.state.decide(command) {
                Ok(events) => {
                    let plan = Plan::new().and_read(&loaded).write(name.to_owned(), events);
                    if loaded.cached && plan.checks_nothing(ctx) {
                        return Attempt::Recheck;
                    }
                    let outcome = self.commit(plan, ctx).await;
                    if let Attempt::Done(executed) = &outcome {
                        self.keep(loaded, executed, |e| Some(e));
                    }
                    outcome
                }
                Err(_) if loaded.cached => Attempt::Recheck,
                Err(rejection) => {
                    self.keep_as_read(loaded);
                    self.rejected(rejection, ctx).await
                }
            }
        })
        .await
    }

    /// The current state of the aggregate in `stream` (`D::default()` when it has no event),
    /// for reads that must be exact (a sign-in checks the agent's role on the log, not on a
    /// read model that may lag).
    ///
    /// # Errors
    /// [`CommandError::Decode`] for an unreadable stored event, [`CommandError::Log`] when the
    /// log fails.
    pub async fn state<D>(
        &self,
        stream: StreamId,
    ) -> Result<D, CommandError<std::convert::Infallible>>
    where
        D: Decider + 'static,
        D::Event: DomainEvent,
    {
        Ok(self.load::<D, _>(&stream.name(), true).await?.state)
    }

    /// Calls `attempt` until it is done or failed, or until a conflict finds the retry budget
    /// spent (or `max_attempts` made), pausing between attempts (see [`Pauses`]). `attempt` is
    /// told whether to load fresh state (`true`) or may use the service's memory: only the
    /// first attempt may, and an [`Attempt::Recheck`] of it is not counted.
    pub(super) async fn run<T, E, F, Fut>(&self, mut attempt: F) -> Result<T, CommandError<E>>
    where
        F: FnMut(bool) -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
    {
        let started = Instant::now();
        let mut pauses = Pauses::new();
        let mut tries = 0;
        let mut fresh = false;
        loop {
            tries += 1;
            let outcome = attempt(fresh).await;
            fresh = true;
            match outcome {
                Attempt::Done(done) => return Ok(done),
                Attempt::Failed(error) => return Err(error),
                Attempt::Recheck => tries -= 1,
                Attempt::Retry(conflict) => {
                    let pause = pauses.next_pause();
                    let waited = started.elapsed();
                    if tries >= self.max_attempts || waited + pause > self.retry_budget {
                        return Err(CommandError::Conflict {
                            attempts: tries,
                            waited,
                            last: conflict,
                        });
                    }
                    tracing::debug!(attempt = tries, %conflict, "command conflicted; deciding again");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Loads a stream and folds it into `D`; an empty (or missing) stream is `D::default()`.
    /// Unless `fresh`, takes the state from the service's memory when it has one.
    pub(super) async fn load<D, E>(
        &self,
        stream: &str,
        fresh: bool,
    ) -> Result<Loaded<D>, CommandError<E>>
    where
        D: Decider + 'static,
        D::Event: DomainEvent,
    {
        if !fresh
            && let Some(states) = &self.states
            && let Some((state, version)) = states.take::<D>(stream)
        {
            return Ok(Loaded {
                state,
                stream: stream.to_owned(),
                version,
                cached: true,
            });
        }
        let mut state = D::default();
        let mut version = None;
        let mut from = 0;
        loop {
            let page = match self
                .log
                .read_stream(stream, from, Direction::Forwards, LOAD_PAGE)
                .await
            {
                Ok(page) => page,
                Err(Error::StreamNotFound { .. }) => Vec::new(),
                Err(error) => return Err(error.into()),
            };
            let full = page.len() == LOAD_PAGE;
            for recorded in page {
                let event: D::Event = decode(&recorded)?;
                state = state.evolve(&event);
                version = Some(recorded.stream_version);
                from = recorded.stream_version.saturating_add(1);
            }
            if !full {
                return Ok(Loaded {
                    state,
                    stream: stream.to_owned(),
                    version,
                    cached: false,
                });
            }
        }
    }

    /// Keeps a state after a commit: folded with the events `executed` wrote to its stream
    /// (`pick` tells which of them are `D`'s) at their version, or as read when none was
    /// written. A state kept as read may be behind its stream (when the plan did not check
    /// it); every command that writes on it checks its version, so it costs at most a retry.
    /// A replayed execution wrote nothing now, so nothing proves the state current: it is not
    /// kept.
    pub(super) fn keep<D, E>(
        &self,
        loaded: Loaded<D>,
        executed: &Executed<E>,
        pick: impl Fn(&E) -> Option<&D::Event>,
    ) where
        D: Decider + Send + 'static,
    {
        let Some(states) = &self.states else { return };
        if executed.replayed {
            return;
        }
        let Loaded {
            mut state,
            stream,
            mut version,
            ..
        } = loaded;
        for applied in executed.events.iter().filter(|a| a.stream == stream) {
            let Some(event) = pick(&applied.event) else {
                // Not this aggregate's event: the state cannot follow; read it next time.
                return;
            };
            state = state.evolve(event);
            version = Some(applied.version);
        }
        states.put(&stream, state, version);
    }

    /// Keeps a state as freshly read, when no append followed (a rejection).
    pub(super) fn keep_as_read<D>(&self, loaded: Loaded<D>)
    where
        D: Decider + Send + 'static,
    {
        if let Some(states) = &self.states
            && !loaded.cached
        {
            states.put(&loaded.stream, loaded.state, loaded.version);
        }
    }

    /// Appends a plan in one request: every stream read expects the version seen (streams
    /// read but not written are checked too), every stream written but not read expects to be
    /// new.
    pub(super) async fn commit<E, R>(
        &self,
        plan: Plan<E>,
        ctx: &CommandContext,
    ) -> Attempt<Executed<E>, R>
    where
        E: DomainEvent,
    {
        let metadata = ctx.metadata();
        let mut request = AppendRequest {
            idempotency_key: ctx.idempotency_key.clone(),
            input_digest: ctx.input_digest.clone(),
            streams: Vec::new(),
        };
        let mut decided = Vec::new();
        for (stream, version) in &plan.reads {
            if !plan.writes.iter().any(|(written, _)| written == stream) {
                request = request.and_stream(
                    stream.clone(),
                    ExpectedVersion::from_current(*version),
                    vec![],
                );
            }
        }
        for (stream, events) in plan.writes {
            let expected = plan
                .reads
                .iter()
                .find(|(read, _)| *read == stream)
                .map_or(ExpectedVersion::NoStream, |(_, version)| {
                    ExpectedVersion::from_current(*version)
                });
            let mut new_events = Vec::with_capacity(events.len());
            for event in events {
                let payload = match serde_json::to_value(&event) {
                    Ok(payload) => payload,
                    Err(error) => return Attempt::Failed(Error::Codec(error).into()),
                };
                let new = NewEvent::new(event.event_type(), payload, metadata.clone())
                    .with_schema_version(event.schema_version());
                decided.push((new.event_id, event));
                new_events.push(new);
            }
            request = request.and_stream(stream, expected, new_events);
        }
        if request.idempotency_key.is_none() && decided.is_empty() {
            // Nothing to write and no key to record: the command was already satisfied.
            return Attempt::Done(Executed {
                events: Vec::new(),
                position: None,
                replayed: false,
            });
        }
        match self.log.append(request).await {
            Ok(AppendOutcome::Appended(receipt)) => Attempt::Done(applied(decided, &receipt)),
            Ok(AppendOutcome::AlreadyApplied(receipt)) => {
                if !receipt.same_input(ctx.input_digest.as_deref()) {
                    return Attempt::Failed(CommandError::KeyReused);
                }
                match self.read_back(&receipt).await {
                    Ok(executed) => Attempt::Done(executed),
                    Err(error) => Attempt::Failed(error),
                }
            }
            Err(conflict @ Error::Conflict { .. }) => Attempt::Retry(conflict),
            Err(error) => Attempt::Failed(error.into()),
        }
    }

    /// A rejection, unless the command's idempotency key was applied before: then the command
    /// is a repeat whose effect is already in the state (a reply whose message id now exists,
    /// say), and the answer is the first result.
    pub(super) async fn rejected<Ev, E>(
        &self,
        rejection: E,
        ctx: &CommandContext,
    ) -> Attempt<Executed<Ev>, E>
    where
        Ev: DomainEvent,
    {
        match self.replay(ctx).await {
            Ok(Some(executed)) => Attempt::Done(executed),
            Ok(None) => Attempt::Failed(CommandError::Rejected(rejection)),
            Err(error) => Attempt::Failed(error),
        }
    }

    /// The first result of the context's idempotency key, if it was applied before.
    ///
    /// # Errors
    /// [`CommandError::KeyReused`] when the key was applied to another input.
    pub(super) async fn replay<Ev, E>(
        &self,
        ctx: &CommandContext,
    ) -> Result<Option<Executed<Ev>>, CommandError<E>>
    where
        Ev: DomainEvent,
    {
        let Some(key) = &ctx.idempotency_key else {
            return Ok(None);
        };
        match self.log.applied(key).await? {
            Some(receipt) if !receipt.same_input(ctx.input_digest.as_deref()) => {
                Err(CommandError::KeyReused)
            }
            Some(receipt) => self.read_back(&receipt).await.map(Some),
            None => Ok(None),
        }
    }

    /// The events of an earlier append, read back from their streams and decoded.
    async fn read_back<E, R>(&self, receipt: &Receipt) -> Result<Executed<E>, CommandError<R>>
    where
        E: DomainEvent,
    {
        let mut events = Vec::with_capacity(receipt.events.len());
        let mut rest = receipt.events.as_slice();
        while let Some(first) = rest.first() {
            // One append writes a run of consecutive versions per stream: read each run at once.
            let run = rest.iter().take_while(|e| e.stream == first.stream).count();
            let recorded = self
                .log
                .read_stream(&first.stream, first.version, Direction::Forwards, run)
                .await?;
            for (committed, recorded) in rest[..run].iter().zip(recorded) {
                if recorded.event_id != committed.event_id {
                    return Err(CommandError::Log(Error::Invalid(format!(
                        "event {} of stream {} is not where its receipt says",
                        committed.event_id, committed.stream
                    ))));
                }
                let event: E = decode(&recorded)?;
                events.push(applied_event(committed, event));
            }
            rest = &rest[run..];
        }
        Ok(Executed {
            events,
            position: receipt.last_position(),
            replayed: true,
        })
    }
}

/// A stored event as the domain's event, or a `Decode` error naming where it is stored.
fn decode<E: DomainEvent, R>(recorded: &eventlog::RecordedEvent) -> Result<E, CommandError<R>> {
    E::decode(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.payload,
    )
    .map_err(|source| CommandError::Decode {
        stream: recorded.stream_id.clone(),
        version: recorded.stream_version,
        source,
    })
}

/// The decided events matched with where the receipt says they landed.
fn applied<E>(decided: Vec<(Uuid, E)>, receipt: &Receipt) -> Executed<E> {
    let mut events: Vec<_> = decided
        .into_iter()
        .filter_map(|(id, event)| {
            let committed = receipt.events.iter().find(|c| c.event_id == id)?;
            Some(applied_event(committed, event))
        })
        .collect();
    events.sort_by_key(|e| e.position);
    Executed {
        events,
        position: receipt.last_position(),
        replayed: false,
    }
}

fn applied_event<E>(committed: &CommittedEvent, event: E) -> AppliedEvent<E> {
    AppliedEvent {
        stream: committed.stream.clone(),
        version: committed.version,
        position: committed.position,
        event_id: committed.event_id,
        event,
    }
}

/// The pauses of one command between its attempts: "full jitter" backoff. The n-th pause is
/// drawn uniformly from zero to a ceiling that starts at [`FIRST_BACKOFF`] and doubles after
/// each conflict up to [`MAX_BACKOFF`], so writers that conflicted together spread out at once
/// instead of meeting again in lockstep, and the total wait grows with the contention rather
/// than a fixed count of attempts deciding when to give up.
#[derive(Debug)]
struct Pauses {
    ceilings: backon::ExponentialBackoff,
    last: Duration,
}

impl Pauses {
    fn new() -> Pauses {
        Pauses {
            ceilings: ExponentialBuilder::new()
                .with_min_delay(FIRST_BACKOFF)
                .with_factor(2.0)
                .with_max_delay(MAX_BACKOFF)
                .without_max_times()
                .build(),
            last: FIRST_BACKOFF,
        }
    }

    /// The next pause: anywhere from zero to the current ceiling.
    fn next_pause(&mut self) -> Duration {
        // Never exhausted (no maximum count); the last ceiling stands in should it ever be.
        let ceiling = self.ceilings.next().unwrap_or(self.last);
        self.last = ceiling;
        ceiling.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_are_drawn_below_a_doubling_capped_ceiling() {
        for _ in 0..100 {
            let mut pauses = Pauses::new();
            let mut total = Duration::ZERO;
            for n in 0..20 {
                let pause = pauses.next_pause();
                let ceiling = (FIRST_BACKOFF * (1 << n.min(6))).min(MAX_BACKOFF);
                assert!(pause <= ceiling, "pause {n}: {pause:?} above {ceiling:?}");
                total += pause;
            }
            assert!(total < MAX_BACKOFF * 20);
        }
        // Full jitter: short pauses happen, not only ones near the ceiling.
        let mut pauses = Pauses::new();
        for _ in 0..10 {
            pauses.next_pause();
        }
        let draws: Vec<Duration> = (0..200).map(|_| pauses.next_pause()).collect();
        assert!(draws.iter().any(|p| *p < MAX_BACKOFF / 4), "{draws:?}");
        assert!(draws.iter().any(|p| *p > MAX_BACKOFF / 2), "{draws:?}");
    }
}
