//! The system as a whole: where the log and each read model stand (`systemStatus`), the
//! team's dashboard, any object by its global id (`node`), and the log's event feed
//! (`events`).

pub mod dashboard;
pub mod node;
pub mod status;
pub mod subscriptions;

pub use dashboard::DashboardQuery;
pub use node::{Node, NodeQuery};
pub use status::SystemQuery;
pub use subscriptions::EventSubscription;
