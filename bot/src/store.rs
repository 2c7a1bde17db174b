//! The bot's own tables, and all of the bot's SQL: nothing else in the crate talks to the
//! database (the log is written through the command service, the delivery lock is taken
//! through `app::ownership`). Nothing here touches the event log.
//!
//! - [`HandledUpdates`]: `telegram_updates_handled` (`migrations/0007_bot_updates.sql`,
//!   claims added by `0017_inbound_fidelity.sql`), the updates the bot answers itself, claimed
//!   while handled and marked once done, so a repeat is not answered twice.
//! - [`EarlyEdits`]: `telegram_early_edits` (`0017_inbound_fidelity.sql`), edits that arrived
//!   before the message they edit, kept until it is recorded.
//! - [`UnrecordedUpdates`]: the updates that can never be recorded, kept with their raw JSON
//!   and the error for admins in `telegram_updates_unrecorded`
//!   (`migrations/0014_unrecorded_updates.sql`; read through `projections::unrecorded`).
//! - [`DeliveryStore`]: the delivery worker's tables (`migrations/0006_delivery.sql`,
//!   `migrations/0016_delivery_retries.sql`): its checkpoint, the satisfaction prompts it sent
//!   (and whether their buttons are gone), the replies it keeps trying and Telegram's
//!   bot-wide pause.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::content::{MessageContent, TelegramMessageId};
use domain::{CustomerId, MessageId, TicketId};
use eventlog::Position;
use sqlx::PgPool;
use uuid::Uuid;

/// The updates the bot answers itself, by idempotency key: claimed while one handler works on
/// them, then marked handled.
#[derive(Debug, Clone)]
pub(crate) struct HandledUpdates {
    pool: PgPool,
}

/// Where an update stands for [`HandledUpdates::claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The caller holds the claim (this id) until its lease ends: it handles the update.
    Won(Uuid),
    /// The update was fully handled before.
    Handled,
    /// Another handler holds an unexpired claim on it.
    Held,
}

impl HandledUpdates {
    pub(crate) fn new(pool: PgPool) -> Self {
        HandledUpdates { pool }
    }

    /// Claims the update of `key` for `lease`, unless it is handled or claimed by someone
    /// else whose lease has not run out. One statement: of concurrent callers exactly one
    /// wins, and a claim left behind by a crashed handler is taken over once its lease ends.
    pub(crate) async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, sqlx::Error> {
        let claim_id = Uuid::now_v7();
        let won: Option<Uuid> = sqlx::query_scalar(
            "insert into telegram_updates_handled as h (update_key, claim_id, claimed_until)
             values ($1, $2, now() + make_interval(secs => $3))
             on conflict (update_key) do update
                set claim_id = excluded.claim_id, claimed_until = excluded.claimed_until,
                    handled_at = now()
              where h.claimed_until is not null and h.claimed_until < now()
             returning claim_id",
        )
        .bind(key)
        .bind(claim_id)
        .bind(lease.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        if won == Some(claim_id) {
            return Ok(Claim::Won(claim_id));
        }
        let claimed: Option<Option<chrono::DateTime<chrono::Utc>>> = sqlx::query_scalar(
            "select claimed_until from telegram_updates_handled where update_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match claimed {
            Some(None) => Claim::Handled,
            // Held, or released between the two statements: the caller asks again.
            Some(Some(_)) | None => Claim::Held,
        })
    }

    /// Marks the update of `key` handled, ending any claim on it: also one that another
    /// handler took over after this one's lease ran out (the update is handled either way).
    pub(crate) async fn finish(&self, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "insert into telegram_updates_handled (update_key) values ($1)
             on conflict (update_key) do update
                set claim_id = null, claimed_until = null, handled_at = now()",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives up the claim `claim_id` on the update of `key` (handling failed and Telegram will
    /// deliver the update again), unless someone else took it over meanwhile.
    pub(crate) async fn release(&self, key: &str, claim_id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query("delete from telegram_updates_handled where update_key = $1 and claim_id = $2")
            .bind(key)
            .bind(claim_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets the updates handled more than `age` ago; answers how many.
    pub(crate) async fn forget_older_than(&self, age: Duration) -> Result<u64, sqlx::Error> {
        let seconds = f64::from(u32::try_from(age.as_secs()).unwrap_or(u32::MAX));
        let done = sqlx::query(
            "delete from telegram_updates_handled \
             where handled_at < now() - make_interval(secs => $1) \
               and (claimed_until is null or claimed_until < now())",
        )
        .bind(seconds)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// One edit kept until its message is recorded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EarlyEdit {
    /// The idempotency key of the edit's update.
    pub(crate) key: String,
    /// The content after the edit.
    pub(crate) content: MessageContent,
    /// When the edit was made.
    pub(crate) at: DateTime<Utc>,
}

/// Edits that arrived before their message (see `crate::inbound::edits`).
#[derive(Debug, Clone)]
pub(crate) struct EarlyEdits {
    pool: PgPool,
}

impl EarlyEdits {
    pub(crate) fn new(pool: PgPool) -> Self {
        EarlyEdits { pool }
    }

    /// Keeps the edit of `key` for message `telegram_message_id` of `customer` (a repeat of
    /// the same update changes nothing).
    pub(crate) async fn keep(
        &self,
        customer: CustomerId,
        telegram_message_id: TelegramMessageId,
        edit: &EarlyEdit,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "insert into telegram_early_edits
                (customer_id, telegram_message_id, update_key, content, edited_at)
             values ($1, $2, $3, $4, $5)
             on conflict do nothing",
        )
        .bind(customer.0)
        .bind(telegram_message_id.0)
        .bind(&edit.key)
        .bind(sqlx::types::Json(&edit.content))
        .bind(edit.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The edits kept for message `telegram_message_id` of `customer`, in the order they were
    /// made. A stored content this code cannot read is skipped with a warning.
    pub(crate) async fn of(
        &self,
        customer: CustomerId,
        telegram_message_id: TelegramMessageId,
    ) -> Result<Vec<EarlyEdit>, sqlx::Error> {
        let rows: Vec<(String, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
            "select update_key, content, edited_at from telegram_early_edits
              where customer_id = $1 and telegram_message_id = $2
              order by edited_at, received_at, update_key",
        )
        .bind(customer.0)
        .bind(telegram_message_id.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(key, content, at)| match serde_json::from_value(content) {
                Ok(content) => Some(EarlyEdit { key, content, at }),
                Err(error) => {
                    tracing::warn!(%error, "a kept edit cannot be read; left in place");
                    None
                }
            })
            .collect())
    }

    /// Forgets the edit of `key` (applied).
    pub(crate) async fn forget(
        &self,
        customer: CustomerId,
        telegram_message_id: TelegramMessageId,
        key: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "delete from telegram_early_edits
              where customer_id = $1 and telegram_message_id = $2 and update_key = $3",
        )
        .bind(customer.0)
        .bind(telegram_message_id.0)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets the edits kept more than `age` ago: their message never came (it was sent
    /// before the bot saw the chat, or belongs to a closed ticket).
    pub(crate) async fn forget_older_than(&self, age: Duration) -> Result<u64, sqlx::Error> {
        let seconds = f64::from(u32::try_from(age.as_secs()).unwrap_or(u32::MAX));
        let done = sqlx::query(
            "delete from telegram_early_edits \
             where received_at < now() - make_interval(secs => $1)",
        )
        .bind(seconds)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// The updates that can never be recorded (see [`crate::inbound`]).
#[derive(Debug, Clone)]
pub(crate) struct UnrecordedUpdates {
    pool: PgPool,
}

impl UnrecordedUpdates {
    pub(crate) fn new(pool: PgPool) -> Self {
        UnrecordedUpdates { pool }
    }

    /// Keeps the update of `key` with its `raw` JSON and the `error` that stops it; a repeat
    /// of the same update refreshes the error and the time. Neither `raw` nor `error` may
    /// hold a NUL character.
    pub(crate) async fn insert(
        &self,
        key: &str,
        update_id: u32,
        raw: &serde_json::Value,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "insert into telegram_updates_unrecorded (update_key, update_id, raw_update, error)
             values ($1, $2, $3, $4)
             on conflict (update_key) do update
                set error = excluded.error, raw_update = excluded.raw_update,
                    recorded_at = now()",
        )
        .bind(key)
        .bind(i64::from(update_id))
        .bind(sqlx::types::Json(raw))
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The delivery worker's state, for one named worker.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryStore {
    pool: PgPool,
    worker: String,
}

impl DeliveryStore {
    pub(crate) fn new(pool: PgPool, worker: String) -> Self {
        DeliveryStore { pool, worker }
    }

    /// Where the worker stands ([`Position::START`] the first time).
    pub(crate) async fn checkpoint(&self) -> Result<Position, sqlx::Error> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "select position_tx, position_seq from delivery_checkpoints where worker = $1",
        )
        .bind(&self.worker)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map_or(Position::START, |(tx, seq)| {
            Position::from_parts(to_u64(tx), to_u64(seq))
        }))
    }

    /// Moves the checkpoint to `position`; never moves it back.
    pub(crate) async fn save_checkpoint(&self, position: Position) -> Result<(), sqlx::Error> {
        let (tx, seq) = position.parts();
        sqlx::query(
            "insert into delivery_checkpoints as c (worker, position_tx, position_seq)
             values ($1, $2, $3)
             on conflict (worker) do update
                set position_tx = excluded.position_tx,
                    position_seq = excluded.position_seq,
                    updated_at = now()
              where (c.position_tx, c.position_seq)
                  < (excluded.position_tx, excluded.position_seq)",
        )
        .bind(&self.worker)
        .bind(to_i64(tx))
        .bind(to_i64(seq))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether the prompt for this `ticket.resolved` event was sent.
    pub(crate) async fn csat_sent(&self, resolved_event: Uuid) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(
            "select exists (select 1 from delivery_csat_prompts where resolved_event_id = $1)",
        )
        .bind(resolved_event)
        .fetch_one(&self.pool)
        .await
    }

    /// Records that Telegram accepted the prompt for this `ticket.resolved` event.
    pub(crate) async fn record_csat(
        &self,
        resolved_event: Uuid,
        ticket: TicketId,
        telegram_message_id: i32,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "insert into delivery_csat_prompts (resolved_event_id, ticket_id, telegram_message_id)
             values ($1, $2, $3)
             on conflict (resolved_event_id) do nothing",
        )
        .bind(resolved_event)
        .bind(ticket.0)
        .bind(telegram_message_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Where the retries of one reply stand (a row of `delivery_retries`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct RetryRow {
    /// The event whose job is trying.
    pub(crate) cause_event_id: Uuid,
    /// Failed attempts so far.
    pub(crate) attempts: i32,
    /// Messages of the reply Telegram accepted already.
    pub(crate) parts_sent: i32,
    /// Telegram's id of the reply's first message, once accepted.
    pub(crate) first_telegram_message_id: Option<i32>,
    pub(crate) first_failed_at: DateTime<Utc>,
    pub(crate) next_attempt_at: DateTime<Utc>,
    pub(crate) last_error: String,
}

impl DeliveryStore {
    /// Where the retries of reply `message_id` stand, if it is being retried.
    pub(crate) async fn retry(
        &self,
        message_id: MessageId,
    ) -> Result<Option<RetryRow>, sqlx::Error> {
        sqlx::query_as(
            "select cause_event_id, attempts, parts_sent, first_telegram_message_id,
                    first_failed_at, next_attempt_at, last_error
               from delivery_retries where message_id = $1",
        )
        .bind(message_id.as_uuid())
        .fetch_optional(&self.pool)
        .await
    }

    /// Saves where the retries of reply `message_id` stand.
    pub(crate) async fn save_retry(
        &self,
        message_id: MessageId,
        ticket: TicketId,
        row: &RetryRow,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "insert into delivery_retries (message_id, ticket_id, cause_event_id, attempts,
                 parts_sent, first_telegram_message_id, first_failed_at, next_attempt_at,
                 last_error)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             on conflict (message_id) do update
                set cause_event_id = excluded.cause_event_id,
                    attempts = excluded.attempts,
                    parts_sent = excluded.parts_sent,
                    first_telegram_message_id = excluded.first_telegram_message_id,
                    first_failed_at = excluded.first_failed_at,
                    next_attempt_at = excluded.next_attempt_at,
                    last_error = excluded.last_error,
                    updated_at = now()",
        )
        .bind(message_id.as_uuid())
        .bind(ticket.0)
        .bind(row.cause_event_id)
        .bind(row.attempts)
        .bind(row.parts_sent)
        .bind(row.first_telegram_message_id)
        .bind(row.first_failed_at)
        .bind(row.next_attempt_at)
        .bind(&row.last_error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets the retries of reply `message_id` (its outcome is recorded).
    pub(crate) async fn forget_retry(&self, message_id: MessageId) -> Result<(), sqlx::Error> {
        sqlx::query("delete from delivery_retries where message_id = $1")
            .bind(message_id.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Until when Telegram asked the bot to send nothing, if it did.
    pub(crate) async fn pause(&self) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        sqlx::query_scalar("select not_before from delivery_pauses where worker = $1")
            .bind(&self.worker)
            .fetch_optional(&self.pool)
            .await
    }

    /// Remembers that nothing may be sent before `not_before`; never shortens a pause.
    pub(crate) async fn save_pause(&self, not_before: DateTime<Utc>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "insert into delivery_pauses as p (worker, not_before) values ($1, $2)
             on conflict (worker) do update
                set not_before = greatest(p.not_before, excluded.not_before),
                    updated_at = now()",
        )
        .bind(&self.worker)
        .bind(not_before)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The satisfaction prompts of `ticket` that still show their buttons: the
    /// `ticket.resolved` event each answered, and Telegram's id of the prompt.
    pub(crate) async fn prompts_with_buttons(
        &self,
        ticket: TicketId,
    ) -> Result<Vec<(Uuid, i32)>, sqlx::Error> {
        sqlx::query_as(
            "select resolved_event_id, telegram_message_id from delivery_csat_prompts
              where ticket_id = $1 and keyboard_removed_at is null
              order by sent_at",
        )
        .bind(ticket.0)
        .fetch_all(&self.pool)
        .await
    }

    /// Records that the prompt answering `resolved_event` no longer shows its buttons.
    pub(crate) async fn buttons_removed(&self, resolved_event: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query(
            "update delivery_csat_prompts set keyboard_removed_at = now()
              where resolved_event_id = $1 and keyboard_removed_at is null",
        )
        .bind(resolved_event)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

// Positions come from Postgres bigints, so both conversions are lossless in practice.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
