//! A tiny seeded PRNG (SplitMix64) and what the generator draws from it: numbers, choices,
//! durations, and UUID v7 ids stamped with the simulated time.
//!
//! No `rand` dependency: the generator needs reproducibility, not statistical quality, and
//! SplitMix64 gives both in a dozen lines.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a strong 64-bit mixer.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    /// An independent generator for one `lane` (a writer, a phase) of the run seeded `seed`.
    pub(super) fn lane(seed: u64, lane: u64) -> Self {
        Self(mix(seed ^ mix(lane.wrapping_add(1).wrapping_mul(GOLDEN))))
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        let wide = u128::from(self.next_u64()) * u128::from(n);
        // The high half of a 64×64 product always fits in 64 bits.
        u64::try_from(wide >> 64).unwrap_or(0)
    }

    /// A number in `lo..=hi`.
    pub(super) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }

    /// An index into a collection of `len` items (0 when empty).
    pub(super) fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }

    /// True with probability `p`.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A float in `[0, 1)`.
    pub(super) fn unit(&mut self) -> f64 {
        // 53 random bits, the precision of an f64 mantissa.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One item of a non-empty constant pool.
    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        // Callers pass non-empty pools; an empty one is a bug in this module.
        &items[self.index(items.len())]
    }

    /// One item of a collection that may be empty.
    pub(super) fn choose<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.index(items.len()))
    }

    /// One value by weight.
    pub(super) fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> Option<T> {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut roll = self.below(total);
        for (item, weight) in items {
            let weight = u64::from(*weight);
            if roll < weight {
                return Some(*item);
            }
            roll -= weight;
        }
        None
    }

    /// A duration of `lo..=hi` seconds.
    pub(super) fn secs(&mut self, lo: u64, hi: u64) -> TimeDelta {
        TimeDelta::seconds(i64::try_from(self.range(lo, hi)).unwrap_or(i64::MAX / 1000))
    }

    /// A duration of `lo..=hi` seconds, skewed towards `lo` (the minimum of two draws).
    pub(super) fn secs_skewed(&mut self, lo: u64, hi: u64) -> TimeDelta {
        let a = self.range(lo, hi);
        let b = self.range(lo, hi);
        TimeDelta::seconds(i64::try_from(a.min(b)).unwrap_or(i64::MAX / 1000))
    }

    /// A UUID v7 for something created at `at`: the simulated time in its timestamp, seeded
    /// randomness in the rest, so a run is reproducible and ids still sort by creation time.
    pub(super) fn uuid_v7(&mut self, at: DateTime<Utc>) -> Uuid {
        let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes()[..2]);
        uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
    }

    /// `len` characters of `[A-Za-z0-9_-]`, like Telegram's file ids.
    pub(super) fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len)
            .map(|_| char::from(ALPHABET[self.index(ALPHABET.len())]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_and_lane_give_one_sequence_and_lanes_differ() {
        let draw = |lane| {
            let mut rng = Rng::lane(7, lane);
            (0..5).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(0), draw(0));
        assert_ne!(draw(0), draw(1));
    }

    #[test]
    fn draws_stay_in_their_bounds() {
        let mut rng = Rng::lane(1, 0);
        for _ in 0..10_000 {
            assert!(rng.below(10) < 10);
            assert!((3..=5).contains(&rng.range(3, 5)));
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn v7_ids_carry_the_simulated_time() {
        let mut rng = Rng::lane(1, 0);
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let id = rng.uuid_v7(at);
        assert_eq!(id.get_version_num(), 7);
        let (secs, _) = id.get_timestamp().map(|t| t.to_unix()).unwrap_or_default();
        assert_eq!(secs, 1_700_000_000);
    }
}
