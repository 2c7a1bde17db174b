//! The data behind inline buttons: what the bot puts in `callback_data` and reads back from a
//! `callback_query`. Telegram allows 1–64 bytes; every form here stays under 64.
//!
//! - `cat:<category uuid>`: the customer picked a category after `/start`;
//! - `csat:<ticket uuid>:<1-5>`: the customer rated a resolved ticket;
//! - `bb:<broadcast uuid>:<n>`: the customer pressed the callback button number `n` (counted
//!   from 0, row by row, over every button of the broadcast's keyboard) under a broadcast; what
//!   the button stands for (the data its author gave it) is read from the broadcast;
//! - `bu:<broadcast uuid>`: the customer pressed the unsubscribe button under a broadcast.

use std::fmt;

use domain::{BroadcastId, CategoryId, TicketId};
use uuid::Uuid;

/// What an inline button asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackData {
    /// The customer chose a category.
    Category(CategoryId),
    /// The customer rated a ticket from 1 to 5.
    Rating {
        /// The ticket rated.
        ticket: TicketId,
        /// 1 to 5.
        rating: u8,
    },
    /// The customer pressed a callback button of a broadcast.
    BroadcastButton {
        /// The broadcast the message belongs to.
        broadcast: BroadcastId,
        /// The button's place among all the broadcast's buttons, row by row, from 0.
        index: u8,
    },
    /// The customer pressed the unsubscribe button under a broadcast.
    Unsubscribe(BroadcastId),
}

impl CallbackData {
    /// Reads button data; `None` for anything we did not write (old or forged buttons).
    #[must_use]
    pub fn parse(data: &str) -> Option<Self> {
        if let Some(category) = data.strip_prefix("cat:") {
            return Uuid::parse_str(category)
                .ok()
                .map(|uuid| Self::Category(CategoryId::from_uuid(uuid)));
        }
        if let Some(rest) = data.strip_prefix("bb:") {
            let (broadcast, index) = rest.rsplit_once(':')?;
            let index: u8 = index.parse().ok()?;
            let broadcast = BroadcastId(Uuid::parse_str(broadcast).ok()?);
            return Some(Self::BroadcastButton { broadcast, index });
        }
        if let Some(broadcast) = data.strip_prefix("bu:") {
            return Uuid::parse_str(broadcast)
                .ok()
                .map(|uuid| Self::Unsubscribe(BroadcastId(uuid)));
        }
        let rest = data.strip_prefix("csat:")?;
        let (ticket, rating) = rest.rsplit_once(':')?;
        let rating: u8 = rating.parse().ok()?;
        if !(1..=5).contains(&rating) {
            return None;
        }
        let ticket = TicketId::from_uuid(Uuid::parse_str(ticket).ok()?);
        Some(Self::Rating { ticket, rating })
    }
}

impl fmt::Display for CallbackData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Category(category) => write!(f, "cat:{category}"),
            Self::Rating { ticket, rating } => write!(f, "csat:{ticket}:{rating}"),
            Self::BroadcastButton { broadcast, index } => {
                write!(f, "bb:{}:{index}", broadcast.0)
            }
            Self::Unsubscribe(broadcast) => write!(f, "bu:{}", broadcast.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_reads_back_and_fits_telegrams_limit() {
        let forms = [
            CallbackData::Category(CategoryId::from_uuid(Uuid::now_v7())),
            CallbackData::Rating {
                ticket: TicketId::from_uuid(Uuid::now_v7()),
                rating: 5,
            },
            CallbackData::BroadcastButton {
                broadcast: BroadcastId(Uuid::now_v7()),
                index: u8::MAX,
            },
            CallbackData::Unsubscribe(BroadcastId(Uuid::now_v7())),
        ];
        for form in forms {
            let data = form.to_string();
            assert!(data.len() <= 64, "{data} is longer than 64 bytes");
            assert_eq!(CallbackData::parse(&data), Some(form));
        }
    }

    #[test]
    fn foreign_or_out_of_range_data_is_refused() {
        let ticket = Uuid::now_v7();
        for data in [
            "",
            "cat:",
            "cat:not-a-uuid",
            &format!("csat:{ticket}:0"),
            &format!("csat:{ticket}:6"),
            &format!("csat:{ticket}:x"),
            &format!("csat:{ticket}"),
            "csat:nope:3",
            "bb:",
            &format!("bb:{ticket}"),
            &format!("bb:{ticket}:256"),
            &format!("bb:{ticket}:-1"),
            "bu:",
            "bu:nope",
            "something else",
        ] {
            assert_eq!(CallbackData::parse(data), None, "{data:?}");
        }
    }
}
