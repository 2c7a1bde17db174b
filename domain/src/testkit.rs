//! Given/when/then for deciders: `given::<Ticket>([events]).when(command).then([events])`.

use std::fmt::Debug;

use crate::decider::Decider;

/// A decider state built from past events.
#[derive(Debug)]
pub(crate) struct Given<D> {
    state: D,
}

/// Starts a scenario from the events that already happened.
pub(crate) fn given<D: Decider>(events: impl IntoIterator<Item = D::Event>) -> Given<D> {
    let state = events
        .into_iter()
        .fold(D::default(), |state, event| state.evolve(&event));
    Given { state }
}

impl<D: Decider> Given<D> {
    /// Runs one command against the state.
    pub(crate) fn when(self, command: D::Command) -> When<D> {
        let result = self.state.decide(&command);
        When {
            state: self.state,
            result,
        }
    }
}

/// The outcome of a command.
#[derive(Debug)]
pub(crate) struct When<D: Decider> {
    state: D,
    result: Result<Vec<D::Event>, D::Error>,
}

impl<D> When<D>
where
    D: Decider + Debug,
    D::Event: PartialEq + Debug,
    D::Error: PartialEq + Debug,
{
    /// Asserts the command was accepted with exactly these events, and returns the next state.
    #[track_caller]
    pub(crate) fn then(self, expected: impl IntoIterator<Item = D::Event>) -> D {
        let expected: Vec<D::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "unexpected events");
                events
                    .iter()
                    .fold(self.state, |state, event| state.evolve(event))
            }
            Err(error) => panic!("expected events {expected:?}, got rejection {error:?}"),
        }
    }

    /// Asserts the command was accepted, hands its events to `check`, and returns the next
    /// state (for outcomes too long to spell out).
    #[track_caller]
    pub(crate) fn then_with(self, check: impl FnOnce(&[D::Event])) -> D {
        match self.result {
            Ok(events) => {
                check(&events);
                events
                    .iter()
                    .fold(self.state, |state, event| state.evolve(event))
            }
            Err(error) => panic!("expected events, got rejection {error:?}"),
        }
    }

    /// Asserts the command was rejected with this error.
    #[track_caller]
    pub(crate) fn then_err(self, expected: D::Error) {
        match self.result {
            Ok(events) => panic!("expected rejection {expected:?}, got events {events:?}"),
            Err(error) => assert_eq!(error, expected),
        }
    }
}
