//! `riposte db`: the database itself. `copy` moves a SQLite file into PostgreSQL, to go from
//! one instance to several.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub(super) struct DbCommandArgs {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Copy everything a SQLite file holds (contacts, pending and finished jobs, chats,
    /// campaign runs, the event log, bodies not yet processed) into an empty PostgreSQL
    /// database. Stop Riposte first: what arrives meanwhile is not copied.
    Copy {
        /// The SQLite file.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database (`postgres://user:password@host/db`), empty.
        #[arg(long)]
        to: String,
    },
}

pub(super) fn run(args: DbCommandArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    match args.command {
        DbCommand::Copy { from, to } => {
            let copied = runtime.block_on(crate::store::copy::copy(&from, &to))?;
            for (table, rows) in &copied {
                println!("{table:>15}  {rows} rows");
            }
            println!(
                "copied `{}` into PostgreSQL; start Riposte with --db set to it",
                from.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
