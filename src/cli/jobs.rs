//! `riposte jobs`: follow-ups, pending sends and dead letters, straight from the database (a
//! running server picks up a retried job within a second).

use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Subcommand};

use super::DbArgs;
use crate::vocab::{Job, JobId, JobStatus, Work};

#[derive(Debug, Args)]
pub(super) struct JobsArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    channels: super::ChannelsArg,
    #[command(subcommand)]
    command: JobsCommand,
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs with this status: pending, sending, done, dead, cancelled, skipped.
        #[arg(long, value_parser = parse_status)]
        status: Option<JobStatus>,
        /// Only jobs of this channel (a name from the channels file).
        #[arg(long)]
        channel: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Put a dead, cancelled or skipped job back in the queue.
    Retry { id: i64 },
    /// Cancel a pending job, or drop a dead one.
    Cancel { id: i64 },
    /// Everything about one job, as JSON: the call it makes, its attempts and last error.
    Show { id: i64 },
}

fn parse_status(text: &str) -> Result<JobStatus, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        format!(
            "unknown status `{text}`, expected pending, sending, done, dead, cancelled or skipped"
        )
    })
}

/// One line per job: id, status, when, rule and what it does.
pub(crate) fn describe(job: &Job) -> String {
    let channel = job
        .work
        .channel()
        .map(|c| format!(" via {c}"))
        .unwrap_or_default();
    let what = match &job.work {
        Work::Call(r) => format!("{} {}", r.method, r.path),
        Work::Contact(c) => format!("{c:?}"),
        Work::Cancel { key } => format!("cancel {key}"),
        Work::Handoff(h) => format!("{h:?}"),
        Work::Ai(call) => format!("ask the model, answer in {}", call.chat),
        Work::Lookup(call) => format!(
            "look up {} ({} {}), then go on with rule {}",
            call.name, call.request.method, call.request.path, call.rule
        ),
    };
    let error = job
        .last_error
        .as_deref()
        .map(|e| format!("  ({e})"))
        .unwrap_or_default();
    let key = job
        .key
        .as_deref()
        .map(|k| format!(" key={k}"))
        .unwrap_or_default();
    format!(
        "{:>6}  {:<9} {}  {:<10} {} {}{key}{channel}  {what}{error}",
        job.id,
        job.status.as_str(),
        job.run_at.format("%Y-%m-%d %H:%M:%S"),
        job.kind.as_str(),
        job.rule,
        job.action
    )
}

pub(super) fn run(args: JobsArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    let store = args.db.open(&runtime)?;
    runtime.block_on(async {
        match args.command {
            JobsCommand::List {
                status,
                channel,
                limit,
            } => {
                let channel = match channel {
                    Some(name) => Some(super::ChannelsArg::known(&args.channels.load()?, &name)?),
                    None => None,
                };
                let query = crate::store::JobQuery {
                    status,
                    channel,
                    limit,
                };
                for job in store.jobs(query).await? {
                    println!("{}", describe(&job));
                }
                Ok(ExitCode::SUCCESS)
            }
            JobsCommand::Retry { id } => {
                if store.retry_job(JobId(id), Utc::now()).await? {
                    println!("job {id} is queued again");
                    Ok(ExitCode::SUCCESS)
                } else {
                    eprintln!("error: no dead, cancelled or skipped job {id}");
                    Ok(ExitCode::FAILURE)
                }
            }
            JobsCommand::Show { id } => match store.job(JobId(id)).await? {
                Some(job) => {
                    println!("{}", serde_json::to_string_pretty(&job)?);
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("error: no job {id}");
                    Ok(ExitCode::FAILURE)
                }
            },
            JobsCommand::Cancel { id } => {
                if store.cancel_job(JobId(id), Utc::now()).await? {
                    println!("job {id} is cancelled");
                    Ok(ExitCode::SUCCESS)
                } else {
                    eprintln!("error: no pending or dead job {id}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    })
}
