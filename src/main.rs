use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = riposte::cli::Cli::parse();
    // The server logs what it does; the other commands print a report and log only trouble.
    riposte::logging::init(if cli.is_server() { "info" } else { "warn" });
    match cli.run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
