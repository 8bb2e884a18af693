//! Rule files as written: plain serde types that mirror the YAML and carry no behaviour.
//!
//! All YAML access lives in [`parse`]. The compile step in `rules` turns these types into the
//! executable form; fields that need checking after parsing (regexes, templates, durations,
//! event names) are [`Located`] so their errors point at the right line and column.

mod action;
mod channels;
mod located;
mod rule;
mod schedule;
mod split;

use std::path::PathBuf;

use serde_saphyr::{DefaultMessageFormatter, MessageFormatter};

pub use action::{
    ActionSpec, AiHandoffSpec, AiReplySpec, ButtonSpec, ForwardSpec, GroupSpec, HandoffSpec,
    IfPast, ListRowSpec, ListSectionSpec, ListSpec, LocationSpec, LookupSpec, MessageContent,
    MessageSpec, PollSpec, UnlessSpec, WebhookSpec,
};
pub use channels::{ChannelSpec, ChannelsFile};
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

/// Parses one rule file. A YAML or schema mistake stops the file at its first error (the YAML
/// reader cannot resume after one); the compile step then finds every semantic error.
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
    serde_saphyr::from_str_with_options::<T>(&source.text, reader_options())
        .map_err(|err| yaml_diagnostic(source, &err))
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

fn yaml_diagnostic(source: &SourceFile, err: &serde_saphyr::Error) -> Diagnostic {
    let err = err.without_snippet();
    let (mut line, mut column) = err
        .location()
        .map_or((1, 1), |l| (l.line() as u32, l.column() as u32));
    let message = match err {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => unknown_name_message("field", field, expected),
        serde_saphyr::Error::SerdeUnknownVariant {
            variant, expected, ..
        } => unknown_name_message("value", variant, expected),
        other => {
            let text = DefaultMessageFormatter.format_message(other);
            let text = text
                .escape_debug()
                .to_string()
                .replace("\\'", "'")
                .replace("\\\"", "\"");
            if text.contains("found a tab") {
                // Point at the tab itself, which the YAML reader reports at the token before it.
                if let Some((n, l)) = source
                    .text
                    .lines()
                    .enumerate()
                    .find(|(_, l)| l.contains('\t'))
                {
                    line = n as u32 + 1;
                    column = l.find('\t').unwrap_or(0) as u32 + 1;
                }
            }
            friendlier(&text)
        }
    };
    Diagnostic::error(&source.path, line.max(1), column.max(1), message)
}

/// Rewrites the YAML reader's messages in the words of someone editing a rule file.
fn friendlier(text: &str) -> String {
    if text.contains("found a tab") {
        return "tabs are not allowed in YAML indentation; indent with spaces".into();
    }
    if text.starts_with("while parsing a block mapping, did not find expected key") {
        return "the indentation is off: keys of one map must start in the same column".into();
    }
    if text.starts_with("expected sequence start") {
        return "expected a list here (each entry starts with `- `)".into();
    }
    if text.starts_with("expected mapping start") {
        return "expected a map here (`key: value` lines), not a list or a single value".into();
    }
    if let Some(rest) = text.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        return format!("`{key}` appears twice in the same map; keep one");
    }
    if text.starts_with("invalid boolean") {
        return "expected `true` or `false` (`yes`, `no`, `on` and `off` are not booleans here)"
            .into();
    }
    text.to_owned()
}

fn unknown_name_message(what: &str, name: &str, expected: &[&str]) -> String {
    let mut message = format!("unknown {what} `{name}`");
    if let Some(best) = crate::rules::did_you_mean(name, expected.iter().copied()) {
        message.push_str(&format!(", did you mean `{best}`?"));
    } else if !expected.is_empty() {
        message.push_str(&format!(", expected one of: {}", expected.join(", ")));
    }
    message
}
