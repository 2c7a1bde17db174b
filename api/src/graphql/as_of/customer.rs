//! `CustomerAsOf`: a customer folded from their stream up to a point. The profile, flags,
//! tickets, chosen category and `/start` payloads are the domain's state
//! ([`domain::customer::CustomerState`]); the ban's reason, which that state does not keep, is
//! gathered from the same events.

use app::as_of::{self, Until};
use async_graphql::{ID, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::CustomerId;
use domain::customer::{Customer, CustomerEvent, TicketLifecycle};
use eventlog::postgres::PostgresLog;

use super::{MAX_CUSTOMER_EVENTS, fold_failed};

/// A customer as they were at a point of their stream, folded from the log.
#[derive(Debug, Clone, SimpleObject)]
pub struct CustomerAsOf {
    /// Their Telegram user id.
    pub customer_id: ID,
    /// The stream version of the last event folded.
    pub version: i64,
    /// When the log recorded the last event folded.
    pub recorded_at: DateTime<Utc>,
    /// First name then.
    pub first_name: String,
    /// Last name then.
    pub last_name: Option<String>,
    /// `@username` then, without the `@`.
    pub username: Option<String>,
    /// Their client's language then.
    pub language_code: Option<String>,
    /// When first seen.
    pub registered_at: DateTime<Utc>,
    /// Whether they had blocked the bot.
    pub blocked_bot: bool,
    /// Whether they were banned.
    pub banned: bool,
    /// Why, while banned.
    pub ban_reason: Option<String>,
    /// Whether they had opted out of broadcasts.
    pub opted_out_of_broadcasts: bool,
    /// The category their next messages were to go to.
    pub chosen_category_id: Option<ID>,
    /// The payload of their latest `/start` that had one, by then.
    pub start_payload: Option<String>,
    /// The payload of their first `/start` that had one.
    pub first_start_payload: Option<String>,
    /// Their tickets that were not closed then.
    pub tickets: Vec<CustomerTicketAsOf>,
}

/// One of a customer's tickets that was not closed at that point.
#[derive(Debug, Clone, SimpleObject)]
pub struct CustomerTicketAsOf {
    /// The ticket's uuid.
    pub ticket_id: ID,
    /// Its category.
    pub category_id: Option<ID>,
    /// Whether messages went there (new, open or pending); false when resolved.
    pub active: bool,
    /// When it was resolved, when it was.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// The customer `id` folded up to `until`; `None` when not registered by then.
pub(super) async fn fold(log: &PostgresLog, id: i64, until: Until) -> Result<Option<CustomerAsOf>> {
    let stream = CustomerId(id).stream().name();
    let mut ban_reason = None;
    let folded =
        as_of::fold::<Customer, _>(log, &stream, until, MAX_CUSTOMER_EVENTS, |_, event, _| {
            match event {
                CustomerEvent::Banned(banned) => ban_reason.clone_from(&banned.content.reason),
                CustomerEvent::Unbanned(_) => ban_reason = None,
                _ => {}
            }
        })
        .await
        .map_err(|failure| fold_failed("customer", failure))?;
    let (Some(state), Some(version), Some(recorded_at)) =
        (folded.state.state(), folded.version, folded.recorded_at)
    else {
        return Ok(None);
    };
    let uuid_id = |id: uuid::Uuid| ID(id.to_string());
    Ok(Some(CustomerAsOf {
        customer_id: ID(state.id.0.to_string()),
        version: i64::try_from(version).unwrap_or(i64::MAX),
        recorded_at,
        first_name: state.profile.first_name.clone(),
        last_name: state.profile.last_name.clone(),
        username: state.profile.username.clone(),
        language_code: state.profile.language_code.clone(),
        registered_at: state.registered_at,
        blocked_bot: state.blocked_bot,
        banned: state.banned,
        ban_reason: if state.banned { ban_reason } else { None },
        opted_out_of_broadcasts: state.opted_out,
        chosen_category_id: state.chosen_category.map(|c| uuid_id(c.as_uuid())),
        start_payload: state.start_payload.clone(),
        first_start_payload: state.first_start_payload.clone(),
        tickets: state
            .tickets
            .iter()
            .map(|(ticket, tracked)| CustomerTicketAsOf {
                ticket_id: uuid_id(ticket.as_uuid()),
                category_id: tracked.category.map(|c| uuid_id(c.as_uuid())),
                active: tracked.lifecycle == TicketLifecycle::Active,
                resolved_at: match tracked.lifecycle {
                    TicketLifecycle::Resolved(at) => Some(at),
                    TicketLifecycle::Active => None,
                },
            })
            .collect(),
    }))
}
