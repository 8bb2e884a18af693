//! Rules: the compiled, immutable rule set and how it is loaded from a folder.
//!
//! `config` holds what authors wrote; this module turns it into [`RuleSet`] (compiled regexes,
//! parsed templates, an index by event kind) and reports problems as [`Diagnostic`]s. All of
//! that compiling is in `compile`, the actions' included: `actions` holds their compiled forms
//! and renders them, so it needs neither `config` nor a compiler.

mod compile;
mod condition;
mod diagnostic;
mod keywords;
mod lint;
mod literal_gates;
mod literals;
mod prefilter;
mod reply_id;
mod reuse;
mod text_regex;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use compile::{compile, compile_after, compile_in};
pub use condition::{Block, Condition, ExprEval, Glob, Input, Miss};
pub use diagnostic::{Diagnostic, Severity, did_you_mean};
pub use keywords::fold;
pub use lint::lint;

use crate::actions::Step;
use crate::calendar::Calendar;
use crate::campaigns::Campaign;
use crate::config::SourceFile;
use crate::events::EventKind;
use crate::templates::Templates;

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub description: Option<String>,
    /// Shared by every rule of the file.
    pub file: Arc<std::path::Path>,
    pub line: u32,
    /// The event kinds the rule listens to (`message` unless `when.event` says otherwise).
    pub events: Vec<EventKind>,
    pub when: Block,
    pub actions: Vec<Step>,
    pub stop: bool,
    pub enabled: bool,
    pub shadow: bool,
    /// Fires at most once per chat in this window.
    pub once_per: Option<OncePer>,
    /// Still fires while a human has the chat.
    pub during_handoff: bool,
    /// Zone of `at:` times that give none.
    pub timezone: chrono_tz::Tz,
    /// Hash of the rule's text, to report what a reload changed.
    pub fingerprint: u64,
    /// Template variables the rule uses (`data`, `message`, ...), for lint.
    pub uses: Arc<std::collections::BTreeSet<String>>,
    /// The channels the rule names, with where.
    pub channels: Vec<ChannelRef>,
}

/// A channel named in a rule or campaign, and where, so a name the channels file does not
/// have is reported at its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRef {
    pub name: String,
    pub line: u32,
    pub column: u32,
}

/// How often a `once_per` rule may fire in one chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OncePer {
    /// Once within a rolling window (`12h`).
    Within(chrono::Duration),
    /// Once per calendar day in the rule's time zone (`day`).
    Day,
    /// Once per calendar week, Monday to Sunday, in the rule's time zone (`week`).
    Week,
}

impl OncePer {
    /// When a rule that fired at `last` may fire again in the same chat.
    pub fn next_after(
        self,
        last: chrono::DateTime<chrono::Utc>,
        zone: chrono_tz::Tz,
    ) -> chrono::DateTime<chrono::Utc> {
        use chrono::{Datelike, TimeZone};
        let days = match self {
            Self::Within(window) => return last + window,
            Self::Day => 1,
            Self::Week => 7 - i64::from(last.with_timezone(&zone).weekday().num_days_from_monday()),
        };
        let date = last.with_timezone(&zone).date_naive() + chrono::Duration::days(days);
        let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
        // Where a clock change skips midnight, the day starts at the first time that exists.
        (0..4)
            .find_map(|hour| {
                zone.from_local_datetime(&(midnight + chrono::Duration::hours(hour)))
                    .earliest()
            })
            .map_or(last + chrono::Duration::days(days), |t| {
                t.with_timezone(&chrono::Utc)
            })
    }
}

/// An immutable, compiled set of rules; shared by every event processed while it is current.
#[derive(Debug)]
pub struct RuleSet {
    /// Shared with the next set compiled, for the rules that did not change.
    pub rules: Vec<Arc<Rule>>,
    pub campaigns: Vec<Campaign>,
    pub calendars: HashMap<String, Arc<Calendar>>,
    pub templates: Templates,
    /// The default time zone the set was compiled with.
    pub timezone: chrono_tz::Tz,
    /// Hosts a webhook may call when its URL's host comes from event data.
    pub webhook_allow: Vec<Glob>,
    /// Rule indexes per event kind, in rule order, so an event only meets rules for its kind.
    by_kind: HashMap<EventKind, Vec<usize>>,
    prefilter: prefilter::Prefilter,
    pub files: Vec<PathBuf>,
    /// Content hash of the files the set was compiled from.
    pub version: String,
    /// How conversations are remembered; `None` when no rule uses `ai_reply`.
    pub memory: Option<crate::ai::MemoryPolicy>,
    /// The rules the next compile may take as they are, by their text.
    kept: HashMap<compile::RuleKey, compile::KeptRule>,
    /// Custom events declared with their fields (`events:`), by name.
    pub declared: compile::Declared,
}

/// Conversations are remembered only while some rule answers with a model.
fn memory_policy(rules: &[Arc<Rule>]) -> Option<crate::ai::MemoryPolicy> {
    let ais: Vec<&crate::actions::AiReply> = rules
        .iter()
        .flat_map(|r| &r.actions)
        .filter_map(|step| match &step.action {
            crate::actions::Action::AiReply(ai) => Some(&**ai),
            _ => None,
        })
        .collect();
    let keep = ais.iter().map(|ai| ai.forget_after).max()?;
    Some(crate::ai::MemoryPolicy {
        agent_messages: ais.iter().any(|ai| ai.agent_messages),
        keep,
    })
}

impl RuleSet {
    /// Whether some rule listens to events of this kind.
    pub fn listens_to(&self, kind: &EventKind) -> bool {
        self.by_kind.contains_key(kind)
    }

    pub(crate) fn new(
        rules: Vec<Arc<Rule>>,
        campaigns: Vec<Campaign>,
        calendars: HashMap<String, Arc<Calendar>>,
        templates: Templates,
        files: &[SourceFile],
        timezone: chrono_tz::Tz,
    ) -> Self {
        let mut by_kind: HashMap<EventKind, Vec<usize>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            for kind in &rule.events {
                let list = by_kind.entry(kind.clone()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        let memory = memory_policy(&rules);
        let mut hash = Sha256::new();
        for f in files {
            hash.update(f.path.to_string_lossy().as_bytes());
            hash.update([0]);
            hash.update(f.text.as_bytes());
            hash.update([0]);
        }
        // Knowledge files are part of what the rules say.
        for step in rules.iter().flat_map(|r| &r.actions) {
            if let crate::actions::Action::AiReply(ai) = &step.action {
                hash.update(ai.knowledge.as_bytes());
                hash.update([0]);
            }
        }
        let version = hash.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            prefilter: prefilter::Prefilter::new(&rules, &by_kind),
            rules,
            campaigns,
            calendars,
            templates,
            timezone,
            webhook_allow: Vec::new(),
            by_kind,
            files: files.iter().map(|f| f.path.clone()).collect(),
            version,
            memory,
            kept: HashMap::new(),
            declared: compile::Declared::new(),
        }
    }

    /// Every channel the rules and campaigns name that is not among `known` (the channels
    /// file's names, in its order), with a did-you-mean; and every campaign that names no
    /// channel when there are several to choose from.
    pub fn channel_problems(&self, known: &[String], file_given: bool) -> Vec<Diagnostic> {
        let names = || known.iter().map(String::as_str);
        let unknown = |file: &std::path::Path, at: &ChannelRef| {
            if known.contains(&at.name) {
                return None;
            }
            let hint = match did_you_mean(&at.name, names()) {
                Some(best) => format!(", did you mean `{best}`?"),
                None if file_given => format!(" (the channels file names {})", known.join(", ")),
                None => format!(
                    " (without a channels file there is one channel, `{}`; give the file with --channels or RIPOSTE_CHANNELS)",
                    crate::vocab::DEFAULT_CHANNEL
                ),
            };
            Some(Diagnostic::error(
                file,
                at.line.max(1),
                at.column.max(1),
                format!("unknown channel `{}`{hint}", at.name),
            ))
        };
        let mut problems: Vec<Diagnostic> = self
            .rules
            .iter()
            .flat_map(|rule| {
                rule.channels
                    .iter()
                    .filter_map(|at| unknown(&rule.file, at))
            })
            .collect();
        for campaign in &self.campaigns {
            match &campaign.channel_ref {
                Some(at) => problems.extend(unknown(&campaign.file, at)),
                None if known.len() > 1 => problems.push(Diagnostic::error(
                    &campaign.file,
                    campaign.line.max(1),
                    1,
                    format!(
                        "campaign `{}` needs `channel:` to say which number sends it: one of {}",
                        campaign.name,
                        known.join(", ")
                    ),
                )),
                None => {}
            }
        }
        problems
    }

    /// An empty rule set.
    pub fn empty() -> Self {
        Self::new(
            Vec::new(),
            Vec::new(),
            HashMap::new(),
            Templates::new(),
            &[],
            chrono_tz::UTC,
        )
    }

    /// The knowledge of an `ai_reply` by its id; if the files changed since the job was
    /// made, the knowledge the rule (by name) has now.
    pub fn knowledge(&self, id: &str, rule: &str) -> Option<Arc<str>> {
        let ais = || {
            self.rules.iter().flat_map(|r| {
                r.actions.iter().filter_map(move |step| match &step.action {
                    crate::actions::Action::AiReply(ai) => Some((r.name.as_str(), &**ai)),
                    _ => None,
                })
            })
        };
        ais()
            .find(|(_, ai)| ai.knowledge_id == id)
            .or_else(|| ais().find(|(name, _)| *name == rule))
            .map(|(_, ai)| ai.knowledge.clone())
            .filter(|k: &Arc<str>| !k.is_empty())
    }

    /// A campaign by name.
    pub fn campaign(&self, name: &str) -> Option<&Campaign> {
        self.campaigns.iter().find(|c| c.name == name)
    }

    /// The rules listening to an event kind, in order.
    pub fn for_kind(&self, kind: &EventKind) -> impl Iterator<Item = &Rule> {
        self.by_kind
            .get(kind)
            .into_iter()
            .flatten()
            .map(|&i| &*self.rules[i])
    }

    /// The indexes of the rules that can match `event`, in rule order: those listening to its
    /// kind, less those whose `text` or `keywords` condition the prefilter already ruled out.
    pub fn candidates(&self, event: &crate::events::Event) -> Vec<usize> {
        self.prefilter.candidates(&self.rules, event)
    }
}

/// A failure to read rule files from disk.
#[derive(Debug, thiserror::Error)]
#[error("cannot read `{path}`: {source}")]
pub struct LoadError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Reads every `*.yaml` / `*.yml` under the given paths (files or folders), in path order.
/// Rule tests (`*.test.yaml`), channels files (`channels.yaml`) and hidden entries are skipped: Kubernetes mounts keep old and
/// new copies of a ConfigMap in `..data` and `..TIMESTAMP` folders beside the real files.
/// Each file remembers the folder it was found under (a file named on its own: its folder),
/// the rules folder that what it names must stay inside.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<SourceFile>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        let mut found = Vec::new();
        collect(path, true, &mut found)?;
        let root = if path.is_dir() {
            path.clone()
        } else {
            folder_of(path).to_owned()
        };
        files.extend(found.into_iter().map(|file| (file, root.clone())));
    }
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    files
        .into_iter()
        .map(|(path, root)| match std::fs::read_to_string(&path) {
            Ok(text) => Ok(SourceFile {
                path,
                text,
                root: Some(root),
            }),
            Err(source) => Err(LoadError { path, source }),
        })
        .collect()
}

/// The folder a file is in; `.` for a bare file name.
pub(crate) fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A channels file kept beside the rules is given with `--channels`, never read as rules.
fn is_rule_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (name.ends_with(".yaml") || name.ends_with(".yml"))
        && !name.ends_with(".test.yaml")
        && !name.ends_with(".test.yml")
        && !matches!(name, "channels.yaml" | "channels.yml")
}

fn collect(path: &Path, explicit: bool, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let err = |source| LoadError {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(err)?;
    if meta.is_file() {
        if explicit || is_rule_file(path) {
            out.push(path.to_owned());
        }
        return Ok(());
    }
    for entry in std::fs::read_dir(path).map_err(err)? {
        let entry = entry.map_err(err)?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        collect(&entry.path(), false, out)?;
    }
    Ok(())
}

/// Reads and compiles a rule set in UTC; every problem is returned as a diagnostic.
pub fn load(paths: &[PathBuf]) -> Result<RuleSet, Vec<Diagnostic>> {
    load_in(paths, chrono_tz::UTC)
}

/// Reads and compiles a rule set with a default time zone.
pub fn load_in(paths: &[PathBuf], zone: chrono_tz::Tz) -> Result<RuleSet, Vec<Diagnostic>> {
    compile_in(&read_or_report(paths)?, zone)
}

/// Reads and compiles a rule set again, taking from `previous` the rules that did not change.
pub fn load_after(
    paths: &[PathBuf],
    zone: chrono_tz::Tz,
    previous: &RuleSet,
) -> Result<RuleSet, Vec<Diagnostic>> {
    compile_after(&read_or_report(paths)?, zone, Some(previous))
}

fn read_or_report(paths: &[PathBuf]) -> Result<Vec<SourceFile>, Vec<Diagnostic>> {
    read_sources(paths).map_err(|e| {
        vec![Diagnostic::error(
            &e.path,
            1,
            1,
            format!("cannot read file: {}", e.source),
        )]
    })
}

/// The current rule set, shared by the server's workers.
pub type SharedRules = Arc<RuleSet>;

#[cfg(test)]
mod once_per_tests {
    use chrono::{TimeZone, Utc};

    use super::OncePer;

    #[test]
    fn a_calendar_day_or_week_ends_at_local_midnight() {
        let berlin = chrono_tz::Europe::Berlin;
        // Tuesday 2026-03-03 23:30 in Berlin (22:30 UTC).
        let last = Utc.with_ymd_and_hms(2026, 3, 3, 22, 30, 0).unwrap();
        let wednesday = Utc.with_ymd_and_hms(2026, 3, 3, 23, 0, 0).unwrap();
        assert_eq!(OncePer::Day.next_after(last, berlin), wednesday);
        let monday = Utc.with_ymd_and_hms(2026, 3, 8, 23, 0, 0).unwrap();
        assert_eq!(OncePer::Week.next_after(last, berlin), monday);
        let rolling = OncePer::Within(chrono::Duration::hours(12));
        assert_eq!(
            rolling.next_after(last, berlin),
            last + chrono::Duration::hours(12)
        );
        // The day after the spring change starts at midnight all the same (CEST, UTC+2).
        let before = Utc.with_ymd_and_hms(2026, 3, 29, 12, 0, 0).unwrap();
        let next = Utc.with_ymd_and_hms(2026, 3, 29, 22, 0, 0).unwrap();
        assert_eq!(OncePer::Day.next_after(before, berlin), next);
    }
}
