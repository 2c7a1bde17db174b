//! `broadcasts` and `broadcast`, with each broadcast's recipients, from the `broadcasts`
//! read model.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, ID, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{connection, connection_complexity, cursor, cursor_part, page};
use crate::auth::Permission;
use crate::graphql::error::{Code, database, error};
use crate::graphql::guard::Need;
use crate::graphql::{Api, ConsistencyInput, consistent, ids};

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

impl BroadcastStateValue {
    fn as_sql(self) -> &'static str {
        match self {
            BroadcastStateValue::Draft => "draft",
            BroadcastStateValue::Scheduled => "scheduled",
            BroadcastStateValue::Running => "running",
            BroadcastStateValue::Paused => "paused",
            BroadcastStateValue::Completed => "completed",
            BroadcastStateValue::Cancelled => "cancelled",
        }
    }

    fn from_sql(value: &str) -> Self {
        match value {
            "scheduled" => BroadcastStateValue::Scheduled,
            "running" => BroadcastStateValue::Running,
            "paused" => BroadcastStateValue::Paused,
            "completed" => BroadcastStateValue::Completed,
            "cancelled" => BroadcastStateValue::Cancelled,
            _ => BroadcastStateValue::Draft,
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

#[derive(Debug, sqlx::FromRow)]
struct BroadcastRow {
    id: Uuid,
    state: String,
    created_by: Uuid,
    audience: serde_json::Value,
    audience_kind: String,
    text: Option<String>,
    media_kind: Option<String>,
    buttons: serde_json::Value,
    scheduled_at: Option<DateTime<Utc>>,
    total_recipients: Option<i32>,
    delivered: i32,
    failed: i32,
    skipped: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
}

const BROADCAST_COLUMNS: &str = "id, state, created_by, audience, audience_kind, text, \
    media_kind, buttons, scheduled_at, total_recipients, delivered, failed, skipped, \
    created_at, updated_at, started_at, completed_at, cancelled_at";

impl From<BroadcastRow> for Broadcast {
    fn from(row: BroadcastRow) -> Self {
        Broadcast {
            id: ids::global("Broadcast", row.id),
            broadcast_id: ID(row.id.to_string()),
            state: BroadcastStateValue::from_sql(&row.state),
            created_by: ID(row.created_by.to_string()),
            audience: Json(row.audience),
            audience_kind: row.audience_kind,
            text: row.text,
            media_kind: row.media_kind,
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

/// One broadcast.
///
/// # Errors
/// The database's.
pub async fn load_broadcast(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Broadcast>> {
    let row: Option<BroadcastRow> = sqlx::query_as(&format!(
        "select {BROADCAST_COLUMNS} from broadcasts where id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Broadcast::from))
}

async fn list_broadcasts(
    pool: &PgPool,
    state: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<BroadcastRow>> {
    let (after_at, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "select {BROADCAST_COLUMNS} from broadcasts \
         where ($1::text is null or state = $1) \
           and ($2::timestamptz is null or (created_at, id) < ($2, $3)) \
         order by created_at desc, id desc limit $4"
    ))
    .bind(state)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// What happened to one recipient of a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum RecipientStateValue {
    /// Delivered.
    Delivered,
    /// Telegram refused it.
    Failed,
    /// Not sent (blocked, banned, opted out).
    Skipped,
}

impl RecipientStateValue {
    fn as_sql(self) -> &'static str {
        match self {
            RecipientStateValue::Delivered => "delivered",
            RecipientStateValue::Failed => "failed",
            RecipientStateValue::Skipped => "skipped",
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

#[derive(Debug, sqlx::FromRow)]
struct RecipientRow {
    customer_id: i64,
    state: String,
    reason: Option<String>,
    retryable: Option<bool>,
    updated_at: DateTime<Utc>,
}

async fn list_recipients(
    pool: &PgPool,
    broadcast: Uuid,
    state: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<RecipientRow>> {
    sqlx::query_as(
        "select customer_id, state, reason, retryable, updated_at from broadcast_recipients \
         where broadcast_id = $1 and ($2::text is null or state = $2) \
           and ($3::bigint is null or customer_id > $3) \
         order by customer_id limit $4",
    )
    .bind(broadcast)
    .bind(state)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[ComplexObject]
impl Broadcast {
    /// The customers it reached or tried to, by Telegram id.
    #[graphql(
        guard = "Need(Permission::ReadBroadcasts)",
        complexity = "connection_complexity(first, child_complexity)"
    )]
    async fn recipients(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        state: Option<RecipientStateValue>,
    ) -> Result<Connection<String, BroadcastRecipient>> {
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, first, after.as_deref())?;
        let after = request
            .after
            .as_ref()
            .map(|(key, _)| cursor_part::<i64>(key))
            .transpose()?;
        let rows = list_recipients(
            &api.pool,
            self.uuid,
            state.map(RecipientStateValue::as_sql),
            after,
            request.limit(),
        )
        .await
        .map_err(database)?;
        Ok(connection(
            &request,
            rows,
            |row| cursor(row.customer_id, row.customer_id),
            |row| BroadcastRecipient {
                customer_id: ID(row.customer_id.to_string()),
                state: match row.state.as_str() {
                    "delivered" => RecipientStateValue::Delivered,
                    "failed" => RecipientStateValue::Failed,
                    _ => RecipientStateValue::Skipped,
                },
                reason: row.reason,
                retryable: row.retryable,
                updated_at: row.updated_at,
            },
        ))
    }
}

/// `broadcasts` and `broadcast`.
#[derive(Debug, Default)]
pub struct BroadcastQuery;

#[Object]
impl BroadcastQuery {
    /// Broadcasts, newest first, optionally in one state.
    #[graphql(
        guard = "Need(Permission::ReadBroadcasts)",
        complexity = "connection_complexity(first, child_complexity)"
    )]
    async fn broadcasts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        state: Option<BroadcastStateValue>,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Connection<String, Broadcast>> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, first, after.as_deref())?;
        let after = request
            .after
            .as_ref()
            .map(|(key, id)| -> Result<(DateTime<Utc>, Uuid)> {
                let at = DateTime::from_timestamp_micros(cursor_part(key)?)
                    .ok_or_else(|| error(Code::Validation, "not a cursor of this list"))?;
                Ok((at, cursor_part(id)?))
            })
            .transpose()?;
        let rows = list_broadcasts(
            &api.pool,
            state.map(BroadcastStateValue::as_sql),
            after,
            request.limit(),
        )
        .await
        .map_err(database)?;
        Ok(connection(
            &request,
            rows,
            |row| cursor(row.created_at.timestamp_micros(), row.id),
            Broadcast::from,
        ))
    }

    /// One broadcast, by uuid or global id.
    #[graphql(guard = "Need(Permission::ReadBroadcasts)")]
    async fn broadcast(
        &self,
        ctx: &Context<'_>,
        id: ID,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Broadcast> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        load_broadcast(&api.pool, ids::uuid_of("Broadcast", &id)?)
            .await
            .map_err(database)?
            .ok_or_else(|| error(Code::NotFound, "no such broadcast"))
    }
}
