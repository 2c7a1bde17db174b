//! Shadow tables: the copy a rebuild fills while readers keep using the live one, and the swap
//! that replaces the live copy in one transaction.
//!
//! The shadow copy of `public.x` is `ld_shadow.x`, created `LIKE public.x INCLUDING ALL`: same
//! columns, defaults, constraints and indexes. Index and constraint names are chosen by Postgres
//! per schema, so default-named indexes come out with the same names in both copies and keep
//! them across the swap (migrations can keep referring to them).

use sqlx::PgConnection;

use crate::{Projection, SHADOW_SCHEMA};

/// Drops any previous shadow copy of the projection's tables and creates empty ones.
pub(crate) async fn create(
    conn: &mut PgConnection,
    projection: &dyn Projection,
) -> Result<(), sqlx::Error> {
    drop_all(conn, projection).await?;
    for table in projection.tables() {
        let sql =
            format!("create table {SHADOW_SCHEMA}.{table} (like public.{table} including all)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Drops the projection's shadow tables, if any.
pub(crate) async fn drop_all(
    conn: &mut PgConnection,
    projection: &dyn Projection,
) -> Result<(), sqlx::Error> {
    for table in projection.tables() {
        let sql = format!("drop table if exists {SHADOW_SCHEMA}.{table}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Takes the live tables for itself: readers wait (briefly) until the caller's transaction ends.
/// Gives up after `lock_timeout` rather than queueing behind a long reader forever.
pub(crate) async fn lock_live(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    lock_timeout: std::time::Duration,
) -> Result<(), sqlx::Error> {
    let tables = projection
        .tables()
        .iter()
        .map(|table| format!("public.{table}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "set local lock_timeout = {}; lock table {tables} in access exclusive mode",
        lock_timeout.as_millis().max(1)
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Replaces the live tables by the shadow ones, inside the caller's transaction (which must hold
/// the lock of [`lock_live`]).
pub(crate) async fn swap_in(
    conn: &mut PgConnection,
    projection: &dyn Projection,
) -> Result<(), sqlx::Error> {
    for table in projection.tables() {
        let sql = format!(
            "drop table public.{table}; alter table {SHADOW_SCHEMA}.{table} set schema public"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
