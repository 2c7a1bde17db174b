use chrono::TimeZone;
use uuid::Uuid;

use super::*;
use crate::testkit::given;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
        .single()
        .unwrap_or_default()
}
fn id() -> CustomerId {
    CustomerId(4242)
}
fn agent() -> AgentId {
    AgentId(Uuid::from_u128(0xa1))
}
fn profile(first_name: &str) -> CustomerProfile {
    CustomerProfile {
        first_name: first_name.into(),
        last_name: None,
        username: Some("ann_k".into()),
        language_code: Some("de".into()),
    }
}
fn registered() -> CustomerEvent {
    CustomerEvent::Registered(CustomerRegistered {
        customer_id: id(),
        at: at(),
        personal: profile("Ann"),
    })
}
fn noted() -> Noted {
    Noted { at: at() }
}

#[test]
fn registering_a_new_customer_records_their_profile() {
    given::<Customer>([])
        .when(CustomerCommand::Register {
            customer_id: id(),
            profile: profile("Ann"),
            at: at(),
        })
        .then([registered()]);
}

#[test]
fn registering_twice_is_rejected() {
    given::<Customer>([registered()])
        .when(CustomerCommand::Register {
            customer_id: id(),
            profile: profile("Ann"),
            at: at(),
        })
        .then_err(CustomerError::AlreadyRegistered);
}

#[test]
fn registering_without_a_first_name_is_rejected() {
    given::<Customer>([])
        .when(CustomerCommand::Register {
            customer_id: id(),
            profile: profile(""),
            at: at(),
        })
        .then_err(
            InvalidInput::Empty {
                field: "first name",
            }
            .into(),
        );
}

#[test]
fn commands_for_an_unknown_customer_are_rejected() {
    given::<Customer>([])
        .when(CustomerCommand::OptOutOfBroadcasts { at: at() })
        .then_err(CustomerError::NotRegistered);
}

#[test]
fn a_changed_profile_is_recorded_and_an_unchanged_one_is_not() {
    given::<Customer>([registered()])
        .when(CustomerCommand::UpdateProfile {
            profile: profile("Anna"),
            at: at(),
        })
        .then([CustomerEvent::ProfileUpdated(ProfileUpdated {
            at: at(),
            personal: profile("Anna"),
        })]);
    given::<Customer>([registered()])
        .when(CustomerCommand::UpdateProfile {
            profile: profile("Ann"),
            at: at(),
        })
        .then([]);
}

#[test]
fn an_overlong_username_is_rejected() {
    let mut long = profile("Ann");
    long.username = Some("u".repeat(33));
    given::<Customer>([registered()])
        .when(CustomerCommand::UpdateProfile {
            profile: long,
            at: at(),
        })
        .then_err(
            InvalidInput::TooLong {
                field: "username",
                max: 32,
                actual: 33,
            }
            .into(),
        );
}

#[test]
fn blocking_and_unblocking_the_bot_are_recorded_once_each() {
    let state = given::<Customer>([registered()])
        .when(CustomerCommand::RecordBotBlocked { at: at() })
        .then([CustomerEvent::BlockedBot(noted())]);
    assert!(state.state().is_some_and(|c| !c.accepts_broadcasts()));
    given::<Customer>([registered(), CustomerEvent::BlockedBot(noted())])
        .when(CustomerCommand::RecordBotBlocked { at: at() })
        .then([]);
    given::<Customer>([registered(), CustomerEvent::BlockedBot(noted())])
        .when(CustomerCommand::RecordBotUnblocked { at: at() })
        .then([CustomerEvent::UnblockedBot(noted())]);
    given::<Customer>([registered()])
        .when(CustomerCommand::RecordBotUnblocked { at: at() })
        .then([]);
}

fn banned() -> CustomerEvent {
    CustomerEvent::Banned(CustomerBanned {
        by: agent(),
        at: at(),
        content: BanReason {
            reason: Some("spam".into()),
        },
    })
}

#[test]
fn banning_a_customer_records_the_reason_once() {
    let ban = CustomerCommand::Ban {
        by: agent(),
        reason: Some("spam".into()),
        at: at(),
    };
    given::<Customer>([registered()])
        .when(ban.clone())
        .then([banned()]);
    given::<Customer>([registered(), banned()])
        .when(ban)
        .then([]);
}

#[test]
fn a_ban_reason_longer_than_allowed_is_rejected() {
    given::<Customer>([registered()])
        .when(CustomerCommand::Ban {
            by: agent(),
            reason: Some("x".repeat(1025)),
            at: at(),
        })
        .then_err(
            InvalidInput::TooLong {
                field: "ban reason",
                max: 1024,
                actual: 1025,
            }
            .into(),
        );
}

#[test]
fn unbanning_records_it_only_for_a_banned_customer() {
    let unban = CustomerCommand::Unban {
        by: agent(),
        at: at(),
    };
    given::<Customer>([registered(), banned()])
        .when(unban.clone())
        .then([CustomerEvent::Unbanned(CustomerUnbanned {
            by: agent(),
            at: at(),
        })]);
    given::<Customer>([registered()]).when(unban).then([]);
}

#[test]
fn opting_out_and_back_into_broadcasts_are_recorded_once_each() {
    let out = CustomerEvent::OptedOutOfBroadcasts(noted());
    let state = given::<Customer>([registered()])
        .when(CustomerCommand::OptOutOfBroadcasts { at: at() })
        .then([out.clone()]);
    assert!(state.state().is_some_and(|c| !c.accepts_broadcasts()));
    given::<Customer>([registered(), out.clone()])
        .when(CustomerCommand::OptOutOfBroadcasts { at: at() })
        .then([]);
    given::<Customer>([registered(), out])
        .when(CustomerCommand::OptIntoBroadcasts { at: at() })
        .then([CustomerEvent::OptedIntoBroadcasts(noted())]);
    given::<Customer>([registered()])
        .when(CustomerCommand::OptIntoBroadcasts { at: at() })
        .then([]);
}

#[test]
fn a_chosen_category_is_recorded_when_it_changes_and_kept_in_the_state() {
    let billing = Some(CategoryId(Uuid::from_u128(0xc1)));
    let chosen = CustomerEvent::CategoryChosen(CategoryChosen {
        category: billing,
        at: at(),
    });
    let state = given::<Customer>([registered()])
        .when(CustomerCommand::ChooseCategory {
            category: billing,
            at: at(),
        })
        .then([chosen.clone()]);
    assert_eq!(state.state().and_then(|c| c.chosen_category), billing);
    given::<Customer>([registered(), chosen.clone()])
        .when(CustomerCommand::ChooseCategory {
            category: billing,
            at: at(),
        })
        .then([]);
    given::<Customer>([registered(), chosen])
        .when(CustomerCommand::ChooseCategory {
            category: None,
            at: at(),
        })
        .then([CustomerEvent::CategoryChosen(CategoryChosen {
            category: None,
            at: at(),
        })]);
    given::<Customer>([])
        .when(CustomerCommand::ChooseCategory {
            category: billing,
            at: at(),
        })
        .then_err(CustomerError::NotRegistered);
}

#[test]
fn a_banned_customers_message_is_kept_and_anyone_elses_refused_as_not_banned() {
    use crate::content::{CustomerMessage, MessageContent, TelegramMessageId};
    let message = CustomerMessage {
        message_id: MessageId(Uuid::from_u128(0xe1)),
        telegram_message_id: TelegramMessageId(12),
        reply_to: None,
        content: MessageContent::text("still here"),
    };
    let refuse = CustomerCommand::RecordRefusedMessage {
        message: message.clone(),
        at: at(),
    };
    let banned = CustomerEvent::Banned(CustomerBanned {
        by: agent(),
        at: at(),
        content: BanReason { reason: None },
    });
    given::<Customer>([registered(), banned])
        .when(refuse.clone())
        .then([CustomerEvent::MessageRefused(MessageRefused {
            message_id: message.message_id,
            telegram_message_id: message.telegram_message_id,
            reply_to: None,
            at: at(),
            content: message.content,
        })]);
    given::<Customer>([registered()])
        .when(refuse)
        .then_err(CustomerError::NotBanned);
}

fn ticket(n: u128) -> TicketId {
    TicketId(Uuid::from_u128(n))
}
fn opened_note(n: u128, category: Option<CategoryId>) -> CustomerEvent {
    CustomerEvent::TicketOpened(TicketNoted {
        ticket_id: ticket(n),
        category,
        at: at(),
    })
}

#[test]
fn ticket_notes_track_the_active_and_the_resolved_tickets() {
    let resolved_at = at() + TimeDelta::hours(1);
    let customer = Customer::replay(&[
        registered(),
        opened_note(1, None),
        CustomerEvent::TicketResolved(TicketStepNoted {
            ticket_id: ticket(1),
            at: resolved_at,
        }),
        opened_note(2, None),
    ]);
    let state = customer.state().cloned().unwrap_or_else(|| unreachable!());
    assert_eq!(state.active_ticket(None), Some(ticket(2)));
    // The new ticket superseded the resolved one.
    assert_eq!(
        state.reopenable_ticket(None, TimeDelta::days(7), resolved_at),
        None
    );
}

#[test]
fn the_most_recently_resolved_ticket_within_the_window_is_reopenable() {
    let window = TimeDelta::hours(2);
    let resolved = at() + TimeDelta::hours(1);
    let customer = Customer::replay(&[
        registered(),
        opened_note(1, None),
        CustomerEvent::TicketResolved(TicketStepNoted {
            ticket_id: ticket(1),
            at: resolved,
        }),
    ]);
    let state = customer.state().cloned().unwrap_or_else(|| unreachable!());
    assert_eq!(
        state.reopenable_ticket(None, window, resolved + window),
        Some(ticket(1))
    );
    assert_eq!(
        state.reopenable_ticket(None, window, resolved + window + TimeDelta::seconds(1)),
        None
    );
    let other = Some(CategoryId(Uuid::from_u128(9)));
    assert_eq!(state.reopenable_ticket(other, window, resolved), None);
}

#[test]
fn a_closed_ticket_is_forgotten() {
    let customer = Customer::replay(&[
        registered(),
        opened_note(1, None),
        CustomerEvent::TicketClosed(TicketStepNoted {
            ticket_id: ticket(1),
            at: at(),
        }),
    ]);
    assert!(customer.state().is_some_and(|c| c.tickets.is_empty()));
}

#[test]
fn events_before_the_registration_are_ignored() {
    assert_eq!(Customer::replay(&[banned()]), Customer::Unknown);
}

fn payload_received(payload: &str) -> CustomerEvent {
    CustomerEvent::StartPayloadReceived(StartPayloadReceived {
        payload: payload.to_owned(),
        at: at(),
    })
}

#[test]
fn a_start_payload_is_recorded_and_the_first_one_is_kept() {
    let record = |payload: &str| CustomerCommand::RecordStartPayload {
        payload: payload.to_owned(),
        at: at(),
    };
    let state = given::<Customer>([registered()])
        .when(record("ref-42"))
        .then([payload_received("ref-42")]);
    let state = state.state().expect("registered");
    assert_eq!(state.first_start_payload.as_deref(), Some("ref-42"));
    assert_eq!(state.start_payload.as_deref(), Some("ref-42"));
    // The same payload again records nothing; another one becomes the latest.
    given::<Customer>([registered(), payload_received("ref-42")])
        .when(record("ref-42"))
        .then([]);
    let state = given::<Customer>([registered(), payload_received("ref-42")])
        .when(record("promo_7"))
        .then([payload_received("promo_7")]);
    let state = state.state().expect("registered");
    assert_eq!(state.first_start_payload.as_deref(), Some("ref-42"));
    assert_eq!(state.start_payload.as_deref(), Some("promo_7"));
}

#[test]
fn a_start_payload_out_of_bounds_is_rejected() {
    given::<Customer>([registered()])
        .when(CustomerCommand::RecordStartPayload {
            payload: "x".repeat(MAX_START_PAYLOAD_CHARS + 1),
            at: at(),
        })
        .then_err(
            InvalidInput::TooLong {
                field: "start payload",
                max: MAX_START_PAYLOAD_CHARS,
                actual: MAX_START_PAYLOAD_CHARS + 1,
            }
            .into(),
        );
    given::<Customer>([])
        .when(CustomerCommand::RecordStartPayload {
            payload: "ref".to_owned(),
            at: at(),
        })
        .then_err(CustomerError::NotRegistered);
}
