//! Forgetting a customer's personal data (crypto-shredding, see [`crate::personal`]).
//!
//! [`forget_customer`] deletes the customer's key, so that every personal field sealed for
//! them reads as its stand-in everywhere from then on (the log, replays, time travel, exports
//! made afterwards), then appends `customer.forgotten` to their stream (the audit record,
//! naming the acting admin), which tells the read models to clear what they kept of them.
//! It also deletes what the bot kept outside the log about the customer (edits waiting for
//! their message, updates it could not record). Forgetting twice is harmless: the second time
//! finds no key and records the event again.
//!
//! Events stored before sealing existed hold their personal fields in plain text, and the log
//! is append-only: those fields stay in the log. The read models are cleared all the same, and
//! the answer counts such events so that the operator knows.

use domain::customer::{CustomerEvent, CustomerForgotten};
use domain::ids::{CustomerId, TicketId};
use domain::{DomainEvent, StreamId};
use eventlog::postgres::{PostgresLog, keys};
use eventlog::{Actor, AppendRequest, Direction, EventLog, ExpectedVersion, Metadata, NewEvent};

use crate::personal::subject;

/// What a forget did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forgotten {
    /// The customer.
    pub customer: CustomerId,
    /// Whether a key was deleted (`false`: forgotten before, or nothing was ever sealed).
    pub key_deleted: bool,
    /// Every ticket the customer had.
    pub tickets: Vec<TicketId>,
    /// Events of the customer stored before sealing, whose personal fields stay in the log.
    pub plain_events: u64,
    /// The customer's file ids (`file_unique_id`s) whose stored copies are to be deleted.
    pub files: Vec<String>,
}

/// Why a forget failed.
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    /// No such customer.
    #[error("no customer with Telegram id {0}")]
    UnknownCustomer(i64),
    /// The log or the database failed.
    #[error(transparent)]
    Log(#[from] eventlog::Error),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The event types whose personal fields are sealed, with the field.
const PERSONAL_FIELDS: [(&str, &str); 8] = [
    ("customer.registered", "personal"),
    ("customer.profile_updated", "personal"),
    ("customer.message_refused", "content"),
    ("customer.banned", "content"),
    ("customer.start_payload_received", "payload"),
    ("ticket.customer_message_posted", "content"),
    ("ticket.customer_message_edited", "content"),
    ("ticket.rated", "content"),
];

/// Forgets `customer`'s personal data; `actor` is the admin who asked.
///
/// # Errors
/// [`ForgetError::UnknownCustomer`] when the customer has no stream; what the log or the
/// database answered otherwise.
pub async fn forget_customer(
    log: &PostgresLog,
    customer: CustomerId,
    actor: Actor,
) -> Result<Forgotten, ForgetError> {
    let stream = StreamId::Customer(customer).name();
    let mut tickets = Vec::new();
    let mut from = 0;
    loop {
        let page = match log
            .read_stream(
                &stream,
                from,
                Direction::Forwards,
                eventlog::limits::PAGE_SIZE,
            )
            .await
        {
            Err(eventlog::Error::StreamNotFound { .. }) => {
                return Err(ForgetError::UnknownCustomer(customer.0));
            }
            page => page?,
        };
        for event in &page {
            if event.event_type == "customer.ticket_opened"
                && let Some(ticket) = event
                    .payload
                    .get("ticket_id")
                    .and_then(|id| serde_json::from_value::<TicketId>(id.clone()).ok())
                && !tickets.contains(&ticket)
            {
                tickets.push(ticket);
            }
        }
        match page.last() {
            Some(last) if page.len() == eventlog::limits::PAGE_SIZE => {
                from = last.stream_version + 1;
            }
            _ => break,
        }
    }
    let pool = log.pool();
    let mut streams = vec![stream.clone()];
    streams.extend(
        tickets
            .iter()
            .map(|ticket| StreamId::Ticket(*ticket).name()),
    );
    let (types, fields): (Vec<&str>, Vec<&str>) = PERSONAL_FIELDS.into_iter().unzip();
    let plain_events: i64 = sqlx::query_scalar(
        "select count(*) from events e \
           join unnest($2::text[], $3::text[]) as p(event_type, field) \
             on p.event_type = e.event_type \
          where e.stream_id = any($1) and e.payload ? p.field \
            and not coalesce(e.payload -> p.field ? '$sealed', false)",
    )
    .bind(&streams)
    .bind(&types)
    .bind(&fields)
    .fetch_one(pool)
    .await?;
    // The customer's files, read while their key still opens them.
    let ticket_ids: Vec<uuid::Uuid> = tickets.iter().map(|ticket| ticket.as_uuid()).collect();
    let files: Vec<String> = sqlx::query_scalar(
        "select distinct f from ( \
             select file_unique_id as f from messages \
              where ticket_id = any($1) and direction = 'in' \
             union all \
             select m.media -> 'thumbnail' ->> 'file_unique_id' from messages m \
              where m.ticket_id = any($1) and m.direction = 'in' \
         ) as files where f is not null and f <> ''",
    )
    .bind(&ticket_ids)
    .fetch_all(pool)
    .await?;

    let key_deleted = keys::forget(pool, &subject(customer.0)).await?;

    let event = CustomerEvent::Forgotten(CustomerForgotten {
        at: chrono::Utc::now(),
        tickets: tickets.clone(),
    });
    let payload = serde_json::to_value(&event).map_err(eventlog::Error::Codec)?;
    let new = NewEvent::new(
        event.event_type(),
        payload,
        Metadata::new(actor).correlated(uuid::Uuid::now_v7()),
    )
    .with_schema_version(event.schema_version());
    let _appended = log
        .append(AppendRequest::to_stream(
            stream,
            ExpectedVersion::StreamExists,
            vec![new],
        ))
        .await?;

    // What the bot kept outside the log: edits waiting for their message, and updates it
    // could not record (raw, with the customer's text).
    sqlx::query("delete from telegram_early_edits where customer_id = $1")
        .bind(customer.0)
        .execute(pool)
        .await?;
    sqlx::query(
        "delete from telegram_updates_unrecorded \
          where jsonb_path_exists(raw_update, 'lax $.** ? (@.from.id == $id || @.chat.id == $id)', \
                                  jsonb_build_object('id', $1::bigint))",
    )
    .bind(customer.0)
    .execute(pool)
    .await?;

    Ok(Forgotten {
        customer,
        key_deleted,
        tickets,
        plain_events: u64::try_from(plain_events).unwrap_or(0),
        files,
    })
}
