//! Errors as clients see them: a message and `extensions.code`, one of [`Code`].
//!
//! Internal failures are logged with their detail and shown only as `INTERNAL`, so nothing
//! about the database or a secret leaks into a response. A failure to reach the database at
//! all is `UNAVAILABLE` instead (never a refusal such as `UNAUTHENTICATED`: a check that could
//! not run refused nothing), and a command that lost to other writers for its whole retry
//! budget is `CONTENDED`; both carry `extensions.retryAfter`, in seconds.

use app::commands::CommandError;
use async_graphql::{Error, ErrorExtensions};

use crate::auth::AuthError;

/// The `extensions.code` of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// No credential, or a refused one.
    Unauthenticated,
    /// Authenticated, but not allowed.
    Forbidden,
    /// No such thing (or not visible to the caller).
    NotFound,
    /// The request contradicts the current state (a closed ticket, a taken email): sending it
    /// again as it is fails again.
    Conflict,
    /// Other writers kept changing what the command works on for its whole retry budget;
    /// nothing was written. Retryable as it is, after `extensions.retryAfter` seconds.
    Contended,
    /// The database could not be reached; nothing was decided (a credential was neither
    /// accepted nor refused). Retryable as it is, after `extensions.retryAfter` seconds.
    Unavailable,
    /// An input is malformed or out of bounds.
    Validation,
    /// Too many attempts; `extensions.retryAfter` says how many seconds to wait.
    RateLimited,
    /// Something failed on our side.
    Internal,
    /// The read models did not reach the requested position in time.
    Timeout,
}

impl Code {
    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::Conflict => "CONFLICT",
            Code::Contended => "CONTENDED",
            Code::Unavailable => "UNAVAILABLE",
            Code::Validation => "VALIDATION",
            Code::RateLimited => "RATE_LIMITED",
            Code::Internal => "INTERNAL",
            Code::Timeout => "TIMEOUT",
        }
    }
}

/// An error with a code and a message fit to show.
pub fn error(code: Code, message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, extensions| extensions.set("code", code.as_str()))
}

/// An internal failure: logged in full, shown as `INTERNAL` with a generic message.
pub fn internal(what: &str, detail: impl std::fmt::Display) -> Error {
    tracing::error!(error = %detail, "{what}");
    error(
        Code::Internal,
        format!("{what}; the server log has details"),
    )
}

/// How long a client should wait before it sends again a request answered `UNAVAILABLE`.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// How long a client should wait before it sends again a command answered `CONTENDED`.
pub const CONTENDED_RETRY_AFTER_SECS: u64 = 1;

/// An error with a code and `extensions.retryAfter` (seconds).
fn retryable(code: Code, message: impl Into<String>, seconds: u64) -> Error {
    error(code, message).extend_with(move |_, extensions| extensions.set("retryAfter", seconds))
}

/// `UNAVAILABLE`: the database could not be reached.
pub fn unavailable() -> Error {
    retryable(
        Code::Unavailable,
        "the database cannot be reached right now; nothing was done, try again later",
        UNAVAILABLE_RETRY_AFTER_SECS,
    )
}

/// Whether `error` is an `UNAVAILABLE` answer.
pub fn is_unavailable(error: &Error) -> bool {
    error
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.get("code"))
        .is_some_and(|code| *code == async_graphql::Value::from(Code::Unavailable.as_str()))
}

/// A failure of `what`: `UNAVAILABLE` when the database could not be reached (logged as a
/// warning), else [`internal`].
pub fn failed<E: std::error::Error + 'static>(what: &str, detail: E) -> Error {
    failed_as(what, &detail)
}

/// As [`failed`], for an error known by reference (a shared one, say).
pub fn failed_as(what: &str, detail: &(dyn std::error::Error + 'static)) -> Error {
    if eventlog::is_unavailable(detail) {
        tracing::warn!(error = %detail, "{what}: the database is unavailable");
        return unavailable();
    }
    internal(what, detail)
}

/// The first pause of [`until_available`] before it asks again.
const OUTAGE_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// The longest pause of [`until_available`] between two attempts, before jitter.
const OUTAGE_MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs `attempt` until it answers anything but `UNAVAILABLE`, pausing between attempts (from
/// 50 ms, doubling up to 2 s, each plus a random jitter of up to as much again). For the
/// items of a live feed: while the database is away an item waits for it, rather than ending
/// the feed or being skipped, and the feed goes on from that item once the database is back.
/// The socket around it stays open; a client that closes it resumes from its last cursor as
/// always.
///
/// # Errors
/// The first error of `attempt` that is not `UNAVAILABLE`.
pub async fn until_available<T, F, Fut>(mut attempt: F) -> async_graphql::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = async_graphql::Result<T>>,
{
    use backon::BackoffBuilder;
    let mut pauses = backon::ExponentialBuilder::new()
        .with_min_delay(OUTAGE_FIRST_PAUSE)
        .with_max_delay(OUTAGE_MAX_PAUSE)
        .with_jitter()
        .without_max_times()
        .build();
    loop {
        match attempt().await {
            Err(error) if is_unavailable(&error) => {
                let pause = pauses.next().unwrap_or(OUTAGE_MAX_PAUSE);
                tokio::time::sleep(pause).await;
            }
            other => return other,
        }
    }
}

/// A database failure in a resolver.
pub fn database(detail: sqlx::Error) -> Error {
    failed("a database query failed", detail)
}

impl ErrorExtensions for AuthError {
    fn extend(&self) -> Error {
        match self {
            AuthError::Unauthenticated(reason) => error(Code::Unauthenticated, *reason),
            AuthError::RateLimited(seconds) => {
                let seconds = *seconds;
                error(Code::RateLimited, self.to_string())
                    .extend_with(move |_, extensions| extensions.set("retryAfter", seconds))
            }
            AuthError::Invalid(message) => error(Code::Validation, message.clone()),
            AuthError::EmailTaken => error(Code::Conflict, self.to_string()),
            AuthError::Conflict(reason) => error(Code::Conflict, *reason),
            AuthError::Unavailable => unavailable(),
            AuthError::Internal(detail) => internal("authentication failed", detail),
        }
    }
}

/// How a domain rejection maps to a code: most rejections contradict the current state
/// (`CONFLICT`); bad inputs are `VALIDATION`; unknown targets `NOT_FOUND`.
pub trait Rejection: std::error::Error {
    /// Its code.
    fn code(&self) -> Code;
}

/// A command's failure as a GraphQL error.
pub fn command<E: Rejection + 'static>(failure: CommandError<E>) -> Error {
    match failure {
        CommandError::Rejected(rejection) => error_for(&rejection),
        CommandError::Conflict {
            attempts, waited, ..
        } => retryable(
            Code::Contended,
            format!(
                "others kept changing this at the same time ({attempts} attempts in {} ms); \
                 nothing was written, send it again",
                waited.as_millis()
            ),
            CONTENDED_RETRY_AFTER_SECS,
        ),
        CommandError::KeyReused => error(Code::Conflict, CommandError::<E>::KeyReused.to_string()),
        // The transports refuse such input before it reaches a command; this is the log's
        // own refusal, for input that got past them.
        CommandError::Log(eventlog::Error::Unstorable(message)) => error(
            Code::Validation,
            format!("{message}; remove it from the input"),
        ),
        other => failed("a command failed", other),
    }
}

fn error_for<E: Rejection>(rejection: &E) -> Error {
    error(rejection.code(), rejection.to_string())
}

impl Rejection for domain::agent::AgentError {
    fn code(&self) -> Code {
        use domain::agent::AgentError as E;
        match self {
            E::NotInvited => Code::NotFound,
            E::Invalid(_) => Code::Validation,
            E::AlreadyInvited | E::Deactivated | E::CannotDeactivateSelf => Code::Conflict,
        }
    }
}

impl Rejection for domain::ticket::TicketError {
    fn code(&self) -> Code {
        use domain::ticket::TicketError as E;
        match self {
            E::NotOpened | E::UnknownMessage => Code::NotFound,
            E::Invalid(_) => Code::Validation,
            E::AlreadyOpened
            | E::Closed
            | E::NotResolved
            | E::Resolved
            | E::ReopenWindowPassed
            | E::DuplicateMessageId
            | E::AlreadyDelivered
            | E::AlreadyRated
            | E::NotQuotable => Code::Conflict,
        }
    }
}

impl Rejection for domain::customer::CustomerError {
    fn code(&self) -> Code {
        use domain::customer::CustomerError as E;
        match self {
            E::NotRegistered => Code::NotFound,
            E::Invalid(_) => Code::Validation,
            E::AlreadyRegistered | E::Banned | E::NotBanned | E::AnotherTicketOpen { .. } => {
                Code::Conflict
            }
        }
    }
}

impl Rejection for domain::flow::FlowError {
    fn code(&self) -> Code {
        use domain::flow::FlowError as E;
        match self {
            E::Customer(error) => error.code(),
            E::Ticket(error) => error.code(),
            E::WrongTicket { .. } | E::WrongCustomer { .. } => Code::Conflict,
        }
    }
}

impl Rejection for domain::settings::SettingsError {
    fn code(&self) -> Code {
        use domain::settings::SettingsError as E;
        match self {
            E::UnknownCategory | E::UnknownTemplate => Code::NotFound,
            E::Invalid(_) => Code::Validation,
            E::CategoryExists | E::DuplicateCategoryName(_) | E::TemplateExists => Code::Conflict,
        }
    }
}

impl Rejection for domain::broadcast::BroadcastError {
    fn code(&self) -> Code {
        use domain::broadcast::BroadcastError as E;
        match self {
            E::NotDrafted | E::UnknownPreview => Code::NotFound,
            E::Invalid(_) | E::ScheduleInPast | E::NoSuchButton(_) => Code::Validation,
            E::TooManyPreviews { .. } => Code::RateLimited,
            E::AlreadyDrafted
            | E::NotDraft
            | E::AlreadyStarted
            | E::NotStarted
            | E::Finished
            | E::DuplicateRecipient(_)
            | E::NotInAudience(_)
            | E::MoreOutcomesThanAudience { .. }
            | E::NotDue
            | E::AudienceChanged
            | E::ListedTwice(_)
            | E::Incomplete { .. } => Code::Conflict,
        }
    }
}
