//! Waiting for something to happen: [`eventually`] polls a condition until it holds, instead
//! of sleeping for a time that is too short on a busy machine and too long on an idle one.

use std::fmt::Display;
use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use tokio::time::Instant;

/// The first pause between two checks; each next one doubles, up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(2);

/// The longest pause between two checks.
const LONGEST_PAUSE: Duration = Duration::from_millis(50);

/// What a condition of [`eventually`] answers: whether it holds, with a value to hand back
/// when it does and a reason for the failure message when it does not.
///
/// - `bool`: holds when `true`; gives `()`.
/// - `Option<T>`: holds when `Some(value)`; gives the value.
/// - `Result<T, E>`: holds when `Ok(value)`; gives the value; the last `Err` (any
///   [`Display`], e.g. a `String` saying what was seen) goes into the failure message.
pub trait Outcome {
    /// What [`eventually`] gives back once the condition holds.
    type Value;

    /// The value when the condition holds, else why not.
    ///
    /// # Errors
    /// When the condition does not hold (yet).
    fn into_result(self) -> Result<Self::Value, String>;
}

impl Outcome for bool {
    type Value = ();

    fn into_result(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("the condition was false".to_owned())
        }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;

    fn into_result(self) -> Result<T, String> {
        self.ok_or_else(|| "the condition gave nothing (None)".to_owned())
    }
}

impl<T, E: Display> Outcome for Result<T, E> {
    type Value = T;

    fn into_result(self) -> Result<T, String> {
        self.map_err(|err| err.to_string())
    }
}

/// Checks `condition` until it holds and gives back its value (see [`Outcome`]); panics,
/// naming the caller's line and the last reason, when `timeout` passes first. A check still
/// running when the time is up counts as failed.
///
/// The checks come quickly at first (2 ms apart, then each pause doubles up to 50 ms), so a
/// condition that holds soon is seen soon, and one that takes long costs few checks.
///
/// ```no_run
/// # async fn example(pool: sqlx::PgPool) {
/// use std::time::Duration;
///
/// let tickets: i64 = testkit::eventually(
///     async || {
///         let tickets: i64 = sqlx::query_scalar("select count(*) from tickets")
///             .fetch_one(&pool)
///             .await
///             .expect("the read model answers");
///         if tickets >= 3 { Ok(tickets) } else { Err(format!("{tickets} of 3 tickets")) }
///     },
///     Duration::from_secs(10),
/// )
/// .await;
/// # }
/// ```
#[track_caller]
pub fn eventually<C, O>(mut condition: C, timeout: Duration) -> impl Future<Output = O::Value>
where
    C: AsyncFnMut() -> O,
    O: Outcome,
{
    let caller = Location::caller();
    async move {
        let deadline = Instant::now() + timeout;
        let mut pause = FIRST_PAUSE;
        loop {
            let why = match tokio::time::timeout_at(deadline, condition()).await {
                Ok(outcome) => match outcome.into_result() {
                    Ok(value) => return value,
                    Err(why) => why,
                },
                Err(_) => "the last check was still running".to_owned(),
            };
            let now = Instant::now();
            assert!(
                now < deadline,
                "eventually (at {caller}): still not so after {timeout:?}: {why}"
            );
            tokio::time::sleep_until((now + pause).min(deadline)).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn gives_the_value_once_the_condition_holds() {
        let checks = AtomicU32::new(0);
        let value = eventually(
            async || {
                let n = checks.fetch_add(1, Ordering::SeqCst) + 1;
                if n >= 3 {
                    Ok(n)
                } else {
                    Err(format!("{n} checks"))
                }
            },
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn a_condition_may_keep_state_between_checks() {
        let mut seen = Vec::new();
        eventually(
            async || {
                seen.push(seen.len());
                seen.len() == 4
            },
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(seen, [0, 1, 2, 3]);
    }

    #[tokio::test]
    #[should_panic(expected = "still not so after 50ms: 7 of 8 rows")]
    async fn panics_with_the_last_reason_when_the_time_is_up() {
        eventually(
            async || Err::<(), _>("7 of 8 rows"),
            Duration::from_millis(50),
        )
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "the last check was still running")]
    async fn a_check_that_hangs_fails_at_the_deadline() {
        eventually(
            async || std::future::pending::<bool>().await,
            Duration::from_millis(50),
        )
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "wait.rs")]
    async fn the_message_names_the_line_that_waited() {
        eventually(async || false, Duration::from_millis(10)).await;
    }
}
