//! What every handler can reach ([`AppState`]), and how the API is configured ([`ApiConfig`]).

use std::sync::Arc;

use app::commands::CommandService;
use eventlog::postgres::PostgresLog;
use projections::Projection;

use crate::auth::{AuthConfig, AuthError, AuthService};
use crate::graphql::context::{Api, Limits};
use crate::graphql::documents::DocumentCache;
use crate::graphql::{self, ApiSchema};
use crate::live;

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
    /// Parsed query texts of `POST /graphql` and of WebSocket operations.
    pub(crate) documents: Arc<DocumentCache>,
    /// The accepted WebSockets of each caller.
    pub(crate) sockets: Arc<crate::routes::graphql::socket::Sockets>,
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
    /// Connection bounds and timeouts of the HTTP server ([`crate::server`]).
    pub server: crate::server::ServerConfig,
    /// Media storage and fetching (`/media`, the media URLs in GraphQL); `None`: no media
    /// are served.
    pub media: Option<media::MediaConfig>,
    /// The public key of the log's anchor key, which `auditVerify` checks anchors against
    /// (`None`: the server has no anchor key; anchors are then checked against the key
    /// stored with them only).
    pub anchor_public_key: Option<[u8; 32]>,
}

impl AppState {
    /// Builds the services and the schema.
    ///
    /// # Errors
    /// When the signing key cannot be read or is too short, or the media storage cannot be
    /// opened.
    pub async fn new(
        commands: CommandService<PostgresLog>,
        projections: Vec<Arc<dyn Projection>>,
        config: ApiConfig,
    ) -> Result<Self, AuthError> {
        use secrecy::ExposeSecret;
        let log = commands.log().clone();
        let secret = config
            .jwt_secret
            .as_ref()
            .map(|secret| secret.expose_secret().as_bytes().to_vec());
        let auth = AuthService::new(commands.clone(), secret.as_deref(), config.auth).await?;
        let media = match config.media {
            Some(media) => Some(
                media::MediaService::new(log.pool().clone(), media)
                    .await
                    .map_err(|error| AuthError::Internal(error.to_string()))?,
            ),
            None => None,
        };
        let api = Api {
            pool: log.pool().clone(),
            commands,
            log: log.clone(),
            auth,
            projections: projections.clone(),
            limits: config.limits,
            live: live::LiveHub::new(log.clone()),
            media,
            anchor_keys: config.anchor_public_key.into_iter().collect(),
        };
        let schema = graphql::schema(api.clone());
        let documents = Arc::new(DocumentCache::new(graphql::root_fields()));
        Ok(AppState {
            log,
            projections: projections.into(),
            api: Arc::new(api),
            schema,
            documents,
            sockets: Arc::default(),
        })
    }
}

impl AppState {
    /// The media service, when media are served (the bot sends uploads through it).
    pub fn media(&self) -> Option<media::MediaService> {
        self.api.media.clone()
    }

    /// The live hub of the subscriptions, to stop it at shutdown.
    pub fn live(&self) -> live::LiveHub {
        self.api.live.clone()
    }
}
