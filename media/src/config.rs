//! How media are kept and served. Every field has a safe default; the S3 keys are secrets and
//! never appear in `Debug` output or logs.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// Telegram's limit on files a bot may download through the public Bot API (20 MB).
pub const BOT_API_DOWNLOAD_LIMIT: u64 = 20 * 1024 * 1024;

/// Where stored copies live.
#[derive(Clone)]
pub enum Backend {
    /// A directory of the local file system (created if missing).
    Local {
        /// The directory.
        dir: PathBuf,
    },
    /// An S3-compatible bucket.
    S3(S3Config),
}

/// An S3-compatible bucket and how to reach it (`Debug` shows no key: they are secrets).
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The service's URL (`https://s3.eu-west-1.amazonaws.com`, a MinIO server…); `None`: AWS.
    pub endpoint: Option<String>,
    /// The bucket (it must exist).
    pub bucket: String,
    /// The region (`us-east-1` when the service does not care).
    pub region: String,
    /// The access key id.
    pub access_key_id: Option<SecretString>,
    /// The secret access key.
    pub secret_access_key: Option<SecretString>,
    /// Keys under this prefix only (`ledgerdesk/`); empty: the whole bucket.
    pub prefix: String,
    /// Allow a plain `http://` endpoint (a server on the same host or network).
    pub allow_http: bool,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Local { dir } => f.debug_struct("Local").field("dir", dir).finish(),
            Backend::S3(s3) => f
                .debug_struct("S3")
                .field("endpoint", &s3.endpoint)
                .field("bucket", &s3.bucket)
                .field("region", &s3.region)
                .field(
                    "access_key_id",
                    &s3.access_key_id.as_ref().map(|_| "[redacted]"),
                )
                .field(
                    "secret_access_key",
                    &s3.secret_access_key.as_ref().map(|_| "[redacted]"),
                )
                .field("prefix", &s3.prefix)
                .field("allow_http", &s3.allow_http)
                .finish(),
        }
    }
}

/// Everything about media.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The Bot API to fetch files from (the bot's); `None`: only stored files are served.
    pub telegram: Option<crate::TelegramFiles>,
    /// Where stored copies live.
    pub backend: Backend,
    /// Largest file fetched from the Bot API (20 MB on Telegram's; a local Bot API server
    /// lifts it).
    pub download_limit: u64,
    /// Largest file an agent may upload.
    pub upload_limit: u64,
    /// How long a signed media URL stays valid.
    pub url_ttl: Duration,
    /// Most files fetched from Telegram at once by this process (on demand and prefetch).
    pub fetch_concurrency: usize,
    /// Longest a fetch from Telegram may take, from `getFile` to the last byte.
    pub fetch_timeout: Duration,
    /// Fetch every incoming file as it arrives, in the background.
    pub prefetch: bool,
    /// Most prefetches running at once.
    pub prefetch_concurrency: usize,
    /// Prefetch only while the stored copies take less than this many bytes in total.
    pub prefetch_max_total_bytes: u64,
    /// Delete stored copies older than this (`None`: keep them).
    pub retention: Option<Duration>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            telegram: None,
            backend: Backend::Local {
                dir: PathBuf::from("data/media"),
            },
            download_limit: BOT_API_DOWNLOAD_LIMIT,
            upload_limit: 50 * 1024 * 1024,
            url_ttl: Duration::from_secs(10 * 60),
            fetch_concurrency: 8,
            fetch_timeout: Duration::from_secs(300),
            prefetch: false,
            prefetch_concurrency: 2,
            prefetch_max_total_bytes: 10 * 1024 * 1024 * 1024,
            retention: None,
        }
    }
}
