//! Applying batches to one copy of one projection: the read-model writes and the checkpoint in
//! one transaction, and, when a batch fails, finding the event that broke it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::{AnyEvent, DomainEvent};
use eventlog::{Position, RecordedEvent};
use sqlx::{Connection, PgConnection};

use super::error::{RuntimeError, is_connection_failure};
use crate::batch::{ApplyError, Envelope, Target};
use crate::checkpoint::{self, Failure};
use crate::projection::{Kept, Projection};

/// A page of the log, decoded. Decoding stops at the first event that cannot be decoded:
/// projections must not step past it.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    pub(super) events: Vec<Envelope>,
    pub(super) poison: Option<Failure>,
}

impl Decoded {
    pub(super) fn from_recorded(recorded: Vec<RecordedEvent>) -> Self {
        let mut decoded = Decoded {
            events: Vec::with_capacity(recorded.len()),
            poison: None,
        };
        for event in recorded {
            match decode(&event) {
                Ok(envelope) => decoded.events.push(envelope),
                Err(error) => {
                    decoded.poison = Some(Failure {
                        position: event.position,
                        event_id: event.event_id,
                        event_type: event.event_type,
                        error,
                        at: Utc::now(),
                    });
                    break;
                }
            }
        }
        decoded
    }

    pub(super) fn last_position(&self) -> Option<Position> {
        self.events.last().map(|event| event.position)
    }
}

fn decode(recorded: &RecordedEvent) -> Result<Envelope, String> {
    let stream = recorded
        .stream_id
        .parse()
        .map_err(|err| format!("cannot read the stream id: {err}"))?;
    let event = AnyEvent::decode(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.payload,
    )
    .map_err(|err| format!("cannot decode the event: {err}"))?;
    Ok(Envelope {
        position: recorded.position,
        stream,
        stream_version: recorded.stream_version,
        event_id: recorded.event_id,
        recorded_at: recorded.recorded_at,
        actor: recorded.metadata.actor.clone(),
        event,
    })
}

/// What became of a batch.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Every event was applied (or had been already).
    Applied,
    /// The projection stopped on an event; everything before it was applied.
    Stopped(Failure),
}

/// The longest a live copy's stored checkpoint stays behind after batches it had nothing to
/// apply to: while such batches keep coming, it moves at most this often, and the runner
/// stores the last one this long after the previous move. Each move is a statement and a
/// commit; a busy log with nothing for a projection would otherwise cost one per batch.
pub(super) const IDLE_CHECKPOINT_GAP: Duration = Duration::from_millis(10);

/// One copy (live or shadow) of one projection, with its checkpoint.
#[derive(Debug)]
pub(super) struct Applier {
    pub(super) projection: Arc<dyn Projection>,
    pub(super) target: Target,
    /// The last event applied (or passed over).
    pub(super) position: Position,
    /// What the projection kept after the last batch this copy committed.
    pub(super) kept: Kept,
    /// The checkpoint as stored, when it is behind `position` (see [`IDLE_CHECKPOINT_GAP`]).
    pub(super) unstored: Option<Unstored>,
    /// When the stored checkpoint last moved.
    pub(super) stored_at: Option<Instant>,
}

/// A stored checkpoint behind the applied position: where it is, and how many events were
/// passed over since.
#[derive(Debug, Clone, Copy)]
pub(super) struct Unstored {
    stored: Position,
    events: u64,
}

impl Applier {
    /// A copy whose stored checkpoint is at `position`, with nothing kept.
    pub(super) fn new(projection: Arc<dyn Projection>, target: Target, position: Position) -> Self {
        Applier {
            projection,
            target,
            position,
            kept: Kept::default(),
            unstored: None,
            stored_at: None,
        }
    }

    /// Applies the events of `batch` after this copy's checkpoint, each batch in one
    /// transaction with its checkpoint. A batch that fails is retried one event per transaction
    /// so that everything before the faulty event lands and the failure names that event.
    ///
    /// Errors are the infrastructure's (a lost connection, a checkpoint moved by another
    /// process): the caller should start over from the stored checkpoint.
    pub(super) async fn apply(
        &mut self,
        conn: &mut PgConnection,
        batch: &Decoded,
    ) -> Result<Outcome, RuntimeError> {
        let start = batch
            .events
            .partition_point(|event| event.position <= self.position);
        let events = &batch.events[start..];
        if !events.is_empty() {
            match self.try_batch(conn, events).await {
                Ok(()) => {}
                Err(Attempt::Infrastructure(err)) => return Err(err),
                Err(Attempt::Event(err)) if events.len() == 1 => {
                    return self.stop(conn, &events[0], &err).await;
                }
                Err(Attempt::Event(_)) => {
                    if let Some(stopped) = self.one_by_one(conn, events).await? {
                        return Ok(stopped);
                    }
                }
            }
        }
        match &batch.poison {
            Some(failure) if failure.position > self.position => {
                self.record(conn, failure).await?;
                Ok(Outcome::Stopped(failure.clone()))
            }
            _ => Ok(Outcome::Applied),
        }
    }

    /// Applies `events` one per transaction, after the batch of them failed: `Some` with the
    /// outcome once an event fails (everything before it applied), `None` when none did.
    async fn one_by_one(
        &mut self,
        conn: &mut PgConnection,
        events: &[Envelope],
    ) -> Result<Option<Outcome>, RuntimeError> {
        for event in events {
            match self.try_batch(conn, std::slice::from_ref(event)).await {
                Ok(()) => {}
                Err(Attempt::Infrastructure(err)) => return Err(err),
                Err(Attempt::Event(err)) => return self.stop(conn, event, &err).await.map(Some),
            }
        }
        Ok(None)
    }

    async fn try_batch(
        &mut self,
        conn: &mut PgConnection,
        events: &[Envelope],
    ) -> Result<(), Attempt> {
        let Some(last) = events.last().map(|event| event.position) else {
            return Ok(());
        };
        if !events.iter().any(|event| self.projection.wants(event))
            || !self.projection.changes(self.target, events, &mut self.kept)
        {
            return self
                .pass_over(conn, events.len(), last)
                .await
                .map_err(Attempt::Infrastructure);
        }
        // A read model is derived data whose checkpoint commits with it: if a crash loses the
        // last commits, rows and checkpoint go back together and the events are applied again.
        // So projections need not wait for the WAL flush (the log's own appends still do): the
        // runner opens their connections with `synchronous_commit = off`.
        // Shadow tables grow from empty and are rewritten page after page faster than
        // autovacuum analyzes them, so the planner's statistics lag far behind and it would
        // scan whole tables to find a few hundred rows: projections look rows up by key. The
        // setting goes with the BEGIN, in one round trip.
        let begin = if self.target == Target::Shadow {
            "begin; set local enable_seqscan = off"
        } else {
            "begin; set local enable_seqscan = on"
        };
        let mut tx = conn
            .begin_with(begin)
            .await
            .map_err(|err| Attempt::Infrastructure(err.into()))?;
        // What was kept goes with this attempt: back only if it commits, dropped otherwise.
        let mut kept = std::mem::take(&mut self.kept);
        self.projection
            .apply_keeping(&mut tx, self.target, events, &mut kept)
            .await
            .map_err(Attempt::from_apply)?;
        let (from, passed) = self.stored();
        self.advance(&mut tx, from, last, passed + events.len() as u64)
            .await
            .map_err(Attempt::Infrastructure)?;
        tx.commit()
            .await
            .map_err(|err| Attempt::Infrastructure(err.into()))?;
        self.position = last;
        self.kept = kept;
        self.unstored = None;
        self.stored_at = Some(Instant::now());
        Ok(())
    }

    /// Moves the checkpoint over `count` events up to `last` that change nothing: one
    /// statement, no transaction around it, and on the live copy not more often than every
    /// [`IDLE_CHECKPOINT_GAP`].
    async fn pass_over(
        &mut self,
        conn: &mut PgConnection,
        count: usize,
        last: Position,
    ) -> Result<(), RuntimeError> {
        let unstored = self.unstored.get_or_insert(Unstored {
            stored: self.position,
            events: 0,
        });
        unstored.events += count as u64;
        self.position = last;
        let recent = self
            .stored_at
            .is_some_and(|at| at.elapsed() < IDLE_CHECKPOINT_GAP);
        if self.target == Target::Live && recent {
            return Ok(());
        }
        self.store(conn).await
    }

    /// The stored checkpoint, and how many events were passed over after it.
    fn stored(&self) -> (Position, u64) {
        self.unstored.map_or((self.position, 0), |unstored| {
            (unstored.stored, unstored.events)
        })
    }

    /// When the stored checkpoint, behind the applied position, should be stored: `None` when
    /// it is not behind.
    pub(super) fn store_due(&self) -> Option<Instant> {
        self.unstored?;
        Some(
            self.stored_at
                .map_or_else(Instant::now, |at| at + IDLE_CHECKPOINT_GAP),
        )
    }

    /// Stores the checkpoint at the applied position if it is behind, in one statement.
    pub(super) async fn store(&mut self, conn: &mut PgConnection) -> Result<(), RuntimeError> {
        if self.unstored.is_none() {
            return Ok(());
        }
        let (from, passed) = self.stored();
        self.advance(conn, from, self.position, passed).await?;
        self.unstored = None;
        self.stored_at = Some(Instant::now());
        Ok(())
    }

    /// Moves this copy's stored checkpoint from `from` to `last`, `seen` events on, on `conn`
    /// (the batch's transaction, or the connection itself when nothing else is written). When
    /// the checkpoint is no longer at `from`, another process moved it: this one no longer owns
    /// the projection, and the caller's transaction must not commit.
    async fn advance(
        &self,
        conn: &mut PgConnection,
        from: Position,
        last: Position,
        seen: u64,
    ) -> Result<(), RuntimeError> {
        let name = self.projection.name();
        if checkpoint::advance(conn, name, self.target, from, last, seen).await? {
            Ok(())
        } else {
            Err(RuntimeError::OwnershipLost {
                projection: name.to_owned(),
                target: self.target,
                expected: from,
            })
        }
    }

    async fn stop(
        &mut self,
        conn: &mut PgConnection,
        event: &Envelope,
        error: &ApplyError,
    ) -> Result<Outcome, RuntimeError> {
        let failure = Failure {
            position: event.position,
            event_id: event.event_id,
            event_type: event.event.event_type().to_owned(),
            error: error.to_string(),
            at: Utc::now(),
        };
        self.record(conn, &failure).await?;
        Ok(Outcome::Stopped(failure))
    }

    async fn record(
        &mut self,
        conn: &mut PgConnection,
        failure: &Failure,
    ) -> Result<(), RuntimeError> {
        // The checkpoint is stored up to the events before the failure, as without deferral.
        self.store(conn).await?;
        tracing::error!(
            projection = self.projection.name(),
            target = checkpoint::target_name(self.target),
            position = %failure.position,
            event_id = %failure.event_id,
            event_type = %failure.event_type,
            error = %failure.error,
            "projection stopped on an event it cannot apply; its checkpoint stays before it"
        );
        checkpoint::record_failure(conn, self.projection.name(), self.target, failure).await?;
        Ok(())
    }
}

/// Why one attempt at a batch failed: the events' fault or the infrastructure's.
enum Attempt {
    Event(ApplyError),
    Infrastructure(RuntimeError),
}

impl Attempt {
    /// A failed connection says nothing about the events; anything else the projection's
    /// statements met is put down to the events.
    fn from_apply(err: ApplyError) -> Self {
        match err {
            ApplyError::Database(err) if is_connection_failure(&err) => {
                Self::Infrastructure(err.into())
            }
            other => Self::Event(other),
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use chrono::TimeZone;
    use domain::settings::{GreetingSet, SettingsEvent};
    use domain::{AgentId, AnyEvent, StreamId};
    use eventlog::Actor;
    use futures::future::BoxFuture;
    use sqlx::PgPool;
    use uuid::Uuid;

    use super::*;

    /// A projection that writes nothing, so only its checkpoint moves.
    #[derive(Debug)]
    struct Nothing;

    impl Projection for Nothing {
        fn name(&self) -> &'static str {
            "nothing"
        }

        fn version(&self) -> u32 {
            1
        }

        fn tables(&self) -> &'static [&'static str] {
            &[]
        }

        fn apply<'a>(
            &'a self,
            _: &'a mut PgConnection,
            _: Target,
            _: &'a [Envelope],
        ) -> BoxFuture<'a, Result<(), ApplyError>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn event(seq: u64) -> Envelope {
        let at = Utc
            .timestamp_opt(1_700_000_000, 0)
            .single()
            .unwrap_or_default();
        Envelope {
            position: Position::from_parts(seq, seq),
            stream: StreamId::Settings,
            stream_version: seq,
            event_id: Uuid::now_v7(),
            recorded_at: at,
            actor: Actor::system("test"),
            event: AnyEvent::Settings(SettingsEvent::GreetingSet(GreetingSet {
                text: None,
                by: AgentId(Uuid::nil()),
                at,
            })),
        }
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_checkpoint_moved_by_another_process_means_ownership_was_lost(pool: PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        checkpoint::reset(&mut conn, "nothing", Target::Live, 1)
            .await
            .unwrap();
        let mut applier = Applier::new(Arc::new(Nothing), Target::Live, Position::START);
        let first = Decoded {
            events: vec![event(1)],
            poison: None,
        };
        assert!(matches!(
            applier.apply(&mut conn, &first).await,
            Ok(Outcome::Applied)
        ));

        // Another process moves the checkpoint on.
        let (from, to) = (Position::from_parts(1, 1), Position::from_parts(5, 5));
        let moved = checkpoint::advance(&mut conn, "nothing", Target::Live, from, to, 4);
        assert!(moved.await.unwrap());

        let second = Decoded {
            events: vec![event(2)],
            poison: None,
        };
        let err = applier.apply(&mut conn, &second).await.unwrap_err();
        assert!(
            matches!(&err, RuntimeError::OwnershipLost { projection, target: Target::Live, expected }
                if projection == "nothing" && *expected == from),
            "{err}"
        );
        assert!(!err.is_transient());
        let stored = checkpoint::load(&mut conn, "nothing", Target::Live).await;
        assert_eq!(stored.unwrap().unwrap().position, to, "nothing was written");
    }
}
