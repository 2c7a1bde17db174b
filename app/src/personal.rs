//! What is personal in the domain's events, for the log to seal (see [`eventlog::seal`]).
//!
//! Sealed under the customer's key (subject `customer-<telegram id>`):
//!
//! - `customer.registered`, `customer.profile_updated`: `personal` (names and username; the
//!   stand-in keeps the language);
//! - `customer.message_refused`, `ticket.customer_message_posted`,
//!   `ticket.customer_message_edited`: `content` (text, caption, file ids and details,
//!   places, contacts, forward origin, album; the stand-in keeps the kind);
//! - `customer.banned`: `content` (the reason an agent gave);
//! - `customer.start_payload_received`: `payload`;
//! - `ticket.rated`: `content` (the customer's comment).
//!
//! Agents' replies, notes and broadcasts are the team's words and stay plain. Events of a
//! ticket belong to the customer its `ticket.opened` names.

use std::sync::Arc;

use domain::content::MessageContent;
use domain::customer::CustomerProfile;
use eventlog::NewEvent;
use eventlog::postgres::{PostgresLog, PostgresLogOptions};
use eventlog::seal::{Personal, PersonalField, SubjectOf};
use serde_json::{Value, json};
use sqlx::PgPool;

/// The domain's personal fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomerData;

/// The subject of a customer's personal data.
#[must_use]
pub fn subject(customer: i64) -> String {
    format!("customer-{customer}")
}

/// The stand-in of a field that reads as `T`, made by `forget` from the plain value (`null`
/// when the value does not read as `T`, which then fails loudly once forgotten).
fn stand_in<T>(payload: &Value, key: &str, forget: impl Fn(&T) -> T) -> Value
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    payload
        .get(key)
        .and_then(|value| T::deserialize(value).ok())
        .and_then(|plain| serde_json::to_value(forget(&plain)).ok())
        .unwrap_or(Value::Null)
}

impl Personal for CustomerData {
    fn fields(&self, event: &NewEvent) -> Vec<PersonalField> {
        let payload = &event.payload;
        let field = |key: &'static str, forgotten: Value| vec![PersonalField { key, forgotten }];
        match event.event_type.as_str() {
            "customer.registered" | "customer.profile_updated" => field(
                "personal",
                stand_in(payload, "personal", CustomerProfile::forgotten),
            ),
            "customer.message_refused"
            | "ticket.customer_message_posted"
            | "ticket.customer_message_edited" => field(
                "content",
                stand_in(payload, "content", MessageContent::forgotten),
            ),
            "customer.banned" => field("content", json!({ "reason": null })),
            "customer.start_payload_received" => field("payload", json!("")),
            "ticket.rated" => field("content", json!({ "comment": null })),
            _ => Vec::new(),
        }
    }

    fn subject(&self, stream: &str, _event: &NewEvent) -> SubjectOf {
        if stream.starts_with("customer-") {
            SubjectOf::Named(stream.to_owned())
        } else if stream.starts_with("ticket-") {
            SubjectOf::Opening {
                name: |opening| opening.get("customer")?.as_i64().map(subject),
            }
        } else {
            SubjectOf::Nobody
        }
    }
}

/// The log as the product opens it: sealing the customers' personal data.
#[must_use]
pub fn log(pool: PgPool) -> PostgresLog {
    PostgresLog::with_options(pool, options())
}

/// The default options of the log, sealing the customers' personal data.
#[must_use]
pub fn options() -> PostgresLogOptions {
    PostgresLogOptions::default().sealing(Arc::new(CustomerData))
}
