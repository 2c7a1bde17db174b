//! Read model "broadcasts": broadcasts, their progress and each recipient's outcome.
//!
//! Owns `broadcasts` (state, content summary, audience, schedule, counters) and
//! `broadcast_recipients` (one row per recipient with an outcome). Fed by `broadcast.*`.
//!
//! A broadcast row records its stream version and skips older events; the counters only move
//! with events past that version, so replays change nothing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use domain::broadcast::{Audience, BroadcastContent, BroadcastEvent, Outcome, SkipReason};
use domain::{AnyEvent, StreamId};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{ApplyError, Envelope, Target, read_model};
use crate::sql::{self, Column, col};

/// The "broadcasts" read model (tables `broadcasts`, `broadcast_recipients`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Broadcasts;

const TABLES: &[&str] = &["broadcasts", "broadcast_recipients"];

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

const BROADCAST_COLUMNS: &[Column] = &[
    ("id", "uuid"),
    ("state", "text"),
    ("created_by", "uuid"),
    ("audience", "jsonb"),
    ("audience_kind", "text"),
    ("text", "text"),
    ("media_kind", "text"),
    ("media_file_id", "text"),
    ("buttons", "jsonb"),
    ("scheduled_at", "timestamptz"),
    ("total_recipients", "integer"),
    ("delivered", "integer"),
    ("failed", "integer"),
    ("skipped", "integer"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("started_at", "timestamptz"),
    ("paused_at", "timestamptz"),
    ("completed_at", "timestamptz"),
    ("cancelled_at", "timestamptz"),
    ("version", "bigint"),
];

#[derive(Debug, Clone, sqlx::FromRow)]
struct BroadcastRow {
    id: Uuid,
    state: String,
    created_by: Uuid,
    audience: Value,
    audience_kind: String,
    text: Option<String>,
    media_kind: Option<String>,
    media_file_id: Option<String>,
    buttons: Value,
    scheduled_at: Option<DateTime<Utc>>,
    total_recipients: Option<i32>,
    delivered: i32,
    failed: i32,
    skipped: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    paused_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    version: i64,
}

const RECIPIENT_COLUMNS: &[Column] = &[
    ("broadcast_id", "uuid"),
    ("customer_id", "bigint"),
    ("state", "text"),
    ("telegram_message_id", "integer"),
    ("reason", "text"),
    ("retryable", "boolean"),
    ("updated_at", "timestamptz"),
];

#[derive(Debug, Clone)]
struct RecipientRow {
    broadcast_id: Uuid,
    customer_id: i64,
    state: &'static str,
    telegram_message_id: Option<i32>,
    reason: Option<String>,
    retryable: Option<bool>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Fold {
    broadcasts: HashMap<Uuid, BroadcastRow>,
    dirty: HashSet<Uuid>,
    recipients: HashMap<(Uuid, i64), RecipientRow>,
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
    let sql = sql::select_sql(&target.table("broadcasts"), BROADCAST_COLUMNS, "id");
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
                    state: "draft".to_owned(),
                    created_by: drafted.by.as_uuid(),
                    audience: Value::Null,
                    audience_kind: String::new(),
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
        match event {
            E::Drafted(_) => {}
            E::Edited(edited) => {
                set_draft(broadcast, &edited.audience, &edited.content, envelope)?;
                broadcast.updated_at = edited.at;
            }
            E::Scheduled(scheduled) => {
                broadcast.state = "scheduled".to_owned();
                broadcast.scheduled_at = Some(scheduled.send_at);
                broadcast.updated_at = scheduled.at;
            }
            E::Unscheduled(step) => {
                broadcast.state = "draft".to_owned();
                broadcast.scheduled_at = None;
                broadcast.updated_at = step.at;
            }
            E::Started(started) => {
                broadcast.state = "running".to_owned();
                broadcast.total_recipients =
                    Some(i32::try_from(started.audience_size).unwrap_or(i32::MAX));
                broadcast.started_at = Some(started.at);
                broadcast.updated_at = started.at;
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
                                state: "delivered",
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
                                state: "failed",
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
                                state: "skipped",
                                telegram_message_id: None,
                                reason: Some(skip_reason(*reason).to_owned()),
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
                broadcast.state = "paused".to_owned();
                broadcast.paused_at = Some(step.at);
                broadcast.updated_at = step.at;
            }
            E::Resumed(step) => {
                broadcast.state = "running".to_owned();
                broadcast.paused_at = None;
                broadcast.updated_at = step.at;
            }
            E::Completed(step) => {
                broadcast.state = "completed".to_owned();
                broadcast.completed_at = Some(step.at);
                broadcast.updated_at = step.at;
            }
            E::Cancelled(step) => {
                broadcast.state = "cancelled".to_owned();
                broadcast.cancelled_at = Some(step.at);
                broadcast.updated_at = step.at;
            }
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
                "broadcasts",
                BROADCAST_COLUMNS,
                &["id"],
                sql::OnConflict::NEWER,
            );
            sqlx::query(UPSERT.text(target))
                .bind(col!(rows, id))
                .bind(col!(rows, state))
                .bind(col!(rows, created_by))
                .bind(col!(rows, audience))
                .bind(col!(rows, audience_kind))
                .bind(col!(rows, text))
                .bind(col!(rows, media_kind))
                .bind(col!(rows, media_file_id))
                .bind(col!(rows, buttons))
                .bind(col!(rows, scheduled_at))
                .bind(col!(rows, total_recipients))
                .bind(col!(rows, delivered))
                .bind(col!(rows, failed))
                .bind(col!(rows, skipped))
                .bind(col!(rows, created_at))
                .bind(col!(rows, updated_at))
                .bind(col!(rows, started_at))
                .bind(col!(rows, paused_at))
                .bind(col!(rows, completed_at))
                .bind(col!(rows, cancelled_at))
                .bind(col!(rows, version))
                .execute(&mut *conn)
                .await?;
        }
        let recipients: Vec<&RecipientRow> = self.recipients.values().collect();
        if !recipients.is_empty() {
            static UPSERT: sql::Upsert = sql::Upsert::new(
                "broadcast_recipients",
                RECIPIENT_COLUMNS,
                &["broadcast_id", "customer_id"],
                sql::OnConflict::Update,
            );
            sqlx::query(UPSERT.text(target))
                .bind(col!(recipients, broadcast_id))
                .bind(col!(recipients, customer_id))
                .bind(col!(recipients, state))
                .bind(col!(recipients, telegram_message_id))
                .bind(col!(recipients, reason))
                .bind(col!(recipients, retryable))
                .bind(col!(recipients, updated_at))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
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
    row.audience_kind = audience_kind(audience).to_owned();
    row.buttons = to_json(serde_json::to_value(&content.buttons))?;
    row.text.clone_from(&content.text);
    row.media_kind = content
        .media
        .as_ref()
        .map(|media| sql::media_kind(media.kind).to_owned());
    row.media_file_id = content.media.as_ref().map(|media| media.file_id.clone());
    Ok(())
}

const fn audience_kind(audience: &Audience) -> &'static str {
    match audience {
        Audience::AllCustomers => "all_customers",
        Audience::ByTicketStatus { .. } => "by_ticket_status",
        Audience::ByCategory { .. } => "by_category",
        Audience::ByLanguage { .. } => "by_language",
        Audience::Explicit { .. } => "explicit",
    }
}

const fn skip_reason(reason: SkipReason) -> &'static str {
    match reason {
        SkipReason::OptedOut => "opted_out",
        SkipReason::BlockedBot => "blocked_bot",
        SkipReason::Banned => "banned",
    }
}
