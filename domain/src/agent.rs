//! The agent aggregate: a member of the support team (`agent-<uuid>` stream).
//!
//! Records invitations, roles, the categories an agent works, deactivation, the fact that a
//! password changed, and the life of their second sign-in factor (enrolled, a recovery code
//! used, wrong codes delayed, disabled, reset by an admin). Password hashes, session tokens, second-factor secrets
//! and recovery codes never enter the log: they live in mutable credential tables outside the
//! domain.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::event_enum;
use crate::decider::Decider;
use crate::ids::{AgentId, CategoryId};
use crate::validate::{self, InvalidInput};

/// Most categories one agent can be assigned.
pub const MAX_AGENT_CATEGORIES: usize = 100;

/// What an agent may do in the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including settings and other agents.
    Admin,
    /// Work tickets and broadcasts.
    Agent,
    /// Read everything, change nothing.
    Auditor,
}

/// An agent's personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPersonal {
    /// Login email, trimmed and lower-cased.
    pub email: String,
    /// Display name.
    pub name: String,
}

/// `agent.invited`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInvited {
    /// The new agent.
    pub agent_id: AgentId,
    /// Their role.
    pub role: Role,
    /// Who invited them (`None` for the first admin, created at setup).
    pub by: Option<AgentId>,
    /// When.
    pub at: DateTime<Utc>,
    /// Personal data: email and name.
    pub personal: AgentPersonal,
}

/// `agent.role_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChanged {
    /// The new role.
    pub role: Role,
    /// Who changed it.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `agent.categories_assigned`: the full set of categories the agent works from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoriesAssigned {
    /// The categories (sorted, no duplicates; empty means none).
    pub categories: Vec<CategoryId>,
    /// Who assigned them.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `agent.deactivated`, `agent.reactivated`, `agent.password_changed`: who did it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStep {
    /// Who.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `agent.recovery_code_used`: the agent signed in with one of their one-time recovery codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodeUsed {
    /// How many unused recovery codes are left.
    pub remaining: u32,
    /// When.
    pub at: DateTime<Utc>,
}

/// `agent.second_factor_throttled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorThrottled {
    /// When.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// Everything that can happen to an agent.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum AgentEvent {
        /// Invited to the team.
        Invited(AgentInvited) = "agent.invited" v 1;
        /// Role changed.
        RoleChanged(RoleChanged) = "agent.role_changed" v 1;
        /// Categories assigned.
        CategoriesAssigned(CategoriesAssigned) = "agent.categories_assigned" v 1;
        /// Can no longer sign in.
        Deactivated(AgentStep) = "agent.deactivated" v 1;
        /// Can sign in again.
        Reactivated(AgentStep) = "agent.reactivated" v 1;
        /// The password changed (the hash lives elsewhere).
        PasswordChanged(AgentStep) = "agent.password_changed" v 1;
        /// A second sign-in factor (an authenticator app) was confirmed with a first code and
        /// recovery codes were issued (the secret and the codes live elsewhere).
        SecondFactorEnrolled(AgentStep) = "agent.second_factor_enrolled" v 1;
        /// The agent turned their second factor off, proving it with a current code.
        SecondFactorDisabled(AgentStep) = "agent.second_factor_disabled" v 1;
        /// An admin removed the agent's second factor (a lost device).
        SecondFactorReset(AgentStep) = "agent.second_factor_reset" v 1;
        /// A one-time recovery code was spent on a sign-in.
        RecoveryCodeUsed(RecoveryCodeUsed) = "agent.recovery_code_used" v 1;
        /// Wrong second-factor codes began to be delayed: someone who knows the password is
        /// guessing codes (recorded once as the delays begin, not for each wrong code).
        SecondFactorThrottled(SecondFactorThrottled) = "agent.second_factor_throttled" v 1;
    }
}

/// Everything one can ask of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    /// Invite someone to the team.
    Invite {
        /// The id for the new agent.
        agent_id: AgentId,
        /// Their login email.
        email: String,
        /// Their display name.
        name: String,
        /// Their role.
        role: Role,
        /// Who invites (`None` for the first admin at setup).
        by: Option<AgentId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Change the agent's role.
    ChangeRole {
        /// The new role.
        role: Role,
        /// Who changes it.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Set the categories the agent works.
    AssignCategories {
        /// The full set.
        categories: Vec<CategoryId>,
        /// Who assigns them.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Stop the agent from signing in.
    Deactivate {
        /// Who deactivates.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Let the agent sign in again.
    Reactivate {
        /// Who reactivates.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that the password changed (the agent's own or an admin reset).
    RecordPasswordChange {
        /// Who changed it.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that the agent confirmed a second factor.
    RecordSecondFactorEnrolled {
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that the second factor was removed: by the agent themselves (disabled) or by
    /// an admin (reset).
    RecordSecondFactorRemoved {
        /// Who removed it.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that wrong second-factor codes began to be delayed.
    RecordSecondFactorThrottled {
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that a recovery code was spent.
    RecordRecoveryCodeUsed {
        /// How many are left.
        remaining: u32,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Why an agent command was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// No such agent.
    #[error("this agent does not exist")]
    NotInvited,
    /// Inviting twice.
    #[error("this agent was already invited")]
    AlreadyInvited,
    /// Changing a deactivated agent.
    #[error("this agent is deactivated")]
    Deactivated,
    /// An agent deactivating themselves (nobody could undo a lone admin's mistake).
    #[error("you cannot deactivate yourself")]
    CannotDeactivateSelf,
    /// An input out of bounds.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
}

/// An invited agent. Read it; change it only through events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    /// The agent.
    pub id: AgentId,
    /// Their email and name.
    pub personal: AgentPersonal,
    /// Their role.
    pub role: Role,
    /// The categories they work.
    pub categories: BTreeSet<CategoryId>,
    /// Whether they can sign in.
    pub active: bool,
    /// Whether a second sign-in factor is enrolled, as the log last recorded.
    pub second_factor: bool,
}

/// An agent's state: not invited, or invited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Agent {
    /// No invitation yet.
    #[default]
    NotInvited,
    /// Invited (active or not).
    Invited(AgentState),
}

fn normalize_email(email: &str) -> Result<String, InvalidInput> {
    let email = email.trim().to_lowercase();
    validate::required("email", &email, validate::MAX_EMAIL_CHARS)?;
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') => {}
        _ => {
            return Err(InvalidInput::Malformed {
                field: "email",
                why: "it should look like name@example.com",
            });
        }
    }
    if email.chars().any(char::is_whitespace) {
        return Err(InvalidInput::Malformed {
            field: "email",
            why: "it contains spaces",
        });
    }
    Ok(email)
}

impl AgentState {
    fn decide(&self, command: &AgentCommand) -> Result<Vec<AgentEvent>, AgentError> {
        use AgentCommand as C;
        use AgentEvent as E;
        let step = |by: &AgentId, at: &DateTime<Utc>| AgentStep { by: *by, at: *at };
        match command {
            C::Invite { .. } => Err(AgentError::AlreadyInvited),
            C::Deactivate { by, .. } if *by == self.id => Err(AgentError::CannotDeactivateSelf),
            C::Deactivate { by, at } if self.active => Ok(vec![E::Deactivated(step(by, at))]),
            C::Reactivate { by, at } if !self.active => Ok(vec![E::Reactivated(step(by, at))]),
            C::Deactivate { .. } | C::Reactivate { .. } => Ok(vec![]),
            _ if !self.active => Err(AgentError::Deactivated),
            C::ChangeRole { role, .. } if *role == self.role => Ok(vec![]),
            C::ChangeRole { role, by, at } => Ok(vec![E::RoleChanged(RoleChanged {
                role: *role,
                by: *by,
                at: *at,
            })]),
            C::AssignCategories {
                categories, by, at, ..
            } => {
                let categories: BTreeSet<CategoryId> = categories.iter().copied().collect();
                validate::count("categories", categories.len(), MAX_AGENT_CATEGORIES)?;
                if categories == self.categories {
                    return Ok(vec![]);
                }
                Ok(vec![E::CategoriesAssigned(CategoriesAssigned {
                    categories: categories.into_iter().collect(),
                    by: *by,
                    at: *at,
                })])
            }
            C::RecordPasswordChange { by, at } => Ok(vec![E::PasswordChanged(step(by, at))]),
            C::RecordSecondFactorEnrolled { at } => {
                Ok(vec![E::SecondFactorEnrolled(step(&self.id, at))])
            }
            C::RecordSecondFactorRemoved { .. } if !self.second_factor => Ok(vec![]),
            C::RecordSecondFactorRemoved { by, at } if *by == self.id => {
                Ok(vec![E::SecondFactorDisabled(step(by, at))])
            }
            C::RecordSecondFactorRemoved { by, at } => Ok(vec![E::SecondFactorReset(step(by, at))]),
            C::RecordSecondFactorThrottled { at } => {
                Ok(vec![E::SecondFactorThrottled(SecondFactorThrottled {
                    at: *at,
                })])
            }
            C::RecordRecoveryCodeUsed { remaining, at } => {
                Ok(vec![E::RecoveryCodeUsed(RecoveryCodeUsed {
                    remaining: *remaining,
                    at: *at,
                })])
            }
        }
    }

    fn apply(&mut self, event: &AgentEvent) {
        match event {
            AgentEvent::Invited(_)
            | AgentEvent::PasswordChanged(_)
            | AgentEvent::RecoveryCodeUsed(_)
            | AgentEvent::SecondFactorThrottled(_) => {}
            AgentEvent::SecondFactorEnrolled(_) => self.second_factor = true,
            AgentEvent::SecondFactorDisabled(_) | AgentEvent::SecondFactorReset(_) => {
                self.second_factor = false;
            }
            AgentEvent::RoleChanged(changed) => self.role = changed.role,
            AgentEvent::CategoriesAssigned(assigned) => {
                self.categories = assigned.categories.iter().copied().collect();
            }
            AgentEvent::Deactivated(_) => self.active = false,
            AgentEvent::Reactivated(_) => self.active = true,
        }
    }
}

impl Decider for Agent {
    type Command = AgentCommand;
    type Event = AgentEvent;
    type Error = AgentError;

    fn decide(&self, command: &AgentCommand) -> Result<Vec<AgentEvent>, AgentError> {
        match (self, command) {
            (
                Self::NotInvited,
                AgentCommand::Invite {
                    agent_id,
                    email,
                    name,
                    role,
                    by,
                    at,
                },
            ) => {
                let email = normalize_email(email)?;
                validate::required("name", name, validate::MAX_NAME_CHARS)?;
                Ok(vec![AgentEvent::Invited(AgentInvited {
                    agent_id: *agent_id,
                    role: *role,
                    by: *by,
                    at: *at,
                    personal: AgentPersonal {
                        email,
                        name: name.trim().to_owned(),
                    },
                })])
            }
            (Self::NotInvited, _) => Err(AgentError::NotInvited),
            (Self::Invited(state), command) => state.decide(command),
        }
    }

    fn evolve(self, event: &AgentEvent) -> Self {
        match (self, event) {
            (Self::NotInvited, AgentEvent::Invited(invited)) => Self::Invited(AgentState {
                id: invited.agent_id,
                personal: invited.personal.clone(),
                role: invited.role,
                categories: BTreeSet::new(),
                active: true,
                second_factor: false,
            }),
            (Self::NotInvited, _) => Self::NotInvited,
            (Self::Invited(mut state), event) => {
                state.apply(event);
                Self::Invited(state)
            }
        }
    }
}

#[cfg(test)]
mod tests;
