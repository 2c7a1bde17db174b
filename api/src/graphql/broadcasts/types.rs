//! A broadcast as GraphQL shows it, with its recipients.

use std::collections::HashMap;

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, ID, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::broadcast::{ButtonAction, InlineButton};
use projections::StoredText;
use projections::broadcasts::presses;
use projections::broadcasts::queries as broadcasts;
use projections::broadcasts::{BroadcastRow, BroadcastState, RecipientState};
use uuid::Uuid;

use super::subscriptions::{BroadcastProgress, progress};
use crate::auth::Permission;
use crate::graphql::context::Api;
use crate::graphql::error::{Code, database, error};
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
    /// Their presses of the broadcast's callback buttons, all buttons together.
    pub button_presses: i32,
    /// The buttons they pressed (places among all the broadcast's buttons, row by row, from
    /// 0), in order.
    pub pressed_buttons: Vec<i32>,
}

/// Presses of one callback button of a broadcast.
#[derive(Debug, Clone, SimpleObject)]
pub struct BroadcastButtonPresses {
    /// The button's place among all the broadcast's buttons, row by row, from 0.
    pub index: i32,
    /// Its label.
    pub label: String,
    /// Its callback data.
    pub data: String,
    /// Presses recorded (one per press; at most 20 per customer are kept).
    pub presses: i32,
    /// Customers who pressed it.
    pub customers: i32,
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
        let customers: Vec<i64> = rows.iter().map(|row| row.customer_id).collect();
        let mut pressed: HashMap<i64, (i32, Vec<i32>)> = HashMap::new();
        for presses in presses::presses_of(&api.pool, self.uuid, &customers)
            .await
            .map_err(database)?
        {
            let entry = pressed.entry(presses.customer_id).or_default();
            entry.0 = entry.0.saturating_add(presses.presses);
            entry.1.push(i32::from(presses.button_index));
        }
        Ok(connection(
            &request,
            rows,
            |row| cursor(row.customer_id, row.customer_id),
            |row| {
                let (button_presses, pressed_buttons) =
                    pressed.get(&row.customer_id).cloned().unwrap_or_default();
                BroadcastRecipient {
                    customer_id: ID(row.customer_id.to_string()),
                    state: row.state.into(),
                    reason: row.reason,
                    retryable: row.retryable,
                    updated_at: row.updated_at,
                    button_presses,
                    pressed_buttons,
                }
            },
        ))
    }

    /// Presses of each callback button, in button order (link buttons are not counted: Telegram
    /// opens them without telling the bot).
    #[graphql(guard = "Need(Permission::ReadBroadcasts)")]
    async fn button_presses(&self, ctx: &Context<'_>) -> Result<Vec<BroadcastButtonPresses>> {
        let api = ctx.data_unchecked::<Api>();
        let totals = presses::button_totals(&api.pool, self.uuid)
            .await
            .map_err(database)?;
        let buttons: Vec<Vec<InlineButton>> =
            serde_json::from_value(self.buttons.0.clone()).unwrap_or_default();
        Ok(buttons
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(index, button)| {
                let ButtonAction::Callback { data } = &button.action else {
                    return None;
                };
                let total = totals
                    .iter()
                    .find(|total| usize::try_from(total.button_index).ok() == Some(index));
                let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
                Some(BroadcastButtonPresses {
                    index: i32::try_from(index).unwrap_or(i32::MAX),
                    label: button.label.clone(),
                    data: data.clone(),
                    presses: total.map_or(0, |t| count(t.presses)),
                    customers: total.map_or(0, |t| count(t.customers)),
                })
            })
            .collect())
    }

    /// Its progress now: counters, the current sending rate and, while sending, an estimate of
    /// when it ends (`broadcastProgress` pushes the same after each change).
    #[graphql(guard = "Need(Permission::ReadBroadcasts)")]
    async fn progress(&self, ctx: &Context<'_>) -> Result<BroadcastProgress> {
        let api = ctx.data_unchecked::<Api>();
        let row = broadcasts::by_id(&api.pool, self.uuid)
            .await
            .map_err(database)?
            .ok_or_else(|| error(Code::NotFound, "no such broadcast"))?;
        progress(&api.pool, row, String::new()).await
    }
}
