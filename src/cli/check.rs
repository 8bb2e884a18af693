//! `riposte check`: compile the rules and print every problem as `FILE:LINE:COLUMN: error: ...`,
//! then the lint findings as `warning:` lines.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;

use crate::channels::Channels;
use crate::rules;

/// Prints diagnostics to stdout; exit 1 on any error, or on a warning with `deny_warnings`.
pub(super) fn run(
    paths: &[PathBuf],
    zone: chrono_tz::Tz,
    channels: &Channels,
    deny_warnings: bool,
    verbose: bool,
) -> ExitCode {
    let loaded = rules::load_in(paths, zone).and_then(|set| channels.fit(&set).map(|()| set));
    let set = match loaded {
        Ok(set) => set,
        Err(diagnostics) => {
            for d in &diagnostics {
                println!("{d}");
            }
            let n = diagnostics.len();
            eprintln!("{n} error{}", if n == 1 { "" } else { "s" });
            return ExitCode::FAILURE;
        }
    };
    let now = Utc::now();
    let warnings = rules::lint(&set, now);
    for w in &warnings {
        println!("{w}");
    }
    if verbose {
        for c in &set.campaigns {
            println!(
                "campaign `{}` ({} in {}), next fire times:",
                c.name, c.schedule, c.timezone
            );
            for t in c.next_fires(now, 5) {
                println!("  {}", t.format("%a %Y-%m-%d %H:%M:%S %Z"));
            }
        }
    }
    let summary = format!(
        "{} rules, {} campaigns in {} files",
        set.rules.len(),
        set.campaigns.len(),
        set.files.len()
    );
    if warnings.is_empty() {
        println!("ok: {summary}");
        ExitCode::SUCCESS
    } else if deny_warnings {
        eprintln!(
            "{} warning{} (denied)",
            warnings.len(),
            if warnings.len() == 1 { "" } else { "s" }
        );
        ExitCode::FAILURE
    } else {
        println!(
            "ok with {} warning{}: {summary}",
            warnings.len(),
            if warnings.len() == 1 { "" } else { "s" }
        );
        ExitCode::SUCCESS
    }
}
