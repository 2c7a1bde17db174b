//! What resolvers share: the services behind the schema ([`Api`]) and the bounds on what
//! one request may ask ([`Limits`]).

use std::sync::Arc;
use std::time::Duration;

use app::commands::{CommandContext, CommandService};
use eventlog::postgres::PostgresLog;
use projections::Projection;
use sqlx::PgPool;

use crate::auth::{AuthService, Caller};

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
    /// How long a new WebSocket may take to send `connection_init`; after that it is closed
    /// with code 4408.
    pub socket_init_timeout: Duration,
    /// Largest document once its fragments are spread: fields, spreads, inline fragments and
    /// directives counted (see [`super::expansion`]).
    pub max_selections: usize,
    /// Longest one request (over HTTP, or a query or mutation over a WebSocket) may take
    /// before it is stopped and answered with `TIMEOUT`.
    pub request_timeout: Duration,
    /// How long an accepted WebSocket with no running operation may stay silent before it
    /// is closed with 1001; any message (a `ping` too) counts.
    pub socket_idle_timeout: Duration,
    /// Most operations (subscriptions, and queries still running) one WebSocket runs at once;
    /// one more is refused with `TOO_MANY_SUBSCRIPTIONS`.
    pub max_socket_subscriptions: usize,
    /// Most accepted WebSockets one agent (or API token) holds open at once; one more is
    /// closed with 4429.
    pub max_sockets_per_caller: usize,
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
            socket_init_timeout: Duration::from_secs(10),
            max_selections: 10_000,
            request_timeout: Duration::from_secs(30),
            socket_idle_timeout: Duration::from_secs(300),
            max_socket_subscriptions: 100,
            max_sockets_per_caller: 20,
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
    /// Media storage, fetching and URL signing (`None`: media are not served).
    pub media: Option<media::MediaService>,
    /// The public keys the log's anchors are checked against (empty: none is known).
    pub anchor_keys: Vec<[u8; 32]>,
}

impl Api {
    /// The context for commands sent by `caller`.
    pub fn context_for(caller: &Caller) -> CommandContext {
        CommandContext::new(caller.actor()).correlated(uuid::Uuid::now_v7())
    }
}
