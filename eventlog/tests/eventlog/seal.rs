//! Sealed personal fields through the Postgres log: stored sealed, read plain while the
//! subject's key exists and as the stand-in once it is deleted, the hash chains holding all
//! along; a sealed value moved to another event fails the read loudly.

use std::sync::Arc;

use eventlog::postgres::audit::{self, VerifyScope};
use eventlog::postgres::{PostgresLog, PostgresLogOptions, keys};
use eventlog::seal::{Personal, PersonalField, SubjectOf};
use eventlog::{Actor, AppendRequest, Direction, EventLog, ExpectedVersion, Metadata, NewEvent};
use serde_json::json;
use sqlx::{Executor, PgPool};

/// `note.written` events hold a personal `content`; their stream names the subject.
#[derive(Debug)]
struct Notes;

impl Personal for Notes {
    fn fields(&self, event: &NewEvent) -> Vec<PersonalField> {
        if event.event_type == "note.written" {
            vec![PersonalField {
                key: "content",
                forgotten: json!({ "text": "" }),
            }]
        } else {
            Vec::new()
        }
    }

    fn subject(&self, stream: &str, _event: &NewEvent) -> SubjectOf {
        SubjectOf::Named(stream.replace("notes-", "person-"))
    }
}

fn note(text: &str) -> NewEvent {
    NewEvent::new(
        "note.written",
        json!({ "at": 1, "content": { "text": text } }),
        Metadata::new(Actor::system("test")),
    )
}

async fn stream(log: &PostgresLog, stream: &str) -> Vec<serde_json::Value> {
    log.read_stream(stream, 0, Direction::Forwards, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.payload)
        .collect()
}

async fn verified(pool: &PgPool) -> bool {
    audit::verify(pool, &VerifyScope::default(), &[], |_| {}, |_| {})
        .await
        .unwrap()
        .holds()
}

#[sqlx::test(migrations = "../migrations")]
async fn sealed_fields_read_plain_until_forgotten_and_a_moved_one_fails(pool: PgPool) {
    let log = PostgresLog::with_options(
        pool.clone(),
        PostgresLogOptions::default().sealing(Arc::new(Notes)),
    );
    for (name, texts) in [
        ("notes-1", ["first secret", "second secret"]),
        ("notes-2", ["kept", "also kept"]),
    ] {
        let _appended = log
            .append(AppendRequest::to_stream(
                name,
                ExpectedVersion::NoStream,
                texts.iter().map(|text| note(text)).collect(),
            ))
            .await
            .unwrap();
    }
    let stored: Vec<String> = sqlx::query_scalar("select payload::text from events")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|p| !p.contains("secret") && !p.contains("kept"))
    );
    assert!(stored.iter().all(|p| p.contains("$sealed")));
    assert_eq!(
        stream(&log, "notes-1").await,
        [
            json!({ "at": 1, "content": { "text": "first secret" } }),
            json!({ "at": 1, "content": { "text": "second secret" } }),
        ]
    );
    // A log opened without the description reads them all the same.
    assert_eq!(
        stream(&PostgresLog::new(pool.clone()), "notes-2").await[0]["content"]["text"],
        "kept"
    );
    assert!(verified(&pool).await);

    assert!(keys::forget(&pool, "person-1").await.unwrap());
    assert!(!keys::forget(&pool, "person-1").await.unwrap());
    assert_eq!(
        stream(&log, "notes-1").await,
        [
            json!({ "at": 1, "content": { "text": "" } }),
            json!({ "at": 1, "content": { "text": "" } }),
        ]
    );
    assert_eq!(
        stream(&log, "notes-2").await[1]["content"]["text"],
        "also kept"
    );
    assert!(verified(&pool).await, "forgetting changes no stored event");

    // An attacker with the database moves person 2's second sealed note onto the first.
    let mut tx = pool.begin().await.unwrap();
    tx.execute("alter table events disable trigger events_append_only")
        .await
        .unwrap();
    tx.execute(
        "update events set payload = jsonb_set(payload, '{content}', \
           (select payload -> 'content' from events \
             where stream_id = 'notes-2' and stream_version = 1)) \
         where stream_id = 'notes-2' and stream_version = 0",
    )
    .await
    .unwrap();
    tx.execute("alter table events enable trigger events_append_only")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let err = log
        .read_stream("notes-2", 0, Direction::Forwards, 100)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not open"), "{err}");
}
