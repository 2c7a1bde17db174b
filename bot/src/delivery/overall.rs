//! The bot-wide rate limit, shared by agents' replies and broadcasts, with replies first.
//!
//! Telegram allows a bot about 30 messages a second over all chats; replies and broadcast
//! messages draw from that one budget (a governor GCRA limiter). A broadcast message never
//! takes a token while a reply waits for one: each reply registers before it waits and
//! deregisters once it has its token, and a broadcast takes a token only under the same lock,
//! when no reply is registered. So a reply written during a broadcast waits at most for the
//! next token the limiter emits (1/rate: 33 ms at 30/s) on top of what it would wait alone,
//! plus, when the broadcast went to the same chat less than a second before, the rest of that
//! second (Telegram's 1 message/s per chat).
//!
//! The limiter allows a burst of a twentieth of the rate (at least 1): enough to catch up with
//! the timer's granularity at high rates, small enough that no second ever holds more than
//! the rate plus that burst.

use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;

/// The bot-wide limiter with the replies' priority.
#[derive(Debug)]
pub(super) struct Overall {
    limiter: DefaultDirectRateLimiter,
    clock: DefaultClock,
    /// Replies waiting for a token now.
    replies_waiting: Mutex<usize>,
    /// Signalled each time a reply got its token (or gave up waiting).
    reply_served: Notify,
}

/// Deregisters a waiting reply, also when its wait is dropped half way (shutdown).
struct Registered<'a>(&'a Overall);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        {
            let mut waiting = self
                .0
                .replies_waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *waiting = waiting.saturating_sub(1);
        }
        self.0.reply_served.notify_waiters();
    }
}

impl Overall {
    /// A limiter of `per_second` messages.
    pub(super) fn new(per_second: NonZeroU32) -> Self {
        let burst = NonZeroU32::new(per_second.get() / 20).unwrap_or(NonZeroU32::MIN);
        Overall {
            limiter: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
            clock: DefaultClock::default(),
            replies_waiting: Mutex::new(0),
            reply_served: Notify::new(),
        }
    }

    /// Waits for a token for a reply (or a prompt, or a button removal): ahead of every
    /// broadcast message.
    pub(super) async fn for_reply(&self) {
        *self
            .replies_waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        let _registered = Registered(self);
        self.limiter.until_ready().await;
    }

    /// Waits for a token for a broadcast message: only when no reply waits for one.
    pub(super) async fn for_broadcast(&self) {
        loop {
            // Created before looking, so a reply served in between is not missed.
            let served = self.reply_served.notified();
            let wait = {
                let waiting = self
                    .replies_waiting
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if *waiting > 0 {
                    None
                } else {
                    match self.limiter.check() {
                        Ok(()) => return,
                        Err(not_until) => Some(not_until.wait_time_from(self.clock.now())),
                    }
                }
            };
            match wait {
                Some(wait) => tokio::time::sleep(wait.max(Duration::from_micros(100))).await,
                None => served.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn a_reply_gets_the_next_token_while_a_broadcast_keeps_the_limiter_busy() {
        let overall = Arc::new(Overall::new(NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN)));
        let broadcast = tokio::spawn({
            let overall = Arc::clone(&overall);
            async move {
                for _ in 0..40 {
                    overall.for_broadcast().await;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut worst = Duration::ZERO;
        for _ in 0..5 {
            let asked = Instant::now();
            overall.for_reply().await;
            worst = worst.max(asked.elapsed());
        }
        // One token every 20 ms: a reply never waits behind the broadcast's queue.
        assert!(
            worst < Duration::from_millis(60),
            "a reply waited {worst:?}"
        );
        broadcast.await.unwrap_or_default();
    }
}
