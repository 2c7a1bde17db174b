//! What the lone and the batched appends share: a request checked against the limits and laid
//! out as the SQL functions' arrays, and the conversions of what the database answers.

use std::collections::HashSet;

use uuid::Uuid;

use crate::storable::{find_nul, has_nul};
use crate::{AppendRequest, Error, ExpectedVersion, Metadata, limits};

/// A request checked against the limits and laid out as the SQL function's arrays.
#[derive(Debug)]
pub(super) struct Encoded {
    pub(super) key: Option<String>,
    pub(super) input_digest: Option<Vec<u8>>,
    pub(super) streams: Vec<String>,
    pub(super) expected: Vec<i64>,
    pub(super) stream_of: Vec<i32>,
    pub(super) event_ids: Vec<Uuid>,
    pub(super) types: Vec<String>,
    pub(super) schema_versions: Vec<i32>,
    pub(super) payloads: Vec<String>,
    pub(super) metadata: Vec<String>,
}

impl Encoded {
    pub(super) fn new(request: &AppendRequest) -> Result<Self, Error> {
        let invalid = |msg: String| Err(Error::Invalid(msg));
        if let Some(key) = &request.idempotency_key {
            let chars = key.chars().count();
            if chars == 0 || chars > limits::IDEMPOTENCY_KEY_CHARS {
                return invalid(format!(
                    "an idempotency key has 1 to {} characters",
                    limits::IDEMPOTENCY_KEY_CHARS
                ));
            }
            if has_nul(key) {
                return Err(unstorable("the idempotency key"));
            }
        }
        if let Some(digest) = &request.input_digest
            && (digest.is_empty() || digest.len() > limits::INPUT_DIGEST_BYTES)
        {
            return invalid(format!(
                "an input digest has 1 to {} bytes",
                limits::INPUT_DIGEST_BYTES
            ));
        }
        if request.streams.len() > limits::STREAMS_PER_APPEND {
            return invalid(format!(
                "an append touches at most {} streams",
                limits::STREAMS_PER_APPEND
            ));
        }
        let total = request.event_count();
        if total > limits::EVENTS_PER_APPEND {
            return invalid(format!(
                "an append carries at most {} events, this one has {total}",
                limits::EVENTS_PER_APPEND
            ));
        }
        let mut seen = HashSet::new();
        let mut encoded = Encoded {
            key: request.idempotency_key.clone(),
            input_digest: request
                .idempotency_key
                .as_ref()
                .and(request.input_digest.clone()),
            streams: Vec::with_capacity(request.streams.len()),
            expected: Vec::with_capacity(request.streams.len()),
            stream_of: Vec::with_capacity(total),
            event_ids: Vec::with_capacity(total),
            types: Vec::with_capacity(total),
            schema_versions: Vec::with_capacity(total),
            payloads: Vec::with_capacity(total),
            metadata: Vec::with_capacity(total),
        };
        for (index, append) in request.streams.iter().enumerate() {
            let stream = &append.stream;
            let chars = stream.chars().count();
            if chars == 0 || chars > limits::STREAM_ID_CHARS || stream.chars().any(char::is_control)
            {
                return invalid(format!(
                    "a stream id has 1 to {} characters and no control characters",
                    limits::STREAM_ID_CHARS
                ));
            }
            if !seen.insert(stream.as_str()) {
                return invalid(format!("stream {stream} appears twice in one append"));
            }
            encoded.streams.push(stream.clone());
            encoded.expected.push(match append.expected {
                ExpectedVersion::Exact(v) => i64::try_from(v)
                    .map_err(|_| Error::Invalid(format!("expected version {v} is out of range")))?,
                ExpectedVersion::NoStream => -1,
                ExpectedVersion::Any => -2,
                ExpectedVersion::StreamExists => -3,
            });
            let stream_index = i32::try_from(index + 1).unwrap_or(i32::MAX);
            for event in &append.events {
                let type_chars = event.event_type.chars().count();
                if type_chars == 0
                    || type_chars > limits::EVENT_TYPE_CHARS
                    || event.event_type.chars().any(char::is_control)
                {
                    return invalid(format!(
                        "an event type has 1 to {} characters and no control characters",
                        limits::EVENT_TYPE_CHARS
                    ));
                }
                // Checked here, before the request can join a batch: Postgres would refuse
                // the whole batch for it.
                if let Some(path) = find_nul(&event.payload) {
                    return Err(unstorable(&format!(
                        "the payload of {} at `{path}`",
                        event.event_type
                    )));
                }
                if has_nul(&event.metadata.actor.id) {
                    return Err(unstorable("the actor id"));
                }
                let schema_version = i32::try_from(event.schema_version)
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or_else(|| Error::Invalid("a schema version is at least 1".into()))?;
                let payload = serde_json::to_string(&event.payload)?;
                if payload.len() > limits::PAYLOAD_BYTES {
                    return invalid(format!(
                        "an event payload is at most {} bytes, {} has {}",
                        limits::PAYLOAD_BYTES,
                        event.event_type,
                        payload.len()
                    ));
                }
                let metadata = Metadata {
                    idempotency_key: request.idempotency_key.clone(),
                    ..event.metadata.clone()
                };
                let metadata = serde_json::to_string(&metadata)?;
                if metadata.len() > limits::METADATA_BYTES {
                    return invalid(format!(
                        "event metadata is at most {} bytes",
                        limits::METADATA_BYTES
                    ));
                }
                encoded.stream_of.push(stream_index);
                encoded.event_ids.push(event.event_id);
                encoded.types.push(event.event_type.clone());
                encoded.schema_versions.push(schema_version);
                encoded.payloads.push(payload);
                encoded.metadata.push(metadata);
            }
        }
        Ok(encoded)
    }
}

/// The refusal of a request holding a NUL (`what`: where the NUL is).
fn unstorable(what: &str) -> Error {
    Error::Unstorable(format!(
        "{what} holds a NUL character (U+0000), which cannot be stored"
    ))
}

/// A database error as the log reports it.
pub(super) fn backend(err: sqlx::Error) -> Error {
    Error::Backend(Box::new(err))
}

/// Stored numbers are never negative (checked by constraints and identity columns).
pub(super) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
