//! Rule files as written: plain serde types that mirror the YAML and carry no behaviour.
//!
//! All YAML access lives in [`parse`]. The compile step in `rules` turns these types into the
//! executable form; fields that need checking after parsing (regexes, templates, durations,
//! event names) are [`Located`] so their errors point at the right line and column.

mod action;
mod channels;
mod each;
mod events;
mod located;
mod outline;
mod plain;
mod rule;
mod schedule;
mod split;

use std::path::PathBuf;

pub use action::{
    ActionSpec, AiHandoffSpec, AiReplySpec, ButtonSpec, ForwardSpec, GroupSpec, HandoffSpec,
    IfPast, ListRowSpec, ListSectionSpec, ListSpec, LocationSpec, LookupSpec, MessageContent,
    MessageSpec, PollSpec, UnlessSpec, WebhookSpec,
};
pub use channels::{ChannelSpec, ChannelsFile};
pub use events::{EventSpec, FIELD_TYPES};
pub use located::{Located, OneOrMany};
pub use rule::{ConditionSpec, Mode, RuleFile, RuleSpec, TagsSpec};
pub use schedule::{
    AudienceSpec, CalendarSpec, CampaignSpec, CatchUp, GroupMembersSpec, HoursSpec, OpenSpec,
};
pub use split::{Pieces, RuleText, split};

use crate::rules::Diagnostic;

/// One rule file read from disk.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as it is shown in diagnostics.
    pub path: PathBuf,
    pub text: String,
    /// The rules folder the file was read from: files a rule names (knowledge) must lie
    /// inside it. `None` stands for the file's own folder.
    pub root: Option<PathBuf>,
}

/// Reads one rule file with every mistake the YAML reader finds in it: when the file does not
/// read as a whole, each rule, campaign and calendar is read on its own, so one run reports
/// them all (a syntax mistake that breaks the YAML itself still stops the file, and says so).
/// What did read is returned beside the errors, for the compile step to check further.
pub fn read(source: &SourceFile) -> (RuleFile, Vec<Diagnostic>) {
    match parse(source) {
        Ok(file) => (file, Vec::new()),
        Err(first) => each::read_each(source, first),
    }
}

/// Parses one rule file, stopping at its first YAML or schema mistake (see [`read`] for all).
pub fn parse(source: &SourceFile) -> Result<RuleFile, Diagnostic> {
    if source.text.trim().is_empty() || is_only_comments(&source.text) {
        return Ok(RuleFile::default());
    }
    parse_yaml(source)
}

/// Reads one rule cut out of its file by [`split`], with positions as in the file; `None` if
/// it does not read as exactly one rule on its own (the file must then be read whole).
pub fn parse_rule(rule: RuleText<'_>) -> Option<Located<RuleSpec>> {
    let read = || {
        serde_saphyr::from_str_with_options::<Vec<Located<RuleSpec>>>(rule.text, reader_options())
    };
    let mut specs = located::with_lines_before(rule.line.saturating_sub(1), read).ok()?;
    (specs.len() == 1).then(|| specs.pop()).flatten()
}

/// Parses any YAML document of Riposte's (rule files, rule tests) into `T`, with located errors.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(source: &SourceFile) -> Result<T, Diagnostic> {
    parse_text(source, &source.text)
}

/// Parses `text` (a file's text, or a piece of it positioned as in its file) into `T`.
fn parse_text<T: serde::de::DeserializeOwned>(
    source: &SourceFile,
    text: &str,
) -> Result<T, Diagnostic> {
    serde_saphyr::from_str_with_options::<T>(text, reader_options())
        .map_err(|err| plain::yaml_diagnostic(source, &err))
}

fn reader_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
    }
}

/// The JSON Schema of rule files, for editors (`yaml-language-server`) and other tools.
pub fn schema() -> String {
    let schema = schemars::schema_for!(RuleFile);
    render_schema(schema, "Riposte rule file")
}

/// The JSON Schema of rule test files (`*.test.yaml`).
pub fn test_schema() -> String {
    let schema = schemars::schema_for!(crate::ruletest::TestFile);
    render_schema(schema, "Riposte rule tests")
}

/// The JSON Schema of channels files (`--channels`).
pub fn channels_schema() -> String {
    let schema = schemars::schema_for!(ChannelsFile);
    render_schema(schema, "Riposte channels file")
}

/// The JSON Schema of the declared custom events' bodies, one definition per event (for
/// the systems that post them to `/events/NAME`).
pub fn events_schema(
    declared: &std::collections::BTreeMap<String, std::sync::Arc<crate::events::DeclaredEvent>>,
) -> String {
    let defs: serde_json::Map<String, serde_json::Value> = declared
        .iter()
        .map(|(name, event)| (name.clone(), event.json_schema()))
        .collect();
    let schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Riposte custom events",
        "description": "The body each declared event takes at POST /events/NAME.",
        "$defs": defs,
    });
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

fn render_schema(mut schema: schemars::Schema, title: &str) -> String {
    schema.insert("title".into(), title.into());
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

fn is_only_comments(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#') || l == "---")
}
