//! Broadcasts: messages sent to a segment of the customers, their recipients, the mutations
//! that draft and run them, and their progress as it happens.

pub mod mutations;
pub mod preview;
pub mod queries;
pub mod subscriptions;
pub mod types;

pub use mutations::BroadcastMutation;
pub use preview::BroadcastPreviewMutation;
pub use queries::BroadcastQuery;
pub use subscriptions::{BroadcastProgress, BroadcastSubscription};
pub use types::{
    Broadcast, BroadcastButtonPresses, BroadcastRecipient, BroadcastStateValue, RecipientStateValue,
};
