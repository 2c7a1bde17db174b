//! Appending to the panel's audit trail ([`domain::audit`]): records, not decisions, so they
//! go to the log as they happen, without loading the stream first (an append expecting any
//! version costs the same whatever the stream's length).

use domain::audit::AuditEvent;
use domain::{AuditStream, DomainEvent, StreamId};
use eventlog::{Actor, AppendRequest, EventLog, ExpectedVersion, Metadata, NewEvent, Position};

/// Appends `event` to the audit stream `stream`, caused by `actor`; returns its position.
///
/// # Errors
/// When the log refuses or fails.
pub async fn record<L: EventLog>(
    log: &L,
    stream: AuditStream,
    event: &AuditEvent,
    actor: Actor,
) -> Result<Option<Position>, eventlog::Error> {
    let payload =
        serde_json::to_value(event).map_err(|error| eventlog::Error::Invalid(error.to_string()))?;
    let new = NewEvent::new(
        event.event_type(),
        payload,
        Metadata::new(actor).correlated(uuid::Uuid::now_v7()),
    )
    .with_schema_version(event.schema_version());
    let outcome = log
        .append(AppendRequest::to_stream(
            StreamId::Audit(stream).name(),
            ExpectedVersion::Any,
            vec![new],
        ))
        .await?;
    Ok(outcome.receipt().last_position())
}
