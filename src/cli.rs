//! The command line. Every option can also come from the environment (or `.env`); every
//! setting but secrets has a safe default.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::Settings;

/// Event-sourced support ticketing for teams whose customers write on Telegram.
#[derive(Debug, Parser)]
#[command(name = "ledgerdesk", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Log format: `pretty` for people, `json` for log collectors.
    #[arg(long, env = "LEDGERDESK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run Ledgerdesk: apply migrations, then serve HTTP until interrupted.
    Serve(ServeArgs),
    /// Apply pending database migrations (creating the database if needed) and exit.
    Migrate,
    /// Rebuild read models from the log into shadow tables, then swap them in. The live tables
    /// keep serving meanwhile. A projection a running server owns is rebuilt by that server.
    Replay(ReplayArgs),
    /// Fill an empty database with a generated, realistic support history (for demos and
    /// benchmarks): tickets with 5-30 messages, agents, customers, broadcasts.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// At least this many events are appended.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub events: u64,
    /// The same seed gives the same history.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Concurrent writers.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub writers: u16,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The projection to rebuild (repeatable); all of them when absent.
    #[arg(long = "projection", value_name = "NAME")]
    pub projections: Vec<String>,
}

#[derive(Args)]
pub struct DatabaseArgs {
    /// Postgres URL of the database holding the log and the read models. Created if missing.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/ledgerdesk",
        hide_env_values = true,
        global = true
    )]
    database_url: String,

    /// Most database connections this process opens.
    #[arg(long, env = "LEDGERDESK_DB_MAX_CONNECTIONS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..=1000), global = true)]
    pub db_max_connections: u32,
}

impl std::fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("database_url", &"[redacted]")
            .field("db_max_connections", &self.db_max_connections)
            .finish()
    }
}

impl DatabaseArgs {
    /// The database URL, kept out of `Debug` output from here on.
    pub fn database_url(&self) -> SecretString {
        SecretString::from(self.database_url.clone())
    }

    /// The settings of `serve`.
    pub fn settings(&self, serve: ServeArgs) -> Settings {
        Settings {
            database_url: self.database_url(),
            db_max_connections: self.db_max_connections,
            bind: serve.bind,
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port the HTTP server listens on (port 0 picks a free one).
    #[arg(long, env = "LEDGERDESK_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}
