//! A broadcast survives `kill -9` of the real `ledgerdesk serve`: the built binary sends it to
//! the fake Bot API, is killed mid-broadcast several times and started again, and in the end
//! every recipient got the message exactly once except, at most, those in the sender's window
//! at each kill (W = 256 per broadcast, see `bot/src/delivery/broadcast.rs`); the recorded
//! counters equal what the fake accepted.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use app::commands::{CommandContext, CommandService};
use chrono::Utc;
use domain::broadcast::{Audience, Broadcast, BroadcastCommand, BroadcastContent};
use domain::customer::{Customer, CustomerCommand, CustomerProfile};
use domain::{AgentId, BroadcastId, CustomerId};
use eventlog::Actor;
use eventlog::postgres::PostgresLog;
use sqlx::PgPool;
use testkit::telegram::{FakeTelegram, TOKEN};
use testkit::{DatabaseName, eventually};
use uuid::Uuid;

/// The sender's window: the most recipients of one broadcast sent and not yet recorded.
const WINDOW: usize = 256;

const RECIPIENTS: i64 = 900;

fn serve(database: &DatabaseName, telegram: &FakeTelegram) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ledgerdesk"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(["--database-url", database.url()])
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("TELEGRAM_API_URL", telegram.url().as_str())
        .env("TELEGRAM_POLL_TIMEOUT_SECS", "1")
        .env("TELEGRAM_MESSAGES_PER_SECOND", "150")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_accepted(telegram: &FakeTelegram, at_least: usize) {
    eventually(
        async || {
            let n = telegram.accepted_per_chat().len();
            if n >= at_least {
                Ok(())
            } else {
                Err(format!("{n} chats reached"))
            }
        },
        Duration::from_secs(120),
    )
    .await;
}

async fn pool_when_ready(database: &DatabaseName) -> PgPool {
    eventually(
        async || {
            let pool = PgPool::connect(database.url())
                .await
                .map_err(|e| e.to_string())?;
            let migrated: i64 = sqlx::query_scalar("select count(*) from customers")
                .fetch_one(&pool)
                .await
                .map_err(|e| e.to_string())?;
            let _ = migrated;
            Ok::<_, String>(pool)
        },
        Duration::from_secs(60),
    )
    .await
}

#[tokio::test]
async fn a_broadcast_killed_mid_way_several_times_reaches_everyone_once_beyond_the_window() {
    let telegram = FakeTelegram::start().await;
    let database = DatabaseName::fresh("bc_kill");
    let mut server = serve(&database, &telegram);
    let pool = pool_when_ready(&database).await;
    let log = PostgresLog::new(pool.clone());
    let commands = CommandService::new(log.clone());
    let context = CommandContext::new(Actor::system("test"));
    let base = 8_100_000;
    for id in base + 1..=base + RECIPIENTS {
        let command = CustomerCommand::Register {
            customer_id: CustomerId(id),
            profile: CustomerProfile {
                first_name: "Kim".to_owned(),
                last_name: None,
                username: None,
                language_code: None,
            },
            at: Utc::now(),
        };
        commands
            .execute::<Customer>(CustomerId(id).stream(), &command, &context)
            .await
            .unwrap();
    }
    eventually(
        async || {
            let n: i64 = sqlx::query_scalar("select count(*) from customers")
                .fetch_one(&pool)
                .await
                .unwrap();
            if n == RECIPIENTS {
                Ok(())
            } else {
                Err(format!("{n} customers projected"))
            }
        },
        Duration::from_secs(60),
    )
    .await;
    // Drafted and started as the API does it: the audience resolved from the read model.
    let id = BroadcastId(Uuid::now_v7());
    let by = AgentId(Uuid::now_v7());
    commands
        .execute::<Broadcast>(
            id.stream(),
            &BroadcastCommand::Draft {
                broadcast_id: id,
                audience: Audience::AllCustomers,
                content: BroadcastContent {
                    text: Some("Maintenance tonight".to_owned()),
                    format: domain::broadcast::TextFormat::Plain,
                    media: None,
                    buttons: vec![],
                    unsubscribe_button: true,
                },
                by,
                at: Utc::now(),
            },
            &context,
        )
        .await
        .unwrap();
    let audience =
        projections::customers::queries::resolve_audience(&pool, &Audience::AllCustomers)
            .await
            .unwrap();
    assert_eq!(audience.recipients.len(), 900);
    commands
        .execute::<Broadcast>(
            id.stream(),
            &BroadcastCommand::Start {
                audience,
                by: Some(by),
                at: Utc::now(),
            },
            &context,
        )
        .await
        .unwrap();

    // Killed three times while sending, started again after each.
    let kills = [150, 400, 650];
    for at in kills {
        wait_accepted(&telegram, at).await;
        server.kill().unwrap();
        server.wait().unwrap();
        server = serve(&database, &telegram);
    }
    let state = eventually(
        async || {
            let broadcast = commands
                .state::<Broadcast>(id.stream())
                .await
                .map_err(|e| e.to_string())?;
            let state = broadcast.state().cloned().ok_or("no broadcast")?;
            if state.status == domain::broadcast::BroadcastStatus::Completed {
                Ok(state)
            } else {
                Err(format!(
                    "{:?}, {} pending",
                    state.status,
                    state.pending_count()
                ))
            }
        },
        Duration::from_secs(120),
    )
    .await;
    server.kill().unwrap();
    server.wait().unwrap();

    let accepted = telegram.accepted_per_chat();
    let everyone =
        (base + 1..=base + RECIPIENTS).all(|chat| accepted.get(&chat).is_some_and(|n| *n >= 1));
    assert!(everyone, "every recipient got it");
    let twice = accepted.values().filter(|n| **n == 2).count();
    assert!(
        accepted.values().all(|n| *n <= 2),
        "nobody more than twice (once per kill at most, and each kill hits a window once)"
    );
    assert!(
        twice <= WINDOW * kills.len(),
        "{twice} recipients got it twice: more than the window allows"
    );
    // The counters equal what Telegram accepted (each recipient's first acceptance).
    assert_eq!(state.tally.delivered as usize, accepted.len());
    assert_eq!(state.tally.total() as usize, 900);
    eprintln!(
        "kill -9 x{}: {twice} of 900 recipients got the broadcast twice",
        kills.len()
    );
    pool.close().await;
}
