//! Callers and what they may do: [`Caller`], [`Permission`], [`Scope`], [`TicketScope`], and
//! how a request authenticated ([`Authentication`]).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use domain::AgentId;
use domain::agent::Role;
use eventlog::{Actor, ActorKind};
use uuid::Uuid;

/// Something a caller may be allowed to do. Resolvers name one; [`Caller::may`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Read tickets, their messages, notes and history.
    ReadTickets,
    /// Reply, note, assign, change status, priority, category and tags.
    WriteTickets,
    /// Read customers.
    ReadCustomers,
    /// Ban and unban customers.
    ModerateCustomers,
    /// Forget a customer's personal data (admins only).
    ForgetCustomers,
    /// Read agents, categories and templates.
    ReadDirectory,
    /// Invite agents, change their role and categories, deactivate them.
    ManageAgents,
    /// Categories, templates and other settings.
    ManageSettings,
    /// Read broadcasts and their recipients.
    ReadBroadcasts,
    /// Create, edit, schedule, start, pause and cancel broadcasts.
    WriteBroadcasts,
    /// Read the dashboard.
    ReadDashboard,
    /// Read the raw event feed of the whole log.
    ReadEvents,
    /// Read the system status (log head, projection lags).
    ReadSystem,
    /// Create and revoke integrator API tokens.
    ManageApiTokens,
}

impl Permission {
    /// Every permission, for tables and tests.
    pub const ALL: [Permission; 14] = [
        Permission::ReadTickets,
        Permission::WriteTickets,
        Permission::ReadCustomers,
        Permission::ModerateCustomers,
        Permission::ForgetCustomers,
        Permission::ReadDirectory,
        Permission::ManageAgents,
        Permission::ManageSettings,
        Permission::ReadBroadcasts,
        Permission::WriteBroadcasts,
        Permission::ReadDashboard,
        Permission::ReadEvents,
        Permission::ReadSystem,
        Permission::ManageApiTokens,
    ];

    /// Whether a role grants this permission.
    pub fn granted_to(self, role: Role) -> bool {
        use Permission as P;
        match role {
            Role::Admin => true,
            Role::Agent => matches!(
                self,
                P::ReadTickets
                    | P::WriteTickets
                    | P::ReadCustomers
                    | P::ModerateCustomers
                    | P::ReadDirectory
                    | P::ReadBroadcasts
                    | P::WriteBroadcasts
                    | P::ReadDashboard
                    | P::ReadSystem
            ),
            Role::Auditor => matches!(
                self,
                P::ReadTickets
                    | P::ReadCustomers
                    | P::ReadDirectory
                    | P::ReadBroadcasts
                    | P::ReadDashboard
                    | P::ReadEvents
                    | P::ReadSystem
            ),
        }
    }
}

/// What an integrator's API token may do. Managing agents, settings and tokens is never
/// grantable to a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `tickets:read`: tickets, messages, notes, history.
    TicketsRead,
    /// `tickets:write`: reply, note, assign, statuses, tags.
    TicketsWrite,
    /// `customers:read`.
    CustomersRead,
    /// `directory:read`: agents, categories, templates.
    DirectoryRead,
    /// `broadcasts:read`.
    BroadcastsRead,
    /// `dashboard:read`: dashboard and system status.
    DashboardRead,
    /// `events:read`: the raw event feed.
    EventsRead,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 7] = [
        Scope::TicketsRead,
        Scope::TicketsWrite,
        Scope::CustomersRead,
        Scope::DirectoryRead,
        Scope::BroadcastsRead,
        Scope::DashboardRead,
        Scope::EventsRead,
    ];

    /// Its name, as integrators write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TicketsRead => "tickets:read",
            Scope::TicketsWrite => "tickets:write",
            Scope::CustomersRead => "customers:read",
            Scope::DirectoryRead => "directory:read",
            Scope::BroadcastsRead => "broadcasts:read",
            Scope::DashboardRead => "dashboard:read",
            Scope::EventsRead => "events:read",
        }
    }

    /// The permissions it grants.
    pub fn grants(self, permission: Permission) -> bool {
        use Permission as P;
        matches!(
            (self, permission),
            (Scope::TicketsRead, P::ReadTickets)
                | (Scope::TicketsWrite, P::WriteTickets)
                | (Scope::CustomersRead, P::ReadCustomers)
                | (Scope::DirectoryRead, P::ReadDirectory)
                | (Scope::BroadcastsRead, P::ReadBroadcasts)
                | (Scope::DashboardRead, P::ReadDashboard | P::ReadSystem)
                | (Scope::EventsRead, P::ReadEvents)
        )
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not one of [`Scope::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scope {0:?}; known scopes: tickets:read, tickets:write, customers:read, directory:read, broadcasts:read, dashboard:read, events:read"
)]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.chars().take(50).collect()))
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A signed-in member of the team.
    Agent {
        /// Who.
        id: AgentId,
        /// Their role, as the log has it when the credential was checked (not the role the
        /// access token was issued with: a role change applies from the next request on).
        role: Role,
        /// The categories they work, as the log has it when the credential was checked
        /// (empty: none).
        categories: Vec<Uuid>,
        /// Set until they replace a one-time password: they may do nothing else meanwhile.
        must_change_password: bool,
        /// Set on a restricted sign-in: the team requires a second factor of their role and
        /// they have none, so they may only enrol one (and read `me`, sign out).
        must_enrol_second_factor: bool,
    },
    /// An integration holding an API token.
    Integrator {
        /// The token's id.
        token_id: Uuid,
        /// What it may do.
        scopes: BTreeSet<Scope>,
        /// The admin who created the token: a ticket command sent with it (scope
        /// `tickets:write`) is done in their name, while they are still an active admin.
        created_by: AgentId,
    },
}

impl Caller {
    /// Whether this caller holds `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        match self {
            Caller::Agent {
                role,
                must_change_password,
                must_enrol_second_factor,
                ..
            } => !must_change_password && !must_enrol_second_factor && permission.granted_to(*role),
            Caller::Integrator { scopes, .. } => {
                scopes.iter().any(|scope| scope.grants(permission))
            }
        }
    }

    /// The agent, when the caller is one.
    pub fn agent_id(&self) -> Option<AgentId> {
        match self {
            Caller::Agent { id, .. } => Some(*id),
            Caller::Integrator { .. } => None,
        }
    }

    /// Which tickets this caller may see and work: an agent (role `agent`) with categories
    /// sees only tickets in them; every other caller sees all.
    pub fn ticket_scope(&self) -> TicketScope {
        match self {
            Caller::Agent {
                role: Role::Agent,
                categories,
                ..
            } if !categories.is_empty() => TicketScope::Categories(categories.clone()),
            _ => TicketScope::All,
        }
    }

    /// The actor recorded on the events this caller's commands write.
    pub fn actor(&self) -> Actor {
        match self {
            Caller::Agent { id, .. } => Actor::new(ActorKind::Agent, id.to_string()),
            Caller::Integrator { token_id, .. } => {
                Actor::new(ActorKind::Integrator, token_id.to_string())
            }
        }
    }
}

/// Which tickets a caller may see and work: an agent with categories sees only tickets in
/// them; everyone else who may read tickets sees all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketScope {
    /// Every ticket.
    All,
    /// Tickets in these categories only.
    Categories(Vec<Uuid>),
}

impl TicketScope {
    /// Whether a ticket in `category` is in scope.
    pub fn covers(&self, category: Option<Uuid>) -> bool {
        match self {
            TicketScope::All => true,
            TicketScope::Categories(categories) => {
                category.is_some_and(|category| categories.contains(&category))
            }
        }
    }

    /// The categories to restrict a query to (`None`: no restriction).
    pub fn categories(&self) -> Option<&[Uuid]> {
        match self {
            TicketScope::All => None,
            TicketScope::Categories(categories) => Some(categories),
        }
    }
}

/// Who a signed media URL was issued to, as written in it: `a<uuid>` for an agent,
/// `t<uuid>` for an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// An agent.
    Agent(AgentId),
    /// An API token.
    Token(Uuid),
}

impl Principal {
    /// The principal of a caller.
    pub fn of(caller: &Caller) -> Principal {
        match caller {
            Caller::Agent { id, .. } => Principal::Agent(*id),
            Caller::Integrator { token_id, .. } => Principal::Token(*token_id),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Agent(id) => write!(f, "a{}", id.as_uuid().simple()),
            Principal::Token(id) => write!(f, "t{}", id.simple()),
        }
    }
}

impl FromStr for Principal {
    type Err = ();

    fn from_str(value: &str) -> Result<Self, ()> {
        let (kind, id) = value.split_at_checked(1).ok_or(())?;
        let id = Uuid::try_parse(id).map_err(|_| ())?;
        match kind {
            "a" => Ok(Principal::Agent(AgentId::from_uuid(id))),
            "t" => Ok(Principal::Token(id)),
            _ => Err(()),
        }
    }
}

/// The outcome of looking at a request's credential.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// No credential was sent.
    Anonymous,
    /// A valid credential.
    Authenticated(Caller),
    /// A credential was sent and refused; the reason is safe to show.
    Refused(&'static str),
    /// A credential was sent but could not be checked: the database could not be reached.
    /// Neither accepted nor refused; the client should send it again later.
    Unavailable,
}
