//! Customer edits, in whatever order Telegram delivers them.
//!
//! An edit names the message it changes by its Telegram id, so it can only be recorded on the
//! ticket holding that message. Telegram may deliver the edit first: webhook deliveries run
//! side by side, and a message whose first delivery failed comes again later. Such an edit is
//! kept in `telegram_early_edits` (not on the log: it changes nothing yet) and applied, in the
//! order the edits were made, right after its message is recorded; the ticket then shows the
//! message as first sent, with the edits in its history, exactly as if they had come in order.
//!
//! The two sides meet without a lock: the edit is kept, then the tickets are looked at again;
//! the message is recorded, then the kept edits are looked up. Whichever comes second sees the
//! other, so no edit is left behind; applying one twice writes nothing (its key is the edit
//! update's). An edit whose message never comes (sent before the bot knew the chat, or on a
//! closed ticket) is forgotten with the old handled updates.

use app::commands::CommandError;
use chrono::{DateTime, Utc};
use domain::content::{MessageContent, TelegramMessageId};
use domain::flow::FlowError;
use domain::ticket::{EditCustomerMessage, TicketCommand, TicketError};

use super::{Handled, InboundError, Inbox, customer_context};
use crate::store::EarlyEdit;
use crate::update::Sender;

impl Inbox {
    pub(super) async fn edited(
        &self,
        sender: &Sender,
        telegram_message_id: TelegramMessageId,
        content: MessageContent,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<Handled, InboundError> {
        if let Some(handled) = self
            .apply_edit(sender, telegram_message_id, &content, at, key)
            .await?
        {
            return Ok(handled);
        }
        let edit = EarlyEdit {
            key: key.to_owned(),
            content,
            at,
        };
        self.early_edits
            .keep(sender.customer, telegram_message_id, &edit)
            .await?;
        // The message may have been recorded since we looked, before the edit was kept.
        if let Some(handled) = self
            .apply_edit(sender, telegram_message_id, &edit.content, at, key)
            .await?
        {
            self.early_edits
                .forget(sender.customer, telegram_message_id, key)
                .await?;
            return Ok(handled);
        }
        // The key is `telegram:{bot}:{update id}:{stamp}`: the update id, for the log.
        let update_id = key.split(':').nth(2).unwrap_or_default();
        tracing::info!(
            update = "edited_message",
            update_id,
            "an edit arrived before its message; kept until the message is recorded"
        );
        Ok(Handled::Recorded)
    }

    /// Applies the edits kept for the message `telegram_message_id` that was just recorded.
    pub(super) async fn apply_early_edits(
        &self,
        sender: &Sender,
        telegram_message_id: TelegramMessageId,
    ) -> Result<(), InboundError> {
        for edit in self
            .early_edits
            .of(sender.customer, telegram_message_id)
            .await?
        {
            let applied = self
                .apply_edit(
                    sender,
                    telegram_message_id,
                    &edit.content,
                    edit.at,
                    &edit.key,
                )
                .await?;
            if applied.is_some() {
                self.early_edits
                    .forget(sender.customer, telegram_message_id, &edit.key)
                    .await?;
            }
        }
        Ok(())
    }

    /// Records the edit on the ticket holding the message; `None` when no ticket of the
    /// customer that is not closed holds it (yet).
    async fn apply_edit(
        &self,
        sender: &Sender,
        telegram_message_id: TelegramMessageId,
        content: &MessageContent,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<Option<Handled>, InboundError> {
        let customer = self.customer(sender.customer).await?;
        let Some(state) = customer.state() else {
            return Ok(None);
        };
        if state.banned {
            return Ok(Some(Handled::Ignored("an edit from a banned customer")));
        }
        let command = TicketCommand::EditCustomerMessage(EditCustomerMessage {
            telegram_message_id,
            content: content.clone(),
            at,
        });
        let ctx = customer_context(sender.customer).idempotent(key);
        // Newest tickets first: ticket ids are UUID v7, ordered by creation.
        for ticket in state.tickets.keys().rev() {
            match self.commands.execute_ticket(*ticket, &command, &ctx).await {
                Ok(_) => return Ok(Some(Handled::Recorded)),
                Err(CommandError::Rejected(FlowError::Ticket(
                    TicketError::UnknownMessage | TicketError::Closed,
                ))) => {}
                Err(CommandError::Rejected(rejection)) => {
                    return Ok(Some(Handled::Refused(rejection.to_string())));
                }
                Err(error) => return Err(InboundError::from_command(&error)),
            }
        }
        Ok(None)
    }
}
