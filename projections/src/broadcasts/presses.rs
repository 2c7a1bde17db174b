//! The part of the "broadcasts" read model that follows what customers do with a broadcast
//! and how fast it goes out: `broadcast_button_presses` (each customer's presses of each
//! callback button, from `broadcast.button_pressed`) and `broadcast_send_rate` (outcomes that
//! were sends, delivered or failed, per second of their recording, from
//! `broadcast.outcomes_recorded`).
//!
//! The broadcasts fold calls [`Interactions::event`] only for events past the version its
//! broadcast row holds, so each event counts once; the writes add to what the tables hold.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use domain::broadcast::{BroadcastEvent, Outcome};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::batch::{ApplyError, Target};
use crate::sql::PerTarget;

/// A customer's presses of one button in a batch: how many, the first and the last time.
type Pressed = (i32, DateTime<Utc>, DateTime<Utc>);

/// Presses and sends seen in one batch, added to the tables by [`Interactions::write`].
#[derive(Debug, Default)]
pub(super) struct Interactions {
    /// (broadcast, customer, button) → presses.
    presses: HashMap<(Uuid, i64, i16), Pressed>,
    /// (broadcast, second) → sends.
    sent: HashMap<(Uuid, DateTime<Utc>), i32>,
}

impl Interactions {
    /// Notes `event` of broadcast `id` (an event the fold has not applied before).
    pub(super) fn event(&mut self, id: Uuid, event: &BroadcastEvent) {
        match event {
            BroadcastEvent::ButtonPressed(pressed) => {
                let key = (id, pressed.customer.0, i16::from(pressed.index));
                let entry = self
                    .presses
                    .entry(key)
                    .or_insert((0, pressed.at, pressed.at));
                entry.0 = entry.0.saturating_add(1);
                entry.1 = entry.1.min(pressed.at);
                entry.2 = entry.2.max(pressed.at);
            }
            BroadcastEvent::OutcomesRecorded(recorded) => {
                let sends = recorded
                    .outcomes
                    .iter()
                    .filter(|o| !matches!(o.outcome, Outcome::Skipped { .. }))
                    .count();
                if sends > 0 {
                    let entry = self.sent.entry((id, second_of(recorded.at))).or_default();
                    *entry = entry.saturating_add(i32::try_from(sends).unwrap_or(i32::MAX));
                }
            }
            _ => {}
        }
    }

    /// Adds what the batch saw to the tables of `target`.
    pub(super) async fn write(
        self,
        conn: &mut PgConnection,
        target: Target,
    ) -> Result<(), ApplyError> {
        if !self.presses.is_empty() {
            static SQL: PerTarget = PerTarget::new();
            let sql = SQL.get(target, |target| {
                format!(
                    "insert into {} as t (broadcast_id, customer_id, button_index, presses, \
                       first_pressed_at, last_pressed_at) \
                     select * from unnest($1::uuid[], $2::bigint[], $3::smallint[], \
                       $4::integer[], $5::timestamptz[], $6::timestamptz[]) \
                     on conflict (broadcast_id, customer_id, button_index) do update set \
                       presses = t.presses + excluded.presses, \
                       first_pressed_at = least(t.first_pressed_at, excluded.first_pressed_at), \
                       last_pressed_at = greatest(t.last_pressed_at, excluded.last_pressed_at)",
                    target.table("broadcast_button_presses")
                )
            });
            let mut columns = (vec![], vec![], vec![], vec![], vec![], vec![]);
            for ((broadcast, customer, index), (presses, first, last)) in self.presses {
                columns.0.push(broadcast);
                columns.1.push(customer);
                columns.2.push(index);
                columns.3.push(presses);
                columns.4.push(first);
                columns.5.push(last);
            }
            sqlx::query(sql)
                .bind(columns.0)
                .bind(columns.1)
                .bind(columns.2)
                .bind(columns.3)
                .bind(columns.4)
                .bind(columns.5)
                .execute(&mut *conn)
                .await?;
        }
        if !self.sent.is_empty() {
            static SQL: PerTarget = PerTarget::new();
            let sql = SQL.get(target, |target| {
                format!(
                    "insert into {} as t (broadcast_id, second, sent) \
                     select * from unnest($1::uuid[], $2::timestamptz[], $3::integer[]) \
                     on conflict (broadcast_id, second) do update set sent = t.sent + excluded.sent",
                    target.table("broadcast_send_rate")
                )
            });
            let (mut ids, mut seconds, mut sent) = (vec![], vec![], vec![]);
            for ((id, second), count) in self.sent {
                ids.push(id);
                seconds.push(second);
                sent.push(count);
            }
            sqlx::query(sql)
                .bind(ids)
                .bind(seconds)
                .bind(sent)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// `at` cut to its whole second.
fn second_of(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// Presses of one button of a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ButtonTotal {
    /// The button's place among all the broadcast's buttons, row by row, from 0.
    pub button_index: i16,
    /// Presses recorded.
    pub presses: i64,
    /// Customers who pressed it.
    pub customers: i64,
}

/// The presses of each button of `broadcast` that was pressed, by button.
///
/// # Errors
/// The database's.
pub async fn button_totals(
    db: impl PgExecutor<'_>,
    broadcast: Uuid,
) -> sqlx::Result<Vec<ButtonTotal>> {
    sqlx::query_as(
        "select button_index, sum(presses)::bigint as presses, count(*) as customers \
         from broadcast_button_presses where broadcast_id = $1 \
         group by button_index order by button_index",
    )
    .bind(broadcast)
    .fetch_all(db)
    .await
}

/// One customer's presses of one button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct RecipientPresses {
    /// The customer's Telegram user id.
    pub customer_id: i64,
    /// The button's place.
    pub button_index: i16,
    /// How often.
    pub presses: i32,
}

/// The presses of `customers` (at most a page of them) on `broadcast`, by customer and button.
///
/// # Errors
/// The database's.
pub async fn presses_of(
    db: impl PgExecutor<'_>,
    broadcast: Uuid,
    customers: &[i64],
) -> sqlx::Result<Vec<RecipientPresses>> {
    sqlx::query_as(
        "select customer_id, button_index, presses from broadcast_button_presses \
         where broadcast_id = $1 and customer_id = any($2) \
         order by customer_id, button_index",
    )
    .bind(broadcast)
    .bind(customers)
    .fetch_all(db)
    .await
}

/// How many sends (delivered or failed) of `broadcast` were recorded from the second holding
/// `since` on.
///
/// # Errors
/// The database's.
pub async fn sent_since(
    db: impl PgExecutor<'_>,
    broadcast: Uuid,
    since: DateTime<Utc>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select coalesce(sum(sent), 0)::bigint from broadcast_send_rate \
         where broadcast_id = $1 and second >= $2",
    )
    .bind(broadcast)
    .bind(second_of(since))
    .fetch_one(db)
    .await
}

/// The window the current sending rate is measured over.
pub const RATE_WINDOW: TimeDelta = TimeDelta::seconds(30);
