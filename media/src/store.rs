//! The SQL of media: stored objects, uploads and the URL signing key (migration 0024).

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// A completely stored object.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ObjectRow {
    /// Its key in the backend.
    pub key: String,
    /// Its size in bytes.
    pub size: i64,
    /// Its MIME type.
    pub mime_type: String,
    /// Hex sha256 of its content.
    pub sha256: String,
    /// When it was stored.
    pub stored_at: DateTime<Utc>,
}

/// A file an agent uploaded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UploadRow {
    /// Its id.
    pub id: Uuid,
    /// The agent who uploaded it.
    pub uploaded_by: Uuid,
    /// Its sanitized file name.
    pub file_name: String,
    /// Its MIME type.
    pub mime_type: String,
    /// Its size.
    pub size: i64,
    /// How it is sent: photo, video, audio, voice, document or animation.
    pub kind: String,
    /// Telegram's id for it once uploaded there.
    pub telegram_file_id: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

pub(crate) async fn signing_key(pool: &PgPool, fresh: &[u8]) -> sqlx::Result<Vec<u8>> {
    sqlx::query(
        "insert into media_signing_key (id, secret) values (true, $1) on conflict do nothing",
    )
    .bind(fresh)
    .execute(pool)
    .await?;
    sqlx::query_scalar("select secret from media_signing_key where id")
        .fetch_one(pool)
        .await
}

/// The stored object under `key`.
pub(crate) async fn object(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<Option<ObjectRow>> {
    sqlx::query_as(
        "select key, size, mime_type, sha256, stored_at from media_objects where key = $1",
    )
    .bind(key)
    .fetch_optional(db)
    .await
}

pub(crate) async fn insert_object(db: impl PgExecutor<'_>, row: &ObjectRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into media_objects (key, size, mime_type, sha256, stored_at) \
         values ($1, $2, $3, $4, $5) \
         on conflict (key) do update set size = excluded.size, mime_type = excluded.mime_type, \
             sha256 = excluded.sha256, stored_at = excluded.stored_at",
    )
    .bind(&row.key)
    .bind(row.size)
    .bind(&row.mime_type)
    .bind(&row.sha256)
    .bind(row.stored_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Keys of objects stored before `before` (Telegram copies only: uploads are kept), oldest
/// first, at most `limit`.
pub(crate) async fn expired_copies(
    db: impl PgExecutor<'_>,
    before: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select key from media_objects where stored_at < $1 and key like 'tg%' \
         order by stored_at limit $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub(crate) async fn delete_object(db: impl PgExecutor<'_>, key: &str) -> sqlx::Result<()> {
    sqlx::query("delete from media_objects where key = $1")
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

/// Bytes and objects stored.
pub(crate) async fn usage(db: impl PgExecutor<'_>) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as("select coalesce(sum(size), 0)::bigint, count(*) from media_objects")
        .fetch_one(db)
        .await
}

pub(crate) async fn insert_upload(db: impl PgExecutor<'_>, row: &UploadRow) -> sqlx::Result<()> {
    sqlx::query(
        "insert into media_uploads (id, uploaded_by, file_name, mime_type, size, kind, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.id)
    .bind(row.uploaded_by)
    .bind(&row.file_name)
    .bind(&row.mime_type)
    .bind(row.size)
    .bind(&row.kind)
    .bind(row.created_at)
    .execute(db)
    .await?;
    Ok(())
}

pub(crate) async fn upload(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<UploadRow>> {
    sqlx::query_as(
        "select id, uploaded_by, file_name, mime_type, size, kind, telegram_file_id, created_at \
           from media_uploads where id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

pub(crate) async fn set_upload_file_id(
    db: impl PgExecutor<'_>,
    id: Uuid,
    file_id: &str,
) -> sqlx::Result<()> {
    sqlx::query("update media_uploads set telegram_file_id = $2 where id = $1")
        .bind(id)
        .bind(file_id)
        .execute(db)
        .await?;
    Ok(())
}
