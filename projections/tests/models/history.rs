//! Builds coherent histories by running the domain's deciders, as the command service would,
//! and wraps each event in an [`Envelope`] with increasing log positions.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use domain::agent::{Agent, AgentCommand, Role};
use domain::broadcast::{
    Audience, Broadcast, BroadcastCommand, BroadcastContent, ButtonAction, Excluded, InlineButton,
    Outcome, PreviewOutcome, RecipientOutcome, ResolvedAudience, SkipReason,
};
use domain::content::{
    CustomerMessage, ForwardOrigin, MediaKind, MessageBody, MessageContent, OutgoingMedia,
    ReplyContent, TelegramFile, TelegramMessageId,
};
use domain::customer::{Customer, CustomerCommand, CustomerProfile};
use domain::flow::{self, Decision, RouteCustomerMessage};
use domain::settings::{BotText, Settings, SettingsCommand, TwoFactorPolicy};
use domain::ticket::{
    Actor, AddInternalNote, Channel, EditCustomerMessage, Priority, ReplyAsAgent, Ticket,
    TicketCommand, WorkStatus,
};
use domain::{
    AgentId, AnyEvent, BroadcastId, CategoryId, CustomerId, Decider, MessageId, StreamId,
    TemplateId, TicketId,
};
use eventlog::{ActorKind, Position};
use projections::Envelope;
use uuid::Uuid;

/// A history under construction, with the state of every aggregate in it.
#[derive(Debug)]
pub(crate) struct History {
    pub(crate) events: Vec<Envelope>,
    tx: u64,
    next_id: u128,
    telegram_id: i32,
    pub(crate) clock: DateTime<Utc>,
    versions: HashMap<StreamId, u64>,
    customers: HashMap<CustomerId, Customer>,
    profiles: HashMap<CustomerId, CustomerProfile>,
    tickets: HashMap<TicketId, Ticket>,
    agents: HashMap<AgentId, Agent>,
    broadcasts: HashMap<BroadcastId, Broadcast>,
    settings: Settings,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    pub(crate) fn new() -> Self {
        Self {
            events: Vec::new(),
            tx: 1000,
            next_id: 1,
            telegram_id: 1,
            clock: Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap(),
            versions: HashMap::new(),
            customers: HashMap::new(),
            profiles: HashMap::new(),
            tickets: HashMap::new(),
            agents: HashMap::new(),
            broadcasts: HashMap::new(),
            settings: Settings::default(),
        }
    }

    /// A fresh UUID (deterministic: a counter).
    pub(crate) fn uuid(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | self.next_id)
    }

    /// Moves the clock forward and returns the new time.
    pub(crate) fn after(&mut self, delta: TimeDelta) -> DateTime<Utc> {
        self.clock += delta;
        self.clock
    }

    fn tick(&mut self) -> DateTime<Utc> {
        self.after(TimeDelta::seconds(30))
    }

    fn next_telegram_id(&mut self) -> TelegramMessageId {
        self.telegram_id += 1;
        TelegramMessageId(self.telegram_id)
    }

    /// Appends a decision as one transaction and folds its events into the states.
    fn record(&mut self, decision: Decision) {
        self.tx += 1;
        let mut seq = 0;
        for write in decision.writes {
            for event in write.events {
                let version = self.versions.entry(write.stream).or_insert(0);
                let stream_version = *version;
                *version += 1;
                seq += 1;
                self.evolve(write.stream, &event);
                let event_id = self.uuid();
                let actor = match write.stream {
                    StreamId::Customer(id) => {
                        eventlog::Actor::new(ActorKind::Customer, id.to_string())
                    }
                    _ => eventlog::Actor::new(ActorKind::Agent, "agent"),
                };
                self.events.push(Envelope {
                    position: Position::from_parts(self.tx, seq),
                    stream: write.stream,
                    stream_version,
                    event_id,
                    recorded_at: self.clock,
                    actor,
                    event,
                });
            }
        }
    }

    fn record_one(&mut self, stream: StreamId, events: Vec<AnyEvent>) {
        let mut decision = Decision::default();
        if !events.is_empty() {
            decision.writes.push(flow::StreamWrite { stream, events });
        }
        self.record(decision);
    }

    fn evolve(&mut self, stream: StreamId, event: &AnyEvent) {
        match (stream, event) {
            (StreamId::Ticket(id), AnyEvent::Ticket(e)) => {
                let state = self.tickets.remove(&id).unwrap_or_default();
                self.tickets.insert(id, state.evolve(e));
            }
            (StreamId::Customer(id), AnyEvent::Customer(e)) => {
                let state = self.customers.remove(&id).unwrap_or_default();
                self.customers.insert(id, state.evolve(e));
            }
            (StreamId::Agent(id), AnyEvent::Agent(e)) => {
                let state = self.agents.remove(&id).unwrap_or_default();
                self.agents.insert(id, state.evolve(e));
            }
            (StreamId::Broadcast(id), AnyEvent::Broadcast(e)) => {
                let state = self.broadcasts.remove(&id).unwrap_or_default();
                self.broadcasts.insert(id, state.evolve(e));
            }
            (StreamId::Settings, AnyEvent::Settings(e)) => {
                let state = std::mem::take(&mut self.settings);
                self.settings = state.evolve(e);
            }
            // The audit trail's records fold into nothing.
            (StreamId::Audit(_), AnyEvent::Audit(_)) => {}
            _ => panic!("event does not belong to stream {stream}"),
        }
    }

    // --- customers and tickets ---------------------------------------------------------------

    pub(crate) fn set_profile(&mut self, customer: CustomerId, profile: CustomerProfile) {
        self.profiles.insert(customer, profile);
    }

    /// The customer writes `content` on Telegram; returns the ticket it went to and its id.
    pub(crate) fn customer_writes(
        &mut self,
        customer: CustomerId,
        category: Option<CategoryId>,
        content: MessageContent,
    ) -> (TicketId, MessageId) {
        let at = self.tick();
        let profile = self
            .profiles
            .entry(customer)
            .or_insert_with(|| profile(&format!("Customer{}", customer.0)))
            .clone();
        let customer_state = self.customers.get(&customer).cloned().unwrap_or_default();
        let window = self.settings.reopen_window();
        let target = flow::message_target(&customer_state, category, window, at);
        let ticket = match target {
            flow::MessageTarget::Existing(id) => self.tickets.get(&id).cloned(),
            flow::MessageTarget::New => None,
        };
        let new_ticket_id = TicketId(self.uuid());
        let message_id = MessageId(self.uuid());
        let telegram_message_id = self.next_telegram_id();
        let routed = flow::route_customer_message(
            &customer_state,
            ticket.as_ref(),
            &RouteCustomerMessage {
                customer,
                profile,
                category,
                new_ticket_id,
                channel: Channel::Telegram,
                message: CustomerMessage {
                    message_id,
                    telegram_message_id,
                    reply_to: None,
                    content,
                },
                reopen_window: window,
                at,
            },
        )
        .unwrap();
        self.record(routed.decision);
        (routed.ticket_id, message_id)
    }

    /// Runs a ticket command through the multi-stream flow.
    pub(crate) fn ticket(&mut self, id: TicketId, command: TicketCommand) {
        let ticket = self.tickets.get(&id).cloned().unwrap_or_default();
        let owner = ticket.state().unwrap().customer;
        let customer = self.customers.get(&owner).cloned().unwrap_or_default();
        let decision = flow::decide_for_ticket(&customer, &ticket, &command).unwrap();
        self.record(decision);
    }

    pub(crate) fn telegram_id_of(&self, ticket: TicketId, message: MessageId) -> TelegramMessageId {
        let state = self.tickets[&ticket].state().unwrap();
        *state
            .customer_messages
            .iter()
            .find(|(_, id)| **id == message)
            .unwrap()
            .0
    }

    pub(crate) fn edit(&mut self, ticket: TicketId, message: MessageId, content: MessageContent) {
        let telegram_message_id = self.telegram_id_of(ticket, message);
        let at = self.tick();
        self.ticket(
            ticket,
            TicketCommand::EditCustomerMessage(EditCustomerMessage {
                telegram_message_id,
                content,
                at,
            }),
        );
    }

    pub(crate) fn reply(&mut self, ticket: TicketId, agent: AgentId, text: &str) -> MessageId {
        self.reply_with(ticket, agent, None, ReplyContent::text(text))
    }

    pub(crate) fn reply_with(
        &mut self,
        ticket: TicketId,
        agent: AgentId,
        template: Option<TemplateId>,
        content: ReplyContent,
    ) -> MessageId {
        let message_id = MessageId(self.uuid());
        let at = self.tick();
        self.ticket(
            ticket,
            TicketCommand::ReplyAsAgent(ReplyAsAgent {
                reply_to: None,
                message_id,
                agent,
                template,
                content,
                at,
            }),
        );
        message_id
    }

    pub(crate) fn delivered(
        &mut self,
        ticket: TicketId,
        message_id: MessageId,
    ) -> TelegramMessageId {
        let telegram_message_id = self.next_telegram_id();
        let at = self.tick();
        self.ticket(
            ticket,
            TicketCommand::RecordDelivery {
                message_id,
                telegram_message_id,
                at,
            },
        );
        telegram_message_id
    }

    pub(crate) fn failed(&mut self, ticket: TicketId, message_id: MessageId, reason: &str) {
        let at = self.tick();
        self.ticket(
            ticket,
            TicketCommand::RecordDeliveryFailure {
                message_id,
                reason: reason.to_owned(),
                retryable: false,
                at,
            },
        );
    }

    pub(crate) fn note(&mut self, ticket: TicketId, agent: AgentId, text: &str) {
        let note_id = MessageId(self.uuid());
        let at = self.tick();
        self.ticket(
            ticket,
            TicketCommand::AddInternalNote(AddInternalNote {
                note_id,
                agent,
                text: text.to_owned(),
                at,
            }),
        );
    }

    /// A ticket command that only needs the time.
    pub(crate) fn at(
        &mut self,
        ticket: TicketId,
        command: impl FnOnce(DateTime<Utc>) -> TicketCommand,
    ) {
        let at = self.tick();
        self.ticket(ticket, command(at));
    }

    pub(crate) fn customer(
        &mut self,
        id: CustomerId,
        command: impl FnOnce(DateTime<Utc>) -> CustomerCommand,
    ) {
        let at = self.tick();
        let state = self.customers.get(&id).cloned().unwrap_or_default();
        let events = state.decide(&command(at)).unwrap();
        self.record_one(
            id.stream(),
            events.into_iter().map(AnyEvent::from).collect(),
        );
    }

    // --- team, settings, broadcasts ----------------------------------------------------------

    pub(crate) fn agent(
        &mut self,
        id: AgentId,
        command: impl FnOnce(DateTime<Utc>) -> AgentCommand,
    ) {
        let at = self.tick();
        let state = self.agents.get(&id).cloned().unwrap_or_default();
        let events = state.decide(&command(at)).unwrap();
        self.record_one(
            id.stream(),
            events.into_iter().map(AnyEvent::from).collect(),
        );
    }

    pub(crate) fn invite(&mut self, name: &str, role: Role, by: Option<AgentId>) -> AgentId {
        let agent_id = AgentId(self.uuid());
        self.agent(agent_id, |at| AgentCommand::Invite {
            agent_id,
            email: format!("{}@example.test", name.to_lowercase()),
            name: name.to_owned(),
            role,
            by,
            at,
        });
        agent_id
    }

    pub(crate) fn setting(&mut self, command: impl FnOnce(DateTime<Utc>) -> SettingsCommand) {
        let at = self.tick();
        let events = self.settings.decide(&command(at)).unwrap();
        self.record_one(
            StreamId::Settings,
            events.into_iter().map(AnyEvent::from).collect(),
        );
    }

    pub(crate) fn broadcast(
        &mut self,
        id: BroadcastId,
        command: impl FnOnce(DateTime<Utc>) -> BroadcastCommand,
    ) {
        let at = self.tick();
        let state = self.broadcasts.get(&id).cloned().unwrap_or_default();
        let events = state.decide(&command(at)).unwrap();
        self.record_one(
            id.stream(),
            events.into_iter().map(AnyEvent::from).collect(),
        );
    }
}

pub(crate) fn profile(first_name: &str) -> CustomerProfile {
    CustomerProfile {
        first_name: first_name.to_owned(),
        last_name: Some("Tester".to_owned()),
        username: Some(first_name.to_lowercase()),
        language_code: Some("en".to_owned()),
    }
}

fn file(n: u32) -> TelegramFile {
    TelegramFile {
        file_id: format!("file-{n}"),
        file_unique_id: format!("unique-{n}"),
    }
}

/// A customer message of one of many kinds, picked by `n`.
pub(crate) fn content(n: u32) -> MessageContent {
    let (body, caption) = match n % 12 {
        0 => (
            MessageBody::Text {
                text: format!("Message number {n}\nwith a second line"),
            },
            None,
        ),
        1 => (
            MessageBody::Photo { file: file(n) },
            Some(format!("photo caption {n}")),
        ),
        2 => (MessageBody::Video { file: file(n) }, None),
        3 => (
            MessageBody::Document {
                file: file(n),
                file_name: Some("invoice.pdf".to_owned()),
            },
            Some("the invoice".to_owned()),
        ),
        4 => (MessageBody::Audio { file: file(n) }, None),
        5 => (MessageBody::Voice { file: file(n) }, None),
        6 => (MessageBody::VideoNote { file: file(n) }, None),
        7 => (
            MessageBody::Sticker {
                file: file(n),
                emoji: Some("👍".to_owned()),
            },
            None,
        ),
        8 => (MessageBody::Animation { file: file(n) }, None),
        9 => (
            MessageBody::Location {
                latitude: 52.52,
                longitude: 13.405,
            },
            None,
        ),
        10 => (
            MessageBody::Venue {
                latitude: 48.85,
                longitude: 2.35,
                title: "Cafe \"Central\"".to_owned(),
                address: "1 Main St".to_owned(),
            },
            None,
        ),
        _ => (
            MessageBody::Contact {
                phone_number: "+100000000".to_owned(),
                first_name: "Ann".to_owned(),
                last_name: None,
                user_id: Some(77),
            },
            None,
        ),
    };
    let forwarded_from = match n % 5 {
        1 => Some(ForwardOrigin::User {
            user_id: 5,
            name: "Bob".to_owned(),
        }),
        3 => Some(ForwardOrigin::Channel {
            chat_id: -100_123,
            title: "News".to_owned(),
            message_id: TelegramMessageId(9),
        }),
        _ => None,
    };
    MessageContent {
        body,
        caption,
        forwarded_from,
        forwarded_at: None,
        media: None,
        media_group_id: None,
        entities: Vec::new(),
    }
}

pub(crate) fn text(text: &str) -> MessageContent {
    MessageContent::text(text)
}

/// What the scripted history holds, for tests to look up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cast {
    pub(crate) admin: AgentId,
    pub(crate) alice: AgentId,
    pub(crate) bob: AgentId,
    pub(crate) billing: CategoryId,
    pub(crate) shipping: CategoryId,
    pub(crate) legacy: CategoryId,
    pub(crate) greeting_template: TemplateId,
    pub(crate) removed_template: TemplateId,
    pub(crate) ann: CustomerId,
    pub(crate) ben: CustomerId,
    pub(crate) cleo: CustomerId,
    /// Ann's first ticket: the long scripted conversation, resolved, rated, reopened, closed.
    pub(crate) conversation: TicketId,
    pub(crate) delivered_reply: MessageId,
    pub(crate) failed_reply: MessageId,
    pub(crate) edited_message: MessageId,
    /// Ben's ticket, left open.
    pub(crate) open_ticket: TicketId,
    pub(crate) sent_broadcast: BroadcastId,
    pub(crate) cancelled_broadcast: BroadcastId,
}

/// A history holding every one of the 55 event types.
pub(crate) fn scripted() -> (History, Cast) {
    let mut h = History::new();

    // The team and the settings.
    let admin = h.invite("Admin", Role::Admin, None);
    let alice = h.invite("Alice", Role::Agent, Some(admin));
    let bob = h.invite("Bob", Role::Agent, Some(admin));
    let billing = CategoryId(h.uuid());
    let shipping = CategoryId(h.uuid());
    let legacy = CategoryId(h.uuid());
    for (category_id, name) in [
        (billing, "Billing"),
        (shipping, "Shipping"),
        (legacy, "Legacy"),
    ] {
        h.setting(|at| SettingsCommand::AddCategory {
            category_id,
            name: name.to_owned(),
            by: admin,
            at,
        });
    }
    h.setting(|at| SettingsCommand::RenameCategory {
        category_id: shipping,
        name: "Delivery".to_owned(),
        by: admin,
        at,
    });
    h.setting(|at| SettingsCommand::RemoveCategory {
        category_id: legacy,
        by: admin,
        at,
    });
    let greeting_template = TemplateId(h.uuid());
    let removed_template = TemplateId(h.uuid());
    for (template_id, title) in [(greeting_template, "Hello"), (removed_template, "Old")] {
        h.setting(|at| SettingsCommand::AddTemplate {
            template_id,
            title: title.to_owned(),
            text: format!("{title} text"),
            by: admin,
            at,
        });
    }
    h.setting(|at| SettingsCommand::EditTemplate {
        template_id: greeting_template,
        title: "Greeting".to_owned(),
        text: "Hello, how can we help?".to_owned(),
        by: admin,
        at,
    });
    h.setting(|at| SettingsCommand::RemoveTemplate {
        template_id: removed_template,
        by: admin,
        at,
    });
    h.setting(|at| SettingsCommand::SetGreeting {
        text: Some("Welcome!".to_owned()),
        by: admin,
        at,
    });
    h.setting(|at| SettingsCommand::SetReopenWindow {
        window: TimeDelta::hours(48),
        by: admin,
        at,
    });
    h.setting(|at| SettingsCommand::SetBotText {
        key: BotText::Help,
        language: "ru".to_owned(),
        text: Some("Спросите нас о чём угодно.".to_owned()),
        by: admin,
        at,
    });
    h.agent(alice, |at| AgentCommand::ChangeRole {
        role: Role::Admin,
        by: admin,
        at,
    });
    h.agent(alice, |at| AgentCommand::AssignCategories {
        categories: vec![billing, shipping],
        by: admin,
        at,
    });
    h.agent(alice, |at| AgentCommand::RecordPasswordChange {
        by: alice,
        at,
    });
    h.setting(|at| SettingsCommand::SetTwoFactorPolicy {
        policy: TwoFactorPolicy::Admins,
        by: admin,
        at,
    });
    h.agent(alice, |at| AgentCommand::RecordSecondFactorEnrolled { at });
    h.agent(alice, |at| AgentCommand::RecordRecoveryCodeUsed {
        remaining: 9,
        at,
    });
    h.agent(alice, |at| AgentCommand::RecordSecondFactorThrottled { at });
    h.agent(alice, |at| AgentCommand::RecordSecondFactorRemoved {
        by: alice,
        at,
    });
    h.agent(alice, |at| AgentCommand::RecordSecondFactorEnrolled { at });
    h.agent(alice, |at| AgentCommand::RecordSecondFactorRemoved {
        by: admin,
        at,
    });
    h.agent(bob, |at| AgentCommand::Deactivate { by: admin, at });
    h.agent(bob, |at| AgentCommand::Reactivate { by: admin, at });
    h.agent(bob, |at| AgentCommand::Deactivate { by: alice, at });

    // Ann's conversation.
    let ann = CustomerId(1001);
    h.set_profile(ann, profile("Ann"));
    let (conversation, first) = h.customer_writes(
        ann,
        Some(billing),
        text("  \n  My invoice is wrong\nIt says 100 instead of 10"),
    );
    let mut kinds = Vec::new();
    for n in 1..12 {
        let (ticket, message) = h.customer_writes(ann, Some(billing), content(n));
        assert_eq!(ticket, conversation);
        kinds.push(message);
    }
    let edited_message = kinds[0];
    h.edit(conversation, edited_message, {
        let mut c = content(1);
        c.caption = Some("edited caption".to_owned());
        c
    });
    h.edit(conversation, first, text("My invoice is wrong (edited)"));
    h.at(conversation, |at| TicketCommand::Assign {
        agent: alice,
        by: admin,
        at,
    });
    h.at(conversation, |at| TicketCommand::Unassign { by: admin, at });
    h.at(conversation, |at| TicketCommand::Assign {
        agent: alice,
        by: alice,
        at,
    });
    let delivered_reply = h.reply_with(
        conversation,
        alice,
        Some(greeting_template),
        ReplyContent {
            text: Some("Hello, how can we help?".to_owned()),
            media: vec![OutgoingMedia {
                kind: MediaKind::Photo,
                file_id: "reply-photo".to_owned(),
            }],
        },
    );
    h.delivered(conversation, delivered_reply);
    let failed_reply = h.reply(conversation, alice, "Could you send the invoice number?");
    h.failed(
        conversation,
        failed_reply,
        "Forbidden: bot was blocked by the user",
    );
    // An agent asks for it to be sent again, and it fails the same way.
    h.at(conversation, |at| TicketCommand::RetryDelivery {
        message_id: failed_reply,
        by: alice,
        at,
    });
    h.failed(
        conversation,
        failed_reply,
        "Forbidden: bot was blocked by the user",
    );
    h.note(conversation, alice, "Customer is a VIP");
    h.at(conversation, |at| TicketCommand::SetStatus {
        status: WorkStatus::Pending,
        by: Actor::Agent { agent_id: alice },
        at,
    });
    h.customer_writes(ann, Some(billing), text("It is INV-42"));
    h.at(conversation, |at| TicketCommand::SetPriority {
        priority: Priority::High,
        by: alice,
        at,
    });
    for tag in ["invoice", "VIP ", "refund"] {
        h.at(conversation, |at| TicketCommand::AddTag {
            tag: tag.to_owned(),
            by: alice,
            at,
        });
    }
    h.at(conversation, |at| TicketCommand::RemoveTag {
        tag: "refund".to_owned(),
        by: alice,
        at,
    });
    h.at(conversation, |at| TicketCommand::ChangeCategory {
        category: Some(shipping),
        by: alice,
        at,
    });
    h.reply(conversation, alice, "Fixed, sorry!");
    h.at(conversation, |at| TicketCommand::Resolve {
        by: Actor::Agent { agent_id: alice },
        at,
    });
    h.at(conversation, |at| TicketCommand::Rate {
        rating: 4,
        comment: Some("quick".to_owned()),
        at,
    });
    // Within the reopen window: the message reopens the ticket.
    let (again, _) = h.customer_writes(ann, Some(shipping), text("One more thing"));
    assert_eq!(again, conversation);
    h.reply(conversation, alice, "Sure");
    h.at(conversation, |at| TicketCommand::Resolve {
        by: Actor::Agent { agent_id: alice },
        at,
    });
    h.at(conversation, |at| TicketCommand::Rate {
        rating: 5,
        comment: None,
        at,
    });
    h.at(conversation, |at| TicketCommand::Close {
        by: Actor::System,
        at,
    });

    // Ben: profile change, blocked and unblocked, banned and unbanned; his ticket stays open.
    // Ann picks the billing category from the greeting's buttons.
    h.customer(ann, |at| CustomerCommand::ChooseCategory {
        category: Some(billing),
        at,
    });
    // Ann came through two deep links: the first stays, the latest replaces the one before.
    for payload in ["ads-spring", "ref-42"] {
        h.customer(ann, |at| CustomerCommand::RecordStartPayload {
            payload: payload.to_owned(),
            at,
        });
    }

    let ben = CustomerId(1002);
    h.set_profile(ben, profile("Ben"));
    let (open_ticket, _) = h.customer_writes(ben, None, content(2));
    h.customer(ben, |at| CustomerCommand::RecordBotBlocked { at });
    h.set_profile(
        ben,
        CustomerProfile {
            username: Some("benjamin".to_owned()),
            ..profile("Benjamin")
        },
    );
    // Writing again unblocks and updates the profile.
    h.customer_writes(ben, None, text("still there?"));
    h.customer(ben, |at| CustomerCommand::Ban {
        by: admin,
        reason: Some("spam".to_owned()),
        at,
    });
    h.customer(ben, |at| CustomerCommand::Unban { by: admin, at });
    h.customer(ben, |at| CustomerCommand::Ban {
        by: admin,
        reason: Some("spam again".to_owned()),
        at,
    });
    // A banned customer's message is kept on his stream and goes to no ticket.
    let refused = CustomerMessage {
        message_id: MessageId(h.uuid()),
        telegram_message_id: h.next_telegram_id(),
        reply_to: None,
        content: text("let me in"),
    };
    h.customer(ben, |at| CustomerCommand::RecordRefusedMessage {
        message: refused,
        at,
    });
    h.reply(open_ticket, admin, "Please stop");

    // Cleo opts out and back in, then out again.
    let cleo = CustomerId(1003);
    h.customer_writes(cleo, None, text("hi"));
    h.customer(cleo, |at| CustomerCommand::OptOutOfBroadcasts { at });
    h.customer(cleo, |at| CustomerCommand::OptIntoBroadcasts { at });
    h.customer(cleo, |at| CustomerCommand::OptOutOfBroadcasts { at });

    // Broadcasts: one sent to completion, one cancelled.
    let sent_broadcast = BroadcastId(h.uuid());
    let content = |text: &str| BroadcastContent {
        format: domain::broadcast::TextFormat::Plain,
        unsubscribe_button: true,
        text: Some(text.to_owned()),
        media: None,
        buttons: vec![vec![InlineButton {
            label: "Open".to_owned(),
            action: ButtonAction::Url {
                url: "https://example.test".to_owned(),
            },
        }]],
    };
    h.broadcast(sent_broadcast, |at| BroadcastCommand::Draft {
        broadcast_id: sent_broadcast,
        audience: Audience::AllCustomers,
        content: content("Sale"),
        by: alice,
        at,
    });
    let mut big_sale = content("Big sale");
    big_sale.buttons.push(vec![InlineButton {
        label: "Remind me".to_owned(),
        action: ButtonAction::Callback {
            data: "remind".to_owned(),
        },
    }]);
    h.broadcast(sent_broadcast, |at| BroadcastCommand::Edit {
        audience: Audience::ByLanguage {
            language: "en".to_owned(),
        },
        content: big_sale,
        by: alice,
        at,
    });
    let send_at = h.clock + TimeDelta::hours(2);
    h.broadcast(sent_broadcast, |at| BroadcastCommand::Schedule {
        send_at,
        by: alice,
        at,
    });
    h.broadcast(sent_broadcast, |at| BroadcastCommand::Unschedule {
        by: alice,
        at,
    });
    let send_at = h.clock + TimeDelta::hours(3);
    h.broadcast(sent_broadcast, |at| BroadcastCommand::Schedule {
        send_at,
        by: alice,
        at,
    });
    h.after(TimeDelta::hours(3));
    h.broadcast(sent_broadcast, |at| BroadcastCommand::Start {
        audience: ResolvedAudience {
            segment: Audience::ByLanguage {
                language: "en".to_owned(),
            },
            recipients: vec![ann, ben, cleo, CustomerId(1004)],
            excluded: vec![Excluded {
                customer: CustomerId(1005),
                reason: SkipReason::OptedOut,
            }],
        },
        by: None,
        at,
    });
    h.broadcast(sent_broadcast, |at| BroadcastCommand::RecordOutcomes {
        outcomes: vec![
            RecipientOutcome {
                customer: ann,
                outcome: Outcome::Delivered {
                    telegram_message_id: TelegramMessageId(500),
                },
            },
            RecipientOutcome {
                customer: ben,
                outcome: Outcome::Skipped {
                    reason: SkipReason::Banned,
                },
            },
        ],
        at,
    });
    h.broadcast(sent_broadcast, |at| BroadcastCommand::Pause {
        by: alice,
        at,
    });
    h.broadcast(sent_broadcast, |at| BroadcastCommand::Resume {
        by: alice,
        at,
    });
    h.broadcast(sent_broadcast, |at| BroadcastCommand::RecordOutcomes {
        outcomes: vec![
            RecipientOutcome {
                customer: cleo,
                outcome: Outcome::Failed {
                    reason: "Forbidden".to_owned(),
                    retryable: false,
                },
            },
            RecipientOutcome {
                customer: CustomerId(1004),
                outcome: Outcome::Delivered {
                    telegram_message_id: TelegramMessageId(501),
                },
            },
        ],
        at,
    });
    // The last batch completed it; presses count after the end too.
    for customer in [ann, ann, CustomerId(1004)] {
        h.broadcast(sent_broadcast, |at| BroadcastCommand::PressButton {
            customer,
            index: 1,
            at,
        });
    }
    let cancelled_broadcast = BroadcastId(h.uuid());
    h.broadcast(cancelled_broadcast, |at| BroadcastCommand::Draft {
        broadcast_id: cancelled_broadcast,
        audience: Audience::Explicit {
            customers: vec![ann, cleo],
        },
        content: content("Never sent"),
        by: alice,
        at,
    });
    // Previewed twice before it was dropped: once sent, once refused.
    for (n, outcome) in [
        PreviewOutcome::Sent {
            telegram_message_id: TelegramMessageId(77),
        },
        PreviewOutcome::Failed {
            reason: "Bad Request: chat not found".to_owned(),
        },
    ]
    .into_iter()
    .enumerate()
    {
        let preview_id = h.uuid();
        h.broadcast(cancelled_broadcast, |at| BroadcastCommand::RequestPreview {
            preview_id,
            chat: 9_000 + i64::try_from(n).unwrap_or(0),
            by: alice,
            at,
        });
        h.broadcast(cancelled_broadcast, |at| {
            BroadcastCommand::RecordPreviewOutcome {
                preview_id,
                outcome,
                at,
            }
        });
    }
    h.broadcast(cancelled_broadcast, |at| BroadcastCommand::Cancel {
        by: Some(alice),
        at,
    });

    // The panel's audit trail, which no read model shows.
    {
        use domain::AuditStream;
        use domain::audit::{
            ApiTokenCreated, ApiTokenRevoked, AuditEvent, ExportMade, ReplayRun, SignInRefused,
            SignedIn, SignedOut,
        };
        let at = h.tick();
        let token_id = h.uuid();
        let trail: Vec<AnyEvent> = vec![
            AuditEvent::SignedIn(SignedIn {
                agent: admin,
                address: Some("203.0.113.7".into()),
                second_factor: false,
                at,
            }),
            AuditEvent::SignInRefused(SignInRefused {
                agent: Some(admin),
                address: None,
                reason: "rate_limited".into(),
                attempts: 2,
                since: at,
                at,
            }),
            AuditEvent::ApiTokenCreated(ApiTokenCreated {
                token_id,
                name: "sync".into(),
                scopes: vec!["tickets:read".into()],
                by: admin,
                at,
            }),
            AuditEvent::ApiTokenRevoked(ApiTokenRevoked {
                token_id,
                by: admin,
                at,
            }),
            AuditEvent::SignedOut(SignedOut {
                agent: admin,
                everywhere: true,
                at,
            }),
        ]
        .into_iter()
        .map(Into::into)
        .collect();
        h.record_one(StreamId::Audit(AuditStream::Agent(admin)), trail);
        let operations: Vec<AnyEvent> = vec![
            AuditEvent::ReplayRun(ReplayRun {
                projections: vec!["tickets".into()],
                verify: false,
                outcome: "rebuilt".into(),
                differing_rows: 0,
                started_at: at,
                at,
            })
            .into(),
            AuditEvent::ExportMade(ExportMade {
                from: None,
                to: None,
                stream_prefix: None,
                events: 10,
                at,
            })
            .into(),
        ];
        h.record_one(StreamId::Audit(AuditStream::Operations), operations);
    }

    // Cleo's personal data is forgotten at last; her ticket is left out of the record, so only
    // her customer row changes (the erasure of every row of a customer is tested end to end
    // with the server, tests/ledgerdesk/erasure.rs).
    h.customer(cleo, |at| CustomerCommand::Forget {
        tickets: Vec::new(),
        at,
    });

    let cast = Cast {
        admin,
        alice,
        bob,
        billing,
        shipping,
        legacy,
        greeting_template,
        removed_template,
        ann,
        ben,
        cleo,
        conversation,
        delivered_reply,
        failed_reply,
        edited_message,
        open_ticket,
        sent_broadcast,
        cancelled_broadcast,
    };
    (h, cast)
}

/// A larger history: `customers` customers, each with a few tickets of many messages, driven by
/// a small deterministic generator.
pub(crate) fn generated(customers: u32, seed: u64) -> History {
    let (mut h, cast) = scripted();
    let agents = [cast.admin, cast.alice];
    let mut rng = seed | 1;
    let mut next = move |n: u32| {
        // xorshift64
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        u32::try_from(rng % u64::from(n.max(1))).unwrap()
    };
    for c in 0..customers {
        let customer = CustomerId(10_000 + i64::from(c));
        for _ in 0..=next(2) {
            let (ticket, _) = h.customer_writes(customer, None, content(next(12)));
            let agent = agents[usize::try_from(next(2)).unwrap()];
            for _ in 0..3 + next(6) {
                match next(10) {
                    0..=3 => {
                        h.customer_writes(customer, None, content(next(12)));
                    }
                    4..=6 => {
                        let reply = h.reply(ticket, agent, "Thanks, looking into it");
                        if next(8) == 0 {
                            h.failed(ticket, reply, "Too Many Requests");
                        }
                        h.delivered(ticket, reply);
                    }
                    7 => h.note(ticket, agent, "internal"),
                    8 => h.at(ticket, |at| TicketCommand::AddTag {
                        tag: format!("t{}", next(5)),
                        by: agent,
                        at,
                    }),
                    _ => h.at(ticket, |at| TicketCommand::Assign {
                        agent,
                        by: agent,
                        at,
                    }),
                }
            }
            h.at(ticket, |at| TicketCommand::Resolve {
                by: Actor::Agent { agent_id: agent },
                at,
            });
            if next(2) == 0 {
                h.at(ticket, |at| TicketCommand::Rate {
                    rating: u8::try_from(1 + next(5)).unwrap(),
                    comment: None,
                    at,
                });
            }
            h.at(ticket, |at| TicketCommand::Close {
                by: Actor::System,
                at,
            });
            h.after(TimeDelta::minutes(i64::from(next(600))));
        }
    }
    h
}
