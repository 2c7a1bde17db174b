//! Read model "broadcasts": broadcasts, their progress and each recipient's outcome.
//!
//! Owns `broadcasts` (state, content summary, audience, schedule, counters) and
//! `broadcast_recipients` (one row per customer of the frozen audience). Fed by `broadcast.*`.
//!
//! When a broadcast starts, its `broadcast.audience_frozen` events make one row per recipient
//! (`pending`) and one per customer left out (`skipped`, with the reason); each outcome then
//! replaces its recipient's row, and a cancel turns the rows still pending into `cancelled`
//! (an outcome of a message that was in flight replaces that too). Counters: `skipped` counts
//! the customers left out as well as those skipped at send time; `excluded` the former alone;
//! `total_recipients` both the recipients and those left out. Broadcasts started before the
//! audience was recorded have rows only for recipients with an outcome.
//!
//! All rows of a batch go in one `unnest` statement (timing for 100,000 recipients in
//! docs/operations.md).
//!
//! Through [`presses`] it also owns `broadcast_button_presses` and `broadcast_send_rate`.
//!
//! A broadcast row records its stream version and skips older events; the counters only move
//! with events past that version, so replays change nothing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use domain::broadcast::{Audience, BroadcastContent, BroadcastEvent, Outcome};
use domain::content::MediaKind;
use domain::{AnyEvent, StreamId};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{ApplyError, Envelope, Target, read_model};
use crate::sql;
use crate::table::{NullableText, Table, Text, stored_text, table};

pub mod presses;
pub mod queries;
pub mod report;

/// The "broadcasts" read model (tables `broadcasts`, `broadcast_recipients`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Broadcasts;

const TABLES: &[&str] = &[
    "broadcasts",
    "broadcast_recipients",
    // Written by `presses`.
    "broadcast_button_presses",
    "broadcast_send_rate",
];

read_model!(
    Broadcasts,
    name: "broadcasts",
    version: 1,
    tables: TABLES,
    apply: apply,
    wants: wants,
);

/// Only broadcast events change these tables.
fn wants(envelope: &Envelope) -> bool {
    matches!(
        (&envelope.stream, &envelope.event),
        (StreamId::Broadcast(_), AnyEvent::Broadcast(_))
    )
}

/// Where a broadcast is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BroadcastState {
    /// Being written.
    Draft,
    /// Waiting for its time.
    Scheduled,
    /// Sending.
    Running,
    /// Stopped for now.
    Paused,
    /// Every recipient has an outcome.
    Completed,
    /// Stopped for good.
    Cancelled,
}

stored_text!(
    "broadcast state",
    BroadcastState {
        Draft => "draft",
        Scheduled => "scheduled",
        Running => "running",
        Paused => "paused",
        Completed => "completed",
        Cancelled => "cancelled",
    }
);

/// The kind of a broadcast's audience segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudienceKind {
    /// Every customer.
    AllCustomers,
    /// Customers with a ticket in a status.
    ByTicketStatus,
    /// Customers with a ticket in a category.
    ByCategory,
    /// Customers by their client's language.
    ByLanguage,
    /// Customers listed one by one.
    Explicit,
}

stored_text!(
    "audience kind",
    AudienceKind {
        AllCustomers => "all_customers",
        ByTicketStatus => "by_ticket_status",
        ByCategory => "by_category",
        ByLanguage => "by_language",
        Explicit => "explicit",
    }
);

impl AudienceKind {
    /// The kind of `audience`.
    #[must_use]
    pub const fn of(audience: &Audience) -> Self {
        match audience {
            Audience::AllCustomers => Self::AllCustomers,
            Audience::ByTicketStatus { .. } => Self::ByTicketStatus,
            Audience::ByCategory { .. } => Self::ByCategory,
            Audience::ByLanguage { .. } => Self::ByLanguage,
            Audience::Explicit { .. } => Self::Explicit,
        }
    }
}

table! {
    /// One row of `broadcasts`: a broadcast, its content summary and its progress.
    #[derive(Debug, Clone, PartialEq)]
    pub struct BroadcastRow in "broadcasts" {
        /// The broadcast.
        id: Uuid = "uuid",
        /// Where it is in its life.
        #[sqlx(try_from = "Text<BroadcastState>")]
        state: BroadcastState = "text",
        /// The agent who wrote it.
        created_by: Uuid = "uuid",
        /// The audience segment as the domain serializes it (`{"type": "by_language", …}`).
        audience: Value = "jsonb",
        /// The segment's kind.
        #[sqlx(try_from = "Text<AudienceKind>")]
        audience_kind: AudienceKind = "text",
        /// Its text.
        text: Option<String> = "text",
        /// The kind of its media, if any.
        #[sqlx(try_from = "NullableText<MediaKind>")]
        media_kind: Option<MediaKind> = "text",
        /// Telegram's file id of its media.
        media_file_id: Option<String> = "text",
        /// Its inline buttons as the domain serializes them.
        buttons: Value = "jsonb",
        /// When it is due, when scheduled.
        scheduled_at: Option<DateTime<Utc>> = "timestamptz",
        /// Its recipients, once started.
        total_recipients: Option<i32> = "integer",
        /// Recipients it reached so far.
        delivered: i32 = "integer",
        /// Recipients it could not reach so far.
        failed: i32 = "integer",
        /// Recipients skipped so far (blocked, banned, opted out), those left out at the start
        /// included.
        skipped: i32 = "integer",
        /// When it was written.
        created_at: DateTime<Utc> = "timestamptz",
        /// Its last change.
        updated_at: DateTime<Utc> = "timestamptz",
        /// When sending started.
        started_at: Option<DateTime<Utc>> = "timestamptz",
        /// When it was paused, while paused.
        paused_at: Option<DateTime<Utc>> = "timestamptz",
        /// When it completed.
        completed_at: Option<DateTime<Utc>> = "timestamptz",
        /// When it was cancelled.
        cancelled_at: Option<DateTime<Utc>> = "timestamptz",
        /// The broadcast stream's version this row reflects.
        version: i64 = "bigint",
        /// Customers of the segment left out at the start (also counted in `skipped`).
        excluded: i32 = "integer",
    }
}

/// What happened to one recipient of a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientState {
    /// In the frozen audience, no outcome yet.
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

stored_text!(
    "recipient state",
    RecipientState {
        Pending => "pending",
        Delivered => "delivered",
        Failed => "failed",
        Skipped => "skipped",
        Cancelled => "cancelled",
    }
);

table! {
    /// One row of `broadcast_recipients`: a recipient's outcome.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RecipientRow in "broadcast_recipients" {
        /// The broadcast.
        broadcast_id: Uuid = "uuid",
        /// The customer's Telegram user id.
        customer_id: i64 = "bigint",
        /// What happened.
        #[sqlx(try_from = "Text<RecipientState>")]
        state: RecipientState = "text",
        /// Telegram's id of the delivered message.
        telegram_message_id: Option<i32> = "integer",
        /// Why it failed (Telegram's words) or was skipped (`opted_out`, `blocked_bot`,
        /// `banned`, `unknown_customer`).
        reason: Option<String> = "text",
        /// Whether a failure may succeed on retry.
        retryable: Option<bool> = "boolean",
        /// When the outcome was recorded.
        updated_at: DateTime<Utc> = "timestamptz",
    }
}

#[derive(Debug, Default)]
struct Fold {
    broadcasts: HashMap<Uuid, BroadcastRow>,
    dirty: HashSet<Uuid>,
    recipients: HashMap<(Uuid, i64), RecipientRow>,
    /// Broadcasts cancelled in this batch, with when: their rows still pending in the table
    /// become `cancelled` (before this batch's rows are written).
    cancelled: HashMap<Uuid, DateTime<Utc>>,
    interactions: presses::Interactions,
}

async fn apply(
    conn: &mut PgConnection,
    target: Target,
    batch: &[Envelope],
) -> Result<(), ApplyError> {
    let ids: HashSet<Uuid> = batch
        .iter()
        .filter_map(|envelope| match (&envelope.stream, &envelope.event) {
            (StreamId::Broadcast(id), AnyEvent::Broadcast(_)) => Some(id.as_uuid()),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = ids.into_iter().collect();
    let mut fold = Fold::default();
    let sql = sql::select_sql(
        &target.table(BroadcastRow::TABLE),
        BroadcastRow::COLUMNS,
        "id",
    );
    for row in sqlx::query_as::<_, BroadcastRow>(&sql)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
    {
        fold.broadcasts.insert(row.id, row);
    }
    for envelope in batch {
        if let (StreamId::Broadcast(id), AnyEvent::Broadcast(event)) =
            (&envelope.stream, &envelope.event)
        {
            fold.event(envelope, id.as_uuid(), sql::version(envelope)?, event)?;
        }
    }
    fold.write(conn, target).await
}

impl Fold {
    fn event(
        &mut self,
        envelope: &Envelope,
        id: Uuid,
        version: i64,
        event: &BroadcastEvent,
    ) -> Result<(), ApplyError> {
        use BroadcastEvent as E;
        let Some(broadcast) = self.broadcasts.get_mut(&id) else {
            if let E::Drafted(drafted) = event {
                let mut row = BroadcastRow {
                    id,
                    state: BroadcastState::Draft,
                    created_by: drafted.by.as_uuid(),
                    audience: Value::Null,
                    audience_kind: AudienceKind::of(&drafted.audience),
                    text: None,
                    media_kind: None,
                    media_file_id: None,
                    buttons: Value::Null,
                    scheduled_at: None,
                    total_recipients: None,
                    delivered: 0,
                    failed: 0,
                    skipped: 0,
                    created_at: drafted.at,
                    updated_at: drafted.at,
                    started_at: None,
                    paused_at: None,
                    completed_at: None,
                    cancelled_at: None,
                    version,
                    excluded: 0,
                };
                set_draft(&mut row, &drafted.audience, &drafted.content, envelope)?;
                self.broadcasts.insert(id, row);
                self.dirty.insert(id);
            }
            return Ok(());
        };
        if version <= broadcast.version {
            return Ok(());
        }
        broadcast.version = version;
        self.dirty.insert(id);
        self.interactions.event(id, event);
        match event {
            E::Drafted(_) => {}
            E::Edited(edited) => {
                set_draft(broadcast, &edited.audience, &edited.content, envelope)?;
                broadcast.updated_at = edited.at;
            }
            E::Scheduled(scheduled) => {
                broadcast.state = BroadcastState::Scheduled;
                broadcast.scheduled_at = Some(scheduled.send_at);
                broadcast.updated_at = scheduled.at;
            }
            E::Unscheduled(step) => {
                broadcast.state = BroadcastState::Draft;
                broadcast.scheduled_at = None;
                broadcast.updated_at = step.at;
            }
            E::Started(started) => {
                let excluded = i32::try_from(started.excluded).unwrap_or(i32::MAX);
                broadcast.state = BroadcastState::Running;
                broadcast.total_recipients = Some(
                    i32::try_from(started.audience_size)
                        .unwrap_or(i32::MAX)
                        .saturating_add(excluded),
                );
                broadcast.excluded = excluded;
                broadcast.skipped = broadcast.skipped.saturating_add(excluded);
                broadcast.started_at = Some(started.at);
                broadcast.updated_at = started.at;
            }
            E::AudienceFrozen(frozen) => {
                let at = broadcast.started_at.unwrap_or(broadcast.updated_at);
                for customer in &frozen.recipients {
                    self.recipients.insert(
                        (id, customer.0),
                        RecipientRow {
                            broadcast_id: id,
                            customer_id: customer.0,
                            state: RecipientState::Pending,
                            telegram_message_id: None,
                            reason: None,
                            retryable: None,
                            updated_at: at,
                        },
                    );
                }
                for excluded in &frozen.excluded {
                    self.recipients.insert(
                        (id, excluded.customer.0),
                        RecipientRow {
                            broadcast_id: id,
                            customer_id: excluded.customer.0,
                            state: RecipientState::Skipped,
                            telegram_message_id: None,
                            reason: Some(excluded.reason.as_str().to_owned()),
                            retryable: None,
                            updated_at: at,
                        },
                    );
                }
            }
            E::OutcomesRecorded(recorded) => {
                for outcome in &recorded.outcomes {
                    let customer_id = outcome.customer.0;
                    let row = match &outcome.outcome {
                        Outcome::Delivered {
                            telegram_message_id,
                        } => {
                            broadcast.delivered += 1;
                            RecipientRow {
                                broadcast_id: id,
                                customer_id,
                                state: RecipientState::Delivered,
                                telegram_message_id: Some(telegram_message_id.0),
                                reason: None,
                                retryable: None,
                                updated_at: recorded.at,
                            }
                        }
                        Outcome::Failed { reason, retryable } => {
                            broadcast.failed += 1;
                            RecipientRow {
                                broadcast_id: id,
                                customer_id,
                                state: RecipientState::Failed,
                                telegram_message_id: None,
                                reason: Some(reason.clone()),
                                retryable: Some(*retryable),
                                updated_at: recorded.at,
                            }
                        }
                        Outcome::Skipped { reason } => {
                            broadcast.skipped += 1;
                            RecipientRow {
                                broadcast_id: id,
                                customer_id,
                                state: RecipientState::Skipped,
                                telegram_message_id: None,
                                reason: Some(reason.as_str().to_owned()),
                                retryable: None,
                                updated_at: recorded.at,
                            }
                        }
                    };
                    self.recipients.insert((id, customer_id), row);
                }
                broadcast.updated_at = recorded.at;
            }
            E::Paused(step) => {
                broadcast.state = BroadcastState::Paused;
                broadcast.paused_at = Some(step.at);
                broadcast.updated_at = step.at;
            }
            E::Resumed(step) => {
                broadcast.state = BroadcastState::Running;
                broadcast.paused_at = None;
                broadcast.updated_at = step.at;
            }
            E::Completed(step) => {
                broadcast.state = BroadcastState::Completed;
                broadcast.completed_at = Some(step.at);
                broadcast.updated_at = step.at;
            }
            E::Cancelled(step) => {
                for row in self.recipients.values_mut() {
                    if row.broadcast_id == id && row.state == RecipientState::Pending {
                        row.state = RecipientState::Cancelled;
                        row.updated_at = step.at;
                    }
                }
                self.cancelled.insert(id, step.at);
                broadcast.state = BroadcastState::Cancelled;
                broadcast.cancelled_at = Some(step.at);
                broadcast.updated_at = step.at;
            }
            // Presses go to `presses`; previews change nothing the tables show.
            E::ButtonPressed(_)
            | E::PreviewRequested(_)
            | E::PreviewSent(_)
            | E::PreviewFailed(_) => {}
        }
        Ok(())
    }

    async fn write(self, conn: &mut PgConnection, target: Target) -> Result<(), ApplyError> {
        let rows: Vec<&BroadcastRow> = self
            .dirty
            .iter()
            .filter_map(|id| self.broadcasts.get(id))
            .collect();
        if !rows.is_empty() {
            static UPSERT: sql::Upsert = sql::Upsert::new(
                BroadcastRow::TABLE,
                BroadcastRow::WRITTEN,
                &["id"],
                sql::OnConflict::NEWER,
            );
            BroadcastRow::bind(sqlx::query(UPSERT.text(target)), &rows)
                .execute(&mut *conn)
                .await?;
        }
        for (broadcast, at) in &self.cancelled {
            static CANCEL: sql::PerTarget = sql::PerTarget::new();
            let text = CANCEL.get(target, |target| {
                format!(
                    "update {} set state = 'cancelled', updated_at = $2 \
                     where broadcast_id = $1 and state = 'pending'",
                    target.table(RecipientRow::TABLE)
                )
            });
            sqlx::query(text)
                .bind(broadcast)
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        let recipients: Vec<&RecipientRow> = self.recipients.values().collect();
        if !recipients.is_empty() {
            static UPSERT: sql::Upsert = sql::Upsert::new(
                RecipientRow::TABLE,
                RecipientRow::WRITTEN,
                &["broadcast_id", "customer_id"],
                sql::OnConflict::Update,
            );
            RecipientRow::bind(sqlx::query(UPSERT.text(target)), &recipients)
                .execute(&mut *conn)
                .await?;
        }
        self.interactions.write(conn, target).await
    }
}

fn set_draft(
    row: &mut BroadcastRow,
    audience: &Audience,
    content: &BroadcastContent,
    envelope: &Envelope,
) -> Result<(), ApplyError> {
    let to_json = |value: Result<Value, serde_json::Error>| {
        value.map_err(|error| ApplyError::Event {
            position: envelope.position,
            reason: format!("cannot serialize the broadcast: {error}"),
        })
    };
    row.audience = to_json(serde_json::to_value(audience))?;
    row.audience_kind = AudienceKind::of(audience);
    row.buttons = to_json(serde_json::to_value(&content.buttons))?;
    row.text.clone_from(&content.text);
    row.media_kind = content.media.as_ref().map(|media| media.kind);
    row.media_file_id = content.media.as_ref().map(|media| media.file_id.clone());
    Ok(())
}
