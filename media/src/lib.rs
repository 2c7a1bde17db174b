//! Media files of messages: what customers sent (fetched from the Bot API on first request,
//! then kept) and what agents upload to send. Kept in a local directory or an S3-compatible
//! bucket ([`storage`]), recorded in `media_objects` and `media_uploads` ([`store`]), served
//! through signed URLs ([`signing`]).
//!
//! A file is fetched once however many ask at once: requests for one key in this process
//! wait on one lock, and processes sharing the database take a transaction-level advisory lock
//! on the key before fetching, then look again whether another got it first. A row in
//! `media_objects` exists only once its object is completely written, so a reader never sees
//! half a file. Nothing here holds a whole file in memory: downloads are streamed into the
//! backend and reads are streamed out of it.
//!
//! This crate decides nothing about who may see a file: the API checks the caller against the
//! ticket before it asks for one.

pub mod config;
pub mod signing;
pub mod storage;
pub mod store;
pub mod telegram;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::TryStreamExt;
use futures::stream::BoxStream;
use metrics::counter;
use sqlx::PgPool;
use uuid::Uuid;

pub use config::{Backend, MediaConfig, S3Config};
pub use signing::{SignatureError, Signer};
pub use storage::{Storage, StorageError};
pub use store::{ObjectRow, UploadRow};
pub use telegram::{FetchError, TelegramFiles};

/// Files that could not be fetched from Telegram, by reason. Counted under this name.
pub const FETCH_FAILURES: &str = "ledgerdesk_media_fetch_failures_total";

/// The class of the advisory locks taken while fetching a key (`LDMF`).
const FETCH_LOCK_CLASS: i32 = i32::from_be_bytes(*b"LDMF");

/// A file Telegram holds, to fetch when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramSource {
    /// The id to download it with.
    pub file_id: String,
    /// Its lasting id, when known: the same file is stored once under it.
    pub file_unique_id: Option<String>,
    /// The MIME type Telegram reported.
    pub mime_type: Option<String>,
    /// Its size, when Telegram said.
    pub file_size: Option<u64>,
}

impl TelegramSource {
    /// The key it is stored under.
    #[must_use]
    pub fn key(&self) -> String {
        match &self.file_unique_id {
            Some(unique) if is_key_safe(unique) => format!("tg/{unique}"),
            _ => {
                use sha2::Digest;
                format!(
                    "tgid/{}",
                    hex::encode(sha2::Sha256::digest(self.file_id.as_bytes()))
                )
            }
        }
    }
}

/// Telegram's ids use letters, digits, `-` and `_`; anything else is hashed into a key.
fn is_key_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The key of an uploaded file.
#[must_use]
pub fn upload_key(id: Uuid) -> String {
    format!("up/{id}")
}

/// Why a file cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Fetching from Telegram failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The storage backend failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The fetch took longer than allowed.
    #[error("fetching the file from Telegram took too long")]
    TimedOut,
}

/// The kind an upload is sent as, from its MIME type: images as photos (except GIFs, sent as
/// animations), videos as videos, Ogg/Opus as voice, other audio as music, the rest as
/// documents.
#[must_use]
pub fn kind_for(mime: &str) -> &'static str {
    let mime = mime.to_ascii_lowercase();
    let essence = mime.split(';').next().unwrap_or_default().trim();
    match essence {
        "image/jpeg" | "image/png" | "image/webp" => "photo",
        "image/gif" => "animation",
        "audio/ogg" | "audio/opus" => "voice",
        e if e.starts_with("video/") => "video",
        e if e.starts_with("audio/") => "audio",
        _ => "document",
    }
}

/// The MIME type to record: the one given when it looks like one, else the one the first
/// bytes tell, else `application/octet-stream`.
#[must_use]
pub fn mime_for(given: Option<&str>, head: &[u8]) -> String {
    if let Some(given) = given.map(str::trim).filter(|m| is_mime(m)) {
        return given.to_ascii_lowercase();
    }
    infer::get(head).map_or_else(
        || "application/octet-stream".to_owned(),
        |kind| kind.mime_type().to_owned(),
    )
}

/// `type/subtype` of token characters (parameters allowed after `;`), at most 100 bytes.
fn is_mime(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    value.len() <= 100
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && essence
            .split_once('/')
            .is_some_and(|(t, s)| token(t) && token(s))
}

/// A file name safe for a `Content-Disposition` header and a file system: path separators,
/// control characters, quotes and backslashes replaced, at most 255 bytes, never empty.
#[must_use]
pub fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut clean: String = base
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '"' | '\\' | '/' | ';' | '\u{7f}') {
                '_'
            } else {
                c
            }
        })
        .collect();
    clean = clean.trim().trim_start_matches('.').to_owned();
    while clean.len() > 255 {
        clean.pop();
    }
    if clean.is_empty() {
        "file".to_owned()
    } else {
        clean
    }
}

struct Inner {
    pool: PgPool,
    storage: Storage,
    telegram: Option<TelegramFiles>,
    config: MediaConfig,
    signer: Signer,
    /// One lock per key being fetched in this process.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Fetches running at once.
    fetch_slots: tokio::sync::Semaphore,
    /// Prefetches running at once.
    prefetch_slots: Arc<tokio::sync::Semaphore>,
}

/// Media storage and fetching. Cheap to clone.
#[derive(Clone)]
pub struct MediaService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MediaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaService")
            .field("storage", &self.inner.storage)
            .field("telegram", &self.inner.telegram)
            .finish_non_exhaustive()
    }
}

impl MediaService {
    /// Opens the storage backend and reads (or makes) the URL signing key.
    ///
    /// # Errors
    /// When the backend cannot be opened or the key cannot be read.
    pub async fn new(pool: PgPool, config: MediaConfig) -> Result<Self, MediaError> {
        let storage = Storage::open(&config.backend)?;
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh)
            .map_err(|e| StorageError::Backend(format!("no randomness for the URL key: {e}")))?;
        let key = store::signing_key(&pool, &fresh).await?;
        Ok(MediaService {
            inner: Arc::new(Inner {
                fetch_slots: tokio::sync::Semaphore::new(config.fetch_concurrency.max(1)),
                prefetch_slots: Arc::new(tokio::sync::Semaphore::new(
                    config.prefetch_concurrency.max(1),
                )),
                pool,
                storage,
                telegram: config.telegram.clone(),
                signer: Signer::new(key),
                config,
                fetching: Mutex::default(),
            }),
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &MediaConfig {
        &self.inner.config
    }

    /// The URL signer.
    #[must_use]
    pub fn signer(&self) -> &Signer {
        &self.inner.signer
    }

    /// The backend.
    #[must_use]
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// The stored object under `key`, if it is stored.
    ///
    /// # Errors
    /// A database error.
    pub async fn object(&self, key: &str) -> Result<Option<ObjectRow>, MediaError> {
        Ok(store::object(&self.inner.pool, key).await?)
    }

    /// The stored copy of a Telegram file, fetched first if it is not stored yet.
    ///
    /// # Errors
    /// As fetching fails: too large, gone from Telegram, Telegram unreachable, storage.
    pub async fn telegram_file(&self, source: &TelegramSource) -> Result<ObjectRow, MediaError> {
        let key = source.key();
        if let Some(row) = store::object(&self.inner.pool, &key).await? {
            return Ok(row);
        }
        let limit = self.inner.config.download_limit;
        if source.file_size.is_some_and(|size| size > limit) {
            return Err(FetchError::TooLarge {
                size: source.file_size,
            }
            .into());
        }
        // In a task of its own: a client that goes away (or a request deadline) does not cut
        // the download off; the next request finds the file stored or waits for it.
        let media = self.clone();
        let source = source.clone();
        let fetch = tokio::spawn(async move {
            let result = media.fetch_once(&key, &source).await;
            if let Err(error) = &result {
                counter!(FETCH_FAILURES, "reason" => failure_reason(error)).increment(1);
            }
            result
        });
        fetch.await.map_err(|_| {
            MediaError::Fetch(FetchError::Unavailable("the fetch failed".to_owned()))
        })?
    }

    /// Fetches `source` into `key` unless another request of this process, or another
    /// process, stored it meanwhile.
    async fn fetch_once(
        &self,
        key: &str,
        source: &TelegramSource,
    ) -> Result<ObjectRow, MediaError> {
        let lock = {
            let mut fetching = self
                .inner
                .fetching
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(fetching.entry(key.to_owned()).or_default())
        };
        let result = async {
            let _one_here = lock.lock().await;
            if let Some(row) = store::object(&self.inner.pool, key).await? {
                return Ok(row);
            }
            let _slot = self
                .inner
                .fetch_slots
                .acquire()
                .await
                .map_err(|_| FetchError::Unavailable("shutting down".to_owned()))?;
            let mut tx = self.inner.pool.begin().await?;
            sqlx::query("select pg_advisory_xact_lock($1, hashtext($2))")
                .bind(FETCH_LOCK_CLASS)
                .bind(key)
                .execute(&mut *tx)
                .await?;
            if let Some(row) = store::object(&mut *tx, key).await? {
                tx.commit().await?;
                return Ok(row);
            }
            let row =
                tokio::time::timeout(self.inner.config.fetch_timeout, self.download(key, source))
                    .await
                    .map_err(|_| MediaError::TimedOut)??;
            store::insert_object(&mut *tx, &row).await?;
            tx.commit().await?;
            Ok(row)
        }
        .await;
        // The last one out removes the key's lock.
        let mut fetching = self
            .inner
            .fetching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if Arc::strong_count(&lock) <= 2 {
            fetching.remove(key);
        }
        result
    }

    async fn download(&self, key: &str, source: &TelegramSource) -> Result<ObjectRow, MediaError> {
        let telegram = self.inner.telegram.as_ref().ok_or(FetchError::NoBot)?;
        let limit = self.inner.config.download_limit;
        let info = telegram.get_file(&source.file_id).await?;
        if info.file_size.is_some_and(|size| size > limit) {
            return Err(FetchError::TooLarge {
                size: info.file_size,
            }
            .into());
        }
        let path = info.file_path.ok_or_else(|| FetchError::TooLarge {
            size: info.file_size.or(source.file_size),
        })?;
        let stream = telegram.download(&path).await?;
        let written = match self.inner.storage.put(key, stream, limit).await {
            Ok(written) => written,
            Err(StorageError::TooLarge { .. }) => {
                return Err(FetchError::TooLarge {
                    size: info.file_size.or(source.file_size),
                }
                .into());
            }
            Err(StorageError::Source(why)) => return Err(FetchError::Unavailable(why).into()),
            Err(other) => return Err(other.into()),
        };
        Ok(ObjectRow {
            key: key.to_owned(),
            size: i64::try_from(written.size).unwrap_or(i64::MAX),
            mime_type: mime_for(source.mime_type.as_deref(), &written.head),
            sha256: written.sha256,
            stored_at: Utc::now(),
        })
    }

    /// The bytes of a stored object in `range` (all when `None`), streamed.
    ///
    /// # Errors
    /// [`StorageError::Missing`] when the object is gone from the backend.
    pub async fn read(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, std::io::Error>>, MediaError> {
        Ok(self.inner.storage.get(key, range).await?)
    }

    /// Forgets a stored object whose backend copy is gone, so the next request fetches again.
    ///
    /// # Errors
    /// A database error.
    pub async fn forget(&self, key: &str) -> Result<(), MediaError> {
        Ok(store::delete_object(&self.inner.pool, key).await?)
    }

    /// Deletes the stored copies of the Telegram files with these `file_unique_id`s (those of
    /// a forgotten customer): the row first, then the object. Answers how many were stored.
    ///
    /// # Errors
    /// A database or storage error.
    pub async fn delete_telegram_copies(&self, unique_ids: &[String]) -> Result<u64, MediaError> {
        let mut deleted = 0;
        for unique in unique_ids {
            let key = TelegramSource {
                file_id: String::new(),
                file_unique_id: Some(unique.clone()),
                mime_type: None,
                file_size: None,
            }
            .key();
            if !key.starts_with("tg/") {
                continue;
            }
            if store::object(&self.inner.pool, &key).await?.is_some() {
                deleted += 1;
            }
            store::delete_object(&self.inner.pool, &key).await?;
            self.inner.storage.delete(&key).await?;
        }
        Ok(deleted)
    }

    /// Stores an agent's upload from `body`, at most the upload limit.
    ///
    /// # Errors
    /// [`StorageError::TooLarge`] past the limit, other storage or database errors.
    pub async fn upload<S, E>(
        &self,
        uploaded_by: Uuid,
        file_name: &str,
        mime_type: Option<&str>,
        kind: Option<&str>,
        body: S,
    ) -> Result<UploadRow, MediaError>
    where
        S: futures::Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let id = Uuid::now_v7();
        let key = upload_key(id);
        let written = self
            .inner
            .storage
            .put(&key, body, self.inner.config.upload_limit)
            .await?;
        let mime = mime_for(mime_type, &written.head);
        let row = UploadRow {
            id,
            uploaded_by,
            file_name: sanitize_file_name(file_name),
            kind: kind.unwrap_or_else(|| kind_for(&mime)).to_owned(),
            mime_type: mime.clone(),
            size: i64::try_from(written.size).unwrap_or(i64::MAX),
            telegram_file_id: None,
            created_at: Utc::now(),
        };
        let object = ObjectRow {
            key: key.clone(),
            size: row.size,
            mime_type: mime,
            sha256: written.sha256,
            stored_at: row.created_at,
        };
        let saved = async {
            let mut tx = self.inner.pool.begin().await?;
            store::insert_object(&mut *tx, &object).await?;
            store::insert_upload(&mut *tx, &row).await?;
            tx.commit().await
        }
        .await;
        if let Err(error) = saved {
            if let Err(e) = self.inner.storage.delete(&key).await {
                tracing::warn!(error = %e, "cannot delete an upload that was not recorded");
            }
            return Err(error.into());
        }
        Ok(row)
    }

    /// An upload by id.
    ///
    /// # Errors
    /// A database error.
    pub async fn upload_row(&self, id: Uuid) -> Result<Option<UploadRow>, MediaError> {
        Ok(store::upload(&self.inner.pool, id).await?)
    }

    /// Records the file id Telegram gave an upload, so later sends reuse it.
    ///
    /// # Errors
    /// A database error.
    pub async fn record_telegram_file_id(&self, id: Uuid, file_id: &str) -> Result<(), MediaError> {
        Ok(store::set_upload_file_id(&self.inner.pool, id, file_id).await?)
    }

    /// Bytes and objects stored.
    ///
    /// # Errors
    /// A database error.
    pub async fn usage(&self) -> Result<(u64, u64), MediaError> {
        let (bytes, count) = store::usage(&self.inner.pool).await?;
        Ok((
            u64::try_from(bytes).unwrap_or_default(),
            u64::try_from(count).unwrap_or_default(),
        ))
    }

    /// Fetches a Telegram file in the background when prefetching is on, a slot is free and
    /// the stored copies stay under their total bound; otherwise does nothing (a request
    /// fetches it later).
    pub fn prefetch(&self, source: TelegramSource) {
        if !self.inner.config.prefetch || self.inner.telegram.is_none() {
            return;
        }
        let Ok(slot) = Arc::clone(&self.inner.prefetch_slots).try_acquire_owned() else {
            tracing::debug!("prefetch slots busy; the file is fetched when first asked for");
            return;
        };
        let media = self.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match media.usage().await {
                Ok((bytes, _)) if bytes >= media.inner.config.prefetch_max_total_bytes => {
                    tracing::debug!("stored media at their prefetch bound; not prefetching");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read media usage; not prefetching");
                    return;
                }
                Ok(_) => {}
            }
            if let Err(error) = media.telegram_file(&source).await {
                tracing::info!(%error, "prefetching a file failed; it is fetched when asked for");
            }
        });
    }

    /// Deletes stored Telegram copies older than the retention, in batches; returns how
    /// many. Uploads are kept (a reply may still need them). The messages keep their file
    /// ids, so a later request fetches a file again while Telegram has it.
    ///
    /// # Errors
    /// A database or storage error.
    pub async fn apply_retention(&self) -> Result<u64, MediaError> {
        let Some(retention) = self.inner.config.retention else {
            return Ok(0);
        };
        let before =
            Utc::now() - chrono::TimeDelta::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
        let mut deleted = 0;
        loop {
            let keys = store::expired_copies(&self.inner.pool, before, 500).await?;
            if keys.is_empty() {
                return Ok(deleted);
            }
            for key in keys {
                // The row first: a reader that still finds it and then misses the object
                // forgets it and fetches again.
                store::delete_object(&self.inner.pool, &key).await?;
                self.inner.storage.delete(&key).await?;
                deleted += 1;
            }
        }
    }

    /// Applies the retention every `every` until `stop`.
    pub async fn run_retention(self, every: Duration, stop: tokio_util::sync::CancellationToken) {
        if self.inner.config.retention.is_none() {
            return;
        }
        loop {
            match self.apply_retention().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "deleted media copies past their retention"),
                Err(error) => tracing::warn!(%error, "cannot apply the media retention"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

fn failure_reason(error: &MediaError) -> &'static str {
    match error {
        MediaError::Fetch(FetchError::TooLarge { .. }) => "too_large",
        MediaError::Fetch(FetchError::Gone(_)) => "gone",
        MediaError::Fetch(FetchError::Unavailable(_)) | MediaError::TimedOut => "unavailable",
        MediaError::Fetch(FetchError::NoBot) => "no_bot",
        MediaError::Storage(_) => "storage",
        MediaError::Database(_) => "database",
    }
}

/// Drains a stream of bytes into nothing, counting them (tests and benchmarks).
///
/// # Errors
/// The stream's error.
pub async fn count_bytes<E>(stream: BoxStream<'static, Result<Bytes, E>>) -> Result<u64, E> {
    stream
        .try_fold(0u64, |n, chunk| async move { Ok(n + chunk.len() as u64) })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_mime_type() {
        assert_eq!(kind_for("image/jpeg"), "photo");
        assert_eq!(kind_for("IMAGE/PNG"), "photo");
        assert_eq!(kind_for("image/gif"), "animation");
        assert_eq!(kind_for("video/mp4"), "video");
        assert_eq!(kind_for("audio/ogg; codecs=opus"), "voice");
        assert_eq!(kind_for("audio/mpeg"), "audio");
        assert_eq!(kind_for("application/pdf"), "document");
        assert_eq!(kind_for("image/svg+xml"), "document");
    }

    #[test]
    fn a_missing_or_odd_mime_type_is_sniffed() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(mime_for(None, png), "image/png");
        assert_eq!(mime_for(Some("not a type"), png), "image/png");
        assert_eq!(mime_for(Some("text/html\r\nX: y"), png), "image/png");
        assert_eq!(mime_for(Some("Video/MP4"), png), "video/mp4");
        assert_eq!(mime_for(None, b"plain"), "application/octet-stream");
    }

    #[test]
    fn file_names_lose_paths_controls_and_quotes() {
        assert_eq!(sanitize_file_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_file_name("a\"b\r\nc;d.pdf"), "a_b__c_d.pdf");
        assert_eq!(sanitize_file_name("..."), "file");
        assert_eq!(sanitize_file_name(""), "file");
        assert_eq!(sanitize_file_name(&"é".repeat(300)).len(), 254);
        assert_eq!(sanitize_file_name("C:\\x\\report.pdf"), "report.pdf");
    }

    #[test]
    fn keys_use_the_unique_id_when_it_is_safe_and_a_hash_otherwise() {
        let mut source = TelegramSource {
            file_id: "AgAD".into(),
            file_unique_id: Some("AQADx-_1".into()),
            mime_type: None,
            file_size: None,
        };
        assert_eq!(source.key(), "tg/AQADx-_1");
        source.file_unique_id = Some("../x".into());
        assert!(source.key().starts_with("tgid/"));
        source.file_unique_id = None;
        assert_eq!(source.key().len(), "tgid/".len() + 64);
    }
}
