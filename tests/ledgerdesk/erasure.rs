//! Forgetting a customer end to end: a generated history plus one customer with distinctive
//! personal data, the real server following the log, `ledgerdesk customer forget`, and then
//! every table of the database, a rebuild and an export searched for any of their data.

use std::time::Duration;

use chrono::Utc;
use domain::StreamId;
use domain::content::{MessageBody, MessageContent, MessageKind, TelegramFile, TelegramMessageId};
use domain::customer::{CustomerEvent, CustomerProfile, CustomerRegistered, TicketNoted};
use domain::ids::{CustomerId, MessageId, TicketId};
use domain::ticket::{Channel, CustomerMessagePosted, TicketEvent, TicketOpened};
use domain::{AnyEvent, DomainEvent};
use eventlog::{Actor, ActorKind, AppendRequest, EventLog, ExpectedVersion, Metadata, NewEvent};
use sqlx::PgPool;
use testkit::{DatabaseName, eventually};

use crate::{all_events_visible, ledgerdesk, serve, succeed};

const PATIENCE: Duration = Duration::from_secs(60);

/// The forgotten customer's Telegram id, outside the generator's range of ids.
const CUSTOMER: i64 = 777_000_777;

/// Every piece of the customer's personal data, each found nowhere once forgotten.
const SECRETS: &[&str] = &[
    "Zebulonia",
    "Quaxworth",
    "zq_secret_handle",
    "+4917612345678",
    "my parcel never arrived xylophonic",
    "look at this quixotry",
    "PHOTOfileIDzq123",
    "UNIQphotoZQ456",
    "48.8583701",
    "2.2944813",
];

/// Another customer of the same history, whose data must stay readable.
const KEPT_CUSTOMER: i64 = 777_000_778;
const KEPT_NAME: &str = "Keepsakeonia";

fn event(event: &impl DomainEvent, actor: &Actor) -> NewEvent {
    NewEvent::new(
        event.event_type(),
        serde_json::to_value(event).unwrap(),
        Metadata::new(actor.clone()),
    )
    .with_schema_version(event.schema_version())
}

/// Registers `customer` with `profile` and opens a ticket with `contents` as their messages.
async fn customer_with_ticket(
    log: &impl EventLog,
    customer: i64,
    profile: CustomerProfile,
    contents: Vec<MessageContent>,
) -> TicketId {
    let actor = Actor::new(ActorKind::Customer, customer.to_string());
    let id = CustomerId(customer);
    let ticket = TicketId(uuid::Uuid::now_v7());
    let at = Utc::now();
    let mut customer_events = vec![event(
        &CustomerEvent::Registered(CustomerRegistered {
            customer_id: id,
            at,
            personal: profile,
        }),
        &actor,
    )];
    customer_events.push(event(
        &CustomerEvent::TicketOpened(TicketNoted {
            ticket_id: ticket,
            category: None,
            at,
        }),
        &actor,
    ));
    let mut ticket_events = vec![event(
        &TicketEvent::Opened(TicketOpened {
            ticket_id: ticket,
            customer: id,
            category: None,
            channel: Channel::Telegram,
            at,
        }),
        &actor,
    )];
    for (n, content) in contents.into_iter().enumerate() {
        ticket_events.push(event(
            &TicketEvent::CustomerMessagePosted(CustomerMessagePosted {
                message_id: MessageId(uuid::Uuid::now_v7()),
                telegram_message_id: TelegramMessageId(i32::try_from(n).unwrap() + 1),
                reply_to: None,
                kind: content.kind(),
                at,
                content,
            }),
            &actor,
        ));
    }
    let _appended = log
        .append(
            AppendRequest::to_stream(
                StreamId::Customer(id).name(),
                ExpectedVersion::NoStream,
                customer_events,
            )
            .and_stream(
                StreamId::Ticket(ticket).name(),
                ExpectedVersion::NoStream,
                ticket_events,
            ),
        )
        .await
        .unwrap();
    ticket
}

/// Every row of every table of the database's own schemas, as text.
async fn every_row(pool: &PgPool) -> Vec<(String, String)> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "select table_schema::text, table_name::text from information_schema.tables \
          where table_schema not in ('pg_catalog', 'information_schema') \
            and table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.iter().any(|(_, t)| t == "events"));
    assert!(tables.iter().any(|(_, t)| t == "messages"));
    let mut rows = Vec::new();
    for (schema, table) in tables {
        let sql = format!("select t::text from \"{schema}\".\"{table}\" as t");
        let texts: Vec<String> = sqlx::query_scalar(&sql).fetch_all(pool).await.unwrap();
        rows.extend(
            texts
                .into_iter()
                .map(|text| (format!("{schema}.{table}"), text)),
        );
    }
    rows
}

fn found<'a>(rows: &'a [(String, String)], secrets: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    let mut hits = Vec::new();
    for (table, text) in rows {
        for secret in secrets {
            if text.contains(secret) {
                hits.push((table.as_str(), *secret));
            }
        }
    }
    hits
}

async fn ticket_shape(pool: &PgPool, ticket: TicketId) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "select event_type, recorded_at::text, metadata::text from events \
          where stream_id = $1 order by stream_version",
    )
    .bind(StreamId::Ticket(ticket).name())
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_forgotten_customer_is_found_in_no_table_rebuild_or_export_and_the_log_still_verifies() {
    let database = DatabaseName::fresh("erasure");
    let url = database.url().to_owned();
    succeed(&["generate", "--events", "1500", "--database-url", &url]);
    let app = serve(database).await;
    let pool = app.pool().clone();
    let log = app::personal::log(pool.clone());

    let mut photo = MessageContent::of(MessageBody::Photo {
        file: TelegramFile::new("PHOTOfileIDzq123", "UNIQphotoZQ456"),
    });
    photo.caption = Some("look at this quixotry".into());
    let ticket = customer_with_ticket(
        &log,
        CUSTOMER,
        CustomerProfile {
            first_name: "Zebulonia".into(),
            last_name: Some("Quaxworth".into()),
            username: Some("zq_secret_handle".into()),
            language_code: Some("de".into()),
        },
        vec![
            MessageContent::text("my parcel never arrived xylophonic"),
            photo,
            MessageContent::of(MessageBody::Location {
                latitude: 48.858_370_1,
                longitude: 2.294_481_3,
            }),
            MessageContent::of(MessageBody::Contact {
                phone_number: "+4917612345678".into(),
                first_name: "Zebulonia".into(),
                last_name: None,
                user_id: Some(CUSTOMER),
            }),
        ],
    )
    .await;
    customer_with_ticket(
        &log,
        KEPT_CUSTOMER,
        CustomerProfile {
            first_name: KEPT_NAME.into(),
            last_name: None,
            username: None,
            language_code: None,
        },
        vec![MessageContent::text("keep my words")],
    )
    .await;

    // Sealed from the start: the log holds none of it in plain text, the read models do.
    let stored: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let in_log: Vec<String> = sqlx::query_scalar("select payload::text from events")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        in_log
            .iter()
            .all(|p| SECRETS.iter().all(|s| !p.contains(s))),
        "personal data stored in plain text"
    );
    eventually(
        async || {
            let rows = every_row(&pool).await;
            let hits = found(&rows, SECRETS);
            if hits.iter().any(|(t, _)| *t == "public.customers")
                && hits.iter().any(|(t, _)| *t == "public.messages")
            {
                Ok(())
            } else {
                Err(format!(
                    "the read models do not show the customer yet: {hits:?}"
                ))
            }
        },
        PATIENCE,
    )
    .await;
    let shape_before = ticket_shape(&pool, ticket).await;

    // What the bot keeps outside the log: an edit that came before its message, an update
    // it could not record.
    sqlx::query(
        "insert into telegram_early_edits \
           (customer_id, telegram_message_id, update_key, content, edited_at) \
         values ($1, 99, 'u-1', '{\"text\": \"my parcel never arrived xylophonic\"}', now())",
    )
    .bind(CUSTOMER)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into telegram_updates_unrecorded (update_key, update_id, raw_update, error) \
         values ('u-2', 2, $1, 'unreadable')",
    )
    .bind(serde_json::json!({
        "update_id": 2,
        "message": { "from": { "id": CUSTOMER, "first_name": "Zebulonia" }, "text": "Quaxworth" }
    }))
    .execute(&pool)
    .await
    .unwrap();

    // A stored copy of their photo, as the media service keeps it.
    let media_dir =
        std::env::temp_dir().join(format!("ledgerdesk-erasure-{}", uuid::Uuid::now_v7()));
    let copy = media_dir.join("tg").join("UNIQphotoZQ456");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::write(&copy, b"photo bytes").unwrap();
    sqlx::query(
        "insert into media_objects (key, size, mime_type, sha256) \
         values ('tg/UNIQphotoZQ456', 11, 'image/jpeg', 'x')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let media_dir_arg = media_dir.to_str().unwrap().to_owned();

    let out = ledgerdesk(&[
        "customer",
        "forget",
        &CUSTOMER.to_string(),
        "--database-url",
        &url,
        "--media-dir",
        &media_dir_arg,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("customer {CUSTOMER} forgotten: key deleted")),
        "{stdout}"
    );
    assert!(!stdout.contains("before sealing"), "{stdout}");
    assert!(
        stdout.contains("1 stored files of the customer deleted"),
        "{stdout}"
    );
    assert!(!copy.exists(), "the stored copy is deleted");
    let _ = std::fs::remove_dir_all(&media_dir);
    // Forgetting twice is fine; an unknown customer is an error.
    let again = ledgerdesk(&[
        "customer",
        "forget",
        &CUSTOMER.to_string(),
        "--database-url",
        &url,
    ]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("key already gone"));
    let unknown = ledgerdesk(&["customer", "forget", "5", "--database-url", &url]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no customer with Telegram id 5"));

    // Nothing of theirs left in any table, once the server followed the log.
    eventually(
        async || {
            let rows = every_row(&pool).await;
            let hits = found(&rows, SECRETS);
            if hits.is_empty() {
                Ok(())
            } else {
                Err(format!("still found: {hits:?}"))
            }
        },
        PATIENCE,
    )
    .await;
    let after: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        after,
        stored + 2,
        "only the two customer.forgotten were added"
    );
    let forgotten: i64 = sqlx::query_scalar(
        "select count(*) from events where stream_id = $1 and event_type = 'customer.forgotten'",
    )
    .bind(format!("customer-{CUSTOMER}"))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(forgotten, 2);

    // The ticket keeps its history: events, times, actors; the messages keep their kinds.
    assert_eq!(ticket_shape(&pool, ticket).await, shape_before);
    let kinds: Vec<String> =
        sqlx::query_scalar("select kind from messages where ticket_id = $1 order by seq")
            .bind(ticket.as_uuid())
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(kinds, ["text", "photo", "location", "contact"]);
    let status: String = sqlx::query_scalar("select status from tickets where id = $1")
        .bind(ticket.as_uuid())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "new");

    // The log reads the stand-ins now; the other customer reads as written.
    let events = log
        .read_stream(
            &StreamId::Ticket(ticket).name(),
            0,
            eventlog::Direction::Forwards,
            100,
        )
        .await
        .unwrap();
    let posted: Vec<_> = events
        .iter()
        .filter_map(
            |e| match AnyEvent::decode(&e.event_type, e.schema_version, &e.payload) {
                Ok(AnyEvent::Ticket(TicketEvent::CustomerMessagePosted(p))) => Some(p),
                _ => None,
            },
        )
        .collect();
    assert_eq!(posted.len(), 4);
    assert_eq!(posted[0].content, MessageContent::text(""));
    assert_eq!(posted[1].kind, MessageKind::Photo);
    assert_eq!(posted[1].content.caption, None);
    let kept = log
        .read_stream(
            &format!("customer-{KEPT_CUSTOMER}"),
            0,
            eventlog::Direction::Forwards,
            10,
        )
        .await
        .unwrap();
    assert!(kept[0].payload.to_string().contains(KEPT_NAME));
    let kept_row: String = sqlx::query_scalar("select first_name from customers where id = $1")
        .bind(KEPT_CUSTOMER)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept_row, KEPT_NAME);
    all_events_visible(&pool).await;
    // The database lives as long as its name.
    let database = app.stop().await;

    // The hash chains still verify; a rebuild gives the same (forgotten) rows.
    let out = ledgerdesk(&["audit", "verify", "--database-url", &url]);
    let verified = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{verified}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ledgerdesk(&["replay", "--verify", "--database-url", &url]);
    let replayed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{replayed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        replayed.contains("every read model equals a rebuild from the log"),
        "{replayed}"
    );

    // An export made now holds none of it.
    let file =
        std::env::temp_dir().join(format!("ledgerdesk-erasure-{}.jsonl", uuid::Uuid::now_v7()));
    let keys = file.with_extension("keys");
    let export = ledgerdesk(&[
        "export",
        "--database-url",
        &url,
        "-o",
        file.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
    ]);
    let exported = std::fs::read_to_string(&file).unwrap_or_default();
    let key_lines = std::fs::read_to_string(&keys).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&keys);
    // Its keys file holds the other customer's key, not the forgotten one's.
    assert!(
        key_lines.contains(&format!("customer-{KEPT_CUSTOMER} ")),
        "{key_lines}"
    );
    assert!(!key_lines.contains(&format!("customer-{CUSTOMER} ")));
    assert!(
        export.status.success() && exported.contains(&format!("customer-{KEPT_CUSTOMER}")),
        "{} bytes exported: {}",
        exported.len(),
        String::from_utf8_lossy(&export.stderr)
    );
    for secret in SECRETS {
        assert!(!exported.contains(secret), "{secret} exported");
    }
    drop(database);
}
