//! Databases of a test's own on the server `DATABASE_URL` names, dropped with the value that
//! holds them, also when the test fails.
//!
//! [`DatabaseName`] reserves a name and drops whatever database of that name exists when it is
//! dropped; it creates nothing (for the tests that prove a command creates its database).
//! [`TestDatabase`] is such a database, created and migrated through [`app::database`], with a
//! small pool on it.
//!
//! Dropping is synchronous, so it also runs while a panicking test unwinds. A test runs inside
//! a tokio runtime, on which no blocking wait for async work is allowed, so the drop runs on a
//! thread of its own with a current-thread runtime, and the dropping thread joins it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::{Connection, Executor, PgConnection};

/// The longest database name Postgres keeps (longer ones are cut, so two could meet).
const LONGEST_NAME: usize = 63;

/// Connections in the pool of a [`TestDatabase`].
const POOL_SIZE: u32 = 5;

/// Counts the names this process handed out, so two taken in the same instant differ.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// The URL of the server tests create their databases on: `DATABASE_URL`, a superuser
/// connection to any existing database of that server.
///
/// # Panics
/// When `DATABASE_URL` is not set.
#[must_use]
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").expect(
        "DATABASE_URL must name a Postgres superuser connection \
         (e.g. postgres://postgres@127.0.0.1:5432/postgres)",
    )
}

/// The name of a database on the test server, reserved for one test. Nothing is created; the
/// database of this name, if anyone created it meanwhile, is dropped (`with (force)`, so open
/// connections do not keep it) when this value is dropped, unless [`DatabaseName::keep`] was
/// called.
#[derive(Debug)]
pub struct DatabaseName {
    name: String,
    url: String,
    kept: bool,
}

impl DatabaseName {
    /// A name no other test uses: `ledgerdesk_test_<tag>_<process>_<count>_<time>`, with the
    /// tag shortened to keep the name within Postgres' 63 characters.
    #[must_use]
    pub fn fresh(tag: &str) -> DatabaseName {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_micros() % 1_000_000_000_000);
        let suffix = format!(
            "_{}_{}_{stamp}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let prefix = "ledgerdesk_test_";
        let room = LONGEST_NAME.saturating_sub(prefix.len() + suffix.len());
        let tag: String = tag
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(room)
            .collect();
        DatabaseName::named(&format!("{prefix}{tag}{suffix}"))
    }

    /// The name `name` itself (a benchmark's database, which a later run may reuse).
    ///
    /// # Panics
    /// Unless `name` is 1 to 63 lowercase ASCII letters, digits and `_`, starting with a letter
    /// or `_`: it goes into SQL unquoted.
    #[must_use]
    pub fn named(name: &str) -> DatabaseName {
        let valid = !name.is_empty()
            && name.len() <= LONGEST_NAME
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        assert!(
            valid,
            "a database name takes 1 to {LONGEST_NAME} lowercase ASCII letters, digits and _, \
             not starting with a digit: {name:?}"
        );
        DatabaseName {
            url: url_for(&server_url(), name),
            name: name.to_owned(),
            kept: false,
        }
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server URL with the database's name in place of the server's.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The options of a connection to the database, as Ledgerdesk connects
    /// ([`app::database::connect_options`]).
    ///
    /// # Panics
    /// When the URL does not parse (`DATABASE_URL` is not a Postgres URL).
    #[must_use]
    pub fn connect_options(&self) -> PgConnectOptions {
        app::database::connect_options(&self.url).expect("DATABASE_URL is a valid Postgres URL")
    }

    /// Creates the database (dropping any of that name first: a run that was killed may have
    /// left it behind), migrates it and opens a small pool on it.
    ///
    /// # Panics
    /// When the server refuses any of it.
    pub async fn create(self) -> TestDatabase {
        self.drop_now().await;
        let mut admin = admin_connection().await;
        admin
            .execute(format!("create database {}", self.name).as_str())
            .await
            .unwrap_or_else(|err| panic!("cannot create the database {}: {err}", self.name));
        // A connection's close is best effort: the server ends the session either way.
        let _ = admin.close().await;
        self.open().await
    }

    /// Opens a small pool on the database, which must exist already (a benchmark reusing the
    /// one a former run kept), and applies any migration it lacks.
    ///
    /// # Panics
    /// When the database cannot be reached or migrated.
    pub async fn open(self) -> TestDatabase {
        let pool = app::database::pool_options(POOL_SIZE)
            .connect_with(self.connect_options())
            .await
            .unwrap_or_else(|err| panic!("cannot connect to the database {}: {err}", self.name));
        app::database::migrate(&pool)
            .await
            .unwrap_or_else(|err| panic!("cannot migrate the database {}: {err}", self.name));
        TestDatabase { pool, name: self }
    }

    /// Drops the database now, if it exists; the value still drops it (again, if someone
    /// created it anew) when it goes.
    ///
    /// # Panics
    /// When the server refuses.
    pub async fn drop_now(&self) {
        if let Err(err) = drop_database(&self.name).await {
            panic!("cannot drop the database {}: {err}", self.name);
        }
    }

    /// Another name for the same database that never drops it: for a second server on the
    /// database of a test (this value still drops it).
    #[must_use]
    pub fn alias(&self) -> DatabaseName {
        DatabaseName {
            name: self.name.clone(),
            url: self.url.clone(),
            kept: true,
        }
    }

    /// Keeps the database when this value goes (a benchmark's, kept for a later run); returns
    /// its URL.
    #[must_use]
    pub fn keep(mut self) -> String {
        self.kept = true;
        std::mem::take(&mut self.url)
    }
}

impl Drop for DatabaseName {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?;
            runtime
                .block_on(drop_database(&name))
                .map_err(|err| err.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("the thread dropping it panicked".to_owned()));
        if let Err(err) = dropped {
            let message = format!("cannot drop the test database {}: {err}", self.name);
            // A second panic while the test unwinds would abort the whole test binary.
            if std::thread::panicking() {
                eprintln!("{message}");
            } else {
                panic!("{message}");
            }
        }
    }
}

/// A fresh database of one test, migrated, with a small pool on it. Dropped (the database
/// itself, on the server) with this value, also when the test panics.
#[derive(Debug)]
pub struct TestDatabase {
    // Declared first, so it goes before the database does.
    pool: PgPool,
    name: DatabaseName,
}

impl TestDatabase {
    /// A new, migrated database whose name no other test uses (see [`DatabaseName::fresh`]).
    ///
    /// # Panics
    /// When the server refuses to create or migrate it.
    pub async fn fresh(tag: &str) -> TestDatabase {
        DatabaseName::fresh(tag).create().await
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.name.name()
    }

    /// Its URL.
    #[must_use]
    pub fn url(&self) -> &str {
        self.name.url()
    }

    /// A small pool on it.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Another pool on it, of up to `max_connections`, set up as Ledgerdesk sets up its own
    /// ([`app::database::pool_options`]).
    ///
    /// # Panics
    /// When the database cannot be reached.
    pub async fn connect(&self, max_connections: u32) -> PgPool {
        app::database::pool_options(max_connections)
            .connect_with(self.name.connect_options())
            .await
            .unwrap_or_else(|err| panic!("cannot connect to the database {}: {err}", self.name()))
    }

    /// The database's options of a connection (see [`DatabaseName::connect_options`]).
    #[must_use]
    pub fn connect_options(&self) -> PgConnectOptions {
        self.name.connect_options()
    }

    /// Closes the pool and gives back the name, which still drops the database when it goes:
    /// for a test that runs something else on the database next.
    pub async fn close(self) -> DatabaseName {
        self.pool.close().await;
        self.name
    }

    /// Keeps the database when this value goes; returns its URL.
    #[must_use]
    pub fn keep(self) -> String {
        self.name.keep()
    }
}

/// `server` (a Postgres URL) with `database` in place of its database name; any query string
/// stays.
fn url_for(server: &str, database: &str) -> String {
    let mut url =
        url::Url::parse(server).unwrap_or_else(|err| panic!("DATABASE_URL is not a URL ({err})"));
    url.set_path(&format!("/{database}"));
    url.into()
}

/// A connection to the server's own database, for creating and dropping others.
async fn admin_connection() -> PgConnection {
    let options = app::database::connect_options(&server_url())
        .expect("DATABASE_URL is a valid Postgres URL");
    PgConnection::connect_with(&options)
        .await
        .expect("cannot connect to the server DATABASE_URL names")
}

/// How long [`drop_database`] keeps trying: the server may refuse a connection for a while
/// (all its connection slots taken by tests running beside this one), or a session that
/// opens while the drop runs may make it fail.
const DROP_PATIENCE: Duration = Duration::from_secs(20);

/// Drops the database `name` if it exists, ending its sessions; tries again, with pauses
/// growing from 50 ms to a second, for up to [`DROP_PATIENCE`].
async fn drop_database(name: &str) -> Result<(), sqlx::Error> {
    let options = app::database::connect_options(&server_url())?;
    let statement = format!("drop database if exists {name} with (force)");
    let deadline = tokio::time::Instant::now() + DROP_PATIENCE;
    let mut pause = Duration::from_millis(50);
    loop {
        let attempt = async {
            let mut admin = PgConnection::connect_with(&options).await?;
            let dropped = admin.execute(statement.as_str()).await.map(drop);
            // A connection's close is best effort: the server ends the session either way.
            let _ = admin.close().await;
            dropped
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(err) if tokio::time::Instant::now() + pause > deadline => return Err(err),
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}
