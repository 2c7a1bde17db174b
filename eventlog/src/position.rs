//! The cursor into the whole log.

use std::fmt;
use std::str::FromStr;

/// A place in the log's total order, opaque to users.
///
/// Positions compare in log order. Their text form (32 hex digits) sorts the same way, so a
/// client may store and compare cursors as strings; it should not read meaning into the digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    // Field order matters: the derived Ord compares the transaction first.
    tx: u64,
    seq: u64,
}

impl Position {
    /// Before the first event: reading after it reads the whole log.
    pub const START: Position = Position { tx: 0, seq: 0 };

    /// Builds a position from a backend's parts (the writing transaction, the row sequence).
    pub fn from_parts(tx: u64, seq: u64) -> Self {
        Position { tx, seq }
    }

    /// The backend's parts of this position.
    pub fn parts(self) -> (u64, u64) {
        (self.tx, self.seq)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.tx, self.seq)
    }
}

/// A cursor string that is not one this log handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a log position: expected 32 hexadecimal digits")]
pub struct ParsePositionError;

impl FromStr for Position {
    type Err = ParsePositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParsePositionError);
        }
        let (tx, seq) = s.split_at(16);
        let tx = u64::from_str_radix(tx, 16).map_err(|_| ParsePositionError)?;
        let seq = u64::from_str_radix(seq, 16).map_err(|_| ParsePositionError)?;
        Ok(Position { tx, seq })
    }
}

impl serde::Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Position {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_sorts_like_positions() {
        let a = Position::from_parts(7, 900);
        let b = Position::from_parts(8, 3);
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        assert_eq!(a.to_string().parse::<Position>(), Ok(a));
        assert_eq!(Position::START.to_string(), "0".repeat(32));
    }

    #[test]
    fn malformed_cursors_are_rejected() {
        for bad in [
            "",
            "xyz",
            &"g".repeat(32),
            &"0".repeat(31),
            &"0".repeat(33),
            "+0000000000000000000000000000001",
        ] {
            assert_eq!(bad.parse::<Position>(), Err(ParsePositionError), "{bad:?}");
        }
    }
}
