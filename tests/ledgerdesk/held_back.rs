//! `serve` warns, naming the database and the server process, when an append stays open
//! longer than `LEDGERDESK_LOG_HELD_BACK_WARN_SECS`: it holds every reader of the log back.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};
use testkit::DatabaseName;

use crate::succeed;

#[tokio::test]
async fn serve_warns_about_an_append_held_open_naming_its_database_and_process() {
    let database = DatabaseName::fresh("warn");
    let url = database.url().to_owned();
    succeed(&["migrate", "--database-url", &url]);
    let mut held = PgConnection::connect(&url).await.unwrap();
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut held)
        .await
        .unwrap();
    held.execute("begin").await.unwrap();
    held.execute(
        "select * from append_events(null, array['ticket-held'], array[-2]::bigint[], array[1], \
         array[gen_random_uuid()], array['test.held'], array[1], array['{}'], \
         array['{\"actor\": {\"kind\": \"system\", \"id\": \"test\"}}'])",
    )
    .await
    .unwrap();

    let mut server = Command::new(env!("CARGO_BIN_EXE_ledgerdesk"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--log-held-back-warn-secs",
            "1",
        ])
        .args(["--database-url", &url])
        .env("LEDGERDESK_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .env_remove("TELEGRAM_BOT_TOKEN")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let name = database.name().to_owned();
    // The lines as they come, on a thread of their own (reading blocks).
    let found = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let fields = &entry;
            if fields["message"]
                .as_str()
                .is_some_and(|m| m.contains("append transaction has been open"))
            {
                return Some(fields.clone());
            }
            if started.elapsed() > Duration::from_secs(30) {
                break;
            }
        }
        None
    });
    let fields = tokio::time::timeout(Duration::from_secs(30), found).await;
    let _ = server.kill();
    let _ = server.wait();
    let fields = fields
        .expect("a warning within 30 s")
        .unwrap()
        .expect("the warning in the server's log");
    assert_eq!(fields["database"].as_str(), Some(name.as_str()));
    assert_eq!(fields["pid"].as_i64(), Some(i64::from(pid)));
    assert!(fields["open_seconds"].as_u64().unwrap() >= 1);
    drop(held);
}
