//! One owner per projection: a projection's task opens a connection of its own and takes the
//! projection's session advisory lock on it; every write of the projection then goes through
//! that connection. Closing the connection (or losing it) releases the lock.

use sqlx::{Connection, PgConnection, PgPool};

use super::error::RuntimeError;
use super::stop::Stop;

/// A connection of a projection's own. Nothing on it waits for the WAL flush: read models are
/// derived data whose checkpoint commits with them (see `applier.rs`), and a checkpoint moved
/// alone is only a position a restart reads again from.
pub(super) async fn connect(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let options = (*pool.connect_options())
        .clone()
        .options([("synchronous_commit", "off")]);
    PgConnection::connect_with(&options).await
}

/// Takes the projection's lock on `conn` if no other session holds it; `true` when taken.
pub(super) async fn try_own(
    conn: &mut PgConnection,
    projection: &str,
) -> Result<bool, sqlx::Error> {
    let (class, object) = lock_key(projection);
    sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(class)
        .bind(object)
        .fetch_one(conn)
        .await
}

/// The advisory lock key of a projection: a constant class for Ledgerdesk projections and a
/// hash of the name.
fn lock_key(name: &str) -> (i32, i32) {
    // FNV-1a, 32 bits: stable across builds and platforms.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (0x4c44_5052, i32::from_ne_bytes(hash.to_ne_bytes()))
}

/// Waits until this process owns `projection`, trying every `retry`: the connection holding its
/// lock, or `None` when shutdown comes first.
pub(super) async fn take(
    pool: &PgPool,
    projection: &str,
    stop: &mut Stop,
    retry: std::time::Duration,
) -> Result<Option<PgConnection>, RuntimeError> {
    let mut conn = connect(pool).await?;
    let mut announced = false;
    while !try_own(&mut conn, projection).await? {
        if !announced {
            tracing::info!(
                projection,
                "another process runs this projection; standing by"
            );
            announced = true;
        }
        if stop.pause(retry).await {
            return Ok(None);
        }
    }
    Ok(Some(conn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("tickets"), lock_key("tickets"));
        assert_ne!(lock_key("tickets").1, lock_key("customers").1);
        assert_eq!(lock_key("tickets").0, 0x4c44_5052);
    }
}
