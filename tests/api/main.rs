//! The GraphQL API end to end: the real server on a random port, a real Postgres (a database
//! per test), real HTTP and WebSocket clients.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
#![allow(
    unreachable_pub,
    dead_code,
    reason = "support code shared by test modules"
)]

mod support;
mod ws;

mod as_of;
mod audit;
mod audit_trail;
mod auth;
mod authz;
mod broadcast_previews;
mod broadcast_reports;
mod contention;
mod errors;
mod feeds;
mod forget;
mod graphiql;
mod held_back;
mod inbound;
mod limits;
mod matrix;
mod media;
mod mutations;
mod nodes;
mod outage;
mod paging;
mod protocol;
mod queries;
mod replies;
mod retry_delivery;
mod roles;
mod schema;
mod second_factor;
mod subscriptions;
mod throttle;
mod transport;
mod unstorable;
