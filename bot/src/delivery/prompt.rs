//! The rating prompt in the customer's language.

use app::commands::CommandService;
use domain::customer::Customer;
use domain::settings::{BotText, Settings};
use domain::{CustomerId, StreamId};
use eventlog::postgres::PostgresLog;

/// The `RatingPrompt` text for `customer`, in the language of their Telegram client as last
/// seen. When the settings or the customer cannot be read, the prompt still goes out: in the
/// built-in text of the customer's language, or in English.
pub(super) async fn rating_prompt(
    commands: &CommandService<PostgresLog>,
    customer: CustomerId,
) -> String {
    let language = match commands
        .state::<Customer>(StreamId::Customer(customer))
        .await
    {
        Ok(customer) => customer
            .state()
            .and_then(|state| state.profile.language_code.clone()),
        Err(error) => {
            tracing::warn!(%error, "cannot read the customer for the rating prompt's language");
            None
        }
    };
    let settings = match commands.state::<Settings>(StreamId::Settings).await {
        Ok(settings) => settings,
        Err(error) => {
            tracing::warn!(%error, "cannot read the settings for the rating prompt");
            Settings::default()
        }
    };
    settings
        .bot_text(BotText::RatingPrompt, language.as_deref())
        .to_owned()
}
