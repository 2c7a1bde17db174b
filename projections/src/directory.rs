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
use domain::agent::AgentEvent;
use domain::settings::{DEFAULT_REOPEN_WINDOW_SECS, SettingsEvent};
use domain::{AnyEvent, StreamId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{ApplyError, Envelope, Target, read_model};
use crate::sql::{self, Column, col};

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

const AGENT_COLUMNS: &[Column] = &[
    ("id", "uuid"),
    ("email", "text"),
    ("name", "text"),
    ("role", "text"),
    ("category_ids", "uuid[]"),
    ("active", "boolean"),
    ("invited_by", "uuid"),
    ("invited_at", "timestamptz"),
    ("deactivated_at", "timestamptz"),
    ("password_changed_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("version", "bigint"),
];

#[derive(Debug, Clone, sqlx::FromRow)]
struct AgentRow {
    id: Uuid,
    email: String,
    name: String,
    role: String,
    category_ids: Vec<Uuid>,
    active: bool,
    invited_by: Option<Uuid>,
    invited_at: DateTime<Utc>,
    deactivated_at: Option<DateTime<Utc>>,
    password_changed_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    version: i64,
}

const CATEGORY_COLUMNS: &[Column] = &[
    ("id", "uuid"),
    ("name", "text"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("removed_at", "timestamptz"),
];

#[derive(Debug, Clone, sqlx::FromRow)]
struct CategoryRow {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    removed_at: Option<DateTime<Utc>>,
}

const TEMPLATE_COLUMNS: &[Column] = &[
    ("id", "uuid"),
    ("title", "text"),
    ("text", "text"),
    ("created_by", "uuid"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("removed_at", "timestamptz"),
];

#[derive(Debug, Clone, sqlx::FromRow)]
struct TemplateRow {
    id: Uuid,
    title: String,
    text: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    removed_at: Option<DateTime<Utc>>,
}

const SETTINGS_COLUMNS: &[Column] = &[
    ("id", "boolean"),
    ("greeting", "text"),
    ("reopen_window_seconds", "bigint"),
    ("updated_at", "timestamptz"),
    ("version", "bigint"),
];

#[derive(Debug, Clone, sqlx::FromRow)]
struct SettingsRow {
    id: bool,
    greeting: Option<String>,
    reopen_window_seconds: i64,
    updated_at: DateTime<Utc>,
    version: i64,
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
                    E::GreetingSet(_) | E::ReopenWindowSet(_) => {}
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
        let sql = sql::select_sql(&target.table("agents"), AGENT_COLUMNS, "id");
        for row in sqlx::query_as::<_, AgentRow>(&sql)
            .bind(&agent_ids)
            .fetch_all(&mut *conn)
            .await?
        {
            fold.agents.insert(row.id, row);
        }
    }
    if settings {
        let sql = sql::select_sql(&target.table("support_settings"), SETTINGS_COLUMNS, "id");
        fold.settings = sqlx::query_as::<_, SettingsRow>(&sql)
            .bind(vec![true])
            .fetch_optional(&mut *conn)
            .await?;
        if !category_ids.is_empty() {
            let sql = sql::select_sql(&target.table("categories"), CATEGORY_COLUMNS, "id");
            for row in sqlx::query_as::<_, CategoryRow>(&sql)
                .bind(&category_ids)
                .fetch_all(&mut *conn)
                .await?
            {
                fold.categories.insert(row.id, row);
            }
        }
        if !template_ids.is_empty() {
            let sql = sql::select_sql(&target.table("templates"), TEMPLATE_COLUMNS, "id");
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
                        role: sql::role(invited.role).to_owned(),
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
                agent.role = sql::role(changed.role).to_owned();
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
            static UPSERT: sql::Upsert =
                sql::Upsert::new("agents", AGENT_COLUMNS, &["id"], sql::OnConflict::NEWER);
            let sql = UPSERT.text(target);
            let categories: Vec<String> = agents
                .iter()
                .map(|a| sql::uuid_array_literal(&a.category_ids))
                .collect();
            sqlx::query(sql)
                .bind(col!(agents, id))
                .bind(col!(agents, email))
                .bind(col!(agents, name))
                .bind(col!(agents, role))
                .bind(categories)
                .bind(col!(agents, active))
                .bind(col!(agents, invited_by))
                .bind(col!(agents, invited_at))
                .bind(col!(agents, deactivated_at))
                .bind(col!(agents, password_changed_at))
                .bind(col!(agents, updated_at))
                .bind(col!(agents, version))
                .execute(&mut *conn)
                .await?;
        }
        if !self.settings_dirty {
            return Ok(());
        }
        if let Some(settings) = &self.settings {
            let rows = [settings];
            static UPSERT: sql::Upsert = sql::Upsert::new(
                "support_settings",
                SETTINGS_COLUMNS,
                &["id"],
                sql::OnConflict::NEWER,
            );
            sqlx::query(UPSERT.text(target))
                .bind(col!(rows, id))
                .bind(col!(rows, greeting))
                .bind(col!(rows, reopen_window_seconds))
                .bind(col!(rows, updated_at))
                .bind(col!(rows, version))
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
                "categories",
                CATEGORY_COLUMNS,
                &["id"],
                sql::OnConflict::Update,
            );
            sqlx::query(UPSERT.text(target))
                .bind(col!(categories, id))
                .bind(col!(categories, name))
                .bind(col!(categories, created_at))
                .bind(col!(categories, updated_at))
                .bind(col!(categories, removed_at))
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
                "templates",
                TEMPLATE_COLUMNS,
                &["id"],
                sql::OnConflict::Update,
            );
            sqlx::query(UPSERT.text(target))
                .bind(col!(templates, id))
                .bind(col!(templates, title))
                .bind(col!(templates, text))
                .bind(col!(templates, created_by))
                .bind(col!(templates, created_at))
                .bind(col!(templates, updated_at))
                .bind(col!(templates, removed_at))
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
