//! The multi-stream commands of [`domain::flow`]: routing a customer message and any ticket
//! command, each loading a customer and at most one ticket and appending the [`Decision`]'s
//! writes to both streams in one atomic request.

use domain::customer::Customer;
use domain::flow::{
    Decision, FlowError, MessageTarget, RouteCustomerMessage, RouteOutcome, decide_for_ticket,
    message_target, route_customer_message,
};
use domain::ticket::{Ticket, TicketCommand, TicketEvent};
use domain::{AnyEvent, StreamId, TicketId};
use eventlog::EventLog;

use super::attempt::{Attempt, Plan};
use super::context::CommandContext;
use super::outcome::{CommandError, Executed};
use super::service::CommandService;

/// Where a customer message went and what was written.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRouted {
    /// The ticket the message went to.
    pub ticket_id: TicketId,
    /// What happened to it: posted, reopened, opened, or already posted before.
    pub outcome: RouteOutcome,
    /// The events written to the customer's and the ticket's streams.
    pub executed: Executed<AnyEvent>,
}

impl<L: EventLog> CommandService<L> {
    /// Routes a message from a customer on Telegram: loads the customer, loads the ticket
    /// [`message_target`] names (if any), asks [`route_customer_message`], and appends the
    /// customer's and the ticket's new events in one request. Two messages racing to open a
    /// ticket conflict on the customer stream; the loser is decided again and posts to the
    /// ticket the winner opened.
    ///
    /// # Errors
    /// [`CommandError::Rejected`] with the [`FlowError`] (a banned customer, invalid input…),
    /// and the other [`CommandError`]s as for [`CommandService::execute`].
    #[tracing::instrument(skip_all, fields(customer.id = %cmd.customer))]
    pub async fn route_customer_message(
        &self,
        cmd: &RouteCustomerMessage,
        ctx: &CommandContext,
    ) -> Result<MessageRouted, CommandError<FlowError>> {
        let customer_stream = cmd.customer.stream().name();
        let customer_stream = customer_stream.as_str();
        self.run(|fresh| async move {
            let customer = match self
                .load::<Customer, FlowError>(customer_stream, fresh)
                .await
            {
                Ok(customer) => customer,
                Err(error) => return Attempt::Failed(error),
            };
            let target = message_target(&customer.state, cmd.category, cmd.reopen_window, cmd.at);
            let ticket = match target {
                MessageTarget::Existing(id) => {
                    match self
                        .load::<Ticket, FlowError>(&id.stream().name(), fresh)
                        .await
                    {
                        Ok(ticket) => Some(ticket),
                        Err(error) => return Attempt::Failed(error),
                    }
                }
                MessageTarget::New => None,
            };
            let cached = customer.cached || ticket.as_ref().is_some_and(|t| t.cached);
            let routed =
                route_customer_message(&customer.state, ticket.as_ref().map(|t| &t.state), cmd);
            match routed {
                Ok(routed) => {
                    let mut plan = Plan::new().and_read(&customer);
                    if let Some(ticket) = &ticket {
                        plan = plan.and_read(ticket);
                    }
                    let plan = with_decision(plan, routed.decision);
                    if cached && plan.checks_nothing(ctx) {
                        return Attempt::Recheck;
                    }
                    let outcome = self.commit(plan, ctx).await;
                    if let Attempt::Done(executed) = &outcome {
                        self.keep(customer, executed, AnyEvent::as_customer);
                        if let Some(ticket) = ticket {
                            self.keep(ticket, executed, AnyEvent::as_ticket);
                        }
                    }
                    outcome.map(|executed| MessageRouted {
                        // A replayed append reports what the first one did.
                        outcome: replayed_outcome(&executed).unwrap_or(routed.outcome),
                        ticket_id: ticket_written(&executed).unwrap_or(routed.ticket_id),
                        executed,
                    })
                }
                Err(_) if cached => Attempt::Recheck,
                Err(rejection) => {
                    self.keep_as_read(customer);
                    if let Some(ticket) = ticket {
                        self.keep_as_read(ticket);
                    }
                    match self.replay(ctx).await {
                        // A repeat of a message routed before: answer as the first time, if the
                        // first time wrote to a ticket.
                        Ok(Some(executed)) => match ticket_written(&executed) {
                            Some(ticket_id) => Attempt::Done(MessageRouted {
                                outcome: replayed_outcome(&executed)
                                    .unwrap_or(RouteOutcome::AlreadyPosted),
                                ticket_id,
                                executed,
                            }),
                            None => Attempt::Failed(CommandError::Rejected(rejection)),
                        },
                        Ok(None) => Attempt::Failed(CommandError::Rejected(rejection)),
                        Err(error) => Attempt::Failed(error),
                    }
                }
            }
        })
        .await
    }

    /// Executes any ticket command with its effect on the customer's stream (see
    /// [`decide_for_ticket`]): loads the ticket and its customer, decides, and appends both
    /// streams' events in one request, expecting the versions read on both. `ticket_id` must
    /// be the ticket the command is for (for [`TicketCommand::Open`], the id inside it).
    ///
    /// # Errors
    /// [`CommandError::Rejected`] with the [`FlowError`] (a reply to a closed ticket, a second
    /// active ticket in a category…), and the other [`CommandError`]s as for
    /// [`CommandService::execute`].
    #[tracing::instrument(skip_all, fields(ticket.id = %ticket_id))]
    pub async fn execute_ticket(
        &self,
        ticket_id: TicketId,
        command: &TicketCommand,
        ctx: &CommandContext,
    ) -> Result<Executed<AnyEvent>, CommandError<FlowError>> {
        let ticket_stream = ticket_id.stream().name();
        let ticket_stream = ticket_stream.as_str();
        self.run(|fresh| async move {
            let ticket = match self.load::<Ticket, FlowError>(ticket_stream, fresh).await {
                Ok(ticket) => ticket,
                Err(error) => return Attempt::Failed(error),
            };
            let owner = match (ticket.state.state(), command) {
                (Some(state), _) => Some(state.customer),
                (None, TicketCommand::Open(open)) => Some(open.customer),
                (None, _) => None,
            };
            let customer = match owner {
                Some(owner) => {
                    match self
                        .load::<Customer, FlowError>(&owner.stream().name(), fresh)
                        .await
                    {
                        Ok(customer) => Some(customer),
                        Err(error) => return Attempt::Failed(error),
                    }
                }
                // An unopened ticket has no customer to load: the decision rejects the command.
                None => None,
            };
            let cached = ticket.cached || customer.as_ref().is_some_and(|c| c.cached);
            let no_customer = Customer::default();
            let customer_state = customer.as_ref().map_or(&no_customer, |c| &c.state);
            match decide_for_ticket(customer_state, &ticket.state, command) {
                Ok(decision) => {
                    let mut plan = Plan::new().and_read(&ticket);
                    // The customer's version is checked only when the decision notes something
                    // there. A command that writes only the ticket (a reply, a note, a tag)
                    // depends on no customer fact that can change: registration is final, and
                    // the one-active-ticket rule moves only with notes. So a concurrent change to
                    // the customer (a new profile, a ban) does not make such a command retry.
                    if let Some(customer) = &customer
                        && decision
                            .writes
                            .iter()
                            .any(|write| write.stream.name() == customer.stream)
                    {
                        plan = plan.and_read(customer);
                    }
                    let plan = with_decision(plan, decision);
                    if cached && plan.checks_nothing(ctx) {
                        return Attempt::Recheck;
                    }
                    let outcome = self.commit(plan, ctx).await;
                    if let Attempt::Done(executed) = &outcome {
                        self.keep(ticket, executed, AnyEvent::as_ticket);
                        if let Some(customer) = customer {
                            self.keep(customer, executed, AnyEvent::as_customer);
                        }
                    }
                    outcome
                }
                Err(_) if cached => Attempt::Recheck,
                Err(rejection) => {
                    self.keep_as_read(ticket);
                    if let Some(customer) = customer {
                        self.keep_as_read(customer);
                    }
                    self.rejected(rejection, ctx).await
                }
            }
        })
        .await
    }
}

/// The plan with a decision's writes, stream by stream.
fn with_decision(plan: Plan<AnyEvent>, decision: Decision) -> Plan<AnyEvent> {
    decision.writes.into_iter().fold(plan, |plan, write| {
        plan.write(write.stream.name(), write.events)
    })
}

/// The ticket whose stream an execution wrote to.
fn ticket_written(executed: &Executed<AnyEvent>) -> Option<TicketId> {
    executed
        .events
        .iter()
        .find_map(|applied| match applied.stream.parse::<StreamId>() {
            Ok(StreamId::Ticket(id)) => Some(id),
            _ => None,
        })
}

/// What a replayed routing did, told by the first ticket event it wrote (`None` when the
/// execution is not a replay or wrote no ticket event).
fn replayed_outcome(executed: &Executed<AnyEvent>) -> Option<RouteOutcome> {
    if !executed.replayed {
        return None;
    }
    let first = executed.events.iter().find_map(|a| a.event.as_ticket())?;
    Some(match first {
        TicketEvent::Opened(_) => RouteOutcome::Opened,
        TicketEvent::Reopened(_) => RouteOutcome::Reopened,
        _ => RouteOutcome::Posted,
    })
}
