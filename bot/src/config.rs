//! The bot's settings: the token, how updates arrive (long polling or a webhook) and where the
//! Bot API lives. Every setting but the token has a safe default; without a token the bot is
//! off.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use teloxide::Bot;
use url::Url;

/// Telegram's own Bot API server.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// How long one `getUpdates` call waits for updates. It must stay below the HTTP client's
/// 17 s timeout (see STACK.md), or every quiet poll would end in a timeout error.
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The token is not `<bot id>:<secret>`.
    #[error("TELEGRAM_BOT_TOKEN must look like 123456789:AA…, as @BotFather gives it")]
    Token,
    /// The webhook URL is unusable.
    #[error("TELEGRAM_WEBHOOK_URL {0}")]
    WebhookUrl(&'static str),
    /// The webhook secret breaks Telegram's rules.
    #[error("TELEGRAM_WEBHOOK_SECRET must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -")]
    WebhookSecret,
    /// The poll timeout is out of range.
    #[error("the polling timeout must be between 1 and 15 seconds")]
    PollTimeout,
    /// The delivery retry window is out of range.
    #[error("LEDGERDESK_DELIVERY_RETRY_HOURS must be between 1 and 168")]
    DeliveryRetry,
    /// The bot's overall rate is out of range.
    #[error("TELEGRAM_MESSAGES_PER_SECOND must be between 1 and 1000")]
    MessagesPerSecond,
}

/// The highest overall rate a bot may be set to: what Telegram allows with paid broadcasts.
pub const MAX_MESSAGES_PER_SECOND: u32 = 1_000;

/// The overall rate by default: what Telegram allows a bot without paid broadcasts.
pub const DEFAULT_MESSAGES_PER_SECOND: u32 = 30;

/// The longest a reply may be tried through transient failures: a week.
pub const MAX_DELIVERY_RETRY_HOURS: u64 = 168;

/// How updates reach us.
#[derive(Clone)]
pub enum Mode {
    /// We ask Telegram with `getUpdates` (the default; works behind NAT, no public URL).
    Polling {
        /// How long each call waits for updates.
        timeout: Duration,
    },
    /// Telegram posts updates to `url`, which our HTTP server serves at `url`'s path.
    Webhook {
        /// The public HTTPS URL registered with `setWebhook`.
        url: Url,
        /// Sent back by Telegram in `X-Telegram-Bot-Api-Secret-Token`; requests without it
        /// are refused.
        secret: SecretString,
    },
}

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Polling { timeout } => {
                f.debug_struct("Polling").field("timeout", timeout).finish()
            }
            Self::Webhook { url, .. } => f
                .debug_struct("Webhook")
                .field("url", &url.as_str())
                .field("secret", &"[redacted]")
                .finish(),
        }
    }
}

/// Everything the bot needs. `Debug` never shows the token or the webhook secret.
#[derive(Clone)]
pub struct BotConfig {
    token: SecretString,
    /// How updates arrive.
    pub mode: Mode,
    /// The Bot API server (Telegram's, a self-hosted one, or a fake in tests).
    pub api_url: Url,
    /// How long a reply is tried again through transient failures (network errors, 5xx).
    pub delivery_retry: Duration,
    /// Messages per second over all chats, replies and broadcasts together.
    pub messages_per_second: std::num::NonZeroU32,
    /// Whether broadcast messages carry `allow_paid_broadcast` (Telegram then lets the bot
    /// send up to 1000 messages/s, charging Telegram Stars beyond the free 30).
    pub allow_paid_broadcast: bool,
}

impl fmt::Debug for BotConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotConfig")
            .field("bot_id", &self.bot_id())
            .field("mode", &self.mode)
            .field("api_url", &self.api_url.as_str())
            .field("delivery_retry", &self.delivery_retry)
            .field("messages_per_second", &self.messages_per_second)
            .field("allow_paid_broadcast", &self.allow_paid_broadcast)
            .finish_non_exhaustive()
    }
}

impl BotConfig {
    /// Long polling against Telegram's servers with `token`.
    ///
    /// # Errors
    /// [`ConfigError::Token`] when the token is not `<digits>:<secret>`.
    pub fn polling(token: SecretString) -> Result<Self, ConfigError> {
        check_token(&token)?;
        Ok(Self {
            token,
            mode: Mode::Polling {
                timeout: DEFAULT_POLL_TIMEOUT,
            },
            api_url: default_api_url(),
            delivery_retry: crate::delivery::DEFAULT_RETRY_FOR,
            messages_per_second: std::num::NonZeroU32::new(DEFAULT_MESSAGES_PER_SECOND)
                .unwrap_or(std::num::NonZeroU32::MIN),
            allow_paid_broadcast: false,
        })
    }

    /// The same bot with updates posted to `url`. Without `secret`, the secret is derived
    /// from the token (so every instance of one deployment agrees on it without configuration).
    ///
    /// # Errors
    /// A URL that is not http(s), has no path of its own or carries credentials, or a secret
    /// outside Telegram's alphabet.
    pub fn with_webhook(
        mut self,
        url: &str,
        secret: Option<SecretString>,
    ) -> Result<Self, ConfigError> {
        let url = Url::parse(url).map_err(|_| ConfigError::WebhookUrl("is not a URL"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(ConfigError::WebhookUrl("must be an https:// URL"));
        }
        if url.path() == "/" || url.path().is_empty() {
            return Err(ConfigError::WebhookUrl(
                "needs a path for the webhook, e.g. https://support.example.com/telegram/webhook",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::WebhookUrl(
                "must not carry a query or a fragment",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::WebhookUrl("must not carry credentials"));
        }
        let secret = match secret {
            Some(secret) => {
                check_secret(secret.expose_secret())?;
                secret
            }
            None => derived_secret(&self.token),
        };
        self.mode = Mode::Webhook { url, secret };
        Ok(self)
    }

    /// The same bot talking to another Bot API server.
    #[must_use]
    pub fn with_api_url(mut self, api_url: Url) -> Self {
        self.api_url = api_url;
        self
    }

    /// The same bot polling with another timeout.
    ///
    /// # Errors
    /// [`ConfigError::PollTimeout`] outside 1–15 s.
    pub fn with_poll_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if !(Duration::from_secs(1)..=Duration::from_secs(15)).contains(&timeout) {
            return Err(ConfigError::PollTimeout);
        }
        if let Mode::Polling { timeout: current } = &mut self.mode {
            *current = timeout;
        }
        Ok(self)
    }

    /// The same bot trying replies through transient failures for `hours` (1 to
    /// [`MAX_DELIVERY_RETRY_HOURS`]) from their first failure.
    ///
    /// # Errors
    /// [`ConfigError::DeliveryRetry`] outside that range.
    pub fn with_delivery_retry_hours(mut self, hours: u64) -> Result<Self, ConfigError> {
        if !(1..=MAX_DELIVERY_RETRY_HOURS).contains(&hours) {
            return Err(ConfigError::DeliveryRetry);
        }
        self.delivery_retry = Duration::from_secs(hours * 3600);
        Ok(self)
    }

    /// The same bot sending at most `per_second` messages a second over all chats (1 to
    /// [`MAX_MESSAGES_PER_SECOND`]).
    ///
    /// # Errors
    /// [`ConfigError::MessagesPerSecond`] outside that range.
    pub fn with_messages_per_second(mut self, per_second: u32) -> Result<Self, ConfigError> {
        self.messages_per_second = std::num::NonZeroU32::new(per_second)
            .filter(|rate| rate.get() <= MAX_MESSAGES_PER_SECOND)
            .ok_or(ConfigError::MessagesPerSecond)?;
        Ok(self)
    }

    /// The same bot marking broadcast messages `allow_paid_broadcast` or not.
    #[must_use]
    pub fn with_paid_broadcast(mut self, allow: bool) -> Self {
        self.allow_paid_broadcast = allow;
        self
    }

    /// The bot's numeric id: the token's part before the colon. Not secret.
    #[must_use]
    pub fn bot_id(&self) -> &str {
        self.token
            .expose_secret()
            .split_once(':')
            .map_or("", |(id, _)| id)
    }

    /// The Bot API's files of this bot (`getFile` and downloads), for media.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn files(&self) -> Result<media::TelegramFiles, media::FetchError> {
        media::TelegramFiles::new(self.api_url.clone(), self.token.clone())
    }

    /// A teloxide client for this bot.
    pub fn bot(&self) -> Bot {
        Bot::new(self.token.expose_secret()).set_api_url(self.api_url.clone())
    }

    /// The webhook's path on our server, when updates come by webhook.
    #[must_use]
    pub fn webhook_path(&self) -> Option<&str> {
        match &self.mode {
            Mode::Webhook { url, .. } => Some(url.path()),
            Mode::Polling { .. } => None,
        }
    }
}

fn default_api_url() -> Url {
    #[allow(clippy::expect_used)]
    Url::parse(DEFAULT_API_URL).expect("the default API URL is a valid URL")
}

fn check_token(token: &SecretString) -> Result<(), ConfigError> {
    let Some((id, secret)) = token.expose_secret().split_once(':') else {
        return Err(ConfigError::Token);
    };
    let well_formed = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && !secret.is_empty()
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if well_formed {
        Ok(())
    } else {
        Err(ConfigError::Token)
    }
}

fn check_secret(secret: &str) -> Result<(), ConfigError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if (1..=256).contains(&secret.len()) && secret.bytes().all(allowed) {
        Ok(())
    } else {
        Err(ConfigError::WebhookSecret)
    }
}

/// 64 hex characters: sha256 over a label and the token. As hard to guess as the token, and
/// the same on every instance.
fn derived_secret(token: &SecretString) -> SecretString {
    let mut hasher = Sha256::new();
    hasher.update(b"ledgerdesk webhook secret\0");
    hasher.update(token.expose_secret().as_bytes());
    SecretString::from(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> SecretString {
        SecretString::from("123456789:AAE-abc_DEF")
    }

    #[test]
    fn a_malformed_token_is_refused() {
        for bad in ["", "123", ":abc", "abc:def", "123:", "123:a b"] {
            assert!(
                matches!(
                    BotConfig::polling(SecretString::from(bad)),
                    Err(ConfigError::Token)
                ),
                "{bad:?}"
            );
        }
        assert!(BotConfig::polling(token()).is_ok());
    }

    #[test]
    fn debug_shows_neither_token_nor_secret() -> Result<(), ConfigError> {
        let config = BotConfig::polling(token())?.with_webhook(
            "https://support.example.com/tg",
            Some(SecretString::from("s3cr3t_x")),
        )?;
        let shown = format!("{config:?}");
        assert!(!shown.contains("AAE-abc_DEF"), "{shown}");
        assert!(!shown.contains("s3cr3t_x"), "{shown}");
        assert!(shown.contains("123456789"), "{shown}");
        Ok(())
    }

    #[test]
    fn the_webhook_url_needs_a_path_and_a_web_scheme() -> Result<(), ConfigError> {
        let base = BotConfig::polling(token())?;
        for bad in [
            "support.example.com/tg",
            "ftp://support.example.com/tg",
            "https://support.example.com",
            "https://support.example.com/",
            "https://support.example.com/tg?x=1",
            "https://user:pw@support.example.com/tg",
        ] {
            assert!(base.clone().with_webhook(bad, None).is_err(), "{bad}");
        }
        let config = base.with_webhook("https://support.example.com/telegram/hook", None)?;
        assert_eq!(config.webhook_path(), Some("/telegram/hook"));
        Ok(())
    }

    #[test]
    fn the_derived_secret_is_stable_valid_and_not_the_token() -> Result<(), ConfigError> {
        let secret = |config: &BotConfig| match &config.mode {
            Mode::Webhook { secret, .. } => secret.expose_secret().to_owned(),
            Mode::Polling { .. } => String::new(),
        };
        let a = BotConfig::polling(token())?.with_webhook("https://x.example/tg", None)?;
        let b = BotConfig::polling(token())?.with_webhook("https://y.example/tg", None)?;
        assert_eq!(secret(&a), secret(&b));
        assert!(check_secret(&secret(&a)).is_ok());
        assert!(!secret(&a).contains("AAE"));
        let other = BotConfig::polling(SecretString::from("42:other"))?
            .with_webhook("https://x.example/tg", None)?;
        assert_ne!(secret(&a), secret(&other));
        Ok(())
    }

    #[test]
    fn a_secret_outside_telegrams_alphabet_is_refused() -> Result<(), ConfigError> {
        let base = BotConfig::polling(token())?;
        for bad in ["", "has space", "dots.are.out", &"x".repeat(257)] {
            assert!(
                base.clone()
                    .with_webhook("https://x.example/tg", Some(SecretString::from(bad)))
                    .is_err(),
                "{bad:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_poll_timeout_stays_below_the_client_timeout() -> Result<(), ConfigError> {
        let base = BotConfig::polling(token())?;
        assert!(
            base.clone()
                .with_poll_timeout(Duration::from_secs(16))
                .is_err()
        );
        assert!(base.clone().with_poll_timeout(Duration::ZERO).is_err());
        assert!(base.with_poll_timeout(Duration::from_secs(5)).is_ok());
        Ok(())
    }

    #[test]
    fn replies_are_retried_between_an_hour_and_a_week() -> Result<(), ConfigError> {
        let base = BotConfig::polling(token())?;
        assert_eq!(base.delivery_retry, Duration::from_secs(24 * 3600));
        assert!(base.clone().with_delivery_retry_hours(0).is_err());
        assert!(base.clone().with_delivery_retry_hours(169).is_err());
        let week = base.with_delivery_retry_hours(168)?;
        assert_eq!(week.delivery_retry, Duration::from_secs(168 * 3600));
        Ok(())
    }
}
