//! The list of every read model, for the runtime to register.

use std::sync::Arc;

use crate::projection::Projection;

/// Every read model of Ledgerdesk, each a [`Projection`] the runtime keeps up to date.
#[must_use]
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(crate::tickets::Tickets),
        Arc::new(crate::tickets::Messages),
        Arc::new(crate::customers::Customers),
        Arc::new(crate::directory::Directory),
        Arc::new(crate::broadcasts::Broadcasts),
        Arc::new(crate::dashboard::Dashboard),
    ]
}
