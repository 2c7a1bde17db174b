//! The broadcast scheduler: starts each scheduled broadcast when its time comes.
//!
//! It runs in every `ledgerdesk serve`, with or without a bot token, and one at a time per
//! database: the instance holding its advisory lock (class `LDSC`) works, the others stand
//! by and try the lock every second, so one of them takes over within a second or two when
//! the owner goes. The owner asks the `broadcasts` read model for scheduled broadcasts whose
//! time has passed every half second; a broadcast whose time passed while no instance ran is
//! found at the next start. For each, it reads the broadcast from the log, resolves its
//! audience ([`projections::customers::queries::resolve_audience`]) and starts it as the
//! scheduler (`Start` with no agent). The decider starts only a broadcast that is scheduled
//! and due, once: a second attempt (a lagging read model, two owners for a moment, a restart)
//! is refused, and so is one whose schedule was moved or taken back meanwhile. The start's
//! idempotency key names the broadcast and its time, so a write repeated after a lost answer
//! is a replay.

use std::time::Duration;

use app::commands::{CommandContext, CommandError, CommandService};
use app::ownership::{self, LockClass, LockKey};
use chrono::Utc;
use domain::broadcast::{Broadcast, BroadcastCommand, BroadcastError, BroadcastStatus};
use domain::{BroadcastId, StreamId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, ActorKind};
use projections::broadcasts::queries as broadcasts;
use projections::customers::queries as customers;
use tokio_util::sync::CancellationToken;

/// The scheduler's lock.
const SCHEDULER_LOCK: LockKey = LockKey::numbered(LockClass::SCHEDULER, 1);

/// How often the owner looks for due broadcasts.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// How often a standing-by instance tries the lock.
const STANDBY_EVERY: Duration = Duration::from_secs(1);

/// Most broadcasts started in one look.
const PER_LOOK: i64 = 20;

/// Runs until `shutdown`: starts due broadcasts while this process holds the scheduler's lock,
/// stands by otherwise.
pub async fn run(commands: CommandService<PostgresLog>, shutdown: CancellationToken) {
    let mut waiting_logged = false;
    loop {
        let locked = async {
            let mut conn = commands.log().pool().acquire().await?;
            let locked = ownership::try_lock(&mut conn, SCHEDULER_LOCK).await?;
            Ok::<_, sqlx::Error>(locked.then_some(conn))
        };
        match locked.await {
            Ok(Some(mut conn)) => {
                tracing::info!("broadcast scheduler running");
                let lost = schedule(&commands, &mut conn, &shutdown).await;
                ownership::release(conn.detach()).await;
                if !lost {
                    return;
                }
                tracing::warn!("the broadcast scheduler lost its lock's connection; retrying");
                waiting_logged = false;
            }
            Ok(None) if !waiting_logged => {
                tracing::info!("another instance schedules broadcasts; standing by");
                waiting_logged = true;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot take the scheduler's lock"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(STANDBY_EVERY) => {}
        }
    }
}

/// Starts due broadcasts until `shutdown` (`false`) or until the lock's connection fails
/// (`true`: the lock may be gone with it).
async fn schedule(
    commands: &CommandService<PostgresLog>,
    lock: &mut sqlx::pool::PoolConnection<sqlx::Postgres>,
    shutdown: &CancellationToken,
) -> bool {
    let pool = commands.log().pool().clone();
    let mut tick = tokio::time::interval(LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return false,
            _ = tick.tick() => {}
        }
        // The lock lives with its session: make sure the session does.
        if let Err(error) = sqlx::query("select 1").execute(&mut **lock).await {
            tracing::warn!(%error, "the scheduler's lock connection failed");
            return true;
        }
        let due = match broadcasts::due(&pool, Utc::now(), PER_LOOK).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "cannot look for due broadcasts");
                continue;
            }
        };
        for (id, _) in due {
            if shutdown.is_cancelled() {
                return false;
            }
            start_due(commands, &pool, BroadcastId(id)).await;
        }
    }
}

/// Starts `id` if the log says it is scheduled and due; logs what happened.
async fn start_due(commands: &CommandService<PostgresLog>, pool: &sqlx::PgPool, id: BroadcastId) {
    let state = match commands.state::<Broadcast>(StreamId::Broadcast(id)).await {
        Ok(state) => state,
        Err(error) => {
            tracing::warn!(broadcast.id = %id.0, %error, "cannot read a due broadcast");
            return;
        }
    };
    let Some(state) = state.state() else {
        return;
    };
    let BroadcastStatus::Scheduled(due) = state.status else {
        // Started, unscheduled or cancelled already; the read model has not caught up.
        return;
    };
    let now = Utc::now();
    if due > now {
        return;
    }
    let audience = match customers::resolve_audience(pool, &state.audience).await {
        Ok(audience) => audience,
        Err(customers::ResolveError::TooLarge) => {
            tracing::error!(broadcast.id = %id.0,
                "a scheduled broadcast's audience is larger than allowed; cancelling it");
            let cancel = BroadcastCommand::Cancel { by: None, at: now };
            let context = CommandContext::new(Actor::system("scheduler"));
            if let Err(error) = commands
                .execute::<Broadcast>(id.stream(), &cancel, &context)
                .await
            {
                tracing::warn!(broadcast.id = %id.0, %error, "cannot cancel the broadcast");
            }
            return;
        }
        Err(customers::ResolveError::Database(error)) => {
            tracing::warn!(broadcast.id = %id.0, %error, "cannot resolve a due broadcast's audience");
            return;
        }
    };
    let recipients = audience.recipients.len();
    let excluded = audience.excluded.len();
    let command = BroadcastCommand::Start {
        audience,
        by: None,
        at: now,
    };
    let context = CommandContext::new(Actor::new(ActorKind::System, "scheduler")).idempotent(
        format!("scheduled-start:{}:{}", id.0, due.timestamp_micros()),
    );
    match commands
        .execute::<Broadcast>(id.stream(), &command, &context)
        .await
    {
        Ok(_) => tracing::info!(broadcast.id = %id.0, recipients, excluded,
            late_ms = (now - due).num_milliseconds(), "scheduled broadcast started"),
        Err(CommandError::Rejected(
            BroadcastError::AlreadyStarted
            | BroadcastError::NotDue
            | BroadcastError::Finished
            | BroadcastError::AudienceChanged,
        )) => {}
        Err(error) => {
            tracing::warn!(broadcast.id = %id.0, %error, "cannot start a due broadcast");
        }
    }
}
