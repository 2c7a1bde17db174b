//! The serving role: the server runs as a role that appends to the log but can neither change
//! it, nor disable its triggers, nor bypass them; it refuses to serve as a superuser.

use eventlog::postgres::PostgresLog;
use eventlog::{AppendRequest, EventLog, ExpectedVersion, NewEvent, Position};
use ledgerdesk::{Application, ServingRole, serving_url};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use testkit::{DatabaseName, TestApp};

use crate::{ledgerdesk, serve};

/// A connection to the test's database as the default serving role.
async fn as_serving_role(database: &DatabaseName) -> PgConnection {
    let url = serving_url(
        &SecretString::from(database.url().to_owned()),
        &ServingRole::default_role(),
    )
    .unwrap();
    PgConnection::connect(url.expose_secret()).await.unwrap()
}

fn event(n: u64) -> NewEvent {
    NewEvent::new(
        "test.happened",
        serde_json::json!({ "n": n }),
        eventlog::Metadata::new(eventlog::Actor::system("roles test")),
    )
}

/// The error code of a statement the database refused.
async fn refused(conn: &mut PgConnection, statement: &str) -> String {
    let err = conn
        .execute(statement)
        .await
        .expect_err(&format!("the serving role may not run {statement}"));
    err.as_database_error()
        .and_then(|db| db.code())
        .map(|code| code.into_owned())
        .unwrap_or_else(|| err.to_string())
}

#[tokio::test]
async fn the_serving_role_appends_but_cannot_change_disable_or_bypass_the_log() {
    let running = serve(DatabaseName::fresh("roles")).await;
    let mut conn = as_serving_role(running.database()).await;
    let (user, superuser): (String, bool) = sqlx::query_as(
        "select current_user::text, rolsuper from pg_roles where rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((user.as_str(), superuser), ("ledgerdesk_app", false));

    // It appends, through the log as the server does.
    let url = serving_url(
        &SecretString::from(running.database().url().to_owned()),
        &ServingRole::default_role(),
    )
    .unwrap();
    let pool = PgPool::connect(url.expose_secret()).await.unwrap();
    let log = PostgresLog::new(pool.clone());
    for n in 0..3 {
        let appended = log
            .append(AppendRequest::to_stream(
                "ticket-kept",
                ExpectedVersion::Any,
                vec![event(n)],
            ))
            .await
            .unwrap();
        assert_eq!(appended.receipt().events.len(), 1);
    }
    // Readable once no append that started before them (the server's own, say) is still open.
    let before = testkit::eventually(
        async || {
            let events = log.read_all(Position::START, 100).await.unwrap().events;
            if events.len() == 3 {
                Ok(events)
            } else {
                Err(format!("{} of the 3 events readable", events.len()))
            }
        },
        std::time::Duration::from_secs(30),
    )
    .await;
    assert_eq!(before.len(), 3);

    // 42501: insufficient_privilege. Changing, removing, or placing an event in the past.
    for statement in [
        "update events set payload = '{}'",
        "delete from events",
        "truncate events",
        "insert into events (tx_id, stream_id, stream_version, event_id, event_type, \
         schema_version, payload, metadata, hash) values (1, 'ticket-past', 0, \
         gen_random_uuid(), 'test.past', 1, '{}', '{}', sha256(''))",
        "delete from idempotency_keys",
        "update idempotency_keys set event_ids = '{}'",
        "set session_replication_role = replica",
        "set role postgres",
        "alter role ledgerdesk_app superuser",
        "alter role ledgerdesk_app bypassrls",
        "create database ledgerdesk_roles_probe",
    ] {
        assert_eq!(refused(&mut conn, statement).await, "42501", "{statement}");
    }
    // Disabling, dropping or outflanking the triggers takes ownership of the table
    // (42501 again: "must be owner of table events").
    for statement in [
        "alter table events disable trigger events_append_only",
        "alter table events disable trigger all",
        "drop trigger events_append_only on events",
        "drop trigger events_register_append on events",
        "alter table events owner to ledgerdesk_app",
        "create rule keep as on insert to events do instead nothing",
        "create trigger sneak before update on events for each row \
         execute function events_refuse_change()",
        "drop table events",
        "alter function events_refuse_change() rename to gone",
    ] {
        assert_eq!(refused(&mut conn, statement).await, "42501", "{statement}");
    }

    // The log is as it was, hash chain and all.
    let after = log.read_all(Position::START, 100).await.unwrap().events;
    assert_eq!(after, before);
    pool.close().await;
    running.stop().await;
}

#[tokio::test]
async fn the_server_serves_as_the_serving_role_and_refuses_a_superuser_connection() {
    let running = serve(DatabaseName::fresh("serving")).await;
    let (status, _) = crate::get(running.addr(), "/readyz").await;
    assert_eq!(status, 200);
    // The server's own connections (the projections' and subscriptions' at least) run as
    // the serving role.
    let serving: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity \
          where datname = current_database() and usename = 'ledgerdesk_app'",
    )
    .fetch_one(running.pool())
    .await
    .unwrap();
    assert!(serving >= 1);
    let database = running.stop().await;

    // The same database, served through the superuser's own URL: refused before serving.
    let mut settings = TestApp::settings(&database);
    settings.serving_database_url = SecretString::from(database.url().to_owned());
    let err = Application::build(settings).await.unwrap_err();
    assert!(format!("{err:#}").contains("is a superuser"), "{err:#}");
}

#[tokio::test]
async fn migrate_grants_the_serving_role_exactly_what_serving_needs() {
    let database = DatabaseName::fresh("grants");
    let url = database.url();
    for _ in 0..2 {
        let out = ledgerdesk(&["migrate", "--database-url", url]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pool = PgPool::connect(url).await.unwrap();
    let rights = |table: &'static str, right: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>("select has_table_privilege('ledgerdesk_app', $1, $2)")
                .bind(table)
                .bind(right)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert!(rights("events", "SELECT").await);
    assert!(rights("idempotency_keys", "SELECT").await);
    // Inserts name their columns: never the ones the database fills (order, time).
    let column = |table: &'static str, column: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "select has_column_privilege('ledgerdesk_app', $1, $2, 'INSERT')",
            )
            .bind(table)
            .bind(column)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    for (table, col) in [
        ("events", "payload"),
        ("events", "hash"),
        ("idempotency_keys", "key"),
    ] {
        assert!(column(table, col).await, "{table}.{col}");
    }
    for (table, col) in [
        ("events", "tx_id"),
        ("events", "position"),
        ("events", "recorded_at"),
        ("idempotency_keys", "recorded_at"),
    ] {
        assert!(!column(table, col).await, "{table}.{col}");
    }
    for right in ["UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES"] {
        assert!(!rights("events", right).await, "events {right}");
        assert!(!rights("idempotency_keys", right).await, "keys {right}");
    }
    for right in ["SELECT", "INSERT", "UPDATE", "DELETE"] {
        assert!(
            rights("agent_credentials", right).await,
            "credentials {right}"
        );
    }
    let owners: Vec<(String, String)> = sqlx::query_as(
        "select tablename::text, tableowner::text from pg_tables \
          where schemaname = 'public' and tablename in ('events', 'idempotency_keys', 'tickets', \
                'agent_credentials') order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let owner_of = |name: &str| {
        owners
            .iter()
            .find(|(table, _)| table == name)
            .map(|(_, owner)| owner.as_str())
            .unwrap()
    };
    // The read models belong to the serving role (rebuilds swap them); nothing else does.
    assert_eq!(owner_of("tickets"), "ledgerdesk_app");
    for table in ["events", "idempotency_keys", "agent_credentials"] {
        assert_ne!(owner_of(table), "ledgerdesk_app", "{table}");
    }
    let role: (bool, bool, bool, bool, bool) = sqlx::query_as(
        "select rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls \
           from pg_roles where rolname = 'ledgerdesk_app'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(role, (false, false, false, false, false));
    pool.close().await;
}
