//! The first day of the simulated desk: the first admin, the settings (reopen window,
//! categories, quick-reply templates, greeting) and the team (invitations, roles, categories,
//! passwords, a few deactivations). What it leaves behind is the [`World`] that ticket writers
//! work in.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use domain::agent::{Agent, AgentCommand, Role};
use domain::settings::{BotText, Settings, SettingsCommand, TwoFactorPolicy};
use domain::{AgentId, CategoryId, StreamId, TemplateId};
use eventlog::{Actor, ActorKind};

use super::error::GenerateError;
use super::outbox::{Outbox, Stamp, Tracked, decide};
use super::rng::Rng;
use super::text::{FIRST_NAMES, LAST_NAMES};

/// What ticket and broadcast writers need to know about the desk.
#[derive(Debug, Clone)]
pub(super) struct World {
    /// The first simulated moment.
    pub(super) start: DateTime<Utc>,
    /// "Now": nothing happens after it.
    pub(super) end: DateTime<Utc>,
    /// When the team is in place and tickets may start.
    pub(super) open_from: DateTime<Utc>,
    pub(super) categories: Vec<CategoryId>,
    pub(super) templates: Vec<(TemplateId, String)>,
    /// Active agents and admins who work tickets.
    pub(super) staff: Vec<AgentId>,
    /// The staff working each category.
    pub(super) by_category: BTreeMap<CategoryId, Vec<AgentId>>,
    /// Active admins.
    pub(super) leads: Vec<AgentId>,
    pub(super) reopen_window: TimeDelta,
    /// Agents invited (active or not).
    pub(super) agents: u64,
}

impl World {
    /// Someone who may work a ticket of `category`.
    pub(super) fn agent_for(&self, rng: &mut Rng, category: Option<CategoryId>) -> AgentId {
        let pool = category
            .and_then(|c| self.by_category.get(&c))
            .filter(|pool| !pool.is_empty())
            .unwrap_or(&self.staff);
        rng.choose(pool).copied().unwrap_or_else(|| self.lead(rng))
    }

    /// An admin.
    pub(super) fn lead(&self, rng: &mut Rng) -> AgentId {
        rng.choose(&self.leads)
            .or_else(|| self.staff.first())
            .copied()
            .unwrap_or(AgentId(uuid::Uuid::nil()))
    }
}

const CATEGORIES: &[&str] = &[
    "Orders",
    "Payments",
    "Delivery",
    "Technical issue",
    "Account",
    "Returns",
];

const TEMPLATES: &[(&str, &str)] = &[
    (
        "Greeting",
        "Hi! Thanks for contacting us, I'm looking into it right now.",
    ),
    (
        "Need order number",
        "Could you send me your order number, please?",
    ),
    (
        "Refund issued",
        "Your refund has been issued; it takes 3–5 business days to appear.",
    ),
    (
        "Shipping delay",
        "We're sorry for the delay: your parcel is on its way and should arrive within 2 days.",
    ),
    (
        "Screenshot please",
        "Could you send a screenshot of what you see?",
    ),
    (
        "Escalated",
        "I've passed this on to our specialists; we'll get back to you within 24 hours.",
    ),
    (
        "Reset password",
        "You can reset your password at https://example.com/reset.",
    ),
    (
        "Anything else",
        "Is there anything else I can help you with?",
    ),
    ("Closing", "I'm glad we could help! Have a great day."),
    (
        "Return label",
        "Your return label is attached; drop the parcel at any post office.",
    ),
];

fn person(at: DateTime<Utc>, actor: &Actor, rng: &mut Rng) -> Stamp {
    Stamp {
        at,
        actor: actor.clone(),
        correlation: rng.uuid_v7(at),
        causation: None,
    }
}

/// The owner's account in the panel's audit trail: a sign-in, refusals from another address,
/// a sign-out, an API token created and revoked; refusals that named no account; a replay and
/// an export run from the command line.
fn audit_trail(
    rng: &mut Rng,
    outbox: &mut Outbox,
    admin: AgentId,
    tick: &mut impl FnMut(&mut Rng, u64, u64) -> DateTime<Utc>,
) -> Result<(), GenerateError> {
    use domain::AuditStream;
    use domain::audit::{
        ApiTokenCreated, ApiTokenRevoked, AuditEvent, ExportMade, ReplayRun, SignInRefused,
        SignedIn, SignedOut,
    };
    let signed_in = tick(rng, 60, 600);
    let refused_since = tick(rng, 60, 600);
    let refused = tick(rng, 1, 60);
    let created = tick(rng, 60, 600);
    let revoked = tick(rng, 600, 3_600);
    let signed_out = tick(rng, 60, 600);
    let token_id = rng.uuid_v7(created);
    let own = vec![
        AuditEvent::SignedIn(SignedIn {
            agent: admin,
            address: Some("203.0.113.7".to_owned()),
            second_factor: true,
            at: signed_in,
        }),
        AuditEvent::SignInRefused(SignInRefused {
            agent: Some(admin),
            address: Some("198.51.100.23".to_owned()),
            reason: "wrong_credentials".to_owned(),
            attempts: 3,
            since: refused_since,
            at: refused,
        }),
        AuditEvent::ApiTokenCreated(ApiTokenCreated {
            token_id,
            name: "CRM sync".to_owned(),
            scopes: vec!["tickets:read".to_owned(), "events:read".to_owned()],
            by: admin,
            at: created,
        }),
        AuditEvent::ApiTokenRevoked(ApiTokenRevoked {
            token_id,
            by: admin,
            at: revoked,
        }),
        AuditEvent::SignedOut(SignedOut {
            agent: admin,
            everywhere: false,
            at: signed_out,
        }),
    ];
    let anonymous_at = tick(rng, 60, 600);
    let anonymous = vec![AuditEvent::SignInRefused(SignInRefused {
        agent: None,
        address: Some("192.0.2.44".to_owned()),
        reason: "wrong_credentials".to_owned(),
        attempts: 1,
        since: anonymous_at,
        at: anonymous_at,
    })];
    let replay_started = tick(rng, 600, 3_600);
    let replay_ended = tick(rng, 10, 60);
    let exported = tick(rng, 60, 600);
    let operations = vec![
        AuditEvent::ReplayRun(ReplayRun {
            projections: vec!["tickets".to_owned(), "messages".to_owned()],
            verify: true,
            outcome: "equal".to_owned(),
            differing_rows: 0,
            started_at: replay_started,
            at: replay_ended,
        }),
        AuditEvent::ExportMade(ExportMade {
            from: None,
            to: None,
            stream_prefix: Some("ticket-".to_owned()),
            events: 0,
            at: exported,
        }),
    ];
    for (stream, events, actor, at) in [
        (
            AuditStream::Agent(admin),
            own,
            agent_actor(admin),
            signed_in,
        ),
        (
            AuditStream::Anonymous,
            anonymous,
            Actor::system("auth"),
            anonymous_at,
        ),
        (
            AuditStream::Operations,
            operations,
            Actor::system("cli"),
            replay_started,
        ),
    ] {
        outbox.push(
            vec![super::outbox::Write {
                stream: StreamId::Audit(stream),
                before: None,
                events: events.into_iter().map(Into::into).collect(),
            }],
            &person(at, &actor, rng),
        )?;
    }
    Ok(())
}

fn agent_actor(id: AgentId) -> Actor {
    Actor::new(ActorKind::Agent, id.to_string())
}

/// Writes the first day and answers the world it built.
pub(super) fn setup(
    rng: &mut Rng,
    outbox: &mut Outbox,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    team_size: usize,
) -> Result<World, GenerateError> {
    let mut t = start;
    let mut tick = |rng: &mut Rng, lo, hi| {
        t += rng.secs(lo, hi);
        t
    };

    // The first admin, created by `ledgerdesk admin create`.
    let admin = AgentId(rng.uuid_v7(start));
    let admin_actor = agent_actor(admin);
    let mut agents: Vec<(Tracked<Agent>, Role)> = Vec::new();
    let mut first = Tracked::<Agent>::new(admin.stream());
    let at = tick(rng, 0, 60);
    decide(
        outbox,
        &mut first,
        &AgentCommand::Invite {
            agent_id: admin,
            email: "owner@desk.example".to_owned(),
            name: "Olivia Owner".to_owned(),
            role: Role::Admin,
            by: None,
            at,
        },
        &person(at, &Actor::system("setup"), rng),
    )?;
    let at = tick(rng, 30, 300);
    decide(
        outbox,
        &mut first,
        &AgentCommand::RecordPasswordChange { by: admin, at },
        &person(at, &admin_actor, rng),
    )?;
    // The owner adds an authenticator app, once signs in with a recovery code, sees someone
    // who learned the password guess codes, turns the app off and enrols a new one.
    let owner_second_factor = [
        (600, 3_600, AgentCommand::RecordSecondFactorEnrolled { at }),
        (
            3_600,
            86_400,
            AgentCommand::RecordRecoveryCodeUsed { remaining: 9, at },
        ),
        (
            3_600,
            86_400,
            AgentCommand::RecordSecondFactorThrottled { at },
        ),
        (
            600,
            3_600,
            AgentCommand::RecordSecondFactorRemoved { by: admin, at },
        ),
        (60, 600, AgentCommand::RecordSecondFactorEnrolled { at }),
    ];
    for (lo, hi, mut command) in owner_second_factor {
        let when = tick(rng, lo, hi);
        match &mut command {
            AgentCommand::RecordSecondFactorEnrolled { at }
            | AgentCommand::RecordRecoveryCodeUsed { at, .. }
            | AgentCommand::RecordSecondFactorThrottled { at }
            | AgentCommand::RecordSecondFactorRemoved { at, .. } => *at = when,
            _ => {}
        }
        decide(
            outbox,
            &mut first,
            &command,
            &person(when, &admin_actor, rng),
        )?;
    }
    agents.push((first, Role::Admin));
    audit_trail(rng, outbox, admin, &mut tick)?;

    // Settings.
    let mut settings = Tracked::<Settings>::new(StreamId::Settings);
    let mut configure = |rng: &mut Rng, t: DateTime<Utc>, command: SettingsCommand| {
        decide(
            outbox,
            &mut settings,
            &command,
            &person(t, &admin_actor, rng),
        )
        .map(|_| ())
    };
    let at = tick(rng, 60, 600);
    configure(
        rng,
        at,
        SettingsCommand::SetReopenWindow {
            window: TimeDelta::days(3),
            by: admin,
            at,
        },
    )?;
    let mut categories = Vec::new();
    for name in CATEGORIES {
        let at = tick(rng, 10, 120);
        let category_id = CategoryId(rng.uuid_v7(at));
        configure(
            rng,
            at,
            SettingsCommand::AddCategory {
                category_id,
                name: (*name).to_owned(),
                by: admin,
                at,
            },
        )?;
        categories.push(category_id);
    }
    if let Some(technical) = categories.get(3).copied() {
        let at = tick(rng, 60, 600);
        configure(
            rng,
            at,
            SettingsCommand::RenameCategory {
                category_id: technical,
                name: "Technical support".to_owned(),
                by: admin,
                at,
            },
        )?;
    }
    // "Returns" turns out to be "Orders" after all.
    if let Some(returns) = categories.pop() {
        let at = tick(rng, 600, 3_600);
        configure(
            rng,
            at,
            SettingsCommand::RemoveCategory {
                category_id: returns,
                by: admin,
                at,
            },
        )?;
    }
    let mut templates = Vec::new();
    for (title, text) in TEMPLATES {
        let at = tick(rng, 10, 120);
        let template_id = TemplateId(rng.uuid_v7(at));
        configure(
            rng,
            at,
            SettingsCommand::AddTemplate {
                template_id,
                title: (*title).to_owned(),
                text: (*text).to_owned(),
                by: admin,
                at,
            },
        )?;
        templates.push((template_id, (*text).to_owned()));
    }
    if let Some((template_id, text)) = templates.get_mut(1) {
        let at = tick(rng, 60, 600);
        *text = "Could you send me your order number (it starts with #), please?".to_owned();
        configure(
            rng,
            at,
            SettingsCommand::EditTemplate {
                template_id: *template_id,
                title: "Need order number".to_owned(),
                text: text.clone(),
                by: admin,
                at,
            },
        )?;
    }
    if let Some((template_id, _)) = templates.pop() {
        let at = tick(rng, 60, 600);
        configure(
            rng,
            at,
            SettingsCommand::RemoveTemplate {
                template_id,
                by: admin,
                at,
            },
        )?;
    }
    // Second factors were required of admins for a while. Not any more, so that whoever signs
    // in to a generated history (benchmarks, demos) is not asked to enrol one.
    for policy in [TwoFactorPolicy::Admins, TwoFactorPolicy::Optional] {
        let at = tick(rng, 60, 600);
        configure(
            rng,
            at,
            SettingsCommand::SetTwoFactorPolicy {
                policy,
                by: admin,
                at,
            },
        )?;
    }
    let at = tick(rng, 60, 600);
    configure(
        rng,
        at,
        SettingsCommand::SetGreeting {
            text: Some("Hi! 👋 Tell us what happened and an agent will answer shortly.".to_owned()),
            by: admin,
            at,
        },
    )?;
    let at = tick(rng, 60, 600);
    configure(
        rng,
        at,
        SettingsCommand::SetBotText {
            key: BotText::Greeting,
            language: "ru".to_owned(),
            text: Some(
                "Здравствуйте! 👋 Расскажите, что случилось, и мы скоро ответим.".to_owned(),
            ),
            by: admin,
            at,
        },
    )?;

    // The team.
    for n in 1..team_size.max(2) {
        let at = tick(rng, 60, 1_200);
        let agent_id = AgentId(rng.uuid_v7(at));
        let role = match n {
            1 | 2 => Role::Admin,
            3 | 4 => Role::Auditor,
            _ => Role::Agent,
        };
        let first_name = *rng.pick(FIRST_NAMES);
        let last_name = *rng.pick(LAST_NAMES);
        let mut agent = Tracked::<Agent>::new(agent_id.stream());
        decide(
            outbox,
            &mut agent,
            &AgentCommand::Invite {
                agent_id,
                email: format!("{}.{n}@desk.example", first_name.to_lowercase()),
                name: format!("{first_name} {last_name}"),
                role,
                by: Some(admin),
                at,
            },
            &person(at, &admin_actor, rng),
        )?;
        if rng.chance(0.9) {
            let at = tick(rng, 60, 900);
            decide(
                outbox,
                &mut agent,
                &AgentCommand::RecordPasswordChange { by: agent_id, at },
                &person(at, &agent_actor(agent_id), rng),
            )?;
        }
        if n == 1 {
            // An admin enrols an authenticator app, loses the phone, and the owner resets it.
            let at = tick(rng, 60, 900);
            decide(
                outbox,
                &mut agent,
                &AgentCommand::RecordSecondFactorEnrolled { at },
                &person(at, &agent_actor(agent_id), rng),
            )?;
            let at = tick(rng, 3_600, 86_400);
            decide(
                outbox,
                &mut agent,
                &AgentCommand::RecordSecondFactorRemoved { by: admin, at },
                &person(at, &admin_actor, rng),
            )?;
        }
        if role != Role::Auditor {
            let mut assigned: Vec<CategoryId> = (0..rng.range(1, 3))
                .filter_map(|_| rng.choose(&categories).copied())
                .collect();
            assigned.sort();
            assigned.dedup();
            let at = tick(rng, 10, 300);
            decide(
                outbox,
                &mut agent,
                &AgentCommand::AssignCategories {
                    categories: assigned,
                    by: admin,
                    at,
                },
                &person(at, &admin_actor, rng),
            )?;
        }
        agents.push((agent, role));
    }

    // Promotions, a demotion, people leaving (and one coming back).
    let last = agents.len().saturating_sub(1);
    let changes: [(usize, Role); 3] = [(5, Role::Admin), (2, Role::Agent), (last, Role::Admin)];
    for (index, role) in changes {
        if let Some((agent, current)) = agents.get_mut(index).filter(|(_, r)| *r != role) {
            let at = tick(rng, 600, 7_200);
            decide(
                outbox,
                agent,
                &AgentCommand::ChangeRole {
                    role,
                    by: admin,
                    at,
                },
                &person(at, &admin_actor, rng),
            )?;
            *current = role;
        }
    }
    let leaving = (agents.len() / 10).max(1);
    for index in (1..agents.len()).rev().take(leaving + 1).skip(1) {
        if let Some((agent, _)) = agents.get_mut(index) {
            let at = tick(rng, 600, 7_200);
            decide(
                outbox,
                agent,
                &AgentCommand::Deactivate { by: admin, at },
                &person(at, &admin_actor, rng),
            )?;
        }
    }
    let returning = agents.len().saturating_sub(2);
    if let Some((agent, _)) = agents.get_mut(returning) {
        let at = tick(rng, 600, 7_200);
        decide(
            outbox,
            agent,
            &AgentCommand::Reactivate { by: admin, at },
            &person(at, &admin_actor, rng),
        )?;
    }

    let mut staff = Vec::new();
    let mut leads = Vec::new();
    let mut by_category: BTreeMap<CategoryId, Vec<AgentId>> = BTreeMap::new();
    for (agent, _) in &agents {
        let Agent::Invited(state) = &agent.state else {
            continue;
        };
        if !state.active || state.role == Role::Auditor {
            continue;
        }
        staff.push(state.id);
        if state.role == Role::Admin {
            leads.push(state.id);
        }
        for category in &state.categories {
            by_category.entry(*category).or_default().push(state.id);
        }
    }
    Ok(World {
        start,
        end,
        open_from: t + TimeDelta::hours(1),
        categories,
        templates,
        staff,
        by_category,
        leads,
        reopen_window: settings.state.reopen_window(),
        agents: agents.len() as u64,
    })
}
