//! Event log tests: the conformance suite run against each backend, plus what only one backend
//! can show. Each test gets a fresh database (`#[sqlx::test]`, needs `DATABASE_URL`).

#![expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

mod batch;
mod horizon;
mod postgres;
mod seal;
mod suite;
