//! A customer as GraphQL shows it. Names and usernames are personal data; the team needs them
//! to answer, so they are shown to callers holding `ReadCustomers` and nothing more is exposed.

use async_graphql::{ID, Result, SimpleObject};
use chrono::{DateTime, Utc};
use projections::customers::CustomerRow;

use crate::graphql::error::{Code, error};
use crate::graphql::ids;

/// A customer: someone who wrote to the bot on Telegram.
#[derive(Debug, Clone, SimpleObject)]
pub struct Customer {
    /// Global id.
    pub id: ID,
    /// Their Telegram user id.
    pub customer_id: ID,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: Option<String>,
    /// `@username`, without the `@`.
    pub username: Option<String>,
    /// Their client's language.
    pub language_code: Option<String>,
    /// Their first message.
    pub registered_at: DateTime<Utc>,
    /// Their last message.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Whether they blocked the bot (replies cannot reach them); false again once they
    /// unblock it or a later reply reaches them.
    pub blocked_bot: bool,
    /// Whether the team banned them.
    pub banned: bool,
    /// Why, when banned.
    pub ban_reason: Option<String>,
    /// Whether they opted out of broadcasts.
    pub opted_out_of_broadcasts: bool,
    /// Tickets they ever had (for an agent limited to categories: in those categories).
    pub tickets_total: i32,
    /// Their tickets not yet resolved (for an agent limited to categories: in those
    /// categories).
    pub tickets_open: i32,
    /// Their active ticket, if any (for an agent limited to categories: only when it is in
    /// those categories, else null).
    pub open_ticket_id: Option<ID>,
    /// The payload of their latest `/start` that had one (a deep link
    /// `t.me/<bot>?start=<payload>`): at most 64 characters, kept as Telegram gave it.
    pub start_payload: Option<String>,
    /// The payload of their first `/start` that had one (where they first came from).
    pub first_start_payload: Option<String>,
    /// When the latest payload came.
    pub start_payload_at: Option<DateTime<Utc>>,
}

impl From<CustomerRow> for Customer {
    fn from(row: CustomerRow) -> Self {
        Customer {
            id: ids::global("Customer", row.id),
            customer_id: ID(row.id.to_string()),
            first_name: row.first_name,
            last_name: row.last_name,
            username: row.username,
            language_code: row.language_code,
            registered_at: row.registered_at,
            last_seen_at: row.last_seen_at,
            blocked_bot: row.blocked_bot,
            banned: row.banned,
            ban_reason: row.ban_reason,
            opted_out_of_broadcasts: row.opted_out_of_broadcasts,
            tickets_total: row.tickets_total,
            tickets_open: row.tickets_open,
            open_ticket_id: row.open_ticket_id.map(|id| ID(id.to_string())),
            start_payload: row.start_payload,
            first_start_payload: row.first_start_payload,
            start_payload_at: row.start_payload_at,
        }
    }
}

/// A customer's Telegram id from a bare id or a `Customer` global id.
///
/// # Errors
/// `VALIDATION` when it is neither.
pub fn customer_key(id: &ID) -> Result<i64> {
    if let Ok(key) = id.parse::<i64>() {
        return Ok(key);
    }
    let (kind, key) = ids::parse(id)?;
    match (kind.as_str(), key.parse::<i64>()) {
        ("Customer", Ok(key)) => Ok(key),
        _ => Err(error(Code::Validation, "not a customer id")),
    }
}
