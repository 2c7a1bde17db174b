//! The items of `messageAdded` and `broadcastProgress`, read from their read models once
//! those have applied the event an item is about.

use async_graphql::{ID, Result, SimpleObject};
use chrono::{DateTime, Utc};
use eventlog::{Position, RecordedEvent};
use sqlx::PgPool;
use uuid::Uuid;

use crate::graphql::error::{Code, error, internal};

/// A message posted on a ticket: a customer's message or an agent's reply.
#[derive(Debug, Clone, SimpleObject, sqlx::FromRow)]
pub struct AddedMessage {
    /// Our id for the message.
    #[graphql(skip)]
    pub id: Uuid,
    /// The ticket it belongs to.
    #[graphql(skip)]
    pub ticket_id: Uuid,
    /// `in` (customer) or `out` (agent).
    pub direction: String,
    /// The kind of message (`text`, `photo`, …).
    pub kind: String,
    /// Its text, if any.
    pub text: Option<String>,
    /// Its caption, if any.
    pub caption: Option<String>,
    /// The replying agent, for `out`.
    #[graphql(skip)]
    pub author_agent_id: Option<Uuid>,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// The ticket stream version of the event that posted it.
    pub seq: i64,
    /// The ticket's category (for scope checks).
    #[graphql(skip)]
    #[sqlx(default)]
    pub category_id: Option<Uuid>,
}

/// A new message, with the cursor of its event.
#[derive(Debug, Clone, SimpleObject)]
pub struct MessageAddedEvent {
    /// The event's log position.
    pub cursor: String,
    /// The message's id.
    pub message_id: ID,
    /// The ticket's uuid.
    pub ticket_id: ID,
    /// The replying agent, for `out`.
    pub author_agent_id: Option<ID>,
    /// The message.
    pub message: AddedMessage,
}

/// A broadcast's counters.
#[derive(Debug, Clone, SimpleObject, sqlx::FromRow)]
pub struct BroadcastProgress {
    /// The log position the counters reflect at least (empty for the first snapshot).
    #[sqlx(skip)]
    pub cursor: String,
    /// `draft`, `scheduled`, `running`, `paused`, `completed` or `cancelled`.
    pub state: String,
    /// Recipients the message reached.
    pub delivered: i32,
    /// Recipients it could not reach.
    pub failed: i32,
    /// Recipients skipped (banned, blocked the bot…).
    pub skipped: i32,
    /// Every recipient, once the audience is resolved.
    pub total: Option<i32>,
}

pub(super) async fn wait_for_model(
    pool: &PgPool,
    model: &str,
    position: Position,
    timeout: std::time::Duration,
) -> Result<()> {
    projections::wait_for(pool, &[model], position, timeout)
        .await
        .map_err(|detail| match detail {
            projections::WaitError::Timeout { .. } => error(
                Code::Timeout,
                format!("the {model} read model is behind; resubscribe to retry"),
            ),
            other => internal("a read model cannot be read", other),
        })
}

pub(super) async fn message_of(
    pool: &PgPool,
    event: &RecordedEvent,
    timeout: std::time::Duration,
) -> Result<Option<MessageAddedEvent>> {
    let Some(ticket) = crate::live::ticket_of(&event.stream_id) else {
        return Ok(None);
    };
    wait_for_model(pool, "messages", event.position, timeout).await?;
    let seq = i64::try_from(event.stream_version).unwrap_or(i64::MAX);
    let message = load_message(pool, ticket, seq)
        .await
        .map_err(crate::graphql::error::database)?;
    Ok(message.map(|message: AddedMessage| MessageAddedEvent {
        cursor: event.position.to_string(),
        message_id: ID(message.id.to_string()),
        ticket_id: ID(message.ticket_id.to_string()),
        author_agent_id: message.author_agent_id.map(|id| ID(id.to_string())),
        message,
    }))
}

pub(super) async fn progress_of(
    pool: &PgPool,
    broadcast: Uuid,
    position: Option<Position>,
    timeout: std::time::Duration,
) -> Result<Option<BroadcastProgress>> {
    if let Some(position) = position {
        wait_for_model(pool, "broadcasts", position, timeout).await?;
    }
    let progress = load_progress(pool, broadcast)
        .await
        .map_err(crate::graphql::error::database)?;
    Ok(progress.map(|progress| BroadcastProgress {
        cursor: position.map(|p| p.to_string()).unwrap_or_default(),
        ..progress
    }))
}

/// The message a ticket event at stream version `seq` posted, with the ticket's category.
async fn load_message(pool: &PgPool, ticket: Uuid, seq: i64) -> sqlx::Result<Option<AddedMessage>> {
    sqlx::query_as(
        "select m.id, m.ticket_id, m.direction, m.kind, m.text, m.caption, m.author_agent_id,
                m.created_at, m.seq, t.category_id
         from messages m left join tickets t on t.id = m.ticket_id
         where m.ticket_id = $1 and m.seq = $2",
    )
    .bind(ticket)
    .bind(seq)
    .fetch_optional(pool)
    .await
}

/// A broadcast's counters from the `broadcasts` read model.
async fn load_progress(pool: &PgPool, broadcast: Uuid) -> sqlx::Result<Option<BroadcastProgress>> {
    sqlx::query_as(
        "select state, delivered, failed, skipped, total_recipients as total
         from broadcasts where id = $1",
    )
    .bind(broadcast)
    .fetch_optional(pool)
    .await
}
