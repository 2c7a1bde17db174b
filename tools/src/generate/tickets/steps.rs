//! The steps a story is told with: each asks a decider (or the two-stream flow) and queues
//! what it decided, with the actor and correlation of the request that caused it.

use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::CustomerCommand;
use domain::flow::{
    Decision, MessageTarget, RouteCustomerMessage, decide_for_ticket, message_target,
    route_customer_message,
};
use domain::ticket::{AddInternalNote, Channel, EditCustomerMessage, ReplyAsAgent, TicketCommand};
use domain::{AgentId, AnyEvent, MessageId};
use eventlog::{Actor, ActorKind};
use uuid::Uuid;

use super::super::error::GenerateError;
use super::super::outbox::{Stamp, Write, decide};
use super::super::text;
use super::{Life, agent_actor, bot};

impl Life<'_> {
    pub(super) fn over(&self) -> bool {
        self.t > self.world.end
    }

    pub(super) fn wait(&mut self, lo: u64, hi: u64) {
        self.t += self.rng.secs(lo, hi);
    }

    pub(super) fn wait_skewed(&mut self, lo: u64, hi: u64) {
        self.t += self.rng.secs_skewed(lo, hi);
    }

    pub(super) fn customer_actor(&self) -> Actor {
        Actor::new(ActorKind::Customer, self.person.id.to_string())
    }

    pub(super) fn stamp(&mut self, actor: Actor) -> Stamp {
        Stamp {
            at: self.t,
            actor,
            correlation: self.rng.uuid_v7(self.t),
            causation: None,
        }
    }

    /// Queues a flow decision and folds it into the customer and the ticket.
    pub(super) fn commit(
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

    pub(super) fn ticket_does(
        &mut self,
        command: TicketCommand,
        actor: Actor,
    ) -> Result<Vec<(Uuid, &'static str)>, GenerateError> {
        let stamp = self.stamp(actor);
        self.ticket_does_as(command, &stamp)
    }

    pub(super) fn ticket_does_as(
        &mut self,
        command: TicketCommand,
        stamp: &Stamp,
    ) -> Result<Vec<(Uuid, &'static str)>, GenerateError> {
        let decision = decide_for_ticket(&self.person.customer.state, &self.ticket.state, &command)
            .map_err(|error| GenerateError::rejected(self.ticket.stream, &error))?;
        self.commit(decision, stamp)
    }

    pub(super) fn agent_does(
        &mut self,
        agent: AgentId,
        command: TicketCommand,
    ) -> Result<Vec<(Uuid, &'static str)>, GenerateError> {
        self.ticket_does(command, agent_actor(agent))
    }

    pub(super) fn customer_does(
        &mut self,
        command: &CustomerCommand,
        actor: Actor,
    ) -> Result<(), GenerateError> {
        let stamp = self.stamp(actor);
        decide(self.outbox, &mut self.person.customer, command, &stamp).map(|_| ())
    }

    /// The customer writes on Telegram; the flow routes the message (and opens, reopens or
    /// posts to the ticket).
    pub(super) fn say(
        &mut self,
        opener: bool,
    ) -> Result<(TelegramMessageId, MessageContent), GenerateError> {
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

    /// A banned customer writes again: the message is kept on their stream and goes nowhere.
    pub(super) fn say_while_banned(&mut self) -> Result<(), GenerateError> {
        let message = CustomerMessage {
            message_id: MessageId(self.rng.uuid_v7(self.t)),
            telegram_message_id: self.person.next_tg(),
            reply_to: None,
            content: text::customer_message(self.rng, false),
        };
        let command = CustomerCommand::RecordRefusedMessage {
            message,
            at: self.t,
        };
        self.customer_does(&command, self.customer_actor())
    }

    pub(super) fn say_maybe_edited(&mut self) -> Result<(), GenerateError> {
        let (tg, content) = self.say(false)?;
        if self.rng.chance(0.04) {
            self.edit(tg, &content)?;
        }
        Ok(())
    }

    pub(super) fn edit(
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

    pub(super) fn note(&mut self, agent: AgentId) -> Result<(), GenerateError> {
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
    pub(super) fn hand_over(&mut self, from: AgentId) -> Result<AgentId, GenerateError> {
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
    pub(super) fn reply(&mut self, agent: AgentId) -> Result<(), GenerateError> {
        let template = if self.rng.chance(0.25) {
            self.rng.choose(&self.world.templates).cloned()
        } else {
            None
        };
        let media = self.rng.chance(0.08);
        let content = text::reply(self.rng, template.as_ref().map(|(_, t)| t.as_str()), media);
        let message_id = MessageId(self.rng.uuid_v7(self.t));
        let command = TicketCommand::ReplyAsAgent(ReplyAsAgent {
            reply_to: None,
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
        self.deliver(agent, message_id, media, &stamp, cause)
    }

    /// What the delivery worker records for a reply: delivered mostly; refused when the
    /// customer blocked the bot (noted on the customer too), after an outage outlasting the
    /// retries (then, mostly, sent again at the agent's request) or for a bad file.
    pub(super) fn deliver(
        &mut self,
        agent: AgentId,
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
        // In the showcase the rate-limited retry comes first, so both are sure to happen.
        let blocks_now = self.plan.block
            && !self.blocked_once
            && self.said >= 4
            && (self.failed_once || !self.plan.force_details);
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
                "network error: could not connect to Telegram (gave up after 1712 attempts)",
                true,
            )?;
            self.wait(7, 40);
            if self.rng.chance(0.9) {
                let ids = self.agent_does(
                    agent,
                    TicketCommand::RetryDelivery {
                        message_id,
                        by: agent,
                        at: self.t,
                    },
                )?;
                let retry = ids.first().map(|(id, _)| *id).or(cause);
                self.delivered(message_id, reply, retry)?;
            }
            return Ok(());
        }
        if media && self.rng.chance(0.05) {
            let reason = "Bad Request: wrong file identifier/HTTP URL specified";
            return self.fail(message_id, reply, cause, reason, false);
        }
        self.delivered(message_id, reply, cause)
    }

    pub(super) fn bot_stamp(&self, reply: &Stamp, cause: Option<Uuid>) -> Stamp {
        Stamp {
            at: self.t,
            actor: bot(),
            correlation: reply.correlation,
            causation: cause,
        }
    }

    pub(super) fn delivered(
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

    pub(super) fn fail(
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

    pub(super) fn maybe_rate(&mut self, rate: bool) -> Result<(), GenerateError> {
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
