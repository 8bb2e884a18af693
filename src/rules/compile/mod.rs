//! Rule files → an immutable [`RuleSet`]. Every problem is collected with its position, so
//! `riposte check` reports them all at once; a set with any error never loads.
//!
//! This file compiles rules and their conditions; each other part of a rule file has its own:
//! `then:` steps in `action` (messages in `message`, webhooks in `webhook`, `ai_reply` in `ai`),
//! calendars and hours in `hours`, campaigns in `campaign`.

mod action;
mod ai;
mod campaign;
mod declared;
mod hours;
mod inside;
mod lines;
mod message;
mod unchanged;
mod webhook;

use action::compile_step;
pub(crate) use declared::Declared;
use lines::Lines;
use unchanged::Entry;
pub(crate) use unchanged::{KeptRule, RuleKey};

use std::collections::HashMap;
use std::sync::Arc;

use chrono_tz::Tz;

use super::condition::{Block, Condition, Glob};
use super::reply_id::{ReplyId, ReplyPattern};
use super::text_regex::{RegexError, TextRegex};
use super::{Diagnostic, Rule, RuleSet, did_you_mean};
use crate::calendar::Calendar;
use crate::config::{self, ConditionSpec, Located, Mode, RuleSpec, SourceFile};
use crate::events::{BUILTIN_KINDS, ChatKind, EventKind};
use crate::templates::{Scope, TemplateProblem, Templates, Text, UrlText};

/// Compiles rule files into a rule set (times without a zone read as UTC).
pub fn compile(files: &[SourceFile]) -> Result<RuleSet, Vec<Diagnostic>> {
    compile_in(files, chrono_tz::UTC)
}

/// Compiles rule files into a rule set, or returns every problem found. `zone` is the default
/// time zone of calendars, campaigns and `at:` times that name none.
pub fn compile_in(files: &[SourceFile], zone: Tz) -> Result<RuleSet, Vec<Diagnostic>> {
    compile_after(files, zone, None)
}

/// Like [`compile_in`], taking from `previous` (the set being replaced) every rule whose text
/// and surroundings did not change, so a reload costs what changed rather than every rule.
pub fn compile_after(
    files: &[SourceFile],
    zone: Tz,
    previous: Option<&RuleSet>,
) -> Result<RuleSet, Vec<Diagnostic>> {
    let mut whole = vec![false; files.len()];
    loop {
        match compile_once(files, zone, previous, &whole) {
            Ok(result) => return result,
            // Rare (a YAML mistake, an alias to another rule's anchor): start again with the
            // file read whole, which reports or resolves it as a first load does.
            Err(ReadWhole(file)) => whole[file] = true,
        }
    }
}

/// The rules compiled so far, and what the next compile may take of them.
struct RulesOut {
    rules: Vec<Arc<Rule>>,
    kept: HashMap<RuleKey, KeptRule>,
}

/// A rule cut out of this file did not read on its own.
struct ReadWhole(usize);

/// Rule texts read and compiled at a time.
const BATCH: usize = 512;

fn compile_once(
    files: &[SourceFile],
    zone: Tz,
    previous: Option<&RuleSet>,
    whole: &[bool],
) -> Result<Result<RuleSet, Vec<Diagnostic>>, ReadWhole> {
    let mut diagnostics = Vec::new();
    let read = unchanged::read(files, zone, previous, whole, &mut diagnostics);
    let mut templates = previous.map_or_else(Templates::new, |set| set.templates.carried());
    let mut calendars = HashMap::new();
    // Sized up front: for ten thousand rules, growing these tables step by step would hold
    // the old and the new table at once at each step, on top of the set being replaced.
    let count: usize = read.iter().map(|f| f.rules.len()).sum();
    let mut names = Names {
        first: HashMap::with_capacity(count),
        files: Vec::new(),
    };
    let none = HashMap::new();
    let mut declared = Declared::new();
    let undeclared = Declared::new();
    for file in &read {
        let mut compiler = Compiler::new(
            file.file,
            &mut templates,
            &mut diagnostics,
            &none,
            &undeclared,
            zone,
        );
        for spec in &file.rest.calendars {
            let name = &spec.value.name;
            if names.claim(&mut compiler, "calendar", name)
                && let Some(cal) = compiler.calendar(spec)
            {
                calendars.insert(name.value.clone(), Arc::new(cal));
            }
        }
        for (name, spec) in &file.rest.events {
            let at = Located {
                value: name.clone(),
                line: spec.line,
                column: spec.column,
            };
            if names.claim(&mut compiler, "event", &at)
                && let Some(event) = compiler.declared_event(name, spec)
            {
                declared.insert(name.clone(), Arc::new(event));
            }
        }
    }
    templates.add_calendars(calendars.clone());
    let mut out = RulesOut {
        rules: Vec::with_capacity(count),
        kept: HashMap::with_capacity(count),
    };
    let mut campaigns = Vec::new();
    for (at, file) in read.into_iter().enumerate() {
        let mut compiler = Compiler::new(
            file.file,
            &mut templates,
            &mut diagnostics,
            &calendars,
            &declared,
            zone,
        );
        let mut entries = file.rules.into_iter().peekable();
        while let Some(entry) = entries.next() {
            let (key, text) = match entry {
                Entry::Read(spec) => {
                    compiler.add_read(&spec, None, &mut names, &mut out);
                    continue;
                }
                Entry::Kept(kept) => {
                    compiler.add_kept(kept, &mut names, &mut out);
                    continue;
                }
                Entry::Text(key, text) => (key, text),
            };
            let mut batch = vec![(key, text)];
            while batch.len() < BATCH
                && let Some(Entry::Text(key, text)) =
                    entries.next_if(|e| matches!(e, Entry::Text(..)))
            {
                batch.push((key, text));
            }
            let texts: Vec<_> = batch.iter().map(|(_, text)| *text).collect();
            for ((key, text), spec) in batch.into_iter().zip(unchanged::read_texts(&texts)) {
                let Some(spec) = spec else {
                    return Err(ReadWhole(at));
                };
                compiler.add_read(&spec, Some((key, text.line)), &mut names, &mut out);
            }
        }
        for spec in &file.rest.campaigns {
            names.claim(&mut compiler, "campaign", &spec.value.name);
            if let Some(campaign) = compiler.campaign(spec) {
                campaigns.push(campaign);
            }
        }
    }
    // The name table is as large as the rules' indexes: gone before those are built.
    drop(names);
    Ok(if diagnostics.is_empty() {
        templates.drop_unused();
        let mut set = RuleSet::new(out.rules, campaigns, calendars, templates, files, zone);
        set.kept = out.kept;
        set.declared = declared;
        Ok(set)
    } else {
        diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        Err(diagnostics)
    })
}

/// A hash of the YAML text of the item starting at `line`/`column` (its line and every
/// following line indented at least as deep), so a reload can tell which rules changed.
fn fingerprint(lines: &Lines<'_>, line: u32, column: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let indent = column.saturating_sub(1) as usize;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let start = (line.saturating_sub(1) as usize).min(lines.len());
    for (i, text) in (start..lines.len())
        .filter_map(|at| lines.get(at))
        .enumerate()
    {
        let depth = text.len() - text.trim_start().len();
        if i > 0 && !text.trim().is_empty() && depth < indent {
            break;
        }
        text.trim_end().hash(&mut hasher);
    }
    hasher.finish()
}

/// Names seen so far, per kind of thing, with where each was first defined.
struct Names {
    /// Where each name was first defined: its file (in `files`) and line.
    first: HashMap<(&'static str, String), (usize, u32)>,
    files: Vec<std::path::PathBuf>,
}

impl Names {
    /// Records a name; false (and an error) if it was taken.
    fn claim(
        &mut self,
        compiler: &mut Compiler<'_>,
        what: &'static str,
        name: &Located<String>,
    ) -> bool {
        use std::collections::hash_map::Entry as Seen;
        match self.first.entry((what, name.value.clone())) {
            Seen::Occupied(first) => {
                let (file, line) = *first.get();
                let message = format!(
                    "duplicate {what} name `{}` (first defined at {}:{line})",
                    name.value,
                    self.files[file].display()
                );
                compiler.error(name.line, name.column, message);
                false
            }
            Seen::Vacant(slot) => {
                let path = &compiler.file.path;
                let file = match self.files.iter().rposition(|f| f == path) {
                    Some(file) => file,
                    None => {
                        self.files.push(path.clone());
                        self.files.len() - 1
                    }
                };
                slot.insert((file, name.line));
                true
            }
        }
    }
}

/// Compiles one file's pieces, recording problems against that file.
struct Compiler<'a> {
    file: &'a SourceFile,
    /// The file's path, one copy shared by its rules.
    path: Arc<std::path::Path>,
    /// The file's lines, split once (positions are looked up for every rule).
    lines: Lines<'a>,
    templates: &'a mut Templates,
    diagnostics: &'a mut Vec<Diagnostic>,
    /// Named groups of the current rule's `text` regexes, for `match.NAME`.
    groups: Vec<String>,
    /// The `as:` names of the current rule's lookups compiled so far, for `lookup.NAME`.
    lookups: Vec<String>,
    /// Compiling a campaign: templates see the recipient, not an event.
    in_campaign: bool,
    calendars: &'a HashMap<String, Arc<Calendar>>,
    /// Custom events declared in any file.
    declared: &'a Declared,
    /// The `data` fields the current rule's events declare (`None`: any field).
    data: Option<Vec<String>>,
    /// The default time zone.
    zone: Tz,
    /// Channels the current rule or campaign names, checked against the channels file once
    /// the set is compiled.
    channels: Vec<super::ChannelRef>,
}

impl<'a> Compiler<'a> {
    fn new(
        file: &'a SourceFile,
        templates: &'a mut Templates,
        diagnostics: &'a mut Vec<Diagnostic>,
        calendars: &'a HashMap<String, Arc<Calendar>>,
        declared: &'a Declared,
        zone: Tz,
    ) -> Self {
        Self {
            file,
            path: file.path.as_path().into(),
            lines: Lines::new(&file.text),
            templates,
            diagnostics,
            groups: Vec::new(),
            lookups: Vec::new(),
            in_campaign: false,
            calendars,
            declared,
            data: None,
            zone,
            channels: Vec::new(),
        }
    }
}

impl Compiler<'_> {
    /// Runs a template compilation in the current scope (a rule's groups, or a campaign).
    fn in_scope<T>(&mut self, f: impl FnOnce(&mut Templates, Scope<'_>) -> T) -> T {
        let groups = std::mem::take(&mut self.groups);
        let lookups = std::mem::take(&mut self.lookups);
        let data = self.data.take();
        let scope = if self.in_campaign {
            Scope::Campaign
        } else {
            Scope::Event {
                groups: &groups,
                lookups: &lookups,
                data: data.as_deref(),
            }
        };
        let result = f(self.templates, scope);
        self.groups = groups;
        self.lookups = lookups;
        self.data = data;
        result
    }

    /// A channel named in the rule or campaign, remembered with where it is written.
    fn channel(&mut self, name: &Located<String>) -> String {
        self.channels.push(super::ChannelRef {
            name: name.value.clone(),
            line: name.line,
            column: name.column,
        });
        name.value.clone()
    }

    /// Checks an `if:`-style expression and compiles it.
    fn condition(&mut self, expr: &Located<String>) -> Option<String> {
        let result = self.in_scope(|t, scope| t.condition(&expr.value, scope));
        self.located(result, expr.line, expr.column)
    }

    /// Reads a time zone name.
    fn zone(&mut self, name: Option<&Located<String>>) -> Option<Tz> {
        let Some(name) = name else {
            return Some(self.zone);
        };
        match name.value.parse::<Tz>() {
            Ok(zone) => Some(zone),
            Err(_) => {
                let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
                let hint = did_you_mean(&name.value, names).map_or_else(
                    || ", expected an IANA name such as `Europe/Berlin`".to_owned(),
                    |b| format!(", did you mean `{b}`?"),
                );
                self.error(
                    name.line,
                    name.column,
                    format!("unknown time zone `{}`{hint}", name.value),
                );
                None
            }
        }
    }
    /// The folder of the file being compiled: files it names are relative to it.
    fn base_dir(&self) -> &std::path::Path {
        self.file.path.parent().unwrap_or(std::path::Path::new("."))
    }

    fn error(&mut self, line: u32, column: u32, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::error(
            &self.file.path,
            line.max(1),
            column.max(1),
            message,
        ));
    }

    /// Compiles a template string written at a position.
    fn text_at(&mut self, source: &str, line: u32, column: u32) -> Option<Text> {
        let result = self.in_scope(|t, scope| t.text(source, scope));
        self.located(result, line, column)
    }

    /// Compiles a located template string.
    fn text(&mut self, source: &Located<String>) -> Option<Text> {
        self.text_at(&source.value, source.line, source.column)
    }

    /// Compiles a located webhook URL, whose values are percent-encoded.
    fn url(&mut self, source: &Located<String>) -> Option<UrlText> {
        let result = self.in_scope(|t, scope| t.url(&source.value, scope));
        self.located(result, source.line, source.column)
    }

    /// Compiles a `{{ expr }}` string into a typed JSON value template.
    fn json_value_at(&mut self, expr: &str, line: u32, column: u32) -> Option<String> {
        let result = self.in_scope(|t, scope| t.json_value(expr, scope));
        self.located(result, line, column)
    }

    fn located<T>(
        &mut self,
        result: Result<T, Vec<TemplateProblem>>,
        line: u32,
        column: u32,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(problems) => {
                for p in problems {
                    let (line, column) = if p.line_offset > 1 {
                        (line + p.line_offset - 1, 1)
                    } else {
                        (line, column)
                    };
                    self.error(line, column, p.message);
                }
                None
            }
        }
    }

    /// Compiles a rule and adds it to `out`, noting what the next compile needs to take it
    /// as it is when it was cut out of its file (`key`, and the first line of its text).
    fn add_read(
        &mut self,
        spec: &Located<RuleSpec>,
        key: Option<(RuleKey, u32)>,
        names: &mut Names,
        out: &mut RulesOut,
    ) {
        if let Some(name) = &spec.value.name {
            names.claim(self, "rule", name);
        }
        self.templates.take_names();
        let Some(rule) = self.rule(spec) else {
            return;
        };
        let templates = self.templates.take_names();
        if let Some((key, line)) = key
            && unchanged::can_keep(&rule)
        {
            let name_at = spec
                .value
                .name
                .as_ref()
                .map_or((0, 0), |n| (n.line, n.column));
            let note = KeptRule {
                index: out.rules.len(),
                line_in_text: rule.line.saturating_sub(line),
                name_at: (name_at.0.saturating_sub(line), name_at.1),
                templates: templates.into(),
            };
            out.kept.insert(key, note);
        }
        out.rules.push(Arc::new(rule));
    }

    /// Adds a rule taken from the earlier set, its text now starting on `line`.
    fn add_kept(&mut self, kept: unchanged::Kept, names: &mut Names, out: &mut RulesOut) {
        let unchanged::Kept {
            key,
            line,
            rule,
            mut note,
        } = kept;
        let name = Located {
            value: rule.name.clone(),
            line: line + note.name_at.0,
            column: note.name_at.1,
        };
        names.claim(self, "rule", &name);
        self.templates.keep(&note.templates);
        let at = line + note.line_in_text;
        let rule = if rule.line == at {
            rule
        } else {
            // Moved with the text around it: its actions' lines move with it.
            let mut moved = (*rule).clone();
            for step in &mut moved.actions {
                step.line = (step.line + at).saturating_sub(rule.line);
            }
            moved.line = at;
            Arc::new(moved)
        };
        note.index = out.rules.len();
        out.kept.insert(key, note);
        out.rules.push(rule);
    }

    fn rule(&mut self, spec: &Located<RuleSpec>) -> Option<Rule> {
        let rule = &spec.value;
        let errors_before = self.diagnostics.len();
        let name = match &rule.name {
            Some(name) if !name.value.trim().is_empty() => name.value.clone(),
            Some(name) => {
                self.error(name.line, name.column, "rule name is empty");
                String::new()
            }
            None => {
                self.error(spec.line, spec.column, "every rule needs a `name`");
                String::new()
            }
        };
        self.groups = collect_groups(&rule.when.value);
        self.lookups.clear();
        self.templates.take_used();
        self.channels.clear();
        let when = &rule.when.value;
        let events = match &when.event {
            Some(names) => self.event_kinds(names),
            None => vec![EventKind::Message],
        };
        self.data = self.data_fields(&events);
        let mut block = self.block(when, true);
        if when.from_me.is_none() {
            // A bot never answers itself unless a rule asks for our own messages.
            block.0.insert(0, Condition::FromMe(false));
        }
        let mut actions = Vec::with_capacity(rule.then.len());
        for action in &rule.then {
            if let Some(step) = compile_step(action, self) {
                actions.push(step);
            }
        }
        let once_per = rule.once_per.as_ref().and_then(|w| match w.value.trim() {
            "day" => Some(super::OncePer::Day),
            "week" => Some(super::OncePer::Week),
            window => match crate::duration::parse(window) {
                Ok(d) => chrono::Duration::from_std(d)
                    .ok()
                    .map(super::OncePer::Within),
                Err(e) => {
                    self.error(
                        w.line,
                        w.column,
                        format!("{e} (or `day` / `week` for once per calendar day / week)"),
                    );
                    None
                }
            },
        });
        let timezone = self.zone(rule.timezone.as_ref());
        if rule.then.is_empty() && !rule.stop {
            self.error(
                spec.line,
                spec.column,
                format!(
                    "rule `{name}` has no actions (`then:`) and no `stop: true`, so it does nothing"
                ),
            );
        }
        (self.diagnostics.len() == errors_before).then(|| Rule {
            name,
            description: rule.description.clone(),
            file: self.path.clone(),
            line: spec.line,
            events,
            when: block,
            actions,
            stop: rule.stop,
            enabled: rule.enabled,
            shadow: rule.mode == Mode::Shadow,
            once_per,
            during_handoff: rule.during_handoff,
            timezone: timezone.unwrap_or(self.zone),
            fingerprint: fingerprint(&self.lines, spec.line, spec.column),
            uses: self.templates.take_used(),
            channels: std::mem::take(&mut self.channels),
        })
    }

    fn event_kinds(&mut self, names: &Located<config::OneOrMany<String>>) -> Vec<EventKind> {
        let mut kinds = Vec::new();
        for name in names.value.iter() {
            match EventKind::from_name(name) {
                Some(kind) => kinds.push(kind),
                None => {
                    let known = BUILTIN_KINDS.iter().map(|(n, _)| *n);
                    let hint = did_you_mean(name, known).map_or_else(
                        || " (custom events are written `custom:NAME`)".to_owned(),
                        |b| format!(", did you mean `{b}`?"),
                    );
                    self.error(
                        names.line,
                        names.column,
                        format!("unknown event `{name}`{hint}"),
                    );
                }
            }
        }
        kinds
    }

    fn block(&mut self, spec: &ConditionSpec, top: bool) -> Block {
        let mut out = Vec::new();
        if !top && let Some(names) = &spec.event {
            let kinds = self.event_kinds(names);
            out.push(Condition::Event(kinds));
        }
        if let Some(from_me) = spec.from_me {
            out.push(Condition::FromMe(from_me));
        }
        if let Some(types) = &spec.message_type {
            out.push(Condition::Type(types.0.clone()));
        }
        if let Some(chat) = &spec.chat {
            self.chat(chat, &mut out);
        }
        if let Some(names) = &spec.channel {
            let names = names.value.iter().map(|name| {
                self.channel(&Located {
                    value: name.clone(),
                    line: names.line,
                    column: names.column,
                })
            });
            out.push(Condition::Channel(names.collect()));
        }
        if let Some(ids) = &spec.chat_id {
            out.push(Condition::ChatId(
                ids.value.iter().map(|g| Glob::new(g)).collect(),
            ));
        }
        if let Some(from) = &spec.from {
            out.push(Condition::From {
                globs: from.value.iter().map(|g| Glob::new(g)).collect(),
                negate: false,
            });
        }
        if let Some(from) = &spec.not_from {
            out.push(Condition::From {
                globs: from.value.iter().map(|g| Glob::new(g)).collect(),
                negate: true,
            });
        }
        if let Some(ids) = &spec.reply_id {
            out.push(Condition::ReplyId(self.reply_ids(ids)));
        }
        if let Some(options) = &spec.option {
            out.push(Condition::PollOption(options.value.0.clone()));
        }
        if let Some(emoji) = &spec.emoji {
            out.push(Condition::Emoji(emoji.0.clone()));
        }
        if let Some(status) = &spec.status {
            out.push(Condition::Status(status.0.clone()));
        }
        if let Some(names) = &spec.name {
            out.push(Condition::Name(names.0.clone()));
        }
        if let Some(tags) = &spec.tags {
            out.push(Condition::Tags {
                all: tags.all.clone(),
                any: tags.any.clone(),
                none: tags.none.clone(),
            });
        }
        if let Some(words) = &spec.keywords {
            self.keywords(words, &mut out);
        }
        if let Some(text) = &spec.text
            && let Some(regex) = self.regex(text)
        {
            out.push(Condition::Text {
                regex: Arc::new(regex),
                source: text.value.clone(),
            });
        }
        for (blocks, all) in [(&spec.any, false), (&spec.all, true)] {
            if let Some(blocks) = blocks {
                let compiled = blocks.iter().map(|b| self.block(&b.value, false)).collect();
                out.push(if all {
                    Condition::All(compiled)
                } else {
                    Condition::Any(compiled)
                });
            }
        }
        if let Some(not) = &spec.not {
            out.push(Condition::Not(Box::new(self.block(&not.value, false))));
        }
        for (hours, inside) in [(&spec.hours, true), (&spec.outside_hours, false)] {
            if let Some(hours) = hours
                && let Some(calendar) = self.hours(hours)
            {
                out.push(Condition::Hours { calendar, inside });
            }
        }
        if let Some(expr) = &spec.expr
            && let Some(template) = self.condition(expr)
        {
            out.push(Condition::If {
                template,
                source: expr.value.clone(),
            });
        }
        Block(out)
    }

    fn chat(&mut self, chat: &Located<config::OneOrMany<String>>, out: &mut Vec<Condition>) {
        let mut kinds = Vec::new();
        for name in chat.value.iter() {
            let kind = match name.as_str() {
                "any" => return,
                "private" => ChatKind::Private,
                "group" => ChatKind::Group,
                "channel" => ChatKind::Channel,
                "status" => ChatKind::Status,
                other => {
                    let hint =
                        did_you_mean(other, ["private", "group", "channel", "status", "any"])
                            .map_or_else(
                                || ", expected private, group, channel, status or any".to_owned(),
                                |b| format!(", did you mean `{b}`?"),
                            );
                    self.error(
                        chat.line,
                        chat.column,
                        format!("unknown chat kind `{other}`{hint}"),
                    );
                    continue;
                }
            };
            kinds.push(kind);
        }
        out.push(Condition::Chat(kinds));
    }

    fn keywords(&mut self, words: &Located<Vec<String>>, out: &mut Vec<Condition>) {
        let cleaned: Vec<String> = words.value.iter().map(|w| w.trim().to_owned()).collect();
        if cleaned.iter().any(String::is_empty) || cleaned.is_empty() {
            self.error(
                words.line,
                words.column,
                "`keywords` has an empty entry, which can never match",
            );
            return;
        }
        out.push(Condition::Keywords(super::keywords::Keywords::new(
            &cleaned,
        )));
    }

    /// The regex of a `text:` condition, checked now and compiled when it first runs.
    fn regex(&mut self, text: &Located<String>) -> Option<TextRegex> {
        match TextRegex::check(&text.value) {
            Ok(regex) => Some(regex),
            Err(RegexError::Syntax { offset, message }) => {
                let column = text.column + offset + self.quote_width(text.line, text.column);
                self.error(text.line, column, format!("invalid regex: {message}"));
                None
            }
            Err(RegexError::Build(message)) => {
                self.error(text.line, text.column, format!("invalid regex: {message}"));
                None
            }
        }
    }

    /// The entries of a `reply_id`, each placed where it is written; a `/regex/` that does
    /// not compile is an error at the character it fails on.
    fn reply_ids(&mut self, ids: &Located<config::OneOrMany<String>>) -> Vec<ReplyId> {
        let mut out = Vec::new();
        let mut from = (ids.line, ids.column);
        for written in ids.value.iter() {
            let found = self.find_after(from, written);
            if let Some((line, column)) = found {
                // The next entry starts after this one, even where it is part of it (`[xa, a]`).
                from = (line, column + written.chars().count() as u32);
            }
            let (line, column) = found.unwrap_or((ids.line, ids.column));
            match ReplyPattern::parse(written) {
                Ok(pattern) => out.push(ReplyId {
                    pattern,
                    written: written.clone(),
                    line,
                    column,
                }),
                Err(RegexError::Syntax { offset, message }) => {
                    // After the opening slash.
                    let at = column + 1 + offset;
                    self.error(line, at, format!("invalid regex: {message}"));
                }
                Err(RegexError::Build(message)) => {
                    self.error(line, column, format!("invalid regex: {message}"));
                }
            }
        }
        out
    }

    /// Where `text` is next written at or after a position (line and column, 1-based), looking
    /// a few lines on: a list's entries follow the position of the list.
    fn find_after(&self, (line, column): (u32, u32), text: &str) -> Option<(u32, u32)> {
        const LOOK_AHEAD: u32 = 20;
        for at in line.max(1)..line.max(1) + LOOK_AHEAD {
            let source = self.lines.get(at.saturating_sub(1) as usize)?;
            let skip = if at == line {
                column.saturating_sub(1) as usize
            } else {
                0
            };
            let start = source
                .char_indices()
                .nth(skip)
                .map_or(source.len(), |(i, _)| i);
            if let Some(found) = source[start..].find(text) {
                let column = source[..start + found].chars().count() as u32 + 1;
                return Some((at, column));
            }
        }
        None
    }

    /// 1 when the scalar at a position starts with a quote, so offsets inside it line up.
    fn quote_width(&self, line: u32, column: u32) -> u32 {
        let Some(text) = self.lines.get(line.saturating_sub(1) as usize) else {
            return 0;
        };
        let first = text.chars().nth(column.saturating_sub(1) as usize);
        u32::from(matches!(first, Some('\'' | '"')))
    }
}

/// The names of a regex's named groups, `(?P<name>...)` or `(?<name>...)`, found by scanning
/// (compiling the regex twice would double the cost of a reload).
fn group_names(pattern: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = pattern;
    while let Some(at) = rest.find("(?") {
        let escaped = rest[..at].chars().rev().take_while(|c| *c == '\\').count() % 2 == 1;
        let after = &rest[at + 2..];
        let name = after
            .strip_prefix("P<")
            .or_else(|| after.strip_prefix('<'))
            .filter(|n| !n.starts_with(['=', '!']));
        if !escaped
            && let Some(name) = name
            && let Some(end) = name.find('>')
        {
            names.push(name[..end].to_owned());
        }
        rest = after;
    }
    names
}

/// Named groups of every `text` regex in a condition tree.
fn collect_groups(spec: &ConditionSpec) -> Vec<String> {
    let mut groups = spec
        .text
        .as_ref()
        .map(|t| group_names(&t.value))
        .unwrap_or_default();
    let nested = spec
        .any
        .iter()
        .chain(spec.all.iter())
        .flatten()
        .map(|b| &b.value)
        .chain(spec.not.as_deref().map(|b| &b.value));
    for block in nested {
        groups.extend(collect_groups(block));
    }
    groups
}
