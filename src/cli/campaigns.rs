//! `riposte campaigns`: what is scheduled, what a run would send, and a run now.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Subcommand};

use super::DbArgs;

use crate::campaigns::{self, Trigger};
use crate::rules::{self, RuleSet};

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
    #[command(flatten)]
    channels: super::ChannelsArg,
    /// Whapi.Cloud gate, asked for a group's members (`group_members` audiences).
    #[arg(
        long,
        env = "WHAPI_URL",
        default_value = "https://gate.whapi.cloud",
        global = true
    )]
    whapi_url: String,
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
    let channels = args.channels.load()?;
    let client = crate::whapi::Client::for_channels(
        &args.whapi_url,
        channels.read_tokens().0,
        false,
        std::time::Duration::from_secs(30),
    )?;
    let groups: Option<&dyn campaigns::GroupDirectory> = Some(&client);
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
                let members = match campaigns::members(c, &*store, groups, now).await {
                    Ok(members) => members,
                    Err(err) => {
                        eprintln!("error: {err}");
                        return Ok(ExitCode::FAILURE);
                    }
                };
                let planned = campaigns::plan(c, &set.templates, &store.contacts().await?, &members, now);
                let mut recipients: Vec<&str> = planned.jobs.iter().filter_map(|j| j.contact.as_deref()).collect();
                recipients.dedup();
                println!("campaign {} ({} in {}, at most {})", c.name, c.schedule, c.timezone, c.rate);
                println!("audience: {} recipients, {} left out (opted out, excluded or not a number)", recipients.len().max(usize::from(c.content.is_some()) * planned.jobs.len()), planned.skipped);
                if c.audience.group_members.is_some() {
                    println!("affected: {}", if recipients.is_empty() { "nobody".to_owned() } else { recipients.join(", ") });
                }
                if let Some(last) = planned.jobs.last() {
                    println!("a run takes about {}s at this rate", (last.run_at - now).num_seconds());
                }
                for job in planned.jobs.iter().take(*show) {
                    let who = job.contact.as_deref().map(|c| format!("{c}: ")).unwrap_or_default();
                    match &job.dead {
                        Some(reason) => println!("  ! {who}{reason}"),
                        None => println!("  {who}{}: {}", job.action, super::simulate::describe(&job.work)),
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
                match campaigns::launch(&*store, &set, c, now, Trigger::Manual, now, groups).await? {
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
