//! One projection held by this process: the connection that holds its lock and carries all its
//! writes, and both copies of its tables (live and shadow), each with its checkpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::{EventLog, Position};
use sqlx::{Connection, PgConnection};

use super::applier::{Applier, Decoded, Outcome};
use super::error::RuntimeError;
use super::shadow;
use crate::batch::Target;
use crate::checkpoint;
use crate::projection::{Kept, Projection};

/// How often a rebuilding projection brings its live copy up to date.
const LIVE_REFRESH_DURING_REBUILD: Duration = Duration::from_millis(250);

/// One projection held by this process: its connection (which holds the lock) and both copies.
pub(super) struct Member {
    pub(super) conn: PgConnection,
    pub(super) live: Applier,
    pub(super) live_version: u32,
    /// The live copy stopped on an event during a rebuild; the swap replaces it.
    pub(super) live_stopped: bool,
    /// When the live copy last caught up during a rebuild.
    live_refreshed: Option<Instant>,
    pub(super) shadow: Applier,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("live", &self.live)
            .field("shadow", &self.shadow)
            .finish_non_exhaustive()
    }
}

impl Member {
    /// Takes a projection whose lock `conn` holds; creates its live checkpoint on first run.
    pub(super) async fn open(
        projection: &Arc<dyn Projection>,
        mut conn: PgConnection,
    ) -> Result<Self, RuntimeError> {
        let name = projection.name();
        let live = match checkpoint::load(&mut conn, name, Target::Live).await? {
            Some(live) => live,
            None => {
                // First run: the migrations created the tables empty; fill them in place.
                checkpoint::reset(&mut conn, name, Target::Live, projection.version()).await?;
                checkpoint::load(&mut conn, name, Target::Live)
                    .await?
                    .ok_or(sqlx::Error::RowNotFound)?
            }
        };
        Ok(Member {
            conn,
            live: Applier::new(Arc::clone(projection), Target::Live, live.position),
            live_version: live.version,
            live_stopped: false,
            live_refreshed: None,
            shadow: Applier::new(Arc::clone(projection), Target::Shadow, Position::START),
        })
    }

    pub(super) fn projection(&self) -> Arc<dyn Projection> {
        Arc::clone(&self.live.projection)
    }

    pub(super) fn name(&self) -> &'static str {
        self.live.projection.name()
    }

    /// Whether the live tables were built by another version of the code, or someone asked
    /// for a rebuild.
    pub(super) async fn needs_rebuild(&mut self) -> Result<bool, RuntimeError> {
        Ok(self.live_version != self.live.projection.version() || self.rebuild_requested().await?)
    }

    /// Whether someone asked for a rebuild that has not happened yet.
    pub(super) async fn rebuild_requested(&mut self) -> Result<bool, RuntimeError> {
        let name = self.name();
        Ok(checkpoint::rebuild_requested(&mut self.conn, name)
            .await?
            .is_some())
    }

    /// Resumes an interrupted rebuild of the same version, or starts a fresh shadow copy.
    pub(super) async fn prepare_shadow(&mut self) -> Result<(), RuntimeError> {
        let projection = self.projection();
        let existing = checkpoint::load(&mut self.conn, projection.name(), Target::Shadow).await?;
        self.shadow.position = match existing {
            Some(shadow) if shadow.version == projection.version() => {
                tracing::info!(projection = projection.name(), from = %shadow.position,
                    "resuming an interrupted rebuild");
                shadow.position
            }
            _ => {
                let mut tx = self.conn.begin().await?;
                shadow::create(&mut tx, projection.as_ref()).await?;
                let version = projection.version();
                checkpoint::reset(&mut tx, projection.name(), Target::Shadow, version).await?;
                tx.commit().await?;
                Position::START
            }
        };
        self.shadow.kept = Kept::default();
        self.shadow.unstored = None;
        Ok(())
    }

    /// Drops a shadow copy left by a rebuild that is no longer wanted.
    pub(super) async fn discard_shadow(&mut self) -> Result<(), RuntimeError> {
        let projection = self.projection();
        let name = projection.name();
        if checkpoint::load(&mut self.conn, name, Target::Shadow)
            .await?
            .is_none()
        {
            return Ok(());
        }
        let mut tx = self.conn.begin().await?;
        shadow::drop_all(&mut tx, projection.as_ref()).await?;
        checkpoint::delete(&mut tx, name, Target::Shadow).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reads up to `limit` events after the live checkpoint and applies them to the live copy.
    /// Also says whether the page was short (the live copy reached the head).
    pub(super) async fn live_page<L: EventLog>(
        &mut self,
        log: &L,
        limit: usize,
    ) -> Result<(Outcome, bool), RuntimeError> {
        let page = log.read_all(self.live.position, limit).await?;
        let short = page.events.len() < limit;
        let decoded = Decoded::from_recorded(page.events);
        let outcome = self.live.apply(&mut self.conn, &decoded).await?;
        Ok((outcome, short))
    }

    /// While a rebuild runs, readers keep seeing new events in the live tables.
    pub(super) async fn keep_live_current<L: EventLog>(
        &mut self,
        log: &L,
        limit: usize,
    ) -> Result<(), RuntimeError> {
        // A few times a second is current enough for readers, and leaves the rebuild alone.
        let fresh = self
            .live_refreshed
            .is_some_and(|at| at.elapsed() < LIVE_REFRESH_DURING_REBUILD);
        if self.live_stopped || fresh {
            return Ok(());
        }
        self.live_refreshed = Some(Instant::now());
        if let (Outcome::Stopped(_), _) = self.live_page(log, limit).await? {
            // The rebuild goes on: its swap replaces the stuck live copy.
            self.live_stopped = true;
        }
        Ok(())
    }

    /// After a swap: the live tables are now the shadow copy, at `position`, and what either
    /// copy kept is out of date.
    pub(super) fn swapped_in(&mut self, position: Position) {
        self.live.position = position;
        self.live.unstored = None;
        self.live.kept = Kept::default();
        self.live_version = self.live.projection.version();
        self.live_stopped = false;
        self.shadow.position = Position::START;
        self.shadow.kept = Kept::default();
    }
}
