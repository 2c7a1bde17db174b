//! A stream as it was: its events up to a version or a moment, folded with the domain's own
//! [`Decider::evolve`], the fold the command service decides on. Nothing here reads a read
//! model, so what an auditor is shown is what the log says, whatever a projection made of it.
//!
//! The stream is read a page at a time, and folding stops at the first event past the point
//! asked for, so the work is that of the stream's prefix; a prefix longer than the caller's
//! bound is refused rather than folded ([`AsOfError::TooLong`]).

use chrono::{DateTime, Utc};
use domain::{Decider, DomainEvent};
use eventlog::{Direction, EventLog, RecordedEvent};

/// Events read per page while folding.
const PAGE: usize = 1_000;

/// Where the fold stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// After the event of this stream version (included).
    Version(u64),
    /// After the last event recorded at or before this time; the stream's events are taken
    /// in version order, and the first one recorded later ends the fold.
    Time(DateTime<Utc>),
}

/// A state folded up to a point, with where that point is.
#[derive(Debug, Clone)]
pub struct Folded<D> {
    /// The state.
    pub state: D,
    /// The version of the last event folded; `None` when none was (the stream did not exist
    /// yet at that point, or at all).
    pub version: Option<u64>,
    /// When the last event folded was recorded.
    pub recorded_at: Option<DateTime<Utc>>,
}

/// Why a stream could not be folded.
#[derive(Debug, thiserror::Error)]
pub enum AsOfError {
    /// The prefix holds more events than the caller allows.
    #[error("the stream holds more than {limit} events up to that point")]
    TooLong {
        /// The bound.
        limit: usize,
    },
    /// A stored event cannot be decoded.
    #[error("event {version} of {stream} cannot be decoded: {reason}")]
    Decode {
        /// The stream.
        stream: String,
        /// The event's version.
        version: u64,
        /// Why.
        reason: String,
    },
    /// The log failed.
    #[error(transparent)]
    Log(#[from] eventlog::Error),
}

/// Folds `stream` from its first event up to `until` into `D`, folding at most `limit` events.
/// `visit` sees each event folded, with the state before it, so a caller can gather what the
/// state does not keep (the text of messages) from the same events in the same order.
///
/// # Errors
/// [`AsOfError::TooLong`] past `limit` events, [`AsOfError::Decode`] for an event that cannot
/// be read, [`AsOfError::Log`] when the log fails.
pub async fn fold<D, L>(
    log: &L,
    stream: &str,
    until: Until,
    limit: usize,
    mut visit: impl FnMut(&RecordedEvent, &D::Event, &D),
) -> Result<Folded<D>, AsOfError>
where
    D: Decider,
    D::Event: DomainEvent,
    L: EventLog,
{
    let mut folded = Folded {
        state: D::default(),
        version: None,
        recorded_at: None,
    };
    let mut count = 0_usize;
    let mut from = 0_u64;
    loop {
        let page = match log
            .read_stream(stream, from, Direction::Forwards, PAGE)
            .await
        {
            Ok(page) => page,
            Err(eventlog::Error::StreamNotFound { .. }) => return Ok(folded),
            Err(error) => return Err(error.into()),
        };
        let full = page.len() == PAGE;
        for recorded in page {
            let past = match until {
                Until::Version(version) => recorded.stream_version > version,
                Until::Time(at) => recorded.recorded_at > at,
            };
            if past {
                return Ok(folded);
            }
            count += 1;
            if count > limit {
                return Err(AsOfError::TooLong { limit });
            }
            let event = D::Event::decode(
                &recorded.event_type,
                recorded.schema_version,
                &recorded.payload,
            )
            .map_err(|source| AsOfError::Decode {
                stream: stream.to_owned(),
                version: recorded.stream_version,
                reason: source.to_string(),
            })?;
            visit(&recorded, &event, &folded.state);
            folded.state = folded.state.evolve(&event);
            folded.version = Some(recorded.stream_version);
            folded.recorded_at = Some(recorded.recorded_at);
            from = recorded.stream_version.saturating_add(1);
        }
        if !full {
            return Ok(folded);
        }
    }
}
