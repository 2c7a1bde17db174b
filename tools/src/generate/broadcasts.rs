//! A few broadcasts over the customers the ticket writers registered: drafted, sometimes
//! edited and scheduled (and unscheduled), started with a frozen audience, outcomes recorded
//! in batches of at most 100 (the last one completes it), sometimes paused and resumed, or
//! cancelled.
//!
//! Each draft is previewed once (sent for even-numbered broadcasts, refused by Telegram for
//! odd ones), and a few recipients press the callback button of a started broadcast.
//!
//! They run after the ticket writers, so every recipient is already registered in the log;
//! their times lie in the second half of the period, and each audience holds only customers
//! registered before the broadcast started.

use chrono::{DateTime, TimeDelta, Utc};
use domain::broadcast::{
    Audience, Broadcast, BroadcastCommand, BroadcastContent, ButtonAction, InlineButton, Outcome,
    PreviewOutcome, RecipientOutcome, ResolvedAudience, SkipReason,
};
use domain::content::{MediaKind, OutgoingMedia, TelegramMessageId};
use domain::validate::MAX_OUTCOME_BATCH;
use domain::{AgentId, BroadcastId, CustomerId};
use eventlog::{Actor, ActorKind};

use super::error::GenerateError;
use super::outbox::{Outbox, Stamp, Tracked, decide};
use super::rng::Rng;
use super::setup::World;
use super::tickets::Recipient;

/// How a broadcast's story goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Story {
    /// Edited, scheduled, unscheduled, scheduled again, started by the scheduler, paused and
    /// resumed, completed.
    Scheduled,
    /// Started at once by an agent and completed.
    Immediate,
    /// Scheduled, then cancelled before it started.
    CancelledEarly,
    /// Started, paused after the first batch, cancelled.
    CancelledMidway,
}

struct Sender<'a> {
    rng: &'a mut Rng,
    outbox: &'a mut Outbox,
    broadcast: Tracked<Broadcast>,
    t: DateTime<Utc>,
}

impl Sender<'_> {
    fn run(&mut self, command: &BroadcastCommand, actor: &Actor) -> Result<(), GenerateError> {
        let stamp = Stamp {
            at: self.t,
            actor: actor.clone(),
            correlation: self.rng.uuid_v7(self.t),
            causation: None,
        };
        decide(self.outbox, &mut self.broadcast, command, &stamp).map(|_| ())
    }

    fn wait(&mut self, lo: u64, hi: u64) {
        self.t += self.rng.secs(lo, hi);
    }

    /// Records outcomes for `recipients` in batches, like the sender worker (about 30/s).
    fn send(&mut self, recipients: &[CustomerId]) -> Result<(), GenerateError> {
        let sender = Actor::new(ActorKind::Bot, "broadcast-sender");
        for batch in recipients.chunks(MAX_OUTCOME_BATCH) {
            self.t += TimeDelta::milliseconds(i64::try_from(batch.len()).unwrap_or(0) * 34);
            let outcomes = batch
                .iter()
                .map(|customer| RecipientOutcome {
                    customer: *customer,
                    outcome: self.outcome(),
                })
                .collect();
            let at = self.t;
            self.run(&BroadcastCommand::RecordOutcomes { outcomes, at }, &sender)?;
        }
        Ok(())
    }

    /// An agent previews the draft in their own chat; the delivery worker records how it went.
    fn preview(&mut self, author: AgentId, by: &Actor, n: usize) -> Result<(), GenerateError> {
        self.wait(60, 600);
        let preview_id = self.rng.uuid_v7(self.t);
        let at = self.t;
        let chat = i64::try_from(self.rng.range(100_000_000, 900_000_000)).unwrap_or(100_000_000);
        self.run(
            &BroadcastCommand::RequestPreview {
                preview_id,
                chat,
                by: author,
                at,
            },
            by,
        )?;
        self.t += TimeDelta::milliseconds(400);
        let outcome = if n.is_multiple_of(2) {
            PreviewOutcome::Sent {
                telegram_message_id: TelegramMessageId(
                    i32::try_from(self.rng.range(100, 90_000)).unwrap_or(100),
                ),
            }
        } else {
            PreviewOutcome::Failed {
                reason: "Bad Request: chat not found".to_owned(),
            }
        };
        let at = self.t;
        self.run(
            &BroadcastCommand::RecordPreviewOutcome {
                preview_id,
                outcome,
                at,
            },
            &Actor::new(ActorKind::Bot, "delivery"),
        )
    }

    /// A few recipients press the callback button (the second of the first row).
    fn presses(&mut self, recipients: &[CustomerId]) -> Result<(), GenerateError> {
        for customer in recipients.iter().take(3) {
            self.wait(1, 120);
            let at = self.t;
            let actor = Actor::new(ActorKind::Customer, customer.0.to_string());
            self.run(
                &BroadcastCommand::PressButton {
                    customer: *customer,
                    index: 1,
                    at,
                },
                &actor,
            )?;
        }
        Ok(())
    }

    fn outcome(&mut self) -> Outcome {
        let roll = self.rng.below(1_000);
        match roll {
            0..=939 => Outcome::Delivered {
                telegram_message_id: TelegramMessageId(
                    i32::try_from(self.rng.range(100, 90_000)).unwrap_or(100),
                ),
            },
            940..=969 => Outcome::Failed {
                reason: "Forbidden: bot was blocked by the user".to_owned(),
                retryable: false,
            },
            970..=979 => Outcome::Failed {
                reason: "Too Many Requests: retry after 3".to_owned(),
                retryable: true,
            },
            980..=989 => Outcome::Skipped {
                reason: SkipReason::OptedOut,
            },
            990..=994 => Outcome::Skipped {
                reason: SkipReason::BlockedBot,
            },
            _ => Outcome::Skipped {
                reason: SkipReason::Banned,
            },
        }
    }
}

fn content(rng: &mut Rng, n: usize, media: bool) -> BroadcastContent {
    let text = format!(
        "Hello from the team! Our autumn sale #{n} starts today: up to {}% off everything.",
        rng.range(10, 50)
    );
    BroadcastContent {
        format: domain::broadcast::TextFormat::Plain,
        unsubscribe_button: true,
        text: Some(text),
        media: media.then(|| OutgoingMedia {
            kind: MediaKind::Photo,
            file_id: format!("AgACAgIAAxkDAA{}", rng.token(48)),
        }),
        buttons: vec![vec![
            InlineButton {
                label: "Shop now".to_owned(),
                action: ButtonAction::Url {
                    url: format!("https://shop.example/sale/{n}"),
                },
            },
            InlineButton {
                label: "Not interested".to_owned(),
                action: ButtonAction::Callback {
                    data: format!("unsubscribe:{n}"),
                },
            },
        ]],
    }
}

/// Writes `count` broadcasts; answers how many were drafted.
pub(super) fn broadcasts(
    world: &World,
    rng: &mut Rng,
    outbox: &mut Outbox,
    recipients: &[Recipient],
    count: usize,
) -> Result<u64, GenerateError> {
    let span = (world.end - world.start).num_seconds().max(1);
    for n in 0..count {
        // Spread over the second half of the period, one after the other.
        let offset = span / 2
            + span / 2 * i64::try_from(n).unwrap_or(0) / i64::try_from(count).unwrap_or(1).max(1);
        let start = world.start + TimeDelta::seconds(offset) + rng.secs(0, 6 * 3_600);
        let story = match n {
            0 => Story::Scheduled,
            1 => Story::Immediate,
            2 => Story::CancelledEarly,
            3 => Story::CancelledMidway,
            _ => rng
                .weighted(&[
                    (Story::Scheduled, 3),
                    (Story::Immediate, 5),
                    (Story::CancelledEarly, 1),
                    (Story::CancelledMidway, 1),
                ])
                .unwrap_or(Story::Immediate),
        };
        one(world, rng, outbox, recipients, n, start, story)?;
    }
    Ok(count as u64)
}

fn one(
    world: &World,
    rng: &mut Rng,
    outbox: &mut Outbox,
    recipients: &[Recipient],
    n: usize,
    start: DateTime<Utc>,
    story: Story,
) -> Result<(), GenerateError> {
    let author: AgentId = world.lead(rng);
    let by = Actor::new(ActorKind::Agent, author.to_string());
    let broadcast_id = BroadcastId(rng.uuid_v7(start));
    let categories = &world.categories;
    let audience = match n % 4 {
        0 => Audience::AllCustomers,
        1 => Audience::ByLanguage {
            language: "es".to_owned(),
        },
        2 => match rng.choose(categories) {
            Some(category) => Audience::ByCategory {
                category: *category,
            },
            None => Audience::AllCustomers,
        },
        _ => Audience::ByTicketStatus {
            status: domain::ticket::TicketStatus::Resolved,
        },
    };
    let media = rng.chance(0.5);
    let mut sender = Sender {
        rng,
        outbox,
        broadcast: Tracked::new(broadcast_id.stream()),
        t: start,
    };
    let draft = content(sender.rng, n, media);
    sender.run(
        &BroadcastCommand::Draft {
            broadcast_id,
            audience: audience.clone(),
            content: draft,
            by: author,
            at: sender.t,
        },
        &by,
    )?;
    sender.preview(author, &by, n)?;
    if matches!(story, Story::Scheduled | Story::CancelledMidway) {
        sender.wait(300, 3_600);
        let edited = content(sender.rng, n, !media);
        let at = sender.t;
        sender.run(
            &BroadcastCommand::Edit {
                audience: audience.clone(),
                content: edited,
                by: author,
                at,
            },
            &by,
        )?;
    }
    let mut send_at = sender.t;
    if matches!(story, Story::Scheduled | Story::CancelledEarly) {
        sender.wait(60, 600);
        send_at = sender.t + TimeDelta::hours(12);
        let at = sender.t;
        sender.run(
            &BroadcastCommand::Schedule {
                send_at,
                by: author,
                at,
            },
            &by,
        )?;
        if story == Story::CancelledEarly {
            sender.wait(600, 7_200);
            let at = sender.t;
            return sender.run(
                &BroadcastCommand::Cancel {
                    by: Some(author),
                    at,
                },
                &by,
            );
        }
        sender.wait(60, 600);
        let at = sender.t;
        sender.run(&BroadcastCommand::Unschedule { by: author, at }, &by)?;
        sender.wait(60, 600);
        send_at = sender.t + TimeDelta::hours(2);
        let at = sender.t;
        sender.run(
            &BroadcastCommand::Schedule {
                send_at,
                by: author,
                at,
            },
            &by,
        )?;
    }

    // The audience snapshot: who accepts broadcasts, registered before the start, in the
    // segment (language known; category and status approximated by a share).
    sender.t = sender.t.max(send_at) + sender.rng.secs(1, 30);
    let cutoff = sender.t;
    let mut snapshot: Vec<CustomerId> = Vec::new();
    for recipient in recipients {
        let in_segment = match &audience {
            Audience::AllCustomers | Audience::Explicit { .. } => true,
            Audience::ByLanguage { language } => {
                recipient.language.as_deref() == Some(language.as_str())
            }
            Audience::ByCategory { .. } => sender.rng.chance(0.25),
            Audience::ByTicketStatus { .. } => sender.rng.chance(0.3),
        };
        if recipient.accepts && recipient.registered_at < cutoff && in_segment {
            snapshot.push(recipient.id);
        }
    }
    let (starter, started_by) = if story == Story::Scheduled {
        (Actor::system("scheduler"), None)
    } else {
        (by.clone(), Some(author))
    };
    let at = sender.t;
    sender.run(
        &BroadcastCommand::Start {
            audience: ResolvedAudience {
                segment: audience.clone(),
                recipients: snapshot.clone(),
                excluded: vec![],
            },
            by: started_by,
            at,
        },
        &starter,
    )?;
    // Half at most in the first batch, so a pause or cancel comes while some are pending.
    let first = snapshot.len().div_ceil(2).min(MAX_OUTCOME_BATCH);
    let (head, rest) = snapshot.split_at(first);
    sender.send(head)?;
    if rest.is_empty() {
        // The start (nobody to send to) or the first batch completed it.
        return Ok(());
    }
    if matches!(story, Story::Scheduled | Story::CancelledMidway) {
        sender.wait(30, 1_800);
        let at = sender.t;
        sender.run(&BroadcastCommand::Pause { by: author, at }, &by)?;
        if story == Story::CancelledMidway {
            sender.wait(300, 3_600);
            let at = sender.t;
            return sender.run(
                &BroadcastCommand::Cancel {
                    by: Some(author),
                    at,
                },
                &by,
            );
        }
        sender.wait(300, 3_600);
        let at = sender.t;
        sender.run(&BroadcastCommand::Resume { by: author, at }, &by)?;
    }
    // The last batch completes it; presses come after.
    sender.send(rest)?;
    sender.presses(&snapshot)
}
