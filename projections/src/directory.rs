//! Read model "directory": the support team and the installation's settings.
//!
//! Owns `agents` (fed by `agent.*`), and `categories`, `templates` and the one-row
//! `support_settings` (fed by `settings.*`). Removed categories and templates keep their row
//! with `removed_at`, so old tickets and replies can still show their names.
//!
//! Agents record their stream version; the settings stream's version is kept in
//! `support_settings.version` and guards categories and templates too, so replays change
//! nothing. Password hashes never reach this model (the log only says that one changed).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::agent::{AgentEvent, Role};
use domain::settings::{DEFAULT_REOPEN_WINDOW_SECS, SettingsEvent};
use domain::{AnyEvent, StreamId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{ApplyError, Envelope, Target, read_model};
use crate::sql;
use crate::table::{Table, Text, table};

pub mod queries;

/// The "directory" read model (tables `agents`, `categories`, `templates`,
/// `support_settings`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Directory;

const TABLES: &[&str] = &["agents", "categories", "templates", "support_settings"];

read_model!(
    Directory,
    name: "directory",
    version: 1,
    tables: TABLES,
    apply: apply,
    wants: wants,
);

/// Only agent and settings events change these tables.
fn wants(envelope: &Envelope) -> bool {
    matches!(
        (&envelope.stream, &envelope.event),
        (StreamId::Agent(_), AnyEvent::Agent(_)) | (StreamId::Settings, AnyEvent::Settings(_))
    )
}

table! {
    /// One row of `agents`: a member of the support team.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AgentRow in "agents" {
        /// The agent.
        id: Uuid = "uuid",
        /// Their sign-in email.
        email: String = "text",
        /// Their display name.
        name: String = "text",
        /// Their role.
        #[sqlx(try_from = "Text<Role>")]
        role: Role = "text",
        /// The categories whose tickets they work (none: all).
        category_ids: Vec<Uuid> = "uuid[]",
        /// False once deactivated.
        active: bool = "boolean",
        /// Who invited them (`None`: the first admin).
        invited_by: Option<Uuid> = "uuid",
        /// When they were invited.
        invited_at: DateTime<Utc> = "timestamptz",
        /// When they were deactivated.
        deactivated_at: Option<DateTime<Utc>> = "timestamptz",
        /// When they last changed their password.
        password_changed_at: Option<DateTime<Utc>> = "timestamptz",
        /// The last change of any kind.
        updated_at: DateTime<Utc> = "timestamptz",
        /// The agent stream's version this row reflects.
        version: i64 = "bigint",
    }
}

table! {
    /// One row of `categories`: a ticket category (removed ones stay, with `removed_at`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CategoryRow in "categories" {
        /// The category.
        id: Uuid = "uuid",
        /// Its name.
        name: String = "text",
        /// When it was added.
        created_at: DateTime<Utc> = "timestamptz",
        /// Its last change.
        updated_at: DateTime<Utc> = "timestamptz",
        /// When it was removed.
        removed_at: Option<DateTime<Utc>> = "timestamptz",
    }
}

table! {
    /// One row of `templates`: a quick-reply template (removed ones stay, with `removed_at`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TemplateRow in "templates" {
        /// The template.
        id: Uuid = "uuid",
        /// Its title.
        title: String = "text",
        /// The reply text.
        text: String = "text",
        /// The agent who added it.
        created_by: Uuid = "uuid",
        /// When it was added.
        created_at: DateTime<Utc> = "timestamptz",
        /// Its last edit.
        updated_at: DateTime<Utc> = "timestamptz",
        /// When it was removed.
        removed_at: Option<DateTime<Utc>> = "timestamptz",
    }
}

table! {
    /// The one row of `support_settings` (`id` is always true), once any setting was made.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SettingsRow in "support_settings" {
        /// Always true: the table holds one row.
        id: bool = "boolean",
        /// The greeting, when an admin set one.
        greeting: Option<String> = "text",
        /// How long a resolved ticket may be reopened by the customer writing again.
        reopen_window_seconds: i64 = "bigint",
        /// The last change.
        updated_at: DateTime<Utc> = "timestamptz",
        /// The settings stream's version this row (and the categories and templates) reflect.
        version: i64 = "bigint",
    }
}

#[derive(Debug, Default)]
struct Fold {
    agents: HashMap<Uuid, AgentRow>,
    dirty_agents: Vec<Uuid>,
    settings: Option<SettingsRow>,
    settings_dirty: bool,
    categories: HashMap<Uuid, CategoryRow>,
    dirty_categories: Vec<Uuid>,
    templates: HashMap<Uuid, TemplateRow>,
    dirty_templates: Vec<Uuid>,
}

async fn apply(
    conn: &mut PgConnection,
    target: Target,
    batch: &[Envelope],
) -> Result<(), ApplyError> {
    let mut agent_ids = Vec::new();
    let mut category_ids = Vec::new();
    let mut template_ids = Vec::new();
    let mut settings = false;
    for envelope in batch {
        match (&envelope.stream, &envelope.event) {
            (StreamId::Agent(id), AnyEvent::Agent(_)) => agent_ids.push(id.as_uuid()),
            (StreamId::Settings, AnyEvent::Settings(event)) => {
                settings = true;
                use SettingsEvent as E;
                match event {
                    E::CategoryAdded(e) | E::CategoryRenamed(e) => {
                        category_ids.push(e.category_id.as_uuid());
                    }
                    E::CategoryRemoved(e) => category_ids.push(e.category_id.as_uuid()),
                    E::TemplateAdded(e) | E::TemplateEdited(e) => {
                        template_ids.push(e.template_id.as_uuid());
                    }
                    E::TemplateRemoved(e) => template_ids.push(e.template_id.as_uuid()),
                    E::GreetingSet(_)
                    | E::ReopenWindowSet(_)
                    | E::TwoFactorPolicySet(_)
                    | E::BotTextSet(_) => {}
                }
            }
            _ => {}
        }
    }
    if agent_ids.is_empty() && !settings {
        return Ok(());
    }

    let mut fold = Fold::default();
    if !agent_ids.is_empty() {
        agent_ids.sort_unstable();
        agent_ids.dedup();
        let sql = sql::select_sql(&target.table(AgentRow::TABLE), AgentRow::COLUMNS, "id");
        for row in sqlx::query_as::<_, AgentRow>(&sql)
            .bind(&agent_ids)
            .fetch_all(&mut *conn)
            .await?
        {
            fold.agents.insert(row.id, row);
        }
    }
    if settings {
        let sql = sql::select_sql(
            &target.table(SettingsRow::TABLE),
            SettingsRow::COLUMNS,
            "id",
        );
        fold.settings = sqlx::query_as::<_, SettingsRow>(&sql)
            .bind(vec![true])
            .fetch_optional(&mut *conn)
            .await?;
        if !category_ids.is_empty() {
            let sql = sql::select_sql(
                &target.table(CategoryRow::TABLE),
                CategoryRow::COLUMNS,
                "id",
            );
            for row in sqlx::query_as::<_, CategoryRow>(&sql)
                .bind(&category_ids)
                .fetch_all(&mut *conn)
                .await?
            {
                fold.categories.insert(row.id, row);
            }
        }
        if !template_ids.is_empty() {
            let sql = sql::select_sql(
                &target.table(TemplateRow::TABLE),
                TemplateRow::COLUMNS,
                "id",
            );
            for row in sqlx::query_as::<_, TemplateRow>(&sql)
                .bind(&template_ids)
                .fetch_all(&mut *conn)
                .await?
            {
                fold.templates.insert(row.id, row);
            }
        }
    }

    for envelope in batch {
        match (&envelope.stream, &envelope.event) {
            (StreamId::Agent(id), AnyEvent::Agent(event)) => {
                fold.agent_event(id.as_uuid(), sql::version(envelope)?, event);
            }
            (StreamId::Settings, AnyEvent::Settings(event)) => {
                fold.settings_event(sql::version(envelope)?, event);
            }
            _ => {}
        }
    }

    fold.write(conn, target).await
}

impl Fold {
    fn agent_event(&mut self, id: Uuid, version: i64, event: &AgentEvent) {
        use AgentEvent as E;
        let Some(agent) = self.agents.get_mut(&id) else {
            if let E::Invited(invited) = event {
                self.agents.insert(
                    id,
                    AgentRow {
                        id,
                        email: invited.personal.email.clone(),
                        name: invited.personal.name.clone(),
                        role: invited.role,
                        category_ids: Vec::new(),
                        active: true,
                        invited_by: invited.by.map(|by| by.as_uuid()),
                        invited_at: invited.at,
                        deactivated_at: None,
                        password_changed_at: None,
                        updated_at: invited.at,
                        version,
                    },
                );
                self.dirty_agents.push(id);
            }
            return;
        };
        if version <= agent.version {
            return;
        }
        agent.version = version;
        self.dirty_agents.push(id);
        match event {
            E::Invited(_) => {}
            E::RoleChanged(changed) => {
                agent.role = changed.role;
                agent.updated_at = changed.at;
            }
            E::CategoriesAssigned(assigned) => {
                agent.category_ids = assigned.categories.iter().map(|c| c.as_uuid()).collect();
                agent.updated_at = assigned.at;
            }
            E::Deactivated(step) => {
                agent.active = false;
                agent.deactivated_at = Some(step.at);
                agent.updated_at = step.at;
            }
            E::Reactivated(step) => {
                agent.active = true;
                agent.deactivated_at = None;
                agent.updated_at = step.at;
            }
            E::PasswordChanged(step) => {
                agent.password_changed_at = Some(step.at);
                agent.updated_at = step.at;
            }
            E::SecondFactorEnrolled(step)
            | E::SecondFactorDisabled(step)
            | E::SecondFactorReset(step) => agent.updated_at = step.at,
            E::RecoveryCodeUsed(used) => agent.updated_at = used.at,
            E::SecondFactorThrottled(throttled) => agent.updated_at = throttled.at,
        }
    }

    fn settings_event(&mut self, version: i64, event: &SettingsEvent) {
        use SettingsEvent as E;
        let at = match event {
            E::CategoryAdded(e) | E::CategoryRenamed(e) => e.at,
            E::CategoryRemoved(e) => e.at,
            E::TemplateAdded(e) | E::TemplateEdited(e) => e.at,
            E::TemplateRemoved(e) => e.at,
            E::GreetingSet(e) => e.at,
            E::ReopenWindowSet(e) => e.at,
            E::TwoFactorPolicySet(e) => e.at,
            E::BotTextSet(e) => e.at,
        };
        let settings = self.settings.get_or_insert_with(|| SettingsRow {
            id: true,
            greeting: None,
            reopen_window_seconds: i64::try_from(DEFAULT_REOPEN_WINDOW_SECS).unwrap_or(i64::MAX),
            updated_at: at,
            version: -1,
        });
        if version <= settings.version {
            return;
        }
        settings.version = version;
        settings.updated_at = at;
        self.settings_dirty = true;
        match event {
            E::CategoryAdded(added) => {
                let id = added.category_id.as_uuid();
                self.categories.insert(
                    id,
                    CategoryRow {
                        id,
                        name: added.name.clone(),
                        created_at: added.at,
                        updated_at: added.at,
                        removed_at: None,
                    },
                );
                self.dirty_categories.push(id);
            }
            E::CategoryRenamed(renamed) => {
                let id = renamed.category_id.as_uuid();
                if let Some(category) = self.categories.get_mut(&id) {
                    category.name.clone_from(&renamed.name);
                    category.updated_at = renamed.at;
                    self.dirty_categories.push(id);
                }
            }
            E::CategoryRemoved(removed) => {
                let id = removed.category_id.as_uuid();
                if let Some(category) = self.categories.get_mut(&id) {
                    category.removed_at = Some(removed.at);
                    category.updated_at = removed.at;
                    self.dirty_categories.push(id);
                }
            }
            E::TemplateAdded(added) => {
                let id = added.template_id.as_uuid();
                self.templates.insert(
                    id,
                    TemplateRow {
                        id,
                        title: added.content.title.clone(),
                        text: added.content.text.clone(),
                        created_by: added.by.as_uuid(),
                        created_at: added.at,
                        updated_at: added.at,
                        removed_at: None,
                    },
                );
                self.dirty_templates.push(id);
            }
            E::TemplateEdited(edited) => {
                let id = edited.template_id.as_uuid();
                if let Some(template) = self.templates.get_mut(&id) {
                    template.title.clone_from(&edited.content.title);
                    template.text.clone_from(&edited.content.text);
                    template.updated_at = edited.at;
                    self.dirty_templates.push(id);
                }
            }
            E::TemplateRemoved(removed) => {
                let id = removed.template_id.as_uuid();
                if let Some(template) = self.templates.get_mut(&id) {
                    template.removed_at = Some(removed.at);
                    template.updated_at = removed.at;
                    self.dirty_templates.push(id);
                }
            }
            E::GreetingSet(set) => settings.greeting.clone_from(&set.text),
            E::ReopenWindowSet(set) => {
                settings.reopen_window_seconds = i64::try_from(set.seconds).unwrap_or(i64::MAX);
            }
            // Read from the log where sign-in decides, not from this read model.
            E::TwoFactorPolicySet(_) => {}
            // Read from the settings stream itself (GraphQL `botTexts`): no table keeps them.
            E::BotTextSet(_) => {}
        }
    }

    async fn write(mut self, conn: &mut PgConnection, target: Target) -> Result<(), ApplyError> {
        dedup(&mut self.dirty_agents);
        let agents: Vec<&AgentRow> = self
            .dirty_agents
            .iter()
            .filter_map(|id| self.agents.get(id))
            .collect();
        if !agents.is_empty() {
            static UPSERT: sql::Upsert = sql::Upsert::new(
                AgentRow::TABLE,
                AgentRow::WRITTEN,
                &["id"],
                sql::OnConflict::NEWER,
            );
            AgentRow::bind(sqlx::query(UPSERT.text(target)), &agents)
                .execute(&mut *conn)
                .await?;
        }
        if !self.settings_dirty {
            return Ok(());
        }
        if let Some(settings) = &self.settings {
            let rows = [settings];
            static UPSERT: sql::Upsert = sql::Upsert::new(
                SettingsRow::TABLE,
                SettingsRow::WRITTEN,
                &["id"],
                sql::OnConflict::NEWER,
            );
            SettingsRow::bind(sqlx::query(UPSERT.text(target)), &rows)
                .execute(&mut *conn)
                .await?;
        }
        dedup(&mut self.dirty_categories);
        let categories: Vec<&CategoryRow> = self
            .dirty_categories
            .iter()
            .filter_map(|id| self.categories.get(id))
            .collect();
        if !categories.is_empty() {
            static UPSERT: sql::Upsert = sql::Upsert::new(
                CategoryRow::TABLE,
                CategoryRow::WRITTEN,
                &["id"],
                sql::OnConflict::Update,
            );
            CategoryRow::bind(sqlx::query(UPSERT.text(target)), &categories)
                .execute(&mut *conn)
                .await?;
        }
        dedup(&mut self.dirty_templates);
        let templates: Vec<&TemplateRow> = self
            .dirty_templates
            .iter()
            .filter_map(|id| self.templates.get(id))
            .collect();
        if !templates.is_empty() {
            static UPSERT: sql::Upsert = sql::Upsert::new(
                TemplateRow::TABLE,
                TemplateRow::WRITTEN,
                &["id"],
                sql::OnConflict::Update,
            );
            TemplateRow::bind(sqlx::query(UPSERT.text(target)), &templates)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

fn dedup(ids: &mut Vec<Uuid>) {
    ids.sort_unstable();
    ids.dedup();
}
