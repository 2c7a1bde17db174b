//! The team and its settings as GraphQL shows them: agents, ticket categories, quick-reply
//! templates.

use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};
use projections::directory::{AgentRow, CategoryRow, TemplateRow};
use uuid::Uuid;

use crate::graphql::auth::RoleValue;
use crate::graphql::ids;

/// A member of the team.
#[derive(Debug, Clone, SimpleObject)]
pub struct Agent {
    /// Global id.
    pub id: ID,
    /// The agent's uuid.
    pub agent_id: ID,
    /// Email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: RoleValue,
    /// The categories they work (none: all).
    pub category_ids: Vec<ID>,
    /// False once deactivated.
    pub active: bool,
    /// When they were invited.
    pub invited_at: DateTime<Utc>,
    /// When they were deactivated.
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl From<AgentRow> for Agent {
    fn from(row: AgentRow) -> Self {
        Agent {
            id: ids::global("Agent", row.id),
            agent_id: ID(row.id.to_string()),
            email: row.email,
            name: row.name,
            role: row.role.into(),
            category_ids: row
                .category_ids
                .into_iter()
                .map(|id| ID(id.to_string()))
                .collect(),
            active: row.active,
            invited_at: row.invited_at,
            deactivated_at: row.deactivated_at,
        }
    }
}

/// A ticket category.
#[derive(Debug, Clone, SimpleObject)]
pub struct Category {
    /// Global id.
    pub id: ID,
    /// The category's uuid.
    #[graphql(skip)]
    pub uuid: Uuid,
    /// The category's uuid, as `Ticket.categoryId` and `Agent.categoryIds` name it.
    pub category_id: ID,
    /// Name.
    pub name: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last renamed.
    pub updated_at: DateTime<Utc>,
    /// When removed (old tickets keep the name).
    pub removed_at: Option<DateTime<Utc>>,
}

impl From<CategoryRow> for Category {
    fn from(row: CategoryRow) -> Self {
        Category {
            id: ids::global("Category", row.id),
            uuid: row.id,
            category_id: ID(row.id.to_string()),
            name: row.name,
            created_at: row.created_at,
            updated_at: row.updated_at,
            removed_at: row.removed_at,
        }
    }
}

/// A quick-reply template.
#[derive(Debug, Clone, SimpleObject)]
pub struct Template {
    /// Global id.
    pub id: ID,
    /// The template's uuid.
    #[graphql(skip)]
    pub uuid: Uuid,
    /// The template's uuid, as `Message.templateId` names it.
    pub template_id: ID,
    /// Title.
    pub title: String,
    /// The reply text.
    pub text: String,
    #[graphql(skip)]
    pub created_by: Uuid,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last edited.
    pub updated_at: DateTime<Utc>,
    /// When removed.
    pub removed_at: Option<DateTime<Utc>>,
}

impl From<TemplateRow> for Template {
    fn from(row: TemplateRow) -> Self {
        Template {
            id: ids::global("Template", row.id),
            uuid: row.id,
            template_id: ID(row.id.to_string()),
            title: row.title,
            text: row.text,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            removed_at: row.removed_at,
        }
    }
}
