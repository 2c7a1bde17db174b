//! Categories, quick-reply templates and the greeting (`ManageSettings`: admins).

use app::commands::Executed;
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use domain::settings::{Settings, SettingsCommand, SettingsEvent};
use domain::{CategoryId, StreamId, TemplateId};
use uuid::Uuid;

use crate::auth::Permission;
use crate::graphql::commands::{context, position, timed, uuid};
use crate::graphql::context::Api;
use crate::graphql::error;
use crate::graphql::guard::{Need, signed_in_agent};

/// Input of `createCategory`.
#[derive(Debug, InputObject)]
pub struct CreateCategoryInput {
    /// Its name (at most 128 characters), unique ignoring case.
    pub name: String,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `renameCategory`.
#[derive(Debug, InputObject)]
pub struct RenameCategoryInput {
    /// The category.
    pub category_id: ID,
    /// The new name.
    pub name: String,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `removeCategory`.
#[derive(Debug, InputObject)]
pub struct RemoveCategoryInput {
    /// The category.
    pub category_id: ID,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `createTemplate`.
#[derive(Debug, InputObject)]
pub struct CreateTemplateInput {
    /// Shown in the picker (at most 128 characters).
    pub title: String,
    /// Inserted into the reply (at most 4096 characters).
    pub text: String,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `updateTemplate`.
#[derive(Debug, InputObject)]
pub struct UpdateTemplateInput {
    /// The template.
    pub template_id: ID,
    /// The new title.
    pub title: String,
    /// The new text.
    pub text: String,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `removeTemplate`.
#[derive(Debug, InputObject)]
pub struct RemoveTemplateInput {
    /// The template.
    pub template_id: ID,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `setGreeting`.
#[derive(Debug, InputObject)]
pub struct SetGreetingInput {
    /// What the bot answers `/start` with in English, and in any language without a greeting
    /// of its own (at most 4096 characters); null for the built-in greeting.
    pub text: Option<String>,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// What a category mutation did.
#[derive(Debug, Clone, SimpleObject)]
pub struct CategoryPayload {
    /// The log position written; null when nothing changed.
    pub position: Option<String>,
    /// The category.
    pub category_id: ID,
    /// True when the idempotency key was used before and this is the first call's result.
    pub replayed: bool,
}

/// What a template mutation did.
#[derive(Debug, Clone, SimpleObject)]
pub struct TemplatePayload {
    /// The log position written; null when nothing changed.
    pub position: Option<String>,
    /// The template.
    pub template_id: ID,
    /// True when the idempotency key was used before and this is the first call's result.
    pub replayed: bool,
}

/// What `setGreeting` did.
#[derive(Debug, Clone, SimpleObject)]
pub struct GreetingPayload {
    /// The log position written; null when nothing changed.
    pub position: Option<String>,
    /// True when the idempotency key was used before and this is the first call's result.
    pub replayed: bool,
}

async fn run(
    ctx: &Context<'_>,
    mutation: &str,
    key: Option<&str>,
    command: &SettingsCommand,
) -> Result<Executed<SettingsEvent>> {
    let api = ctx.data_unchecked::<Api>();
    let command_ctx = context(ctx, mutation, key)?;
    timed(
        "settings",
        api.commands
            .execute::<Settings>(StreamId::Settings, command, &command_ctx),
    )
    .await
    .map_err(error::command)
}

fn category_payload(category: CategoryId, executed: &Executed<SettingsEvent>) -> CategoryPayload {
    // On a replay the first call's id counts, not the one drawn now.
    let category = executed
        .events
        .iter()
        .find_map(|applied| match &applied.event {
            SettingsEvent::CategoryAdded(added) => Some(added.category_id),
            _ => None,
        })
        .unwrap_or(category);
    CategoryPayload {
        position: position(executed),
        category_id: ID(category.0.to_string()),
        replayed: executed.replayed,
    }
}

fn template_payload(template: TemplateId, executed: &Executed<SettingsEvent>) -> TemplatePayload {
    let template = executed
        .events
        .iter()
        .find_map(|applied| match &applied.event {
            SettingsEvent::TemplateAdded(added) => Some(added.template_id),
            _ => None,
        })
        .unwrap_or(template);
    TemplatePayload {
        position: position(executed),
        template_id: ID(template.0.to_string()),
        replayed: executed.replayed,
    }
}

/// The settings mutations.
#[derive(Debug, Default)]
pub struct SettingsMutation;

#[Object]
impl SettingsMutation {
    /// Adds a ticket category.
    #[graphql(guard = "Need(Permission::ManageSettings)")]
    async fn create_category(
        &self,
        ctx: &Context<'_>,
        input: CreateCategoryInput,
    ) -> Result<CategoryPayload> {
        let category_id = CategoryId(Uuid::now_v7());
        let command = SettingsCommand::AddCategory {
            category_id,
            name: input.name,
            by: signed_in_agent(ctx)?,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        let executed = run(ctx, "createCategory", key, &command).await?;
        Ok(category_payload(category_id, &executed))
    }

    /// Renames a category.
    #[graphql(guard = "Need(Permission::ManageSettings)")]
    async fn rename_category(
        &self,
        ctx: &Context<'_>,
        input: RenameCategoryInput,
    ) -> Result<CategoryPayload> {
        let category_id = CategoryId(uuid("Category", &input.category_id)?);
        let command = SettingsCommand::RenameCategory {
            category_id,
            name: input.name,
            by: signed_in_agent(ctx)?,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        let executed = run(ctx, "renameCategory", key, &command).await?;
        Ok(category_payload(category_id, &executed))
    }

    /// Removes a category (its tickets keep it, by id and name).
    #[graphql(guard = "Need(Permission::ManageSettings)")]
    async fn remove_category(
        &self,
        ctx: &Context<'_>,
        input: RemoveCategoryInput,
    ) -> Result<CategoryPayload> {
        let category_id = CategoryId(uuid("Category", &input.category_id)?);
        let command = SettingsCommand::RemoveCategory {
            category_id,
            by: signed_in_agent(ctx)?,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        let executed = run(ctx, "removeCategory", key, &command).await?;
        Ok(category_payload(category_id, &executed))
    }

    /// Adds a quick-reply template.
    #[graphql(guard = "Need(Permission::ManageSettings)")]
    async fn create_template(
        &self,
        ctx: &Context<'_>,
        input: CreateTemplateInput,
    ) -> Result<TemplatePayload> {
        let template_id = TemplateId(Uuid::now_v7());
        let command = SettingsCommand::AddTemplate {
            template_id,
            title: input.title,
            text: input.text,
            by: signed_in_agent(ctx)?,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        let executed = run(ctx, "createTemplate", key, &command).await?;
        Ok(template_payload(template_id, &executed))
    }

    /// Changes a template's title and text.
    #[graphql(guard = "Need(Permission::ManageSettings)")]
    async fn update_template(
        &self,
        ctx: &Context<'_>,
        input: UpdateTemplateInput,
    ) -> Result<TemplatePayload> {
        let template_id = TemplateId(uuid("Template", &input.template_id)?);
        let command = SettingsCommand::EditTemplate {
            template_id,
            title: input.title,
            text: input.text,
            by: signed_in_agent(ctx)?,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        let executed = run(ctx, "updateTemplate", key, &command).await?;
        Ok(template_payload(template_id, &executed))
    }

    /// Removes a template.
    #[graphql(guard = "Need(Permission::ManageSettings)")]
    async fn remove_template(
        &self,
        ctx: &Context<'_>,
        input: RemoveTemplateInput,
    ) -> Result<TemplatePayload> {
        let template_id = TemplateId(uuid("Template", &input.template_id)?);
        let command = SettingsCommand::RemoveTemplate {
            template_id,
            by: signed_in_agent(ctx)?,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        let executed = run(ctx, "removeTemplate", key, &command).await?;
        Ok(template_payload(template_id, &executed))
    }

    /// Sets (or, with `text: null`, restores the built-in) greeting the bot answers `/start`
    /// with: the English one, also used for languages without a greeting of their own (see
    /// `setBotText` for other languages).
    #[graphql(guard = "Need(Permission::ManageSettings)")]
    async fn set_greeting(
        &self,
        ctx: &Context<'_>,
        input: SetGreetingInput,
    ) -> Result<GreetingPayload> {
        let command = SettingsCommand::SetGreeting {
            text: input.text,
            by: signed_in_agent(ctx)?,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        let executed = run(ctx, "setGreeting", key, &command).await?;
        Ok(GreetingPayload {
            position: position(&executed),
            replayed: executed.replayed,
        })
    }
}
