use chrono::TimeZone;
use uuid::Uuid;

use super::*;
use crate::testkit::given;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
        .single()
        .unwrap_or_default()
}
fn admin() -> AgentId {
    AgentId(Uuid::from_u128(0xad))
}
fn category(n: u128) -> CategoryId {
    CategoryId(Uuid::from_u128(n))
}
fn template_id(n: u128) -> TemplateId {
    TemplateId(Uuid::from_u128(n))
}
fn add_category(n: u128, name: &str) -> SettingsCommand {
    SettingsCommand::AddCategory {
        category_id: category(n),
        name: name.into(),
        by: admin(),
        at: at(),
    }
}
fn category_added(n: u128, name: &str) -> SettingsEvent {
    SettingsEvent::CategoryAdded(CategoryNamed {
        category_id: category(n),
        name: name.into(),
        by: admin(),
        at: at(),
    })
}
fn template_added(n: u128) -> SettingsEvent {
    SettingsEvent::TemplateAdded(TemplateSaved {
        template_id: template_id(n),
        by: admin(),
        at: at(),
        content: TemplateContent {
            title: "Refund".into(),
            text: "We refunded you.".into(),
        },
    })
}

#[test]
fn adding_a_category_trims_its_name() {
    let state = given::<Settings>([])
        .when(add_category(1, " Billing "))
        .then([category_added(1, "Billing")]);
    assert!(state.uses_categories());
}

#[test]
fn adding_a_category_twice_is_rejected() {
    given::<Settings>([category_added(1, "Billing")])
        .when(add_category(1, "Other"))
        .then_err(SettingsError::CategoryExists);
}

#[test]
fn two_categories_with_the_same_name_ignoring_case_are_rejected() {
    given::<Settings>([category_added(1, "Billing")])
        .when(add_category(2, "billing"))
        .then_err(SettingsError::DuplicateCategoryName("billing".into()));
}

#[test]
fn a_blank_category_name_is_rejected() {
    given::<Settings>([]).when(add_category(1, "  ")).then_err(
        InvalidInput::Empty {
            field: "category name",
        }
        .into(),
    );
}

#[test]
fn more_categories_than_allowed_are_rejected() {
    let existing: Vec<_> = (0..50u128)
        .map(|n| category_added(n, &format!("c{n}")))
        .collect();
    given::<Settings>(existing)
        .when(add_category(99, "one more"))
        .then_err(
            InvalidInput::TooMany {
                field: "categories",
                max: 50,
                actual: 51,
            }
            .into(),
        );
}

#[test]
fn renaming_a_category_records_the_new_name_once() {
    let rename = SettingsCommand::RenameCategory {
        category_id: category(1),
        name: "Payments".into(),
        by: admin(),
        at: at(),
    };
    given::<Settings>([category_added(1, "Billing")])
        .when(rename.clone())
        .then([SettingsEvent::CategoryRenamed(CategoryNamed {
            category_id: category(1),
            name: "Payments".into(),
            by: admin(),
            at: at(),
        })]);
    given::<Settings>([category_added(1, "Payments")])
        .when(rename)
        .then([]);
}

#[test]
fn renaming_or_removing_an_unknown_category_is_rejected() {
    given::<Settings>([])
        .when(SettingsCommand::RenameCategory {
            category_id: category(1),
            name: "x".into(),
            by: admin(),
            at: at(),
        })
        .then_err(SettingsError::UnknownCategory);
    given::<Settings>([])
        .when(SettingsCommand::RemoveCategory {
            category_id: category(1),
            by: admin(),
            at: at(),
        })
        .then_err(SettingsError::UnknownCategory);
}

#[test]
fn removing_a_category_records_it() {
    let state = given::<Settings>([category_added(1, "Billing")])
        .when(SettingsCommand::RemoveCategory {
            category_id: category(1),
            by: admin(),
            at: at(),
        })
        .then([SettingsEvent::CategoryRemoved(CategoryRemoved {
            category_id: category(1),
            by: admin(),
            at: at(),
        })]);
    assert!(!state.uses_categories());
}

#[test]
fn adding_a_template_records_it() {
    given::<Settings>([])
        .when(SettingsCommand::AddTemplate {
            template_id: template_id(1),
            title: "Refund".into(),
            text: "We refunded you.".into(),
            by: admin(),
            at: at(),
        })
        .then([template_added(1)]);
}

#[test]
fn adding_a_template_twice_or_without_text_is_rejected() {
    given::<Settings>([template_added(1)])
        .when(SettingsCommand::AddTemplate {
            template_id: template_id(1),
            title: "Refund".into(),
            text: "again".into(),
            by: admin(),
            at: at(),
        })
        .then_err(SettingsError::TemplateExists);
    given::<Settings>([])
        .when(SettingsCommand::AddTemplate {
            template_id: template_id(1),
            title: "Refund".into(),
            text: String::new(),
            by: admin(),
            at: at(),
        })
        .then_err(
            InvalidInput::Empty {
                field: "template text",
            }
            .into(),
        );
}

#[test]
fn editing_a_template_records_it_once() {
    let edit = |text: &str| SettingsCommand::EditTemplate {
        template_id: template_id(1),
        title: "Refund".into(),
        text: text.into(),
        by: admin(),
        at: at(),
    };
    given::<Settings>([template_added(1)])
        .when(edit("Refund sent."))
        .then([SettingsEvent::TemplateEdited(TemplateSaved {
            template_id: template_id(1),
            by: admin(),
            at: at(),
            content: TemplateContent {
                title: "Refund".into(),
                text: "Refund sent.".into(),
            },
        })]);
    given::<Settings>([template_added(1)])
        .when(edit("We refunded you."))
        .then([]);
    given::<Settings>([])
        .when(edit("x"))
        .then_err(SettingsError::UnknownTemplate);
}

#[test]
fn removing_a_template_records_it_and_an_unknown_one_is_rejected() {
    let remove = SettingsCommand::RemoveTemplate {
        template_id: template_id(1),
        by: admin(),
        at: at(),
    };
    given::<Settings>([template_added(1)])
        .when(remove.clone())
        .then([SettingsEvent::TemplateRemoved(TemplateRemoved {
            template_id: template_id(1),
            by: admin(),
            at: at(),
        })]);
    given::<Settings>([])
        .when(remove)
        .then_err(SettingsError::UnknownTemplate);
}

#[test]
fn setting_the_greeting_records_it_once() {
    let greeting = SettingsCommand::SetGreeting {
        text: Some("Hi! How can we help?".into()),
        by: admin(),
        at: at(),
    };
    let set = SettingsEvent::GreetingSet(GreetingSet {
        text: Some("Hi! How can we help?".into()),
        by: admin(),
        at: at(),
    });
    given::<Settings>([])
        .when(greeting.clone())
        .then([set.clone()]);
    given::<Settings>([set]).when(greeting).then([]);
}

#[test]
fn an_overlong_greeting_is_rejected() {
    given::<Settings>([])
        .when(SettingsCommand::SetGreeting {
            text: Some("x".repeat(4097)),
            by: admin(),
            at: at(),
        })
        .then_err(
            InvalidInput::TooLong {
                field: "greeting",
                max: 4096,
                actual: 4097,
            }
            .into(),
        );
}

#[test]
fn the_reopen_window_defaults_to_seven_days_and_can_be_changed() {
    assert_eq!(Settings::default().reopen_window(), TimeDelta::days(7));
    let state = given::<Settings>([])
        .when(SettingsCommand::SetReopenWindow {
            window: TimeDelta::hours(48),
            by: admin(),
            at: at(),
        })
        .then([SettingsEvent::ReopenWindowSet(ReopenWindowSet {
            seconds: 48 * 3600,
            by: admin(),
            at: at(),
        })]);
    assert_eq!(state.reopen_window(), TimeDelta::hours(48));
    given::<Settings>([])
        .when(SettingsCommand::SetReopenWindow {
            window: TimeDelta::days(7),
            by: admin(),
            at: at(),
        })
        .then([]);
}

#[test]
fn a_negative_or_overlong_reopen_window_is_rejected() {
    for window in [TimeDelta::seconds(-1), TimeDelta::days(31)] {
        given::<Settings>([])
            .when(SettingsCommand::SetReopenWindow {
                window,
                by: admin(),
                at: at(),
            })
            .then_err(
                InvalidInput::OutOfRange {
                    field: "reopen window in hours",
                    min: 0,
                    max: 720,
                }
                .into(),
            );
    }
}

#[test]
fn the_two_factor_policy_is_optional_until_an_admin_requires_it() {
    assert_eq!(Settings::default().two_factor, TwoFactorPolicy::Optional);
    assert!(!TwoFactorPolicy::Optional.requires(crate::agent::Role::Admin));
    assert!(TwoFactorPolicy::Admins.requires(crate::agent::Role::Admin));
    assert!(!TwoFactorPolicy::Admins.requires(crate::agent::Role::Agent));
    assert!(TwoFactorPolicy::Everyone.requires(crate::agent::Role::Auditor));
    let state = given::<Settings>([])
        .when(SettingsCommand::SetTwoFactorPolicy {
            policy: TwoFactorPolicy::Everyone,
            by: admin(),
            at: at(),
        })
        .then([SettingsEvent::TwoFactorPolicySet(TwoFactorPolicySet {
            policy: TwoFactorPolicy::Everyone,
            by: admin(),
            at: at(),
        })]);
    assert_eq!(state.two_factor, TwoFactorPolicy::Everyone);
    given::<Settings>([])
        .when(SettingsCommand::SetTwoFactorPolicy {
            policy: TwoFactorPolicy::Optional,
            by: admin(),
            at: at(),
        })
        .then([]);
}

fn set_text(key: BotText, language: &str, text: Option<&str>) -> SettingsCommand {
    SettingsCommand::SetBotText {
        key,
        language: language.into(),
        text: text.map(Into::into),
        by: admin(),
        at: at(),
    }
}

fn text_set(key: BotText, language: &str, text: Option<&str>) -> SettingsEvent {
    SettingsEvent::BotTextSet(BotTextSet {
        key,
        language: language.into(),
        text: text.map(Into::into),
        by: admin(),
        at: at(),
    })
}

#[test]
fn bot_texts_follow_the_customers_language_and_fall_back_to_english() {
    let settings = Settings::default();
    let ru = settings.bot_text(BotText::Help, Some("ru-RU")).to_owned();
    assert_eq!(Some(ru.as_str()), BotText::Help.built_in("ru"));
    let de = settings.bot_text(BotText::Help, Some("de"));
    assert_eq!(Some(de), BotText::Help.built_in("en"));
    assert_eq!(
        Some(settings.bot_text(BotText::Help, None)),
        BotText::Help.built_in("en")
    );
    // An admin's English text reaches languages without a text of their own, not Russian.
    let settings = given::<Settings>([])
        .when(set_text(BotText::Help, "en", Some("Ask us anything.")))
        .then([text_set(BotText::Help, "en", Some("Ask us anything."))]);
    assert_eq!(
        settings.bot_text(BotText::Help, Some("de")),
        "Ask us anything."
    );
    assert_eq!(
        Some(settings.bot_text(BotText::Help, Some("ru"))),
        BotText::Help.built_in("ru")
    );
    // A language of the admins' own.
    let settings = settings.evolve(&text_set(BotText::Help, "de", Some("Fragen Sie uns.")));
    assert_eq!(
        settings.bot_text(BotText::Help, Some("de-AT")),
        "Fragen Sie uns."
    );
    assert_eq!(settings.text_languages(), ["en", "ru", "de"]);
    // Restoring the built-in text.
    let settings = given::<Settings>([text_set(BotText::Help, "de", Some("Fragen Sie uns."))])
        .when(set_text(BotText::Help, "de", None))
        .then([text_set(BotText::Help, "de", None)]);
    assert_eq!(
        Some(settings.bot_text(BotText::Help, Some("de"))),
        BotText::Help.built_in("en")
    );
}

#[test]
fn the_english_greeting_is_the_greeting_setting() {
    // Setting it as a bot text records the greeting event old readers know.
    let state = given::<Settings>([])
        .when(set_text(BotText::Greeting, "en", Some("Welcome!")))
        .then([SettingsEvent::GreetingSet(GreetingSet {
            text: Some("Welcome!".into()),
            by: admin(),
            at: at(),
        })]);
    assert_eq!(state.greeting.as_deref(), Some("Welcome!"));
    assert_eq!(state.bot_text(BotText::Greeting, Some("en-GB")), "Welcome!");
    assert_eq!(state.bot_text(BotText::Greeting, Some("fr")), "Welcome!");
    assert_eq!(
        Some(state.bot_text(BotText::Greeting, Some("ru"))),
        BotText::Greeting.built_in("ru")
    );
    // Unchanged: nothing recorded.
    given::<Settings>([SettingsEvent::GreetingSet(GreetingSet {
        text: Some("Welcome!".into()),
        by: admin(),
        at: at(),
    })])
    .when(set_text(BotText::Greeting, "en", Some("Welcome!")))
    .then([]);
}

#[test]
fn bot_texts_are_bounded() {
    given::<Settings>([])
        .when(set_text(
            BotText::ButtonExpired,
            "ru",
            Some(&"x".repeat(201)),
        ))
        .then_err(
            InvalidInput::TooLong {
                field: "bot text",
                max: 200,
                actual: 201,
            }
            .into(),
        );
    given::<Settings>([])
        .when(set_text(BotText::Help, "ru", Some("  ")))
        .then_err(InvalidInput::Empty { field: "bot text" }.into());
    for language in ["", "e", "EN", "en-US", "engl", "р\u{0443}"] {
        given::<Settings>([])
            .when(set_text(BotText::Help, language, Some("Hi")))
            .then_err(
                InvalidInput::Malformed {
                    field: "language",
                    why: "two or three lower-case letters (ISO 639-1, such as \"en\" or \"ru\")",
                }
                .into(),
            );
    }
    let many: Vec<SettingsEvent> = (0..texts::MAX_TEXT_LANGUAGES)
        .map(|n| {
            let n = u8::try_from(n).unwrap_or(0);
            let language = format!("{}{}", char::from(b'a' + n / 26), char::from(b'a' + n % 26));
            text_set(BotText::Help, &language, Some("Hi"))
        })
        .collect();
    given::<Settings>(many.clone())
        .when(set_text(BotText::Help, "zz", Some("Hi")))
        .then_err(
            InvalidInput::TooMany {
                field: "languages",
                max: texts::MAX_TEXT_LANGUAGES,
                actual: texts::MAX_TEXT_LANGUAGES + 1,
            }
            .into(),
        );
    // A language already there takes more texts.
    given::<Settings>(many)
        .when(set_text(BotText::Greeting, "aa", Some("Hi")))
        .then([text_set(BotText::Greeting, "aa", Some("Hi"))]);
}
