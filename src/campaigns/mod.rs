//! Campaigns: messages sent on a cron schedule to an audience, paced, once per fire time.
//!
//! This module owns the schedule arithmetic (next fire times in a zone, what is due after
//! downtime) and the planning of a run into one durable job per recipient. The `scheduler`
//! worker decides when to call it.

pub mod cell;
mod members;
mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;

mod words;

pub use members::{GroupDirectory, Member, PlanError, members};
pub use run::{OPTED_OUT, PlannedRun, launch, normalise, plan};
pub use words::in_words;

use crate::actions::Content;
use crate::config::CatchUp;

/// A recipient from an audience file: the phone and the other columns as attributes.
pub type Row = (String, BTreeMap<String, String>);

/// Who a campaign goes to.
#[derive(Debug, Clone, Default)]
pub struct Audience {
    /// Every known contact.
    pub everyone: bool,
    /// Contacts with all of, any of and none of these tags (when given).
    pub tags: Option<(Vec<String>, Vec<String>, Vec<String>)>,
    pub numbers: Vec<String>,
    /// Rows of the CSV file: phone and extra columns as attributes.
    pub rows: Vec<Row>,
    pub file: Option<PathBuf>,
    /// Groups or channels that get the message once.
    pub chats: Vec<String>,
    /// A compiled `if:` that each recipient must meet.
    pub filter: Option<String>,
    /// A group's members, listed when a run is planned.
    pub group_members: Option<GroupMembers>,
}

/// A group's members as an audience: who is in it when a run is planned, less its admins
/// (unless asked otherwise) and, with `inactive_for`, less who posted or joined within it.
#[derive(Debug, Clone)]
pub struct GroupMembers {
    pub group: String,
    pub inactive_for: Option<chrono::Duration>,
    pub except_admins: bool,
}

/// A compiled campaign.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub name: String,
    pub description: Option<String>,
    pub file: PathBuf,
    pub line: u32,
    pub schedule: String,
    pub cron: Cron,
    pub timezone: Tz,
    pub audience: Audience,
    /// The message of a `send:` campaign (`None` for a `then:` one).
    pub content: Option<Content>,
    /// The actions of a `then:` campaign, done for each recipient.
    pub then: Vec<crate::actions::Step>,
    /// Mentions (and what else a message adds) of the campaign's message.
    pub extras: Option<Box<crate::actions::Extras>>,
    /// Time between two sends of a run.
    pub interval: Duration,
    pub rate: String,
    pub catch_up: CatchUp,
    pub exclude: Vec<String>,
    pub enabled: bool,
    /// The channel the campaign sends through (`None`: the default channel).
    pub channel: Option<String>,
    /// Where `channel` is written.
    pub channel_ref: Option<crate::rules::ChannelRef>,
    /// Hash of the campaign's text, to report what a reload changed.
    pub fingerprint: u64,
}

/// How late a fire time may be handled and still count as on time, not missed.
pub const ON_TIME: Duration = Duration::seconds(120);

/// Why a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    CatchUp,
    Manual,
}

impl Trigger {
    /// The name recorded with the run.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::CatchUp => "catch_up",
            Self::Manual => "manual",
        }
    }
}

impl Campaign {
    /// The next `n` fire times after `after`, in the campaign's zone.
    pub fn next_fires(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Tz>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = after.with_timezone(&self.timezone);
        while out.len() < n {
            match self.cron.find_next_occurrence(&cursor, false) {
                Ok(next) => {
                    cursor = next;
                    out.push(next);
                }
                Err(_) => break,
            }
        }
        out
    }

    /// The fire time to run now, if any, given that fire times up to `checked` are handled.
    /// A fire time within [`ON_TIME`] of `now` runs; older ones were missed while Riposte was
    /// down, and only the most recent of them runs, once, with `catch_up: once`.
    pub fn due(
        &self,
        checked: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, Trigger)> {
        let local_now = now.with_timezone(&self.timezone);
        let latest = self
            .cron
            .find_previous_occurrence(&local_now, true)
            .ok()?
            .with_timezone(&Utc);
        if latest <= checked {
            return None;
        }
        if now - latest <= ON_TIME {
            return Some((latest, Trigger::Schedule));
        }
        match self.catch_up {
            CatchUp::Once => Some((latest, Trigger::CatchUp)),
            CatchUp::Skip => None,
        }
    }
}

/// Parses a rate such as `30/min`, `1/s` or `500/h` into the time between two sends.
pub fn parse_rate(text: &str) -> Result<Duration, String> {
    let (count, per) = rate_parts(text)?;
    if count == 0 {
        return Err(format!(
            "rate `{text}` sends nothing; use `enabled: false` to pause a campaign"
        ));
    }
    Ok(per / count as i32)
}

/// Splits a rate such as `30/min` into its count and its period.
pub fn rate_parts(text: &str) -> Result<(u32, Duration), String> {
    let bad = || format!("invalid rate `{text}`, expected e.g. `30/min`, `1/s` or `500/h`");
    let (count, unit) = text.split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::seconds(1),
        "m" | "min" | "minute" => Duration::minutes(1),
        "h" | "hour" => Duration::hours(1),
        "d" | "day" => Duration::days(1),
        _ => return Err(bad()),
    };
    Ok((count, per))
}

/// Parses a 5-field cron (or 6 with seconds first).
pub fn parse_schedule(text: &str) -> Result<Cron, String> {
    let fields = text.split_whitespace().count();
    if !(5..=6).contains(&fields) && !text.trim().starts_with('@') {
        return Err(format!(
            "cron schedule `{text}` has {fields} fields; write 5 (minute hour day month weekday) or 6 with seconds first"
        ));
    }
    if let Some(hint) = named_field(text) {
        return Err(format!("invalid cron schedule `{text}`: {hint}"));
    }
    text.parse::<Cron>().map_err(|e| {
        let detail = e.to_string();
        if detail.contains("out of bounds") {
            format!(
                "invalid cron schedule `{text}`: a field is out of range (second 0-59, minute 0-59, \
                 hour 0-23, day 1-31, month 1-12, weekday 0-7)"
            )
        } else {
            format!("invalid cron schedule `{text}`: {}", detail.trim_end_matches('.'))
        }
    })
}

/// A day or month written out (`Monday`, `Tues`, `January`), which cron does not read: what
/// to write instead. Cron knows only the three-letter names and the numbers.
fn named_field(text: &str) -> Option<String> {
    let words = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '-' | '/'))
        .filter(|w| w.len() > 3 && w.chars().all(|c| c.is_ascii_alphabetic()));
    for word in words {
        let lower = word.to_ascii_lowercase();
        let english = crate::templates::locales::DEFAULT;
        let named = |names: &[&str]| {
            names
                .iter()
                .position(|n| n.to_ascii_lowercase().starts_with(&lower))
        };
        if let Some(monday_first) = named(&english.days) {
            let short = english.days[monday_first][..3].to_ascii_uppercase();
            // Cron counts the days from Sunday, 0.
            let day = (monday_first + 1) % 7;
            return Some(format!(
                "`{word}` is not a name cron knows; write the day as {short} or {day}"
            ));
        }
        if let Some(month) = named(&english.months) {
            let short = english.months[month][..3].to_ascii_uppercase();
            return Some(format!(
                "`{word}` is not a name cron knows; write the month as {short} or {}",
                month + 1
            ));
        }
    }
    None
}

/// Reads an audience CSV: a `phone` column and any others, which become attributes. A cell
/// `contacts export` quoted against spreadsheet formulas reads as the value it stands for.
pub fn read_csv(path: &Path) -> Result<Vec<Row>, String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read audience file `{}`: {e}", path.display()))?;
    read_csv_from(&format!("`{}`", path.display()), file)
}

/// Reads CSV text as [`read_csv`] reads a file; `name` says where it came from in errors.
pub fn read_csv_from(name: &str, input: impl std::io::Read) -> Result<Vec<Row>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("{name}: {e}"))?
        .iter()
        .map(|h| cell::restore(h).to_owned())
        .collect();
    let Some(phone_col) = headers.iter().position(|h| h.eq_ignore_ascii_case("phone")) else {
        return Err(format!(
            "{name} has no `phone` column (columns: {})",
            headers.join(", ")
        ));
    };
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{name} row {}: {e}", n + 2))?;
        let phone = cell::restore(record.get(phone_col).unwrap_or_default()).to_owned();
        let attrs = headers
            .iter()
            .zip(record.iter())
            .enumerate()
            .filter(|(i, (_, value))| *i != phone_col && !value.is_empty())
            .map(|(_, (k, v))| (k.clone(), cell::restore(v).to_owned()))
            .collect();
        rows.push((phone, attrs));
    }
    Ok(rows)
}

/// What importing contacts from CSV rows changes: the changes, the contacts as they will
/// read, and the rows that are not phone numbers.
#[derive(Debug, Default)]
pub struct ContactImport {
    pub ops: Vec<crate::store::Op>,
    pub contacts: Vec<crate::vocab::Contact>,
    pub skipped: Vec<String>,
}

/// The import of `rows` (a `tags` column holds `a;b`; the other columns are attributes), each
/// contact also tagged `tag` when given.
pub fn contact_import(rows: Vec<Row>, tag: Option<&str>) -> ContactImport {
    use crate::vocab::{ContactChange, Work};
    let mut import = ContactImport::default();
    for (raw, mut attrs) in rows {
        let Some(phone) = normalise(&raw) else {
            import.skipped.push(raw);
            continue;
        };
        let tags: std::collections::BTreeSet<String> = attrs
            .remove("tags")
            .unwrap_or_default()
            .split([';', '|'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .chain(tag)
            .map(str::to_owned)
            .collect();
        for t in &tags {
            import
                .ops
                .push(crate::store::Op::Apply(Work::Contact(ContactChange::Tag {
                    phone: phone.clone(),
                    tag: t.clone(),
                })));
        }
        for (key, value) in &attrs {
            import
                .ops
                .push(crate::store::Op::Apply(Work::Contact(ContactChange::Set {
                    phone: phone.clone(),
                    key: key.clone(),
                    value: value.clone(),
                })));
        }
        import.contacts.push(crate::vocab::Contact {
            phone,
            tags,
            attrs: attrs.into_iter().collect(),
        });
    }
    import
}

#[cfg(test)]
mod tests;
