use chrono::{TimeDelta, TimeZone};
use uuid::Uuid;

use super::*;
use crate::codec::DomainEvent;
use crate::content::{MediaKind, OutgoingMedia, TelegramMessageId};
use crate::testkit::{Given, given};
use crate::validate;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
        .single()
        .unwrap_or_default()
        + TimeDelta::minutes(minutes)
}
fn id() -> BroadcastId {
    BroadcastId(Uuid::from_u128(0xb1))
}
fn agent() -> AgentId {
    AgentId(Uuid::from_u128(0xa1))
}
fn content(text: &str) -> BroadcastContent {
    BroadcastContent {
        format: TextFormat::Plain,
        unsubscribe_button: true,
        text: Some(text.into()),
        media: None,
        buttons: vec![vec![InlineButton {
            label: "Open shop".into(),
            action: ButtonAction::Url {
                url: "https://example.com".into(),
            },
        }]],
    }
}
fn draft(audience: Audience, content: BroadcastContent) -> BroadcastCommand {
    BroadcastCommand::Draft {
        broadcast_id: id(),
        audience,
        content,
        by: agent(),
        at: t(0),
    }
}
fn drafted() -> BroadcastEvent {
    BroadcastEvent::Drafted(BroadcastDrafted {
        broadcast_id: id(),
        by: agent(),
        at: t(0),
        audience: Audience::AllCustomers,
        content: content("Sale!"),
    })
}
/// A start as broadcasts started before the audience was recorded: the size only.
fn started(size: u32) -> BroadcastEvent {
    BroadcastEvent::Started(BroadcastStarted {
        audience_size: size,
        by: Some(agent()),
        at: t(10),
        excluded: 0,
        frozen: false,
    })
}
fn delivered(customer: i64) -> RecipientOutcome {
    RecipientOutcome {
        customer: CustomerId(customer),
        outcome: Outcome::Delivered {
            telegram_message_id: TelegramMessageId(1),
        },
    }
}
fn recorded(outcomes: Vec<RecipientOutcome>) -> BroadcastEvent {
    BroadcastEvent::OutcomesRecorded(OutcomesRecorded {
        at: t(11),
        outcomes,
    })
}
fn record(outcomes: Vec<RecipientOutcome>) -> BroadcastCommand {
    BroadcastCommand::RecordOutcomes {
        outcomes,
        at: t(11),
    }
}
fn running(size: u32) -> Given<Broadcast> {
    given([drafted(), started(size)])
}
fn edit(text: &str) -> BroadcastCommand {
    BroadcastCommand::Edit {
        audience: Audience::AllCustomers,
        content: content(text),
        by: agent(),
        at: t(1),
    }
}
fn step(minute: i64) -> BroadcastStep {
    BroadcastStep {
        by: agent(),
        at: t(minute),
    }
}

// Draft and edit

#[test]
fn drafting_a_broadcast_records_audience_and_content() {
    given::<Broadcast>([])
        .when(draft(Audience::AllCustomers, content("Sale!")))
        .then([drafted()]);
}

#[test]
fn drafting_twice_is_rejected() {
    given::<Broadcast>([drafted()])
        .when(draft(Audience::AllCustomers, content("Sale!")))
        .then_err(BroadcastError::AlreadyDrafted);
}

#[test]
fn a_broadcast_without_text_or_media_is_rejected() {
    given::<Broadcast>([])
        .when(draft(
            Audience::AllCustomers,
            BroadcastContent {
                format: TextFormat::Plain,
                unsubscribe_button: true,
                text: None,
                media: None,
                buttons: vec![],
            },
        ))
        .then_err(InvalidInput::Empty { field: "broadcast" }.into());
}

#[test]
fn text_under_media_is_held_to_the_caption_limit() {
    let content = BroadcastContent {
        format: TextFormat::Plain,
        unsubscribe_button: true,
        text: Some("x".repeat(1025)),
        media: Some(OutgoingMedia {
            kind: MediaKind::Photo,
            file_id: "AgAD".into(),
        }),
        buttons: vec![],
    };
    given::<Broadcast>([])
        .when(draft(Audience::AllCustomers, content))
        .then_err(
            InvalidInput::TooLong {
                field: "broadcast caption",
                max: 1024,
                actual: 1025,
            }
            .into(),
        );
}

#[test]
fn a_button_link_without_a_known_scheme_is_rejected() {
    let mut content = content("Sale!");
    content.buttons = vec![vec![InlineButton {
        label: "Go".into(),
        action: ButtonAction::Url {
            url: "javascript:alert(1)".into(),
        },
    }]];
    given::<Broadcast>([])
        .when(draft(Audience::AllCustomers, content))
        .then_err(
            InvalidInput::Malformed {
                field: "button link",
                why: "it must start with https://, http:// or tg://",
            }
            .into(),
        );
}

#[test]
fn callback_data_over_64_bytes_is_rejected() {
    let mut content = content("Sale!");
    content.buttons = vec![vec![InlineButton {
        label: "Go".into(),
        action: ButtonAction::Callback {
            data: "é".repeat(33),
        },
    }]];
    given::<Broadcast>([])
        .when(draft(Audience::AllCustomers, content))
        .then_err(
            InvalidInput::TooLong {
                field: "button data (in bytes)",
                max: 64,
                actual: 66,
            }
            .into(),
        );
}

#[test]
fn an_explicit_audience_listing_a_customer_twice_is_rejected() {
    given::<Broadcast>([])
        .when(draft(
            Audience::Explicit {
                customers: vec![CustomerId(1), CustomerId(1)],
            },
            content("Hi"),
        ))
        .then_err(
            InvalidInput::Duplicate {
                field: "recipient list",
            }
            .into(),
        );
}

#[test]
fn an_empty_explicit_audience_is_rejected() {
    given::<Broadcast>([])
        .when(draft(
            Audience::Explicit { customers: vec![] },
            content("Hi"),
        ))
        .then_err(
            InvalidInput::Empty {
                field: "recipient list",
            }
            .into(),
        );
}

#[test]
fn editing_a_draft_records_the_new_version() {
    given::<Broadcast>([drafted()])
        .when(edit("Bigger sale!"))
        .then([BroadcastEvent::Edited(BroadcastEdited {
            by: agent(),
            at: t(1),
            audience: Audience::AllCustomers,
            content: content("Bigger sale!"),
        })]);
}

#[test]
fn editing_without_changes_records_nothing() {
    given::<Broadcast>([drafted()]).when(edit("Sale!")).then([]);
}

#[test]
fn editing_a_scheduled_or_started_broadcast_is_rejected() {
    let scheduled = BroadcastEvent::Scheduled(BroadcastScheduled {
        send_at: t(60),
        by: agent(),
        at: t(1),
    });
    given::<Broadcast>([drafted(), scheduled])
        .when(edit("x"))
        .then_err(BroadcastError::NotDraft);
    running(3)
        .when(edit("x"))
        .then_err(BroadcastError::NotDraft);
}

#[test]
fn commands_on_a_missing_broadcast_are_rejected() {
    given::<Broadcast>([])
        .when(edit("x"))
        .then_err(BroadcastError::NotDrafted);
}

// Schedule and start

fn schedule(minute: i64) -> BroadcastCommand {
    BroadcastCommand::Schedule {
        send_at: t(minute),
        by: agent(),
        at: t(1),
    }
}
fn scheduled(minute: i64) -> BroadcastEvent {
    BroadcastEvent::Scheduled(BroadcastScheduled {
        send_at: t(minute),
        by: agent(),
        at: t(1),
    })
}

#[test]
fn scheduling_a_draft_records_the_time_and_rescheduling_moves_it() {
    given::<Broadcast>([drafted()])
        .when(schedule(60))
        .then([scheduled(60)]);
    given::<Broadcast>([drafted(), scheduled(60)])
        .when(schedule(90))
        .then([scheduled(90)]);
    given::<Broadcast>([drafted(), scheduled(60)])
        .when(schedule(60))
        .then([]);
}

#[test]
fn scheduling_in_the_past_is_rejected() {
    given::<Broadcast>([drafted()])
        .when(schedule(1))
        .then_err(BroadcastError::ScheduleInPast);
}

#[test]
fn scheduling_a_started_broadcast_is_rejected() {
    running(1)
        .when(schedule(60))
        .then_err(BroadcastError::AlreadyStarted);
}

#[test]
fn unscheduling_returns_to_draft() {
    let unschedule = BroadcastCommand::Unschedule {
        by: agent(),
        at: t(2),
    };
    given::<Broadcast>([drafted(), scheduled(60)])
        .when(unschedule.clone())
        .then([BroadcastEvent::Unscheduled(BroadcastEnded {
            by: Some(agent()),
            at: t(2),
        })]);
    given::<Broadcast>([drafted()])
        .when(unschedule.clone())
        .then([]);
    running(1)
        .when(unschedule)
        .then_err(BroadcastError::AlreadyStarted);
}

fn resolved(recipients: &[i64], excluded: &[(i64, SkipReason)]) -> ResolvedAudience {
    ResolvedAudience {
        segment: Audience::AllCustomers,
        recipients: recipients.iter().copied().map(CustomerId).collect(),
        excluded: excluded
            .iter()
            .map(|(customer, reason)| Excluded {
                customer: CustomerId(*customer),
                reason: *reason,
            })
            .collect(),
    }
}
fn start_to(audience: ResolvedAudience) -> BroadcastCommand {
    BroadcastCommand::Start {
        audience,
        by: Some(agent()),
        at: t(10),
    }
}
fn start(size: i64) -> BroadcastCommand {
    start_to(resolved(&(1..=size).collect::<Vec<_>>(), &[]))
}
fn started_frozen(recipients: &[i64], excluded: &[(i64, SkipReason)]) -> Vec<BroadcastEvent> {
    let audience = resolved(recipients, excluded);
    let mut events = vec![
        drafted(),
        BroadcastEvent::Started(BroadcastStarted {
            audience_size: u32::try_from(recipients.len()).unwrap_or(u32::MAX),
            by: Some(agent()),
            at: t(10),
            excluded: u32::try_from(excluded.len()).unwrap_or(u32::MAX),
            frozen: true,
        }),
    ];
    if !audience.recipients.is_empty() {
        events.push(BroadcastEvent::AudienceFrozen(AudienceFrozen {
            recipients: audience.recipients,
            excluded: vec![],
        }));
    }
    if !audience.excluded.is_empty() {
        events.push(BroadcastEvent::AudienceFrozen(AudienceFrozen {
            recipients: vec![],
            excluded: audience.excluded,
        }));
    }
    events
}
fn completed(minute: i64) -> BroadcastEvent {
    BroadcastEvent::Completed(BroadcastEnded {
        by: None,
        at: t(minute),
    })
}

#[test]
fn starting_freezes_the_audience_in_the_log_in_batches() {
    let recipients: Vec<i64> = (1..=12_000).collect();
    let excluded = [
        (20_001, SkipReason::OptedOut),
        (20_002, SkipReason::Banned),
        (20_003, SkipReason::BlockedBot),
    ];
    let state = given::<Broadcast>([drafted(), scheduled(60)])
        .when(start_to(resolved(&recipients, &excluded)))
        .then_with(|events| {
            assert_eq!(
                events.first(),
                Some(&BroadcastEvent::Started(BroadcastStarted {
                    audience_size: 12_000,
                    by: Some(agent()),
                    at: t(10),
                    excluded: 3,
                    frozen: true,
                }))
            );
            let batches: Vec<(usize, usize)> = events[1..]
                .iter()
                .map(|event| match event {
                    BroadcastEvent::AudienceFrozen(batch) => {
                        (batch.recipients.len(), batch.excluded.len())
                    }
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            assert_eq!(batches, [(5_000, 0), (5_000, 0), (2_000, 0), (0, 3)]);
        });
    let state = state.state().expect("drafted");
    assert_eq!(state.status, BroadcastStatus::Running);
    assert_eq!((state.audience_size, state.excluded), (12_000, 3));
    assert_eq!(state.recipients.len(), 12_000);
    assert_eq!(state.pending().next(), Some(CustomerId(1)));
    assert_eq!(state.pending_count(), 12_000);
}

#[test]
fn starting_twice_is_rejected() {
    running(2)
        .when(start(2))
        .then_err(BroadcastError::AlreadyStarted);
    given::<Broadcast>(started_frozen(&[1, 2], &[]))
        .when(start(2))
        .then_err(BroadcastError::AlreadyStarted);
}

#[test]
fn the_scheduler_starts_only_a_scheduled_broadcast_whose_time_has_come() {
    let by_scheduler = |minute: i64| BroadcastCommand::Start {
        audience: resolved(&[1], &[]),
        by: None,
        at: t(minute),
    };
    given::<Broadcast>([drafted()])
        .when(by_scheduler(90))
        .then_err(BroadcastError::NotDue);
    given::<Broadcast>([drafted(), scheduled(60)])
        .when(by_scheduler(59))
        .then_err(BroadcastError::NotDue);
    let state = given::<Broadcast>([drafted(), scheduled(60)])
        .when(by_scheduler(60))
        .then_with(|events| assert_eq!(events.len(), 2));
    assert_eq!(
        state.state().map(|b| b.status),
        Some(BroadcastStatus::Running)
    );
    // Started meanwhile (by an agent, or by the scheduler of a moment ago): refused.
    let mut history = started_frozen(&[1], &[]);
    history.insert(1, scheduled(60));
    given::<Broadcast>(history)
        .when(by_scheduler(61))
        .then_err(BroadcastError::AlreadyStarted);
}

#[test]
fn an_audience_resolved_from_another_segment_is_rejected() {
    let mut audience = resolved(&[1], &[]);
    audience.segment = Audience::ByLanguage {
        language: "de".into(),
    };
    given::<Broadcast>([drafted()])
        .when(start_to(audience))
        .then_err(BroadcastError::AudienceChanged);
}

#[test]
fn a_customer_listed_twice_in_the_resolved_audience_is_rejected() {
    given::<Broadcast>([drafted()])
        .when(start_to(resolved(&[1, 2, 1], &[])))
        .then_err(BroadcastError::ListedTwice(CustomerId(1)));
    given::<Broadcast>([drafted()])
        .when(start_to(resolved(&[1, 2], &[(2, SkipReason::Banned)])))
        .then_err(BroadcastError::ListedTwice(CustomerId(2)));
}

#[test]
fn an_audience_over_the_limit_is_rejected() {
    let recipients: Vec<i64> = (0..=i64::try_from(validate::MAX_AUDIENCE).unwrap_or(0)).collect();
    given::<Broadcast>([drafted()])
        .when(start_to(resolved(&recipients, &[])))
        .then_err(
            InvalidInput::TooMany {
                field: "customers in the audience",
                max: validate::MAX_AUDIENCE,
                actual: validate::MAX_AUDIENCE + 1,
            }
            .into(),
        );
}

#[test]
fn an_audience_with_nobody_to_send_to_completes_at_once() {
    given::<Broadcast>([drafted()])
        .when(start_to(resolved(&[], &[(7, SkipReason::OptedOut)])))
        .then([
            BroadcastEvent::Started(BroadcastStarted {
                audience_size: 0,
                by: Some(agent()),
                at: t(10),
                excluded: 1,
                frozen: true,
            }),
            BroadcastEvent::AudienceFrozen(AudienceFrozen {
                recipients: vec![],
                excluded: vec![Excluded {
                    customer: CustomerId(7),
                    reason: SkipReason::OptedOut,
                }],
            }),
            completed(10),
        ]);
}

#[test]
fn a_resolved_audience_outside_the_explicit_list_is_rejected() {
    given::<Broadcast>([BroadcastEvent::Drafted(BroadcastDrafted {
        audience: Audience::Explicit {
            customers: vec![CustomerId(1), CustomerId(2)],
        },
        ..match drafted() {
            BroadcastEvent::Drafted(d) => d,
            _ => unreachable!("drafted() builds a Drafted"),
        }
    })])
    .when(BroadcastCommand::Start {
        audience: ResolvedAudience {
            segment: Audience::Explicit {
                customers: vec![CustomerId(1), CustomerId(2)],
            },
            recipients: vec![CustomerId(1), CustomerId(3)],
            excluded: vec![],
        },
        by: Some(agent()),
        at: t(10),
    })
    .then_err(BroadcastError::NotInAudience(CustomerId(3)));
}

#[test]
fn a_start_stored_before_the_audience_was_recorded_still_reads() {
    let old = serde_json::json!({
        "audience_size": 4,
        "by": null,
        "at": "2026-03-02T10:10:00Z",
    });
    let started = match BroadcastEvent::decode("broadcast.started", 1, &old) {
        Ok(BroadcastEvent::Started(started)) => started,
        other => panic!("an old start reads: {other:?}"),
    };
    assert_eq!((started.audience_size, started.excluded), (4, 0));
    assert!(!started.frozen);
}

#[test]
fn frozen_recipients_get_one_outcome_each_and_the_last_batch_completes() {
    let history = started_frozen(&[1, 2, 3], &[(9, SkipReason::Banned)]);
    // Nobody outside the frozen audience: not a customer left out, not a newcomer.
    given::<Broadcast>(history.clone())
        .when(record(vec![delivered(9)]))
        .then_err(BroadcastError::NotInAudience(CustomerId(9)));
    given::<Broadcast>(history.clone())
        .when(record(vec![delivered(4)]))
        .then_err(BroadcastError::NotInAudience(CustomerId(4)));
    let mut after_one = history.clone();
    after_one.push(recorded(vec![delivered(1)]));
    given::<Broadcast>(after_one.clone())
        .when(record(vec![delivered(1)]))
        .then_err(BroadcastError::DuplicateRecipient(CustomerId(1)));
    let state = given::<Broadcast>(after_one)
        .when(record(vec![delivered(2), delivered(3)]))
        .then([recorded(vec![delivered(2), delivered(3)]), completed(11)]);
    let state = state.state().expect("drafted");
    assert_eq!(state.status, BroadcastStatus::Completed);
    assert_eq!(state.pending_count(), 0);
    assert_eq!(state.tally.delivered, 3);
}

#[test]
fn outcomes_of_messages_in_flight_are_recorded_after_a_cancel_without_completing() {
    let mut history = started_frozen(&[1, 2], &[]);
    history.push(BroadcastEvent::Cancelled(BroadcastEnded {
        by: Some(agent()),
        at: t(10),
    }));
    let state = given::<Broadcast>(history.clone())
        .when(record(vec![delivered(1), delivered(2)]))
        .then([recorded(vec![delivered(1), delivered(2)])]);
    assert_eq!(
        state.state().map(|b| (b.status, b.tally.delivered)),
        Some((BroadcastStatus::Cancelled, 2))
    );
    // A broadcast cancelled before it started has nothing in flight.
    given::<Broadcast>([
        drafted(),
        BroadcastEvent::Cancelled(BroadcastEnded {
            by: Some(agent()),
            at: t(5),
        }),
    ])
    .when(record(vec![delivered(1)]))
    .then_err(BroadcastError::Finished);
}

// Outcomes

#[test]
fn outcomes_are_recorded_in_batches() {
    let batch = vec![
        delivered(1),
        RecipientOutcome {
            customer: CustomerId(2),
            outcome: Outcome::Failed {
                reason: "Forbidden: bot was blocked by the user".into(),
                retryable: false,
            },
        },
        RecipientOutcome {
            customer: CustomerId(3),
            outcome: Outcome::Skipped {
                reason: SkipReason::OptedOut,
            },
        },
    ];
    let state = running(3)
        .when(record(batch.clone()))
        .then([recorded(batch)]);
    assert_eq!(
        state.state().map(|b| b.tally),
        Some(Tally {
            delivered: 1,
            failed: 1,
            skipped: 1
        })
    );
}

#[test]
fn a_batch_of_more_than_100_outcomes_is_rejected() {
    let batch = (0..101).map(delivered).collect();
    running(500).when(record(batch)).then_err(
        InvalidInput::TooMany {
            field: "outcomes in one batch",
            max: 100,
            actual: 101,
        }
        .into(),
    );
}

#[test]
fn an_empty_batch_is_rejected() {
    running(5).when(record(vec![])).then_err(
        InvalidInput::Empty {
            field: "outcome batch",
        }
        .into(),
    );
}

#[test]
fn a_recipient_recorded_twice_is_rejected() {
    running(5)
        .when(record(vec![delivered(1), delivered(1)]))
        .then_err(BroadcastError::DuplicateRecipient(CustomerId(1)));
    given::<Broadcast>([drafted(), started(5), recorded(vec![delivered(1)])])
        .when(record(vec![delivered(1)]))
        .then_err(BroadcastError::DuplicateRecipient(CustomerId(1)));
}

#[test]
fn more_outcomes_than_the_frozen_audience_are_rejected() {
    running(1)
        .when(record(vec![delivered(1), delivered(2)]))
        .then_err(BroadcastError::MoreOutcomesThanAudience { audience_size: 1 });
}

#[test]
fn an_outcome_for_a_customer_outside_an_explicit_list_is_rejected() {
    let drafted_explicit = BroadcastEvent::Drafted(BroadcastDrafted {
        broadcast_id: id(),
        by: agent(),
        at: t(0),
        audience: Audience::Explicit {
            customers: vec![CustomerId(1), CustomerId(2)],
        },
        content: content("Hi"),
    });
    given::<Broadcast>([drafted_explicit, started(2)])
        .when(record(vec![delivered(3)]))
        .then_err(BroadcastError::NotInAudience(CustomerId(3)));
}

#[test]
fn outcomes_before_the_start_are_rejected() {
    given::<Broadcast>([drafted()])
        .when(record(vec![delivered(1)]))
        .then_err(BroadcastError::NotStarted);
}

#[test]
fn outcomes_of_in_flight_sends_are_accepted_while_paused() {
    given::<Broadcast>([drafted(), started(2), BroadcastEvent::Paused(step(12))])
        .when(record(vec![delivered(1)]))
        .then([recorded(vec![delivered(1)])]);
}

// Pause, resume, complete, cancel

#[test]
fn pausing_and_resuming_are_recorded_once_each() {
    let pause = BroadcastCommand::Pause {
        by: agent(),
        at: t(12),
    };
    let resume = BroadcastCommand::Resume {
        by: agent(),
        at: t(13),
    };
    running(2)
        .when(pause.clone())
        .then([BroadcastEvent::Paused(step(12))]);
    given::<Broadcast>([drafted(), started(2), BroadcastEvent::Paused(step(12))])
        .when(pause.clone())
        .then([]);
    given::<Broadcast>([drafted(), started(2), BroadcastEvent::Paused(step(12))])
        .when(resume.clone())
        .then([BroadcastEvent::Resumed(step(13))]);
    running(2).when(resume).then([]);
    given::<Broadcast>([drafted()])
        .when(pause)
        .then_err(BroadcastError::NotStarted);
}

#[test]
fn completing_requires_an_outcome_for_every_recipient() {
    let complete = BroadcastCommand::Complete { at: t(20) };
    running(2)
        .when(complete.clone())
        .then_err(BroadcastError::Incomplete {
            recorded: 0,
            audience_size: 2,
        });
    given::<Broadcast>([
        drafted(),
        started(2),
        recorded(vec![delivered(1), delivered(2)]),
    ])
    .when(complete)
    .then([BroadcastEvent::Completed(BroadcastEnded {
        by: None,
        at: t(20),
    })]);
}

#[test]
fn completing_a_draft_is_rejected() {
    given::<Broadcast>([drafted()])
        .when(BroadcastCommand::Complete { at: t(20) })
        .then_err(BroadcastError::NotStarted);
}

#[test]
fn cancelling_is_recorded_once_and_finishes_the_broadcast() {
    let cancel = BroadcastCommand::Cancel {
        by: Some(agent()),
        at: t(5),
    };
    let cancelled = BroadcastEvent::Cancelled(BroadcastEnded {
        by: Some(agent()),
        at: t(5),
    });
    running(2).when(cancel.clone()).then([cancelled.clone()]);
    given::<Broadcast>([drafted(), cancelled.clone()])
        .when(cancel)
        .then([]);
    given::<Broadcast>([drafted(), cancelled])
        .when(start(1))
        .then_err(BroadcastError::Finished);
}

#[test]
fn a_completed_broadcast_cannot_be_cancelled() {
    given::<Broadcast>([
        drafted(),
        started(0),
        BroadcastEvent::Completed(BroadcastEnded {
            by: None,
            at: t(20),
        }),
    ])
    .when(BroadcastCommand::Cancel {
        by: Some(agent()),
        at: t(21),
    })
    .then_err(BroadcastError::Finished);
}

// Button presses and previews

fn with_buttons() -> BroadcastEvent {
    let mut content = content("Sale!");
    content.buttons = vec![
        vec![
            InlineButton {
                label: "Open shop".into(),
                action: ButtonAction::Url {
                    url: "https://example.com".into(),
                },
            },
            InlineButton {
                label: "Yes".into(),
                action: ButtonAction::Callback { data: "yes".into() },
            },
        ],
        vec![InlineButton {
            label: "No".into(),
            action: ButtonAction::Callback { data: "no".into() },
        }],
    ];
    BroadcastEvent::Drafted(BroadcastDrafted {
        broadcast_id: id(),
        by: agent(),
        at: t(0),
        audience: Audience::AllCustomers,
        content,
    })
}
fn press(customer: i64, index: u8) -> BroadcastCommand {
    BroadcastCommand::PressButton {
        customer: CustomerId(customer),
        index,
        at: t(12),
    }
}
fn pressed(customer: i64, index: u8, label: &str, data: &str) -> BroadcastEvent {
    BroadcastEvent::ButtonPressed(ButtonPressed {
        customer: CustomerId(customer),
        index,
        label: label.into(),
        data: data.into(),
        at: t(12),
    })
}

#[test]
fn a_press_of_a_callback_button_is_recorded_with_its_label_and_data() {
    given::<Broadcast>([with_buttons(), started(2)])
        .when(press(7, 2))
        .then([pressed(7, 2, "No", "no")]);
    given::<Broadcast>([with_buttons(), started(2)])
        .when(press(7, 1))
        .then([pressed(7, 1, "Yes", "yes")]);
}

#[test]
fn presses_count_after_the_end_too_even_after_a_cancel() {
    let completed = BroadcastEvent::Completed(BroadcastEnded {
        by: None,
        at: t(20),
    });
    given::<Broadcast>([with_buttons(), started(0), completed])
        .when(press(7, 1))
        .then([pressed(7, 1, "Yes", "yes")]);
    let cancelled = BroadcastEvent::Cancelled(BroadcastEnded {
        by: Some(agent()),
        at: t(20),
    });
    given::<Broadcast>([with_buttons(), started(2), cancelled])
        .when(press(7, 1))
        .then([pressed(7, 1, "Yes", "yes")]);
}

#[test]
fn a_press_before_the_start_or_of_a_missing_or_link_button_is_rejected() {
    given::<Broadcast>([with_buttons()])
        .when(press(7, 1))
        .then_err(BroadcastError::NotStarted);
    let cancelled = BroadcastEvent::Cancelled(BroadcastEnded {
        by: Some(agent()),
        at: t(5),
    });
    given::<Broadcast>([with_buttons(), cancelled])
        .when(press(7, 1))
        .then_err(BroadcastError::NotStarted);
    given::<Broadcast>([with_buttons(), started(2)])
        .when(press(7, 3))
        .then_err(BroadcastError::NoSuchButton(3));
    given::<Broadcast>([with_buttons(), started(2)])
        .when(press(7, 0))
        .then_err(BroadcastError::NoSuchButton(0));
    given::<Broadcast>([])
        .when(press(7, 0))
        .then_err(BroadcastError::NotDrafted);
}

#[test]
fn a_customer_pressing_on_and_on_is_recorded_a_bounded_number_of_times() {
    let mut history = vec![with_buttons(), started(2)];
    history.extend((0..MAX_PRESSES_PER_CUSTOMER).map(|_| pressed(7, 1, "Yes", "yes")));
    given::<Broadcast>(history.clone())
        .when(press(7, 2))
        .then([]);
    given::<Broadcast>(history)
        .when(press(8, 2))
        .then([pressed(8, 2, "No", "no")]);
}

fn preview_id() -> Uuid {
    Uuid::from_u128(0x9e)
}
fn request_preview(chat: i64) -> BroadcastCommand {
    BroadcastCommand::RequestPreview {
        preview_id: preview_id(),
        chat,
        by: agent(),
        at: t(2),
    }
}
fn preview_requested() -> BroadcastEvent {
    BroadcastEvent::PreviewRequested(PreviewRequested {
        preview_id: preview_id(),
        chat: 42,
        by: agent(),
        at: t(2),
        content: content("Sale!"),
    })
}

#[test]
fn a_preview_of_a_draft_carries_its_content_and_is_asked_once() {
    given::<Broadcast>([drafted()])
        .when(request_preview(42))
        .then([preview_requested()]);
    given::<Broadcast>([drafted(), scheduled(60)])
        .when(request_preview(42))
        .then([preview_requested()]);
    given::<Broadcast>([drafted(), preview_requested()])
        .when(request_preview(42))
        .then([]);
}

#[test]
fn a_preview_once_started_or_to_a_chat_that_is_no_user_is_rejected() {
    running(1)
        .when(request_preview(42))
        .then_err(BroadcastError::AlreadyStarted);
    for chat in [0, -100_123, 1_i64 << 52] {
        given::<Broadcast>([drafted()])
            .when(request_preview(chat))
            .then_err(
                InvalidInput::OutOfRange {
                    field: "preview chat (a Telegram user id)",
                    min: 1,
                    max: (1_i64 << 52) - 1,
                }
                .into(),
            );
    }
}

#[test]
fn previews_are_bounded() {
    let mut history = vec![drafted()];
    history.extend((0..MAX_PREVIEWS).map(|n| {
        BroadcastEvent::PreviewRequested(PreviewRequested {
            preview_id: Uuid::from_u128(0x1000 + u128::try_from(n).unwrap_or_default()),
            chat: 42,
            by: agent(),
            at: t(2),
            content: content("Sale!"),
        })
    }));
    given::<Broadcast>(history)
        .when(request_preview(42))
        .then_err(BroadcastError::TooManyPreviews { max: MAX_PREVIEWS });
}

#[test]
fn a_preview_outcome_is_recorded_once_also_after_the_start() {
    let sent = BroadcastCommand::RecordPreviewOutcome {
        preview_id: preview_id(),
        outcome: PreviewOutcome::Sent {
            telegram_message_id: TelegramMessageId(9),
        },
        at: t(3),
    };
    let sent_event = BroadcastEvent::PreviewSent(PreviewSent {
        preview_id: preview_id(),
        telegram_message_id: TelegramMessageId(9),
        at: t(3),
    });
    given::<Broadcast>([drafted(), preview_requested(), started(1)])
        .when(sent.clone())
        .then([sent_event.clone()]);
    given::<Broadcast>([drafted(), preview_requested(), sent_event])
        .when(sent.clone())
        .then([]);
    given::<Broadcast>([drafted()])
        .when(sent)
        .then_err(BroadcastError::UnknownPreview);
    let failed = BroadcastCommand::RecordPreviewOutcome {
        preview_id: preview_id(),
        outcome: PreviewOutcome::Failed {
            reason: "Bad Request: chat not found".into(),
        },
        at: t(3),
    };
    given::<Broadcast>([drafted(), preview_requested()])
        .when(failed)
        .then([BroadcastEvent::PreviewFailed(PreviewFailed {
            preview_id: preview_id(),
            reason: "Bad Request: chat not found".into(),
            at: t(3),
        })]);
}
