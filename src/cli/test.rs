//! `riposte test`: runs the `*.test.yaml` files and prints a readable diff per failed case.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::ruletest;

/// Runs every test file under `paths`; exit 1 if any case fails or a file does not parse.
pub(super) fn run(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let files = ruletest::find(paths);
    if files.is_empty() {
        eprintln!(
            "no *.test.yaml files under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(ExitCode::FAILURE);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let (_, failed) = runtime.block_on(ruletest::run_files(&files, |line| println!("{line}")));
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
