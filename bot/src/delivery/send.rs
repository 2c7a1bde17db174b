//! Talking to Telegram: what messages a reply becomes, the rate limits, and what to do with
//! each kind of error (wait out a 429 for the whole bot, back off on network trouble, give up
//! on anything Telegram refuses for good).
//!
//! Nothing here logs a request or an error's text as is: network errors carry the request URL,
//! which holds the bot token, and an unreadable answer may echo the message text. Reasons are
//! rebuilt from the error's kind instead (see [`super::call`]).

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use chrono::{DateTime, Utc};
use domain::content::{MediaKind, ReplyContent};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use teloxide::Bot;
use teloxide::payloads::{
    EditMessageReplyMarkup, SendAnimation, SendAudio, SendDocument, SendMessage, SendPhoto,
    SendVideo, SendVoice,
};
use teloxide::types::{
    ChatId, FileId, InlineKeyboardMarkup, InputFile, MessageId, ParseMode, ReplyMarkup,
    ReplyParameters,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::call::{self, CallError};
use super::overall::Overall;
use crate::store::DeliveryStore;

/// Telegram's longest media caption. Telegram counts UTF-16 code units, so that is what
/// [`plan`] counts too (an emoji takes two).
pub(super) const CAPTION_CHARS: usize = 1024;

/// The longest failure reason recorded (the domain allows 1024 characters).
const REASON_CHARS: usize = 500;

/// One Telegram message to send (or to change).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Part {
    /// `editMessageReplyMarkup` without markup: the message's buttons go away.
    ClearButtons { message_id: i32 },
    /// `sendMessage`, with inline buttons or not.
    Text {
        text: String,
        keyboard: Option<InlineKeyboardMarkup>,
        /// The message of the chat it quotes.
        reply_to: Option<i32>,
        /// How Telegram reads the text (`None`: as written).
        parse_mode: Option<ParseMode>,
    },
    /// `sendPhoto` & co. by file id.
    Media {
        kind: MediaKind,
        file_id: String,
        caption: Option<String>,
        /// The message of the chat it quotes.
        reply_to: Option<i32>,
        /// Inline buttons under the medium.
        keyboard: Option<InlineKeyboardMarkup>,
        /// How Telegram reads the caption (`None`: as written).
        parse_mode: Option<ParseMode>,
    },
}

/// The parameters that make a message quote `message_id`; sent even when the quoted
/// message is gone from the chat (the customer deleted it), as a message of its own.
fn quoting(message_id: Option<i32>) -> Option<ReplyParameters> {
    message_id.map(|id| ReplyParameters::new(MessageId(id)).allow_sending_without_reply())
}

/// The messages a reply becomes, in order: the text alone; one medium with the text as its
/// caption when the text fits one; otherwise every medium, then the text. The first quotes
/// `reply_to`, when the agent answered a message of the chat.
pub(super) fn plan(content: &ReplyContent, reply_to: Option<i32>) -> Vec<Part> {
    let text = content.text.as_deref().filter(|t| !t.is_empty());
    let medium = |m: &domain::content::OutgoingMedia, caption: Option<&str>| Part::Media {
        kind: m.kind,
        file_id: m.file_id.clone(),
        caption: caption.map(str::to_owned),
        reply_to: None,
        keyboard: None,
        parse_mode: None,
    };
    let mut parts: Vec<Part> = match (content.media.as_slice(), text) {
        ([only], Some(text)) if text.encode_utf16().count() <= CAPTION_CHARS => {
            vec![medium(only, Some(text))]
        }
        (media, text) => media
            .iter()
            .map(|m| medium(m, None))
            .chain(text.map(|text| Part::Text {
                text: text.to_owned(),
                keyboard: None,
                reply_to: None,
                parse_mode: None,
            }))
            .collect(),
    };
    if let Some(
        Part::Text {
            reply_to: first, ..
        }
        | Part::Media {
            reply_to: first, ..
        },
    ) = parts.first_mut()
    {
        *first = reply_to;
    }
    parts
}

/// What Telegram's answer means for us.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum SendError {
    /// 429: wait this long (the whole bot), then send again.
    RetryAfter(Duration),
    /// 403 "bot was blocked by the user".
    Blocked,
    /// Worth sending again after a pause (network, 5xx, 429 without a wait, unreadable answer).
    Transient(String),
    /// Telegram refused for good (bad file id, chat not found…): its description.
    Permanent(String),
}

/// Classifies a failed call by Telegram's `error_code`, keeping no text that could hold the
/// token or the message.
pub(super) fn classify(error: &CallError) -> SendError {
    match error {
        CallError::RetryAfter(after) => SendError::RetryAfter(*after),
        CallError::Migrated => {
            SendError::Permanent("the group chat became a supergroup".to_owned())
        }
        CallError::Api { code, description } => match code {
            403 if description.contains("bot was blocked by the user") => SendError::Blocked,
            429 | 500..=599 => SendError::Transient(truncate(description)),
            _ => SendError::Permanent(truncate(description)),
        },
        CallError::Network(what) => SendError::Transient((*what).to_owned()),
        CallError::Unreadable { status } if *status >= 500 => {
            SendError::Transient(format!("Telegram answered HTTP {status}"))
        }
        CallError::Unreadable { .. } => {
            SendError::Transient("Telegram answered something that is not the Bot API".to_owned())
        }
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(REASON_CHARS).collect()
}

/// How one attempt at a part ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Attempt {
    /// Telegram accepted it: the message id.
    Accepted(i32),
    /// The customer blocked the bot.
    Blocked,
    /// Worth trying again later: why not now.
    Transient(String),
    /// Telegram refused it for good: why.
    Permanent(String),
    /// The worker is stopping and the part was not sent.
    Stopped,
}

/// How one part ended after the sender's own retries.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Sent {
    /// Telegram accepted it: the message id.
    Accepted(i32),
    /// The customer blocked the bot.
    Blocked,
    /// Given up: why, and whether sending again later may work.
    Failed { reason: String, retryable: bool },
    /// The worker is stopping and the part was not sent.
    Stopped,
}

/// Retry tuning for [`Sender`].
#[derive(Debug, Clone)]
pub(super) struct RetryPolicy {
    pub(super) max_attempts: u32,
    pub(super) first_backoff: Duration,
    pub(super) max_backoff: Duration,
}

impl RetryPolicy {
    /// The pauses of a new run of failures.
    pub(super) fn pauses(&self) -> Pauses {
        // backon's jitter adds up to as much again to each pause of its schedule, so the
        // schedule runs at half the ceilings: every pause then lies within [ceiling / 2,
        // ceiling), where the ceiling doubles from `first_backoff` up to `max_backoff`.
        let schedule = ExponentialBuilder::new()
            .with_min_delay(self.first_backoff / 2)
            .with_max_delay(self.max_backoff / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        Pauses {
            schedule,
            longest: self.max_backoff,
        }
    }

    /// The pause after failure number `failures` (1 for the first) of a run: the same
    /// schedule as [`RetryPolicy::pauses`], for a run that went on across a restart.
    pub(super) fn pause_after(&self, failures: u32) -> Duration {
        let mut pauses = self.pauses();
        // Past the cap every pause has the same ceiling: no need to walk further.
        let steps = failures.clamp(1, 64);
        let mut pause = pauses.next_pause();
        for _ in 1..steps {
            pause = pauses.next_pause();
        }
        pause
    }
}

/// The pauses after one failure after another: exponential, capped, and each drawn from the
/// upper half of its ceiling so lanes that failed together do not retry together. Start a new
/// one when something went through.
#[derive(Debug)]
pub(super) struct Pauses {
    schedule: ExponentialBackoff,
    longest: Duration,
}

impl Pauses {
    /// The pause after the next failure.
    pub(super) fn next_pause(&mut self) -> Duration {
        // The schedule has no end; were it to run out, its longest pause would stand in.
        self.schedule.next().unwrap_or(self.longest)
    }
}

/// Sends parts to Telegram within the rate limits, honouring 429 for the whole bot (also
/// across restarts: the pause is saved) and retrying what may pass later. Shared by every
/// chat lane.
#[derive(Debug)]
pub(super) struct Sender {
    bot: Bot,
    /// The bot-wide limit, replies before broadcasts.
    overall: Overall,
    per_chat: DefaultKeyedRateLimiter<i64>,
    /// While set and in the future, nobody sends: Telegram asked the bot to wait.
    paused_until: Mutex<Option<Instant>>,
    retry: RetryPolicy,
    store: DeliveryStore,
    /// Cancelled once the worker is stopping.
    stop: CancellationToken,
    /// Broadcast messages go with `allow_paid_broadcast`.
    paid_broadcast: bool,
    /// Files agents uploaded, to send by upload.
    media: Option<media::MediaService>,
}

impl Sender {
    pub(super) fn new(
        bot: Bot,
        overall: NonZeroU32,
        per_chat: NonZeroU32,
        retry: RetryPolicy,
        store: DeliveryStore,
        stop: CancellationToken,
        paid_broadcast: bool,
    ) -> Arc<Self> {
        Arc::new(Sender {
            bot,
            overall: Overall::new(overall),
            per_chat: RateLimiter::keyed(Quota::per_second(per_chat)),
            paused_until: Mutex::new(None),
            retry,
            store,
            stop,
            paid_broadcast,
            media: None,
        })
    }

    /// The same sender, sending agents' uploads from `media`.
    pub(super) fn with_media(self: Arc<Self>, media: Option<media::MediaService>) -> Arc<Self> {
        match Arc::try_unwrap(self) {
            Ok(mut sender) => {
                sender.media = media;
                Arc::new(sender)
            }
            // Only just built, so not shared yet; were it shared, it keeps sending without.
            Err(shared) => shared,
        }
    }

    /// Forgets the per-chat limits of chats that have been quiet long enough to be full again.
    pub(super) fn forget_idle_chats(&self) {
        self.per_chat.retain_recent();
        self.per_chat.shrink_to_fit();
    }

    /// Takes up a pause Telegram asked for before a restart: nothing is sent before `until`.
    pub(super) fn resume_pause(&self, until: DateTime<Utc>) {
        if let Ok(left) = until.signed_duration_since(Utc::now()).to_std() {
            tracing::info!(
                left_s = left.as_secs(),
                "Telegram asked the bot to wait before the restart; waiting it out"
            );
            self.pause_here(left);
        }
    }

    /// One attempt at `part` to `chat`: waits for the rate limits and for any 429 pause, and
    /// sends again after a 429 for as long as Telegram asks. Waits are cut short when the
    /// worker stops: the part is then [`Attempt::Stopped`], unsent.
    pub(super) async fn attempt(&self, chat: i64, part: &Part) -> Attempt {
        loop {
            if !self.wait_while_paused().await {
                return Attempt::Stopped;
            }
            self.per_chat.until_key_ready(&chat).await;
            self.overall.for_reply().await;
            // A 429 may have arrived while this part waited for its turn.
            if !self.wait_while_paused().await {
                return Attempt::Stopped;
            }
            let sent = send_part(&self.bot, self.media.as_ref(), ChatId(chat), part, false).await;
            if let Some(attempt) = self.ended(sent).await {
                return attempt;
            }
        }
    }

    /// How a call's answer ends an attempt; `None` after a 429, once the whole bot's pause
    /// has begun: the caller takes its turn again and sends once more.
    async fn ended(&self, sent: Result<i32, CallError>) -> Option<Attempt> {
        let error = match sent {
            Ok(message) => return Some(Attempt::Accepted(message)),
            Err(error) => classify(&error),
        };
        match error {
            SendError::RetryAfter(wait) => {
                tracing::warn!(
                    retry_after_s = wait.as_secs(),
                    "Telegram asked the bot to slow down; pausing every send"
                );
                self.pause_for(wait).await;
                None
            }
            SendError::Blocked => Some(Attempt::Blocked),
            SendError::Permanent(reason) => Some(Attempt::Permanent(reason)),
            SendError::Transient(reason) => Some(Attempt::Transient(reason)),
        }
    }

    /// The turn of a broadcast message to `chat`, taken by the broadcast's pacer before it
    /// hands the message to a task of its own: waits out a 429 pause and takes the bot-wide
    /// token after every waiting reply. `false` when the chat's own limit is not ready yet (a
    /// reply went there less than a second ago): the task then waits for its turn itself
    /// ([`Sender::attempt_broadcast`] with `has_turn` false), so the pacer does not stall.
    /// Also `false` when the worker stops.
    pub(super) async fn broadcast_turn(&self, chat: i64) -> bool {
        if !self.wait_while_paused().await {
            return false;
        }
        if self.per_chat.check_key(&chat).is_err() {
            return false;
        }
        tokio::select! {
            () = self.overall.for_broadcast() => true,
            () = self.stop.cancelled() => false,
        }
    }

    /// One attempt at a broadcast message: like [`Sender::attempt`], with the bot-wide token
    /// taken after every waiting reply. `has_turn`: the pacer already took this attempt's
    /// tokens ([`Sender::broadcast_turn`]); after a 429 they are taken again.
    pub(super) async fn attempt_broadcast(
        &self,
        chat: i64,
        part: &Part,
        has_turn: bool,
    ) -> Attempt {
        let mut has_turn = has_turn;
        loop {
            if !has_turn {
                if !self.wait_while_paused().await {
                    return Attempt::Stopped;
                }
                tokio::select! {
                    () = self.per_chat.until_key_ready(&chat) => {}
                    () = self.stop.cancelled() => return Attempt::Stopped,
                }
                tokio::select! {
                    () = self.overall.for_broadcast() => {}
                    () = self.stop.cancelled() => return Attempt::Stopped,
                }
                if !self.wait_while_paused().await {
                    return Attempt::Stopped;
                }
            }
            has_turn = false;
            let sent = send_part(
                &self.bot,
                self.media.as_ref(),
                ChatId(chat),
                part,
                self.paid_broadcast,
            )
            .await;
            if let Some(attempt) = self.ended(sent).await {
                return attempt;
            }
        }
    }

    /// Sends one part, retrying transient errors in memory up to the policy's attempts (for
    /// satisfaction prompts and their buttons; replies keep a schedule of their own, see
    /// `job`).
    pub(super) async fn send(&self, chat: i64, part: &Part) -> Sent {
        let mut failures = 0;
        let mut pauses = self.retry.pauses();
        loop {
            let reason = match self.attempt(chat, part).await {
                Attempt::Accepted(id) => return Sent::Accepted(id),
                Attempt::Blocked => return Sent::Blocked,
                Attempt::Permanent(reason) => {
                    return Sent::Failed {
                        reason,
                        retryable: false,
                    };
                }
                Attempt::Stopped => return Sent::Stopped,
                Attempt::Transient(reason) => reason,
            };
            failures += 1;
            if failures >= self.retry.max_attempts {
                return Sent::Failed {
                    reason,
                    retryable: true,
                };
            }
            let pause = pauses.next_pause();
            tracing::info!(
                attempt = failures,
                pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                %reason,
                "send failed; retrying"
            );
            if !self.sleep(pause).await {
                return Sent::Stopped;
            }
        }
    }

    /// Pauses every lane for `wait`, and saves the end of the pause so that a restart keeps
    /// it (a failed save is logged: the pause still holds in this process).
    async fn pause_for(&self, wait: Duration) {
        self.pause_here(wait);
        let not_before =
            Utc::now() + chrono::TimeDelta::from_std(wait).unwrap_or(chrono::TimeDelta::MAX);
        if let Err(error) = self.store.save_pause(not_before).await {
            tracing::warn!(%error, "cannot save Telegram's pause; a restart may send earlier");
        }
    }

    fn pause_here(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self
            .paused_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *paused = Some(paused.map_or(until, |current| current.max(until)));
    }

    /// Waits out a 429 pause; false when the worker stops meanwhile.
    async fn wait_while_paused(&self) -> bool {
        loop {
            let until = *self
                .paused_until
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match until {
                Some(until) if until > Instant::now() => {
                    if !self.sleep_until(until).await {
                        return false;
                    }
                }
                _ => return true,
            }
        }
    }

    /// Sleeps; false when the worker stops first.
    pub(super) async fn sleep(&self, pause: Duration) -> bool {
        self.sleep_until(Instant::now() + pause).await
    }

    async fn sleep_until(&self, until: Instant) -> bool {
        if self.stop.is_cancelled() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep_until(until) => true,
            () = self.stop.cancelled() => false,
        }
    }

    /// The pauses of a new run of failures of anything (the policy's).
    pub(super) fn pauses(&self) -> Pauses {
        self.retry.pauses()
    }

    /// The policy's pause after failure number `failures`.
    pub(super) fn pause_after(&self, failures: u32) -> Duration {
        self.retry.pause_after(failures)
    }

    /// True once the worker is stopping.
    pub(super) fn stopping(&self) -> bool {
        self.stop.is_cancelled()
    }
}

/// Sends `part` to `chat` (agents' uploads read from `media`); `paid`: with
/// `allow_paid_broadcast` (broadcast messages, when set).
async fn send_part(
    bot: &Bot,
    media: Option<&media::MediaService>,
    chat: ChatId,
    part: &Part,
    paid: bool,
) -> Result<i32, CallError> {
    match part {
        Part::Text {
            text,
            keyboard,
            reply_to,
            parse_mode,
        } => {
            let mut payload = SendMessage::new(chat, text.clone());
            payload.reply_markup = keyboard.clone().map(ReplyMarkup::InlineKeyboard);
            payload.reply_parameters = quoting(*reply_to);
            payload.parse_mode = *parse_mode;
            payload.allow_paid_broadcast = paid.then_some(true);
            call::send(bot, &payload).await
        }
        Part::ClearButtons { message_id } => {
            // Without `reply_markup` Telegram removes the inline keyboard.
            let payload = EditMessageReplyMarkup::new(chat, MessageId(*message_id));
            call::call(bot, &payload).await.map(|_| *message_id)
        }
        Part::Media {
            kind,
            file_id,
            caption,
            reply_to,
            keyboard,
            parse_mode,
        } => {
            let mut file_id = file_id.clone();
            if let Some(upload) = domain::content::upload_of(&file_id) {
                match super::upload::known_file_id(media, upload).await? {
                    Some(known) => file_id = known,
                    None => {
                        return super::upload::send(
                            bot,
                            media,
                            super::upload::Upload {
                                id: upload,
                                kind: *kind,
                                chat,
                                caption: caption.clone(),
                                reply_to: quoting(*reply_to),
                            },
                        )
                        .await;
                    }
                }
            }
            let file = InputFile::file_id(FileId(file_id));
            let caption = caption.clone();
            let markup = keyboard.clone().map(ReplyMarkup::InlineKeyboard);
            // Each payload type has its own fields, hence the repetition.
            macro_rules! send {
                ($payload:ident) => {{
                    let mut payload = $payload::new(chat, file);
                    payload.caption = caption;
                    payload.reply_parameters = quoting(*reply_to);
                    payload.reply_markup = markup;
                    payload.parse_mode = *parse_mode;
                    payload.allow_paid_broadcast = paid.then_some(true);
                    call::send(bot, &payload).await
                }};
            }
            match kind {
                MediaKind::Photo => send!(SendPhoto),
                MediaKind::Video => send!(SendVideo),
                MediaKind::Document => send!(SendDocument),
                MediaKind::Audio => send!(SendAudio),
                MediaKind::Voice => send!(SendVoice),
                MediaKind::Animation => send!(SendAnimation),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::content::OutgoingMedia;

    use super::*;

    fn media(kind: MediaKind, id: &str) -> OutgoingMedia {
        OutgoingMedia {
            kind,
            file_id: id.to_owned(),
        }
    }

    fn text(text: &str) -> Part {
        Part::Text {
            text: text.to_owned(),
            keyboard: None,
            reply_to: None,
            parse_mode: None,
        }
    }

    fn part(kind: MediaKind, id: &str, caption: Option<&str>) -> Part {
        Part::Media {
            kind,
            file_id: id.to_owned(),
            caption: caption.map(str::to_owned),
            reply_to: None,
            keyboard: None,
            parse_mode: None,
        }
    }

    #[test]
    fn only_the_first_message_of_a_reply_quotes_what_it_answers() {
        let content = ReplyContent {
            text: Some("t".repeat(CAPTION_CHARS + 1)),
            media: vec![media(MediaKind::Photo, "P")],
        };
        let parts = plan(&content, Some(77));
        let quoted: Vec<Option<i32>> = parts
            .iter()
            .map(|part| match part {
                Part::Text { reply_to, .. } | Part::Media { reply_to, .. } => *reply_to,
                Part::ClearButtons { .. } => None,
            })
            .collect();
        assert_eq!(quoted, [Some(77), None]);
        assert!(matches!(
            plan(&ReplyContent::text("hi"), Some(5)).as_slice(),
            [Part::Text {
                reply_to: Some(5),
                ..
            }]
        ));
    }

    #[test]
    fn a_text_reply_is_one_message() {
        assert_eq!(plan(&ReplyContent::text("hello"), None), [text("hello")]);
    }

    #[test]
    fn one_medium_carries_a_short_text_as_its_caption() {
        let content = ReplyContent {
            text: Some("see".into()),
            media: vec![media(MediaKind::Photo, "P")],
        };
        assert_eq!(
            plan(&content, None),
            [part(MediaKind::Photo, "P", Some("see"))]
        );

        let exactly = "é".repeat(CAPTION_CHARS);
        let content = ReplyContent {
            text: Some(exactly.clone()),
            media: vec![media(MediaKind::Voice, "V")],
        };
        assert_eq!(
            plan(&content, None),
            [part(MediaKind::Voice, "V", Some(&exactly))]
        );

        // 600 emoji are 1200 UTF-16 units: too long for a caption.
        let emoji = "🙂".repeat(600);
        let content = ReplyContent {
            text: Some(emoji.clone()),
            media: vec![media(MediaKind::Photo, "P")],
        };
        assert_eq!(
            plan(&content, None),
            [part(MediaKind::Photo, "P", None), text(&emoji)]
        );
    }

    #[test]
    fn a_long_text_or_several_media_go_separately_text_last() {
        let long = "x".repeat(CAPTION_CHARS + 1);
        let content = ReplyContent {
            text: Some(long.clone()),
            media: vec![media(MediaKind::Document, "D")],
        };
        assert_eq!(
            plan(&content, None),
            [part(MediaKind::Document, "D", None), text(&long)]
        );

        let content = ReplyContent {
            text: Some("both".into()),
            media: vec![media(MediaKind::Photo, "1"), media(MediaKind::Video, "2")],
        };
        assert_eq!(
            plan(&content, None),
            [
                part(MediaKind::Photo, "1", None),
                part(MediaKind::Video, "2", None),
                text("both")
            ]
        );

        let content = ReplyContent {
            text: None,
            media: vec![
                media(MediaKind::Audio, "1"),
                media(MediaKind::Animation, "2"),
            ],
        };
        assert_eq!(
            plan(&content, None),
            [
                part(MediaKind::Audio, "1", None),
                part(MediaKind::Animation, "2", None)
            ]
        );
    }

    #[test]
    fn errors_are_classified_by_telegrams_error_code() {
        let api = |code: u16, description: &str| CallError::Api {
            code,
            description: description.to_owned(),
        };
        assert_eq!(
            classify(&CallError::RetryAfter(Duration::from_secs(3))),
            SendError::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            classify(&api(403, "Forbidden: bot was blocked by the user")),
            SendError::Blocked
        );
        assert_eq!(
            classify(&api(403, "Forbidden: user is deactivated")),
            SendError::Permanent("Forbidden: user is deactivated".into())
        );
        for code in [500, 502, 503, 504] {
            assert_eq!(
                classify(&api(code, "Bad Gateway")),
                SendError::Transient("Bad Gateway".into())
            );
        }
        assert_eq!(
            classify(&api(429, "Too Many Requests")),
            SendError::Transient("Too Many Requests".into())
        );
        assert_eq!(
            classify(&api(400, "Bad Request: chat not found")),
            SendError::Permanent("Bad Request: chat not found".into())
        );
        assert!(matches!(
            classify(&CallError::Unreadable { status: 502 }),
            SendError::Transient(reason) if reason.contains("502")
        ));
        assert!(matches!(
            classify(&CallError::Network("network error")),
            SendError::Transient(_)
        ));
        assert!(matches!(
            classify(&CallError::Migrated),
            SendError::Permanent(_)
        ));
        let long = "x".repeat(2 * REASON_CHARS);
        assert!(matches!(
            classify(&api(400, &long)),
            SendError::Permanent(reason) if reason.chars().count() == REASON_CHARS
        ));
    }

    #[test]
    fn a_run_resumed_after_a_restart_pauses_as_long_as_an_unbroken_one() {
        let policy = RetryPolicy {
            max_attempts: 10,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        };
        let rounding = Duration::from_micros(1);
        for failures in [1u32, 2, 3, 5, 10, 1_000, u32::MAX] {
            let ceiling = Duration::from_millis(100)
                .saturating_mul(1u32.checked_shl(failures.min(32) - 1).unwrap_or(u32::MAX))
                .min(Duration::from_secs(2));
            let pause = policy.pause_after(failures);
            assert!(
                pause + rounding >= ceiling / 2 && pause <= ceiling + rounding,
                "{failures}: {pause:?}"
            );
        }
    }

    #[test]
    fn backoff_grows_and_stays_under_its_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        };
        // backon computes in f32: allow for its rounding.
        let rounding = Duration::from_micros(1);
        for _ in 0..100 {
            let mut pauses = policy.pauses();
            for attempt in 1..=20 {
                let pause = pauses.next_pause();
                let ceiling = Duration::from_millis(100)
                    .saturating_mul(1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX))
                    .min(Duration::from_secs(2));
                assert!(
                    pause + rounding >= ceiling / 2 && pause <= ceiling + rounding,
                    "{attempt}: {pause:?}"
                );
            }
        }
    }
}
