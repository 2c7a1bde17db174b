//! Crypto-shredding: personal fields stored sealed under a key per data subject, so that
//! deleting the key forgets them without changing a stored event.
//!
//! The log itself knows nothing of what is personal. Whoever opens the log may hand it a
//! [`Personal`] description (the `app` crate does, from the domain's events): for each event
//! about to be appended it names the top-level payload fields that hold personal data, the
//! *subject* they belong to (a stable name such as `customer-42`) and the value each field
//! takes once the subject is forgotten (its *stand-in*, which holds nothing personal and
//! still reads as the field's type).
//!
//! A sealed field is stored in place of the plain one as
//! `{"$sealed": <base64 of nonce ‖ ciphertext ‖ tag>, "$subject": <subject>, "$forgotten":
//! <stand-in>}`. The cipher is ChaCha20-Poly1305 (ring's, already built for TLS) under the
//! subject's 256-bit key with a random 96-bit nonce; the associated data binds the ciphertext
//! to its event type, event id, field name and subject, so a sealed value moved to another
//! event, field or subject does not open. The hash chain covers the stored (sealed) text,
//! which a forget leaves as it is: verification passes before and after.
//!
//! Reading needs no description: every read of the log ([`crate::EventLog`] reads and the
//! filtered read) opens the sealed fields it finds with the keys that exist at that moment,
//! and puts the stand-in where the key is gone. A sealed value that does not open under an
//! existing key (tampered, moved) is an error, never a silent stand-in. Payloads stored
//! before sealing existed (plain fields) are read as they are.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{NewEvent, RecordedEvent};

/// The key of a sealed field's ciphertext.
pub const SEALED: &str = "$sealed";
/// The key naming a sealed field's subject.
pub const SUBJECT: &str = "$subject";
/// The key of a sealed field's stand-in.
pub const FORGOTTEN: &str = "$forgotten";

/// Length of a subject key in bytes.
pub const KEY_BYTES: usize = 32;

/// The longest subject name, in characters.
pub const SUBJECT_CHARS: usize = 200;

/// What is personal in the events of a domain: handed to the log that appends them.
pub trait Personal: fmt::Debug + Send + Sync + 'static {
    /// The personal fields of `event` (top-level keys of its payload) and their stand-ins;
    /// empty when it holds none.
    fn fields(&self, event: &NewEvent) -> Vec<PersonalField>;

    /// Whose personal data an event of `stream` holds.
    fn subject(&self, stream: &str, event: &NewEvent) -> SubjectOf;
}

/// A personal field of an event and the value it reads as once forgotten.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonalField {
    /// The top-level payload key.
    pub key: &'static str,
    /// The value read in its place once the subject is forgotten.
    pub forgotten: Value,
}

/// Whose personal data an event holds.
#[derive(Debug, Clone)]
pub enum SubjectOf {
    /// Nobody's: the fields are stored plain.
    Nobody,
    /// This subject's.
    Named(String),
    /// Named by the stream's first event: `name` turns its payload into the subject (the
    /// first event is taken from the same append when it opens the stream).
    Opening {
        /// The subject named by the first event's payload, `None` when it names nobody.
        name: fn(&Value) -> Option<String>,
    },
}

/// A subject's key as stored; never printed.
#[derive(Clone)]
pub struct SubjectKey([u8; KEY_BYTES]);

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectKey(..)")
    }
}

impl SubjectKey {
    /// A fresh random key.
    ///
    /// # Errors
    /// When the system's random source fails.
    pub fn generate() -> Result<Self, SealError> {
        let mut key = [0; KEY_BYTES];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| SealError::Random)?;
        Ok(SubjectKey(key))
    }

    /// The key stored as `bytes`.
    ///
    /// # Errors
    /// When `bytes` is not a key's length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        <[u8; KEY_BYTES]>::try_from(bytes)
            .map(SubjectKey)
            .map_err(|_| SealError::BadKey)
    }

    /// The key's bytes, to store.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn cipher(&self) -> LessSafeKey {
        // A 32-byte key is always a valid ChaCha20-Poly1305 key.
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &self.0).expect("a 32-byte key"))
    }
}

/// Why a sealed value could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The system's random source failed.
    #[error("the system's random source failed")]
    Random,
    /// A stored key does not have a key's length.
    #[error("a stored subject key has the wrong length")]
    BadKey,
    /// A sealed value is not of the sealed form.
    #[error("sealed field `{field}` of event {event_id} is malformed")]
    Malformed {
        /// The event.
        event_id: Uuid,
        /// The field.
        field: String,
    },
    /// A sealed value did not open under its subject's key: it was changed, or moved from
    /// another event, field or subject.
    #[error("sealed field `{field}` of event {event_id} does not open under the key of {subject}")]
    DoesNotOpen {
        /// The event.
        event_id: Uuid,
        /// The field.
        field: String,
        /// The subject it names.
        subject: String,
    },
}

/// The associated data of a sealed field: what it may not be moved away from.
fn associated(event_type: &str, event_id: Uuid, field: &str, subject: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64 + event_type.len() + field.len() + subject.len());
    aad.extend_from_slice(b"ledgerdesk-seal-v1");
    for part in [event_type, &event_id.to_string(), field, subject] {
        aad.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// `plain` sealed as field `field` of the event `event_type`/`event_id` for `subject`, with
/// `forgotten` as its stand-in.
///
/// # Errors
/// When the random source fails.
pub fn seal(
    key: &SubjectKey,
    event_type: &str,
    event_id: Uuid,
    field: &str,
    subject: &str,
    plain: &Value,
    forgotten: Value,
) -> Result<Value, SealError> {
    let mut nonce = [0; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| SealError::Random)?;
    let mut data = serde_json::to_vec(plain).unwrap_or_default();
    key.cipher()
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated(event_type, event_id, field, subject)),
            &mut data,
        )
        .map_err(|_| SealError::Random)?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + data.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&data);
    let mut object = Map::new();
    object.insert(SEALED.into(), Value::String(STANDARD.encode(sealed)));
    object.insert(SUBJECT.into(), Value::String(subject.to_owned()));
    object.insert(FORGOTTEN.into(), forgotten);
    Ok(Value::Object(object))
}

/// The subject a value names when it is a sealed field.
#[must_use]
pub fn sealed_subject(value: &Value) -> Option<&str> {
    let object = value.as_object()?;
    object.get(SEALED)?;
    object.get(SUBJECT)?.as_str()
}

/// The subjects whose sealed fields `payload` holds.
pub fn subjects(payload: &Value) -> impl Iterator<Item = &str> {
    payload
        .as_object()
        .into_iter()
        .flat_map(|fields| fields.values().filter_map(sealed_subject))
}

/// Opens every sealed field of `event` with `keys` (the keys that exist now, by subject):
/// the plain value where its subject's key exists, its stand-in where it does not.
///
/// # Errors
/// A sealed field that is malformed or does not open under its subject's existing key.
pub fn open(
    event: &mut RecordedEvent,
    keys: &HashMap<String, SubjectKey>,
) -> Result<(), SealError> {
    let event_id = event.event_id;
    let event_type = event.event_type.clone();
    let Some(fields) = event.payload.as_object_mut() else {
        return Ok(());
    };
    for (field, value) in fields.iter_mut() {
        if sealed_subject(value).is_none() {
            continue;
        }
        *value = open_field(value, keys, &event_type, event_id, field)?;
    }
    Ok(())
}

fn open_field(
    value: &mut Value,
    keys: &HashMap<String, SubjectKey>,
    event_type: &str,
    event_id: Uuid,
    field: &str,
) -> Result<Value, SealError> {
    let malformed = || SealError::Malformed {
        event_id,
        field: field.to_owned(),
    };
    let object = value.as_object_mut().ok_or_else(malformed)?;
    let subject = object
        .get(SUBJECT)
        .and_then(Value::as_str)
        .ok_or_else(malformed)?
        .to_owned();
    let Some(key) = keys.get(&subject) else {
        return object.remove(FORGOTTEN).ok_or_else(malformed);
    };
    let sealed = object
        .get(SEALED)
        .and_then(Value::as_str)
        .and_then(|text| STANDARD.decode(text).ok())
        .filter(|bytes| bytes.len() >= NONCE_LEN)
        .ok_or_else(malformed)?;
    let (nonce, data) = sealed.split_at(NONCE_LEN);
    let does_not_open = || SealError::DoesNotOpen {
        event_id,
        field: field.to_owned(),
        subject: subject.clone(),
    };
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| malformed())?;
    let mut data = data.to_vec();
    let plain = key
        .cipher()
        .open_in_place(
            nonce,
            Aad::from(associated(event_type, event_id, field, &subject)),
            &mut data,
        )
        .map_err(|_| does_not_open())?;
    serde_json::from_slice(plain).map_err(|_| does_not_open())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Actor, Metadata, Position};

    fn recorded(event_id: Uuid, payload: Value) -> RecordedEvent {
        RecordedEvent {
            position: Position::START,
            stream_id: "s".into(),
            stream_version: 0,
            event_id,
            event_type: "t.happened".into(),
            schema_version: 1,
            payload,
            metadata: Metadata::new(Actor::system("test")),
            recorded_at: chrono::Utc::now(),
            prev_hash: None,
            hash: vec![],
        }
    }

    fn sealed_event(key: &SubjectKey, event_id: Uuid) -> RecordedEvent {
        let plain = json!({"text": "very personal"});
        let sealed = seal(
            key,
            "t.happened",
            event_id,
            "content",
            "customer-1",
            &plain,
            json!({"text": ""}),
        )
        .unwrap();
        recorded(event_id, json!({"at": 1, "content": sealed}))
    }

    #[test]
    fn a_sealed_field_opens_with_its_key_and_reads_as_its_stand_in_without() {
        let key = SubjectKey::generate().unwrap();
        let event = sealed_event(&key, Uuid::now_v7());
        assert!(!event.payload.to_string().contains("very personal"));
        assert_eq!(subjects(&event.payload).collect::<Vec<_>>(), ["customer-1"]);

        let mut opened = event.clone();
        let keys = HashMap::from([("customer-1".to_owned(), key)]);
        open(&mut opened, &keys).unwrap();
        assert_eq!(
            opened.payload,
            json!({"at": 1, "content": {"text": "very personal"}})
        );

        let mut forgotten = event;
        open(&mut forgotten, &HashMap::new()).unwrap();
        assert_eq!(forgotten.payload, json!({"at": 1, "content": {"text": ""}}));
    }

    #[test]
    fn a_changed_or_moved_sealed_field_fails_to_open() {
        let key = SubjectKey::generate().unwrap();
        let keys = HashMap::from([("customer-1".to_owned(), key.clone())]);

        // A flipped bit of the ciphertext.
        let mut tampered = sealed_event(&key, Uuid::now_v7());
        let text = tampered.payload["content"][SEALED].as_str().unwrap();
        let mut bytes = STANDARD.decode(text).unwrap();
        bytes[NONCE_LEN] ^= 1;
        tampered.payload["content"][SEALED] = json!(STANDARD.encode(bytes));
        assert!(matches!(
            open(&mut tampered, &keys),
            Err(SealError::DoesNotOpen { .. })
        ));

        // Moved to another event.
        let mut moved = sealed_event(&key, Uuid::now_v7());
        moved.event_id = Uuid::now_v7();
        assert!(matches!(
            open(&mut moved, &keys),
            Err(SealError::DoesNotOpen { .. })
        ));

        // Claimed for another subject whose key exists.
        let mut other = sealed_event(&key, Uuid::now_v7());
        other.payload["content"][SUBJECT] = json!("customer-2");
        let both = HashMap::from([
            ("customer-1".to_owned(), key.clone()),
            ("customer-2".to_owned(), SubjectKey::generate().unwrap()),
        ]);
        assert!(matches!(
            open(&mut other, &both),
            Err(SealError::DoesNotOpen { .. })
        ));

        // Another key under the right subject's name.
        let mut wrong_key = sealed_event(&key, Uuid::now_v7());
        let stranger = HashMap::from([("customer-1".to_owned(), SubjectKey::generate().unwrap())]);
        assert!(matches!(
            open(&mut wrong_key, &stranger),
            Err(SealError::DoesNotOpen { .. })
        ));

        // Not of the sealed form.
        let mut malformed = sealed_event(&key, Uuid::now_v7());
        malformed.payload["content"][SEALED] = json!(12);
        assert!(matches!(
            open(&mut malformed, &keys),
            Err(SealError::Malformed { .. })
        ));
    }

    #[test]
    fn plain_payloads_read_as_they_are() {
        let mut event = recorded(Uuid::now_v7(), json!({"content": {"text": "legacy"}}));
        open(&mut event, &HashMap::new()).unwrap();
        assert_eq!(event.payload, json!({"content": {"text": "legacy"}}));
    }
}
