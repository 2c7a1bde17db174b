//! The per-stream hash chain, computed outside the database.
//!
//! Every event's `hash` is sha256 over the previous event's hash of its stream (nothing for a
//! stream's first event) and the length-prefixed UTF-8 of its type, its payload and its
//! metadata, each length a 4-byte big-endian integer. Payload and metadata are taken in
//! Postgres' canonical `jsonb` text form (`payload::text`), which is what the appends hash
//! (migrations 0001 and 0004, `event_hash`). Verifiers recompute it here, so that checking the
//! log costs the database no more than reading it.

use sha2::{Digest, Sha256};

/// The hash of an event whose stream's previous event has hash `prev` (`None` for a stream's
/// first event), over its type, payload and metadata (canonical `jsonb` text).
pub fn event_hash(
    prev: Option<&[u8]>,
    event_type: &str,
    payload: &str,
    metadata: &str,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    if let Some(prev) = prev {
        hasher.update(prev);
    }
    for part in [event_type, payload, metadata] {
        hasher.update(length_prefix(part.len()));
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// A length as `int4send` writes it. Parts are bounded far below 2 GiB (see
/// [`crate::limits`]); a longer one could not have been stored.
fn length_prefix(len: usize) -> [u8; 4] {
    i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_hashes_without_a_previous_hash() {
        let mut expected = Sha256::new();
        expected.update([0, 0, 0, 1]);
        expected.update(b"t");
        expected.update([0, 0, 0, 2]);
        expected.update(b"{}");
        expected.update([0, 0, 0, 2]);
        expected.update(b"[]");
        let expected: [u8; 32] = expected.finalize().into();
        assert_eq!(event_hash(None, "t", "{}", "[]"), expected);
        assert_ne!(event_hash(Some(&[0; 32]), "t", "{}", "[]"), expected);
    }
}
