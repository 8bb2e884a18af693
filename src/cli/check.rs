//! `riposte check`: compile the rules and print every problem as `FILE:LINE:COLUMN: error: ...`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::rules;

/// Prints diagnostics to stdout; exit 1 when any error was found.
pub(super) fn run(paths: &[PathBuf]) -> ExitCode {
    match rules::load(paths) {
        Ok(set) => {
            println!("ok: {} rules in {} files", set.rules.len(), set.files.len());
            ExitCode::SUCCESS
        }
        Err(diagnostics) => {
            for d in &diagnostics {
                println!("{d}");
            }
            let n = diagnostics.len();
            eprintln!("{n} error{}", if n == 1 { "" } else { "s" });
            ExitCode::FAILURE
        }
    }
}
