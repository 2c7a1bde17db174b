//! The serving role: the Postgres role `ledgerdesk serve` runs as, which cannot change the log.
//!
//! The migrations run as the owner of the schema (a superuser in development, the database's
//! owner elsewhere). The owner can alter the `events` table, disable its append-only triggers or
//! set `session_replication_role = replica` (superusers), so the server does not run as the
//! owner: after migrating, [`prepare`] creates the serving role if it is missing and gives it
//! exactly what serving needs, and no more:
//!
//! - the log (`events`, `idempotency_keys`): `select`, and `insert` of the columns an append
//!   writes. Never `update`, `delete`, `truncate`, nor the columns the database fills itself
//!   (`position`, `tx_id`, `recorded_at`: an insert cannot place an event in the past).
//!   The append-only triggers stay out of its reach: only the owner may alter or disable them.
//! - `_sqlx_migrations`: `select` (readiness);
//! - every other table (credentials, tokens, checkpoints, delivery state): `select`, `insert`,
//!   `update`, `delete`;
//! - the read models the projections build: ownership, and `create` on the schemas `public`
//!   and `ld_shadow`. A rebuild fills shadow tables and swaps them in (`drop table`,
//!   `alter table … set schema`), which only an owner may do. Read models are derived data,
//!   rebuilt from the log at will; the log is what must not change.
//!
//! The role itself is `login` and nothing else (no superuser, no `createrole`, no
//! `bypassrls`, no `replication`, no `createdb`). [`refuse_privileged`] is the check the server
//! makes on its own connection before serving.

use sqlx::postgres::PgPool;
use sqlx::{Executor, PgConnection};

/// The serving role's name when the settings name none.
pub const DEFAULT_ROLE: &str = "ledgerdesk_app";

/// The class of the advisory lock that serializes [`prepare`]'s grants on one database
/// (`LDRO`).
const GRANTS_LOCK_CLASS: i32 = i32::from_be_bytes(*b"LDRO");

/// Tables of the log and of the migrations, which the serving role may not own nor change.
const LOG_TABLES: [&str; 3] = ["events", "idempotency_keys", "_sqlx_migrations"];

/// Why a serving role cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// The name is not a plain lowercase identifier.
    #[error(
        "a serving role name takes 1 to 63 lowercase ASCII letters, digits and _, starting with \
         a letter or _"
    )]
    InvalidName,
    /// The serving connection could change the log.
    #[error("the serving connection (role {role}) {why}; serve as a role without these rights")]
    Privileged {
        /// The role the connection runs as.
        role: String,
        /// What it could do.
        why: String,
    },
    /// The database refused.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Checks a role name: it goes into SQL as a quoted identifier, so it is kept plain.
///
/// # Errors
/// [`RoleError::InvalidName`].
pub fn check_name(name: &str) -> Result<(), RoleError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(RoleError::InvalidName)
    }
}

/// How many times a change of the role is tried again after colliding with the same change
/// of another process (several servers, or tests, preparing the same server-wide role).
const ATTEMPTS: usize = 5;

/// Creates the serving role `role` if missing (with `password`, when given, which is set every
/// time so that changing the setting changes it), and gives it exactly the rights of the module
/// docs on the database of `pool`, the owner's connection. `read_models` are the tables the
/// projections own (unqualified). Idempotent; run after every migration.
///
/// # Errors
/// An invalid name, or what the database refused (the owner needs `createrole`, or must be a
/// superuser, to create the role).
pub async fn prepare(
    pool: &PgPool,
    role: &str,
    password: Option<&str>,
    read_models: &[&str],
) -> Result<(), RoleError> {
    check_name(role)?;
    let mut conn = pool.acquire().await?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match create_or_update(&mut conn, role, password).await {
            Ok(()) => break,
            Err(err) if attempt < ATTEMPTS && collided(&err) => {
                tracing::debug!(error = %err, "the serving role changed meanwhile; again");
                tokio::task::yield_now().await;
            }
            Err(err) => return Err(err.into()),
        }
    }
    grant(&mut conn, role, read_models).await?;
    Ok(())
}

/// Whether `err` is another session's concurrent change of the same role.
fn collided(err: &sqlx::Error) -> bool {
    let code = err.as_database_error().and_then(|db| db.code());
    // duplicate_object, unique_violation (two creations), and "tuple concurrently updated".
    matches!(code.as_deref(), Some("42710" | "23505" | "XX000" | "40001"))
}

async fn create_or_update(
    conn: &mut PgConnection,
    role: &str,
    password: Option<&str>,
) -> Result<(), sqlx::Error> {
    let owner_is_superuser: bool =
        sqlx::query_scalar("select rolsuper from pg_roles where rolname = current_user")
            .fetch_one(&mut *conn)
            .await?;
    // (can log in, superuser, createrole, createdb, replication, bypassrls)
    let existing: Option<(bool, bool, bool, bool, bool, bool)> = sqlx::query_as(
        "select rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls \
         from pg_roles where rolname = $1",
    )
    .bind(role)
    .fetch_optional(&mut *conn)
    .await?;
    match existing {
        None => {
            let sql = format!(
                "create role \"{role}\" login nosuperuser nocreatedb nocreaterole \
                 noreplication nobypassrls"
            );
            conn.execute(sqlx::raw_sql(&sql)).await?;
            tracing::info!(role, "created the serving role");
        }
        Some((true, false, false, false, false, false)) => {}
        Some(_) if owner_is_superuser => {
            let sql = format!(
                "alter role \"{role}\" login nosuperuser nocreatedb nocreaterole noreplication \
                 nobypassrls"
            );
            conn.execute(sqlx::raw_sql(&sql)).await?;
            tracing::warn!(
                role,
                "the serving role had rights it must not have; removed them"
            );
        }
        // Only a superuser may take some of these away; the server refuses to serve as it.
        Some(_) => {}
    }
    if let Some(password) = password {
        // A utility statement takes no parameters: the password goes in as a quoted literal.
        let literal = password.replace('\'', "''");
        let sql = format!("alter role \"{role}\" password '{literal}'");
        conn.execute(sqlx::raw_sql(&sql)).await?;
    }
    if !owner_is_superuser {
        // The owner hands read models over to the role and alters them in later migrations:
        // both need membership in it (never the other way round).
        let member: bool = sqlx::query_scalar("select pg_has_role(current_user, $1, 'member')")
            .bind(role)
            .fetch_one(&mut *conn)
            .await?;
        if !member {
            let sql = format!("grant \"{role}\" to current_user");
            conn.execute(sqlx::raw_sql(&sql)).await?;
        }
    }
    Ok(())
}

/// The rights of the module docs, in one transaction.
async fn grant(
    conn: &mut PgConnection,
    role: &str,
    read_models: &[&str],
) -> Result<(), sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    // Processes starting together on one database would otherwise update the same catalog
    // rows at once ("tuple concurrently updated"): one at a time.
    sqlx::query("select pg_advisory_xact_lock($1, 0)")
        .bind(GRANTS_LOCK_CLASS)
        .execute(&mut *tx)
        .await?;
    let database: String = sqlx::query_scalar("select quote_ident(current_database())")
        .fetch_one(&mut *tx)
        .await?;
    let mut statements = vec![
        format!("grant connect on database {database} to \"{role}\""),
        format!("grant usage, create on schema public, ld_shadow to \"{role}\""),
        format!("revoke all on events, idempotency_keys, _sqlx_migrations from \"{role}\""),
        format!(
            "grant select, insert (stream_id, stream_version, event_id, event_type, \
             schema_version, payload, metadata, prev_hash, hash) on events to \"{role}\""
        ),
        format!(
            "grant select, insert (key, event_ids, input_digest) on idempotency_keys \
             to \"{role}\""
        ),
        format!("grant select on _sqlx_migrations to \"{role}\""),
    ];
    // Every other table of the schemas: a read model is handed over, the rest gets the rows.
    let tables: Vec<(String, String, bool)> = sqlx::query_as(
        "select n.nspname::text, c.relname::text, pg_get_userbyid(c.relowner) = $1 \
           from pg_class c join pg_namespace n on n.oid = c.relnamespace \
          where c.relkind in ('r', 'p') and n.nspname in ('public', 'ld_shadow') \
          order by 1, 2",
    )
    .bind(role)
    .fetch_all(&mut *tx)
    .await?;
    for (schema, table, owned) in tables {
        if schema == "public" && LOG_TABLES.contains(&table.as_str()) {
            continue;
        }
        let name = format!("{schema}.\"{table}\"");
        if read_models.contains(&table.as_str()) {
            if !owned {
                statements.push(format!("alter table {name} owner to \"{role}\""));
            }
        } else if !owned {
            statements.push(format!(
                "grant select, insert, update, delete on {name} to \"{role}\""
            ));
        }
    }
    for sql in statements {
        tx.execute(sqlx::raw_sql(&sql)).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Refuses a serving connection that could change the log: a superuser, a role that bypasses
/// row security, or one that owns `events` (or is a member of its owner), which could alter the
/// table or disable its triggers.
///
/// # Errors
/// [`RoleError::Privileged`] naming what it could do, or a database error.
pub async fn refuse_privileged(pool: &PgPool) -> Result<(), RoleError> {
    let (role, superuser, bypass, owner): (String, bool, bool, bool) = sqlx::query_as(
        "select current_user::text, r.rolsuper, r.rolbypassrls, \
                pg_has_role(current_user, c.relowner, 'member') \
           from pg_roles r, pg_class c \
          where r.rolname = current_user and c.oid = 'public.events'::regclass",
    )
    .fetch_one(pool)
    .await?;
    let why = if superuser {
        "is a superuser"
    } else if owner {
        "owns the event log (it could alter it or disable its triggers)"
    } else if bypass {
        "bypasses row security"
    } else {
        return Ok(());
    };
    Err(RoleError::Privileged {
        role,
        why: why.to_owned(),
    })
}
