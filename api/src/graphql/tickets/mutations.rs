//! Ticket mutations: reply, note, assign, status, priority, category, tags, and sending a
//! failed reply again.
//!
//! Each needs `WriteTickets`, an agent to do it in the name of (the events name the agent who
//! acted: the signed-in agent, or the admin who created the API token, see [`acting_agent`])
//! and a ticket the caller can see (`NOT_FOUND` otherwise, as for an unknown ticket). Callers
//! who see every ticket are not checked against the read model: the command itself rejects a ticket
//! the log does not have (`NOT_FOUND`), and a ticket just opened can be worked on before the
//! read model has caught up.

use app::commands::Executed;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use domain::agent::Agent;
use domain::content::{MediaKind, OutgoingMedia, ReplyContent};
use domain::settings::Settings;
use domain::ticket::{
    Actor, AddInternalNote, Priority, ReplyAsAgent, Ticket, TicketCommand, TicketEvent,
    TicketStatus, WorkStatus,
};
use domain::{AgentId, AnyEvent, CategoryId, MessageId, StreamId, TemplateId, TicketId};
use projections::tickets::Direction;
use uuid::Uuid;

use super::types::{PriorityValue, TicketStatusValue};
use crate::auth::Permission;
use crate::graphql::commands::{context, position, timed, uuid};
use crate::graphql::context::Api;
use crate::graphql::error::{self, Code, error, failed};
use crate::graphql::guard::{Need, acting_agent, may_work_on};

/// Media to send by Telegram file id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "MediaKind")]
pub enum MediaKindValue {
    /// A photo.
    Photo,
    /// A video.
    Video,
    /// A file.
    Document,
    /// A music file.
    Audio,
    /// A voice message.
    Voice,
    /// A GIF or silent video.
    Animation,
}

impl From<MediaKindValue> for MediaKind {
    fn from(kind: MediaKindValue) -> Self {
        match kind {
            MediaKindValue::Photo => MediaKind::Photo,
            MediaKindValue::Video => MediaKind::Video,
            MediaKindValue::Document => MediaKind::Document,
            MediaKindValue::Audio => MediaKind::Audio,
            MediaKindValue::Voice => MediaKind::Voice,
            MediaKindValue::Animation => MediaKind::Animation,
        }
    }
}

/// One media file, uploaded to Telegram before (through the bot), sent by its file id.
#[derive(Debug, Clone, InputObject)]
pub struct MediaInput {
    /// How to send it.
    pub kind: MediaKindValue,
    /// Telegram's file id (at most 256 characters).
    pub file_id: String,
}

impl From<MediaInput> for OutgoingMedia {
    fn from(media: MediaInput) -> Self {
        OutgoingMedia {
            kind: media.kind.into(),
            file_id: media.file_id,
        }
    }
}

/// A file uploaded with `POST /media`, to send in a reply: the bot uploads it to Telegram and
/// reuses the file id Telegram gives it for later sends.
#[derive(Debug, Clone, InputObject)]
pub struct UploadInput {
    /// The id `POST /media` answered (an upload of the same agent).
    pub upload_id: ID,
    /// How to send it; default: the kind `POST /media` chose from its type.
    pub kind: Option<MediaKindValue>,
}

fn media_kind(name: &str) -> MediaKind {
    match name {
        "photo" => MediaKind::Photo,
        "video" => MediaKind::Video,
        "audio" => MediaKind::Audio,
        "voice" => MediaKind::Voice,
        "animation" => MediaKind::Animation,
        _ => MediaKind::Document,
    }
}

/// The uploads of a reply, checked (they exist and are the acting agent's) and named by their
/// upload id (see `domain::content::UPLOAD_FILE_ID_PREFIX`).
async fn uploaded_media(
    ctx: &Context<'_>,
    agent: AgentId,
    uploads: Vec<UploadInput>,
) -> Result<Vec<OutgoingMedia>> {
    let mut media = Vec::with_capacity(uploads.len());
    for upload in uploads
        .into_iter()
        .take(domain::validate::MAX_REPLY_MEDIA + 1)
    {
        let id = Uuid::try_parse(upload.upload_id.as_str())
            .map_err(|_| error(Code::NotFound, "no such upload"))?;
        let api = ctx.data_unchecked::<Api>();
        let Some(service) = api.media.as_ref() else {
            return Err(error(Code::NotFound, "no such upload"));
        };
        let row = service
            .upload_row(id)
            .await
            .map_err(|e| failed("cannot read the upload", e))?;
        let Some(row) = row.filter(|row| row.uploaded_by == agent.as_uuid()) else {
            return Err(error(Code::NotFound, "no such upload"));
        };
        media.push(OutgoingMedia {
            kind: upload
                .kind
                .map_or_else(|| media_kind(&row.kind), MediaKind::from),
            file_id: format!("{}{}", domain::content::UPLOAD_FILE_ID_PREFIX, row.id),
        });
    }
    Ok(media)
}

/// Input of `replyToTicket`: text, media, or both; with a template and no text, the
/// template's text is sent.
#[derive(Debug, InputObject)]
pub struct ReplyToTicketInput {
    /// The ticket.
    pub ticket_id: ID,
    /// The text (at most 4096 characters).
    pub text: Option<String>,
    /// The quick-reply template it starts from.
    pub template_id: Option<ID>,
    /// Media by Telegram file id (at most 10).
    #[graphql(default)]
    pub media: Vec<MediaInput>,
    /// Files uploaded with `POST /media`, sent after `media` (at most 10 media in all).
    #[graphql(default)]
    pub uploads: Vec<UploadInput>,
    /// A message of this ticket the reply answers (`Message.id`): a customer message, or a
    /// reply Telegram accepted. Telegram shows the reply quoting it.
    pub reply_to_message_id: Option<ID>,
    /// Makes a retry harmless: the same key sends the reply once.
    pub idempotency_key: Option<String>,
}

/// Input of `addInternalNote`.
#[derive(Debug, InputObject)]
pub struct AddInternalNoteInput {
    /// The ticket.
    pub ticket_id: ID,
    /// The note (at most 4096 characters), seen only by the team.
    pub text: String,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `assignTicket`.
#[derive(Debug, InputObject)]
pub struct AssignTicketInput {
    /// The ticket.
    pub ticket_id: ID,
    /// The active agent to assign; null unassigns.
    pub agent_id: Option<ID>,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `changeTicketStatus`.
#[derive(Debug, InputObject)]
pub struct ChangeTicketStatusInput {
    /// The ticket.
    pub ticket_id: ID,
    /// `OPEN` or `PENDING` while working (`OPEN` on a resolved ticket reopens it),
    /// `RESOLVED` or `CLOSED` to finish; `NEW` cannot be set.
    pub status: TicketStatusValue,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `setTicketPriority`.
#[derive(Debug, InputObject)]
pub struct SetTicketPriorityInput {
    /// The ticket.
    pub ticket_id: ID,
    /// The priority.
    pub priority: PriorityValue,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `setTicketCategory`.
#[derive(Debug, InputObject)]
pub struct SetTicketCategoryInput {
    /// The ticket.
    pub ticket_id: ID,
    /// An existing category; null for none.
    pub category_id: Option<ID>,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `tagTicket` and `untagTicket`.
#[derive(Debug, InputObject)]
pub struct TagTicketInput {
    /// The ticket.
    pub ticket_id: ID,
    /// The tag (trimmed and lower-cased; at most 32 characters, 20 tags per ticket).
    pub tag: String,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `retryDelivery`.
#[derive(Debug, InputObject)]
pub struct RetryDeliveryInput {
    /// The failed agent reply (its `messageId`).
    pub message_id: ID,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// What a ticket mutation did.
#[derive(Debug, Clone, SimpleObject)]
pub struct TicketPayload {
    /// The log position written (pass to `consistency.atLeast`); null when nothing changed.
    pub position: Option<String>,
    /// The ticket.
    pub ticket_id: ID,
    /// True when the idempotency key was used before and this is the first call's result.
    pub replayed: bool,
}

/// What `replyToTicket` and `addInternalNote` did.
#[derive(Debug, Clone, SimpleObject)]
pub struct TicketMessagePayload {
    /// The log position written; null when nothing changed.
    pub position: Option<String>,
    /// The ticket.
    pub ticket_id: ID,
    /// The reply or note.
    pub message_id: ID,
    /// True when the idempotency key was used before and this is the first call's result.
    pub replayed: bool,
}

/// The ticket mutations.
#[derive(Debug, Default)]
pub struct TicketMutation;

/// A ticket command ready to send: who acts, on which ticket, when.
struct Target {
    agent: AgentId,
    ticket: TicketId,
}

async fn target(ctx: &Context<'_>, ticket_id: &ID) -> Result<Target> {
    let agent = acting_agent(ctx).await?;
    let ticket = uuid("Ticket", ticket_id)?;
    may_work_on(ctx, ticket).await?;
    Ok(Target {
        agent,
        ticket: TicketId(ticket),
    })
}

async fn send(
    ctx: &Context<'_>,
    mutation: &str,
    key: Option<&str>,
    ticket: TicketId,
    command: &TicketCommand,
) -> Result<Executed<AnyEvent>> {
    let api = ctx.data_unchecked::<Api>();
    let command_ctx = context(ctx, mutation, key)?;
    timed(
        "ticket",
        api.commands.execute_ticket(ticket, command, &command_ctx),
    )
    .await
    .map_err(error::command)
}

fn payload(ticket: TicketId, executed: &Executed<AnyEvent>) -> TicketPayload {
    TicketPayload {
        position: position(executed),
        ticket_id: ID(ticket.0.to_string()),
        replayed: executed.replayed,
    }
}

/// The reply or note id an execution wrote (on a replay, the first call's), else `fallback`.
fn message_written(executed: &Executed<AnyEvent>, fallback: MessageId) -> MessageId {
    executed
        .events
        .iter()
        .find_map(|applied| match applied.event.as_ticket() {
            Some(TicketEvent::AgentReplied(replied)) => Some(replied.message_id),
            Some(TicketEvent::NoteAdded(note)) => Some(note.note_id),
            _ => None,
        })
        .unwrap_or(fallback)
}

async fn settings(ctx: &Context<'_>) -> Result<Settings> {
    ctx.data_unchecked::<Api>()
        .commands
        .state::<Settings>(StreamId::Settings)
        .await
        .map_err(|e| failed("cannot read the settings", e))
}

#[Object]
impl TicketMutation {
    /// Sends the customer a reply: text, media by Telegram file id, or both.
    #[graphql(guard = "Need(Permission::WriteTickets)")]
    async fn reply_to_ticket(
        &self,
        ctx: &Context<'_>,
        input: ReplyToTicketInput,
    ) -> Result<TicketMessagePayload> {
        let target = target(ctx, &input.ticket_id).await?;
        let template = input
            .template_id
            .as_ref()
            .map(|id| uuid("Template", id).map(TemplateId))
            .transpose()?;
        let mut text = input.text;
        if let Some(template) = template {
            let settings = settings(ctx).await?;
            let Some(saved) = settings.templates.get(&template) else {
                return Err(error(Code::NotFound, "no such template"));
            };
            text = text.or_else(|| Some(saved.text.clone()));
        }
        let reply_to = input
            .reply_to_message_id
            .as_ref()
            .map(|id| uuid("Message", id).map(MessageId))
            .transpose()?;
        let message_id = MessageId(Uuid::now_v7());
        let command = TicketCommand::ReplyAsAgent(ReplyAsAgent {
            message_id,
            agent: target.agent,
            template,
            content: ReplyContent {
                text,
                media: {
                    let mut media: Vec<OutgoingMedia> =
                        input.media.into_iter().map(OutgoingMedia::from).collect();
                    media.extend(uploaded_media(ctx, target.agent, input.uploads).await?);
                    media
                },
            },
            reply_to,
            at: Utc::now(),
        });
        let key = input.idempotency_key.as_deref();
        let executed = send(ctx, "replyToTicket", key, target.ticket, &command).await?;
        Ok(TicketMessagePayload {
            position: position(&executed),
            ticket_id: ID(target.ticket.0.to_string()),
            message_id: ID(message_written(&executed, message_id).0.to_string()),
            replayed: executed.replayed,
        })
    }

    /// Sends a `failed` reply again: it becomes `pending` and the bot delivers it as a new
    /// reply would be (`ticket.reply_delivery_retry_requested` in the log). A reply already on
    /// its way (`pending` or `retrying`, for instance asked twice) is left alone: `position` is
    /// null. A delivered reply is refused with `CONFLICT`; an unknown message, a customer
    /// message or a ticket the caller may not see with `NOT_FOUND`.
    #[graphql(guard = "Need(Permission::WriteTickets)")]
    async fn retry_delivery(
        &self,
        ctx: &Context<'_>,
        input: RetryDeliveryInput,
    ) -> Result<TicketMessagePayload> {
        let message = uuid("Message", &input.message_id)?;
        let api = ctx.data_unchecked::<Api>();
        // The read model says which ticket holds it; the command decides on the log whether it
        // may be sent again.
        let row = projections::tickets::queries::message(&api.pool, message)
            .await
            .map_err(error::database)?;
        let Some(row) = row.filter(|row| row.direction == Direction::Out) else {
            return Err(error(Code::NotFound, "no such reply"));
        };
        let target = target(ctx, &ID(row.ticket_id.to_string())).await?;
        let command = TicketCommand::RetryDelivery {
            message_id: MessageId(message),
            by: target.agent,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        let executed = send(ctx, "retryDelivery", key, target.ticket, &command).await?;
        Ok(TicketMessagePayload {
            position: position(&executed),
            ticket_id: ID(target.ticket.0.to_string()),
            message_id: ID(message.to_string()),
            replayed: executed.replayed,
        })
    }

    /// Leaves a note on the ticket that only the team sees.
    #[graphql(guard = "Need(Permission::WriteTickets)")]
    async fn add_internal_note(
        &self,
        ctx: &Context<'_>,
        input: AddInternalNoteInput,
    ) -> Result<TicketMessagePayload> {
        let target = target(ctx, &input.ticket_id).await?;
        let note_id = MessageId(Uuid::now_v7());
        let command = TicketCommand::AddInternalNote(AddInternalNote {
            note_id,
            agent: target.agent,
            text: input.text,
            at: Utc::now(),
        });
        let key = input.idempotency_key.as_deref();
        let executed = send(ctx, "addInternalNote", key, target.ticket, &command).await?;
        Ok(TicketMessagePayload {
            position: position(&executed),
            ticket_id: ID(target.ticket.0.to_string()),
            message_id: ID(message_written(&executed, note_id).0.to_string()),
            replayed: executed.replayed,
        })
    }

    /// Gives the ticket to an active agent, or (with `agentId: null`) to nobody.
    #[graphql(guard = "Need(Permission::WriteTickets)")]
    async fn assign_ticket(
        &self,
        ctx: &Context<'_>,
        input: AssignTicketInput,
    ) -> Result<TicketPayload> {
        let target = target(ctx, &input.ticket_id).await?;
        let at = Utc::now();
        let command = match &input.agent_id {
            Some(id) => {
                let assignee = AgentId(uuid("Agent", id)?);
                // Read on the log, not the read model: a just-deactivated agent must not pass.
                let state = ctx
                    .data_unchecked::<Api>()
                    .commands
                    .state::<Agent>(StreamId::Agent(assignee))
                    .await
                    .map_err(|e| failed("cannot read the agent", e))?;
                match state {
                    Agent::Invited(agent) if agent.active => {}
                    Agent::Invited(_) => {
                        return Err(error(Code::Conflict, "this agent is deactivated"));
                    }
                    Agent::NotInvited => return Err(error(Code::NotFound, "no such agent")),
                }
                TicketCommand::Assign {
                    agent: assignee,
                    by: target.agent,
                    at,
                }
            }
            None => TicketCommand::Unassign {
                by: target.agent,
                at,
            },
        };
        let key = input.idempotency_key.as_deref();
        let executed = send(ctx, "assignTicket", key, target.ticket, &command).await?;
        Ok(payload(target.ticket, &executed))
    }

    /// Moves the ticket to another status: `OPEN`/`PENDING` while working (`OPEN` reopens a
    /// resolved ticket), `RESOLVED`, or `CLOSED` for good.
    #[graphql(guard = "Need(Permission::WriteTickets)")]
    async fn change_ticket_status(
        &self,
        ctx: &Context<'_>,
        input: ChangeTicketStatusInput,
    ) -> Result<TicketPayload> {
        let target = target(ctx, &input.ticket_id).await?;
        let by = Actor::Agent {
            agent_id: target.agent,
        };
        let at = Utc::now();
        let command = match input.status {
            TicketStatusValue::New => {
                return Err(error(
                    Code::Validation,
                    "a ticket cannot be set back to NEW",
                ));
            }
            TicketStatusValue::Open => {
                let state = ctx
                    .data_unchecked::<Api>()
                    .commands
                    .state::<Ticket>(target.ticket.stream())
                    .await
                    .map_err(|e| failed("cannot read the ticket", e))?;
                if state.status() == Some(TicketStatus::Resolved) {
                    TicketCommand::Reopen { by, at }
                } else {
                    TicketCommand::SetStatus {
                        status: WorkStatus::Open,
                        by,
                        at,
                    }
                }
            }
            TicketStatusValue::Pending => TicketCommand::SetStatus {
                status: WorkStatus::Pending,
                by,
                at,
            },
            TicketStatusValue::Resolved => TicketCommand::Resolve { by, at },
            TicketStatusValue::Closed => TicketCommand::Close { by, at },
        };
        let key = input.idempotency_key.as_deref();
        let executed = send(ctx, "changeTicketStatus", key, target.ticket, &command).await?;
        Ok(payload(target.ticket, &executed))
    }

    /// Sets the ticket's priority.
    #[graphql(guard = "Need(Permission::WriteTickets)")]
    async fn set_ticket_priority(
        &self,
        ctx: &Context<'_>,
        input: SetTicketPriorityInput,
    ) -> Result<TicketPayload> {
        let target = target(ctx, &input.ticket_id).await?;
        let priority = match input.priority {
            PriorityValue::Low => Priority::Low,
            PriorityValue::Normal => Priority::Normal,
            PriorityValue::High => Priority::High,
            PriorityValue::Urgent => Priority::Urgent,
        };
        let command = TicketCommand::SetPriority {
            priority,
            by: target.agent,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        let executed = send(ctx, "setTicketPriority", key, target.ticket, &command).await?;
        Ok(payload(target.ticket, &executed))
    }

    /// Files the ticket under an existing category (or none).
    #[graphql(guard = "Need(Permission::WriteTickets)")]
    async fn set_ticket_category(
        &self,
        ctx: &Context<'_>,
        input: SetTicketCategoryInput,
    ) -> Result<TicketPayload> {
        let target = target(ctx, &input.ticket_id).await?;
        let category = input
            .category_id
            .as_ref()
            .map(|id| uuid("Category", id).map(CategoryId))
            .transpose()?;
        if let Some(category) = category
            && !settings(ctx).await?.categories.contains_key(&category)
        {
            return Err(error(Code::NotFound, "no such category"));
        }
        let command = TicketCommand::ChangeCategory {
            category,
            by: target.agent,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        let executed = send(ctx, "setTicketCategory", key, target.ticket, &command).await?;
        Ok(payload(target.ticket, &executed))
    }

    /// Adds a tag to the ticket (no change when it has it).
    #[graphql(guard = "Need(Permission::WriteTickets)")]
    async fn tag_ticket(&self, ctx: &Context<'_>, input: TagTicketInput) -> Result<TicketPayload> {
        let target = target(ctx, &input.ticket_id).await?;
        let command = TicketCommand::AddTag {
            tag: input.tag,
            by: target.agent,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        let executed = send(ctx, "tagTicket", key, target.ticket, &command).await?;
        Ok(payload(target.ticket, &executed))
    }

    /// Removes a tag from the ticket (no change when it lacks it).
    #[graphql(guard = "Need(Permission::WriteTickets)")]
    async fn untag_ticket(
        &self,
        ctx: &Context<'_>,
        input: TagTicketInput,
    ) -> Result<TicketPayload> {
        let target = target(ctx, &input.ticket_id).await?;
        let command = TicketCommand::RemoveTag {
            tag: input.tag,
            by: target.agent,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        let executed = send(ctx, "untagTicket", key, target.ticket, &command).await?;
        Ok(payload(target.ticket, &executed))
    }
}
