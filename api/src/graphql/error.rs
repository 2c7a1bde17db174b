//! Errors as clients see them: a message and `extensions.code`, one of [`Code`].
//!
//! Internal failures are logged with their detail and shown only as `INTERNAL`, so nothing
//! about the database or a secret leaks into a response.

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
    /// The request contradicts the current state (a closed ticket, a taken email, a race).
    Conflict,
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

/// A database failure in a resolver.
pub fn database(detail: sqlx::Error) -> Error {
    internal("a database query failed", detail)
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
pub fn command<E: Rejection>(failure: CommandError<E>) -> Error {
    match failure {
        CommandError::Rejected(rejection) => error_for(&rejection),
        CommandError::Conflict { attempts, .. } => error(
            Code::Conflict,
            format!("others kept changing this at the same time ({attempts} attempts); try again"),
        ),
        CommandError::KeyReused => error(Code::Conflict, CommandError::<E>::KeyReused.to_string()),
        // The transports refuse such input before it reaches a command; this is the log's
        // own refusal, for input that got past them.
        CommandError::Log(eventlog::Error::Unstorable(message)) => error(
            Code::Validation,
            format!("{message}; remove it from the input"),
        ),
        other => internal("a command failed", other),
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
            E::NotDrafted => Code::NotFound,
            E::Invalid(_) | E::ScheduleInPast => Code::Validation,
            E::AlreadyDrafted
            | E::NotDraft
            | E::AlreadyStarted
            | E::NotStarted
            | E::Finished
            | E::DuplicateRecipient(_)
            | E::NotInAudience(_)
            | E::MoreOutcomesThanAudience { .. }
            | E::Incomplete { .. } => Code::Conflict,
        }
    }
}
