//! `riposte simulate --steps FILE`: the steps of a rule test without expectations, on the same
//! bench as `riposte test` (virtual clock, real intake, scheduler and delivery, nothing sent),
//! printing at each step the time, what was done, the follow-ups waiting with their due times
//! and the scripted answers in force.

use std::collections::HashSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};

use super::spec::{StepsFile, TestCase};
use super::{Done, bench};
use crate::clock::Clock;
use crate::config::{Located, SourceFile};
use crate::store::JobQuery;
use crate::vocab::JobStatus;

/// Runs the steps of `path` against `rules` from `at` (else the file's `at`), and returns
/// what happened as text.
pub async fn run_steps(
    path: &Path,
    rules: &[PathBuf],
    at: Option<DateTime<Utc>>,
) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let source = SourceFile {
        path: path.to_owned(),
        text,
        root: None,
    };
    let file: StepsFile = crate::config::parse_yaml(&source).map_err(|d| d.to_string())?;
    let start = at
        .map(|t| Located::unplaced(t.to_rfc3339_opts(SecondsFormat::Secs, true)))
        .or(file.at);
    let from = if at.is_some() {
        "--at"
    } else if start.is_some() {
        "the file's `at`"
    } else {
        "the default start; give --at to choose"
    };
    let case = TestCase {
        name: "simulation".into(),
        at: start,
        rules: Vec::new(),
        channels: None,
        contacts: file.contacts,
        model: file.model,
        groups: file.groups,
        steps: Vec::new(),
    };
    let mut bench = bench(path, &case, Some(rules)).await?;
    bench.settle().await?;
    let mut out = format!("starting at {} ({from})\n", time(bench.clock.now()));
    let mut shown = HashSet::new();
    for (i, step) in file.steps.iter().enumerate() {
        let where_ = format!("step {} ({}:{})", i + 1, path.display(), step.line);
        let s = &step.value;
        if s.expect.is_some() {
            return Err(format!(
                "{where_}: `expect` belongs in a rule test (`riposte test`); simulate shows what happens"
            ));
        }
        for (name, answer) in s.lookups.iter().flatten() {
            bench.lookups.set(name, Ok(answer.clone()));
            let _ = writeln!(
                out,
                "{where_}: lookup `{name}` answers (scripted): {answer}"
            );
        }
        for (name, error) in s.failing_lookups.iter().flatten() {
            bench.lookups.set(name, Err(error.clone()));
            let _ = writeln!(out, "{where_}: lookup `{name}` fails (scripted): {error}");
        }
        if let Some(event) = &s.event {
            let _ = writeln!(out, "{where_} at {}: event", time(bench.clock.now()));
            bench
                .feed(path, event, i as u64 + 1)
                .await
                .map_err(|e| format!("{where_}: {e}"))?;
        } else if let Some(by) = &s.advance {
            let step = crate::duration::parse(&by.value).map_err(|e| format!("{where_}: {e}"))?;
            let target = bench.clock.now() + chrono::Duration::from_std(step).unwrap_or_default();
            let _ = writeln!(out, "{where_}: advance {} to {}", by.value, time(target));
            bench
                .advance(target)
                .await
                .map_err(|e| format!("{where_}: {e}"))?;
        } else {
            continue;
        }
        report(&mut bench, &mut shown, &mut out).await?;
    }
    Ok(out)
}

/// What the last step did, and the follow-ups it left waiting.
async fn report(
    bench: &mut super::Bench,
    shown: &mut HashSet<i64>,
    out: &mut String,
) -> Result<(), String> {
    let done: Vec<Done> = std::mem::take(
        &mut *bench
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    if done.is_empty() {
        out.push_str("  nothing done\n");
    }
    for d in &done {
        let _ = writeln!(out, "  done: {}", d.to_value());
    }
    for failure in std::mem::take(&mut bench.failed) {
        let _ = writeln!(out, "  failed: {failure}");
    }
    let query = JobQuery {
        status: Some(JobStatus::Pending),
        limit: 1000,
        ..JobQuery::default()
    };
    let mut waiting = bench.store.jobs(query).await.map_err(|e| e.to_string())?;
    waiting.sort_by_key(|j| j.run_at);
    for job in waiting.iter().filter(|j| j.run_at > bench.clock.now()) {
        if shown.insert(job.id.0) {
            let key = job
                .key
                .as_ref()
                .map(|k| format!(" (key {k:?})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  follow-up due {}{key}: {}",
                time(job.run_at),
                Done::from_work(&job.action, &job.work).to_value()
            );
        }
    }
    Ok(())
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
