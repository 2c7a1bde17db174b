//! The delivery worker's own tables (`migrations/0006_delivery.sql`): its checkpoint and the
//! satisfaction prompts it sent. Nothing here touches the event log.

use domain::TicketId;
use eventlog::Position;
use sqlx::PgPool;
use uuid::Uuid;

/// SQL access for one named worker.
#[derive(Debug, Clone)]
pub(super) struct Store {
    pool: PgPool,
    worker: String,
}

impl Store {
    pub(super) fn new(pool: PgPool, worker: String) -> Self {
        Store { pool, worker }
    }

    /// Where the worker stands ([`Position::START`] the first time).
    pub(super) async fn checkpoint(&self) -> Result<Position, sqlx::Error> {
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
    pub(super) async fn save_checkpoint(&self, position: Position) -> Result<(), sqlx::Error> {
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
    pub(super) async fn csat_sent(&self, resolved_event: Uuid) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(
            "select exists (select 1 from delivery_csat_prompts where resolved_event_id = $1)",
        )
        .bind(resolved_event)
        .fetch_one(&self.pool)
        .await
    }

    /// Records that Telegram accepted the prompt for this `ticket.resolved` event.
    pub(super) async fn record_csat(
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

// Positions come from Postgres bigints, so both conversions are lossless in practice.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
