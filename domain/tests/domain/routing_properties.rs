//! One customer, many tickets: routing and lifecycle decisions across the customer and ticket
//! streams never leave two active tickets in one category, and the customer's view of its
//! tickets agrees with the tickets.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use domain::Decider;
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::{Customer, CustomerProfile, TicketLifecycle};
use domain::flow::{self, MessageTarget, RouteCustomerMessage};
use domain::ticket::{Actor, Channel, Ticket, TicketCommand, TicketStatus, WorkStatus};
use domain::{CustomerId, MessageId, TicketId};
use proptest::prelude::*;
use uuid::Uuid;

use crate::support::{agent, category, t};

#[derive(Debug, Clone)]
enum Step {
    Message { category: u8, minutes: i64 },
    Resolve { ticket: usize, minutes: i64 },
    Close { ticket: usize },
    Reopen { ticket: usize },
    Pending { ticket: usize },
    Recategorize { ticket: usize, category: u8 },
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..3, 0i64..20_000).prop_map(|(category, minutes)| Step::Message { category, minutes }),
        2 => (0usize..8, 0i64..20_000).prop_map(|(ticket, minutes)| Step::Resolve { ticket, minutes }),
        1 => (0usize..8).prop_map(|ticket| Step::Close { ticket }),
        1 => (0usize..8).prop_map(|ticket| Step::Reopen { ticket }),
        1 => (0usize..8).prop_map(|ticket| Step::Pending { ticket }),
        1 => (0usize..8, 0u8..3).prop_map(|(ticket, category)| Step::Recategorize { ticket, category }),
    ]
}

struct World {
    customer: Customer,
    tickets: BTreeMap<TicketId, Ticket>,
    now: DateTime<Utc>,
    next_message: i32,
}

impl World {
    fn apply(&mut self, decision: &flow::Decision) {
        for write in &decision.writes {
            match write.stream {
                domain::StreamId::Customer(_) => {
                    for event in write.events.iter().filter_map(|e| e.as_customer()) {
                        self.customer = std::mem::take(&mut self.customer).evolve(event);
                    }
                }
                domain::StreamId::Ticket(id) => {
                    let ticket = self.tickets.entry(id).or_default();
                    for event in write.events.iter().filter_map(|e| e.as_ticket()) {
                        *ticket = std::mem::take(ticket).evolve(event);
                    }
                }
                other => panic!("unexpected stream {other}"),
            }
        }
    }

    fn ticket_at(&self, index: usize) -> Option<(TicketId, Ticket)> {
        let len = self.tickets.len();
        (len > 0).then(|| {
            let (id, ticket) = self
                .tickets
                .iter()
                .nth(index % len)
                .expect("index in range");
            (*id, ticket.clone())
        })
    }

    fn check(&self) {
        let Some(customer) = self.customer.state() else {
            return;
        };
        assert!(
            customer.one_active_ticket_per_category(),
            "one active ticket per category: {:?}",
            customer.tickets
        );
        // The customer's view agrees with the tickets themselves.
        for (id, tracked) in &customer.tickets {
            let state = self.tickets[id].state().expect("tracked tickets exist");
            assert_eq!(tracked.category, state.category);
            match tracked.lifecycle {
                TicketLifecycle::Active => assert!(matches!(
                    state.status,
                    TicketStatus::New | TicketStatus::Open | TicketStatus::Pending
                )),
                TicketLifecycle::Resolved(at) => {
                    assert_eq!(state.status, TicketStatus::Resolved);
                    assert_eq!(state.resolved_at, Some(at));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_customer_never_has_two_active_tickets_in_one_category(
        steps in proptest::collection::vec(arb_step(), 0..40)
    ) {
        let window = TimeDelta::days(3);
        let mut world = World {
            customer: Customer::default(),
            tickets: BTreeMap::new(),
            now: t(0),
            next_message: 1,
        };
        for step in steps {
            let by = Actor::Agent { agent_id: agent(0) };
            let decision = match step {
                Step::Message { category: c, minutes } => {
                    world.now += TimeDelta::minutes(minutes);
                    world.next_message += 1;
                    let n = world.next_message;
                    let cmd = RouteCustomerMessage {
                        customer: CustomerId(7),
                        profile: CustomerProfile {
                            first_name: "Ann".into(),
                            last_name: None,
                            username: None,
                            language_code: None,
                        },
                        category: category(c),
                        new_ticket_id: TicketId(Uuid::from_u128(u128::from(n.unsigned_abs()))),
                        channel: Channel::Telegram,
                        message: CustomerMessage {
                            message_id: MessageId(Uuid::from_u128(u128::from(n.unsigned_abs()))),
                            telegram_message_id: TelegramMessageId(n),
                            reply_to: None,
                            content: MessageContent::text("hi"),
                        },
                        reopen_window: window,
                        at: world.now,
                    };
                    let target = flow::message_target(&world.customer, cmd.category, window, cmd.at);
                    let ticket = match target {
                        MessageTarget::Existing(id) => world.tickets.get(&id).cloned(),
                        MessageTarget::New => None,
                    };
                    flow::route_customer_message(&world.customer, ticket.as_ref(), &cmd)
                        .map(|routed| routed.decision)
                        .map_err(|e| e.to_string())
                }
                Step::Resolve { ticket, minutes } => {
                    world.now += TimeDelta::minutes(minutes);
                    let at = world.now;
                    run(&world, ticket, TicketCommand::Resolve { by, at })
                }
                Step::Close { ticket } => {
                    run(&world, ticket, TicketCommand::Close { by, at: world.now })
                }
                Step::Reopen { ticket } => {
                    run(&world, ticket, TicketCommand::Reopen { by, at: world.now })
                }
                Step::Pending { ticket } => run(
                    &world,
                    ticket,
                    TicketCommand::SetStatus { status: WorkStatus::Pending, by, at: world.now },
                ),
                Step::Recategorize { ticket, category: c } => run(
                    &world,
                    ticket,
                    TicketCommand::ChangeCategory {
                        category: category(c),
                        by: agent(0),
                        at: world.now,
                    },
                ),
            };
            if let Ok(decision) = decision {
                world.apply(&decision);
            }
            world.check();
        }
    }
}

fn run(world: &World, index: usize, command: TicketCommand) -> Result<flow::Decision, String> {
    let (_, ticket) = world.ticket_at(index).ok_or("no ticket yet")?;
    flow::decide_for_ticket(&world.customer, &ticket, &command).map_err(|e| e.to_string())
}
