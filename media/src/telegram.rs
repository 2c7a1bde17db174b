//! Files from the Bot API: `getFile` for a file's path, then the download from
//! `<api>/file/bot<token>/<path>`, streamed. A local Bot API server started with `--local`
//! answers `getFile` with an absolute path on its own disk: such a file is read from that
//! path (the server's directory must be mounted here too).
//!
//! Nothing here keeps an error's text that could hold the token: reqwest's errors carry the
//! request URL, so errors are named by their kind only.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Why a file could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Larger than the Bot API lets a bot download (its size, when known).
    #[error("the file is too large to fetch through the Bot API")]
    TooLarge {
        /// Its size in bytes, when Telegram said.
        size: Option<u64>,
    },
    /// Telegram no longer has it, or never had it for this bot.
    #[error("Telegram does not have this file: {0}")]
    Gone(String),
    /// Telegram or the way there failed; trying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// No bot is configured to fetch with.
    #[error("no Telegram bot is configured to fetch files with")]
    NoBot,
}

/// How to reach the Bot API's files.
#[derive(Clone)]
pub struct TelegramFiles {
    client: reqwest::Client,
    api_url: url::Url,
    token: SecretString,
}

impl std::fmt::Debug for TelegramFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramFiles")
            .field("api_url", &self.api_url.as_str())
            .field("token", &"[redacted]")
            .finish()
    }
}

/// What `getFile` answered.
#[derive(Debug, Clone, Deserialize)]
pub struct FileInfo {
    /// The path to download from (absolute on a local Bot API server).
    #[serde(default)]
    pub file_path: Option<String>,
    /// The size, when known.
    #[serde(default)]
    pub file_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    result: Option<FileInfo>,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    description: Option<String>,
}

impl TelegramFiles {
    /// Files of the bot with `token` on the Bot API at `api_url`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(api_url: url::Url, token: SecretString) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Between two reads of a download, not for all of it (see the fetch timeout).
            .read_timeout(Duration::from_secs(30))
            .build()
            .map_err(|_| FetchError::Unavailable("cannot build the HTTP client".to_owned()))?;
        Ok(TelegramFiles {
            client,
            api_url,
            token,
        })
    }

    fn url(&self, segments: &[&str]) -> Result<url::Url, FetchError> {
        let mut url = self.api_url.clone();
        url.path_segments_mut()
            .map_err(|()| FetchError::Unavailable("the Bot API URL cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// `getFile`: the file's path and size.
    ///
    /// # Errors
    /// [`FetchError::TooLarge`] when Telegram says so, [`FetchError::Gone`] for a file id it
    /// refuses, [`FetchError::Unavailable`] otherwise.
    pub async fn get_file(&self, file_id: &str) -> Result<FileInfo, FetchError> {
        let bot = format!("bot{}", self.token.expose_secret());
        let url = self.url(&[&bot, "getFile"])?;
        let response = self
            .client
            .post(url)
            .json(&serde_json::json!({ "file_id": file_id }))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| network(&e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| network(&e))?;
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|_| {
            FetchError::Unavailable(format!("the Bot API answered HTTP {status} without JSON"))
        })?;
        if answer.ok {
            return answer
                .result
                .ok_or_else(|| FetchError::Unavailable("getFile answered no file".to_owned()));
        }
        let code = answer.error_code.unwrap_or(status);
        let description: String = answer
            .description
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        if description.to_lowercase().contains("too big") {
            return Err(FetchError::TooLarge { size: None });
        }
        match code {
            400 | 404 => Err(FetchError::Gone(description)),
            _ => Err(FetchError::Unavailable(format!(
                "getFile failed ({code}): {description}"
            ))),
        }
    }

    /// The file's bytes, as a stream.
    ///
    /// # Errors
    /// [`FetchError::Gone`] for a 404, [`FetchError::Unavailable`] for any other failure.
    pub async fn download(
        &self,
        file_path: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, FetchError>>, FetchError> {
        if file_path.starts_with('/') {
            let file = tokio::fs::File::open(file_path).await.map_err(|e| {
                FetchError::Unavailable(format!(
                    "cannot open the local Bot API server's file: {}",
                    e.kind()
                ))
            })?;
            return Ok(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024)
                .map_err(|e| {
                    FetchError::Unavailable(format!("reading the file failed: {}", e.kind()))
                })
                .boxed());
        }
        let bot = format!("bot{}", self.token.expose_secret());
        let mut segments = vec!["file", bot.as_str()];
        segments.extend(file_path.split('/').filter(|s| !s.is_empty()));
        let url = self.url(&segments)?;
        let response = self.client.get(url).send().await.map_err(|e| network(&e))?;
        match response.status().as_u16() {
            200 => Ok(response.bytes_stream().map_err(|e| network(&e)).boxed()),
            404 => Err(FetchError::Gone("the download answered 404".to_owned())),
            status => Err(FetchError::Unavailable(format!(
                "the download answered HTTP {status}"
            ))),
        }
    }
}

/// A network error named by its kind only (its text holds the URL, hence the token).
fn network(error: &reqwest::Error) -> FetchError {
    FetchError::Unavailable(
        if error.is_timeout() {
            "network error: Telegram did not answer in time"
        } else if error.is_connect() {
            "network error: could not connect to Telegram"
        } else if error.is_body() || error.is_decode() {
            "network error: the download was cut off"
        } else {
            "network error"
        }
        .to_owned(),
    )
}
