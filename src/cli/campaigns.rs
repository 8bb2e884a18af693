//! `riposte campaigns`: what is scheduled, what a run would send, and a run now.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Subcommand};

use super::DbArgs;

use crate::campaigns::{self, Trigger};
use crate::rules::{self, RuleSet};
use crate::vocab::{Payload, Work};

#[derive(Debug, Args)]
pub(super) struct CampaignsArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Rules folder or files.
    #[arg(long, env = "RIPOSTE_RULES", default_value = "./rules", global = true)]
    rules: Vec<PathBuf>,
    /// Default time zone (an IANA name).
    #[arg(long, env = "RIPOSTE_TIMEZONE", default_value = "UTC", global = true, value_parser = super::timezone_arg)]
    timezone: chrono_tz::Tz,
    #[command(subcommand)]
    command: CampaignsCommand,
}

#[derive(Debug, Subcommand)]
enum CampaignsCommand {
    /// Every campaign with its next fire time and last run.
    List,
    /// Audience size, the first rendered messages and the next five fire times.
    Preview {
        name: String,
        /// Messages to show.
        #[arg(long, default_value_t = 3)]
        show: usize,
    },
    /// Plan a run now; a running server sends it at the campaign's rate.
    Run { name: String },
}

fn load(args: &CampaignsArgs) -> anyhow::Result<RuleSet> {
    rules::load_in(&args.rules, args.timezone).map_err(|diagnostics| {
        let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the rules do not compile:\n{}", lines.join("\n"))
    })
}

pub(super) fn run(args: CampaignsArgs) -> anyhow::Result<ExitCode> {
    let set = load(&args)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let store = args.db.open(&runtime)?;
    let now = Utc::now();
    runtime.block_on(async {
        match &args.command {
            CampaignsCommand::List => {
                for c in &set.campaigns {
                    let next = c.next_fires(now, 1).first().map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
                    let last = store.campaign_runs(Some(&c.name), 1).await?;
                    let last = last.first().map_or_else(
                        || "no run yet".to_owned(),
                        |r| format!("last run {}: {} planned, {} sent, {} delivered, {} read, {} replied, {} skipped, {} failed", r.started_at.format("%Y-%m-%d %H:%M"), r.planned, r.sent, r.delivered, r.read, r.replied, r.skipped, r.failed),
                    );
                    let state = if c.enabled { "" } else { " (disabled)" };
                    println!("{}{state}  `{}` {}  next {next}  {last}", c.name, c.schedule, c.timezone);
                }
                Ok(ExitCode::SUCCESS)
            }
            CampaignsCommand::Preview { name, show } => {
                let Some(c) = set.campaign(name) else {
                    eprintln!("error: no campaign `{name}`");
                    return Ok(ExitCode::FAILURE);
                };
                let planned = campaigns::plan(c, &set.templates, &store.contacts().await?, now);
                println!("campaign {} ({} in {}, at most {})", c.name, c.schedule, c.timezone, c.rate);
                println!("audience: {} recipients, {} left out (opted out, excluded or not a number)", planned.jobs.len(), planned.skipped);
                if let Some(last) = planned.jobs.last() {
                    println!("a run takes about {}s at this rate", (last.run_at - now).num_seconds());
                }
                for job in planned.jobs.iter().take(*show) {
                    match (&job.work, &job.dead) {
                        (_, Some(reason)) => println!("  ! {reason}"),
                        (Work::Call(r), None) => {
                            let body = match &r.body {
                                Some(Payload::Json(v)) => v.to_string(),
                                Some(Payload::Text(t)) => t.clone(),
                                None => String::new(),
                            };
                            println!("  {} {body}", r.path);
                        }
                        _ => {}
                    }
                }
                println!("next five fire times ({}):", c.timezone);
                for t in c.next_fires(now, 5) {
                    println!("  {}", t.format("%a %Y-%m-%d %H:%M:%S %Z"));
                }
                Ok(ExitCode::SUCCESS)
            }
            CampaignsCommand::Run { name } => {
                let Some(c) = set.campaign(name) else {
                    eprintln!("error: no campaign `{name}`");
                    return Ok(ExitCode::FAILURE);
                };
                let started = std::time::Instant::now();
                match campaigns::launch(&*store, &set, c, now, Trigger::Manual, now).await? {
                    Some((run, planned, skipped)) => {
                        let took = started.elapsed().as_secs_f64();
                        println!("run {run}: {planned} messages planned in {took:.2} s, {skipped} left out; a running server sends them");
                        Ok(ExitCode::SUCCESS)
                    }
                    None => {
                        eprintln!("error: a run of `{name}` at this instant exists already");
                        Ok(ExitCode::FAILURE)
                    }
                }
            }
        }
    })
}
