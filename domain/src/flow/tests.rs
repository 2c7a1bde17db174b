use chrono::TimeZone;
use uuid::Uuid;

use super::*;
use crate::content::{MessageContent, TelegramMessageId};
use crate::customer::{CustomerRegistered, Noted, ProfileUpdated};
use crate::ids::{AgentId, MessageId};
use crate::ticket::{Actor, LifecycleStep, TicketOpened};

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
        .single()
        .unwrap_or_default()
        + TimeDelta::minutes(minutes)
}
fn customer_id() -> CustomerId {
    CustomerId(4242)
}
fn ticket_id(n: u128) -> TicketId {
    TicketId(Uuid::from_u128(n))
}
fn agent() -> Actor {
    Actor::Agent {
        agent_id: AgentId(Uuid::from_u128(0xa1)),
    }
}
fn window() -> TimeDelta {
    TimeDelta::days(7)
}
fn profile() -> CustomerProfile {
    CustomerProfile {
        first_name: "Ann".into(),
        last_name: None,
        username: None,
        language_code: Some("en".into()),
    }
}
fn registered() -> CustomerEvent {
    CustomerEvent::Registered(CustomerRegistered {
        customer_id: customer_id(),
        at: t(0),
        personal: profile(),
    })
}
fn message(n: i32) -> CustomerMessage {
    CustomerMessage {
        message_id: MessageId(Uuid::from_u128(0x100 + u128::from(n.unsigned_abs()))),
        telegram_message_id: TelegramMessageId(n),
        reply_to: None,
        content: MessageContent::text("help"),
    }
}
fn route(n: i32, new_ticket: u128, at: DateTime<Utc>) -> RouteCustomerMessage {
    RouteCustomerMessage {
        customer: customer_id(),
        profile: profile(),
        category: None,
        new_ticket_id: ticket_id(new_ticket),
        channel: Channel::Telegram,
        message: message(n),
        reopen_window: window(),
        at,
    }
}
fn customer_events(decision: &Decision) -> Vec<CustomerEvent> {
    decision
        .events_for(customer_id().stream())
        .iter()
        .filter_map(|e| match e {
            AnyEvent::Customer(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}
fn ticket_events(decision: &Decision, id: TicketId) -> Vec<TicketEvent> {
    decision
        .events_for(id.stream())
        .iter()
        .filter_map(|e| match e {
            AnyEvent::Ticket(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// A registered customer with ticket 1 opened by message 1, and the ticket.
fn with_open_ticket() -> (Customer, Ticket) {
    let Ok(routed) = route_customer_message(&Customer::default(), None, &route(1, 1, t(0))) else {
        unreachable!("a first message from a new customer is accepted");
    };
    let customer = Customer::replay(&customer_events(&routed.decision));
    let ticket = Ticket::replay(&ticket_events(&routed.decision, ticket_id(1)));
    (customer, ticket)
}

fn apply(customer: Customer, ticket: Ticket, decision: &Decision) -> (Customer, Ticket) {
    let customer = fold(customer, &customer_events(decision));
    let id = ticket.state().map_or(ticket_id(0), |t| t.id);
    let ticket = fold(ticket, &ticket_events(decision, id));
    (customer, ticket)
}

#[test]
fn a_first_message_registers_the_customer_and_opens_a_ticket_on_both_streams() {
    let routed = route_customer_message(&Customer::default(), None, &route(1, 1, t(0)));
    let Ok(routed) = routed else {
        unreachable!("accepted: {routed:?}");
    };
    assert_eq!(routed.outcome, RouteOutcome::Opened);
    assert_eq!(routed.ticket_id, ticket_id(1));
    let streams: Vec<_> = routed.decision.writes.iter().map(|w| w.stream).collect();
    assert_eq!(
        streams,
        [customer_id().stream(), ticket_id(1).stream()],
        "customer stream first, then the ticket"
    );
    assert_eq!(
        customer_events(&routed.decision),
        [
            registered(),
            CustomerEvent::TicketOpened(TicketNoted {
                ticket_id: ticket_id(1),
                category: None,
                at: t(0)
            })
        ]
    );
    assert!(matches!(
        ticket_events(&routed.decision, ticket_id(1)).as_slice(),
        [
            TicketEvent::Opened(TicketOpened { .. }),
            TicketEvent::CustomerMessagePosted(_)
        ]
    ));
}

#[test]
fn a_message_with_an_open_ticket_goes_to_that_ticket() {
    let (customer, ticket) = with_open_ticket();
    assert_eq!(
        message_target(&customer, None, window(), t(1)),
        MessageTarget::Existing(ticket_id(1))
    );
    let routed = route_customer_message(&customer, Some(&ticket), &route(2, 2, t(1)));
    let Ok(routed) = routed else {
        unreachable!("accepted: {routed:?}");
    };
    assert_eq!(routed.outcome, RouteOutcome::Posted);
    assert_eq!(routed.ticket_id, ticket_id(1));
    assert!(customer_events(&routed.decision).is_empty());
    assert_eq!(routed.decision.writes.len(), 1);
}

#[test]
fn the_same_telegram_message_twice_writes_nothing() {
    let (customer, ticket) = with_open_ticket();
    let routed = route_customer_message(&customer, Some(&ticket), &route(1, 2, t(1)));
    assert!(matches!(
        routed,
        Ok(RoutedMessage {
            outcome: RouteOutcome::AlreadyPosted,
            ref decision,
            ..
        }) if decision.is_empty()
    ));
}

fn resolve(customer: &Customer, ticket: &Ticket, at: DateTime<Utc>) -> (Customer, Ticket) {
    let decision = decide_for_ticket(
        customer,
        ticket,
        &TicketCommand::Resolve { by: agent(), at },
    );
    let Ok(decision) = decision else {
        unreachable!("resolve accepted: {decision:?}");
    };
    assert_eq!(
        customer_events(&decision),
        [CustomerEvent::TicketResolved(TicketStepNoted {
            ticket_id: ticket_id(1),
            at
        })]
    );
    apply(customer.clone(), ticket.clone(), &decision)
}

#[test]
fn a_customer_message_after_resolve_reopens_the_ticket_within_the_window() {
    let (customer, ticket) = with_open_ticket();
    let (customer, ticket) = resolve(&customer, &ticket, t(10));
    let at = t(10) + window();
    assert_eq!(
        message_target(&customer, None, window(), at),
        MessageTarget::Existing(ticket_id(1))
    );
    let routed = route_customer_message(&customer, Some(&ticket), &route(2, 2, at));
    let Ok(routed) = routed else {
        unreachable!("accepted: {routed:?}");
    };
    assert_eq!(routed.outcome, RouteOutcome::Reopened);
    assert_eq!(
        customer_events(&routed.decision),
        [CustomerEvent::TicketReopened(TicketNoted {
            ticket_id: ticket_id(1),
            category: None,
            at
        })]
    );
}

#[test]
fn after_the_reopen_window_the_customer_gets_a_new_ticket() {
    let (customer, ticket) = with_open_ticket();
    let (customer, _) = resolve(&customer, &ticket, t(10));
    let at = t(11) + window();
    assert_eq!(
        message_target(&customer, None, window(), at),
        MessageTarget::New
    );
    let routed = route_customer_message(&customer, None, &route(2, 2, at));
    let Ok(routed) = routed else {
        unreachable!("accepted: {routed:?}");
    };
    assert_eq!(routed.outcome, RouteOutcome::Opened);
    assert_eq!(routed.ticket_id, ticket_id(2));
    let customer = fold(customer, &customer_events(&routed.decision));
    assert_eq!(
        customer.state().and_then(|c| c.active_ticket(None)),
        Some(ticket_id(2))
    );
}

#[test]
fn a_message_in_another_category_opens_a_ticket_there() {
    let (customer, _) = with_open_ticket();
    let billing = Some(CategoryId(Uuid::from_u128(0xc1)));
    let cmd = RouteCustomerMessage {
        category: billing,
        ..route(2, 2, t(1))
    };
    let routed = route_customer_message(&customer, None, &cmd);
    let Ok(routed) = routed else {
        unreachable!("accepted: {routed:?}");
    };
    assert_eq!(routed.outcome, RouteOutcome::Opened);
    let customer = fold(customer, &customer_events(&routed.decision));
    let state = customer.state().cloned().unwrap_or_else(|| unreachable!());
    assert_eq!(state.active_ticket(None), Some(ticket_id(1)));
    assert_eq!(state.active_ticket(billing), Some(ticket_id(2)));
}

#[test]
fn loading_the_wrong_ticket_is_rejected() {
    let (customer, ticket) = with_open_ticket();
    assert_eq!(
        route_customer_message(&customer, None, &route(2, 2, t(1))),
        Err(FlowError::WrongTicket {
            expected: Some(ticket_id(1)),
            given: None
        })
    );
    assert_eq!(
        route_customer_message(&Customer::default(), Some(&ticket), &route(2, 2, t(1))),
        Err(FlowError::WrongTicket {
            expected: None,
            given: Some(ticket_id(1))
        })
    );
}

#[test]
fn a_banned_customer_cannot_write() {
    let (customer, ticket) = with_open_ticket();
    let customer = customer.evolve(&CustomerEvent::Banned(crate::customer::CustomerBanned {
        by: AgentId(Uuid::from_u128(0xa1)),
        at: t(1),
        content: crate::customer::BanReason { reason: None },
    }));
    assert_eq!(
        route_customer_message(&customer, Some(&ticket), &route(2, 2, t(2))),
        Err(FlowError::Customer(CustomerError::Banned))
    );
}

#[test]
fn a_message_updates_a_changed_profile_and_records_the_unblock() {
    let (customer, ticket) = with_open_ticket();
    let customer = customer.evolve(&CustomerEvent::BlockedBot(Noted { at: t(1) }));
    let mut cmd = route(2, 2, t(2));
    cmd.profile.first_name = "Anna".into();
    let routed = route_customer_message(&customer, Some(&ticket), &cmd);
    let Ok(routed) = routed else {
        unreachable!("accepted: {routed:?}");
    };
    assert_eq!(
        customer_events(&routed.decision),
        [
            CustomerEvent::ProfileUpdated(ProfileUpdated {
                at: t(2),
                personal: cmd.profile.clone()
            }),
            CustomerEvent::UnblockedBot(Noted { at: t(2) })
        ]
    );
}

#[test]
fn a_ticket_closed_without_a_note_still_leads_to_a_new_ticket() {
    let (customer, ticket) = with_open_ticket();
    // The close reached only the ticket stream (written by an older command service).
    let ticket = ticket.evolve(&TicketEvent::Closed(LifecycleStep {
        by: Actor::System,
        at: t(5),
    }));
    let routed = route_customer_message(&customer, Some(&ticket), &route(2, 2, t(6)));
    let Ok(routed) = routed else {
        unreachable!("accepted: {routed:?}");
    };
    assert_eq!(routed.outcome, RouteOutcome::Opened);
    assert_eq!(routed.ticket_id, ticket_id(2));
    let customer = fold(customer, &customer_events(&routed.decision));
    let state = customer.state().cloned().unwrap_or_else(|| unreachable!());
    assert!(state.one_active_ticket_per_category());
    assert_eq!(state.active_ticket(None), Some(ticket_id(2)));
}

#[test]
fn ticket_commands_without_lifecycle_effect_write_the_ticket_stream_only() {
    let (customer, ticket) = with_open_ticket();
    let decision = decide_for_ticket(
        &customer,
        &ticket,
        &TicketCommand::AddTag {
            tag: "vip".into(),
            by: AgentId(Uuid::from_u128(0xa1)),
            at: t(1),
        },
    );
    let Ok(decision) = decision else {
        unreachable!("accepted: {decision:?}");
    };
    let streams: Vec<_> = decision.writes.iter().map(|w| w.stream).collect();
    assert_eq!(streams, [ticket_id(1).stream()]);
}

#[test]
fn closing_a_ticket_is_noted_on_the_customer() {
    let (customer, ticket) = with_open_ticket();
    let decision = decide_for_ticket(
        &customer,
        &ticket,
        &TicketCommand::Close {
            by: agent(),
            at: t(3),
        },
    );
    let Ok(decision) = decision else {
        unreachable!("accepted: {decision:?}");
    };
    assert_eq!(
        customer_events(&decision),
        [CustomerEvent::TicketClosed(TicketStepNoted {
            ticket_id: ticket_id(1),
            at: t(3)
        })]
    );
}

#[test]
fn reopening_is_rejected_while_the_customer_has_another_open_ticket() {
    let (customer, ticket) = with_open_ticket();
    let (customer, ticket) = resolve(&customer, &ticket, t(10));
    // Much later, a new ticket 2 was opened in the same category.
    let Ok(routed) = route_customer_message(&customer, None, &route(2, 2, t(11) + window())) else {
        unreachable!("a message after the window opens a new ticket");
    };
    let customer = fold(customer, &customer_events(&routed.decision));
    assert_eq!(
        decide_for_ticket(
            &customer,
            &ticket,
            &TicketCommand::Reopen {
                by: agent(),
                at: t(12) + window()
            }
        ),
        Err(FlowError::Customer(CustomerError::AnotherTicketOpen {
            existing: ticket_id(2)
        }))
    );
}

#[test]
fn moving_a_ticket_into_a_category_with_an_open_ticket_is_rejected() {
    let (customer, ticket) = with_open_ticket();
    let billing = Some(CategoryId(Uuid::from_u128(0xc1)));
    let cmd = RouteCustomerMessage {
        category: billing,
        ..route(2, 2, t(1))
    };
    let Ok(routed) = route_customer_message(&customer, None, &cmd) else {
        unreachable!("a message in another category opens a ticket there");
    };
    let customer = fold(customer, &customer_events(&routed.decision));
    assert_eq!(
        decide_for_ticket(
            &customer,
            &ticket,
            &TicketCommand::ChangeCategory {
                category: billing,
                by: AgentId(Uuid::from_u128(0xa1)),
                at: t(2)
            }
        ),
        Err(FlowError::Customer(CustomerError::AnotherTicketOpen {
            existing: ticket_id(2)
        }))
    );
}

#[test]
fn a_ticket_command_with_another_customers_state_is_rejected() {
    let (_, ticket) = with_open_ticket();
    let other = Customer::default().evolve(&CustomerEvent::Registered(CustomerRegistered {
        customer_id: CustomerId(1),
        at: t(0),
        personal: profile(),
    }));
    assert_eq!(
        decide_for_ticket(
            &other,
            &ticket,
            &TicketCommand::Close {
                by: agent(),
                at: t(1)
            }
        ),
        Err(FlowError::WrongCustomer {
            owner: customer_id(),
            given: CustomerId(1)
        })
    );
}

#[test]
fn ticket_rejections_pass_through() {
    let (customer, ticket) = with_open_ticket();
    assert_eq!(
        decide_for_ticket(
            &customer,
            &ticket,
            &TicketCommand::Reopen {
                by: agent(),
                at: t(1)
            }
        ),
        Err(FlowError::Ticket(TicketError::NotResolved))
    );
}
