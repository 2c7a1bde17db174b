//! One owner per projection: a projection's task opens a connection of its own and takes the
//! projection's session advisory lock on it; every write of the projection then goes through
//! that connection. Closing the connection (or losing it) releases the lock. The lock itself is
//! `app::ownership`'s, shared with the bot's delivery worker.

use app::ownership::{self, LockClass, LockKey};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::error::RuntimeError;
use super::stop::pause;

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
    ownership::try_lock(conn, LockKey::new(LockClass::PROJECTION, projection)).await
}

/// Waits until this process owns `projection`, trying every `retry`: the connection holding its
/// lock, or `None` when shutdown comes first.
pub(super) async fn take(
    pool: &PgPool,
    projection: &str,
    stop: &CancellationToken,
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
        if pause(stop, retry).await {
            return Ok(None);
        }
    }
    Ok(Some(conn))
}
