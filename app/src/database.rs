//! The one Postgres database of Ledgerdesk (the event log and the read models): how to connect
//! to it, its migrations, and whether it is ready to serve.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgSslMode};

/// The database migrations of Ledgerdesk (event log and read models).
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Why the database cannot serve yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The database does not answer (or the schema is missing entirely).
    #[error("database unreachable")]
    DatabaseUnreachable,
    /// Migrations are still to run (`ledgerdesk migrate`).
    #[error("{applied} of {known} migrations applied")]
    MigrationsPending {
        /// Applied so far.
        applied: usize,
        /// Known to this build.
        known: usize,
    },
}

/// Opens a pool on `url`, creating the database first when it does not exist yet. Connections
/// are made with [`connect_options`].
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    use sqlx::migrate::MigrateDatabase;
    if !sqlx::Postgres::database_exists(url).await? {
        tracing::info!("database does not exist yet; creating it");
        sqlx::Postgres::create_database(url).await?;
    }
    pool_options(max_connections)
        .connect_with(connect_options(url)?)
        .await
}

/// Opens a pool on `url`, whose database must exist (a role that may not create databases
/// connects this way). Connections are made with [`connect_options`].
pub async fn connect_existing(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    pool_options(max_connections)
        .connect_with(connect_options(url)?)
        .await
}

/// A connection idle for this long is pinged before it is handed out again.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// The pool settings of [`connect`]: at most `max_connections`, a 10 s wait for a free one,
/// and a liveness ping only for a connection that sat idle for a second or more. sqlx pings
/// every connection it hands out by default, one extra round trip per statement or
/// transaction; a connection that answered within the last second is taken as alive (a
/// statement on one that died meanwhile fails with the database error, as it would a moment
/// after any ping).
pub fn pool_options(max_connections: u32) -> sqlx::postgres::PgPoolOptions {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// The connection options of `url`. A server on this machine (a loopback address, or a Unix
/// socket) is reached without TLS unless the URL or `PGSSLMODE` names an `sslmode`: encrypting
/// loopback traffic protects nothing, yet costs both ends CPU on every statement, and sqlx's
/// default mode (`prefer`) would take TLS whenever the server offers it, without checking the
/// server's certificate. Any other host keeps whatever the URL says (`prefer` by default).
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    let mode_asked = url.contains("sslmode=") || std::env::var_os("PGSSLMODE").is_some();
    if mode_asked || !is_this_machine(options.get_host()) {
        return Ok(options);
    }
    Ok(options.ssl_mode(PgSslMode::Disable))
}

fn is_this_machine(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Whether the database can serve: it answers and every migration of this build is applied.
pub async fn readiness(pool: &PgPool) -> Result<(), NotReady> {
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(pool)
        .await
        .map_err(|err| {
            tracing::debug!(error = %err, "readiness query failed");
            NotReady::DatabaseUnreachable
        })?;
    let known = MIGRATOR.iter().count();
    if usize::try_from(applied).unwrap_or(0) < known {
        return Err(NotReady::MigrationsPending {
            applied: usize::try_from(applied).unwrap_or(0),
            known,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::postgres::PgSslMode;

    use super::connect_options;

    /// The mode, named (the type has no equality).
    fn mode(url: &str) -> String {
        connect_options(url)
            .map(|options| format!("{:?}", options.get_ssl_mode()))
            .unwrap_or_else(|err| err.to_string())
    }

    fn named(mode: PgSslMode) -> String {
        format!("{mode:?}")
    }

    #[test]
    fn a_server_on_this_machine_is_reached_without_tls_unless_the_url_asks() {
        if std::env::var_os("PGSSLMODE").is_some() {
            // The environment names a mode: it applies everywhere, as with libpq.
            assert_eq!(
                mode("postgres://u@127.0.0.1/db"),
                mode("postgres://u@db.example/db")
            );
            return;
        }
        for local in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]:5432/db",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/db",
        ] {
            assert_eq!(mode(local), named(PgSslMode::Disable), "{local}");
        }
        assert_eq!(
            mode("postgres://u@db.example:5432/db"),
            named(PgSslMode::Prefer)
        );
        assert_eq!(mode("postgres://u@10.0.0.7/db"), named(PgSslMode::Prefer));
        assert_eq!(
            mode("postgres://u@127.0.0.1/db?sslmode=require"),
            named(PgSslMode::Require)
        );
    }
}
