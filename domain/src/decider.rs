//! The shape every aggregate has: [`Decider`].

/// An aggregate as a decider: an initial state (`Default`), a pure `decide` and a total `evolve`.
///
/// `decide` never mutates: it inspects the current state and either rejects the command or
/// returns the events that record what happened (possibly none, when the command is already
/// satisfied). `evolve` folds one event into the state and never fails, whatever the event and
/// the state, so replaying any stored history always yields a state.
pub trait Decider: Default {
    /// What callers ask for, in the imperative (`ReplyAsAgent`).
    type Command;
    /// What happened, in the past tense (`AgentReplied`).
    type Event;
    /// Why a command was rejected, with a message fit to show a user.
    type Error: std::error::Error;

    /// Decides what happens when `command` meets the current state.
    ///
    /// # Errors
    /// Returns the aggregate's error when the command breaks a rule or carries invalid input.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state. Total: never panics, whatever the event.
    #[must_use]
    fn evolve(self, event: &Self::Event) -> Self;

    /// Folds a whole history into a state, starting from `Default`.
    #[must_use]
    fn replay<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::default(), |state, event| state.evolve(event))
    }
}
