use chrono::TimeZone;
use uuid::Uuid;

use super::*;
use crate::content::{MediaKind, MessageContent, OutgoingMedia, ReplyContent};
use crate::ids::TemplateId;
use crate::testkit::{Given, given};

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
        .single()
        .unwrap_or_default()
        + TimeDelta::minutes(minutes)
}
fn ticket_id() -> TicketId {
    TicketId(Uuid::from_u128(0x7))
}
fn customer() -> CustomerId {
    CustomerId(4242)
}
fn agent() -> AgentId {
    AgentId(Uuid::from_u128(0xa1))
}
fn msg(n: u128) -> MessageId {
    MessageId(Uuid::from_u128(0x100 + n))
}
fn window() -> TimeDelta {
    TimeDelta::days(7)
}
fn customer_message(n: i32) -> CustomerMessage {
    CustomerMessage {
        message_id: msg(n.unsigned_abs().into()),
        telegram_message_id: TelegramMessageId(n),
        reply_to: None,
        content: MessageContent::text(format!("message {n}")),
    }
}
fn open_command() -> TicketCommand {
    TicketCommand::Open(OpenTicket {
        ticket_id: ticket_id(),
        customer: customer(),
        category: None,
        channel: Channel::Telegram,
        first_message: customer_message(1),
        at: t(0),
    })
}
fn opened() -> TicketEvent {
    TicketEvent::Opened(TicketOpened {
        ticket_id: ticket_id(),
        customer: customer(),
        category: None,
        channel: Channel::Telegram,
        at: t(0),
    })
}
fn message_posted(n: i32, at: DateTime<Utc>) -> TicketEvent {
    TicketEvent::CustomerMessagePosted(posted(&customer_message(n), at))
}
fn post(n: i32, at: DateTime<Utc>) -> TicketCommand {
    TicketCommand::PostCustomerMessage(PostCustomerMessage {
        message: customer_message(n),
        reopen_window: window(),
        at,
    })
}
fn reply_command(id: u128) -> ReplyAsAgent {
    ReplyAsAgent {
        reply_to: None,
        message_id: msg(id),
        agent: agent(),
        template: None,
        content: ReplyContent::text("hello"),
        at: t(5),
    }
}
fn replied(id: u128) -> TicketEvent {
    TicketEvent::AgentReplied(AgentReplied {
        reply_to: None,
        message_id: msg(id),
        agent: agent(),
        template: None,
        at: t(5),
        content: ReplyContent::text("hello"),
    })
}
fn by_agent() -> Actor {
    Actor::Agent { agent_id: agent() }
}
fn status(from: TicketStatus, to: TicketStatus, by: Actor, at: DateTime<Utc>) -> TicketEvent {
    TicketEvent::StatusChanged(StatusChanged { from, to, by, at })
}
fn resolved(at: DateTime<Utc>) -> TicketEvent {
    TicketEvent::Resolved(LifecycleStep { by: by_agent(), at })
}
fn closed(at: DateTime<Utc>) -> TicketEvent {
    TicketEvent::Closed(LifecycleStep {
        by: Actor::System,
        at,
    })
}
fn reopened(by: Actor, at: DateTime<Utc>) -> TicketEvent {
    TicketEvent::Reopened(LifecycleStep { by, at })
}
fn rated(rating: u8) -> TicketEvent {
    TicketEvent::Rated(TicketRated {
        rating,
        at: t(70),
        content: RatingComment { comment: None },
    })
}
fn rate(rating: u8) -> TicketCommand {
    TicketCommand::Rate {
        rating,
        comment: None,
        at: t(70),
    }
}
fn tag(name: &str) -> TicketCommand {
    TicketCommand::AddTag {
        tag: name.into(),
        by: agent(),
        at: t(3),
    }
}
fn tag_added(name: &str) -> TicketEvent {
    TicketEvent::TagAdded(TagChanged {
        tag: name.into(),
        by: agent(),
        at: t(3),
    })
}

/// A ticket opened with message 1, plus `more`.
fn open_ticket(more: impl IntoIterator<Item = TicketEvent>) -> Given<Ticket> {
    given([opened(), message_posted(1, t(0))].into_iter().chain(more))
}

// Open

#[test]
fn opening_a_ticket_records_the_opening_and_the_first_message() {
    let state = given::<Ticket>([])
        .when(open_command())
        .then([opened(), message_posted(1, t(0))]);
    assert_eq!(state.status(), Some(TicketStatus::New));
}

#[test]
fn opening_an_open_ticket_is_rejected() {
    open_ticket([])
        .when(open_command())
        .then_err(TicketError::AlreadyOpened);
}

#[test]
fn opening_with_a_blank_first_message_is_rejected() {
    let TicketCommand::Open(mut open) = open_command() else {
        unreachable!("open_command builds an Open");
    };
    open.first_message.content = MessageContent::text(" ");
    given::<Ticket>([])
        .when(TicketCommand::Open(open))
        .then_err(
            InvalidInput::Empty {
                field: "message text",
            }
            .into(),
        );
}

#[test]
fn any_other_command_on_an_unopened_ticket_is_rejected() {
    given::<Ticket>([])
        .when(post(2, t(1)))
        .then_err(TicketError::NotOpened);
    given::<Ticket>([])
        .when(TicketCommand::Close {
            by: Actor::System,
            at: t(1),
        })
        .then_err(TicketError::NotOpened);
}

// Customer messages

#[test]
fn a_customer_message_is_posted_to_an_open_ticket() {
    open_ticket([])
        .when(post(2, t(1)))
        .then([message_posted(2, t(1))]);
}

#[test]
fn a_customer_message_on_a_pending_ticket_moves_it_back_to_open() {
    let pending = status(TicketStatus::New, TicketStatus::Pending, by_agent(), t(1));
    let state = open_ticket([pending]).when(post(2, t(2))).then([
        status(
            TicketStatus::Pending,
            TicketStatus::Open,
            Actor::Customer,
            t(2),
        ),
        message_posted(2, t(2)),
    ]);
    assert_eq!(state.status(), Some(TicketStatus::Open));
}

#[test]
fn the_same_telegram_message_delivered_twice_is_posted_once() {
    open_ticket([]).when(post(1, t(1))).then([]);
}

#[test]
fn a_customer_message_reusing_a_message_id_is_rejected() {
    let mut message = customer_message(2);
    message.message_id = msg(1);
    open_ticket([])
        .when(TicketCommand::PostCustomerMessage(PostCustomerMessage {
            message,
            reopen_window: window(),
            at: t(1),
        }))
        .then_err(TicketError::DuplicateMessageId);
}

#[test]
fn a_customer_message_after_resolve_reopens_the_ticket_within_the_window() {
    let state = open_ticket([resolved(t(10))])
        .when(post(2, t(10) + window()))
        .then([
            reopened(Actor::Customer, t(10) + window()),
            message_posted(2, t(10) + window()),
        ]);
    assert_eq!(state.status(), Some(TicketStatus::Open));
}

#[test]
fn a_customer_message_after_the_reopen_window_is_rejected() {
    open_ticket([resolved(t(10))])
        .when(post(2, t(11) + window()))
        .then_err(TicketError::ReopenWindowPassed);
}

#[test]
fn a_customer_message_on_a_closed_ticket_is_rejected() {
    open_ticket([closed(t(10))])
        .when(post(2, t(11)))
        .then_err(TicketError::Closed);
}

#[test]
fn a_customer_text_past_the_customer_limit_is_rejected() {
    let max = crate::validate::MAX_CUSTOMER_TEXT_CHARS;
    let mut message = customer_message(2);
    message.content = MessageContent::text("x".repeat(max + 1));
    open_ticket([])
        .when(TicketCommand::PostCustomerMessage(PostCustomerMessage {
            message,
            reopen_window: window(),
            at: t(1),
        }))
        .then_err(
            InvalidInput::TooLong {
                field: "message text",
                max,
                actual: max + 1,
            }
            .into(),
        );
}

#[test]
fn editing_a_customer_message_records_the_new_content() {
    let content = MessageContent::text("fixed typo");
    open_ticket([])
        .when(TicketCommand::EditCustomerMessage(EditCustomerMessage {
            telegram_message_id: TelegramMessageId(1),
            content: content.clone(),
            at: t(2),
        }))
        .then([TicketEvent::CustomerMessageEdited(CustomerMessageEdited {
            message_id: msg(1),
            telegram_message_id: TelegramMessageId(1),
            kind: crate::content::MessageKind::Text,
            at: t(2),
            content,
        })]);
}

#[test]
fn editing_an_unknown_customer_message_is_rejected() {
    open_ticket([])
        .when(TicketCommand::EditCustomerMessage(EditCustomerMessage {
            telegram_message_id: TelegramMessageId(99),
            content: MessageContent::text("?"),
            at: t(2),
        }))
        .then_err(TicketError::UnknownMessage);
}

#[test]
fn editing_a_message_on_a_closed_ticket_is_rejected() {
    open_ticket([closed(t(1))])
        .when(TicketCommand::EditCustomerMessage(EditCustomerMessage {
            telegram_message_id: TelegramMessageId(1),
            content: MessageContent::text("?"),
            at: t(2),
        }))
        .then_err(TicketError::Closed);
}

// Agent replies and notes

#[test]
fn an_agent_reply_on_a_new_ticket_opens_it() {
    let state = open_ticket([])
        .when(TicketCommand::ReplyAsAgent(reply_command(50)))
        .then([
            replied(50),
            status(TicketStatus::New, TicketStatus::Open, by_agent(), t(5)),
        ]);
    assert_eq!(
        state.state().and_then(|t| t.replies.get(&msg(50)).copied()),
        Some(Delivery::Pending)
    );
}

#[test]
fn an_agent_reply_with_media_and_a_template_is_recorded_as_is() {
    let open = status(TicketStatus::New, TicketStatus::Open, by_agent(), t(1));
    let template = TemplateId(Uuid::from_u128(0x77));
    let content = ReplyContent {
        text: None,
        media: vec![OutgoingMedia {
            kind: MediaKind::Document,
            file_id: "BQAC".into(),
        }],
    };
    open_ticket([open])
        .when(TicketCommand::ReplyAsAgent(ReplyAsAgent {
            reply_to: None,
            template: Some(template),
            content: content.clone(),
            ..reply_command(50)
        }))
        .then([TicketEvent::AgentReplied(AgentReplied {
            reply_to: None,
            message_id: msg(50),
            agent: agent(),
            template: Some(template),
            at: t(5),
            content,
        })]);
}

#[test]
fn an_agent_reply_on_a_resolved_ticket_is_accepted() {
    open_ticket([resolved(t(2))])
        .when(TicketCommand::ReplyAsAgent(reply_command(50)))
        .then([replied(50)]);
}

#[test]
fn replying_to_a_closed_ticket_is_rejected() {
    open_ticket([closed(t(2))])
        .when(TicketCommand::ReplyAsAgent(reply_command(50)))
        .then_err(TicketError::Closed);
}

#[test]
fn an_empty_reply_is_rejected() {
    open_ticket([])
        .when(TicketCommand::ReplyAsAgent(ReplyAsAgent {
            reply_to: None,
            content: ReplyContent {
                text: None,
                media: vec![],
            },
            ..reply_command(50)
        }))
        .then_err(InvalidInput::Empty { field: "reply" }.into());
}

#[test]
fn a_reply_reusing_a_message_id_is_rejected() {
    open_ticket([replied(50)])
        .when(TicketCommand::ReplyAsAgent(reply_command(50)))
        .then_err(TicketError::DuplicateMessageId);
}

fn note(text: &str) -> TicketCommand {
    TicketCommand::AddInternalNote(AddInternalNote {
        note_id: msg(60),
        agent: agent(),
        text: text.into(),
        at: t(6),
    })
}

#[test]
fn an_internal_note_is_recorded() {
    open_ticket([])
        .when(note("VIP customer"))
        .then([TicketEvent::NoteAdded(NoteAdded {
            note_id: msg(60),
            agent: agent(),
            at: t(6),
            content: NoteContent {
                text: "VIP customer".into(),
            },
        })]);
}

#[test]
fn a_note_on_a_closed_ticket_is_rejected() {
    open_ticket([closed(t(2))])
        .when(note("late"))
        .then_err(TicketError::Closed);
}

#[test]
fn a_blank_note_is_rejected() {
    open_ticket([])
        .when(note("\n"))
        .then_err(InvalidInput::Empty { field: "note" }.into());
}

mod workflow;
