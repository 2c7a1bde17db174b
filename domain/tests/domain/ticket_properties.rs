//! Ticket properties: random command sequences never panic, keep the invariants, and evolve
//! is total.

use chrono::TimeDelta;
use domain::Decider;
use domain::content::{
    CustomerMessage, MessageBody, MessageContent, ReplyContent, TelegramFile, TelegramMessageId,
    TextEntity,
};
use domain::ticket::{
    Actor, AddInternalNote, Channel, EditCustomerMessage, OpenTicket, PostCustomerMessage,
    Priority, ReplyAsAgent, Ticket, TicketCommand, TicketEvent, TicketStatus, WorkStatus,
};
use domain::{CustomerId, TicketId};
use proptest::prelude::*;
use uuid::Uuid;

use crate::support::{agent, arb_time, category, msg, t};

fn arb_actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        (0u8..3).prop_map(|n| Actor::Agent { agent_id: agent(n) }),
        Just(Actor::Customer),
        Just(Actor::System),
    ]
}
fn arb_content() -> impl Strategy<Value = MessageContent> {
    prop_oneof![
        4 => "[a-z ]{0,12}".prop_map(MessageContent::text),
        1 => Just(MessageContent::text("x".repeat(domain::validate::MAX_CUSTOMER_TEXT_CHARS + 1))),
        1 => Just(MessageContent {
            body: MessageBody::Photo {
                file: TelegramFile { file_id: "f".into(), file_unique_id: "u".into() },
            },
            caption: Some("caption".into()),
            forwarded_from: None,
            forwarded_at: None,
            media: None,
            media_group_id: None,
            entities: vec![TextEntity::new("bold", 0, 3)],
        }),
        1 => (1u8..7, proptest::option::of("[0-9]{1,4}")).prop_map(|(value, group)| {
            MessageContent {
                media_group_id: group,
                ..MessageContent::of(MessageBody::Dice { emoji: "🎲".into(), value })
            }
        }),
        1 => Just(MessageContent::of(MessageBody::Service {
            action: "pinned_message".into(),
            message: Some(TelegramMessageId(1)),
        })),
        1 => Just(MessageContent {
            caption: Some("a game".into()),
            ..MessageContent::of(MessageBody::Unsupported { kind: "game".into() })
        }),
        1 => (-100.0f64..100.0, -200.0f64..200.0).prop_map(|(latitude, longitude)| {
            MessageContent {
                body: MessageBody::Location { latitude, longitude },
                caption: None,
                forwarded_from: None,
                forwarded_at: None,
                media: None,
                media_group_id: None,
                entities: Vec::new(),
            }
        }),
    ]
}
fn arb_message() -> impl Strategy<Value = CustomerMessage> {
    (0u8..8, 0i32..8, arb_content()).prop_map(|(id, telegram, content)| CustomerMessage {
        message_id: msg(id),
        telegram_message_id: TelegramMessageId(telegram),
        reply_to: None,
        content,
    })
}
fn arb_reply() -> impl Strategy<Value = ReplyContent> {
    prop_oneof![
        "[a-z]{0,5}".prop_map(ReplyContent::text),
        Just(ReplyContent {
            text: None,
            media: vec![]
        }),
    ]
}

fn arb_ticket_command() -> impl Strategy<Value = TicketCommand> {
    prop_oneof![
        (0u8..3, arb_message(), arb_time()).prop_map(|(cat, first_message, at)| {
            TicketCommand::Open(OpenTicket {
                ticket_id: TicketId(Uuid::from_u128(1)),
                customer: CustomerId(1),
                category: category(cat),
                channel: Channel::Telegram,
                first_message,
                at,
            })
        }),
        (arb_message(), 0i64..4, arb_time()).prop_map(|(message, days, at)| {
            TicketCommand::PostCustomerMessage(PostCustomerMessage {
                message,
                reopen_window: TimeDelta::days(days),
                at,
            })
        }),
        (0i32..8, arb_content(), arb_time()).prop_map(|(telegram, content, at)| {
            TicketCommand::EditCustomerMessage(EditCustomerMessage {
                telegram_message_id: TelegramMessageId(telegram),
                content,
                at,
            })
        }),
        (0u8..8, 0u8..3, arb_reply(), arb_time()).prop_map(|(id, a, content, at)| {
            TicketCommand::ReplyAsAgent(ReplyAsAgent {
                reply_to: None,
                message_id: msg(id),
                agent: agent(a),
                template: None,
                content,
                at,
            })
        }),
        (0u8..8, "[a-z]{0,4}", arb_time()).prop_map(|(id, text, at)| {
            TicketCommand::AddInternalNote(AddInternalNote {
                note_id: msg(id),
                agent: agent(0),
                text,
                at,
            })
        }),
        (0u8..3, arb_time()).prop_map(|(a, at)| TicketCommand::Assign {
            agent: agent(a),
            by: agent(0),
            at
        }),
        arb_time().prop_map(|at| TicketCommand::Unassign { by: agent(0), at }),
        (any::<bool>(), arb_actor(), arb_time()).prop_map(|(open, by, at)| {
            TicketCommand::SetStatus {
                status: if open {
                    WorkStatus::Open
                } else {
                    WorkStatus::Pending
                },
                by,
                at,
            }
        }),
        (arb_actor(), arb_time()).prop_map(|(by, at)| TicketCommand::Resolve { by, at }),
        (arb_actor(), arb_time()).prop_map(|(by, at)| TicketCommand::Reopen { by, at }),
        (arb_actor(), arb_time()).prop_map(|(by, at)| TicketCommand::Close { by, at }),
        (0u8..4, arb_time()).prop_map(|(p, at)| TicketCommand::SetPriority {
            priority: [
                Priority::Low,
                Priority::Normal,
                Priority::High,
                Priority::Urgent
            ][usize::from(p)],
            by: agent(0),
            at
        }),
        (0u8..3, arb_time()).prop_map(|(c, at)| TicketCommand::ChangeCategory {
            category: category(c),
            by: agent(0),
            at
        }),
        ("[ a-zA-Z]{0,40}", arb_time()).prop_map(|(tag, at)| TicketCommand::AddTag {
            tag,
            by: agent(0),
            at
        }),
        ("[ a-z]{0,3}", arb_time()).prop_map(|(tag, at)| TicketCommand::RemoveTag {
            tag,
            by: agent(0),
            at
        }),
        (0u8..8, 0i32..4, arb_time()).prop_map(|(id, telegram, at)| {
            TicketCommand::RecordDelivery {
                message_id: msg(id),
                telegram_message_id: TelegramMessageId(telegram),
                at,
            }
        }),
        (0u8..8, any::<bool>(), arb_time()).prop_map(|(id, retryable, at)| {
            TicketCommand::RecordDeliveryFailure {
                message_id: msg(id),
                reason: "Too Many Requests".into(),
                retryable,
                at,
            }
        }),
        (0u8..8, arb_time()).prop_map(|(rating, at)| TicketCommand::Rate {
            rating,
            comment: None,
            at
        }),
    ]
}

/// Checks every ticket invariant, given the state before and after a step and its events.
fn check_ticket(before: &Ticket, events: &[TicketEvent], after: &Ticket) {
    if before.status() == Some(TicketStatus::Closed) {
        assert_eq!(
            after.status(),
            Some(TicketStatus::Closed),
            "closed is final"
        );
        assert!(
            !events.iter().any(|e| matches!(
                e,
                TicketEvent::AgentReplied(_)
                    | TicketEvent::NoteAdded(_)
                    | TicketEvent::CustomerMessagePosted(_)
            )),
            "nothing is said on a closed ticket: {events:?}"
        );
    }
    if before.status() == Some(TicketStatus::Resolved)
        && events
            .iter()
            .any(|e| matches!(e, TicketEvent::CustomerMessagePosted(_)))
    {
        assert!(
            matches!(events.first(), Some(TicketEvent::Reopened(_))),
            "a customer message on a resolved ticket reopens it first"
        );
    }
    let Some(state) = after.state() else { return };
    if state.rating.is_some() {
        assert!(matches!(
            state.status,
            TicketStatus::Resolved | TicketStatus::Closed
        ));
        assert!(state.resolved_at.is_some(), "rated only after resolve");
    }
    if state.status == TicketStatus::Resolved {
        assert!(state.resolved_at.is_some());
    }
    assert!(state.tags.len() <= 20);
    for tag in &state.tags {
        assert!(!tag.is_empty() && tag.chars().count() <= 32);
        assert_eq!(tag, &tag.trim().to_lowercase());
    }
    assert!(
        state
            .replies
            .keys()
            .all(|id| state.message_ids.contains(id))
    );
    assert!(
        state
            .customer_messages
            .values()
            .all(|id| state.message_ids.contains(id))
    );
}

fn arb_ticket_event() -> impl Strategy<Value = TicketEvent> {
    // Events produced by deciding random commands on random states: broad enough to reach
    // every variant, and then replayed out of order below.
    proptest::collection::vec(arb_ticket_command(), 1..6)
        .prop_map(|commands| {
            let mut state = Ticket::default();
            let mut events = Vec::new();
            for command in commands {
                if let Ok(new) = state.decide(&command) {
                    for event in &new {
                        state = state.evolve(event);
                    }
                    events.extend(new);
                }
            }
            events
        })
        .prop_flat_map(|events| {
            if events.is_empty() {
                Just(TicketEvent::Resolved(domain::ticket::LifecycleStep {
                    by: Actor::System,
                    at: t(0),
                }))
                .boxed()
            } else {
                proptest::sample::select(events).boxed()
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_ticket_commands_never_panic_and_keep_the_invariants(
        commands in proptest::collection::vec(arb_ticket_command(), 0..40)
    ) {
        let mut state = Ticket::default();
        for command in &commands {
            let result = state.decide(command);
            prop_assert_eq!(&result, &state.decide(command), "decide is deterministic");
            if let Ok(events) = result {
                let after = events.iter().fold(state.clone(), |s, e| s.evolve(e));
                check_ticket(&state, &events, &after);
                state = after;
            }
        }
    }

    #[test]
    fn ticket_evolve_is_total(
        events in proptest::collection::vec(arb_ticket_event(), 0..30)
    ) {
        let state = Ticket::replay(&events);
        let _ = state.status();
    }
}
