use chrono::TimeZone;
use uuid::Uuid;

use super::*;
use crate::testkit::given;

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
        .single()
        .unwrap_or_default()
}
fn agent() -> AgentId {
    AgentId(Uuid::from_u128(1))
}
fn admin() -> AgentId {
    AgentId(Uuid::from_u128(2))
}
fn invite() -> AgentCommand {
    AgentCommand::Invite {
        agent_id: agent(),
        email: "  Ann@Example.com ".into(),
        name: "Ann".into(),
        role: Role::Agent,
        by: Some(admin()),
        at: at(),
    }
}
fn invited() -> AgentEvent {
    AgentEvent::Invited(AgentInvited {
        agent_id: agent(),
        role: Role::Agent,
        by: Some(admin()),
        at: at(),
        personal: AgentPersonal {
            email: "ann@example.com".into(),
            name: "Ann".into(),
        },
    })
}
fn deactivated() -> AgentEvent {
    AgentEvent::Deactivated(AgentStep {
        by: admin(),
        at: at(),
    })
}

#[test]
fn inviting_an_agent_normalizes_the_email() {
    given::<Agent>([]).when(invite()).then([invited()]);
}

#[test]
fn inviting_twice_is_rejected() {
    given::<Agent>([invited()])
        .when(invite())
        .then_err(AgentError::AlreadyInvited);
}

#[test]
fn inviting_with_a_malformed_email_is_rejected() {
    let AgentCommand::Invite {
        agent_id,
        name,
        role,
        by,
        at,
        ..
    } = invite()
    else {
        unreachable!("invite() builds an Invite");
    };
    given::<Agent>([])
        .when(AgentCommand::Invite {
            agent_id,
            email: "ann.example.com".into(),
            name,
            role,
            by,
            at,
        })
        .then_err(AgentError::Invalid(InvalidInput::Malformed {
            field: "email",
            why: "it should look like name@example.com",
        }));
}

#[test]
fn inviting_without_a_name_is_rejected() {
    let AgentCommand::Invite {
        agent_id,
        email,
        role,
        by,
        at,
        ..
    } = invite()
    else {
        unreachable!("invite() builds an Invite");
    };
    given::<Agent>([])
        .when(AgentCommand::Invite {
            agent_id,
            email,
            name: " ".into(),
            role,
            by,
            at,
        })
        .then_err(AgentError::Invalid(InvalidInput::Empty { field: "name" }));
}

#[test]
fn changing_the_role_of_an_unknown_agent_is_rejected() {
    given::<Agent>([])
        .when(AgentCommand::ChangeRole {
            role: Role::Admin,
            by: admin(),
            at: at(),
        })
        .then_err(AgentError::NotInvited);
}

#[test]
fn changing_the_role_records_it_once() {
    let cmd = AgentCommand::ChangeRole {
        role: Role::Auditor,
        by: admin(),
        at: at(),
    };
    let changed = AgentEvent::RoleChanged(RoleChanged {
        role: Role::Auditor,
        by: admin(),
        at: at(),
    });
    given::<Agent>([invited()])
        .when(cmd.clone())
        .then([changed.clone()]);
    given::<Agent>([invited(), changed]).when(cmd).then([]);
}

#[test]
fn assigning_categories_deduplicates_and_sorts_them() {
    let (a, b) = (
        CategoryId(Uuid::from_u128(10)),
        CategoryId(Uuid::from_u128(9)),
    );
    given::<Agent>([invited()])
        .when(AgentCommand::AssignCategories {
            categories: vec![a, b, a],
            by: admin(),
            at: at(),
        })
        .then([AgentEvent::CategoriesAssigned(CategoriesAssigned {
            categories: vec![b, a],
            by: admin(),
            at: at(),
        })]);
}

#[test]
fn assigning_the_same_categories_again_records_nothing() {
    given::<Agent>([invited()])
        .when(AgentCommand::AssignCategories {
            categories: vec![],
            by: admin(),
            at: at(),
        })
        .then([]);
}

#[test]
fn deactivating_and_reactivating_an_agent_are_recorded() {
    let state = given::<Agent>([invited()])
        .when(AgentCommand::Deactivate {
            by: admin(),
            at: at(),
        })
        .then([deactivated()]);
    assert!(matches!(
        state,
        Agent::Invited(AgentState { active: false, .. })
    ));
    given::<Agent>([invited(), deactivated()])
        .when(AgentCommand::Reactivate {
            by: admin(),
            at: at(),
        })
        .then([AgentEvent::Reactivated(AgentStep {
            by: admin(),
            at: at(),
        })]);
}

#[test]
fn deactivating_twice_or_reactivating_an_active_agent_records_nothing() {
    given::<Agent>([invited(), deactivated()])
        .when(AgentCommand::Deactivate {
            by: admin(),
            at: at(),
        })
        .then([]);
    given::<Agent>([invited()])
        .when(AgentCommand::Reactivate {
            by: admin(),
            at: at(),
        })
        .then([]);
}

#[test]
fn an_agent_cannot_deactivate_themselves() {
    given::<Agent>([invited()])
        .when(AgentCommand::Deactivate {
            by: agent(),
            at: at(),
        })
        .then_err(AgentError::CannotDeactivateSelf);
}

#[test]
fn a_deactivated_agent_cannot_change_role_categories_or_password() {
    for cmd in [
        AgentCommand::ChangeRole {
            role: Role::Admin,
            by: admin(),
            at: at(),
        },
        AgentCommand::AssignCategories {
            categories: vec![],
            by: admin(),
            at: at(),
        },
        AgentCommand::RecordPasswordChange {
            by: agent(),
            at: at(),
        },
    ] {
        given::<Agent>([invited(), deactivated()])
            .when(cmd)
            .then_err(AgentError::Deactivated);
    }
}

#[test]
fn a_password_change_records_only_the_fact() {
    given::<Agent>([invited()])
        .when(AgentCommand::RecordPasswordChange {
            by: agent(),
            at: at(),
        })
        .then([AgentEvent::PasswordChanged(AgentStep {
            by: agent(),
            at: at(),
        })]);
}

#[test]
fn a_second_factor_removed_by_the_agent_is_disabled_and_by_an_admin_is_reset() {
    let enrolled = AgentEvent::SecondFactorEnrolled(AgentStep {
        by: agent(),
        at: at(),
    });
    let state = given::<Agent>([invited()])
        .when(AgentCommand::RecordSecondFactorEnrolled { at: at() })
        .then([enrolled.clone()]);
    assert!(matches!(
        state,
        Agent::Invited(AgentState {
            second_factor: true,
            ..
        })
    ));
    let state = given::<Agent>([invited(), enrolled.clone()])
        .when(AgentCommand::RecordSecondFactorRemoved {
            by: agent(),
            at: at(),
        })
        .then([AgentEvent::SecondFactorDisabled(AgentStep {
            by: agent(),
            at: at(),
        })]);
    assert!(matches!(
        state,
        Agent::Invited(AgentState {
            second_factor: false,
            ..
        })
    ));
    given::<Agent>([invited(), enrolled])
        .when(AgentCommand::RecordSecondFactorRemoved {
            by: admin(),
            at: at(),
        })
        .then([AgentEvent::SecondFactorReset(AgentStep {
            by: admin(),
            at: at(),
        })]);
    // Nothing to remove: nothing recorded.
    given::<Agent>([invited()])
        .when(AgentCommand::RecordSecondFactorRemoved {
            by: admin(),
            at: at(),
        })
        .then([]);
}

#[test]
fn a_spent_recovery_code_records_how_many_are_left() {
    given::<Agent>([invited()])
        .when(AgentCommand::RecordRecoveryCodeUsed {
            remaining: 7,
            at: at(),
        })
        .then([AgentEvent::RecoveryCodeUsed(RecoveryCodeUsed {
            remaining: 7,
            at: at(),
        })]);
}

#[test]
fn delayed_second_factor_codes_are_recorded_without_changing_the_agent() {
    let state = given::<Agent>([invited()])
        .when(AgentCommand::RecordSecondFactorThrottled { at: at() })
        .then([AgentEvent::SecondFactorThrottled(SecondFactorThrottled {
            at: at(),
        })]);
    assert!(matches!(
        state,
        Agent::Invited(AgentState {
            active: true,
            second_factor: false,
            ..
        })
    ));
}
