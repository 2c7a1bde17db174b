//! Customers and their tickets: one writer simulates its own customers (disjoint from every
//! other writer's), one ticket lifecycle at a time, deciding every step with the domain's
//! deciders and the two-stream flow, and queueing the events in its [`Outbox`].
//!
//! A writer's simulated clock follows its share of the event budget, so whatever the number of
//! events asked for, tickets spread over the whole simulated period. A lifecycle that would
//! run past "now" stops where it is: the log ends with tickets still new, open or pending, as a
//! real desk's would.

use chrono::{DateTime, TimeDelta, Utc};
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::{Customer, CustomerCommand, CustomerProfile};
use domain::flow::{
    Decision, MessageTarget, RouteCustomerMessage, decide_for_ticket, message_target,
    route_customer_message,
};
use domain::ticket::{
    Actor as TicketActor, AddInternalNote, Channel, EditCustomerMessage, Priority, ReplyAsAgent,
    Ticket, TicketCommand, WorkStatus,
};
use domain::{AgentId, AnyEvent, CategoryId, CustomerId, MessageId, TicketId};
use eventlog::{Actor, ActorKind};
use uuid::Uuid;

use super::GenerateError;
use super::outbox::{Outbox, Stamp, Tracked, Write, decide};
use super::rng::Rng;
use super::setup::World;
use super::text;

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

impl Life<'_> {
    fn run(mut self) -> Result<(), GenerateError> {
        if self.person.customer.state.state().is_some() {
            self.back_again()?;
        }
        let (tg, content) = self.say(true)?;
        if self.plan.force_details || self.rng.chance(0.04) {
            self.edit(tg, &content)?;
        }
        for _ in 0..self.rng.below(3) {
            self.wait(5, 90);
            self.say_maybe_edited()?;
        }
        if self.plan.ban {
            return self.spam();
        }

        // Triage.
        self.wait_skewed(60, 4 * 3_600);
        if self.over() {
            return self.stop();
        }
        let mut agent = self.world.agent_for(self.rng, self.category);
        let by = if self.rng.chance(0.3) {
            self.world.lead(self.rng)
        } else {
            agent
        };
        if self.plan.force_details || self.rng.chance(0.85) {
            self.agent_does(
                by,
                TicketCommand::Assign {
                    agent,
                    by,
                    at: self.t,
                },
            )?;
        }
        if self.plan.force_details || self.rng.chance(0.3) {
            let priority = self
                .rng
                .weighted(&[
                    (Priority::Low, 2),
                    (Priority::High, 5),
                    (Priority::Urgent, 2),
                ])
                .unwrap_or(Priority::High);
            self.agent_does(
                by,
                TicketCommand::SetPriority {
                    priority,
                    by,
                    at: self.t,
                },
            )?;
        }
        if self.plan.force_details || self.rng.chance(0.45) {
            for _ in 0..self.rng.range(1, 2) {
                let tag = (*self.rng.pick(text::TAGS)).to_owned();
                self.agent_does(
                    agent,
                    TicketCommand::AddTag {
                        tag,
                        by: agent,
                        at: self.t,
                    },
                )?;
            }
        }
        if self.plan.recategorize {
            let others: Vec<CategoryId> = self
                .world
                .categories
                .iter()
                .copied()
                .filter(|c| Some(*c) != self.category)
                .collect();
            if let Some(category) = self.rng.choose(&others).copied() {
                self.agent_does(
                    agent,
                    TicketCommand::ChangeCategory {
                        category: Some(category),
                        by: agent,
                        at: self.t,
                    },
                )?;
                self.category = Some(category);
            }
        }

        // The conversation.
        let mut handed_over = false;
        loop {
            if self.rng.chance(0.15) {
                self.note(agent)?;
            }
            self.reply(agent)?;
            if self.rng.chance(0.15) {
                self.wait(20, 300);
                self.reply(agent)?;
            }
            if self.said >= self.plan.messages {
                break;
            }
            if self.plan.handover && !handed_over && self.said >= 3 {
                handed_over = true;
                agent = self.hand_over(agent)?;
            }
            if self.rng.chance(0.35) {
                let command = TicketCommand::SetStatus {
                    status: WorkStatus::Pending,
                    by: TicketActor::Agent { agent_id: agent },
                    at: self.t,
                };
                self.agent_does(agent, command)?;
            }
            self.wait_skewed(30, 6 * 3_600);
            if self.over() {
                return self.stop();
            }
            for _ in 0..=self.rng.below(3).min(self.rng.below(3)) {
                self.say_maybe_edited()?;
                self.wait(5, 120);
            }
            if self.said >= self.plan.messages {
                break;
            }
            self.wait_skewed(60, 3 * 3_600);
            if self.over() {
                return self.stop();
            }
        }
        self.resolve(agent)
    }

    /// A returning customer: maybe back in for broadcasts, maybe with a new Telegram profile.
    fn back_again(&mut self) -> Result<(), GenerateError> {
        let opted_out = self
            .person
            .customer
            .state
            .state()
            .is_some_and(|s| s.opted_out);
        if opted_out && self.plan.opt_in {
            let command = CustomerCommand::OptIntoBroadcasts { at: self.t };
            self.customer_does(&command, self.customer_actor())?;
            self.wait(5, 60);
        }
        if self.plan.profile_change {
            self.person.profile = text::changed_profile(self.rng, &self.person.profile);
        }
        Ok(())
    }

    /// Resolve, rating, reopen, close, and what the customer does after.
    fn resolve(mut self, agent: AgentId) -> Result<(), GenerateError> {
        let as_agent = TicketActor::Agent { agent_id: agent };
        if self.plan.tag_removal {
            let tag = self
                .ticket
                .state
                .state()
                .and_then(|s| s.tags.iter().next().cloned());
            if let Some(tag) = tag {
                self.agent_does(
                    agent,
                    TicketCommand::RemoveTag {
                        tag,
                        by: agent,
                        at: self.t,
                    },
                )?;
            }
        }
        self.wait(60, 1_800);
        if self.over() {
            return self.stop();
        }
        self.agent_does(
            agent,
            TicketCommand::Resolve {
                by: as_agent,
                at: self.t,
            },
        )?;
        self.maybe_rate(self.plan.rate)?;

        if self.plan.reopen_by_customer {
            let half_window =
                u64::try_from(self.world.reopen_window.num_seconds() / 2).unwrap_or(0);
            self.wait(600, half_window.max(600));
            if self.over() {
                return self.stop();
            }
            self.say(false)?;
            self.wait_skewed(120, 4 * 3_600);
            if self.over() {
                return self.stop();
            }
            self.reply(agent)?;
            self.wait(60, 3_600);
            self.agent_does(
                agent,
                TicketCommand::Resolve {
                    by: as_agent,
                    at: self.t,
                },
            )?;
            let rate = self.rng.chance(0.3);
            self.maybe_rate(rate)?;
        }
        if self.plan.reopen_by_agent {
            self.wait(600, 7_200);
            self.agent_does(
                agent,
                TicketCommand::Reopen {
                    by: as_agent,
                    at: self.t,
                },
            )?;
            self.wait(60, 600);
            self.reply(agent)?;
            self.wait(60, 1_800);
            self.agent_does(
                agent,
                TicketCommand::Resolve {
                    by: as_agent,
                    at: self.t,
                },
            )?;
        }

        if self.plan.system_close {
            let resolved_at = self.ticket.state.state().and_then(|s| s.resolved_at);
            let due = resolved_at.unwrap_or(self.t) + self.world.reopen_window;
            self.t = self.t.max(due) + self.rng.secs(60, 6 * 3_600);
            if self.over() {
                return self.stop();
            }
            let command = TicketCommand::Close {
                by: TicketActor::System,
                at: self.t,
            };
            self.ticket_does(command, Actor::system("auto-close"))?;
        } else {
            self.wait_skewed(600, 86_400);
            if self.over() {
                return self.stop();
            }
            self.agent_does(
                agent,
                TicketCommand::Close {
                    by: as_agent,
                    at: self.t,
                },
            )?;
        }

        if self.plan.opt_out {
            self.wait(3_600, 3 * 86_400);
            if !self.over() {
                let command = CustomerCommand::OptOutOfBroadcasts { at: self.t };
                self.customer_does(&command, self.customer_actor())?;
            }
        }
        self.person.free_at = self.t + self.rng.secs_skewed(3_600, 20 * 86_400);
        Ok(())
    }

    /// A spammer: banned and their ticket closed; sometimes let back in days later.
    fn spam(mut self) -> Result<(), GenerateError> {
        self.wait(120, 3_600);
        let lead = self.world.lead(self.rng);
        let ban = CustomerCommand::Ban {
            by: lead,
            reason: Some("Spam links".to_owned()),
            at: self.t,
        };
        self.customer_does(&ban, agent_actor(lead))?;
        self.wait(5, 60);
        let close = TicketCommand::Close {
            by: TicketActor::Agent { agent_id: lead },
            at: self.t,
        };
        self.agent_does(lead, close)?;
        if self.plan.unban {
            self.wait(86_400, 10 * 86_400);
            if !self.over() {
                let unban = CustomerCommand::Unban {
                    by: lead,
                    at: self.t,
                };
                self.customer_does(&unban, agent_actor(lead))?;
                self.person.free_at = self.t + self.rng.secs(3_600, 5 * 86_400);
                return Ok(());
            }
        }
        self.person.retired = true;
        Ok(())
    }

    /// The period ended mid-lifecycle: the ticket stays where it is, the customer is done.
    fn stop(self) -> Result<(), GenerateError> {
        self.person.retired = true;
        Ok(())
    }

    fn over(&self) -> bool {
        self.t > self.world.end
    }

    fn wait(&mut self, lo: u64, hi: u64) {
        self.t += self.rng.secs(lo, hi);
    }

    fn wait_skewed(&mut self, lo: u64, hi: u64) {
        self.t += self.rng.secs_skewed(lo, hi);
    }

    fn customer_actor(&self) -> Actor {
        Actor::new(ActorKind::Customer, self.person.id.to_string())
    }

    fn stamp(&mut self, actor: Actor) -> Stamp {
        Stamp {
            at: self.t,
            actor,
            correlation: self.rng.uuid_v7(self.t),
            causation: None,
        }
    }

    /// Queues a flow decision and folds it into the customer and the ticket.
    fn commit(
        &mut self,
        decision: Decision,
        stamp: &Stamp,
    ) -> Result<Vec<(Uuid, &'static str)>, GenerateError> {
        let mut writes = Vec::with_capacity(decision.writes.len());
        for write in decision.writes {
            let before = if write.stream == self.person.customer.stream {
                self.person.customer.version
            } else if write.stream == self.ticket.stream {
                self.ticket.version
            } else {
                return Err(GenerateError::rejected(
                    write.stream,
                    &"the decision wrote a stream the simulation does not track",
                ));
            };
            for event in &write.events {
                match event {
                    AnyEvent::Customer(event) => {
                        self.person.customer.apply(std::slice::from_ref(event))
                    }
                    AnyEvent::Ticket(event) => self.ticket.apply(std::slice::from_ref(event)),
                    _ => {}
                }
            }
            writes.push(Write {
                stream: write.stream,
                before,
                events: write.events,
            });
        }
        self.outbox.push(writes, stamp)
    }

    fn ticket_does(
        &mut self,
        command: TicketCommand,
        actor: Actor,
    ) -> Result<Vec<(Uuid, &'static str)>, GenerateError> {
        let stamp = self.stamp(actor);
        self.ticket_does_as(command, &stamp)
    }

    fn ticket_does_as(
        &mut self,
        command: TicketCommand,
        stamp: &Stamp,
    ) -> Result<Vec<(Uuid, &'static str)>, GenerateError> {
        let decision = decide_for_ticket(&self.person.customer.state, &self.ticket.state, &command)
            .map_err(|error| GenerateError::rejected(self.ticket.stream, &error))?;
        self.commit(decision, stamp)
    }

    fn agent_does(
        &mut self,
        agent: AgentId,
        command: TicketCommand,
    ) -> Result<Vec<(Uuid, &'static str)>, GenerateError> {
        self.ticket_does(command, agent_actor(agent))
    }

    fn customer_does(
        &mut self,
        command: &CustomerCommand,
        actor: Actor,
    ) -> Result<(), GenerateError> {
        let stamp = self.stamp(actor);
        decide(self.outbox, &mut self.person.customer, command, &stamp).map(|_| ())
    }

    /// The customer writes on Telegram; the flow routes the message (and opens, reopens or
    /// posts to the ticket).
    fn say(&mut self, opener: bool) -> Result<(TelegramMessageId, MessageContent), GenerateError> {
        let content = text::customer_message(self.rng, opener);
        let telegram_message_id = self.person.next_tg();
        let reply_to = if self.rng.chance(0.1) {
            self.rng.choose(&self.recent).copied()
        } else {
            None
        };
        let command = RouteCustomerMessage {
            customer: self.person.id,
            profile: self.person.profile.clone(),
            category: self.category,
            new_ticket_id: self.ticket_id,
            channel: Channel::Telegram,
            message: CustomerMessage {
                message_id: MessageId(self.rng.uuid_v7(self.t)),
                telegram_message_id,
                reply_to,
                content: content.clone(),
            },
            reopen_window: self.world.reopen_window,
            at: self.t,
        };
        let opened = self.ticket.state.state().is_some();
        let target = message_target(
            &self.person.customer.state,
            self.category,
            self.world.reopen_window,
            self.t,
        );
        let ticket = match target {
            MessageTarget::Existing(id) if id == self.ticket_id => Some(&self.ticket.state),
            MessageTarget::New if !opened => None,
            _ => {
                return Err(GenerateError::rejected(
                    self.ticket.stream,
                    &format!("a customer message would go to {target:?}"),
                ));
            }
        };
        let routed = route_customer_message(&self.person.customer.state, ticket, &command)
            .map_err(|error| GenerateError::rejected(self.ticket.stream, &error))?;
        let stamp = self.stamp(self.customer_actor());
        self.commit(routed.decision, &stamp)?;
        self.recent.push(telegram_message_id);
        self.said += 1;
        Ok((telegram_message_id, content))
    }

    fn say_maybe_edited(&mut self) -> Result<(), GenerateError> {
        let (tg, content) = self.say(false)?;
        if self.rng.chance(0.04) {
            self.edit(tg, &content)?;
        }
        Ok(())
    }

    fn edit(
        &mut self,
        telegram_message_id: TelegramMessageId,
        content: &MessageContent,
    ) -> Result<(), GenerateError> {
        self.wait(10, 120);
        let command = TicketCommand::EditCustomerMessage(EditCustomerMessage {
            telegram_message_id,
            content: text::edited(self.rng, content),
            at: self.t,
        });
        self.ticket_does(command, self.customer_actor()).map(|_| ())
    }

    fn note(&mut self, agent: AgentId) -> Result<(), GenerateError> {
        let command = TicketCommand::AddInternalNote(AddInternalNote {
            note_id: MessageId(self.rng.uuid_v7(self.t)),
            agent,
            text: text::note(self.rng),
            at: self.t,
        });
        self.agent_does(agent, command)?;
        self.wait(10, 300);
        Ok(())
    }

    /// The assignee passes the ticket on through a lead: unassigned, then assigned anew.
    fn hand_over(&mut self, from: AgentId) -> Result<AgentId, GenerateError> {
        let lead = self.world.lead(self.rng);
        self.agent_does(
            lead,
            TicketCommand::Unassign {
                by: lead,
                at: self.t,
            },
        )?;
        let to = self.world.agent_for(self.rng, self.category);
        let to = if to == from { lead } else { to };
        self.wait(30, 900);
        self.agent_does(
            lead,
            TicketCommand::Assign {
                agent: to,
                by: lead,
                at: self.t,
            },
        )?;
        Ok(to)
    }

    /// An agent reply (sometimes from a template, sometimes with media), then its delivery.
    fn reply(&mut self, agent: AgentId) -> Result<(), GenerateError> {
        let template = if self.rng.chance(0.25) {
            self.rng.choose(&self.world.templates).cloned()
        } else {
            None
        };
        let media = self.rng.chance(0.08);
        let content = text::reply(self.rng, template.as_ref().map(|(_, t)| t.as_str()), media);
        let message_id = MessageId(self.rng.uuid_v7(self.t));
        let command = TicketCommand::ReplyAsAgent(ReplyAsAgent {
            message_id,
            agent,
            template: template.map(|(id, _)| id),
            content,
            at: self.t,
        });
        let stamp = self.stamp(agent_actor(agent));
        let ids = self.ticket_does_as(command, &stamp)?;
        self.said += 1;
        let cause = ids
            .iter()
            .find(|(_, event_type)| *event_type == "ticket.agent_replied")
            .map(|(id, _)| *id);
        self.deliver(message_id, media, &stamp, cause)
    }

    /// What the delivery worker records for a reply: delivered mostly; refused when the
    /// customer blocked the bot (noted on the customer too), after a rate limit (then retried)
    /// or for a bad file.
    fn deliver(
        &mut self,
        message_id: MessageId,
        media: bool,
        reply: &Stamp,
        cause: Option<Uuid>,
    ) -> Result<(), GenerateError> {
        self.wait(1, 4);
        let blocked = self
            .person
            .customer
            .state
            .state()
            .is_some_and(|s| s.blocked_bot);
        let blocks_now = self.plan.block && !self.blocked_once && self.said >= 4;
        if blocked || blocks_now {
            self.fail(
                message_id,
                reply,
                cause,
                "Forbidden: bot was blocked by the user",
                false,
            )?;
            if !blocked {
                self.blocked_once = true;
                let stamp = self.bot_stamp(reply, cause);
                let command = CustomerCommand::RecordBotBlocked { at: self.t };
                decide(self.outbox, &mut self.person.customer, &command, &stamp)?;
            }
            return Ok(());
        }
        let rate_limited = (self.plan.force_details && !self.failed_once) || self.rng.chance(0.03);
        if rate_limited {
            self.failed_once = true;
            self.fail(
                message_id,
                reply,
                cause,
                "Too Many Requests: retry after 7",
                true,
            )?;
            self.wait(7, 40);
            if self.rng.chance(0.9) {
                self.delivered(message_id, reply, cause)?;
            }
            return Ok(());
        }
        if media && self.rng.chance(0.05) {
            let reason = "Bad Request: wrong file identifier/HTTP URL specified";
            return self.fail(message_id, reply, cause, reason, false);
        }
        self.delivered(message_id, reply, cause)
    }

    fn bot_stamp(&self, reply: &Stamp, cause: Option<Uuid>) -> Stamp {
        Stamp {
            at: self.t,
            actor: bot(),
            correlation: reply.correlation,
            causation: cause,
        }
    }

    fn delivered(
        &mut self,
        message_id: MessageId,
        reply: &Stamp,
        cause: Option<Uuid>,
    ) -> Result<(), GenerateError> {
        let telegram_message_id = self.person.next_tg();
        self.recent.push(telegram_message_id);
        let command = TicketCommand::RecordDelivery {
            message_id,
            telegram_message_id,
            at: self.t,
        };
        let stamp = self.bot_stamp(reply, cause);
        self.ticket_does_as(command, &stamp).map(|_| ())
    }

    fn fail(
        &mut self,
        message_id: MessageId,
        reply: &Stamp,
        cause: Option<Uuid>,
        reason: &str,
        retryable: bool,
    ) -> Result<(), GenerateError> {
        let command = TicketCommand::RecordDeliveryFailure {
            message_id,
            reason: reason.to_owned(),
            retryable,
            at: self.t,
        };
        let stamp = self.bot_stamp(reply, cause);
        self.ticket_does_as(command, &stamp).map(|_| ())
    }

    fn maybe_rate(&mut self, rate: bool) -> Result<(), GenerateError> {
        if !rate {
            return Ok(());
        }
        self.wait_skewed(60, 7_200);
        let rating = self
            .rng
            .weighted(&[(5u8, 50), (4, 25), (3, 10), (2, 6), (1, 9)])
            .unwrap_or(5);
        let comment = self.rng.chance(0.3).then(|| text::comment(self.rng));
        let command = TicketCommand::Rate {
            rating,
            comment,
            at: self.t,
        };
        self.ticket_does(command, self.customer_actor()).map(|_| ())
    }
}
