//! The story of one ticket: opening, triage, the conversation, resolve, rating, reopen,
//! close, and what the customer does after; or a spammer's short story.

use domain::customer::CustomerCommand;
use domain::ticket::{Actor as TicketActor, Priority, TicketCommand, WorkStatus};
use domain::{AgentId, CategoryId};
use eventlog::Actor;

use super::super::error::GenerateError;
use super::super::text;
use super::{Life, agent_actor};

impl Life<'_> {
    pub(super) fn run(mut self) -> Result<(), GenerateError> {
        if self.person.customer.state.state().is_some() {
            self.back_again()?;
        }
        let (tg, content) = self.say(true)?;
        // The customer answers the category buttons of the greeting: their next messages
        // keep going to this category.
        if self.category.is_some() && (self.plan.force_details || self.rng.chance(0.2)) {
            let command = CustomerCommand::ChooseCategory {
                category: self.category,
                at: self.t,
            };
            self.customer_does(&command, self.customer_actor())?;
        }
        // Some came through a deep link (`/start <payload>`): where they came from.
        if self.plan.force_details || self.rng.chance(0.1) {
            const CAMPAIGNS: &[&str] = &["ads-spring", "ref-42", "newsletter_may", "qr-store-7"];
            let command = CustomerCommand::RecordStartPayload {
                payload: (*self.rng.pick(CAMPAIGNS)).to_owned(),
                at: self.t,
            };
            self.customer_does(&command, self.customer_actor())?;
        }
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
    pub(super) fn back_again(&mut self) -> Result<(), GenerateError> {
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
    pub(super) fn resolve(mut self, agent: AgentId) -> Result<(), GenerateError> {
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
        // The showcase customer then asks to be forgotten (their first and only ticket so far);
        // the generator records it, and has no key to delete.
        if self.plan.force_details && !self.over() {
            self.wait(3_600, 86_400);
            let lead = self.world.lead(self.rng);
            let command = CustomerCommand::Forget {
                tickets: vec![self.ticket_id],
                at: self.t,
            };
            self.customer_does(&command, agent_actor(lead))?;
        }
        self.person.free_at = self.t + self.rng.secs_skewed(3_600, 20 * 86_400);
        Ok(())
    }

    /// A spammer: banned and their ticket closed; sometimes let back in days later.
    pub(super) fn spam(mut self) -> Result<(), GenerateError> {
        self.wait(120, 3_600);
        let lead = self.world.lead(self.rng);
        let ban = CustomerCommand::Ban {
            by: lead,
            reason: Some("Spam links".to_owned()),
            at: self.t,
        };
        self.customer_does(&ban, agent_actor(lead))?;
        // Spammers keep writing.
        self.wait(5, 60);
        self.say_while_banned()?;
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
    pub(super) fn stop(self) -> Result<(), GenerateError> {
        self.person.retired = true;
        Ok(())
    }
}
