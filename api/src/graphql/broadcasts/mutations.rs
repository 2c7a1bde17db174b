//! Broadcast mutations (`WriteBroadcasts`): draft, edit, schedule, start (or resume), pause,
//! cancel. Sending itself and the outcomes belong to the sender worker.

use app::commands::Executed;
use async_graphql::{Context, Enum, ID, InputObject, Object, OneofObject, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::broadcast::{
    Audience, Broadcast, BroadcastCommand, BroadcastContent, BroadcastEvent, BroadcastStatus,
    ButtonAction, InlineButton, TextFormat,
};
use domain::content::OutgoingMedia;
use domain::ticket::TicketStatus;
use domain::{BroadcastId, CategoryId, CustomerId, StreamId};
use projections::customers::queries as customers;
use uuid::Uuid;

use crate::auth::Permission;
use crate::graphql::commands::{context, position, timed, uuid};
use crate::graphql::context::Api;
use crate::graphql::error::{self, Code, database, error, failed};
use crate::graphql::guard::{Need, signed_in_agent};
use crate::graphql::tickets::{MediaInput, TicketStatusValue};

/// Who a broadcast goes to: exactly one field. Opted-out, blocked and banned customers are
/// always left out.
#[derive(Debug, Clone, OneofObject)]
pub enum AudienceInput {
    /// Every customer (pass `true`).
    AllCustomers(bool),
    /// Customers with a ticket in this status.
    TicketStatus(TicketStatusValue),
    /// Customers with a ticket in this category.
    CategoryId(ID),
    /// Customers whose Telegram client uses this language (e.g. `de`).
    Language(String),
    /// Exactly these customers (Telegram user ids, at most 10 000, no duplicates).
    CustomerIds(Vec<ID>),
}

impl AudienceInput {
    fn into_domain(self) -> Result<Audience> {
        Ok(match self {
            AudienceInput::AllCustomers(true) => Audience::AllCustomers,
            AudienceInput::AllCustomers(false) => {
                return Err(error(
                    Code::Validation,
                    "allCustomers must be true (or pick another audience)",
                ));
            }
            AudienceInput::TicketStatus(status) => Audience::ByTicketStatus {
                status: TicketStatus::from(status),
            },
            AudienceInput::CategoryId(id) => Audience::ByCategory {
                category: CategoryId(uuid("Category", &id)?),
            },
            AudienceInput::Language(language) => Audience::ByLanguage { language },
            AudienceInput::CustomerIds(ids) => {
                if ids.len() > domain::validate::MAX_EXPLICIT_AUDIENCE {
                    return Err(error(
                        Code::Validation,
                        format!(
                            "customerIds may hold at most {} customers",
                            domain::validate::MAX_EXPLICIT_AUDIENCE
                        ),
                    ));
                }
                let customers = ids
                    .iter()
                    .map(|id| {
                        id.trim().parse::<i64>().map(CustomerId).map_err(|_| {
                            error(Code::Validation, "customerIds must be Telegram user ids")
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Audience::Explicit { customers }
            }
        })
    }
}

/// An inline button: a label and exactly one of `url` or `callbackData`.
#[derive(Debug, Clone, InputObject)]
pub struct ButtonInput {
    /// The label (at most 64 characters).
    pub label: String,
    /// A link to open (`https://`, `http://` or `tg://`).
    pub url: Option<String>,
    /// Data sent back to the bot (at most 64 bytes).
    pub callback_data: Option<String>,
}

/// How Telegram reads a broadcast's text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Enum)]
pub enum TextFormatValue {
    /// As written, no formatting.
    #[default]
    Plain,
    /// Telegram's HTML subset (`<b>`, `<i>`, `<a href="…">`, …).
    Html,
    /// Telegram's MarkdownV2.
    MarkdownV2,
}

impl From<TextFormatValue> for TextFormat {
    fn from(format: TextFormatValue) -> Self {
        match format {
            TextFormatValue::Plain => TextFormat::Plain,
            TextFormatValue::Html => TextFormat::Html,
            TextFormatValue::MarkdownV2 => TextFormat::MarkdownV2,
        }
    }
}

impl From<TextFormat> for TextFormatValue {
    fn from(format: TextFormat) -> Self {
        match format {
            TextFormat::Plain => TextFormatValue::Plain,
            TextFormat::Html => TextFormatValue::Html,
            TextFormat::MarkdownV2 => TextFormatValue::MarkdownV2,
        }
    }
}

/// What a broadcast sends: text, one media file, or both (the text is then a caption).
#[derive(Debug, Clone, InputObject)]
pub struct BroadcastContentInput {
    /// The text (at most 4096 characters; 1024 as a caption).
    pub text: Option<String>,
    /// How Telegram reads the text (plain unless given).
    #[graphql(default)]
    pub format: TextFormatValue,
    /// One media file by Telegram file id.
    pub media: Option<MediaInput>,
    /// Inline keyboard rows (at most 100 buttons, 8 per row).
    #[graphql(default)]
    pub buttons: Vec<Vec<ButtonInput>>,
    /// Whether an "unsubscribe" button goes below the others (the customer's language's
    /// label); on unless turned off.
    #[graphql(default = true)]
    pub unsubscribe_button: bool,
}

impl BroadcastContentInput {
    fn into_domain(self) -> Result<BroadcastContent> {
        let buttons = self
            .buttons
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|button| {
                        let action = match (button.url, button.callback_data) {
                            (Some(url), None) => ButtonAction::Url { url },
                            (None, Some(data)) => ButtonAction::Callback { data },
                            _ => {
                                return Err(error(
                                    Code::Validation,
                                    "a button needs exactly one of url or callbackData",
                                ));
                            }
                        };
                        Ok(InlineButton {
                            label: button.label,
                            action,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(BroadcastContent {
            text: self.text,
            format: self.format.into(),
            media: self.media.map(OutgoingMedia::from),
            buttons,
            unsubscribe_button: self.unsubscribe_button,
        })
    }
}

/// Input of `createBroadcast`.
#[derive(Debug, InputObject)]
pub struct CreateBroadcastInput {
    /// Who it goes to.
    pub audience: AudienceInput,
    /// What it sends.
    pub content: BroadcastContentInput,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `updateBroadcast` (drafts only).
#[derive(Debug, InputObject)]
pub struct UpdateBroadcastInput {
    /// The broadcast.
    pub broadcast_id: ID,
    /// Who it goes to.
    pub audience: AudienceInput,
    /// What it sends.
    pub content: BroadcastContentInput,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `scheduleBroadcast`.
#[derive(Debug, InputObject)]
pub struct ScheduleBroadcastInput {
    /// The broadcast.
    pub broadcast_id: ID,
    /// When sending starts (in the future); null takes it back to draft.
    pub send_at: Option<DateTime<Utc>>,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `startBroadcast`, `pauseBroadcast` and `cancelBroadcast`.
#[derive(Debug, InputObject)]
pub struct BroadcastInput {
    /// The broadcast.
    pub broadcast_id: ID,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// What a broadcast mutation did.
#[derive(Debug, Clone, SimpleObject)]
pub struct BroadcastPayload {
    /// The log position written; null when nothing changed.
    pub position: Option<String>,
    /// The broadcast.
    pub broadcast_id: ID,
    /// True when the idempotency key was used before and this is the first call's result.
    pub replayed: bool,
}

async fn run(
    ctx: &Context<'_>,
    mutation: &str,
    key: Option<&str>,
    broadcast: BroadcastId,
    command: &BroadcastCommand,
) -> Result<BroadcastPayload> {
    let api = ctx.data_unchecked::<Api>();
    let command_ctx = context(ctx, mutation, key)?;
    let executed: Executed<BroadcastEvent> = timed(
        "broadcast",
        api.commands
            .execute::<Broadcast>(broadcast.stream(), command, &command_ctx),
    )
    .await
    .map_err(error::command)?;
    // On a replay the first call's id counts, not the one drawn now.
    let broadcast = executed
        .events
        .iter()
        .find_map(|applied| match &applied.event {
            BroadcastEvent::Drafted(drafted) => Some(drafted.broadcast_id),
            _ => None,
        })
        .unwrap_or(broadcast);
    Ok(BroadcastPayload {
        position: position(&executed),
        broadcast_id: ID(broadcast.0.to_string()),
        replayed: executed.replayed,
    })
}

fn broadcast_id(id: &ID) -> Result<BroadcastId> {
    uuid("Broadcast", id).map(BroadcastId)
}

/// How many customers the audience holds now, by the `customers` and `tickets` read models;
/// opted-out, blocked and banned customers are left out. The count freezes the audience when
/// sending starts.
async fn audience_size(api: &Api, audience: &Audience) -> Result<u32> {
    let count = customers::audience_size(&api.pool, audience)
        .await
        .map_err(database)?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// The broadcast mutations.
#[derive(Debug, Default)]
pub struct BroadcastMutation;

#[Object]
impl BroadcastMutation {
    /// Writes a new draft.
    #[graphql(guard = "Need(Permission::WriteBroadcasts)")]
    async fn create_broadcast(
        &self,
        ctx: &Context<'_>,
        input: CreateBroadcastInput,
    ) -> Result<BroadcastPayload> {
        let by = signed_in_agent(ctx)?;
        let broadcast = BroadcastId(Uuid::now_v7());
        let command = BroadcastCommand::Draft {
            broadcast_id: broadcast,
            audience: input.audience.into_domain()?,
            content: input.content.into_domain()?,
            by,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        run(ctx, "createBroadcast", key, broadcast, &command).await
    }

    /// Replaces a draft's audience and content.
    #[graphql(guard = "Need(Permission::WriteBroadcasts)")]
    async fn update_broadcast(
        &self,
        ctx: &Context<'_>,
        input: UpdateBroadcastInput,
    ) -> Result<BroadcastPayload> {
        let by = signed_in_agent(ctx)?;
        let broadcast = broadcast_id(&input.broadcast_id)?;
        let command = BroadcastCommand::Edit {
            audience: input.audience.into_domain()?,
            content: input.content.into_domain()?,
            by,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        run(ctx, "updateBroadcast", key, broadcast, &command).await
    }

    /// Schedules a draft (or moves a scheduled time); `sendAt: null` takes it back to draft.
    #[graphql(guard = "Need(Permission::WriteBroadcasts)")]
    async fn schedule_broadcast(
        &self,
        ctx: &Context<'_>,
        input: ScheduleBroadcastInput,
    ) -> Result<BroadcastPayload> {
        let by = signed_in_agent(ctx)?;
        let broadcast = broadcast_id(&input.broadcast_id)?;
        let at = Utc::now();
        let command = match input.send_at {
            Some(send_at) => BroadcastCommand::Schedule { send_at, by, at },
            None => BroadcastCommand::Unschedule { by, at },
        };
        let key = input.idempotency_key.as_deref();
        run(ctx, "scheduleBroadcast", key, broadcast, &command).await
    }

    /// Starts sending now, freezing the audience; on a paused broadcast, resumes it.
    #[graphql(guard = "Need(Permission::WriteBroadcasts)")]
    async fn start_broadcast(
        &self,
        ctx: &Context<'_>,
        input: BroadcastInput,
    ) -> Result<BroadcastPayload> {
        let by = signed_in_agent(ctx)?;
        let broadcast = broadcast_id(&input.broadcast_id)?;
        let api = ctx.data_unchecked::<Api>();
        let state = api
            .commands
            .state::<Broadcast>(StreamId::Broadcast(broadcast))
            .await
            .map_err(|e| failed("cannot read the broadcast", e))?;
        let at = Utc::now();
        let command = match state.state() {
            Some(current) if current.status == BroadcastStatus::Paused => {
                BroadcastCommand::Resume { by, at }
            }
            Some(current)
                if matches!(
                    current.status,
                    BroadcastStatus::Draft | BroadcastStatus::Scheduled(_)
                ) =>
            {
                BroadcastCommand::Start {
                    audience_size: audience_size(api, &current.audience).await?,
                    by: Some(by),
                    at,
                }
            }
            // Let the decider answer (not found, already started, finished).
            _ => BroadcastCommand::Start {
                audience_size: 0,
                by: Some(by),
                at,
            },
        };
        let key = input.idempotency_key.as_deref();
        run(ctx, "startBroadcast", key, broadcast, &command).await
    }

    /// Stops sending for now (`startBroadcast` resumes).
    #[graphql(guard = "Need(Permission::WriteBroadcasts)")]
    async fn pause_broadcast(
        &self,
        ctx: &Context<'_>,
        input: BroadcastInput,
    ) -> Result<BroadcastPayload> {
        let by = signed_in_agent(ctx)?;
        let broadcast = broadcast_id(&input.broadcast_id)?;
        let command = BroadcastCommand::Pause { by, at: Utc::now() };
        let key = input.idempotency_key.as_deref();
        run(ctx, "pauseBroadcast", key, broadcast, &command).await
    }

    /// Abandons the broadcast (any time before it completes).
    #[graphql(guard = "Need(Permission::WriteBroadcasts)")]
    async fn cancel_broadcast(
        &self,
        ctx: &Context<'_>,
        input: BroadcastInput,
    ) -> Result<BroadcastPayload> {
        let by = signed_in_agent(ctx)?;
        let broadcast = broadcast_id(&input.broadcast_id)?;
        let command = BroadcastCommand::Cancel {
            by: Some(by),
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        run(ctx, "cancelBroadcast", key, broadcast, &command).await
    }
}
