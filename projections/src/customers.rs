//! Read model "customers": who writes to the bot and whether we may write to them.
//!
//! Owns `customers` (profile, flags, ticket counters, last seen) and `customer_tickets` (each
//! customer's tickets as the customer stream tracks them, which also maps a ticket to its
//! customer so that a customer message on a ticket stream can move `last_seen_at`). Fed by
//! `customer.*` events and by `ticket.opened` / `ticket.customer_message_posted`.
//!
//! A customer row records the customer stream version it reflects and skips older events;
//! `last_seen_at` only ever moves forward (the latest message wins) and ticket counters are
//! recomputed from `customer_tickets`, so replays change nothing. It must not log names.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use domain::customer::CustomerEvent;
use domain::ticket::TicketEvent;
use domain::{AnyEvent, StreamId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{ApplyError, Envelope, Target, read_model};
use crate::sql;
use crate::table::{Table, Text, select_list, stored_text, table};

pub mod queries;

/// The "customers" read model (tables `customers`, `customer_tickets`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Customers;

const TABLES: &[&str] = &["customers", "customer_tickets"];

read_model!(
    Customers,
    name: "customers",
    version: 1,
    tables: TABLES,
    apply: apply,
    wants: wants,
);

/// Customer events, and the ticket events that open a ticket or bring a customer's message.
fn wants(envelope: &Envelope) -> bool {
    matches!(
        (&envelope.stream, &envelope.event),
        (StreamId::Customer(_), AnyEvent::Customer(_))
            | (
                StreamId::Ticket(_),
                AnyEvent::Ticket(TicketEvent::Opened(_) | TicketEvent::CustomerMessagePosted(_))
            )
    )
}

table! {
    /// One row of `customers`: someone who wrote to the bot, and whether we may write to them.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CustomerRow in "customers" {
        /// Their Telegram user id.
        id: i64 = "bigint",
        /// First name.
        first_name: String = "text",
        /// Last name.
        last_name: Option<String> = "text",
        /// `@username`, without the `@`.
        username: Option<String> = "text",
        /// Their client's language.
        language_code: Option<String> = "text",
        /// Their first message.
        registered_at: DateTime<Utc> = "timestamptz",
        /// The last change of their profile.
        profile_updated_at: Option<DateTime<Utc>> = "timestamptz",
        /// Their last message.
        last_seen_at: Option<DateTime<Utc>> = "timestamptz",
        /// Whether they blocked the bot (replies cannot reach them).
        blocked_bot: bool = "boolean",
        /// Whether the team banned them.
        banned: bool = "boolean",
        /// Why, when banned.
        ban_reason: Option<String> = "text",
        /// When, when banned.
        banned_at: Option<DateTime<Utc>> = "timestamptz",
        /// Whether they opted out of broadcasts.
        opted_out_of_broadcasts: bool = "boolean",
        /// Tickets they ever had.
        tickets_total: i32 = "integer",
        /// Their tickets not yet resolved.
        tickets_open: i32 = "integer",
        /// The most recently (re)opened of their active tickets.
        open_ticket_id: Option<Uuid> = "uuid",
        /// The payload of their first `/start` that had one.
        first_start_payload: Option<String> = "text",
        /// The payload of their latest `/start` that had one.
        start_payload: Option<String> = "text",
        /// When the latest payload came.
        start_payload_at: Option<DateTime<Utc>> = "timestamptz",
        /// The customer stream's version this row reflects.
        version: i64 = "bigint",
    }
}

/// Where a customer's ticket stands, as the customer stream tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomerTicketState {
    /// Opened or reopened, not resolved since.
    Active,
    /// Resolved (the customer may reopen it).
    Resolved,
    /// Closed for good.
    Closed,
}

stored_text!(
    "customer ticket state",
    CustomerTicketState {
        Active => "active",
        Resolved => "resolved",
        Closed => "closed",
    }
);

table! {
    /// One row of `customer_tickets`: a customer's ticket as the customer stream tracks it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CustomerTicketRow in "customer_tickets" {
        /// The ticket.
        ticket_id: Uuid = "uuid",
        /// Its customer.
        customer_id: i64 = "bigint",
        /// Its category, if any.
        category_id: Option<Uuid> = "uuid",
        /// Where it stands.
        #[sqlx(try_from = "Text<CustomerTicketState>")]
        state: CustomerTicketState = "text",
        /// When it was opened.
        opened_at: DateTime<Utc> = "timestamptz",
        /// When it last became active (opened or reopened).
        activated_at: DateTime<Utc> = "timestamptz",
        /// The customer's last message on it.
        last_message_at: Option<DateTime<Utc>> = "timestamptz",
    }
}

/// Tickets in all, active tickets, and the latest activation among them.
type Counts = (i32, i32, Option<(DateTime<Utc>, Uuid)>);

#[derive(Debug, Default)]
struct Fold {
    customers: HashMap<i64, CustomerRow>,
    dirty_customers: HashSet<i64>,
    /// Customers whose ticket counters need recomputing.
    recount: HashSet<i64>,
    tickets: HashMap<Uuid, CustomerTicketRow>,
    dirty_tickets: HashSet<Uuid>,
}

async fn apply(
    conn: &mut PgConnection,
    target: Target,
    batch: &[Envelope],
) -> Result<(), ApplyError> {
    // Customers whose rows or ticket lists change, and tickets whose customer we must know.
    let mut customer_ids = HashSet::new();
    let mut ticket_ids = HashSet::new();
    for envelope in batch {
        match (&envelope.stream, &envelope.event) {
            (StreamId::Customer(id), AnyEvent::Customer(_)) => {
                customer_ids.insert(id.0);
            }
            (StreamId::Ticket(_), AnyEvent::Ticket(TicketEvent::Opened(opened))) => {
                customer_ids.insert(opened.customer.0);
            }
            (StreamId::Ticket(id), AnyEvent::Ticket(TicketEvent::CustomerMessagePosted(_))) => {
                ticket_ids.insert(id.as_uuid());
            }
            _ => {}
        }
    }
    if customer_ids.is_empty() && ticket_ids.is_empty() {
        return Ok(());
    }

    let mut fold = Fold::default();
    let customer_ids: Vec<i64> = customer_ids.into_iter().collect();
    let ticket_ids: Vec<Uuid> = ticket_ids.into_iter().collect();
    let sql = format!(
        "select {} from {} where customer_id = any($1) or ticket_id = any($2)",
        select_list::<CustomerTicketRow>(None),
        target.table(CustomerTicketRow::TABLE),
    );
    for row in sqlx::query_as::<_, CustomerTicketRow>(&sql)
        .bind(&customer_ids)
        .bind(&ticket_ids)
        .fetch_all(&mut *conn)
        .await?
    {
        fold.tickets.insert(row.ticket_id, row);
    }
    let mut load: HashSet<i64> = customer_ids.into_iter().collect();
    load.extend(fold.tickets.values().map(|t| t.customer_id));
    let load: Vec<i64> = load.into_iter().collect();
    let sql = sql::select_sql(
        &target.table(CustomerRow::TABLE),
        CustomerRow::COLUMNS,
        "id",
    );
    for row in sqlx::query_as::<_, CustomerRow>(&sql)
        .bind(&load)
        .fetch_all(&mut *conn)
        .await?
    {
        fold.customers.insert(row.id, row);
    }

    for envelope in batch {
        match (&envelope.stream, &envelope.event) {
            (StreamId::Customer(id), AnyEvent::Customer(event)) => {
                fold.customer_event(id.0, sql::version(envelope)?, event);
            }
            (StreamId::Ticket(id), AnyEvent::Ticket(event)) => {
                fold.ticket_event(id.as_uuid(), event);
            }
            _ => {}
        }
    }
    fold.recount();

    write_customers(conn, target, &fold).await?;
    write_tickets(conn, target, &fold).await?;
    Ok(())
}

impl Fold {
    fn customer_event(&mut self, id: i64, version: i64, event: &CustomerEvent) {
        use CustomerEvent as E;
        let Some(customer) = self.customers.get_mut(&id) else {
            if let E::Registered(registered) = event {
                let profile = &registered.personal;
                self.customers.insert(
                    id,
                    CustomerRow {
                        id,
                        first_name: profile.first_name.clone(),
                        last_name: profile.last_name.clone(),
                        username: profile.username.clone(),
                        language_code: profile.language_code.clone(),
                        registered_at: registered.at,
                        profile_updated_at: None,
                        last_seen_at: None,
                        blocked_bot: false,
                        banned: false,
                        ban_reason: None,
                        banned_at: None,
                        opted_out_of_broadcasts: false,
                        tickets_total: 0,
                        tickets_open: 0,
                        open_ticket_id: None,
                        first_start_payload: None,
                        start_payload: None,
                        start_payload_at: None,
                        version,
                    },
                );
                self.dirty_customers.insert(id);
                self.recount.insert(id);
            }
            return;
        };
        if version <= customer.version {
            return;
        }
        customer.version = version;
        self.dirty_customers.insert(id);
        match event {
            E::Registered(_) => {}
            E::ProfileUpdated(updated) => {
                let profile = &updated.personal;
                customer.first_name.clone_from(&profile.first_name);
                customer.last_name.clone_from(&profile.last_name);
                customer.username.clone_from(&profile.username);
                customer.language_code.clone_from(&profile.language_code);
                customer.profile_updated_at = Some(updated.at);
            }
            E::BlockedBot(_) => customer.blocked_bot = true,
            E::UnblockedBot(_) => customer.blocked_bot = false,
            E::Banned(banned) => {
                customer.banned = true;
                customer.ban_reason.clone_from(&banned.content.reason);
                customer.banned_at = Some(banned.at);
            }
            E::Unbanned(_) => {
                customer.banned = false;
                customer.ban_reason = None;
                customer.banned_at = None;
            }
            E::OptedOutOfBroadcasts(_) => customer.opted_out_of_broadcasts = true,
            E::OptedIntoBroadcasts(_) => customer.opted_out_of_broadcasts = false,
            // Routing state of the bot, and messages a ban refused: no read model shows them
            // (the customer's stream keeps them for auditors).
            E::CategoryChosen(_) | E::MessageRefused(_) => {}
            // The same values whatever the row held, so that a rebuild (from the stand-ins)
            // and the live row (from the plain profile) agree.
            E::Forgotten(_) => {
                customer.first_name = domain::customer::FORGOTTEN_NAME.to_owned();
                customer.last_name = None;
                customer.username = None;
                customer.ban_reason = None;
                customer.first_start_payload = None;
                customer.start_payload = None;
            }
            E::StartPayloadReceived(received) => {
                if customer.first_start_payload.is_none() {
                    customer.first_start_payload = Some(received.payload.clone());
                }
                customer.start_payload = Some(received.payload.clone());
                customer.start_payload_at = Some(received.at);
            }
            E::TicketOpened(noted) | E::TicketReopened(noted) => {
                let ticket_id = noted.ticket_id.as_uuid();
                let category = noted.category.map(|c| c.as_uuid());
                let row = self
                    .tickets
                    .entry(ticket_id)
                    .or_insert_with(|| CustomerTicketRow {
                        ticket_id,
                        customer_id: id,
                        category_id: category,
                        state: CustomerTicketState::Active,
                        opened_at: noted.at,
                        activated_at: noted.at,
                        last_message_at: None,
                    });
                row.category_id = category;
                row.state = CustomerTicketState::Active;
                row.activated_at = noted.at;
                self.dirty_tickets.insert(ticket_id);
                self.recount.insert(id);
            }
            E::TicketResolved(step) => {
                self.set_ticket_state(id, step.ticket_id.as_uuid(), CustomerTicketState::Resolved);
            }
            E::TicketClosed(step) => {
                self.set_ticket_state(id, step.ticket_id.as_uuid(), CustomerTicketState::Closed);
            }
            E::TicketRecategorized(noted) => {
                if let Some(row) = self.tickets.get_mut(&noted.ticket_id.as_uuid()) {
                    row.category_id = noted.category.map(|c| c.as_uuid());
                    self.dirty_tickets.insert(row.ticket_id);
                }
            }
        }
    }

    fn set_ticket_state(&mut self, customer: i64, ticket_id: Uuid, state: CustomerTicketState) {
        if let Some(row) = self.tickets.get_mut(&ticket_id) {
            row.state = state;
            self.dirty_tickets.insert(ticket_id);
            self.recount.insert(customer);
        }
    }

    fn ticket_event(&mut self, ticket_id: Uuid, event: &TicketEvent) {
        match event {
            TicketEvent::Opened(opened) => {
                // The customer stream usually noted the ticket first; this also covers a
                // ticket opened without that note.
                let mut inserted = false;
                self.tickets.entry(ticket_id).or_insert_with(|| {
                    inserted = true;
                    CustomerTicketRow {
                        ticket_id,
                        customer_id: opened.customer.0,
                        category_id: opened.category.map(|c| c.as_uuid()),
                        state: CustomerTicketState::Active,
                        opened_at: opened.at,
                        activated_at: opened.at,
                        last_message_at: None,
                    }
                });
                if inserted {
                    self.dirty_tickets.insert(ticket_id);
                    self.recount.insert(opened.customer.0);
                }
            }
            TicketEvent::CustomerMessagePosted(posted) => {
                let Some(ticket) = self.tickets.get_mut(&ticket_id) else {
                    return;
                };
                let seen = sql::latest(ticket.last_message_at, posted.at);
                if seen != ticket.last_message_at {
                    ticket.last_message_at = seen;
                    self.dirty_tickets.insert(ticket_id);
                }
                if let Some(customer) = self.customers.get_mut(&ticket.customer_id) {
                    let seen = sql::latest(customer.last_seen_at, posted.at);
                    if seen != customer.last_seen_at {
                        customer.last_seen_at = seen;
                        self.dirty_customers.insert(customer.id);
                    }
                }
            }
            _ => {}
        }
    }

    /// Recomputes ticket counters from every ticket of the customers whose tickets changed
    /// (all of their tickets were loaded: the batch named these customers).
    fn recount(&mut self) {
        let mut counts: HashMap<i64, Counts> =
            self.recount.iter().map(|id| (*id, (0, 0, None))).collect();
        for ticket in self.tickets.values() {
            let Some((total, open, latest)) = counts.get_mut(&ticket.customer_id) else {
                continue;
            };
            *total += 1;
            if ticket.state == CustomerTicketState::Active {
                *open += 1;
                let key = (ticket.activated_at, ticket.ticket_id);
                if latest.is_none_or(|latest| key > latest) {
                    *latest = Some(key);
                }
            }
        }
        for (id, (total, open, latest)) in counts {
            let Some(customer) = self.customers.get_mut(&id) else {
                continue;
            };
            let open_ticket_id = latest.map(|(_, ticket)| ticket);
            if (
                customer.tickets_total,
                customer.tickets_open,
                customer.open_ticket_id,
            ) != (total, open, open_ticket_id)
            {
                customer.tickets_total = total;
                customer.tickets_open = open;
                customer.open_ticket_id = open_ticket_id;
                self.dirty_customers.insert(id);
            }
        }
    }
}

async fn write_customers(
    conn: &mut PgConnection,
    target: Target,
    fold: &Fold,
) -> Result<(), ApplyError> {
    let rows: Vec<&CustomerRow> = fold
        .dirty_customers
        .iter()
        .filter_map(|id| fold.customers.get(id))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    static UPSERT: sql::Upsert = sql::Upsert::new(
        CustomerRow::TABLE,
        CustomerRow::WRITTEN,
        &["id"],
        sql::OnConflict::UpdateWhere("t.version <= excluded.version"),
    );
    CustomerRow::bind(sqlx::query(UPSERT.text(target)), &rows)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn write_tickets(
    conn: &mut PgConnection,
    target: Target,
    fold: &Fold,
) -> Result<(), ApplyError> {
    let rows: Vec<&CustomerTicketRow> = fold
        .dirty_tickets
        .iter()
        .filter_map(|id| fold.tickets.get(id))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    static UPSERT: sql::Upsert = sql::Upsert::new(
        CustomerTicketRow::TABLE,
        CustomerTicketRow::WRITTEN,
        &["ticket_id"],
        sql::OnConflict::Update,
    );
    CustomerTicketRow::bind(sqlx::query(UPSERT.text(target)), &rows)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
