//! Time travel for auditors: `ticketAt`, `customerAt` and `broadcastAt` show a ticket, a
//! customer or a broadcast as it was at a version of its stream or at a moment, folded from
//! the log with the domain's own fold ([`app::as_of`]), never from a read model.
//!
//! Who may ask is decided as for reading the thing now, against the caller's current state:
//! `ticketAt` as `ticket` (an agent limited to categories only for tickets now in them),
//! `customerAt` as `customer`, `broadcastAt` as `broadcast`. Each fold reads the stream's
//! prefix a page at a time and refuses a prefix longer than its bound (`VALIDATION`).

mod broadcast;
mod customer;
mod ticket;

use app::as_of::{AsOfError, Until};
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, OutputType, Result};
use chrono::{DateTime, Utc};

pub use broadcast::{BroadcastAsOf, BroadcastStatusAsOf};
pub use customer::{CustomerAsOf, CustomerTicketAsOf};
pub use ticket::{TicketAsOf, TicketMessageAsOf};

use crate::auth::Permission;
use crate::graphql::context::Api;
use crate::graphql::error::{Code, error, failed, internal};
use crate::graphql::guard::Need;
use crate::graphql::pagination::{PageRequest, connection, cursor_part};

/// Most events of a ticket's stream one `ticketAt` folds.
pub const MAX_TICKET_EVENTS: usize = 10_000;
/// Most events of a customer's stream one `customerAt` folds.
pub const MAX_CUSTOMER_EVENTS: usize = 10_000;
/// Most events of a broadcast's stream one `broadcastAt` folds (each batch of outcomes names
/// up to 100 recipients, which the fold keeps).
pub const MAX_BROADCAST_EVENTS: usize = 5_000;

/// `ticketAt`, `customerAt`, `broadcastAt`.
#[derive(Debug, Default)]
pub struct AsOfQuery;

#[Object]
impl AsOfQuery {
    /// A ticket as it was: its events up to `version` (included) or up to the last one
    /// recorded at or before `asOf` (give exactly one), folded as the domain folds them, with
    /// the messages and notes it had then. Null when the ticket had no event yet at that
    /// point; `NOT_FOUND` when it does not exist or is outside the caller's categories now.
    /// At most 10,000 events are folded.
    #[graphql(guard = "Need(Permission::ReadTickets)")]
    async fn ticket_at(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<DateTime<Utc>>,
        version: Option<i64>,
    ) -> Result<Option<TicketAsOf>> {
        let until = until(as_of, version)?;
        let id = crate::graphql::ids::uuid_of("Ticket", &id)?;
        crate::graphql::guard::visible_ticket(ctx, id).await?;
        let api = ctx.data_unchecked::<Api>();
        ticket::fold(&api.log, id, until).await
    }

    /// A customer as they were: their stream's events up to `version` (included) or up to
    /// the last one recorded at or before `asOf` (give exactly one), folded as the domain
    /// folds them. Null when the customer had no event yet at that point; `NOT_FOUND` when
    /// `customer` would answer so now. At most 10,000 events are folded.
    #[graphql(guard = "Need(Permission::ReadCustomers)")]
    async fn customer_at(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<DateTime<Utc>>,
        version: Option<i64>,
    ) -> Result<Option<CustomerAsOf>> {
        let until = until(as_of, version)?;
        let key = crate::graphql::customers::customer_key(&id)?;
        if crate::graphql::customers::visible_customer(ctx, key)
            .await?
            .is_none()
        {
            return Err(error(Code::NotFound, "no such customer"));
        }
        let api = ctx.data_unchecked::<Api>();
        customer::fold(&api.log, key, until).await
    }

    /// A broadcast as it was: its events up to `version` (included) or up to the last one
    /// recorded at or before `asOf` (give exactly one), folded as the domain folds them. Null
    /// when it had no event yet at that point; `NOT_FOUND` when it does not exist. At most
    /// 5,000 events are folded.
    #[graphql(guard = "Need(Permission::ReadBroadcasts)")]
    async fn broadcast_at(
        &self,
        ctx: &Context<'_>,
        id: ID,
        as_of: Option<DateTime<Utc>>,
        version: Option<i64>,
    ) -> Result<Option<BroadcastAsOf>> {
        let until = until(as_of, version)?;
        let id = crate::graphql::ids::uuid_of("Broadcast", &id)?;
        let api = ctx.data_unchecked::<Api>();
        broadcast::fold(&api.log, id, until).await
    }
}

/// The point asked for: exactly one of `asOf` and `version`.
fn until(as_of: Option<DateTime<Utc>>, version: Option<i64>) -> Result<Until> {
    match (as_of, version) {
        (Some(at), None) => Ok(Until::Time(at)),
        (None, Some(version)) => u64::try_from(version).map(Until::Version).map_err(|_| {
            error(
                Code::Validation,
                "version must be 0 or more (a stream's first event is version 0)",
            )
        }),
        (Some(_), Some(_)) | (None, None) => Err(error(
            Code::Validation,
            "give exactly one of asOf (a time) and version (a stream version)",
        )),
    }
}

/// A fold's failure as clients see it.
fn fold_failed(what: &str, failure: AsOfError) -> async_graphql::Error {
    match failure {
        AsOfError::TooLong { limit } => error(
            Code::Validation,
            format!(
                "this {what} has more than {limit} events up to that point, more than one \
                 request folds: ask for an earlier version"
            ),
        ),
        AsOfError::Decode { .. } => internal("a stored event cannot be read", failure),
        AsOfError::Log(log) => failed("cannot read the log", log),
    }
}

/// A page of rows held in memory, in `seq` order, as a connection: the cursors are those of
/// the read model's lists of the same rows (`seq` and id).
fn seq_connection<Row, Node: OutputType>(
    request: &PageRequest,
    rows: &[Row],
    seq_of: impl Fn(&Row) -> i64,
    cursor_of: impl Fn(&Row) -> String,
    node_of: impl Fn(&Row) -> Node,
) -> Result<Connection<String, Node>> {
    let seq = |cursor: &Option<(String, String)>| -> Result<Option<i64>> {
        cursor.as_ref().map(|(key, _)| cursor_part(key)).transpose()
    };
    let after = seq(&request.after)?;
    let before = seq(&request.before)?;
    let in_range: Vec<&Row> = rows
        .iter()
        .filter(|row| after.is_none_or(|after| seq_of(row) > after))
        .filter(|row| before.is_none_or(|before| seq_of(row) < before))
        .collect();
    let wanted = request.size + 1;
    let page: Vec<&Row> = if request.from_end {
        in_range[in_range.len().saturating_sub(wanted)..].to_vec()
    } else {
        in_range.into_iter().take(wanted).collect()
    };
    Ok(connection(request, page, |row| cursor_of(row), node_of))
}
