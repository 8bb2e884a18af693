//! Compiled conditions and their evaluation. A failed condition reports itself so `simulate
//! --explain` can say which condition stopped a rule and what value it saw.

use std::collections::BTreeMap;

use regex_automata::PatternID;

use crate::events::{ChatKind, Event, EventKind};
use crate::vocab::Contact;

/// A block of conditions that must all hold (a rule's `when`, or one entry of `any`/`all`).
#[derive(Debug, Clone, Default)]
pub struct Block(pub Vec<Condition>);

/// One compiled condition.
#[derive(Debug, Clone)]
pub enum Condition {
    Event(Vec<EventKind>),
    Type(Vec<String>),
    Text {
        regex: std::sync::Arc<super::text_regex::TextRegex>,
        source: String,
    },
    Keywords(super::keywords::Keywords),
    From {
        globs: Vec<Glob>,
        negate: bool,
    },
    Chat(Vec<ChatKind>),
    ChatId(Vec<Glob>),
    /// The event came in on one of these channels.
    Channel(Vec<String>),
    FromMe(bool),
    /// The tapped button or picked list row id matches one of these.
    ReplyId(Vec<super::reply_id::ReplyId>),
    /// A poll vote chose one of these options (compared without regard to case).
    PollOption(Vec<String>),
    Emoji(Vec<String>),
    Status(Vec<String>),
    Tags {
        all: Vec<String>,
        any: Vec<String>,
        none: Vec<String>,
    },
    Name(Vec<String>),
    /// Within (`inside`) or outside a calendar's opening hours.
    Hours {
        calendar: std::sync::Arc<crate::calendar::Calendar>,
        inside: bool,
    },
    /// An `if:` expression compiled as a template that renders `1` when it holds.
    If {
        template: String,
        source: String,
    },
    Any(Vec<Block>),
    All(Vec<Block>),
    Not(Box<Block>),
}

/// A number or id pattern where `*` stands for any run of characters.
#[derive(Debug, Clone)]
pub struct Glob {
    pub source: String,
}

impl Glob {
    /// A `49*`-style pattern; a leading `+` is ignored because Whapi writes numbers without it.
    pub fn new(source: &str) -> Self {
        Self {
            source: source.trim().trim_start_matches('+').to_owned(),
        }
    }

    /// Whether a value matches: `*` stands for any run of characters, `?` for one.
    pub fn matches(&self, value: &str) -> bool {
        let (p, v): (Vec<char>, Vec<char>) =
            (self.source.chars().collect(), value.chars().collect());
        let (mut pi, mut vi) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while vi < v.len() {
            if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
                pi += 1;
                vi += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi, vi));
                pi += 1;
            } else if let Some((sp, sv)) = star {
                pi = sp + 1;
                vi = sv + 1;
                star = Some((sp, sv + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|c| *c == '*')
    }
}

/// What a condition sees: the event, the contact as it is now, and a way to check `if:`.
pub struct Input<'a> {
    pub event: &'a Event,
    pub contact: &'a Contact,
    /// Named groups captured by `text:` so far.
    pub captures: BTreeMap<String, String>,
    /// The time the event is processed (for opening hours).
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The condition that stopped a rule, described for people.
#[derive(Debug, Clone, PartialEq)]
pub struct Miss {
    pub condition: &'static str,
    pub detail: String,
}

/// Evaluates `if:` templates; the rule set provides it so conditions need no template access.
pub trait ExprEval {
    /// Whether the `if:` template renders `1` for this input (errors count as false).
    fn holds(&self, template: &str, input: &Input<'_>) -> Result<bool, String>;
}

impl Block {
    /// Checks every condition in order, stopping at the first that fails.
    pub fn check(&self, input: &mut Input<'_>, eval: &dyn ExprEval) -> Result<(), Miss> {
        for condition in &self.0 {
            condition.check(input, eval)?;
        }
        Ok(())
    }
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "nothing".to_owned(), |v| format!("{v:?}"))
}

fn one_of(value: Option<&str>, allowed: &[String]) -> bool {
    value.is_some_and(|v| allowed.iter().any(|a| a == v))
}

/// Holds when the event's value is one of the allowed values.
fn expect_one_of(
    condition: &'static str,
    value: Option<&str>,
    allowed: &[String],
) -> Result<(), Miss> {
    if one_of(value, allowed) {
        return Ok(());
    }
    let detail = format!("{} is not {}", shown(value), allowed.join(" or "));
    Err(Miss { condition, detail })
}

impl Condition {
    fn check(&self, input: &mut Input<'_>, eval: &dyn ExprEval) -> Result<(), Miss> {
        let event = input.event;
        let miss = |condition, detail: String| Err(Miss { condition, detail });
        match self {
            Self::Event(kinds) => {
                if kinds.contains(&event.kind) {
                    return Ok(());
                }
                miss(
                    "event",
                    format!("expected {} but the event is {}", list(kinds), event.kind),
                )
            }
            Self::Type(types) => expect_one_of("type", event.message_type.as_deref(), types),
            Self::Text { regex, source } => {
                let text = event.text.as_deref().unwrap_or("");
                let Some(regex) = regex.regex() else {
                    return miss("text", format!("/{source}/ could not be compiled"));
                };
                let mut caps = regex.create_captures();
                regex.captures(text, &mut caps);
                if !caps.is_match() {
                    return miss(
                        "text",
                        format!("/{source}/ did not match {}", shown(event.text.as_deref())),
                    );
                }
                let names = regex.group_info().pattern_names(PatternID::ZERO);
                for (group, name) in names.enumerate() {
                    if let (Some(name), Some(span)) = (name, caps.get_group(group)) {
                        input
                            .captures
                            .insert(name.to_owned(), text[span.range()].to_owned());
                    }
                }
                Ok(())
            }
            Self::Keywords(keywords) => {
                if event
                    .text
                    .as_deref()
                    .is_some_and(|_| keywords.matches(event.folded_text()))
                {
                    return Ok(());
                }
                miss(
                    "keywords",
                    format!(
                        "none of [{}] in {}",
                        keywords.shown.join(", "),
                        shown(event.text.as_deref())
                    ),
                )
            }
            Self::From { globs, negate } => {
                let phone = event
                    .sender
                    .as_ref()
                    .map(|s| s.phone.as_str())
                    .filter(|p| !p.is_empty());
                let hit = phone.is_some_and(|p| globs.iter().any(|g| g.matches(p)));
                if hit != *negate {
                    return Ok(());
                }
                let name = if *negate { "not_from" } else { "from" };
                let verb = if *negate { "matches" } else { "does not match" };
                miss(
                    name,
                    format!("sender {} {verb} {}", shown(phone), glob_list(globs)),
                )
            }
            Self::Chat(kinds) => {
                let kind = event.chat.as_ref().map(|c| c.kind);
                if kind.is_some_and(|k| kinds.contains(&k)) {
                    return Ok(());
                }
                let wanted: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                miss(
                    "chat",
                    format!(
                        "chat is {} not {}",
                        shown(kind.map(ChatKind::as_str)),
                        wanted.join(" or ")
                    ),
                )
            }
            Self::Channel(names) => {
                expect_one_of("channel", Some(event.channel_name.as_str()), names)
            }
            Self::ChatId(globs) => {
                let id = event.chat.as_ref().map(|c| c.id.as_str());
                if id.is_some_and(|i| globs.iter().any(|g| g.matches(i))) {
                    return Ok(());
                }
                miss(
                    "chat_id",
                    format!("chat {} does not match {}", shown(id), glob_list(globs)),
                )
            }
            Self::FromMe(wanted) => {
                if event.from_me == *wanted {
                    return Ok(());
                }
                let detail = if event.from_me {
                    "the message is our own (from_me); add `from_me: true` to match it".to_owned()
                } else {
                    "the message is not our own".to_owned()
                };
                miss("from_me", detail)
            }
            Self::ReplyId(ids) => {
                let id = event.reply_id.as_deref();
                if id.is_some_and(|id| ids.iter().any(|p| p.pattern.matches(id))) {
                    return Ok(());
                }
                let written: Vec<&str> = ids.iter().map(|p| p.written.as_str()).collect();
                let exact = ids
                    .iter()
                    .all(|p| matches!(p.pattern, super::reply_id::ReplyPattern::Exact(_)));
                let detail = if exact {
                    format!("{} is not {}", shown(id), written.join(" or "))
                } else {
                    format!("{} does not match {}", shown(id), written.join(" or "))
                };
                miss("reply_id", detail)
            }
            Self::PollOption(wanted) => {
                let chose = |w: &String| {
                    event
                        .options
                        .iter()
                        .any(|o| o.trim().eq_ignore_ascii_case(w.trim()))
                };
                if wanted.iter().any(chose) {
                    return Ok(());
                }
                let detail = if event.options.is_empty() {
                    "no poll option was chosen in this event".to_owned()
                } else {
                    format!(
                        "the vote chose {}, not {}",
                        event.options.join(", "),
                        wanted.join(" or ")
                    )
                };
                miss("option", detail)
            }
            Self::Emoji(emojis) => expect_one_of("emoji", event.emoji.as_deref(), emojis),
            Self::Status(statuses) => expect_one_of("status", event.status.as_deref(), statuses),
            Self::Tags { all, any, none } => check_tags(input.contact, all, any, none),
            Self::Name(names) => {
                let name = match &event.kind {
                    EventKind::Custom(n) => Some(n.as_str()),
                    _ => None,
                };
                expect_one_of("name", name, names)
            }
            Self::Hours { calendar, inside } => {
                if calendar.is_open(input.now) == *inside {
                    return Ok(());
                }
                let local = input
                    .now
                    .with_timezone(&calendar.timezone)
                    .format("%a %H:%M");
                let (name, state) = if *inside {
                    ("hours", "closed")
                } else {
                    ("outside_hours", "open")
                };
                miss(
                    name,
                    format!(
                        "`{}` is {state} at {local} ({})",
                        calendar.name, calendar.timezone
                    ),
                )
            }
            Self::If { template, source } => match eval.holds(template, input) {
                Ok(true) => Ok(()),
                Ok(false) => miss("if", format!("`{source}` is false")),
                Err(err) => miss("if", format!("`{source}` failed: {err}")),
            },
            Self::Any(blocks) => {
                let mut misses = Vec::new();
                for block in blocks {
                    match block.check(input, eval) {
                        Ok(()) => return Ok(()),
                        Err(m) => misses.push(format!("{}: {}", m.condition, m.detail)),
                    }
                }
                miss("any", format!("no block held ({})", misses.join("; ")))
            }
            Self::All(blocks) => blocks.iter().try_for_each(|b| b.check(input, eval)),
            Self::Not(block) => match block.check(input, eval) {
                Ok(()) => miss("not", "the negated block held".to_owned()),
                Err(_) => Ok(()),
            },
        }
    }
}

fn check_tags(
    contact: &Contact,
    all: &[String],
    any: &[String],
    none: &[String],
) -> Result<(), Miss> {
    let has = |t: &String| contact.tags.contains(t);
    let fail = |detail: String| {
        Err(Miss {
            condition: "tags",
            detail,
        })
    };
    if let Some(missing) = all.iter().find(|t| !has(t)) {
        return fail(format!("contact lacks `{missing}`"));
    }
    if !any.is_empty() && !any.iter().any(has) {
        return fail(format!("contact has none of [{}]", any.join(", ")));
    }
    if let Some(present) = none.iter().find(|t| has(t)) {
        return fail(format!("contact has `{present}`"));
    }
    Ok(())
}

fn list(kinds: &[EventKind]) -> String {
    kinds
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

fn glob_list(globs: &[Glob]) -> String {
    globs
        .iter()
        .map(|g| g.source.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
