//! Lone appends: one request in its own transaction, with the one-statement path for one event
//! to one stream, retries of lost races and typed errors. The batches of `batch` fall back to
//! these, and an idle log writes every append this way.

use std::sync::Arc;

use sqlx::postgres::PgPool;
use uuid::Uuid;

use super::encoded::{Encoded, backend, to_u64};
use super::notify::Wakeups;
use crate::{
    AppendOutcome, AppendRequest, CommittedEvent, Error, ExpectedVersion, Position, Receipt,
};

/// How many times an append whose every stream accepts any version is retried after losing a
/// race for the same version to a concurrent append.
const RACE_RETRIES: usize = 50;

/// The stream's last version and hash (`null`, `null` for an empty stream), read before the
/// statement writes anything. `$1` is the stream.
macro_rules! current_of_stream {
    () => {
        "cur as ( \
            select l.stream_version as v, l.hash as h \
              from (values (1)) as one (x) \
              left join lateral ( \
                  select e.stream_version, e.hash from events e \
                   where e.stream_id = $1 \
                   order by e.stream_version desc limit 1) as l on true), \
         ok as ( \
            select cur.v, cur.h from cur \
             where case $7::bigint \
                     when -2 then true \
                     when -1 then cur.v is null \
                     when -3 then cur.v is not null \
                     else coalesce(cur.v = $7::bigint, false) end)"
    };
}

/// Inserts the event from `ok` (the stream's checked current version and hash); `$2`..`$6`
/// are the event id, type, schema version, payload and metadata (JSON text). The `offset 0`
/// fences keep the planner from copying the casts into every place that uses them: each JSON
/// text is parsed once and its canonical text (what the hash covers) printed once.
macro_rules! insert_one_event {
    ($condition:literal) => {
        concat!(
            "ins as ( \
                insert into events (stream_id, stream_version, event_id, event_type, \
                                    schema_version, payload, metadata, prev_hash, hash) \
                select $1, coalesce(ok.v, -1) + 1, $2, $3, $4, j.payload, j.metadata, ok.h, \
                       event_hash(ok.h, $3, j.payload_text, j.metadata_text) \
                  from ok, ( \
                      select p.payload, p.metadata, \
                             p.payload::text as payload_text, p.metadata::text as metadata_text \
                        from (select $5::text::jsonb as payload, $6::text::jsonb as metadata \
                              offset 0) as p \
                      offset 0) as j ",
            $condition,
            " returning stream_version, tx_id, position) \
             select cur.v, ins.stream_version, ins.tx_id, ins.position \
               from cur left join ins on true"
        )
    };
}

/// One event to one stream, no idempotency key.
const APPEND_ONE: &str = concat!("with ", current_of_stream!(), ", ", insert_one_event!(""));

/// One event to one stream under idempotency key `$8` with input digest `$9`: the key is
/// claimed only when the expected version holds, the event inserted only when the claim went
/// through.
const APPEND_ONE_KEYED: &str = concat!(
    "with ",
    current_of_stream!(),
    ", claim as ( \
        insert into idempotency_keys (key, event_ids, input_digest) \
        select $8::text, array[$2::uuid], $9::bytea from ok \
        on conflict (key) do nothing \
        returning 1), ",
    insert_one_event!("where exists (select 1 from claim)")
);

/// Writes lone appends to one log's pool and announces their commits. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Appender {
    pool: PgPool,
    wakeups: Arc<Wakeups>,
}

impl Appender {
    pub(super) fn new(pool: PgPool, wakeups: Arc<Wakeups>) -> Self {
        Appender { pool, wakeups }
    }

    /// The connection pool appends are written through.
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Called after a commit: wakes local subscriptions now and other processes soon.
    pub(super) fn announce(&self) {
        self.wakeups.announce();
    }

    /// The receipt of the request that applied idempotency key `key` first, if one did.
    pub(super) async fn applied(&self, key: &str) -> Result<Option<Receipt>, Error> {
        let row: Option<(Vec<Uuid>, Option<Vec<u8>>)> =
            sqlx::query_as("select event_ids, input_digest from idempotency_keys where key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        let Some((ids, input_digest)) = row else {
            return Ok(None);
        };
        let rows = sqlx::query_as::<_, AppendRow>(
            "select event_id, stream_id, stream_version, tx_id, position as event_position, \
                    true as replayed \
             from events where event_id = any($1) order by tx_id, position",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(Some(Receipt {
            input_digest,
            ..receipt(rows)
        }))
    }

    /// The last version of `stream` (`None`: the stream has no events).
    pub(super) async fn stream_version(&self, stream: &str) -> Result<Option<u64>, Error> {
        let version: Option<i64> =
            sqlx::query_scalar("select max(stream_version) from events where stream_id = $1")
                .bind(stream)
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
        Ok(version.map(to_u64))
    }

    async fn try_append(&self, encoded: &Encoded) -> Result<Vec<AppendRow>, sqlx::Error> {
        sqlx::query_as::<_, AppendRow>(
            "select event_id, stream_id, stream_version, tx_id, event_position, replayed \
             from append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&encoded.key)
        .bind(&encoded.streams)
        .bind(&encoded.expected)
        .bind(&encoded.stream_of)
        .bind(&encoded.event_ids)
        .bind(&encoded.types)
        .bind(&encoded.schema_versions)
        .bind(&encoded.payloads)
        .bind(&encoded.metadata)
        .bind(&encoded.input_digest)
        .fetch_all(&self.pool)
        .await
    }

    /// Appends the single event of a one-stream, one-event request with one statement.
    ///
    /// The statement reads the stream's last version and hash (through the
    /// `(stream_id, stream_version)` index) before it writes anything, as `append_events`
    /// does, so the gap-free argument of the parent module holds unchanged; the hash is computed by the
    /// inlined `event_hash`. An expected version that does not hold inserts nothing and
    /// answers the stream's actual version; a concurrent append that took the same version
    /// first fails the insert on `events_stream_version_key`. With an idempotency key, the
    /// key is claimed in the same statement, only when the version holds, and the event is
    /// inserted only when the claim went through.
    async fn try_append_one(&self, encoded: &Encoded) -> Result<Attempt, sqlx::Error> {
        let query = sqlx::query_as(if encoded.key.is_some() {
            APPEND_ONE_KEYED
        } else {
            APPEND_ONE
        })
        .bind(&encoded.streams[0])
        .bind(encoded.event_ids[0])
        .bind(&encoded.types[0])
        .bind(encoded.schema_versions[0])
        .bind(&encoded.payloads[0])
        .bind(&encoded.metadata[0])
        .bind(encoded.expected[0]);
        let query = match &encoded.key {
            Some(key) => query.bind(key).bind(&encoded.input_digest),
            None => query,
        };
        let row: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) =
            query.fetch_one(&self.pool).await?;
        let (actual, version, tx_id, position) = row;
        let (Some(version), Some(tx_id), Some(position)) = (version, tx_id, position) else {
            return Ok(Attempt::NotAppended { actual });
        };
        Ok(Attempt::Rows(vec![AppendRow {
            event_id: Some(encoded.event_ids[0]),
            stream_id: Some(encoded.streams[0].clone()),
            stream_version: Some(version),
            tx_id: Some(tx_id),
            event_position: Some(position),
            replayed: false,
        }]))
    }

    /// After losing a race: the first stream of the request that no longer accepts its append.
    async fn find_conflict(&self, request: &AppendRequest) -> Result<Option<Error>, Error> {
        for s in &request.streams {
            let actual = self.stream_version(&s.stream).await?;
            if !s.expected.accepts(actual) {
                return Ok(Some(Error::Conflict {
                    stream: s.stream.clone(),
                    expected: s.expected,
                    actual,
                }));
            }
        }
        Ok(None)
    }

    /// Appends one request in its own transaction, retrying lost races.
    pub(super) async fn append_alone(
        &self,
        request: &AppendRequest,
        encoded: &Encoded,
    ) -> Result<AppendOutcome, Error> {
        // The common case, one event to one stream, takes one prepared statement; anything
        // else goes through `append_events`.
        let single = encoded.streams.len() == 1 && encoded.event_ids.len() == 1;
        let mut races = 0;
        loop {
            let attempt = if single {
                self.try_append_one(encoded).await
            } else {
                self.try_append(encoded).await.map(Attempt::Rows)
            };
            let err = match attempt {
                Ok(Attempt::Rows(rows)) => {
                    let replayed = rows.first().is_some_and(|r| r.replayed);
                    let receipt = receipt(rows);
                    if replayed {
                        // The first receipt again, now with the digest stored with the key.
                        let stored = match &request.idempotency_key {
                            Some(key) => self.applied(key).await?,
                            None => None,
                        };
                        return Ok(AppendOutcome::AlreadyApplied(stored.unwrap_or(receipt)));
                    }
                    if !receipt.events.is_empty() {
                        self.announce();
                    }
                    return Ok(AppendOutcome::Appended(receipt));
                }
                Ok(Attempt::NotAppended { actual }) => {
                    // The key was applied before, or the stream was not at the expected
                    // version (a retry of an append that went through may see both).
                    if let Some(key) = &request.idempotency_key
                        && let Some(receipt) = self.applied(key).await?
                    {
                        return Ok(AppendOutcome::AlreadyApplied(receipt));
                    }
                    let stream = &request.streams[0];
                    let actual = actual.map(to_u64);
                    if !stream.expected.accepts(actual) {
                        return Err(Error::Conflict {
                            stream: stream.stream.clone(),
                            expected: stream.expected,
                            actual,
                        });
                    }
                    // The key's claim was rolled back meanwhile: try again.
                    if races >= RACE_RETRIES {
                        return Err(lost_races());
                    }
                    races += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                Err(err) => err,
            };
            // A refused append may be the retry of one that went through: answer with its receipt.
            let refusal = classify(&err, request);
            if !matches!(refusal, Refusal::Other)
                && let Some(key) = &request.idempotency_key
                && let Some(receipt) = self.applied(key).await?
            {
                return Ok(AppendOutcome::AlreadyApplied(receipt));
            }
            match refusal {
                Refusal::Conflict(conflict) => return Err(conflict),
                Refusal::Race if races < RACE_RETRIES => {
                    if let Some(conflict) = self.find_conflict(request).await? {
                        return Err(conflict);
                    }
                    races += 1;
                    tokio::task::yield_now().await;
                }
                Refusal::Race => return Err(lost_races()),
                Refusal::DuplicateEventId => {
                    return Err(Error::Invalid(
                        "an event id of this request is already in the log".into(),
                    ));
                }
                Refusal::Other => return Err(backend(err)),
            }
        }
    }
}

/// What one attempt at an append did.
enum Attempt {
    /// The rows `append_events` answered (or the one the fast path inserted).
    Rows(Vec<AppendRow>),
    /// The fast path inserted nothing: the expected version did not hold (the stream is at
    /// `actual`) or the idempotency key was claimed before.
    NotAppended { actual: Option<i64> },
}

fn lost_races() -> Error {
    Error::Backend(format!("append lost {RACE_RETRIES} races in a row; try again").into())
}

/// Why the database refused an append.
enum Refusal {
    /// A stream was not at the expected version when the append looked.
    Conflict(Error),
    /// A concurrent append took the same stream version first (or deadlocked with this one).
    Race,
    /// An event id is already used.
    DuplicateEventId,
    /// Anything else.
    Other,
}

fn classify(err: &sqlx::Error, request: &AppendRequest) -> Refusal {
    let sqlx::Error::Database(db) = err else {
        return Refusal::Other;
    };
    match db.code().as_deref() {
        Some("LD001") => {
            #[derive(serde::Deserialize)]
            struct Detail {
                stream: String,
                actual: i64,
            }
            let detail = db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|pg| pg.detail())
                .and_then(|d| serde_json::from_str::<Detail>(d).ok());
            let Some(detail) = detail else {
                return Refusal::Other;
            };
            let expected = request
                .streams
                .iter()
                .find(|s| s.stream == detail.stream)
                .map_or(ExpectedVersion::Any, |s| s.expected);
            Refusal::Conflict(Error::Conflict {
                stream: detail.stream,
                expected,
                actual: u64::try_from(detail.actual).ok(),
            })
        }
        Some("40P01") => Refusal::Race,
        Some("23505") => match db.constraint() {
            Some("events_stream_version_key") => Refusal::Race,
            Some("events_event_id_key") => Refusal::DuplicateEventId,
            _ => Refusal::Other,
        },
        _ => Refusal::Other,
    }
}

#[derive(sqlx::FromRow)]
struct AppendRow {
    event_id: Option<Uuid>,
    stream_id: Option<String>,
    stream_version: Option<i64>,
    tx_id: Option<i64>,
    event_position: Option<i64>,
    replayed: bool,
}

fn receipt(rows: Vec<AppendRow>) -> Receipt {
    let events = rows
        .into_iter()
        .filter_map(|r| {
            Some(CommittedEvent {
                event_id: r.event_id?,
                stream: r.stream_id?,
                version: to_u64(r.stream_version?),
                position: Position::from_parts(to_u64(r.tx_id?), to_u64(r.event_position?)),
            })
        })
        .collect();
    Receipt {
        events,
        input_digest: None,
    }
}
