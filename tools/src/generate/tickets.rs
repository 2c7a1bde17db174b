//! Customers and their tickets: one writer simulates its own customers (disjoint from every
//! other writer's), one ticket lifecycle at a time, deciding every step with the domain's
//! deciders and the two-stream flow, and queueing the events in its [`Outbox`].
//!
//! A writer's simulated clock follows its share of the event budget, so whatever the number of
//! events asked for, tickets spread over the whole simulated period. A lifecycle that would
//! run past "now" stops where it is: the log ends with tickets still new, open or pending, as a
//! real desk's would.
//!
//! [`story`] tells one ticket's story; [`steps`] holds the steps it is told with (each one a
//! decision of a decider or of the two-stream flow, queued with its actor and correlation).

use chrono::{DateTime, TimeDelta, Utc};
use domain::content::TelegramMessageId;
use domain::customer::{Customer, CustomerProfile};
use domain::ticket::Ticket;
use domain::{AgentId, CategoryId, CustomerId, TicketId};
use eventlog::{Actor, ActorKind};

use super::error::GenerateError;
use super::outbox::{Outbox, Tracked};
use super::rng::Rng;
use super::setup::World;
use super::text;

mod steps;
mod story;

/// A customer as broadcasts see them at the end of the run.
#[derive(Debug, Clone)]
pub(super) struct Recipient {
    pub(super) id: CustomerId,
    pub(super) registered_at: DateTime<Utc>,
    pub(super) accepts: bool,
    pub(super) language: Option<String>,
}

/// A simulated Telegram user.
#[derive(Debug)]
struct Person {
    customer: Tracked<Customer>,
    id: CustomerId,
    profile: CustomerProfile,
    /// The last message id used in their chat with the bot (theirs and the bot's alike).
    last_tg: i32,
    /// When they may start their next ticket.
    free_at: DateTime<Utc>,
    /// Banned for good, or left with a ticket still running at the end.
    retired: bool,
}

impl Person {
    fn next_tg(&mut self) -> TelegramMessageId {
        self.last_tg = self.last_tg.saturating_add(1);
        TelegramMessageId(self.last_tg)
    }
}

/// The first tickets of the first writer show every feature, so even a small run covers every
/// event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Showcase {
    None,
    /// Every optional step of a lifecycle (the customer ends opted out of broadcasts).
    Full,
    /// The same customer comes back: opts in again, with a new profile.
    Return,
    /// A spammer, banned then unbanned.
    Ban,
}

/// What one ticket's story includes.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Customer messages and agent replies, before any reopen.
    messages: u32,
    ban: bool,
    unban: bool,
    block: bool,
    recategorize: bool,
    handover: bool,
    tag_removal: bool,
    rate: bool,
    reopen_by_customer: bool,
    reopen_by_agent: bool,
    system_close: bool,
    opt_out: bool,
    opt_in: bool,
    profile_change: bool,
    /// Showcase: the first message is edited and the first reply fails once and is retried.
    force_details: bool,
}

impl Plan {
    fn draw(rng: &mut Rng, showcase: Showcase) -> Self {
        let full = showcase == Showcase::Full;
        let messages = 5 + u32::try_from(rng.below(26).min(rng.below(26))).unwrap_or(0);
        // The showcase talks long enough for every step to find its turn.
        let messages = if full { messages.max(12) } else { messages };
        let mut chance = |p| full || rng.chance(p);
        Self {
            messages,
            ban: false,
            unban: false,
            block: chance(0.02),
            recategorize: chance(0.04),
            handover: chance(0.06),
            tag_removal: chance(0.1),
            rate: chance(0.45),
            reopen_by_customer: chance(0.1),
            reopen_by_agent: chance(0.02),
            system_close: !full && rng.chance(0.55),
            opt_out: full || rng.chance(0.04),
            opt_in: showcase == Showcase::Return || rng.chance(0.3),
            profile_change: showcase == Showcase::Return || rng.chance(0.08),
            force_details: full,
        }
        .with_ban(rng, showcase)
    }

    fn with_ban(mut self, rng: &mut Rng, showcase: Showcase) -> Self {
        self.ban = showcase == Showcase::Ban || (showcase == Showcase::None && rng.chance(0.012));
        self.unban = showcase == Showcase::Ban || rng.chance(0.5);
        self
    }
}

/// One writer's customers and their tickets.
#[derive(Debug)]
pub(super) struct TicketWriter<'w> {
    world: &'w World,
    rng: Rng,
    pub(super) outbox: Outbox,
    people: Vec<Person>,
    lane: u64,
    budget: u64,
    tickets: u64,
    showcase: bool,
}

impl<'w> TicketWriter<'w> {
    /// Writer `lane` of the run seeded `seed`, writing about `budget` events.
    pub(super) fn new(
        world: &'w World,
        seed: u64,
        lane: u64,
        budget: u64,
        batch_events: usize,
    ) -> Self {
        Self {
            world,
            rng: Rng::lane(seed, 1_000 + 2 * lane),
            outbox: Outbox::new(Rng::lane(seed, 1_001 + 2 * lane), batch_events),
            people: Vec::new(),
            lane,
            budget,
            tickets: 0,
            showcase: lane == 0,
        }
    }

    /// Whether the writer has written its share.
    pub(super) fn done(&self) -> bool {
        self.outbox.events >= self.budget
    }

    pub(super) fn recipients(&self) -> impl Iterator<Item = Recipient> + '_ {
        self.people.iter().filter_map(|person| {
            person.customer.state.state().map(|state| Recipient {
                id: state.id,
                registered_at: state.registered_at,
                accepts: state.accepts_broadcasts(),
                language: state.profile.language_code.clone(),
            })
        })
    }

    /// The writer's clock: how far through its budget it is, mapped onto the period.
    fn clock(&mut self) -> DateTime<Utc> {
        let span = (self.world.end - self.world.open_from).num_seconds().max(1);
        let done = (self.outbox.events as f64 / self.budget.max(1) as f64).min(1.0);
        let offset = (span as f64 * done) as i64;
        self.world.open_from + TimeDelta::seconds(offset) + self.rng.secs(0, 3_600)
    }

    /// Writes one more ticket lifecycle (always at least its opening message).
    pub(super) fn step(&mut self) -> Result<(), GenerateError> {
        let clock = self.clock();
        let showcase = match (self.showcase, self.tickets) {
            (true, 0) => Showcase::Full,
            (true, 1) => Showcase::Return,
            (true, 2) => Showcase::Ban,
            _ => Showcase::None,
        };
        let returning = self
            .people
            .first()
            .filter(|p| !p.retired && p.free_at < self.world.end);
        let index = match (showcase, returning) {
            (Showcase::Return, Some(_)) => 0,
            _ => self.choose_person(clock),
        };
        self.tickets += 1;
        let plan = Plan::draw(&mut self.rng, showcase);
        let Self {
            world,
            rng,
            outbox,
            people,
            ..
        } = self;
        let Some(person) = people.get_mut(index) else {
            return Ok(());
        };
        let start = clock.max(person.free_at);
        let ticket_id = TicketId(rng.uuid_v7(start));
        let category = rng.choose(&world.categories).copied();
        Life {
            world,
            rng,
            outbox,
            person,
            ticket: Tracked::new(ticket_id.stream()),
            ticket_id,
            category,
            t: start,
            plan,
            recent: Vec::new(),
            said: 0,
            blocked_once: false,
            failed_once: false,
        }
        .run()
    }

    /// A returning customer who is free now, or a new one.
    fn choose_person(&mut self, clock: DateTime<Utc>) -> usize {
        if !self.people.is_empty() && !self.rng.chance(0.45) {
            for _ in 0..8 {
                let index = self.rng.index(self.people.len());
                if self
                    .people
                    .get(index)
                    .is_some_and(|p| !p.retired && p.free_at <= clock)
                {
                    return index;
                }
            }
        }
        self.new_person()
    }

    fn new_person(&mut self) -> usize {
        let n = i64::try_from(self.people.len()).unwrap_or(i64::MAX / 8);
        let lane = i64::try_from(self.lane).unwrap_or(0);
        let jitter = i64::try_from(self.rng.below(7)).unwrap_or(0);
        // Disjoint per writer: each writer numbers its customers in its own block of ids.
        let id = CustomerId(5_000_000_000 + lane * 100_000_000 + n * 7 + jitter);
        self.people.push(Person {
            customer: Tracked::new(id.stream()),
            id,
            profile: text::profile(&mut self.rng),
            last_tg: i32::try_from(self.rng.range(1, 40)).unwrap_or(1),
            free_at: self.world.start,
            retired: false,
        });
        self.people.len() - 1
    }
}

fn agent_actor(agent: AgentId) -> Actor {
    Actor::new(ActorKind::Agent, agent.to_string())
}

fn bot() -> Actor {
    Actor::new(ActorKind::Bot, "delivery")
}

/// One ticket's lifecycle in progress.
struct Life<'a> {
    world: &'a World,
    rng: &'a mut Rng,
    outbox: &'a mut Outbox,
    person: &'a mut Person,
    ticket: Tracked<Ticket>,
    ticket_id: TicketId,
    category: Option<CategoryId>,
    /// The simulated time of the next step.
    t: DateTime<Utc>,
    plan: Plan,
    /// Telegram ids in the chat so far, for replies to earlier messages.
    recent: Vec<TelegramMessageId>,
    /// Customer messages and agent replies so far.
    said: u32,
    blocked_once: bool,
    failed_once: bool,
}
