//! One sample of every event the code writes.

use chrono::{DateTime, TimeZone, Utc};
use domain::agent::{
    AgentEvent, AgentInvited, AgentPersonal, AgentStep, CategoriesAssigned, RecoveryCodeUsed, Role,
    RoleChanged, SecondFactorThrottled,
};
use domain::audit::{
    ApiTokenCreated, ApiTokenRevoked, AuditEvent, ExportMade, ReplayRun, SignInRefused, SignedIn,
    SignedOut,
};
use domain::broadcast::{
    Audience, AudienceFrozen, BroadcastContent, BroadcastDrafted, BroadcastEdited, BroadcastEnded,
    BroadcastEvent, BroadcastScheduled, BroadcastStarted, BroadcastStep, ButtonAction,
    ButtonPressed, Excluded, InlineButton, Outcome, OutcomesRecorded, PreviewFailed,
    PreviewRequested, PreviewSent, RecipientOutcome, SkipReason,
};
use domain::content::{
    ForwardOrigin, MediaKind, MessageBody, MessageContent, MessageKind, OutgoingMedia,
    ReplyContent, TelegramFile, TelegramMessageId,
};
use domain::customer::{
    BanReason, CategoryChosen, CustomerBanned, CustomerEvent, CustomerForgotten, CustomerProfile,
    CustomerRegistered, CustomerUnbanned, MessageRefused, Noted, ProfileUpdated,
    StartPayloadReceived, TicketNoted, TicketStepNoted,
};
use domain::settings::{
    BotText, BotTextSet, CategoryNamed, CategoryRemoved, GreetingSet, ReopenWindowSet,
    SettingsEvent, TemplateContent, TemplateRemoved, TemplateSaved, TwoFactorPolicy,
    TwoFactorPolicySet,
};
use domain::ticket::{
    Actor, AgentReplied, CategoryChanged, Channel, CustomerMessageEdited, CustomerMessagePosted,
    LifecycleStep, NoteAdded, NoteContent, Priority, PriorityChanged, RatingComment,
    ReplyDelivered, ReplyDeliveryFailed, ReplyDeliveryRetryRequested, StatusChanged, TagChanged,
    TicketAssigned, TicketEvent, TicketOpened, TicketRated, TicketStatus, TicketUnassigned,
};
use domain::{
    AgentId, AnyEvent, BroadcastId, CategoryId, CustomerId, MessageId, TemplateId, TicketId,
};
use uuid::Uuid;

pub(crate) fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
        .single()
        .expect("a valid date")
}
fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(0x0195_5a00_0000_7000_8000_0000_0000_0000 + n)
}
fn agent() -> AgentId {
    AgentId(uuid(1))
}
fn category() -> CategoryId {
    CategoryId(uuid(2))
}
fn ticket() -> TicketId {
    TicketId(uuid(3))
}
pub(crate) fn message() -> MessageId {
    MessageId(uuid(4))
}
fn customer() -> CustomerId {
    CustomerId(123_456_789)
}
fn profile() -> CustomerProfile {
    CustomerProfile {
        first_name: "Ann".into(),
        last_name: Some("Keller".into()),
        username: Some("ann_k".into()),
        language_code: Some("de".into()),
    }
}
fn photo_content() -> MessageContent {
    MessageContent {
        body: MessageBody::Photo {
            file: TelegramFile {
                file_id: "AgACAgIAAxkBAAIB".into(),
                file_unique_id: "AQADb7kxG".into(),
            },
        },
        caption: Some("the error screen".into()),
        forwarded_from: Some(ForwardOrigin::HiddenUser {
            name: "A colleague".into(),
        }),
        forwarded_at: None,
        media: None,
        media_group_id: None,
        entities: Vec::new(),
    }
}
fn broadcast_content() -> BroadcastContent {
    BroadcastContent {
        format: domain::broadcast::TextFormat::Plain,
        unsubscribe_button: true,
        text: Some("Spring sale: 20% off".into()),
        media: Some(OutgoingMedia {
            kind: MediaKind::Photo,
            file_id: "AgACAgIAAxkBAAIC".into(),
        }),
        buttons: vec![vec![
            InlineButton {
                label: "Shop".into(),
                action: ButtonAction::Url {
                    url: "https://example.com/sale".into(),
                },
            },
            InlineButton {
                label: "Not interested".into(),
                action: ButtonAction::Callback {
                    data: "optout".into(),
                },
            },
        ]],
    }
}

/// One sample of every event the code writes.
pub(crate) fn samples() -> Vec<AnyEvent> {
    let by = Actor::Agent { agent_id: agent() };
    let ticket_events = [
        TicketEvent::Opened(TicketOpened {
            ticket_id: ticket(),
            customer: customer(),
            category: Some(category()),
            channel: Channel::Telegram,
            at: at(),
        }),
        TicketEvent::CustomerMessagePosted(CustomerMessagePosted {
            message_id: message(),
            telegram_message_id: TelegramMessageId(17),
            reply_to: Some(TelegramMessageId(15)),
            kind: MessageKind::Photo,
            at: at(),
            content: photo_content(),
        }),
        TicketEvent::CustomerMessageEdited(CustomerMessageEdited {
            message_id: message(),
            telegram_message_id: TelegramMessageId(17),
            kind: MessageKind::Text,
            at: at(),
            content: MessageContent::text("sorry, wrong photo"),
        }),
        TicketEvent::AgentReplied(AgentReplied {
            reply_to: None,
            message_id: MessageId(uuid(5)),
            agent: agent(),
            template: Some(TemplateId(uuid(6))),
            at: at(),
            content: ReplyContent {
                text: Some("Here is the manual.".into()),
                media: vec![OutgoingMedia {
                    kind: MediaKind::Document,
                    file_id: "BQACAgIAAxkBAAID".into(),
                }],
            },
        }),
        TicketEvent::NoteAdded(NoteAdded {
            note_id: MessageId(uuid(7)),
            agent: agent(),
            at: at(),
            content: NoteContent {
                text: "Known bug, see #12".into(),
            },
        }),
        TicketEvent::Assigned(TicketAssigned {
            agent: agent(),
            by: agent(),
            at: at(),
        }),
        TicketEvent::Unassigned(TicketUnassigned {
            agent: agent(),
            by: agent(),
            at: at(),
        }),
        TicketEvent::StatusChanged(StatusChanged {
            from: TicketStatus::New,
            to: TicketStatus::Pending,
            by,
            at: at(),
        }),
        TicketEvent::Resolved(LifecycleStep { by, at: at() }),
        TicketEvent::Reopened(LifecycleStep {
            by: Actor::Customer,
            at: at(),
        }),
        TicketEvent::Closed(LifecycleStep {
            by: Actor::System,
            at: at(),
        }),
        TicketEvent::PriorityChanged(PriorityChanged {
            priority: Priority::Urgent,
            by: agent(),
            at: at(),
        }),
        TicketEvent::CategoryChanged(CategoryChanged {
            category: None,
            by: agent(),
            at: at(),
        }),
        TicketEvent::TagAdded(TagChanged {
            tag: "billing".into(),
            by: agent(),
            at: at(),
        }),
        TicketEvent::TagRemoved(TagChanged {
            tag: "billing".into(),
            by: agent(),
            at: at(),
        }),
        TicketEvent::ReplyDelivered(ReplyDelivered {
            message_id: MessageId(uuid(5)),
            telegram_message_id: TelegramMessageId(18),
            at: at(),
        }),
        TicketEvent::ReplyDeliveryFailed(ReplyDeliveryFailed {
            message_id: MessageId(uuid(5)),
            reason: "Forbidden: bot was blocked by the user".into(),
            retryable: false,
            at: at(),
        }),
        TicketEvent::ReplyDeliveryRetryRequested(ReplyDeliveryRetryRequested {
            message_id: MessageId(uuid(5)),
            by: agent(),
            at: at(),
        }),
        TicketEvent::Rated(TicketRated {
            rating: 5,
            at: at(),
            content: RatingComment {
                comment: Some("Fast and friendly".into()),
            },
        }),
    ];
    let noted = || Noted { at: at() };
    let ticket_noted = || TicketNoted {
        ticket_id: ticket(),
        category: Some(category()),
        at: at(),
    };
    let ticket_step = || TicketStepNoted {
        ticket_id: ticket(),
        at: at(),
    };
    let customer_events = [
        CustomerEvent::Registered(CustomerRegistered {
            customer_id: customer(),
            at: at(),
            personal: profile(),
        }),
        CustomerEvent::ProfileUpdated(ProfileUpdated {
            at: at(),
            personal: CustomerProfile {
                username: None,
                ..profile()
            },
        }),
        CustomerEvent::BlockedBot(noted()),
        CustomerEvent::UnblockedBot(noted()),
        CustomerEvent::Banned(CustomerBanned {
            by: agent(),
            at: at(),
            content: BanReason {
                reason: Some("spam".into()),
            },
        }),
        CustomerEvent::Unbanned(CustomerUnbanned {
            by: agent(),
            at: at(),
        }),
        CustomerEvent::OptedOutOfBroadcasts(noted()),
        CustomerEvent::OptedIntoBroadcasts(noted()),
        CustomerEvent::TicketOpened(ticket_noted()),
        CustomerEvent::TicketResolved(ticket_step()),
        CustomerEvent::TicketReopened(ticket_noted()),
        CustomerEvent::TicketClosed(ticket_step()),
        CustomerEvent::TicketRecategorized(ticket_noted()),
        CustomerEvent::CategoryChosen(CategoryChosen {
            category: Some(CategoryId(uuid(3))),
            at: at(),
        }),
        CustomerEvent::MessageRefused(MessageRefused {
            message_id: MessageId(uuid(9)),
            telegram_message_id: TelegramMessageId(77),
            reply_to: None,
            at: at(),
            content: MessageContent::text("let me in"),
        }),
        CustomerEvent::StartPayloadReceived(StartPayloadReceived {
            payload: "ref-42".into(),
            at: at(),
        }),
        CustomerEvent::Forgotten(CustomerForgotten {
            at: at(),
            tickets: vec![TicketId(uuid(3))],
        }),
    ];
    let agent_step = || AgentStep {
        by: agent(),
        at: at(),
    };
    let agent_events = [
        AgentEvent::Invited(AgentInvited {
            agent_id: AgentId(uuid(8)),
            role: Role::Agent,
            by: Some(agent()),
            at: at(),
            personal: AgentPersonal {
                email: "bob@example.com".into(),
                name: "Bob".into(),
            },
        }),
        AgentEvent::RoleChanged(RoleChanged {
            role: Role::Auditor,
            by: agent(),
            at: at(),
        }),
        AgentEvent::CategoriesAssigned(CategoriesAssigned {
            categories: vec![category()],
            by: agent(),
            at: at(),
        }),
        AgentEvent::Deactivated(agent_step()),
        AgentEvent::Reactivated(agent_step()),
        AgentEvent::PasswordChanged(agent_step()),
        AgentEvent::SecondFactorEnrolled(agent_step()),
        AgentEvent::SecondFactorDisabled(agent_step()),
        AgentEvent::SecondFactorReset(agent_step()),
        AgentEvent::RecoveryCodeUsed(RecoveryCodeUsed {
            remaining: 9,
            at: at(),
        }),
        AgentEvent::SecondFactorThrottled(SecondFactorThrottled { at: at() }),
    ];
    let broadcast_step = || BroadcastStep {
        by: agent(),
        at: at(),
    };
    let broadcast_events = [
        BroadcastEvent::Drafted(BroadcastDrafted {
            broadcast_id: BroadcastId(uuid(9)),
            by: agent(),
            at: at(),
            audience: Audience::ByLanguage {
                language: "de".into(),
            },
            content: broadcast_content(),
        }),
        BroadcastEvent::Edited(BroadcastEdited {
            by: agent(),
            at: at(),
            audience: Audience::Explicit {
                customers: vec![customer(), CustomerId(987_654_321)],
            },
            content: broadcast_content(),
        }),
        BroadcastEvent::Scheduled(BroadcastScheduled {
            send_at: at() + chrono::TimeDelta::hours(2),
            by: agent(),
            at: at(),
        }),
        BroadcastEvent::Unscheduled(BroadcastEnded {
            by: Some(agent()),
            at: at(),
        }),
        BroadcastEvent::Started(BroadcastStarted {
            audience_size: 2,
            by: None,
            at: at(),
            excluded: 1,
            frozen: true,
        }),
        BroadcastEvent::AudienceFrozen(AudienceFrozen {
            recipients: vec![customer(), CustomerId(987_654_321)],
            excluded: vec![Excluded {
                customer: CustomerId(555),
                reason: SkipReason::UnknownCustomer,
            }],
        }),
        BroadcastEvent::OutcomesRecorded(OutcomesRecorded {
            at: at(),
            outcomes: vec![
                RecipientOutcome {
                    customer: customer(),
                    outcome: Outcome::Delivered {
                        telegram_message_id: TelegramMessageId(19),
                    },
                },
                RecipientOutcome {
                    customer: CustomerId(987_654_321),
                    outcome: Outcome::Failed {
                        reason: "Too Many Requests: retry after 5".into(),
                        retryable: true,
                    },
                },
                RecipientOutcome {
                    customer: CustomerId(555),
                    outcome: Outcome::Skipped {
                        reason: SkipReason::OptedOut,
                    },
                },
            ],
        }),
        BroadcastEvent::Paused(broadcast_step()),
        BroadcastEvent::Resumed(broadcast_step()),
        BroadcastEvent::Completed(BroadcastEnded { by: None, at: at() }),
        BroadcastEvent::Cancelled(BroadcastEnded {
            by: Some(agent()),
            at: at(),
        }),
        BroadcastEvent::ButtonPressed(ButtonPressed {
            customer: CustomerId(1_234_567),
            index: 1,
            label: "Remind me".into(),
            data: "remind".into(),
            at: at(),
        }),
        BroadcastEvent::PreviewRequested(PreviewRequested {
            preview_id: uuid(12),
            chat: 7_654_321,
            by: agent(),
            at: at(),
            content: broadcast_content(),
        }),
        BroadcastEvent::PreviewSent(PreviewSent {
            preview_id: uuid(12),
            telegram_message_id: TelegramMessageId(88),
            at: at(),
        }),
        BroadcastEvent::PreviewFailed(PreviewFailed {
            preview_id: uuid(12),
            reason: "Bad Request: chat not found".into(),
            at: at(),
        }),
    ];
    let settings_events = [
        SettingsEvent::CategoryAdded(CategoryNamed {
            category_id: category(),
            name: "Billing".into(),
            by: agent(),
            at: at(),
        }),
        SettingsEvent::CategoryRenamed(CategoryNamed {
            category_id: category(),
            name: "Payments".into(),
            by: agent(),
            at: at(),
        }),
        SettingsEvent::CategoryRemoved(CategoryRemoved {
            category_id: category(),
            by: agent(),
            at: at(),
        }),
        SettingsEvent::TemplateAdded(TemplateSaved {
            template_id: TemplateId(uuid(6)),
            by: agent(),
            at: at(),
            content: TemplateContent {
                title: "Refund".into(),
                text: "We have refunded your order.".into(),
            },
        }),
        SettingsEvent::TemplateEdited(TemplateSaved {
            template_id: TemplateId(uuid(6)),
            by: agent(),
            at: at(),
            content: TemplateContent {
                title: "Refund".into(),
                text: "Your refund is on its way.".into(),
            },
        }),
        SettingsEvent::TemplateRemoved(TemplateRemoved {
            template_id: TemplateId(uuid(6)),
            by: agent(),
            at: at(),
        }),
        SettingsEvent::GreetingSet(GreetingSet {
            text: Some("Hi! How can we help?".into()),
            by: agent(),
            at: at(),
        }),
        SettingsEvent::ReopenWindowSet(ReopenWindowSet {
            seconds: 172_800,
            by: agent(),
            at: at(),
        }),
        SettingsEvent::TwoFactorPolicySet(TwoFactorPolicySet {
            policy: TwoFactorPolicy::Admins,
            by: agent(),
            at: at(),
        }),
        SettingsEvent::BotTextSet(BotTextSet {
            key: BotText::Greeting,
            language: "ru".into(),
            text: Some("Здравствуйте! Чем можем помочь?".into()),
            by: agent(),
            at: at(),
        }),
    ];
    let audit_events = [
        AuditEvent::SignedIn(SignedIn {
            agent: agent(),
            address: Some("203.0.113.7".into()),
            second_factor: true,
            at: at(),
        }),
        AuditEvent::SignInRefused(SignInRefused {
            agent: None,
            address: Some("2001:db8::1".into()),
            reason: "wrong_credentials".into(),
            attempts: 4,
            since: at(),
            at: at(),
        }),
        AuditEvent::SignedOut(SignedOut {
            agent: agent(),
            everywhere: false,
            at: at(),
        }),
        AuditEvent::ApiTokenCreated(ApiTokenCreated {
            token_id: uuid(40),
            name: "CRM sync".into(),
            scopes: vec!["tickets:read".into(), "events:read".into()],
            by: agent(),
            at: at(),
        }),
        AuditEvent::ApiTokenRevoked(ApiTokenRevoked {
            token_id: uuid(40),
            by: agent(),
            at: at(),
        }),
        AuditEvent::ReplayRun(ReplayRun {
            projections: vec!["tickets".into(), "messages".into()],
            verify: true,
            outcome: "different".into(),
            differing_rows: 2,
            started_at: at(),
            at: at(),
        }),
        AuditEvent::ExportMade(ExportMade {
            from: Some("0000000000000001000000000000000a".into()),
            to: None,
            stream_prefix: Some("ticket-".into()),
            events: 1_000,
            at: at(),
        }),
    ];
    ticket_events
        .into_iter()
        .map(AnyEvent::from)
        .chain(customer_events.into_iter().map(AnyEvent::from))
        .chain(agent_events.into_iter().map(AnyEvent::from))
        .chain(broadcast_events.into_iter().map(AnyEvent::from))
        .chain(settings_events.into_iter().map(AnyEvent::from))
        .chain(audit_events.into_iter().map(AnyEvent::from))
        .collect()
}
