//! The system as a whole: where the log and each read model stand (`systemStatus`), the
//! team's dashboard, any object by its global id (`node`), the log's event feed (`events`),
//! the Telegram updates the bot could not record (`unrecordedUpdates`), and the log for
//! auditors (`events` as a query, `auditVerify`).

pub mod dashboard;
pub mod log;
pub mod node;
pub mod status;
pub mod subscriptions;
pub mod unrecorded;

pub use dashboard::DashboardQuery;
pub use log::LogQuery;
pub use node::{Node, NodeQuery};
pub use status::SystemQuery;
pub use subscriptions::EventSubscription;
pub use unrecorded::UnrecordedQuery;
