//! The customer aggregate: a Telegram user who writes to the bot (`customer-<telegram id>`
//! stream).
//!
//! Besides the profile and the flags that decide whether we may write to them (blocked the
//! bot, banned, opted out of broadcasts), the customer tracks the lifecycle of their tickets:
//! which one is active per category and which were resolved when. That makes the customer the
//! owner of "one open ticket per customer (per category)" and of routing an incoming message
//! (see [`crate::flow`]). The ticket notes (`customer.ticket_*`) are written by the
//! multi-stream decisions in [`crate::flow`], never by a customer command.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::event_enum;
use crate::content::{CustomerMessage, MessageContent, TelegramMessageId};
use crate::decider::Decider;
use crate::ids::{AgentId, CategoryId, CustomerId, MessageId, TicketId};
use crate::validate::{self, InvalidInput};

/// What Telegram tells us about a user. Personal data as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerProfile {
    /// First name (always present on Telegram).
    pub first_name: String,
    /// Last name.
    pub last_name: Option<String>,
    /// `@username`, without the `@`.
    pub username: Option<String>,
    /// IETF language tag of the user's client.
    pub language_code: Option<String>,
}

impl CustomerProfile {
    /// Checks the bounds of every field.
    ///
    /// # Errors
    /// The first bound broken.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        validate::required("first name", &self.first_name, validate::MAX_NAME_CHARS)?;
        validate::optional(
            "last name",
            self.last_name.as_deref(),
            validate::MAX_NAME_CHARS,
        )?;
        validate::optional("username", self.username.as_deref(), 32)?;
        validate::optional(
            "language",
            self.language_code.as_deref(),
            validate::MAX_LANGUAGE_CHARS,
        )
    }
}

/// `customer.registered`: we saw this Telegram user for the first time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRegistered {
    /// The Telegram user id.
    pub customer_id: CustomerId,
    /// When.
    pub at: DateTime<Utc>,
    /// Personal data: the profile.
    pub personal: CustomerProfile,
}

/// `customer.profile_updated`: the Telegram profile changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileUpdated {
    /// When.
    pub at: DateTime<Utc>,
    /// Personal data: the new profile.
    pub personal: CustomerProfile,
}

/// A fact with only a time: blocked/unblocked the bot, opted out/in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Noted {
    /// When.
    pub at: DateTime<Utc>,
}

/// The reason an agent gave for a ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanReason {
    /// At most 1024 characters.
    pub reason: Option<String>,
}

/// `customer.banned`: an agent banned the customer; their messages are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerBanned {
    /// Who banned.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
    /// Personal data: the reason.
    pub content: BanReason,
}

/// `customer.unbanned`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerUnbanned {
    /// Who lifted the ban.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `customer.ticket_opened`, `customer.ticket_reopened`, `customer.ticket_recategorized`: a
/// ticket of this customer became active, or active in another category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketNoted {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Its category.
    pub category: Option<CategoryId>,
    /// When.
    pub at: DateTime<Utc>,
}

/// `customer.ticket_resolved`, `customer.ticket_closed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketStepNoted {
    /// The ticket.
    pub ticket_id: TicketId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `customer.category_chosen`: the customer picked the category their next messages belong to
/// (an inline button after `/start`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryChosen {
    /// The category (`None`: no category).
    pub category: Option<CategoryId>,
    /// When.
    pub at: DateTime<Utc>,
}

/// `customer.message_refused`: a banned customer wrote. The message is kept, on the customer's
/// stream, but opens nothing and gets no answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRefused {
    /// Our id for the message.
    pub message_id: MessageId,
    /// Telegram's id for the message in the customer's chat.
    pub telegram_message_id: TelegramMessageId,
    /// The Telegram message it replies to, if any.
    pub reply_to: Option<TelegramMessageId>,
    /// When.
    pub at: DateTime<Utc>,
    /// Personal data: the message.
    pub content: MessageContent,
}

/// The longest `/start` payload kept, in characters: Telegram's own bound for deep links.
pub const MAX_START_PAYLOAD_CHARS: usize = 64;

/// `customer.start_payload_received`: the customer sent `/start` with a payload (opened a
/// deep link `t.me/<bot>?start=<payload>`, or typed one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartPayloadReceived {
    /// The payload, 1 to [`MAX_START_PAYLOAD_CHARS`] characters.
    pub payload: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// `customer.forgotten`: an admin had the customer's personal data forgotten (their key of
/// sealed personal fields was deleted). Holds nothing personal; the admin is the event's
/// actor. Read models clear what they kept of the customer, in their row and on every ticket
/// listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerForgotten {
    /// When.
    pub at: DateTime<Utc>,
    /// Every ticket the customer ever had (each `customer.ticket_opened` of the stream).
    pub tickets: Vec<TicketId>,
}

/// What a first name reads as once forgotten.
pub const FORGOTTEN_NAME: &str = "";

impl CustomerProfile {
    /// The profile as it reads once forgotten: no name, no username; the language stays.
    #[must_use]
    pub fn forgotten(&self) -> Self {
        Self {
            first_name: FORGOTTEN_NAME.to_owned(),
            last_name: None,
            username: None,
            language_code: self.language_code.clone(),
        }
    }
}

event_enum! {
    /// Everything that can happen to a customer.
    #[derive(Debug, Clone, PartialEq)]
    pub enum CustomerEvent {
        /// First seen.
        Registered(CustomerRegistered) = "customer.registered" v 1;
        /// Profile changed.
        ProfileUpdated(ProfileUpdated) = "customer.profile_updated" v 1;
        /// Blocked the bot on Telegram.
        BlockedBot(Noted) = "customer.blocked_bot" v 1;
        /// Unblocked the bot (or wrote again).
        UnblockedBot(Noted) = "customer.unblocked_bot" v 1;
        /// Banned by an agent.
        Banned(CustomerBanned) = "customer.banned" v 1;
        /// Ban lifted.
        Unbanned(CustomerUnbanned) = "customer.unbanned" v 1;
        /// Asked not to receive broadcasts.
        OptedOutOfBroadcasts(Noted) = "customer.opted_out_of_broadcasts" v 1;
        /// Asked to receive broadcasts again.
        OptedIntoBroadcasts(Noted) = "customer.opted_into_broadcasts" v 1;
        /// A ticket of theirs was opened.
        TicketOpened(TicketNoted) = "customer.ticket_opened" v 1;
        /// A ticket of theirs was resolved.
        TicketResolved(TicketStepNoted) = "customer.ticket_resolved" v 1;
        /// A ticket of theirs was reopened.
        TicketReopened(TicketNoted) = "customer.ticket_reopened" v 1;
        /// A ticket of theirs was closed.
        TicketClosed(TicketStepNoted) = "customer.ticket_closed" v 1;
        /// A ticket of theirs moved to another category.
        TicketRecategorized(TicketNoted) = "customer.ticket_recategorized" v 1;
        /// Picked a category for their next messages.
        CategoryChosen(CategoryChosen) = "customer.category_chosen" v 1;
        /// Wrote while banned.
        MessageRefused(MessageRefused) = "customer.message_refused" v 1;
        /// Sent `/start` with a payload.
        StartPayloadReceived(StartPayloadReceived) = "customer.start_payload_received" v 1;
        /// Their personal data was forgotten.
        Forgotten(CustomerForgotten) = "customer.forgotten" v 1;
    }
}

/// Everything one can ask of a customer directly.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerCommand {
    /// Record a Telegram user seen for the first time.
    Register {
        /// The Telegram user id.
        customer_id: CustomerId,
        /// Their profile.
        profile: CustomerProfile,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record the current Telegram profile (no event when unchanged).
    UpdateProfile {
        /// The profile now.
        profile: CustomerProfile,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that the customer blocked the bot.
    RecordBotBlocked {
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that the customer unblocked the bot.
    RecordBotUnblocked {
        /// When.
        at: DateTime<Utc>,
    },
    /// Refuse the customer's messages from now on.
    Ban {
        /// Who bans.
        by: AgentId,
        /// Why.
        reason: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Lift a ban.
    Unban {
        /// Who lifts it.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Stop sending the customer broadcasts.
    OptOutOfBroadcasts {
        /// When.
        at: DateTime<Utc>,
    },
    /// Send the customer broadcasts again.
    OptIntoBroadcasts {
        /// When.
        at: DateTime<Utc>,
    },
    /// Keep a message from a banned customer without routing it anywhere.
    RecordRefusedMessage {
        /// The message.
        message: CustomerMessage,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record the payload of a `/start` (no event when it is the latest one already).
    RecordStartPayload {
        /// The payload, 1 to [`MAX_START_PAYLOAD_CHARS`] characters.
        payload: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that the customer's personal data was forgotten (their key is deleted by the
    /// caller). Recorded every time it is asked: it is also the audit record.
    Forget {
        /// Every ticket the customer ever had.
        tickets: Vec<TicketId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Use this category for the customer's next messages (the caller checks that it exists).
    ChooseCategory {
        /// The category (`None`: no category).
        category: Option<CategoryId>,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Why a customer command was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    /// The customer has never written to the bot.
    #[error("this customer is not known yet")]
    NotRegistered,
    /// Registering twice.
    #[error("this customer is already registered")]
    AlreadyRegistered,
    /// A banned customer wrote.
    #[error("this customer is banned")]
    Banned,
    /// Refusing a message of a customer who is not banned (route it instead).
    #[error("this customer is not banned")]
    NotBanned,
    /// A second active ticket in one category.
    #[error("the customer already has an open ticket ({existing}) in this category")]
    AnotherTicketOpen {
        /// The ticket that is already active.
        existing: TicketId,
    },
    /// An input out of bounds.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
}

/// Where one of the customer's tickets stands, as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketLifecycle {
    /// New, open or pending: messages go there.
    Active,
    /// Resolved at this time: reopens on a message within the window.
    Resolved(DateTime<Utc>),
}

/// One of the customer's tickets that is not closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedTicket {
    /// Its category.
    pub category: Option<CategoryId>,
    /// Where it stands.
    pub lifecycle: TicketLifecycle,
}

/// A registered customer. Read it; change it only through events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerState {
    /// The Telegram user id.
    pub id: CustomerId,
    /// The latest profile.
    pub profile: CustomerProfile,
    /// When first seen.
    pub registered_at: DateTime<Utc>,
    /// Whether they blocked the bot (we cannot write to them).
    pub blocked_bot: bool,
    /// Whether an agent banned them.
    pub banned: bool,
    /// Whether they opted out of broadcasts.
    pub opted_out: bool,
    /// Their tickets that are not closed (and not superseded by a newer one).
    pub tickets: BTreeMap<TicketId, TrackedTicket>,
    /// The category their next messages belong to, as they last chose it.
    pub chosen_category: Option<CategoryId>,
    /// The payload of their first `/start` that had one.
    pub first_start_payload: Option<String>,
    /// The payload of their latest `/start` that had one.
    pub start_payload: Option<String>,
}

impl CustomerState {
    /// The active ticket in `category`, if any.
    #[must_use]
    pub fn active_ticket(&self, category: Option<CategoryId>) -> Option<TicketId> {
        self.tickets
            .iter()
            .find(|(_, t)| t.category == category && t.lifecycle == TicketLifecycle::Active)
            .map(|(id, _)| *id)
    }

    /// The most recently resolved ticket in `category` that a message at `at` still reopens.
    #[must_use]
    pub fn reopenable_ticket(
        &self,
        category: Option<CategoryId>,
        window: TimeDelta,
        at: DateTime<Utc>,
    ) -> Option<TicketId> {
        self.tickets
            .iter()
            .filter(|(_, t)| t.category == category)
            .filter_map(|(id, t)| match t.lifecycle {
                TicketLifecycle::Resolved(resolved) => Some((resolved, *id)),
                TicketLifecycle::Active => None,
            })
            .max()
            .filter(|(resolved, _)| at <= *resolved + window.max(TimeDelta::zero()))
            .map(|(_, id)| id)
    }

    /// Whether a broadcast may be sent to them: not opted out, not blocked, not banned.
    #[must_use]
    pub const fn accepts_broadcasts(&self) -> bool {
        !self.opted_out && !self.blocked_bot && !self.banned
    }

    /// Whether at most one ticket is active per category (the invariant this aggregate owns).
    #[must_use]
    pub fn one_active_ticket_per_category(&self) -> bool {
        let mut seen = std::collections::BTreeSet::new();
        self.tickets
            .values()
            .filter(|t| t.lifecycle == TicketLifecycle::Active)
            .all(|t| seen.insert(t.category))
    }

    fn decide(&self, command: &CustomerCommand) -> Result<Vec<CustomerEvent>, CustomerError> {
        use CustomerCommand as C;
        use CustomerEvent as E;
        let noted = |at: &DateTime<Utc>| Noted { at: *at };
        Ok(match command {
            C::Register { .. } => return Err(CustomerError::AlreadyRegistered),
            C::UpdateProfile { profile, at } => {
                profile.validate()?;
                if *profile == self.profile {
                    vec![]
                } else {
                    vec![E::ProfileUpdated(ProfileUpdated {
                        at: *at,
                        personal: profile.clone(),
                    })]
                }
            }
            C::RecordBotBlocked { at: when } if !self.blocked_bot => {
                vec![E::BlockedBot(noted(when))]
            }
            C::RecordBotUnblocked { at: when } if self.blocked_bot => {
                vec![E::UnblockedBot(noted(when))]
            }
            C::Ban { by, reason, at } => {
                validate::optional("ban reason", reason.as_deref(), validate::MAX_REASON_CHARS)?;
                if self.banned {
                    vec![]
                } else {
                    vec![E::Banned(CustomerBanned {
                        by: *by,
                        at: *at,
                        content: BanReason {
                            reason: reason.clone(),
                        },
                    })]
                }
            }
            C::Unban { by, at } if self.banned => {
                vec![E::Unbanned(CustomerUnbanned { by: *by, at: *at })]
            }
            C::OptOutOfBroadcasts { at: when } if !self.opted_out => {
                vec![E::OptedOutOfBroadcasts(noted(when))]
            }
            C::OptIntoBroadcasts { at: when } if self.opted_out => {
                vec![E::OptedIntoBroadcasts(noted(when))]
            }
            C::RecordRefusedMessage { message, at } => {
                if !self.banned {
                    return Err(CustomerError::NotBanned);
                }
                message.content.validate()?;
                vec![E::MessageRefused(MessageRefused {
                    message_id: message.message_id,
                    telegram_message_id: message.telegram_message_id,
                    reply_to: message.reply_to,
                    at: *at,
                    content: message.content.clone(),
                })]
            }
            C::Forget { tickets, at } => vec![E::Forgotten(CustomerForgotten {
                at: *at,
                tickets: tickets.clone(),
            })],
            C::RecordStartPayload { payload, at } => {
                validate::required("start payload", payload, MAX_START_PAYLOAD_CHARS)?;
                if self.start_payload.as_ref() == Some(payload) {
                    vec![]
                } else {
                    vec![E::StartPayloadReceived(StartPayloadReceived {
                        payload: payload.clone(),
                        at: *at,
                    })]
                }
            }
            C::ChooseCategory { category, at } if *category != self.chosen_category => {
                vec![E::CategoryChosen(CategoryChosen {
                    category: *category,
                    at: *at,
                })]
            }
            // Already so: nothing to record.
            C::RecordBotBlocked { .. }
            | C::RecordBotUnblocked { .. }
            | C::Unban { .. }
            | C::OptOutOfBroadcasts { .. }
            | C::OptIntoBroadcasts { .. }
            | C::ChooseCategory { .. } => vec![],
        })
    }

    fn apply(&mut self, event: &CustomerEvent) {
        use CustomerEvent as E;
        match event {
            E::Registered(_) => {}
            E::ProfileUpdated(updated) => self.profile = updated.personal.clone(),
            E::Forgotten(_) => {
                self.profile = self.profile.forgotten();
                self.first_start_payload = None;
                self.start_payload = None;
            }
            E::BlockedBot(_) => self.blocked_bot = true,
            E::UnblockedBot(_) => self.blocked_bot = false,
            E::Banned(_) => self.banned = true,
            E::Unbanned(_) => self.banned = false,
            E::OptedOutOfBroadcasts(_) => self.opted_out = true,
            E::OptedIntoBroadcasts(_) => self.opted_out = false,
            E::TicketOpened(noted) => {
                // A new ticket supersedes resolved ones in its category: they can no longer
                // be reopened by a message.
                self.tickets.retain(|_, t| {
                    t.category != noted.category || t.lifecycle == TicketLifecycle::Active
                });
                self.tickets.insert(
                    noted.ticket_id,
                    TrackedTicket {
                        category: noted.category,
                        lifecycle: TicketLifecycle::Active,
                    },
                );
            }
            E::TicketReopened(noted) => {
                self.tickets.insert(
                    noted.ticket_id,
                    TrackedTicket {
                        category: noted.category,
                        lifecycle: TicketLifecycle::Active,
                    },
                );
            }
            E::TicketRecategorized(noted) => {
                if let Some(ticket) = self.tickets.get_mut(&noted.ticket_id) {
                    ticket.category = noted.category;
                }
            }
            E::TicketResolved(step) => {
                if let Some(ticket) = self.tickets.get_mut(&step.ticket_id) {
                    ticket.lifecycle = TicketLifecycle::Resolved(step.at);
                }
            }
            E::TicketClosed(step) => {
                self.tickets.remove(&step.ticket_id);
            }
            E::CategoryChosen(chosen) => self.chosen_category = chosen.category,
            E::MessageRefused(_) => {}
            E::StartPayloadReceived(received) => {
                if self.first_start_payload.is_none() {
                    self.first_start_payload = Some(received.payload.clone());
                }
                self.start_payload = Some(received.payload.clone());
            }
        }
    }
}

/// A customer's state: unknown, or registered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Customer {
    /// Never seen.
    #[default]
    Unknown,
    /// Seen at least once.
    Registered(Box<CustomerState>),
}

impl Customer {
    /// The state, once registered.
    #[must_use]
    pub fn state(&self) -> Option<&CustomerState> {
        match self {
            Self::Unknown => None,
            Self::Registered(state) => Some(state),
        }
    }
}

impl Decider for Customer {
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type Error = CustomerError;

    fn decide(&self, command: &CustomerCommand) -> Result<Vec<CustomerEvent>, CustomerError> {
        match (self, command) {
            (
                Self::Unknown,
                CustomerCommand::Register {
                    customer_id,
                    profile,
                    at,
                },
            ) => {
                profile.validate()?;
                Ok(vec![CustomerEvent::Registered(CustomerRegistered {
                    customer_id: *customer_id,
                    at: *at,
                    personal: profile.clone(),
                })])
            }
            (Self::Unknown, _) => Err(CustomerError::NotRegistered),
            (Self::Registered(state), command) => state.decide(command),
        }
    }

    fn evolve(self, event: &CustomerEvent) -> Self {
        match (self, event) {
            (Self::Unknown, CustomerEvent::Registered(registered)) => {
                Self::Registered(Box::new(CustomerState {
                    id: registered.customer_id,
                    profile: registered.personal.clone(),
                    registered_at: registered.at,
                    blocked_bot: false,
                    banned: false,
                    opted_out: false,
                    tickets: BTreeMap::new(),
                    chosen_category: None,
                    first_start_payload: None,
                    start_payload: None,
                }))
            }
            // Nothing but a registration can come first in a well-formed stream; ignoring the
            // rest keeps evolve total.
            (Self::Unknown, _) => Self::Unknown,
            (Self::Registered(mut state), event) => {
                state.apply(event);
                Self::Registered(state)
            }
        }
    }
}

#[cfg(test)]
mod tests;
