//! The HTTP surface of Ledgerdesk: the axum router with the GraphQL API (`/graphql`,
//! `/graphql/ws`), the health endpoints and `/metrics`. Handlers hold no business rules: they
//! call the command service, the log and the read models.

pub mod auth;
pub mod graphql;
mod health;
pub mod live;
mod metrics;
pub mod read;

use std::sync::Arc;

use axum::Router;
use eventlog::commands::CommandService;
use eventlog::postgres::PostgresLog;
use projections::Projection;

use crate::auth::{AuthConfig, AuthError, AuthService};
use crate::graphql::{Api, ApiSchema, Limits};

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The event log (and through it, the database).
    pub log: PostgresLog,
    /// The read models, for status and metrics.
    pub projections: Arc<[Arc<dyn Projection>]>,
    /// The services resolvers share.
    pub api: Arc<Api>,
    /// The executable GraphQL schema (subscriptions run on it).
    pub schema: ApiSchema,
    /// Parsed query texts of `POST /graphql`, and which passed validation.
    documents: Arc<graphql::documents::DocumentCache>,
    /// `POST /graphql`'s schemas: every validation rule, and the known documents'.
    http: Arc<graphql::HttpSchemas>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// How the API behaves; every field has a safe default.
#[derive(Debug, Clone, Default)]
pub struct ApiConfig {
    /// Sign-in and token lifetimes and limits.
    pub auth: AuthConfig,
    /// Request bounds.
    pub limits: Limits,
    /// The access-token signing secret; `None` uses the key kept in the database.
    pub jwt_secret: Option<secrecy::SecretString>,
}

impl AppState {
    /// Builds the services and the schema.
    ///
    /// # Errors
    /// When the signing key cannot be read or is too short.
    pub async fn new(
        log: PostgresLog,
        projections: Vec<Arc<dyn Projection>>,
        config: ApiConfig,
    ) -> Result<Self, AuthError> {
        use secrecy::ExposeSecret;
        let secret = config
            .jwt_secret
            .as_ref()
            .map(|secret| secret.expose_secret().as_bytes().to_vec());
        let auth = AuthService::new(log.clone(), secret.as_deref(), config.auth).await?;
        let api = Api {
            pool: log.pool().clone(),
            commands: CommandService::new(log.clone()),
            log: log.clone(),
            auth,
            projections: projections.clone(),
            limits: config.limits,
            live: live::LiveHub::new(log.clone()),
        };
        let schema = graphql::schema(api.clone());
        let documents = Arc::default();
        let http = Arc::new(graphql::http_schemas(&api, &documents));
        Ok(AppState {
            log,
            projections: projections.into(),
            api: Arc::new(api),
            schema,
            documents,
            http,
        })
    }
}

impl AppState {
    /// The live hub of the subscriptions, to stop it at shutdown.
    pub fn live(&self) -> live::LiveHub {
        self.api.live.clone()
    }
}

/// The whole HTTP router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(graphql::routes())
        .with_state(state)
}
