//! Templates: MiniJinja strings in actions and `if:` expressions, parsed and checked once when
//! a rule set compiles, rendered against an event's context at run time.
//!
//! Unknown variables are found at load time by walking each template's undeclared variables;
//! at run time a missing value is an error (strict mode), never a silently empty string.
//!
//! Riposte's own helpers live beside this file: `date`, `today` and the zone they write in
//! (`dates`, with the languages in `locales`), `money`, and the calendar functions
//! `next_open` and `hours_today` (`calendars`). What a template writes out for them (a
//! format, a locale, a currency, a calendar) is checked at load time too (`calls`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::DateTime;

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::calendar::Calendar;
use crate::rules::did_you_mean;

mod bad_value;
mod calendars;
mod calls;
mod dates;
pub(crate) mod locales;
mod money;
mod undefined;
mod url;

pub use dates::{ZONE, today, zone_value};
pub use url::{UrlError, UrlText};

/// Work a single render may do before it is stopped (a runaway loop fails its action, not the
/// server). One unit is roughly one template instruction.
const FUEL: u64 = 200_000;
/// Longest text a template may produce.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// The variables a template can use, with the fields Riposte itself defines; `None` means any.
type Roots = &'static [(&'static str, Option<&'static [&'static str]>)];

const EVENT_ROOTS: Roots = &[
    ("item", None),
    ("message", None),
    ("data", None),
    ("text", None),
    ("now", None),
    ("today", None),
    ("event", Some(&["kind", "id", "channel", "at"])),
    ("channel", Some(&["name", "id"])),
    ("sender", Some(&["phone", "name"])),
    ("chat", Some(&["id", "kind", "name"])),
    ("contact", Some(&["tags", "attrs", "phone"])),
    ("rule", Some(&["name"])),
    ("match", Some(&[])),
    (
        "sent",
        Some(&[
            "id", "rule", "campaign", "text", "kind", "chat", "channel", "status", "sent_at",
            "options",
        ]),
    ),
    ("vote", Some(&["options"])),
];

const CAMPAIGN_ROOTS: Roots = &[
    ("contact", Some(&["tags", "attrs", "phone"])),
    ("campaign", Some(&["name"])),
    ("now", None),
    ("today", None),
];

/// Where a template is used decides which variables it can see.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// In a rule: the event's variables; `match` has the rule's regex groups and `lookup`
    /// the answers of the lookups before this action.
    Event {
        groups: &'a [String],
        lookups: &'a [String],
        /// The `data` fields the rule's custom events declare; `None` for any field.
        data: Option<&'a [String]>,
    },
    /// In a campaign message: the recipient and the campaign.
    Campaign,
}

impl Scope<'_> {
    fn roots(self) -> Roots {
        match self {
            Self::Event { .. } => EVENT_ROOTS,
            Self::Campaign => CAMPAIGN_ROOTS,
        }
    }

    fn groups(&self) -> &[String] {
        match self {
            Self::Event { groups, .. } => groups,
            Self::Campaign => &[],
        }
    }

    fn data(&self) -> Option<&[String]> {
        match self {
            Self::Event { data, .. } => *data,
            Self::Campaign => None,
        }
    }

    fn lookups(&self) -> &[String] {
        match self {
            Self::Event { lookups, .. } => lookups,
            Self::Campaign => &[],
        }
    }
}

/// A string that is either fixed text or a compiled template.
#[derive(Debug, Clone, PartialEq)]
pub enum Text {
    Literal(String),
    Template(String),
}

/// Template sources by name: what the environment compiles a template from when it is first
/// rendered (see [`Templates::add`]).
type Sources = Arc<RwLock<HashMap<Arc<str>, Arc<str>>>>;

/// How a template writes values: as they are (text), or percent-encoded (a webhook URL). The
/// same source in the two modes is two templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Escape {
    Text,
    Url,
}

/// The compiled templates of one rule set.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    sources: Sources,
    next: usize,
    /// Top-level variables used by the templates compiled since the last `take_used`.
    used: BTreeSet<String>,
    /// Compiled templates by mode and source, with the variable paths each uses.
    by_source: HashMap<(Escape, Arc<str>), Arc<Compiled>>,
    /// Names handed out by this compile: carried-over templates no rule uses any more go.
    in_use: HashSet<Arc<str>>,
    /// Names handed out since the last `take_names`.
    handed: Vec<Arc<str>>,
    /// The calendars `next_open` and `hours_today` may name in this compile.
    calendars: Vec<String>,
    /// One copy of each set of variables rules use: thousands of rules use the same few.
    used_sets: HashSet<Arc<BTreeSet<String>>>,
}

/// A compiled template's name, the variable paths it uses and the calendars it names.
#[derive(Debug)]
struct Compiled {
    name: Arc<str>,
    used: BTreeSet<String>,
    calendars: Vec<calls::CalendarUse>,
}

/// A template problem found at load time, with the line inside the template (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateProblem {
    pub line_offset: u32,
    pub message: String,
}

/// A failure while rendering at run time.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template error: {}", undefined::describe(.0, 1))]
    Template(#[from] minijinja::Error),
    /// A template failed at run time: what was missing or went wrong, in the author's words.
    #[error("{0}")]
    Failed(String),
    #[error("rendered text is {0} bytes, more than the limit of {MAX_OUTPUT}")]
    TooLong(usize),
    #[error(transparent)]
    Url(#[from] UrlError),
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// Any serialisable value as a template value.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Value {
    Value::from(Serde(value))
}

impl Templates {
    /// An empty set with Riposte's settings: strict undefined, fuel, no HTML escaping, and
    /// percent-encoding in webhook URLs.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.set_auto_escape_callback(url::auto_escape);
        env.set_formatter(url::formatter);
        env.add_filter("shift", shift);
        env.add_filter("safe_url", url::safe_url);
        env.add_filter("date", dates::date);
        env.add_filter("money", money::money);
        let sources = Sources::default();
        compile_on_first_use(&mut env, &sources);
        Self {
            env,
            sources,
            next: 0,
            used: BTreeSet::new(),
            by_source: HashMap::new(),
            in_use: HashSet::new(),
            handed: Vec::new(),
            used_sets: HashSet::new(),
            calendars: Vec::new(),
        }
    }

    /// The templates of an earlier compile, to compile the next set with: rules kept from
    /// it keep their templates (shared, not compiled again), and new names never clash.
    pub(crate) fn carried(&self) -> Self {
        let mut env = self.env.clone();
        // Its own sources: dropping a template here must not unload it from the set in use.
        let sources = Arc::new(RwLock::new(
            self.sources
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        ));
        compile_on_first_use(&mut env, &sources);
        Self {
            env,
            sources,
            next: self.next,
            used: BTreeSet::new(),
            by_source: self.by_source.clone(),
            in_use: HashSet::new(),
            handed: Vec::new(),
            used_sets: HashSet::new(),
            calendars: self.calendars.clone(),
        }
    }

    /// How many compiled templates the set holds (texts written alike are compiled once).
    pub fn len(&self) -> usize {
        self.by_source.len()
    }

    /// Whether the set holds no compiled template.
    pub fn is_empty(&self) -> bool {
        self.by_source.is_empty()
    }

    /// The text a template was compiled from, by its name.
    pub(crate) fn source(&self, name: &str) -> Option<Arc<str>> {
        self.sources
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The template names handed out since the last call.
    pub(crate) fn take_names(&mut self) -> Vec<Arc<str>> {
        std::mem::take(&mut self.handed)
    }

    /// Marks the templates of a rule kept from the earlier compile as still in use.
    pub(crate) fn keep(&mut self, names: &[Arc<str>]) {
        self.in_use.extend(names.iter().cloned());
    }

    /// Drops the carried-over templates that no rule of this compile uses.
    pub(crate) fn drop_unused(&mut self) {
        let in_use = std::mem::take(&mut self.in_use);
        let env = &mut self.env;
        let mut sources = self.sources.write().unwrap_or_else(PoisonError::into_inner);
        self.by_source.retain(|_, compiled| {
            let keep = in_use.contains(&compiled.name);
            if !keep {
                env.remove_template(&compiled.name);
                sources.remove(&compiled.name);
            }
            keep
        });
    }

    /// Makes the calendar functions available over these calendars: `next_open('CALENDAR')`,
    /// when the calendar next opens after the event, in its zone, as `Monday 09:00` (or in a
    /// strftime format given as a second argument), and `hours_today('CALENDAR')`, its hours
    /// on the event's day, as `07:00–18:00` (empty when it is closed).
    pub fn add_calendars(&mut self, calendars: HashMap<String, Arc<Calendar>>) {
        self.calendars = calendars.keys().cloned().collect();
        // In order, so a did-you-mean between names equally near is the same on every load.
        self.calendars.sort();
        calendars::add(&mut self.env, calendars);
    }

    /// Compiles a template string for use in `scope`.
    pub fn text(&mut self, source: &str, scope: Scope<'_>) -> Result<Text, Vec<TemplateProblem>> {
        if !is_template(source) {
            return Ok(Text::Literal(source.to_owned()));
        }
        self.add(source.to_owned(), scope, Escape::Text)
            .map(Text::Template)
    }

    /// Compiles a webhook URL for use in `scope`: the values it writes are percent-encoded
    /// unless marked `| safe_url`.
    pub fn url(&mut self, source: &str, scope: Scope<'_>) -> Result<UrlText, Vec<TemplateProblem>> {
        if !is_template(source) {
            return Ok(UrlText(Text::Literal(source.to_owned())));
        }
        self.add(source.to_owned(), scope, Escape::Url)
            .map(|name| UrlText(Text::Template(name)))
    }

    /// Compiles an `if:` expression into a template that renders `1` when it holds.
    pub fn condition(
        &mut self,
        expr: &str,
        scope: Scope<'_>,
    ) -> Result<String, Vec<TemplateProblem>> {
        self.add(
            format!("{{% if {expr} %}}1{{% endif %}}"),
            scope,
            Escape::Text,
        )
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|p| TemplateProblem {
                    message: p
                        .message
                        .replace("template syntax: ", "invalid expression: "),
                    ..p
                })
                .collect()
        })
    }

    /// Compiles a `{{ expression }}` into a template that renders the value as JSON, so a
    /// webhook body keeps numbers, booleans and objects as they are.
    pub fn json_value(
        &mut self,
        expr: &str,
        scope: Scope<'_>,
    ) -> Result<String, Vec<TemplateProblem>> {
        self.add(format!("{{{{ ({expr}) | tojson }}}}"), scope, Escape::Text)
    }

    /// The top-level variables (`data`, `message`, ...) used since the last call.
    pub fn take_used(&mut self) -> Arc<BTreeSet<String>> {
        let used = std::mem::take(&mut self.used);
        if let Some(shared) = self.used_sets.get(&used) {
            return shared.clone();
        }
        let shared = Arc::new(used);
        self.used_sets.insert(shared.clone());
        shared
    }

    /// Evaluates an expression once, without keeping it (a follow-up's `unless.if`, checked
    /// when it is due; it was validated when its rule loaded).
    pub fn holds_once(&mut self, expr: &str, ctx: &Value) -> Result<bool, String> {
        let source = format!("{{% if {expr} %}}1{{% endif %}}");
        let rendered = self
            .env
            .render_str(&source, ctx)
            .map_err(|e| undefined::describe(&e, 1))?;
        Ok(rendered == "1")
    }

    fn add(
        &mut self,
        source: String,
        scope: Scope<'_>,
        escape: Escape,
    ) -> Result<String, Vec<TemplateProblem>> {
        // Rule sets repeat the same texts (`You said {{ text }}` in a hundred rules), and each
        // compiled template costs kilobytes: one copy serves every rule that writes it. Its
        // variables are still checked against each rule's scope.
        let key = (escape, Arc::<str>::from(source));
        if let Some(compiled) = self.by_source.get(&key).cloned() {
            let mut problems = self.check_variables(&compiled.used, scope);
            problems.extend(self.check_calendars(&compiled.calendars));
            if !problems.is_empty() {
                return Err(problems);
            }
            self.note_used(&compiled.used);
            self.hand_out(&compiled.name);
            return Ok(compiled.name.to_string());
        }
        // The name carries the mode: the environment picks a template's escaping by its name.
        let name = match escape {
            Escape::Text => format!("t{}", self.next),
            Escape::Url => format!("t{}{}", self.next, url::SUFFIX),
        };
        self.next += 1;
        let source = key.1.to_string();
        if let Err(err) = self.env.add_template_owned(name.clone(), source) {
            return Err(vec![problem_from(&err)]);
        }
        // Parsed once for both uses: the checks need dotted paths, lint the roots.
        let used: BTreeSet<String> = match self.env.get_template(&name) {
            Ok(template) => template.undeclared_variables(true).into_iter().collect(),
            Err(_) => BTreeSet::new(),
        };
        let mut problems = self.check_variables(&used, scope);
        let calls = calls::check(&key.1);
        problems.extend(calls.problems);
        problems.extend(self.check_calendars(&calls.calendars));
        // Checked, it waits as source until it is first rendered: a compiled template holds
        // about 8 KB however short it is, and most rules of a large set rarely fire.
        self.env.remove_template(&name);
        if problems.is_empty() {
            self.note_used(&used);
            let shared: Arc<str> = name.as_str().into();
            self.hand_out(&shared);
            self.sources
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(shared.clone(), key.1.clone());
            let compiled = Compiled {
                name: shared,
                used,
                calendars: calls.calendars,
            };
            self.by_source.insert(key, Arc::new(compiled));
            Ok(name)
        } else {
            Err(problems)
        }
    }

    fn hand_out(&mut self, name: &Arc<str>) {
        self.in_use.insert(name.clone());
        self.handed.push(name.clone());
    }

    fn note_used(&mut self, used: &BTreeSet<String>) {
        self.used.extend(
            used.iter()
                .map(|path| path.split('.').next().unwrap_or(path).to_owned()),
        );
    }

    fn check_variables(&self, used: &BTreeSet<String>, scope: Scope<'_>) -> Vec<TemplateProblem> {
        used.iter()
            .filter_map(|path| self.unknown_variable(path, scope))
            .map(|message| TemplateProblem {
                line_offset: 1,
                message,
            })
            .collect()
    }

    /// The calendars a template names that this compile does not have.
    fn check_calendars(&self, names: &[calls::CalendarUse]) -> Vec<TemplateProblem> {
        let known = self.calendars.iter().map(String::as_str);
        names
            .iter()
            .filter(|c| !self.calendars.contains(&c.name))
            .map(|c| {
                let hint = did_you_mean(&c.name, known.clone()).map_or_else(
                    || " (define it under `calendars:`)".to_owned(),
                    |b| format!(", did you mean `{b}`?"),
                );
                TemplateProblem {
                    line_offset: c.line,
                    message: format!("unknown calendar `{}`{hint}", c.name),
                }
            })
            .collect()
    }

    fn unknown_variable(&self, path: &str, scope: Scope<'_>) -> Option<String> {
        let mut parts = path.splitn(3, '.');
        let root = parts.next().unwrap_or_default();
        let field = parts.next();
        if self.env.globals().any(|(name, _)| name == root) {
            return None;
        }
        if root == "lookup" && matches!(scope, Scope::Event { .. }) {
            return unknown_lookup(field, scope.lookups());
        }
        if root == "data"
            && let (Some(field), Some(declared)) = (field, scope.data())
        {
            return unknown_data_field(field, declared);
        }
        let roots = scope.roots();
        let Some((_, fields)) = roots.iter().find(|(r, _)| *r == root) else {
            let names: Vec<&str> = roots.iter().map(|(r, _)| *r).collect();
            let hint = did_you_mean(root, names.iter().copied()).map_or_else(
                || format!(", available: {}", names.join(", ")),
                |b| format!(", did you mean `{b}`?"),
            );
            return Some(format!("unknown template variable `{root}`{hint}"));
        };
        let (Some(fields), Some(field)) = (fields, field) else {
            return None;
        };
        if root == "match" {
            return unknown_group(field, scope.groups());
        }

        if fields.contains(&field) {
            return None;
        }
        let hint = did_you_mean(field, fields.iter().copied()).map_or_else(
            || format!(" (fields: {})", fields.join(", ")),
            |b| format!(", did you mean `{root}.{b}`?"),
        );
        Some(format!("unknown template variable `{root}.{field}`{hint}"))
    }

    /// Renders a text against an event context.
    pub fn render(&self, text: &Text, ctx: &Value) -> Result<String, RenderError> {
        match text {
            Text::Literal(s) => Ok(s.clone()),
            Text::Template(name) => self.render_named(name, ctx),
        }
    }

    /// Renders a webhook URL and checks each value against the part of the URL it landed in.
    pub fn render_url(&self, url: &UrlText, ctx: &Value) -> Result<String, RenderError> {
        match &url.0 {
            Text::Literal(s) => Ok(s.clone()),
            Text::Template(name) => {
                let raw = self.render_named(name, ctx)?;
                Ok(url::finish(raw.trim())?)
            }
        }
    }

    /// Renders a template compiled by [`Self::condition`] or [`Self::json_value`].
    pub fn render_named(&self, name: &str, ctx: &Value) -> Result<String, RenderError> {
        let template = self.env.get_template(name)?;
        let out = template.render(ctx).map_err(|err| {
            let err = self.explain(name, err);
            let reason = undefined::missing(&template, &err, ctx)
                .unwrap_or_else(|| undefined::describe(&err, template.source().lines().count()));
            RenderError::Failed(reason)
        })?;
        if out.len() > MAX_OUTPUT {
            return Err(RenderError::TooLong(out.len()));
        }
        Ok(out)
    }

    /// A render error, naming the variable a filter could not read where the template
    /// applied it to one.
    fn explain(&self, name: &str, err: minijinja::Error) -> minijinja::Error {
        let sources = self.sources.read().unwrap_or_else(PoisonError::into_inner);
        match sources.get(name) {
            Some(source) => bad_value::explain(err, source),
            None => err,
        }
    }
}

/// Whether a string holds template syntax at all.
fn is_template(source: &str) -> bool {
    source.contains("{{") || source.contains("{%") || source.contains("{#")
}

/// Has `env` compile a template from `sources` the first time it is rendered.
fn compile_on_first_use(env: &mut Environment<'static>, sources: &Sources) {
    let sources = sources.clone();
    env.set_loader(move |name| {
        let sources = sources.read().unwrap_or_else(PoisonError::into_inner);
        Ok(sources.get(name).map(|source| source.to_string()))
    });
}

/// `{{ data.starts_at | shift('-24h') }}`: a time moved by a duration. RFC 3339 stays RFC 3339;
/// a local `YYYY-MM-DD HH:MM` stays local (and `at:` reads it in the rule's zone).
fn shift(time: &str, by: &str) -> Result<String, minijinja::Error> {
    let invalid = |msg: String| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg);
    let (negative, amount) = match by.trim().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, by.trim().trim_start_matches('+')),
    };
    let step = crate::duration::parse(amount).map_err(invalid)?;
    let step = chrono::Duration::from_std(step).map_err(|e| invalid(e.to_string()))?;
    let step = if negative { -step } else { step };
    if let Ok(t) = DateTime::parse_from_rfc3339(time.trim()) {
        return Ok((t + step).to_rfc3339());
    }
    for format in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(time.trim(), format) {
            return Ok((t + step).format("%Y-%m-%d %H:%M").to_string());
        }
    }
    Err(invalid(format!(
        "shift: `{time}` is not a time (RFC 3339 or `YYYY-MM-DD HH:MM`)"
    )))
}

/// `lookup.NAME` is known in the actions after a `lookup:` with `as: NAME` in the same rule.
fn unknown_lookup(field: Option<&str>, lookups: &[String]) -> Option<String> {
    let Some(field) = field else {
        return (lookups.is_empty()).then(|| {
            "unknown template variable `lookup`: it holds the answers of `lookup:` actions \
             earlier in the same rule, and there is none before this one"
                .to_owned()
        });
    };
    if lookups.iter().any(|l| l == field) {
        return None;
    }
    if lookups.is_empty() {
        return Some(format!(
            "unknown template variable `lookup.{field}`: it is only known in the actions after \
             a `lookup:` with `as: {field}` in the same rule"
        ));
    }
    let hint = did_you_mean(field, lookups.iter().map(String::as_str)).map_or_else(
        || format!(" (lookups before this action: {})", lookups.join(", ")),
        |b| format!(", did you mean `lookup.{b}`?"),
    );
    Some(format!(
        "unknown template variable `lookup.{field}`: no `lookup:` with `as: {field}` before this action{hint}"
    ))
}

fn unknown_data_field(field: &str, declared: &[String]) -> Option<String> {
    if declared.iter().any(|d| d == field) {
        return None;
    }
    let hint = did_you_mean(field, declared.iter().map(String::as_str)).map_or_else(
        || format!(" (declared fields: {})", declared.join(", ")),
        |b| format!(", did you mean `data.{b}`?"),
    );
    Some(format!(
        "unknown template variable `data.{field}`: the event does not declare `{field}`{hint}"
    ))
}

fn unknown_group(field: &str, groups: &[String]) -> Option<String> {
    if groups.iter().any(|g| g == field) {
        return None;
    }
    if groups.is_empty() {
        return Some(format!(
            "unknown template variable `match.{field}`: the rule's `text` has no named group `{field}`"
        ));
    }
    let hint = did_you_mean(field, groups.iter().map(String::as_str)).map_or_else(
        || format!(" (groups: {})", groups.join(", ")),
        |b| format!(", did you mean `{b}`?"),
    );
    Some(format!(
        "unknown template variable `match.{field}`: no such group in `text`{hint}"
    ))
}

fn problem_from(err: &minijinja::Error) -> TemplateProblem {
    let detail = err
        .detail()
        .map_or_else(|| err.kind().to_string(), str::to_owned);
    TemplateProblem {
        line_offset: err.line().unwrap_or(1) as u32,
        message: format!("template syntax: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn literal_text_is_not_a_template() {
        let mut t = Templates::new();
        assert_eq!(
            t.text(
                "Hello & <welcome>",
                Scope::Event {
                    groups: &[],
                    lookups: &[],
                    data: None,
                }
            )
            .unwrap(),
            Text::Literal("Hello & <welcome>".into())
        );
    }

    #[test]
    fn renders_without_html_escaping() {
        let mut t = Templates::new();
        let text = t
            .text(
                "{{ sender.name }} & co",
                Scope::Event {
                    groups: &[],
                    lookups: &[],
                    data: None,
                },
            )
            .unwrap();
        let out = t
            .render(
                &text,
                &context! { sender => context! { name => "Tom <T>" } },
            )
            .unwrap();
        assert_eq!(out, "Tom <T> & co");
    }

    #[test]
    fn a_checked_template_is_compiled_when_first_rendered() {
        let mut t = Templates::new();
        let scope = Scope::Event {
            groups: &[],
            lookups: &[],
            data: None,
        };
        let hello = t.text("Hi {{ sender.name }}", scope).unwrap();
        let bye = t.text("Bye {{ sender.name }}", scope).unwrap();
        assert_eq!(t.env.templates().count(), 0, "checked, not kept compiled");
        let ctx = context! { sender => context! { name => "Ana" } };
        assert_eq!(t.render(&hello, &ctx).unwrap(), "Hi Ana");
        assert_eq!(
            t.env.templates().count(),
            1,
            "only what rendered is compiled"
        );
        // The next set keeps only the first; the set in use still renders both.
        let mut next = t.carried();
        let Text::Template(kept) = &hello else {
            panic!("a template")
        };
        next.keep(&[kept.as_str().into()]);
        next.drop_unused();
        assert_eq!(next.render(&hello, &ctx).unwrap(), "Hi Ana");
        assert!(
            next.render(&bye, &ctx).is_err(),
            "dropped from the next set"
        );
        assert_eq!(t.render(&bye, &ctx).unwrap(), "Bye Ana");
    }

    #[test]
    fn a_repeated_text_is_compiled_once_and_checked_in_each_scope() {
        let mut t = Templates::new();
        let source = "Order {{ match.order }}";
        let order = ["order".to_owned()];
        let first = t
            .text(
                source,
                Scope::Event {
                    groups: &order,
                    lookups: &[],
                    data: None,
                },
            )
            .unwrap();
        let again = t
            .text(
                source,
                Scope::Event {
                    groups: &order,
                    lookups: &[],
                    data: None,
                },
            )
            .unwrap();
        assert_eq!(first, again);
        let err = t
            .text(
                source,
                Scope::Event {
                    groups: &[],
                    lookups: &[],
                    data: None,
                },
            )
            .unwrap_err();
        assert!(err[0].message.contains("match.order"), "{}", err[0].message);
        assert_eq!(*t.take_used(), BTreeSet::from(["match".to_owned()]));
    }

    #[test]
    fn unknown_variables_are_load_time_errors() {
        let mut t = Templates::new();
        let err = t
            .text(
                "{{ sender.nme }}",
                Scope::Event {
                    groups: &[],
                    lookups: &[],
                    data: None,
                },
            )
            .unwrap_err();
        assert_eq!(
            err[0].message,
            "unknown template variable `sender.nme`, did you mean `sender.name`?"
        );
        let err = t
            .text(
                "{{ match.ordr }}",
                Scope::Event {
                    groups: &["order".into()],
                    lookups: &[],
                    data: None,
                },
            )
            .unwrap_err();
        assert!(err[0].message.contains("did you mean `order`"), "{err:?}");
        let err = t
            .text(
                "{{ sendr.name }}",
                Scope::Event {
                    groups: &[],
                    lookups: &[],
                    data: None,
                },
            )
            .unwrap_err();
        assert!(err[0].message.contains("did you mean `sender`"), "{err:?}");
    }

    #[test]
    fn default_filter_covers_missing_values() {
        let mut t = Templates::new();
        let text = t
            .text(
                "Hi {{ sender.name | default('there') }}",
                Scope::Event {
                    groups: &[],
                    lookups: &[],
                    data: None,
                },
            )
            .unwrap();
        let out = t
            .render(&text, &context! { sender => context! { phone => "1" } })
            .unwrap();
        assert_eq!(out, "Hi there");
    }

    #[test]
    fn runaway_loops_run_out_of_fuel() {
        let mut t = Templates::new();
        // Each loop stays under the range limit; together they would run ten billion times.
        let source =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        let text = t
            .text(
                source,
                Scope::Event {
                    groups: &[],
                    lookups: &[],
                    data: None,
                },
            )
            .unwrap();
        let err = t.render(&text, &context! {}).unwrap_err();
        assert!(err.to_string().contains("fuel"), "{err}");
    }

    #[test]
    fn shift_moves_times_keeping_their_form() {
        let mut t = Templates::new();
        let text = t
            .text(
                "{{ a | shift('-24h') }} / {{ b | shift('90m') }}",
                Scope::Campaign,
            )
            .unwrap_err();
        assert!(!text.is_empty(), "`a` is not a campaign variable");
        let text = t
            .text(
                "{{ data.a | shift('-24h') }} / {{ data.b | shift('90m') }}",
                Scope::Event {
                    groups: &[],
                    lookups: &[],
                    data: None,
                },
            )
            .unwrap();
        let ctx = context! { data => context! { a => "2026-03-03T10:00:00+01:00", b => "2026-03-03 10:00" } };
        assert_eq!(
            t.render(&text, &ctx).unwrap(),
            "2026-03-02T10:00:00+01:00 / 2026-03-03 11:30"
        );
    }

    fn event_scope() -> Scope<'static> {
        Scope::Event {
            groups: &[],
            lookups: &[],
            data: None,
        }
    }

    fn with_bakery() -> Templates {
        let mut t = Templates::new();
        let calendar = Calendar {
            name: "bakery".into(),
            timezone: chrono_tz::Europe::Berlin,
            open: Vec::new(),
            closed: BTreeSet::new(),
        };
        t.add_calendars(HashMap::from([("bakery".to_owned(), Arc::new(calendar))]));
        t
    }

    #[test]
    fn dates_and_money_render_in_the_rules_zone_and_language() {
        let mut t = Templates::new();
        let text = t
            .text(
                "{{ data.time | date('%A %d.%m. %H:%M', 'de') }}, {{ today | date('%d %B', 'ro') }}: \
                 {{ 42.5 | money('EUR', 'de') }}",
                event_scope(),
            )
            .unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-03T23:30:00Z")
            .unwrap()
            .to_utc();
        let zone = chrono_tz::Europe::Bucharest;
        let ctx = context! {
            data => context! { time => "2026-03-03T13:30:00Z" },
            today => today(now, zone),
            __zone__ => zone_value(zone),
        };
        assert_eq!(
            t.render(&text, &ctx).unwrap(),
            "Dienstag 03.03. 15:30, 04 martie: 42,50\u{a0}€"
        );
    }

    #[test]
    fn literal_helper_arguments_are_load_time_errors_on_their_line() {
        let mut t = with_bakery();
        let err = t
            .text(
                "Hi\n{{ data.t | date('%A', 'gr') }}\n{{ 3 | money('EURO') }}",
                event_scope(),
            )
            .unwrap_err();
        let found: Vec<(u32, &str)> = err
            .iter()
            .map(|p| (p.line_offset, p.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    2,
                    "date: unknown locale `gr` (locales: en, de, es, pt, fr, it, ro)"
                ),
                (
                    3,
                    "money: unknown currency `EURO`, did you mean `EUR`? \
                     (currencies: EUR, USD, GBP, RON, BRL, CHF, JPY)"
                ),
            ]
        );
        let err = t
            .condition("'next week' | date('%A') == 'Monday'", event_scope())
            .unwrap_err();
        assert!(
            err[0]
                .message
                .starts_with("date: `next week` is not a date"),
            "{err:?}"
        );
        let err = t
            .text("{{ hours_today('bakry') }}", event_scope())
            .unwrap_err();
        assert_eq!(
            err[0].message,
            "unknown calendar `bakry`, did you mean `bakery`?"
        );
        assert!(t.text("{{ hours_today('bakery') }}", event_scope()).is_ok());
        assert!(t.text("{{ today }}", Scope::Campaign).is_ok());
    }

    #[test]
    fn a_template_kept_from_the_last_compile_is_checked_against_its_calendars() {
        let mut t = with_bakery();
        let source = "Open {{ hours_today('bakery') }}";
        assert!(t.text(source, event_scope()).is_ok());
        let mut next = t.carried();
        next.add_calendars(HashMap::new());
        let err = next.text(source, event_scope()).unwrap_err();
        assert_eq!(
            err[0].message,
            "unknown calendar `bakery` (define it under `calendars:`)"
        );
    }

    #[test]
    fn a_value_that_is_not_a_date_names_its_variable() {
        let mut t = Templates::new();
        let text = t
            .text(
                "Hi {{ sender.name }},\nsee you {{ data.time | date('%A %H:%M') }}",
                event_scope(),
            )
            .unwrap();
        let ctx = context! { sender => context! { name => "Ana" }, data => context! { time => "tomorrow 10am" } };
        let err = t.render(&text, &ctx).unwrap_err().to_string();
        assert!(
            err.contains(
                "date: `data.time` is `tomorrow 10am`, which is not a date (RFC 3339 like \
                 `2026-03-03T14:30:00+01:00`, `2026-03-03`, `2026-03-03 14:30`, or Unix seconds)"
            ),
            "{err}"
        );
        let ctx = context! { sender => context! { name => "Ana" }, data => context! {} };
        let err = t.render(&text, &ctx).unwrap_err().to_string();
        assert!(
            err.contains("`data.time` is not defined for this event"),
            "{err}"
        );
        let text = t
            .text("{{ data.total | money('EUR') }}", event_scope())
            .unwrap();
        let ctx = context! { data => context! { total => "12,50" } };
        let err = t.render(&text, &ctx).unwrap_err().to_string();
        assert!(
            err.contains("money: `data.total` is `12,50`, which is not an amount"),
            "{err}"
        );
    }

    #[test]
    fn the_zone_key_is_the_one_contexts_are_built_with() {
        let ctx = context! { __zone__ => zone_value(chrono_tz::Asia::Tokyo) };
        assert!(ctx.get_attr(ZONE).is_ok_and(|z| !z.is_undefined()));
    }

    #[test]
    fn campaign_templates_see_only_the_recipient() {
        let mut t = Templates::new();
        assert!(
            t.text("Hi {{ contact.attrs.first_name }}", Scope::Campaign)
                .is_ok()
        );
        let err = t.text("Hi {{ sender.name }}", Scope::Campaign).unwrap_err();
        assert!(
            err[0].message.contains("available: contact, campaign, now"),
            "{err:?}"
        );
    }
}
