//! `customers` and `customer`: the people who write to the bot, from the `customers` read
//! model. Names and usernames are personal data; the team needs them to answer, so they are
//! shown to callers holding `ReadCustomers` and nothing more is exposed.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::tickets::customer_key;
use super::{
    MAX_TEXT_FILTER, bounded, connection, connection_complexity, contains_pattern, cursor,
    cursor_part, page,
};
use crate::auth::Permission;
use crate::graphql::error::{Code, database, error};
use crate::graphql::guard::Need;
use crate::graphql::{Api, ConsistencyInput, consistent, ids};

/// A customer: someone who wrote to the bot on Telegram.
#[derive(Debug, Clone, SimpleObject)]
pub struct Customer {
    /// Global id.
    pub id: ID,
    /// Their Telegram user id.
    pub customer_id: ID,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: Option<String>,
    /// `@username`, without the `@`.
    pub username: Option<String>,
    /// Their client's language.
    pub language_code: Option<String>,
    /// Their first message.
    pub registered_at: DateTime<Utc>,
    /// Their last message.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Whether they blocked the bot (replies cannot reach them).
    pub blocked_bot: bool,
    /// Whether the team banned them.
    pub banned: bool,
    /// Why, when banned.
    pub ban_reason: Option<String>,
    /// Whether they opted out of broadcasts.
    pub opted_out_of_broadcasts: bool,
    /// Tickets they ever had.
    pub tickets_total: i32,
    /// Their tickets not yet resolved.
    pub tickets_open: i32,
    /// Their active ticket, if any.
    pub open_ticket_id: Option<ID>,
}

#[derive(Debug, sqlx::FromRow)]
struct CustomerRow {
    id: i64,
    first_name: String,
    last_name: Option<String>,
    username: Option<String>,
    language_code: Option<String>,
    registered_at: DateTime<Utc>,
    last_seen_at: Option<DateTime<Utc>>,
    blocked_bot: bool,
    banned: bool,
    ban_reason: Option<String>,
    opted_out_of_broadcasts: bool,
    tickets_total: i32,
    tickets_open: i32,
    open_ticket_id: Option<uuid::Uuid>,
}

const CUSTOMER_COLUMNS: &str = "id, first_name, last_name, username, language_code, \
    registered_at, last_seen_at, blocked_bot, banned, ban_reason, opted_out_of_broadcasts, \
    tickets_total, tickets_open, open_ticket_id";

impl From<CustomerRow> for Customer {
    fn from(row: CustomerRow) -> Self {
        Customer {
            id: ids::global("Customer", row.id),
            customer_id: ID(row.id.to_string()),
            first_name: row.first_name,
            last_name: row.last_name,
            username: row.username,
            language_code: row.language_code,
            registered_at: row.registered_at,
            last_seen_at: row.last_seen_at,
            blocked_bot: row.blocked_bot,
            banned: row.banned,
            ban_reason: row.ban_reason,
            opted_out_of_broadcasts: row.opted_out_of_broadcasts,
            tickets_total: row.tickets_total,
            tickets_open: row.tickets_open,
            open_ticket_id: row.open_ticket_id.map(|id| ID(id.to_string())),
        }
    }
}

/// One customer by Telegram id.
///
/// # Errors
/// The database's.
pub async fn load_customer(pool: &PgPool, id: i64) -> sqlx::Result<Option<Customer>> {
    let row: Option<CustomerRow> = sqlx::query_as(&format!(
        "select {CUSTOMER_COLUMNS} from customers where id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Customer::from))
}

async fn list_customers(
    pool: &PgPool,
    search: Option<&str>,
    banned: Option<bool>,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> sqlx::Result<Vec<CustomerRow>> {
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "select {CUSTOMER_COLUMNS} from customers where true"
    ));
    if let Some(search) = search {
        let pattern = contains_pattern(search);
        sql.push(" and (username ilike ")
            .push_bind(pattern.clone())
            .push(" or (first_name || ' ' || coalesce(last_name, '')) ilike ")
            .push_bind(pattern)
            .push(")");
    }
    if let Some(banned) = banned {
        sql.push(" and banned = ").push_bind(banned);
    }
    if let Some((at, id)) = after {
        sql.push(" and (registered_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    sql.push(" order by registered_at desc, id desc limit ")
        .push_bind(limit);
    sql.build_query_as().fetch_all(pool).await
}

/// `customers` and `customer`.
#[derive(Debug, Default)]
pub struct CustomerQuery;

#[Object]
impl CustomerQuery {
    /// Customers, newest first, optionally matching a name or username (at most 100
    /// characters) or their ban.
    #[graphql(
        guard = "Need(Permission::ReadCustomers)",
        complexity = "connection_complexity(first, child_complexity)"
    )]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
        banned: Option<bool>,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Connection<String, Customer>> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, first, after.as_deref())?;
        let search = bounded("search", search.as_deref(), MAX_TEXT_FILTER)?;
        let after = request
            .after
            .as_ref()
            .map(|(key, id)| -> Result<(DateTime<Utc>, i64)> {
                let at = DateTime::from_timestamp_micros(cursor_part(key)?)
                    .ok_or_else(|| error(Code::Validation, "not a cursor of this list"))?;
                Ok((at, cursor_part(id)?))
            })
            .transpose()?;
        let rows = list_customers(&api.pool, search, banned, after, request.limit())
            .await
            .map_err(database)?;
        Ok(connection(
            &request,
            rows,
            |row| cursor(row.registered_at.timestamp_micros(), row.id),
            Customer::from,
        ))
    }

    /// One customer, by Telegram id or global id.
    #[graphql(guard = "Need(Permission::ReadCustomers)")]
    async fn customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Customer> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        load_customer(&api.pool, customer_key(&id)?)
            .await
            .map_err(database)?
            .ok_or_else(|| error(Code::NotFound, "no such customer"))
    }
}
