//! Tests of the application layer against a real Postgres: the command service over the log,
//! the database set-up and the one-owner lock. Each test gets a fresh database
//! (`#[sqlx::test]`, needs `DATABASE_URL`).

#![expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

mod commands;
mod database;
mod ownership;
