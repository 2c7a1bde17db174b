//! Assignment, status lifecycle, priority, category, tags, delivery, rating and evolve.

use super::*;

// Assignment

fn assigned() -> TicketEvent {
    TicketEvent::Assigned(TicketAssigned {
        agent: agent(),
        by: agent(),
        at: t(1),
    })
}

#[test]
fn assigning_an_agent_records_it_once() {
    let assign = TicketCommand::Assign {
        agent: agent(),
        by: agent(),
        at: t(1),
    };
    open_ticket([]).when(assign.clone()).then([assigned()]);
    open_ticket([assigned()]).when(assign).then([]);
}

#[test]
fn unassigning_records_the_previous_assignee() {
    open_ticket([assigned()])
        .when(TicketCommand::Unassign {
            by: agent(),
            at: t(2),
        })
        .then([TicketEvent::Unassigned(TicketUnassigned {
            agent: agent(),
            by: agent(),
            at: t(2),
        })]);
}

#[test]
fn unassigning_an_unassigned_ticket_records_nothing() {
    open_ticket([])
        .when(TicketCommand::Unassign {
            by: agent(),
            at: t(2),
        })
        .then([]);
}

#[test]
fn assigning_a_closed_ticket_is_rejected() {
    open_ticket([closed(t(1))])
        .when(TicketCommand::Assign {
            agent: agent(),
            by: agent(),
            at: t(2),
        })
        .then_err(TicketError::Closed);
}

// Status lifecycle

fn set(status: WorkStatus) -> TicketCommand {
    TicketCommand::SetStatus {
        status,
        by: by_agent(),
        at: t(1),
    }
}

#[test]
fn setting_pending_records_the_change() {
    open_ticket([]).when(set(WorkStatus::Pending)).then([status(
        TicketStatus::New,
        TicketStatus::Pending,
        by_agent(),
        t(1),
    )]);
}

#[test]
fn setting_the_current_status_records_nothing() {
    let open = status(TicketStatus::New, TicketStatus::Open, by_agent(), t(1));
    open_ticket([open]).when(set(WorkStatus::Open)).then([]);
}

#[test]
fn setting_a_status_on_a_resolved_ticket_is_rejected() {
    open_ticket([resolved(t(1))])
        .when(set(WorkStatus::Open))
        .then_err(TicketError::Resolved);
}

#[test]
fn resolving_records_when_so_that_the_reopen_window_can_start() {
    let state = open_ticket([])
        .when(TicketCommand::Resolve {
            by: by_agent(),
            at: t(10),
        })
        .then([resolved(t(10))]);
    assert_eq!(state.state().and_then(|t| t.resolved_at), Some(t(10)));
}

#[test]
fn resolving_twice_records_nothing() {
    open_ticket([resolved(t(10))])
        .when(TicketCommand::Resolve {
            by: by_agent(),
            at: t(11),
        })
        .then([]);
}

#[test]
fn resolving_a_closed_ticket_is_rejected() {
    open_ticket([closed(t(10))])
        .when(TicketCommand::Resolve {
            by: by_agent(),
            at: t(11),
        })
        .then_err(TicketError::Closed);
}

#[test]
fn an_agent_can_reopen_a_resolved_ticket() {
    open_ticket([resolved(t(10))])
        .when(TicketCommand::Reopen {
            by: by_agent(),
            at: t(11),
        })
        .then([reopened(by_agent(), t(11))]);
}

#[test]
fn reopening_a_ticket_that_is_not_resolved_is_rejected() {
    open_ticket([])
        .when(TicketCommand::Reopen {
            by: by_agent(),
            at: t(11),
        })
        .then_err(TicketError::NotResolved);
}

#[test]
fn reopening_a_closed_ticket_is_rejected() {
    open_ticket([resolved(t(10)), closed(t(11))])
        .when(TicketCommand::Reopen {
            by: by_agent(),
            at: t(12),
        })
        .then_err(TicketError::Closed);
}

#[test]
fn closing_records_it_once() {
    let close = TicketCommand::Close {
        by: Actor::System,
        at: t(20),
    };
    open_ticket([]).when(close.clone()).then([closed(t(20))]);
    open_ticket([closed(t(20))]).when(close).then([]);
}

// Priority, category, tags

#[test]
fn changing_the_priority_records_it_once() {
    let cmd = TicketCommand::SetPriority {
        priority: Priority::Urgent,
        by: agent(),
        at: t(1),
    };
    let changed = TicketEvent::PriorityChanged(PriorityChanged {
        priority: Priority::Urgent,
        by: agent(),
        at: t(1),
    });
    open_ticket([]).when(cmd.clone()).then([changed.clone()]);
    open_ticket([changed]).when(cmd).then([]);
}

#[test]
fn changing_the_category_records_it_once() {
    let category = Some(CategoryId(Uuid::from_u128(0xc1)));
    let cmd = TicketCommand::ChangeCategory {
        category,
        by: agent(),
        at: t(1),
    };
    let changed = TicketEvent::CategoryChanged(CategoryChanged {
        category,
        by: agent(),
        at: t(1),
    });
    open_ticket([]).when(cmd.clone()).then([changed.clone()]);
    open_ticket([changed]).when(cmd).then([]);
}

#[test]
fn adding_a_tag_trims_and_lowercases_it() {
    open_ticket([])
        .when(tag("  Billing "))
        .then([tag_added("billing")]);
}

#[test]
fn adding_a_tag_the_ticket_has_records_nothing() {
    open_ticket([tag_added("billing")])
        .when(tag("BILLING"))
        .then([]);
}

#[test]
fn a_tag_longer_than_allowed_is_rejected() {
    open_ticket([]).when(tag(&"t".repeat(33))).then_err(
        InvalidInput::TooLong {
            field: "tag",
            max: 32,
            actual: 33,
        }
        .into(),
    );
}

#[test]
fn a_twenty_first_tag_is_rejected() {
    let tags: Vec<_> = (0..20).map(|i| tag_added(&format!("t{i}"))).collect();
    open_ticket(tags).when(tag("one-more")).then_err(
        InvalidInput::TooMany {
            field: "tags",
            max: 20,
            actual: 21,
        }
        .into(),
    );
}

#[test]
fn removing_a_tag_records_it_and_removing_an_absent_one_records_nothing() {
    let remove = TicketCommand::RemoveTag {
        tag: "Billing".into(),
        by: agent(),
        at: t(3),
    };
    open_ticket([tag_added("billing")])
        .when(remove.clone())
        .then([TicketEvent::TagRemoved(TagChanged {
            tag: "billing".into(),
            by: agent(),
            at: t(3),
        })]);
    open_ticket([]).when(remove).then([]);
}

#[test]
fn tagging_a_closed_ticket_is_rejected() {
    open_ticket([closed(t(1))])
        .when(tag("late"))
        .then_err(TicketError::Closed);
}

// Delivery

fn delivered(id: u128, telegram: i32) -> TicketEvent {
    TicketEvent::ReplyDelivered(ReplyDelivered {
        message_id: msg(id),
        telegram_message_id: TelegramMessageId(telegram),
        at: t(6),
    })
}
fn record_delivery(id: u128, telegram: i32) -> TicketCommand {
    TicketCommand::RecordDelivery {
        message_id: msg(id),
        telegram_message_id: TelegramMessageId(telegram),
        at: t(6),
    }
}
fn record_failure(id: u128, retryable: bool) -> TicketCommand {
    TicketCommand::RecordDeliveryFailure {
        message_id: msg(id),
        reason: "Too Many Requests".into(),
        retryable,
        at: t(6),
    }
}
fn failed(id: u128, retryable: bool) -> TicketEvent {
    TicketEvent::ReplyDeliveryFailed(ReplyDeliveryFailed {
        message_id: msg(id),
        reason: "Too Many Requests".into(),
        retryable,
        at: t(6),
    })
}

#[test]
fn a_delivered_reply_is_recorded_once() {
    open_ticket([replied(50)])
        .when(record_delivery(50, 900))
        .then([delivered(50, 900)]);
    open_ticket([replied(50), delivered(50, 900)])
        .when(record_delivery(50, 900))
        .then([]);
}

#[test]
fn a_delivery_for_a_message_that_is_not_a_reply_is_rejected() {
    open_ticket([])
        .when(record_delivery(1, 900))
        .then_err(TicketError::UnknownMessage);
    open_ticket([])
        .when(record_failure(1, true))
        .then_err(TicketError::UnknownMessage);
}

#[test]
fn a_second_telegram_id_for_a_delivered_reply_is_rejected() {
    open_ticket([replied(50), delivered(50, 900)])
        .when(record_delivery(50, 901))
        .then_err(TicketError::AlreadyDelivered);
}

#[test]
fn a_failed_delivery_is_recorded_with_its_retryability() {
    let state = open_ticket([replied(50)])
        .when(record_failure(50, false))
        .then([failed(50, false)]);
    assert_eq!(
        state.state().and_then(|t| t.replies.get(&msg(50)).copied()),
        Some(Delivery::Failed { retryable: false })
    );
}

#[test]
fn a_failure_after_delivery_is_rejected() {
    open_ticket([replied(50), delivered(50, 900)])
        .when(record_failure(50, true))
        .then_err(TicketError::AlreadyDelivered);
}

#[test]
fn a_failure_without_a_reason_is_rejected() {
    open_ticket([replied(50)])
        .when(TicketCommand::RecordDeliveryFailure {
            message_id: msg(50),
            reason: String::new(),
            retryable: true,
            at: t(6),
        })
        .then_err(
            InvalidInput::Empty {
                field: "failure reason",
            }
            .into(),
        );
}

#[test]
fn a_delivery_after_a_retryable_failure_is_recorded() {
    open_ticket([replied(50), failed(50, true)])
        .when(record_delivery(50, 900))
        .then([delivered(50, 900)]);
}

#[test]
fn delivery_outcomes_still_arrive_after_the_close() {
    open_ticket([replied(50), closed(t(5))])
        .when(record_delivery(50, 900))
        .then([delivered(50, 900)]);
}

fn retry(id: u128) -> TicketCommand {
    TicketCommand::RetryDelivery {
        message_id: msg(id),
        by: agent(),
        at: t(7),
    }
}

#[test]
fn a_failed_reply_can_be_sent_again_once() {
    let requested = TicketEvent::ReplyDeliveryRetryRequested(ReplyDeliveryRetryRequested {
        message_id: msg(50),
        by: agent(),
        at: t(7),
    });
    for retryable in [true, false] {
        let state = open_ticket([replied(50), failed(50, retryable)])
            .when(retry(50))
            .then([requested.clone()]);
        assert_eq!(
            state.state().and_then(|t| t.replies.get(&msg(50)).copied()),
            Some(Delivery::Pending)
        );
    }
    // Asked again while it is on its way: nothing more.
    open_ticket([replied(50), failed(50, true), requested.clone()])
        .when(retry(50))
        .then([]);
    // Its next outcome is recorded as the first was.
    open_ticket([replied(50), failed(50, true), requested])
        .when(record_delivery(50, 900))
        .then([delivered(50, 900)]);
}

#[test]
fn only_a_reply_that_is_not_delivered_can_be_sent_again() {
    open_ticket([replied(50), delivered(50, 900)])
        .when(retry(50))
        .then_err(TicketError::AlreadyDelivered);
    open_ticket([])
        .when(retry(1))
        .then_err(TicketError::UnknownMessage);
    open_ticket([replied(50), failed(50, true), closed(t(6))])
        .when(retry(50))
        .then_err(TicketError::Closed);
}

// Rating

#[test]
fn a_resolved_ticket_can_be_rated() {
    let state = open_ticket([resolved(t(10))])
        .when(TicketCommand::Rate {
            rating: 5,
            comment: Some("thanks!".into()),
            at: t(70),
        })
        .then([TicketEvent::Rated(TicketRated {
            rating: 5,
            at: t(70),
            content: RatingComment {
                comment: Some("thanks!".into()),
            },
        })]);
    assert_eq!(state.state().and_then(|t| t.rating), Some(5));
}

#[test]
fn a_ticket_closed_after_resolve_can_still_be_rated() {
    open_ticket([resolved(t(10)), closed(t(20))])
        .when(rate(4))
        .then([rated(4)]);
}

#[test]
fn rating_a_ticket_that_was_never_resolved_is_rejected() {
    open_ticket([])
        .when(rate(4))
        .then_err(TicketError::NotResolved);
    open_ticket([closed(t(20))])
        .when(rate(4))
        .then_err(TicketError::NotResolved);
}

#[test]
fn a_rating_outside_one_to_five_is_rejected() {
    for rating in [0, 6] {
        open_ticket([resolved(t(10))]).when(rate(rating)).then_err(
            InvalidInput::OutOfRange {
                field: "rating",
                min: 1,
                max: 5,
            }
            .into(),
        );
    }
}

#[test]
fn rating_twice_is_rejected() {
    open_ticket([resolved(t(10)), rated(3)])
        .when(rate(5))
        .then_err(TicketError::AlreadyRated);
}

#[test]
fn a_ticket_reopened_and_resolved_again_can_be_rated_again() {
    open_ticket([
        resolved(t(10)),
        rated(2),
        reopened(Actor::Customer, t(20)),
        resolved(t(30)),
    ])
    .when(rate(5))
    .then([rated(5)]);
}

// Evolve

#[test]
fn events_before_the_opening_are_ignored() {
    assert_eq!(Ticket::replay(&[resolved(t(1))]), Ticket::NotOpened);
}

#[test]
fn a_closed_ticket_stays_closed_whatever_follows() {
    let state = Ticket::replay(&[
        opened(),
        closed(t(1)),
        reopened(Actor::Customer, t(2)),
        resolved(t(3)),
        status(TicketStatus::Closed, TicketStatus::Open, by_agent(), t(4)),
    ]);
    assert_eq!(state.status(), Some(TicketStatus::Closed));
}

// Quoting

fn quoting(quoted: u128) -> TicketCommand {
    TicketCommand::ReplyAsAgent(ReplyAsAgent {
        reply_to: Some(msg(quoted)),
        ..reply_command(70)
    })
}
fn replied_quoting(telegram: i32) -> TicketEvent {
    TicketEvent::AgentReplied(AgentReplied {
        reply_to: Some(TelegramMessageId(telegram)),
        ..match replied(70) {
            TicketEvent::AgentReplied(reply) => reply,
            _ => unreachable!("replied() makes a reply"),
        }
    })
}

fn opened_by_the_reply() -> TicketEvent {
    status(TicketStatus::New, TicketStatus::Open, by_agent(), t(5))
}

#[test]
fn a_reply_quoting_a_customer_message_records_its_telegram_id() {
    open_ticket([message_posted(7, t(1))])
        .when(quoting(7))
        .then([replied_quoting(7), opened_by_the_reply()]);
}

#[test]
fn a_reply_quoting_a_delivered_reply_records_the_id_telegram_gave_it() {
    open_ticket([replied(50), delivered(50, 900)])
        .when(quoting(50))
        .then([replied_quoting(900), opened_by_the_reply()]);
}

#[test]
fn only_customer_messages_and_delivered_replies_can_be_quoted() {
    open_ticket([replied(50)])
        .when(quoting(50))
        .then_err(TicketError::NotQuotable);
    open_ticket([replied(50), failed(50, false)])
        .when(quoting(50))
        .then_err(TicketError::NotQuotable);
    open_ticket([])
        .when(quoting(99))
        .then_err(TicketError::UnknownMessage);
}
