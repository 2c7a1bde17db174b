//! The subjects' keys of crypto-shredding (see [`crate::seal`]), in table `subject_keys`
//! (migration 0026).
//!
//! Keys are read from the table on every read that meets a sealed field, never kept in
//! memory between reads: once [`forget`] has returned, no process opens the subject's fields
//! again, whichever instance reads.

use std::collections::HashMap;

use sqlx::postgres::PgPool;

use super::encoded::backend;
use crate::Error;
use crate::seal::{SealError, SubjectKey};

fn seal_error(error: SealError) -> Error {
    Error::Backend(Box::new(error))
}

fn keyed(rows: Vec<(String, Vec<u8>)>) -> Result<HashMap<String, SubjectKey>, Error> {
    rows.into_iter()
        .map(|(subject, key)| Ok((subject, SubjectKey::from_bytes(&key).map_err(seal_error)?)))
        .collect()
}

/// The keys of `subjects` that exist now.
pub(super) async fn existing(
    db: impl sqlx::PgExecutor<'_>,
    subjects: &[String],
) -> Result<HashMap<String, SubjectKey>, Error> {
    if subjects.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("select subject, key from subject_keys where subject = any($1)")
            .bind(subjects)
            .fetch_all(db)
            .await
            .map_err(backend)?;
    keyed(rows)
}

/// The keys of `subjects`, made for those that have none yet.
pub(super) async fn ensure(
    pool: &PgPool,
    subjects: &[String],
) -> Result<HashMap<String, SubjectKey>, Error> {
    let mut keys = existing(pool, subjects).await?;
    let missing: Vec<String> = subjects
        .iter()
        .filter(|subject| !keys.contains_key(*subject))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(keys);
    }
    let fresh = missing
        .iter()
        .map(|_| SubjectKey::generate().map(|key| key.as_bytes().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(seal_error)?;
    // A key made at the same time by another append wins; both then read it back.
    sqlx::query(
        "insert into subject_keys (subject, key) select * from unnest($1::text[], $2::bytea[]) \
         on conflict (subject) do nothing",
    )
    .bind(&missing)
    .bind(&fresh)
    .execute(pool)
    .await
    .map_err(backend)?;
    keys.extend(existing(pool, &missing).await?);
    Ok(keys)
}

/// Deletes `subject`'s key: every field sealed for them reads as its stand-in from now on.
/// Answers whether there was a key.
///
/// # Errors
/// When the database cannot be reached.
pub async fn forget(pool: &PgPool, subject: &str) -> Result<bool, Error> {
    let deleted = sqlx::query("delete from subject_keys where subject = $1")
        .bind(subject)
        .execute(pool)
        .await
        .map_err(backend)?
        .rows_affected();
    Ok(deleted > 0)
}

/// Whether `subject` has a key now.
///
/// # Errors
/// When the database cannot be reached.
pub async fn has_key(pool: &PgPool, subject: &str) -> Result<bool, Error> {
    sqlx::query_scalar("select exists (select 1 from subject_keys where subject = $1)")
        .bind(subject)
        .fetch_one(pool)
        .await
        .map_err(backend)
}

/// Every key, by subject (for an export that an import must be able to read).
///
/// # Errors
/// When the database cannot be reached.
pub async fn all(pool: &PgPool) -> Result<Vec<(String, SubjectKey)>, Error> {
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("select subject, key from subject_keys order by subject")
            .fetch_all(pool)
            .await
            .map_err(backend)?;
    rows.into_iter()
        .map(|(subject, key)| Ok((subject, SubjectKey::from_bytes(&key).map_err(seal_error)?)))
        .collect()
}

/// Stores `keys` (an import's); a subject that has a key keeps it. Answers how many were new.
///
/// # Errors
/// When the database cannot be reached.
pub async fn restore(pool: &PgPool, keys: &[(String, SubjectKey)]) -> Result<u64, Error> {
    let subjects: Vec<&str> = keys.iter().map(|(subject, _)| subject.as_str()).collect();
    let bytes: Vec<&[u8]> = keys.iter().map(|(_, key)| key.as_bytes()).collect();
    let inserted = sqlx::query(
        "insert into subject_keys (subject, key) select * from unnest($1::text[], $2::bytea[]) \
         on conflict (subject) do nothing",
    )
    .bind(&subjects)
    .bind(&bytes)
    .execute(pool)
    .await
    .map_err(backend)?
    .rows_affected();
    Ok(inserted)
}
