//! The `ledgerdesk` command: parses the command line and hands over to the library.

use clap::Parser;

// Projections allocate a page of events on one thread and free it on another, by the
// thousand: glibc's allocator spends more time on that than the projections themselves.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ledgerdesk::cli::{AdminCommand, AuditCommand, Cli, Command, CustomerCommand};
use ledgerdesk::{Application, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A missing .env is the normal case in production.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Serve(args) => {
            let settings = cli.database.settings(args)?;
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Migrate => ledgerdesk::migrate(&cli.database).await,
        Command::Replay(args) if args.verify => {
            ledgerdesk::verify(&cli.database, &args.projections).await
        }
        Command::Replay(args) => ledgerdesk::replay(&cli.database, &args.projections).await,
        Command::Generate(args) => ledgerdesk::generate(&cli.database, &args).await,
        Command::Admin(AdminCommand::Create(args)) => {
            ledgerdesk::create_agent(&cli.database, &args).await
        }
        Command::Audit(AuditCommand::Verify(args)) => {
            ledgerdesk::audit::verify(&cli.database, &args).await
        }
        Command::Audit(AuditCommand::Anchor(args)) => {
            ledgerdesk::audit::anchor(&cli.database, &args).await
        }
        Command::Export(args) => ledgerdesk::audit::export(&cli.database, &args).await,
        Command::Import(args) => ledgerdesk::audit::import(&cli.database, &args).await,
        Command::Customer(CustomerCommand::Forget(args)) => {
            ledgerdesk::audit::forget(&cli.database, &args).await
        }
    }
}
