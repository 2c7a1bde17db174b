//! The `ledgerdesk` binary end to end: the real server on a random port against a real
//! Postgres (a database of its own per test), and the real executable's command line.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

use std::net::SocketAddr;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use ledgerdesk::{Application, Settings};
use secrecy::SecretString;
use sqlx::{Executor, PgPool};

/// The server URL the tests may create databases on (`DATABASE_URL`, as for every test).
fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a Postgres superuser connection")
}

/// A database name no other test uses.
fn fresh_name(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("ledgerdesk_test_{tag}_{}_{nanos}", std::process::id())
}

fn url_for(database: &str) -> String {
    let server = server_url();
    let (base, query) = server
        .split_once('?')
        .map_or((server.as_str(), None), |(b, q)| (b, Some(q)));
    let base = &base[..base.rfind('/').unwrap()];
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

async fn drop_database(name: &str) {
    let admin = PgPool::connect(&server_url()).await.unwrap();
    admin
        .execute(format!("drop database if exists {name} with (force)").as_str())
        .await
        .unwrap();
}

struct Running {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn serve(database: &str) -> Running {
    let settings = Settings {
        database_url: SecretString::from(url_for(database)),
        db_max_connections: 5,
        bind: "127.0.0.1:0".parse().unwrap(),
        api: api::ApiConfig::default(),
        bot: None,
    };
    let app = Application::build(settings).await.unwrap();
    let addr = app.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Running { addr, stop, server }
}

async fn get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn serve_creates_and_migrates_its_database_then_reports_healthy_and_ready() {
    let name = fresh_name("serve");
    let running = serve(&name).await;

    let (status, body) = get(running.addr, "/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = get(running.addr, "/readyz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));

    // The schema is in place: the event log accepts nothing but appends.
    let pool = PgPool::connect(&url_for(&name)).await.unwrap();
    let err = pool.execute("delete from events").await.unwrap_err();
    assert!(err.to_string().contains("append-only"));
    pool.close().await;

    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
    drop_database(&name).await;
}

#[tokio::test]
async fn readiness_fails_while_the_database_is_gone_and_liveness_does_not() {
    let name = fresh_name("gone");
    let running = serve(&name).await;
    drop_database(&name).await;

    let (status, body) = get(running.addr, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["reason"].as_str(), Some("database unreachable"));
    let (status, _) = get(running.addr, "/healthz").await;
    assert_eq!(status, 200);

    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
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
    let name = fresh_name("migrate");
    let url = url_for(&name);
    for _ in 0..2 {
        let out = ledgerdesk(&["migrate", "--database-url", &url]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pool = PgPool::connect(&url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(applied >= 1);
    pool.close().await;
    drop_database(&name).await;
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

#[tokio::test]
async fn serve_projects_a_generated_history_into_the_read_models_and_reports_no_lag() {
    let name = fresh_name("project");
    let url = url_for(&name);
    succeed(&["generate", "--events", "2000", "--database-url", &url]);
    let running = serve(&name).await;

    // /metrics shows every projection catching up, then at zero lag.
    let mut caught_up = false;
    for _ in 0..300 {
        let (status, body) = get_text(running.addr, "/metrics").await;
        assert_eq!(status, 200);
        let lags: Vec<&str> = body
            .lines()
            .filter(|line| line.starts_with("ledgerdesk_projection_lag_events{"))
            .collect();
        assert_eq!(lags.len(), 6, "{body}");
        if lags.iter().all(|line| line.ends_with(" 0")) {
            caught_up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(caught_up, "the projections never caught up");

    let pool = PgPool::connect(&url).await.unwrap();
    let opened: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'ticket.opened'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let tickets: i64 = sqlx::query_scalar("select count(*) from tickets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(opened > 10);
    assert_eq!(tickets, opened);
    pool.close().await;

    running.stop.send(()).unwrap();
    running.server.await.unwrap().unwrap();
    drop_database(&name).await;
}

#[tokio::test]
async fn replay_rebuilds_the_read_models_from_the_command_line() {
    let name = fresh_name("replay");
    let url = url_for(&name);
    succeed(&["generate", "--events", "1500", "--database-url", &url]);
    succeed(&["replay", "--database-url", &url]);
    succeed(&[
        "replay",
        "--projection",
        "tickets",
        "--projection",
        "messages",
        "--database-url",
        &url,
    ]);

    let pool = PgPool::connect(&url).await.unwrap();
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

    let out = ledgerdesk(&["replay", "--projection", "nope", "--database-url", &url]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("known projections: tickets"), "{stderr}");
    drop_database(&name).await;
}
