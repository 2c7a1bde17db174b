//! The `ledgerdesk` binary end to end: the real server on a random port against a real
//! Postgres (a database of its own per test), and the real executable's command line.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use eventlog::postgres::PostgresLog;
use eventlog::{EventLog, Position};
use sqlx::{Executor, PgPool};
use testkit::{DatabaseName, TestApp, eventually};

mod audit;
mod broadcast_crash;
mod erasure;
mod held_back;
mod roles;

/// How long a test waits for the server to catch up with a generated history.
const PATIENCE: Duration = Duration::from_secs(60);

/// Ledgerdesk on `database`, with a small pool of its own.
async fn serve(database: DatabaseName) -> TestApp {
    TestApp::spawn(database, |settings| settings.db_max_connections = 5).await
}

async fn get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn serve_creates_and_migrates_its_database_then_reports_healthy_and_ready() {
    let running = serve(DatabaseName::fresh("serve")).await;

    let (status, body) = get(running.addr(), "/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = get(running.addr(), "/readyz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));

    // The schema is in place: the event log accepts nothing but appends.
    let err = running
        .pool()
        .execute("delete from events")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"));

    running.stop().await;
}

#[tokio::test]
async fn readiness_fails_while_the_database_is_gone_and_liveness_does_not() {
    let running = serve(DatabaseName::fresh("gone")).await;
    running.database().drop_now().await;

    let (status, body) = get(running.addr(), "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["reason"].as_str(), Some("database unreachable"));
    let (status, _) = get(running.addr(), "/healthz").await;
    assert_eq!(status, 200);

    running.stop().await;
}

fn ledgerdesk(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ledgerdesk"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

#[test]
fn every_command_has_help_naming_its_settings() {
    let top = ledgerdesk(&["--help"]);
    assert!(top.status.success());
    let text = String::from_utf8_lossy(&top.stdout);
    for expected in [
        "serve",
        "migrate",
        "--database-url",
        "DATABASE_URL",
        "--log-format",
    ] {
        assert!(text.contains(expected), "--help lacks {expected}:\n{text}");
    }
    let serve = ledgerdesk(&["serve", "--help"]);
    assert!(serve.status.success());
    let text = String::from_utf8_lossy(&serve.stdout);
    for expected in ["--bind", "LEDGERDESK_BIND", "127.0.0.1:8080"] {
        assert!(
            text.contains(expected),
            "serve --help lacks {expected}:\n{text}"
        );
    }
    assert!(ledgerdesk(&["migrate", "--help"]).status.success());
    assert!(!ledgerdesk(&["no-such-command"]).status.success());
}

#[test]
fn an_unreachable_database_fails_with_a_clear_message_that_hides_the_password() {
    let out = ledgerdesk(&[
        "migrate",
        "--database-url",
        "postgres://postgres:s3cret-pass@127.0.0.1:1/ledgerdesk",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to the database"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret-pass"),
        "the password leaked: {stderr}"
    );
}

#[tokio::test]
async fn migrate_creates_the_database_and_is_repeatable() {
    let database = DatabaseName::fresh("migrate");
    let url = database.url();
    for _ in 0..2 {
        let out = ledgerdesk(&["migrate", "--database-url", url]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pool = PgPool::connect(url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(applied >= 1);
    pool.close().await;
}

async fn get_text(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn succeed(args: &[&str]) -> String {
    let out = ledgerdesk(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    stderr
}

/// Waits until readers of the log see every event the database holds. A reader sees an event
/// once every append that took a transaction id before it has ended, and learns so when it
/// next computes the read horizon; a command that reads the log to its head just before
/// would stop short of the last events.
async fn all_events_visible(pool: &PgPool) -> u64 {
    let log = PostgresLog::new(pool.clone());
    eventually(
        async || {
            let stored: i64 = sqlx::query_scalar("select count(*) from events")
                .fetch_one(pool)
                .await
                .unwrap();
            let stored = u64::try_from(stored).unwrap();
            let visible = log.count_after(Position::START, stored).await.unwrap();
            if visible == stored {
                Ok(stored)
            } else {
                Err(format!("readers see {visible} of {stored} events"))
            }
        },
        PATIENCE,
    )
    .await
}

#[tokio::test]
async fn serve_projects_a_generated_history_into_the_read_models_and_reports_no_lag() {
    let database = DatabaseName::fresh("project");
    succeed(&[
        "generate",
        "--events",
        "2000",
        "--database-url",
        database.url(),
    ]);
    let running = serve(database).await;

    // /metrics shows every projection at zero lag once the read models hold the history. Lag
    // is counted against the head readers see, which may trail the last commit for a moment
    // (see `all_events_visible`): zero lag alone does not mean the tables are filled yet.
    let (opened, tickets) = eventually(
        async || {
            let (status, body) = get_text(running.addr(), "/metrics").await;
            assert_eq!(status, 200);
            let lags: Vec<&str> = body
                .lines()
                .filter(|line| line.starts_with("ledgerdesk_projection_lag_events{"))
                .collect();
            assert_eq!(lags.len(), 6, "{body}");
            let opened: i64 =
                sqlx::query_scalar("select count(*) from events where event_type = 'ticket.opened'")
                    .fetch_one(running.pool())
                    .await
                    .unwrap();
            let tickets: i64 = sqlx::query_scalar("select count(*) from tickets")
                .fetch_one(running.pool())
                .await
                .unwrap();
            if lags.iter().all(|line| line.ends_with(" 0")) && tickets == opened {
                Ok((opened, tickets))
            } else {
                Err(format!(
                    "the projections have not caught up: {tickets} of {opened} tickets, lags {lags:?}"
                ))
            }
        },
        PATIENCE,
    )
    .await;
    assert!(opened > 10);
    assert_eq!(tickets, opened);

    running.stop().await;
}

#[tokio::test]
async fn replay_rebuilds_the_read_models_from_the_command_line() {
    let database = DatabaseName::fresh("replay");
    let url = database.url();
    succeed(&["generate", "--events", "1500", "--database-url", url]);
    // A replay rebuilds up to the head readers see: wait until it is the whole history.
    let pool = PgPool::connect(url).await.unwrap();
    all_events_visible(&pool).await;
    succeed(&["replay", "--database-url", url]);
    succeed(&[
        "replay",
        "--projection",
        "tickets",
        "--projection",
        "messages",
        "--database-url",
        url,
    ]);

    let rows: Vec<(String, i32)> = sqlx::query_as(
        "select projection, version from projection_checkpoints where target = 'live'
         order by projection",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let names: Vec<&str> = rows.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "broadcasts",
            "customers",
            "dashboard",
            "directory",
            "messages",
            "tickets"
        ]
    );
    let customers: i64 = sqlx::query_scalar("select count(*) from customers")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(customers > 0);
    pool.close().await;

    let out = ledgerdesk(&["replay", "--projection", "nope", "--database-url", url]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("known projections: tickets"), "{stderr}");
}

#[tokio::test]
async fn replay_verify_passes_on_clean_read_models_and_names_each_tampered_row() {
    let database = DatabaseName::fresh("verify");
    let url = database.url();
    succeed(&["generate", "--events", "1500", "--database-url", url]);
    let pool = PgPool::connect(url).await.unwrap();
    all_events_visible(&pool).await;
    succeed(&["replay", "--database-url", url]);

    let out = ledgerdesk(&["replay", "--verify", "--database-url", url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("every read model equals a rebuild from the log"),
        "{stdout}"
    );
    assert!(stdout.contains("tickets: "), "{stdout}");

    // As the database's superuser, behind the projections' back: one ticket's status is
    // changed and one message row is removed.
    let (ticket, status): (uuid::Uuid, String) =
        sqlx::query_as("select id, status from tickets where status <> 'closed' limit 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query("update tickets set status = 'closed' where id = $1")
        .bind(ticket)
        .execute(&pool)
        .await
        .unwrap();
    let message: uuid::Uuid = sqlx::query_scalar("select id from messages limit 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("delete from messages where id = $1")
        .bind(message)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let out = ledgerdesk(&["replay", "--verify", "--database-url", url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "tickets: table tickets row {{\"id\":\"{ticket}\"}} column status: live \"closed\" \
             rebuilt \"{status}\""
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "messages: table messages row {{\"id\":\"{message}\"}}: missing from the live table"
        )),
        "{stdout}"
    );
    assert!(stderr.contains("2 rows differ"), "{stderr}");
    // Nothing else differs, and the live tables were left as they were.
    assert_eq!(stdout.matches(" differ\n").count(), 6, "{stdout}");
    let pool = PgPool::connect(url).await.unwrap();
    let still: String = sqlx::query_scalar("select status from tickets where id = $1")
        .bind(ticket)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(still, "closed");
    // Each run is in the audit trail, with its outcome.
    let runs: Vec<(String, bool, i64)> = sqlx::query_as(
        "select payload->>'outcome', (payload->>'verify')::boolean,
                (payload->>'differing_rows')::bigint
         from events where stream_id = 'audit-operations' and event_type = 'audit.replay_run'
         order by stream_version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    // (The generated history holds a run of its own first.)
    assert_eq!(
        runs[runs.len().saturating_sub(3)..],
        [
            ("rebuilt".to_owned(), false, 0),
            ("equal".to_owned(), true, 0),
            ("different".to_owned(), true, 2)
        ]
    );
    pool.close().await;
}
