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
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        match runtime.block_on(ruletest::run_file(file)) {
            Err(diagnostic) => {
                failed += 1;
                println!("FAIL {diagnostic}");
            }
            Ok(reports) => {
                for report in reports {
                    let place =
                        format!("{}:{}: {}", report.file.display(), report.line, report.name);
                    match report.failure {
                        None => {
                            passed += 1;
                            println!("ok   {place}");
                        }
                        Some(failure) => {
                            failed += 1;
                            println!("FAIL {place}\n  {failure}");
                        }
                    }
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
