//! Small builders shared by the property tests.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use domain::{AgentId, CategoryId, MessageId};
use proptest::prelude::*;
use uuid::Uuid;

pub(crate) fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
        + TimeDelta::minutes(minutes)
}
pub(crate) fn agent(n: u8) -> AgentId {
    AgentId(Uuid::from_u128(u128::from(n) + 1))
}
pub(crate) fn category(n: u8) -> Option<CategoryId> {
    (n > 0).then(|| CategoryId(Uuid::from_u128(u128::from(n) + 100)))
}
pub(crate) fn msg(n: u8) -> MessageId {
    MessageId(Uuid::from_u128(u128::from(n) + 1000))
}

pub(crate) fn arb_time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..30_000).prop_map(t)
}
