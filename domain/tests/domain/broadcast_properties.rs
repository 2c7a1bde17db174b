//! Broadcast properties: random command sequences never panic, keep the invariants, and
//! evolve is total.

use domain::Decider;
use domain::broadcast::{
    Audience, Broadcast, BroadcastCommand, BroadcastContent, BroadcastEvent, BroadcastStatus,
    Excluded, MAX_PRESSES_PER_CUSTOMER, MAX_PREVIEWS, Outcome, PreviewOutcome, RecipientOutcome,
    ResolvedAudience, SkipReason,
};
use domain::content::TelegramMessageId;
use domain::{BroadcastId, CustomerId};
use proptest::prelude::*;
use uuid::Uuid;

use crate::support::{agent, arb_time, t};

fn arb_broadcast_command() -> impl Strategy<Value = BroadcastCommand> {
    let content = |text: &str| BroadcastContent {
        format: domain::broadcast::TextFormat::Plain,
        unsubscribe_button: true,
        text: Some(text.into()),
        media: None,
        buttons: vec![],
    };
    let audience = prop_oneof![
        Just(Audience::AllCustomers),
        Just(Audience::Explicit {
            customers: (0..5).map(CustomerId).collect()
        }),
        Just(Audience::Explicit { customers: vec![] }),
    ];
    let outcome = (0i64..8, 0u8..3).prop_map(|(customer, kind)| RecipientOutcome {
        customer: CustomerId(customer),
        outcome: match kind {
            0 => Outcome::Delivered {
                telegram_message_id: TelegramMessageId(1),
            },
            1 => Outcome::Failed {
                reason: "Forbidden".into(),
                retryable: false,
            },
            _ => Outcome::Skipped {
                reason: SkipReason::BlockedBot,
            },
        },
    });
    prop_oneof![
        (audience.clone(), arb_time()).prop_map(move |(audience, at)| BroadcastCommand::Draft {
            broadcast_id: BroadcastId(Uuid::from_u128(1)),
            audience,
            content: content("Sale"),
            by: agent(0),
            at,
        }),
        (audience, "[a-z]{0,3}", arb_time()).prop_map(move |(audience, text, at)| {
            BroadcastCommand::Edit {
                audience,
                content: content(&text),
                by: agent(0),
                at,
            }
        }),
        (arb_time(), arb_time()).prop_map(|(send_at, at)| BroadcastCommand::Schedule {
            send_at,
            by: agent(0),
            at
        }),
        arb_time().prop_map(|at| BroadcastCommand::Unschedule { by: agent(0), at }),
        (
            prop_oneof![
                Just(Audience::AllCustomers),
                Just(Audience::Explicit {
                    customers: (0..5).map(CustomerId).collect()
                }),
            ],
            proptest::collection::vec(0i64..8, 0..8),
            proptest::collection::vec(0i64..8, 0..3),
            any::<bool>(),
            arb_time()
        )
            .prop_map(|(segment, recipients, excluded, scheduler, at)| {
                BroadcastCommand::Start {
                    audience: ResolvedAudience {
                        segment,
                        recipients: recipients.into_iter().map(CustomerId).collect(),
                        excluded: excluded
                            .into_iter()
                            .map(|customer| Excluded {
                                customer: CustomerId(customer),
                                reason: SkipReason::OptedOut,
                            })
                            .collect(),
                    },
                    by: (!scheduler).then(|| agent(0)),
                    at,
                }
            }),
        (proptest::collection::vec(outcome, 0..6), arb_time())
            .prop_map(|(outcomes, at)| BroadcastCommand::RecordOutcomes { outcomes, at }),
        Just(BroadcastCommand::RecordOutcomes {
            outcomes: (0..101)
                .map(|c| RecipientOutcome {
                    customer: CustomerId(c + 100),
                    outcome: Outcome::Skipped {
                        reason: SkipReason::OptedOut
                    },
                })
                .collect(),
            at: t(0),
        }),
        arb_time().prop_map(|at| BroadcastCommand::Pause { by: agent(0), at }),
        arb_time().prop_map(|at| BroadcastCommand::Resume { by: agent(0), at }),
        arb_time().prop_map(|at| BroadcastCommand::Complete { at }),
        arb_time().prop_map(|at| BroadcastCommand::Cancel { by: None, at }),
        (0i64..8, 0u8..4, arb_time()).prop_map(|(customer, index, at)| {
            BroadcastCommand::PressButton {
                customer: CustomerId(customer),
                index,
                at,
            }
        }),
        (0u128..3, -2i64..3, arb_time()).prop_map(|(id, chat, at)| {
            BroadcastCommand::RequestPreview {
                preview_id: Uuid::from_u128(id),
                chat,
                by: agent(0),
                at,
            }
        }),
        (0u128..3, any::<bool>(), arb_time()).prop_map(|(id, sent, at)| {
            BroadcastCommand::RecordPreviewOutcome {
                preview_id: Uuid::from_u128(id),
                outcome: if sent {
                    PreviewOutcome::Sent {
                        telegram_message_id: TelegramMessageId(5),
                    }
                } else {
                    PreviewOutcome::Failed {
                        reason: "Bad Request: chat not found".into(),
                    }
                },
                at,
            }
        }),
    ]
}

fn check_broadcast(before: &Broadcast, events: &[BroadcastEvent], after: &Broadcast) {
    for event in events {
        if let BroadcastEvent::OutcomesRecorded(recorded) = event {
            assert!(!recorded.outcomes.is_empty() && recorded.outcomes.len() <= 100);
        }
        if matches!(event, BroadcastEvent::Edited(_)) {
            assert_eq!(
                before.state().map(|b| b.status),
                Some(BroadcastStatus::Draft),
                "edited only while draft"
            );
        }
    }
    let (Some(before), Some(after)) = (before.state(), after.state()) else {
        return;
    };
    if before.status.is_finished() {
        assert_eq!(before.status, after.status, "finished is final");
    }
    if before.status != BroadcastStatus::Draft {
        assert_eq!(before.content, after.content);
        assert_eq!(before.audience, after.audience);
    }
    if before.status.has_started() {
        assert!(after.status.has_started() || after.status == BroadcastStatus::Cancelled);
        assert_eq!(before.audience_size, after.audience_size, "audience frozen");
    }
    assert_eq!(after.recorded.len(), after.tally.total() as usize);
    assert!(after.tally.total() <= after.audience_size);
    if let Audience::Explicit { customers } = &after.audience {
        assert!(after.recorded.iter().all(|c| customers.contains(c)));
        assert!(after.recipients.iter().all(|c| customers.contains(c)));
    }
    if after.frozen {
        assert_eq!(after.recipients.len(), after.audience_size as usize);
        assert!(
            after.recorded.is_subset(&after.recipients),
            "outcomes for recipients only"
        );
        if after.status.has_started() {
            assert_eq!(
                after.status == BroadcastStatus::Completed,
                after.pending_count() == 0,
                "completes exactly when nobody is pending"
            );
        }
    }
    if after.status == BroadcastStatus::Completed {
        assert_eq!(after.tally.total(), after.audience_size);
    }
    // Presses only once started, bounded per customer; previews bounded, asked before start.
    for event in events {
        match event {
            BroadcastEvent::ButtonPressed(_) => assert!(before.interactions.started),
            BroadcastEvent::PreviewRequested(_) => assert!(matches!(
                before.status,
                BroadcastStatus::Draft | BroadcastStatus::Scheduled(_)
            )),
            _ => {}
        }
    }
    assert!(
        after
            .interactions
            .presses
            .values()
            .all(|n| *n <= MAX_PRESSES_PER_CUSTOMER)
    );
    assert!(after.interactions.previews.len() <= MAX_PREVIEWS);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_broadcast_commands_never_panic_and_keep_the_invariants(
        commands in proptest::collection::vec(arb_broadcast_command(), 0..40)
    ) {
        let mut state = Broadcast::default();
        for command in &commands {
            if let Ok(events) = state.decide(command) {
                let after = events.iter().fold(state.clone(), |s, e| s.evolve(e));
                check_broadcast(&state, &events, &after);
                state = after;
            }
        }
    }

    #[test]
    fn broadcast_evolve_is_total(
        commands in proptest::collection::vec(arb_broadcast_command(), 0..30),
        order in proptest::collection::vec(any::<proptest::sample::Index>(), 0..30),
    ) {
        // Collect accepted events, then replay them in a random order and with repeats.
        let mut state = Broadcast::default();
        let mut events = Vec::new();
        for command in &commands {
            if let Ok(new) = state.decide(command) {
                state = new.iter().fold(state, |s, e| s.evolve(e));
                events.extend(new);
            }
        }
        if !events.is_empty() {
            let shuffled: Vec<_> = order.iter().map(|i| i.get(&events).clone()).collect();
            let _ = Broadcast::replay(&shuffled);
        }
    }
}
