//! The read horizon: the transaction id below which every append has ended, computed from the
//! transactions that append to the log and nothing else on the server.
//!
//! # Why not the server's oldest transaction
//!
//! `pg_snapshot_xmin` is the oldest transaction id still running anywhere on the server. A
//! reader that stops there is safe, but a transaction writing to another table, or to another
//! database of the same server, then holds every subscription, projection and read-your-writes
//! wait back for as long as it stays open. Readers only need to wait for appends.
//!
//! # Registration (migration 0019)
//!
//! Before an appending transaction takes its transaction id, a statement-level trigger on
//! `events` and on `idempotency_keys` registers it: a shared transaction-level advisory lock of
//! class [`REGISTRY_CLASS`] whose second key is the low half of `b`, the xmax of the snapshot of
//! the registering statement. `b` is a lower bound of the id the transaction takes afterwards
//! (no id assigned after a snapshot is below its xmax). A transaction that already has an id
//! when it would register is refused: its id could be below a horizon a reader already used.
//! The lock is released when the transaction ends, after it left the server's list of running
//! transactions, so a snapshot taken after the release sees it ended.
//!
//! # The horizon
//!
//! [`HORIZON`] is one statement: its snapshot gives `x`, the xmax at its start (`t0`); then it
//! reads the registrations in `pg_locks` (`tL`, after `t0`; the lock table is read as one
//! consistent picture), and answers `H = min(x, every registered b)`. A later statement's read
//! (snapshot at `tS`, after `tL`) may take every row with `tx_id < H`. For any appending
//! transaction T with id below H:
//!
//! - T registered after `tL`: it took its id after `tL`, so its id is at least `x >= H`.
//!   Impossible.
//! - T was registered at `tL`: `H <= b(T) <= id(T)`. Impossible.
//! - So T had released its registration before `tL`: T ended before `tS`, and the read sees all
//!   of it (committed) or none (rolled back), for good.
//!
//! Nothing can ever commit below H, so H stays valid for every later read: a reader may keep the
//! largest horizon it learned and use `greatest(pg_snapshot_xmin, H)` (both are valid lines).
//! A long transaction holds readers back only if it appends; its age is reported
//! ([`oldest_append`]).
//!
//! # What a misbehaving session can do
//!
//! Any session of the database may take the lock itself, with any key: that can only lower
//! `H` (a key read as a bound beyond `x` is ignored), which delays readers and never skips an
//! event; the held-back report names its process. A session that sets the transaction-local
//! setting by hand and then appends skips its own registration: readers may then pass over
//! that transaction's own events (they stay in their streams), never over anyone else's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgConnection;

use super::encoded::backend;
use crate::Error;

/// The first key of the registration lock: `LDAP` (ledgerdesk append) as a big-endian `int4`.
/// Migration 0019 uses the same number.
pub const REGISTRY_CLASS: i32 = i32::from_be_bytes(*b"LDAP");

/// The registrations of this database's appenders, as rows of `pg_locks` (all of them, also
/// those still waiting for the lock: they registered before taking an id all the same).
macro_rules! registrations {
    () => {
        "select l.pid, l.objid from pg_locks l \
          where l.locktype = 'advisory' and l.classid = 1279541584 and l.objsubid = 2 \
            and l.database = (select d.oid from pg_database d where d.datname = current_database())"
    };
}

/// The horizon, see the module docs. The bound `b` comes back from its low 32 bits next to
/// `x`: transaction ids in use are less than 2^31 apart, so `b` is `x - d` with `d`, the
/// distance modulo 2^32, below 2^31 (a larger `d` means `b` is beyond `x`, and `x` bounds `H`
/// anyway).
const HORIZON: &str = concat!(
    "select least(s.x, min(s.x - r.d) filter (where r.d < 2147483648))::bigint \
       from (select pg_snapshot_xmax(pg_current_snapshot())::text::bigint as x) as s \
       left join lateral ( \
           select ((s.x - reg.objid::bigint) % 4294967296 + 4294967296) % 4294967296 as d \
             from (",
    registrations!(),
    ") as reg) as r on true \
      group by s.x"
);

/// Refreshes closer together than this reuse the last horizon: reading `pg_locks` takes the
/// server's lock table for a moment, and a busy process has several readers held back at once.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(5);

/// The largest horizon this log learned, shared by its readers.
#[derive(Debug)]
pub(super) struct Horizon {
    known: AtomicI64,
    /// When the last refresh started (`None`: never); held while one runs, so concurrent
    /// readers share it.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl Horizon {
    pub(super) fn new() -> Self {
        Horizon {
            known: AtomicI64::new(0),
            last_refresh: tokio::sync::Mutex::new(None),
        }
    }

    /// The largest horizon learned so far (0: none yet). Valid for any read from now on.
    pub(super) fn known(&self) -> i64 {
        self.known.load(Ordering::Acquire)
    }

    /// Computes the horizon again on `conn`, unless a refresh started after this call began or
    /// less than [`MIN_REFRESH_INTERVAL`] ago; answers the largest horizon known then.
    pub(super) async fn refresh(&self, conn: &mut PgConnection) -> Result<i64, Error> {
        let asked = Instant::now();
        let mut last = self.last_refresh.lock().await;
        if let Some(started) = *last
            && (started >= asked || started.elapsed() < MIN_REFRESH_INTERVAL)
        {
            return Ok(self.known());
        }
        *last = Some(Instant::now());
        let horizon: i64 = sqlx::query_scalar(HORIZON)
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?;
        self.known.fetch_max(horizon, Ordering::AcqRel);
        Ok(self.known())
    }
}

/// The oldest transaction that holds the log's readers back: an append still running.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldBackBy {
    /// The server process running it (`None` for a prepared transaction).
    pub pid: Option<i32>,
    /// The database it runs in.
    pub database: String,
    /// How long its transaction has been running: since it started when the serving role
    /// may see that (its own sessions, or with `pg_read_all_stats`), else at least since this
    /// process first saw it.
    pub age: Duration,
}

/// When this process first saw each registration still present, so that an append whose
/// session it may not look into (`pg_stat_activity` hides the transaction start of other
/// roles' sessions) still ages.
#[derive(Debug, Default)]
pub(super) struct Sightings {
    first_seen: std::sync::Mutex<HashMap<(Option<i32>, i64), Instant>>,
}

/// The oldest transaction of this database registered as an append and still running, if any:
/// events appended after it started stay unreadable until it ends. Its age is the time since
/// its transaction started when `pg_stat_activity` shows it, and at least the time since
/// `sightings` first saw it.
pub(super) async fn oldest_append(
    conn: &mut PgConnection,
    sightings: &Sightings,
) -> Result<Option<HeldBackBy>, Error> {
    // pid, lock key, seconds open (null when hidden), database
    let rows: Vec<(Option<i32>, i64, Option<f64>, String)> = sqlx::query_as(concat!(
        "select reg.pid, reg.objid::bigint, \
                extract(epoch from clock_timestamp() - coalesce(a.xact_start, \
                    case when reg.pid is null then \
                        (select min(p.prepared) from pg_prepared_xacts p \
                          where p.database = current_database()) end))::float8, \
                current_database()::text \
           from (",
        registrations!(),
        ") as reg \
           left join pg_stat_activity a on a.pid = reg.pid"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let now = Instant::now();
    // A poisoned lock only means another reader panicked mid-update: the map is still usable.
    let mut first_seen = sightings
        .first_seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    first_seen.retain(|key, _| rows.iter().any(|(pid, objid, ..)| (*pid, *objid) == *key));
    let mut oldest: Option<HeldBackBy> = None;
    for (pid, objid, seconds, database) in rows {
        let seen = *first_seen.entry((pid, objid)).or_insert(now);
        let shown = Duration::from_secs_f64(seconds.unwrap_or(0.0).max(0.0));
        let age = shown.max(now.duration_since(seen));
        if oldest.as_ref().is_none_or(|o| age > o.age) {
            oldest = Some(HeldBackBy { pid, database, age });
        }
    }
    Ok(oldest)
}
