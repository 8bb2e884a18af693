//! `riposte contacts`: tags and attributes in and out of the database, and number checks.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::{Args, Subcommand};

use super::DbArgs;
use crate::campaigns::cell::neutralise;
use crate::campaigns::read_csv;
use crate::store::{Op, Store};
use crate::verify::{self, Pace, Progress};
use crate::vocab::{ContactChange, Work};
use crate::whapi::Client;

#[derive(Debug, Args)]
pub(super) struct ContactsArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    channels: super::ChannelsArg,
    #[command(subcommand)]
    command: ContactsCommand,
}

#[derive(Debug, Subcommand)]
enum ContactsCommand {
    /// Import a CSV: a `phone` column, an optional `tags` column (`a;b`), other columns as attributes.
    Import {
        file: PathBuf,
        /// Also give every imported contact this tag.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Print every contact as CSV: phone, tags, then one column per attribute. A cell that
    /// starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'` so a
    /// spreadsheet shows it as text instead of running it; `import` takes the `'` away again.
    Export,
    /// Check which numbers of a CSV (a `phone` column) exist on WhatsApp; resumable.
    Verify {
        file: PathBuf,
        /// Where to write the numbers with their `status` (valid, invalid) and `wa_id`.
        #[arg(long)]
        out: PathBuf,
        /// Numbers per request.
        #[arg(long, default_value_t = 5)]
        batch: usize,
        /// Pause between requests.
        #[arg(long, default_value = "10s", value_parser = super::duration_arg)]
        every: Duration,
        /// Ask WhatsApp again instead of Whapi's cache.
        #[arg(long)]
        force: bool,
        /// Import the valid numbers as contacts with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Check through this channel (a name from the channels file); default the
        /// default channel.
        #[arg(long)]
        channel: Option<String>,
        /// Whapi.Cloud gate.
        #[arg(long, env = "WHAPI_URL", default_value = "https://gate.whapi.cloud")]
        whapi_url: String,
    },
}

fn tag_ops(phones: impl IntoIterator<Item = String>, tag: &str) -> Vec<Op> {
    phones
        .into_iter()
        .map(|phone| {
            Op::Apply(Work::Contact(ContactChange::Tag {
                phone,
                tag: tag.to_owned(),
            }))
        })
        .collect()
}

pub(super) fn run(args: ContactsArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    let store = args.db.open(&runtime)?;
    runtime.block_on(async {
        match args.command {
            ContactsCommand::Import { file, tag } => import(&*store, &file, tag.as_deref()).await,
            ContactsCommand::Export => export(&*store).await,
            ContactsCommand::Verify {
                file,
                out,
                batch,
                every,
                force,
                tag,
                channel,
                whapi_url,
            } => {
                let channels = args.channels.load()?;
                if let Some(name) = &channel {
                    super::ChannelsArg::known(&channels, name)?;
                }
                let client = Client::for_channels(
                    &whapi_url,
                    channels.read_tokens().0,
                    false,
                    Duration::from_secs(30),
                )?;
                let pace = Pace {
                    batch,
                    every,
                    force,
                    channel,
                };
                check_numbers(&*store, &client, &file, &out, pace, tag.as_deref()).await
            }
        }
    })
}

async fn import(store: &dyn Store, file: &Path, tag: Option<&str>) -> anyhow::Result<ExitCode> {
    let rows = read_csv(file).map_err(anyhow::Error::msg)?;
    let import = crate::campaigns::contact_import(rows, tag);
    for raw in &import.skipped {
        eprintln!("skipped `{raw}`: not a phone number");
    }
    for chunk in import.ops.chunks(5000) {
        store.apply(chunk, Utc::now()).await?;
    }
    println!("imported {} contacts", import.contacts.len());
    Ok(ExitCode::SUCCESS)
}

/// Writes one CSV row. Attributes, tags and ids hold what people and other systems wrote:
/// a spreadsheet opening the file must show them, not run them.
fn write_cells<W: std::io::Write>(
    out: &mut csv::Writer<W>,
    cells: &[impl AsRef<str>],
) -> csv::Result<()> {
    let cells: Vec<Cow<'_, str>> = cells.iter().map(|c| neutralise(c.as_ref())).collect();
    out.write_record(cells.iter().map(|c| c.as_bytes()))
}

async fn export(store: &dyn Store) -> anyhow::Result<ExitCode> {
    let contacts = store.contacts().await?;
    let keys: BTreeSet<&String> = contacts.iter().flat_map(|c| c.attrs.keys()).collect();
    let mut out = csv::Writer::from_writer(std::io::stdout());
    let mut header = vec!["phone", "tags"];
    header.extend(keys.iter().map(|k| k.as_str()));
    write_cells(&mut out, &header)?;
    for c in &contacts {
        let tags = c.tags.iter().cloned().collect::<Vec<_>>().join(";");
        let mut row = vec![c.phone.clone(), tags];
        row.extend(
            keys.iter()
                .map(|k| c.attrs.get(*k).cloned().unwrap_or_default()),
        );
        write_cells(&mut out, &row)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn show(p: Progress) {
    let width = 30;
    let filled = (p.done * width).checked_div(p.total).unwrap_or(width);
    let line = format!(
        "[{}{}] {}/{} checked, {} valid",
        "#".repeat(filled),
        ".".repeat(width - filled),
        p.done,
        p.total,
        p.valid
    );
    if std::io::stderr().is_terminal() {
        eprint!("\r{line}");
    } else {
        eprintln!("{line}");
    }
}

async fn check_numbers(
    store: &dyn Store,
    client: &Client,
    file: &Path,
    out: &Path,
    pace: Pace,
    tag: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let rows = read_csv(file).map_err(anyhow::Error::msg)?;
    let phones: Vec<String> = rows
        .iter()
        .filter_map(|(p, _)| crate::campaigns::normalise(p))
        .collect();
    let skipped = rows.len() - phones.len();
    if skipped > 0 {
        eprintln!("{skipped} rows are not phone numbers and are not checked");
    }
    let result = verify::verify(store, client, &phones, pace, |p| {
        if p.resumed > 0 && p.done == p.resumed {
            eprintln!(
                "resuming: {} of {} numbers were checked before",
                p.resumed, p.total
            );
        }
        show(p);
    })
    .await;
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let checked = result.context("checking stopped; run the same command again to resume")?;
    let mut writer =
        csv::Writer::from_path(out).with_context(|| format!("cannot write `{}`", out.display()))?;
    writer.write_record(["phone", "status", "wa_id"])?;
    for c in &checked {
        write_cells(
            &mut writer,
            &[
                c.phone.as_str(),
                c.status.as_str(),
                c.wa_id.as_deref().unwrap_or(""),
            ],
        )?;
    }
    writer.flush()?;
    let valid: Vec<String> = checked
        .iter()
        .filter(|c| c.status == "valid")
        .map(|c| c.wa_id.clone().unwrap_or_else(|| c.phone.clone()))
        .collect();
    println!(
        "{} numbers checked: {} valid, {} not on WhatsApp; written to {}",
        checked.len(),
        valid.len(),
        checked.len() - valid.len(),
        out.display()
    );
    if let Some(tag) = tag {
        store
            .apply(&tag_ops(valid.clone(), tag), Utc::now())
            .await?;
        println!("{} valid numbers imported with tag `{tag}`", valid.len());
    }
    Ok(ExitCode::SUCCESS)
}
