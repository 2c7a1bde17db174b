//! A broadcast as GraphQL shows it, with its recipients.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, ID, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use projections::StoredText;
use projections::broadcasts::queries as broadcasts;
use projections::broadcasts::{BroadcastRow, BroadcastState, RecipientState};
use uuid::Uuid;

use crate::auth::Permission;
use crate::graphql::context::Api;
use crate::graphql::error::database;
use crate::graphql::guard::Need;
use crate::graphql::ids;
use crate::graphql::pagination::{
    PageArgs, connection, connection_complexity, cursor, cursor_part, page,
};

/// Where a broadcast is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum BroadcastStateValue {
    /// Being written.
    Draft,
    /// Waiting for its time.
    Scheduled,
    /// Sending.
    Running,
    /// Stopped for now.
    Paused,
    /// Sent to everyone.
    Completed,
    /// Stopped for good.
    Cancelled,
}

impl From<BroadcastState> for BroadcastStateValue {
    fn from(state: BroadcastState) -> Self {
        match state {
            BroadcastState::Draft => BroadcastStateValue::Draft,
            BroadcastState::Scheduled => BroadcastStateValue::Scheduled,
            BroadcastState::Running => BroadcastStateValue::Running,
            BroadcastState::Paused => BroadcastStateValue::Paused,
            BroadcastState::Completed => BroadcastStateValue::Completed,
            BroadcastState::Cancelled => BroadcastStateValue::Cancelled,
        }
    }
}

impl From<BroadcastStateValue> for BroadcastState {
    fn from(state: BroadcastStateValue) -> Self {
        match state {
            BroadcastStateValue::Draft => BroadcastState::Draft,
            BroadcastStateValue::Scheduled => BroadcastState::Scheduled,
            BroadcastStateValue::Running => BroadcastState::Running,
            BroadcastStateValue::Paused => BroadcastState::Paused,
            BroadcastStateValue::Completed => BroadcastState::Completed,
            BroadcastStateValue::Cancelled => BroadcastState::Cancelled,
        }
    }
}

/// A message sent to a segment of the customers.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct Broadcast {
    /// Global id.
    pub id: ID,
    /// The broadcast's uuid.
    pub broadcast_id: ID,
    /// State.
    pub state: BroadcastStateValue,
    /// The agent who created it.
    pub created_by: ID,
    /// The audience segment, as the domain describes it.
    pub audience: Json<serde_json::Value>,
    /// The segment's kind.
    pub audience_kind: String,
    /// Its text.
    pub text: Option<String>,
    /// The kind of its media, if any.
    pub media_kind: Option<String>,
    /// Inline buttons.
    pub buttons: Json<serde_json::Value>,
    /// When it is due.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Recipients, once started.
    pub total_recipients: Option<i32>,
    /// Delivered so far.
    pub delivered: i32,
    /// Failed so far.
    pub failed: i32,
    /// Skipped (blocked, banned, opted out).
    pub skipped: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Started.
    pub started_at: Option<DateTime<Utc>>,
    /// Completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub uuid: Uuid,
}

impl From<BroadcastRow> for Broadcast {
    fn from(row: BroadcastRow) -> Self {
        Broadcast {
            id: ids::global("Broadcast", row.id),
            broadcast_id: ID(row.id.to_string()),
            state: row.state.into(),
            created_by: ID(row.created_by.to_string()),
            audience: Json(row.audience),
            audience_kind: row.audience_kind.as_str().to_owned(),
            text: row.text,
            media_kind: row.media_kind.map(|kind| kind.as_str().to_owned()),
            buttons: Json(row.buttons),
            scheduled_at: row.scheduled_at,
            total_recipients: row.total_recipients,
            delivered: row.delivered,
            failed: row.failed,
            skipped: row.skipped,
            created_at: row.created_at,
            updated_at: row.updated_at,
            started_at: row.started_at,
            completed_at: row.completed_at,
            cancelled_at: row.cancelled_at,
            uuid: row.id,
        }
    }
}

/// What happened to one recipient of a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum RecipientStateValue {
    /// In the frozen audience, not sent yet.
    Pending,
    /// Delivered.
    Delivered,
    /// Telegram refused it.
    Failed,
    /// Not sent (blocked, banned, opted out, unknown): left out at the start or at send time.
    Skipped,
    /// Never sent: the broadcast was cancelled first.
    Cancelled,
}

impl From<RecipientState> for RecipientStateValue {
    fn from(state: RecipientState) -> Self {
        match state {
            RecipientState::Pending => RecipientStateValue::Pending,
            RecipientState::Delivered => RecipientStateValue::Delivered,
            RecipientState::Failed => RecipientStateValue::Failed,
            RecipientState::Skipped => RecipientStateValue::Skipped,
            RecipientState::Cancelled => RecipientStateValue::Cancelled,
        }
    }
}

impl From<RecipientStateValue> for RecipientState {
    fn from(state: RecipientStateValue) -> Self {
        match state {
            RecipientStateValue::Pending => RecipientState::Pending,
            RecipientStateValue::Delivered => RecipientState::Delivered,
            RecipientStateValue::Failed => RecipientState::Failed,
            RecipientStateValue::Skipped => RecipientState::Skipped,
            RecipientStateValue::Cancelled => RecipientState::Cancelled,
        }
    }
}

/// One recipient of a broadcast.
#[derive(Debug, Clone, SimpleObject)]
pub struct BroadcastRecipient {
    /// The customer's Telegram user id.
    pub customer_id: ID,
    /// What happened.
    pub state: RecipientStateValue,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// Whether a failure may succeed on retry.
    pub retryable: Option<bool>,
    /// When.
    pub updated_at: DateTime<Utc>,
}

#[ComplexObject]
impl Broadcast {
    /// The customers it reached or tried to, by Telegram id.
    #[graphql(
        guard = "Need(Permission::ReadBroadcasts)",
        complexity = "connection_complexity(first, last, child_complexity)"
    )]
    async fn recipients(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        state: Option<RecipientStateValue>,
    ) -> Result<Connection<String, BroadcastRecipient>> {
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, PageArgs::new(first, &after, last, &before))?;
        let keyset = request.keyset(|key, _| cursor_part::<i64>(key))?;
        let rows = broadcasts::recipients(&api.pool, self.uuid, state.map(Into::into), &keyset)
            .await
            .map_err(database)?;
        Ok(connection(
            &request,
            rows,
            |row| cursor(row.customer_id, row.customer_id),
            |row| BroadcastRecipient {
                customer_id: ID(row.customer_id.to_string()),
                state: row.state.into(),
                reason: row.reason,
                retryable: row.retryable,
                updated_at: row.updated_at,
            },
        ))
    }
}
