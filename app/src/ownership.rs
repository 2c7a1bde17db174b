//! "One owner per database": the singletons of Ledgerdesk (each projection, the bot's delivery
//! worker, the broadcast scheduler) run in one process at a time, however many processes share the database.
//!
//! A singleton's owner holds a Postgres session advisory lock, taken with [`try_lock`] on a
//! connection of its own that it keeps for as long as it owns the thing. Whoever must not
//! write after losing ownership does its writes on that same connection: when the process dies
//! or its connection breaks, Postgres releases the lock with the session, and the writes can
//! no longer go through either, so two owners never write at once. The owner gives the
//! ownership up by closing the connection ([`release`]); another process standing by takes it
//! on its next [`try_lock`].
//!
//! A lock's key is two 32-bit numbers: a [`LockClass`] naming the kind of singleton, and a
//! number for the one of that kind, the hash of its name ([`LockKey::new`]).

use sqlx::{Connection, PgConnection};

/// The kind of singleton a lock is for: the first half of its key, four ASCII letters read as
/// a big-endian number, so the locks of Ledgerdesk are easy to tell apart in `pg_locks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockClass(i32);

impl LockClass {
    /// The projections: one lock per read model, keyed by the projection's name (`LDPR`).
    pub const PROJECTION: LockClass = LockClass::from_tag(*b"LDPR");
    /// The bot's delivery worker (`LDDL`).
    pub const DELIVERY: LockClass = LockClass::from_tag(*b"LDDL");
    /// The scheduler that starts scheduled broadcasts (`LDSC`).
    pub const SCHEDULER: LockClass = LockClass::from_tag(*b"LDSC");

    /// The class named by four letters.
    #[must_use]
    pub const fn from_tag(tag: [u8; 4]) -> Self {
        LockClass(i32::from_be_bytes(tag))
    }

    /// The class as the first key of `pg_try_advisory_lock(int, int)`.
    #[must_use]
    pub const fn id(self) -> i32 {
        self.0
    }
}

/// The key of one singleton's advisory lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockKey {
    class: LockClass,
    object: i32,
}

impl LockKey {
    /// The lock of the singleton `name` of `class`: the second half of the key is the name's
    /// 32-bit FNV-1a hash, the same on every build and platform (processes of different
    /// builds must agree on it).
    #[must_use]
    pub fn new(class: LockClass, name: &str) -> Self {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in name.bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        LockKey {
            class,
            object: i32::from_ne_bytes(hash.to_ne_bytes()),
        }
    }

    /// A lock whose second half is a fixed number rather than a name's hash, for a key that is
    /// already deployed under that number: a running process of an older build must keep
    /// meeting the lock a newer one takes, or both would own the singleton during an upgrade.
    #[must_use]
    pub const fn numbered(class: LockClass, object: i32) -> Self {
        LockKey { class, object }
    }

    /// The two numbers of `pg_try_advisory_lock(int, int)`.
    #[must_use]
    pub const fn parts(self) -> (i32, i32) {
        (self.class.0, self.object)
    }
}

/// Takes the lock `key` on `conn` if no other session holds it, without waiting: `true` when
/// this connection owns it now (or owned it already), `false` when another does. The owner
/// keeps `conn` for as long as it owns the singleton, and gives the ownership up by closing
/// it ([`release`]).
///
/// # Errors
/// The database's error; the lock is not held then.
pub async fn try_lock(conn: &mut PgConnection, key: LockKey) -> Result<bool, sqlx::Error> {
    let (class, object) = key.parts();
    sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(class)
        .bind(object)
        .fetch_one(conn)
        .await
}

/// Gives up every lock held on `conn` by closing it: the session ends and Postgres releases
/// its advisory locks. A connection taken from a pool must be detached from it first
/// (`PoolConnection::detach`), or the pool would keep the session and the lock alive. A
/// failure to close is only logged: the server ends the session when the socket goes away.
pub async fn release(conn: PgConnection) {
    if let Err(error) = conn.close().await {
        tracing::debug!(%error, "closing an owner's connection failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_their_four_letters() {
        assert_eq!(LockClass::PROJECTION.id(), 0x4c44_5052);
        assert_eq!(LockClass::DELIVERY.id(), 0x4c44_444c);
        assert_eq!(LockClass::SCHEDULER.id(), 0x4c44_5343);
    }

    #[test]
    fn named_keys_are_stable_and_distinct() {
        let tickets = LockKey::new(LockClass::PROJECTION, "tickets");
        // The value deployed processes use: it must never change.
        assert_eq!(tickets.parts(), (0x4c44_5052, -1_169_181_406));
        assert_eq!(tickets, LockKey::new(LockClass::PROJECTION, "tickets"));
        assert_ne!(
            tickets.parts().1,
            LockKey::new(LockClass::PROJECTION, "customers").parts().1
        );
        assert_ne!(tickets, LockKey::new(LockClass::DELIVERY, "tickets"));
    }
}
