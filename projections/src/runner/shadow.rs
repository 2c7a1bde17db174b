//! Shadow tables: the copy a rebuild fills while readers keep using the live one, and the swap
//! that replaces the live copy in one transaction.
//!
//! The shadow copy of `public.x` is `ld_shadow.x`, created `LIKE public.x INCLUDING ALL`: same
//! columns, defaults, constraints and indexes. Index and constraint names are chosen by Postgres
//! per schema, so default-named indexes come out with the same names in both copies and keep
//! them across the swap (migrations can keep referring to them).

// `conn.execute(sqlx::raw_sql(..))` rather than `sqlx::raw_sql(..).execute(conn)`: the same
// call, but sqlx 0.8's `RawSql::execute` is an `async fn` generic over the executor whose future
// the compiler cannot prove `Send` for every lifetime, which a rebuild task spawned on tokio
// needs (sqlx issue #3150).
use sqlx::{Executor, PgConnection};

use super::error::RuntimeError;
use crate::batch::SHADOW_SCHEMA;
use crate::projection::Projection;

/// Drops any previous shadow copy of the projection's tables and creates empty ones.
///
/// The copies start without their inverted indexes (GIN, GiST: full-text search, tags): building
/// such an index once over a full table is much cheaper than maintaining it row by row during a
/// rebuild. B-tree indexes stay: upserts resolve conflicts through the unique ones, and
/// projections look rows up through the others. [`build_deferred_indexes`] adds the deferred
/// ones before the swap.
pub(super) async fn create(
    conn: &mut PgConnection,
    projection: &dyn Projection,
) -> Result<(), sqlx::Error> {
    drop_all(conn, projection).await?;
    for table in projection.tables() {
        let sql =
            format!("create table {SHADOW_SCHEMA}.{table} (like public.{table} including all)");
        conn.execute(sqlx::raw_sql(&sql)).await?;
        for (name, _) in deferred_indexes(conn, SHADOW_SCHEMA, table).await? {
            let sql = format!("drop index {SHADOW_SCHEMA}.{name}");
            conn.execute(sqlx::raw_sql(&sql)).await?;
        }
    }
    Ok(())
}

/// The deferred (non-b-tree) indexes of `schema.table` (name, definition), in name order.
async fn deferred_indexes(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "select c.relname::text, pg_get_indexdef(i.indexrelid)
         from pg_index i
         join pg_class c on c.oid = i.indexrelid
         join pg_class t on t.oid = i.indrelid
         join pg_namespace n on n.oid = t.relnamespace
         join pg_am am on am.oid = c.relam
         where n.nspname = $1 and t.relname = $2 and not i.indisunique and am.amname <> 'btree'
         order by 1",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(conn)
    .await
}

/// Gives the shadow tables the deferred indexes of the live ones that they lack, with the same
/// names and definitions.
pub(super) async fn build_deferred_indexes(
    conn: &mut PgConnection,
    projection: &dyn Projection,
) -> Result<(), RuntimeError> {
    for table in projection.tables() {
        let present: Vec<String> = deferred_indexes(conn, SHADOW_SCHEMA, table)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        for (name, definition) in deferred_indexes(conn, "public", table).await? {
            if present.contains(&name) {
                continue;
            }
            let live = format!(" ON public.{table} ");
            let shadow = format!(" ON {SHADOW_SCHEMA}.{table} ");
            if !definition.contains(&live) {
                return Err(RuntimeError::UnexpectedIndex {
                    index: name,
                    definition,
                });
            }
            let sql = definition.replacen(&live, &shadow, 1);
            conn.execute(sqlx::raw_sql(&sql)).await?;
        }
    }
    Ok(())
}

/// Drops the projection's shadow tables, if any.
pub(super) async fn drop_all(
    conn: &mut PgConnection,
    projection: &dyn Projection,
) -> Result<(), sqlx::Error> {
    for table in projection.tables() {
        let sql = format!("drop table if exists {SHADOW_SCHEMA}.{table}");
        conn.execute(sqlx::raw_sql(&sql)).await?;
    }
    Ok(())
}

/// Takes the live tables for itself: readers wait (briefly) until the caller's transaction ends.
/// Gives up after `lock_timeout` rather than queueing behind a long reader forever.
pub(super) async fn lock_live(
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
    conn.execute(sqlx::raw_sql(&sql)).await?;
    Ok(())
}

/// Replaces the live tables by the shadow ones, inside the caller's transaction (which must hold
/// the lock of [`lock_live`]).
pub(super) async fn swap_in(
    conn: &mut PgConnection,
    projection: &dyn Projection,
) -> Result<(), sqlx::Error> {
    for table in projection.tables() {
        let sql = format!(
            "drop table public.{table}; alter table {SHADOW_SCHEMA}.{table} set schema public"
        );
        conn.execute(sqlx::raw_sql(&sql)).await?;
    }
    Ok(())
}
