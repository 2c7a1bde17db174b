//! The storage backend behind `object_store`: a local directory or an S3-compatible bucket.
//! Objects are written from a stream and read as a stream (whole or a byte range), so no file
//! is ever held in memory whole.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::config::Backend;

/// How many bytes of a file are kept to tell its type when nobody named one.
pub const SNIFF_BYTES: usize = 8 * 1024;

/// The buffer of a write before it becomes a multipart upload (S3's smallest part is 5 MiB).
const WRITE_BUFFER: usize = 5 * 1024 * 1024;

/// Chunks read from a local file.
const READ_CHUNK: usize = 64 * 1024;

/// A storage error, without secrets (object_store's messages name paths and buckets only).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object is not there.
    #[error("the stored object is missing")]
    Missing,
    /// The backend failed.
    #[error("storage: {0}")]
    Backend(String),
    /// Reading the source failed while writing.
    #[error("{0}")]
    Source(String),
    /// The source gave more bytes than allowed.
    #[error("the file is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
}

impl From<object_store::Error> for StorageError {
    fn from(error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { .. } => StorageError::Missing,
            other => StorageError::Backend(other.to_string()),
        }
    }
}

/// What a completed write stored.
#[derive(Debug, Clone)]
pub struct Written {
    /// Bytes written.
    pub size: u64,
    /// Hex sha256 of the content.
    pub sha256: String,
    /// The first bytes, to tell the type.
    pub head: Vec<u8>,
}

/// The configured backend.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    kind: &'static str,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("kind", &self.kind).finish()
    }
}

impl Storage {
    /// Opens the backend (creating the local directory when missing).
    ///
    /// # Errors
    /// When the directory cannot be made or the S3 settings are incomplete.
    pub fn open(backend: &Backend) -> Result<Self, StorageError> {
        match backend {
            Backend::Local { dir } => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StorageError::Backend(format!("cannot create {}: {e}", dir.display()))
                })?;
                let store = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
                Ok(Storage {
                    store: Arc::new(store),
                    kind: "local",
                })
            }
            Backend::S3(s3) => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_allow_http(s3.allow_http);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(key) = &s3.access_key_id {
                    builder = builder.with_access_key_id(key.expose_secret());
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret.expose_secret());
                }
                let store: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
                let store = if s3.prefix.is_empty() {
                    store
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(
                        store,
                        s3.prefix.trim_end_matches('/'),
                    ))
                };
                Ok(Storage { store, kind: "s3" })
            }
        }
    }

    /// `local` or `s3`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Writes `source` under `key`, at most `limit` bytes: a larger source is cut off and
    /// nothing stays stored. The object is visible only once complete.
    ///
    /// # Errors
    /// A source error, the limit, or the backend's error.
    pub async fn put<S, E>(&self, key: &str, source: S, limit: u64) -> Result<Written, StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let mut writer =
            BufWriter::with_capacity(Arc::clone(&self.store), Path::from(key), WRITE_BUFFER);
        let mut hasher = Sha256::new();
        let mut head = Vec::new();
        let mut size = 0u64;
        let mut source = std::pin::pin!(source);
        let result: Result<(), StorageError> = async {
            while let Some(chunk) = source.next().await {
                let chunk = chunk.map_err(|e| StorageError::Source(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(StorageError::TooLarge { limit });
                }
                if head.len() < SNIFF_BYTES {
                    let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                    head.extend_from_slice(&chunk[..take]);
                }
                hasher.update(&chunk);
                writer
                    .write_all(&chunk)
                    .await
                    .map_err(|e| StorageError::Backend(e.to_string()))?;
            }
            writer
                .shutdown()
                .await
                .map_err(|e| StorageError::Backend(e.to_string()))
        }
        .await;
        if let Err(error) = result {
            if let Err(abort) = writer.abort().await {
                tracing::debug!(error = %abort, "cannot abort a partial media write");
            }
            return Err(error);
        }
        Ok(Written {
            size,
            sha256: hex::encode(hasher.finalize()),
            head,
        })
    }

    /// The bytes of `key` in `range` (the whole object when `None`), as a stream.
    ///
    /// # Errors
    /// [`StorageError::Missing`] when the object is gone, or the backend's error.
    pub async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, std::io::Error>>, StorageError> {
        let options = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self.store.get_opts(&Path::from(key), options).await?;
        let range = result.range.clone();
        match result.payload {
            // A local file is read in larger chunks than object_store's own stream does.
            GetResultPayload::File(file, _) => {
                let mut file = tokio::fs::File::from_std(file);
                file.seek(std::io::SeekFrom::Start(range.start)).await?;
                let reader = file.take(range.end - range.start);
                Ok(tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK).boxed())
            }
            GetResultPayload::Stream(stream) => Ok(stream.map_err(std::io::Error::other).boxed()),
        }
    }

    /// Deletes `key` (nothing when it is already gone).
    ///
    /// # Errors
    /// The backend's error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

impl From<std::io::Error> for StorageError {
    fn from(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::NotFound {
            StorageError::Missing
        } else {
            StorageError::Backend(error.to_string())
        }
    }
}
