//! The whole of Ledgerdesk ([`ledgerdesk::Application`]) running inside the test, on a free
//! port of 127.0.0.1 and a database of the test's own.

use std::net::SocketAddr;

use ledgerdesk::{Application, ServingRole, Settings, serving_url};
use secrecy::SecretString;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::database::DatabaseName;

/// Connections of the pool a [`TestApp`] opens for the test, beside the application's own.
const POOL_SIZE: u32 = 10;

/// A running Ledgerdesk. [`TestApp::stop`] stops it and waits for it; dropping it (a test that
/// panicked) only tells it to stop, and its database goes with it either way.
#[derive(Debug)]
pub struct TestApp {
    addr: SocketAddr,
    pool: PgPool,
    running: Running,
    // Declared last, so the database goes after the application was told to stop.
    database: DatabaseName,
}

/// The application's task, told to stop when this value goes.
#[derive(Debug)]
struct Running {
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.server).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => panic!("the application stopped with an error: {err:#}"),
            Err(err) => panic!("the application panicked: {err}"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestApp {
    /// The settings of a test server on `database`: migrated as the test server's superuser,
    /// served as the default serving role (`ledgerdesk_app`, which trust authentication lets
    /// in), any free port of 127.0.0.1, ten connections, the default API settings, no bot.
    #[must_use]
    pub fn settings(database: &DatabaseName) -> Settings {
        let owner = SecretString::from(database.url());
        let role = ServingRole::default_role();
        Settings {
            serving_database_url: serving_url(&owner, &role)
                .expect("the test server's URL is a URL"),
            database_url: owner,
            serving_role: role,
            migrate_on_start: true,
            db_max_connections: 10,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            log_held_back_warn: std::time::Duration::from_secs(10),
            api: api::ApiConfig::default(),
            bot: None,
            command_retry_budget: app::commands::DEFAULT_RETRY_BUDGET,
            // Tests that anchor the log do it themselves, with a key of their own.
            anchor: None,
        }
    }

    /// Builds Ledgerdesk with [`TestApp::settings`] changed by `configure`, and runs it. As in
    /// production, the application creates and migrates its database when it does not exist
    /// yet.
    ///
    /// # Panics
    /// When the application fails to build.
    pub async fn spawn(database: DatabaseName, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = TestApp::settings(&database);
        configure(&mut settings);
        let app = Application::build(settings)
            .await
            .unwrap_or_else(|err| panic!("the application does not start: {err:#}"));
        let addr = app.local_addr().expect("a bound listener has an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let pool = app::database::pool_options(POOL_SIZE)
            .connect_with(database.connect_options())
            .await
            .unwrap_or_else(|err| panic!("cannot connect to {}: {err}", database.name()));
        TestApp {
            addr,
            pool,
            running: Running {
                stop: Some(stop),
                server,
            },
            database,
        }
    }

    /// The address the application serves on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr><path>`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A small pool of the test's own on the application's database.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The application's database.
    #[must_use]
    pub fn database(&self) -> &DatabaseName {
        &self.database
    }

    /// Stops the application, waits until it has stopped and closes the test's pool; gives
    /// back the database, for another start on it (dropping it drops the database).
    ///
    /// # Panics
    /// When the application stopped with an error or panicked.
    pub async fn stop(self) -> DatabaseName {
        let TestApp {
            pool,
            running,
            database,
            ..
        } = self;
        running.stop().await;
        pool.close().await;
        database
    }
}
