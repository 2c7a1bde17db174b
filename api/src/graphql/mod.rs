//! The GraphQL API: schema, context, transport.
//!
//! - `POST /graphql`: queries and mutations (JSON body, batches of at most
//!   [`Limits::max_batch`]); `GET /graphql` opens GraphiQL.
//! - `GET /graphql/ws`: subscriptions over `graphql-transport-ws` or the legacy `graphql-ws`,
//!   with the credential in the `connection_init` payload (`{"authorization": "Bearer …"}`).
//!
//! Each request carries its [`Authentication`] and the client's address as request data;
//! resolvers reach shared services through [`Api`]. Every resolver that touches data is guarded
//! by a [`guard::Need`] naming its [`crate::auth::Permission`].

pub mod error;
pub mod guard;
pub mod ids;

pub mod agents;
pub mod auth;
pub mod consistency;
pub mod documents;
pub mod mutations;
pub mod queries;
pub mod subscriptions;
pub mod system;
pub mod tickets;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use app::commands::{CommandContext, CommandService};
use async_graphql::{MergedObject, Schema, SchemaBuilder};
use eventlog::postgres::PostgresLog;
use projections::Projection;
use sqlx::PgPool;

use crate::auth::{AuthService, Caller};

pub use consistency::{CONSISTENCY_HEADER, ConsistencyInput, consistent};
pub(crate) use transport::routes;

/// Bounds on what one request may ask. Every field has a safe default.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deepest query nesting.
    pub max_depth: usize,
    /// Highest query complexity (each field costs 1, a connection multiplies by its `first`).
    pub max_complexity: usize,
    /// Most items one connection page returns (`first` above it is refused).
    pub max_page: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most operations in one batch request.
    pub max_batch: usize,
    /// Whether introspection (schema discovery, GraphiQL's docs) is served.
    pub introspection: bool,
    /// Longest a query waits for the read models to reach a requested position.
    pub consistency_timeout: Duration,
    /// How often an open WebSocket's credential is checked again: once it has expired, been
    /// revoked or its sessions ended (logout, role change, deactivation), the socket is closed
    /// with code 4403 within this long.
    pub socket_credential_check: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 15,
            max_complexity: 5_000,
            max_page: 100,
            max_body_bytes: 256 * 1024,
            max_batch: 10,
            introspection: true,
            consistency_timeout: Duration::from_secs(5),
            socket_credential_check: Duration::from_secs(2),
        }
    }
}

/// What resolvers share: services and settings. Reached with `ctx.data_unchecked::<Api>()`.
#[derive(Debug, Clone)]
pub struct Api {
    /// The database of the read models (and of the log).
    pub pool: PgPool,
    /// The event log.
    pub log: PostgresLog,
    /// The write path.
    pub commands: CommandService<PostgresLog>,
    /// Sign-in and tokens.
    pub auth: AuthService,
    /// The read models, for status and read-your-writes.
    pub projections: Vec<Arc<dyn Projection>>,
    /// Request bounds.
    pub limits: Limits,
    /// The live feed subscriptions read from.
    pub live: crate::live::LiveHub,
}

impl Api {
    /// The context for commands sent by `caller`.
    pub fn context_for(caller: &Caller) -> CommandContext {
        CommandContext::new(caller.actor()).correlated(uuid::Uuid::now_v7())
    }
}

/// Every query.
#[derive(Debug, MergedObject, Default)]
pub struct Query(
    auth::MeQuery,
    system::SystemQuery,
    agents::ApiTokenQuery,
    queries::tickets::TicketQuery,
    queries::customers::CustomerQuery,
    queries::directory::DirectoryQuery,
    queries::broadcasts::BroadcastQuery,
    queries::dashboard::DashboardQuery,
    queries::node::NodeQuery,
);

/// Every mutation.
#[derive(Debug, MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    agents::AgentMutation,
    mutations::tickets::TicketMutation,
    mutations::customers::CustomerMutation,
    mutations::settings::SettingsMutation,
    mutations::broadcasts::BroadcastMutation,
);

/// Every subscription.
pub type Subscription = subscriptions::SubscriptionRoot;

/// The executable schema.
pub type ApiSchema = Schema<Query, Mutation, Subscription>;

/// The schema's builder, without runtime data (enough to print the SDL).
pub fn builder(limits: &Limits) -> SchemaBuilder<Query, Mutation, Subscription> {
    let builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity)
    .limit_recursive_depth(32)
    .limit_directives(20);
    if limits.introspection {
        builder
    } else {
        builder.disable_introspection()
    }
}

/// The schema wired to `api`.
pub fn schema(api: Api) -> ApiSchema {
    builder(&api.limits).data(api).finish()
}

/// The two schemas of `POST /graphql` (see [`documents`]). Which one a request runs on is what
/// [`documents::DocumentCache::prepare`] answers.
pub struct HttpSchemas {
    /// Checks every validation rule and tells the document cache which operations passed.
    pub checking: ApiSchema,
    /// For requests of operations that passed before: its validation keeps only the
    /// complexity and depth limits.
    pub known: ApiSchema,
}

impl std::fmt::Debug for HttpSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSchemas").finish_non_exhaustive()
    }
}

/// The schemas of `POST /graphql`, wired to `api` and remembering in `documents`.
pub fn http_schemas(api: &Api, documents: &Arc<documents::DocumentCache>) -> HttpSchemas {
    HttpSchemas {
        checking: builder(&api.limits)
            .data(api.clone())
            .extension(documents::RememberValid(documents.clone()))
            .finish(),
        known: builder(&api.limits)
            .validation_mode(async_graphql::ValidationMode::Fast)
            .data(api.clone())
            .finish(),
    }
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    builder(&Limits::default()).finish().sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    )
}
