//! The live ticket list behind `ticketsChanged`: the hub's batches of changed rows, kept to
//! the rows the caller may see and the filter names.
//!
//! A list that falls so far behind that the hub's channel dropped batches for it
//! (`RecvError::Lagged`) does not skip them: it reads the log after the last batch it applied,
//! takes the current row of every ticket with an event there
//! ([`crate::live::LiveHub::tickets_since`]) and sends those as one batch. The batches still
//! waiting in its channel that the catch-up covers are dropped, so no row goes back in time;
//! once caught up the list shows what it would have shown had it never lagged.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use async_graphql::{ID, InputObject, Result, SimpleObject};
use eventlog::Position;
use futures::Stream;
use projections::tickets::TicketRow;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::ticket::Ticket;
use super::types::TicketStatusValue;
use crate::auth::TicketScope;
use crate::graphql::error::internal;
use crate::graphql::guard::LiveScope;
use crate::live::{LiveHub, TicketBatch};

/// Pause before a list whose catch-up found the database unreachable tries again.
const OUTAGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Which tickets a live list shows. Empty: all the caller may see.
#[derive(Debug, Clone, Default, InputObject)]
pub struct TicketsChangedFilter {
    /// Only these statuses.
    pub status: Option<Vec<TicketStatusValue>>,
    /// Only tickets assigned to this agent.
    pub assignee: Option<ID>,
    /// Only tickets in this category.
    pub category: Option<ID>,
    /// Only (`true`) or never (`false`) unassigned tickets.
    pub unassigned: Option<bool>,
}

pub(super) struct TicketMatcher {
    pub(super) status: Option<Vec<TicketStatusValue>>,
    pub(super) assignee: Option<Uuid>,
    pub(super) category: Option<Uuid>,
    pub(super) unassigned: Option<bool>,
    /// The caller's scope as of the batch being applied.
    pub(super) scope: TicketScope,
}

impl TicketMatcher {
    fn visible(&self, ticket: &TicketRow) -> bool {
        self.scope.covers(ticket.category_id)
    }

    fn matches(&self, ticket: &TicketRow) -> bool {
        self.status
            .as_ref()
            .is_none_or(|statuses| statuses.contains(&TicketStatusValue::from(ticket.status)))
            && self
                .assignee
                .is_none_or(|wanted| ticket.assignee_id == Some(wanted))
            && self
                .category
                .is_none_or(|wanted| ticket.category_id == Some(wanted))
            && self
                .unassigned
                .is_none_or(|unassigned| ticket.assignee_id.is_none() == unassigned)
    }
}

/// A ticket of a live list changed.
#[derive(Debug, Clone, SimpleObject)]
pub struct TicketChange {
    /// The log position the row reflects at least.
    pub cursor: String,
    /// Whether the ticket belongs in the list now; `false` means it just left it.
    pub in_filter: bool,
    /// The ticket as the read model has it now.
    pub ticket: Ticket,
}

/// The changes of a live list, from the hub's batches, starting at `head` (read before
/// `receiver` was taken), for a client that already shows the tickets `showing`. Each batch
/// is shown within the caller's scope as of its position (`access`). One error item ends it.
pub(super) fn changes(
    live: LiveHub,
    head: Position,
    receiver: broadcast::Receiver<Arc<TicketBatch>>,
    matcher: TicketMatcher,
    access: LiveScope,
    showing: HashSet<Uuid>,
) -> impl Stream<Item = Result<TicketChange>> + Send + 'static {
    let list = TicketList {
        live,
        access,
        receiver,
        matcher,
        shown: showing,
        ready: VecDeque::new(),
        applied: head,
        covered: Position::START,
        lagging: false,
        failed: false,
    };
    futures::stream::unfold(list, TicketList::next)
}

struct TicketList {
    live: LiveHub,
    access: LiveScope,
    receiver: broadcast::Receiver<Arc<TicketBatch>>,
    matcher: TicketMatcher,
    /// Tickets the client shows: last sent as in the filter, or named by it at the start.
    shown: HashSet<Uuid>,
    ready: VecDeque<TicketChange>,
    /// The last batch applied (at first the head when the list started): a catch-up reads the
    /// log after it.
    applied: Position,
    /// How far the last catch-up read: batches up to here carry rows older than it sent.
    covered: Position,
    /// The channel dropped batches: catch up from the log before taking the next.
    lagging: bool,
    failed: bool,
}

impl TicketList {
    async fn next(mut self) -> Option<(Result<TicketChange>, Self)> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(change) = self.ready.pop_front() {
                return Some((Ok(change), self));
            }
            let batch = if self.lagging {
                match self.live.tickets_since(self.applied).await {
                    Ok(batch) => {
                        self.lagging = false;
                        self.covered = batch.position;
                        Arc::new(batch)
                    }
                    Err(detail) if eventlog::is_unavailable(&detail) => {
                        // Caught up once the database is back: no batch is lost meanwhile.
                        tracing::debug!(%detail, "ticketsChanged: the database is unavailable; catching up again");
                        tokio::time::sleep(OUTAGE_PAUSE).await;
                        continue;
                    }
                    Err(detail) => {
                        self.failed = true;
                        let error = internal("a lagging ticket list cannot catch up", detail);
                        return Some((Err(error), self));
                    }
                }
            } else {
                match self.receiver.recv().await {
                    Ok(batch) if batch.position <= self.covered => continue,
                    Ok(batch) => batch,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(
                            missed,
                            "ticketsChanged subscriber lagged; catching up from the log"
                        );
                        self.lagging = true;
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            };
            self.applied = self.applied.max(batch.position);
            match self.access.at(batch.position).await {
                Ok(scope) => self.matcher.scope = scope,
                Err(error) => {
                    self.failed = true;
                    return Some((Err(error), self));
                }
            }
            self.apply(&batch);
        }
    }

    fn apply(&mut self, batch: &TicketBatch) {
        let cursor = batch.position.to_string();
        for ticket in &batch.tickets {
            if !self.matcher.visible(ticket) {
                continue;
            }
            let in_filter = self.matcher.matches(ticket);
            let was_shown = if in_filter {
                !self.shown.insert(ticket.id)
            } else {
                self.shown.remove(&ticket.id)
            };
            if in_filter || was_shown {
                self.ready.push_back(TicketChange {
                    cursor: cursor.clone(),
                    in_filter,
                    ticket: Ticket::new(Arc::clone(ticket)),
                });
            }
        }
    }
}
