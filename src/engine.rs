//! The rule engine: one event against a rule set gives, for each rule, matched or the
//! condition that failed, and the rendered effects of the matched rules' actions.
//!
//! Pure and synchronous: no I/O, no clock. The server, `simulate` and rule tests all call
//! [`evaluate`] and differ only in what they do with the result.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use minijinja::{Value, context};
use serde::Serialize;

use crate::actions::{RenderCx, Step, Timing, Unless, parse_at};
use crate::events::Event;
use crate::rules::{ExprEval, Input, Rule, RuleSet};

use crate::templates::to_value;
use crate::vocab::{ChatState, Contact, Handoff, Work};

/// What happened to one rule for one event.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RuleOutcome {
    Matched {
        shadow: bool,
        actions: Vec<ActionOutcome>,
    },
    Failed {
        condition: &'static str,
        detail: String,
    },
    /// The conditions held but the rule may not fire now (a handoff, `once_per`).
    Held {
        reason: String,
    },
    Disabled,
    /// An earlier rule with `stop: true` matched.
    Stopped {
        by: String,
    },
}

/// One rule's result.
#[derive(Debug, Clone, Serialize)]
pub struct RuleTrace {
    pub rule: String,
    #[serde(flatten)]
    pub outcome: RuleOutcome,
}

/// One action of a matched rule: what it rendered to, or why it could not.
#[derive(Debug, Clone, Serialize)]
pub struct ActionOutcome {
    pub action: &'static str,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "shown_effects"
    )]
    pub effects: Vec<Work>,
    /// For a follow-up: when it is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Not run yet: it runs when an earlier lookup of the rule answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<String>,
    /// Not scheduled, and why (a follow-up whose time was past, with `if_past: skip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// With an error: where the action is written (`FILE:LINE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// When and under which conditions a follow-up runs.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// When it is due, or why the `at` template gave no time.
    pub run_at: Result<DateTime<Utc>, String>,
    pub key: Option<String>,
    pub unless: Option<Unless>,
    /// The event's variables, for `unless.if`.
    pub vars: Option<serde_json::Value>,
}

/// Rendered actions as traces show them (`simulate --json`, `/admin/events`): as the stored
/// work, except that a call is named `request`, as traces always named it.
fn shown_effects<S: serde::Serializer>(effects: &[Work], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    enum Shown<'a> {
        #[serde(rename = "request")]
        Request(&'a crate::vocab::OutboundRequest),
        #[serde(rename = "contact")]
        Contact(&'a crate::vocab::ContactChange),
        #[serde(rename = "cancel")]
        Cancel { key: &'a str },
        #[serde(rename = "handoff")]
        Handoff(&'a crate::vocab::HandoffChange),
        #[serde(rename = "ai")]
        Ai(&'a crate::vocab::AiCall),
        #[serde(rename = "lookup")]
        Lookup(&'a crate::vocab::OutboundRequest),
    }
    s.collect_seq(effects.iter().map(|work| match work {
        Work::Call(request) => Shown::Request(request),
        Work::Contact(change) => Shown::Contact(change),
        Work::Cancel { key } => Shown::Cancel { key },
        Work::Handoff(change) => Shown::Handoff(change),
        Work::Ai(call) => Shown::Ai(call),
        Work::Lookup(call) => Shown::Lookup(&call.request),
    }))
}

/// Work to carry out, with the rule and action it came from.
#[derive(Debug, Clone)]
pub struct Planned {
    pub rule: String,
    pub action: &'static str,
    pub work: Work,
    /// `None`: now. `Some`: a follow-up.
    pub schedule: Option<Schedule>,
}

/// The result of evaluating one event.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// In explain mode every rule; otherwise only the rules that matched or were held.
    pub rules: Vec<RuleTrace>,
    /// Outside explain mode: how many rules were evaluated after the prefilter.
    #[serde(skip)]
    pub checked: usize,
    /// Effects of live (not shadow) rules, in order.
    #[serde(skip)]
    pub planned: Vec<Planned>,
    /// The contact after the rules' tag and set actions.
    #[serde(skip)]
    pub contact: Contact,
    /// `once_per` rules that fired, to remember for their chat.
    #[serde(skip)]
    pub fired: Vec<String>,
    /// The chat's handoff after the rules ran (one may have started or ended it).
    #[serde(skip)]
    pub handoff: Option<Handoff>,
}

/// Evaluates an event. `explain` also reports rules that listen to other event kinds.
pub fn evaluate(
    set: &RuleSet,
    event: &Event,
    contact: &Contact,
    chat: &ChatState,
    now: DateTime<Utc>,
    explain: bool,
) -> Evaluation {
    let base = Base::new(event, now);
    let mut contact = contact.clone();
    if contact.phone.is_empty()
        && let Some(sender) = &event.sender
    {
        contact.phone.clone_from(&sender.phone);
    }
    let mut handoff = chat.handoff.clone().filter(|h| h.until > now);
    let mut out = Evaluation {
        rules: Vec::new(),
        checked: 0,
        planned: Vec::new(),
        contact,
        fired: Vec::new(),
        handoff: None,
    };
    let mut stopped_by: Option<&str> = None;
    // Outside explain mode only the rules that can match are visited (see `RuleSet::candidates`)
    // and only their outcomes are kept: a failed rule costs nothing to record.
    let candidates: Vec<&Rule> = if explain {
        set.rules.iter().map(|r| &**r).collect()
    } else {
        let indexes = set.candidates(event);
        out.checked = indexes.len();
        indexes
            .into_iter()
            .map(|i| &*set.rules[i])
            .filter(|r| r.enabled)
            .collect()
    };
    for rule in candidates {
        let outcome = if let Some(by) = stopped_by {
            RuleOutcome::Stopped { by: by.to_owned() }
        } else if !rule.enabled {
            RuleOutcome::Disabled
        } else if !rule.events.contains(&event.kind) {
            let expected: Vec<String> = rule.events.iter().map(ToString::to_string).collect();
            RuleOutcome::Failed {
                condition: "event",
                detail: format!(
                    "expected {} but the event is {}",
                    expected.join(" or "),
                    event.kind
                ),
            }
        } else {
            let eval = RuleEval {
                set,
                base: &base,
                rule,
            };
            let mut input = Input {
                event,
                contact: &out.contact,
                captures: BTreeMap::new(),
                now,
            };
            match rule.when.check(&mut input, &eval) {
                Err(miss) => RuleOutcome::Failed {
                    condition: miss.condition,
                    detail: miss.detail,
                },
                Ok(()) => match held(rule, handoff.as_ref(), chat, now) {
                    Some(Hold::Handoff(reason)) => RuleOutcome::Held { reason },
                    Some(Hold::OncePer(reason)) => {
                        // The event is still this rule's: the out-of-hours notice that went
                        // out an hour ago does not hand later messages to the fallback.
                        if rule.stop {
                            stopped_by = Some(&rule.name);
                        }
                        RuleOutcome::Held { reason }
                    }
                    None => {
                        let captures = input.captures;
                        let actions = run_actions(
                            set,
                            rule,
                            event,
                            &base,
                            &captures,
                            now,
                            &mut out,
                            &mut handoff,
                        );
                        if rule.stop {
                            stopped_by = Some(&rule.name);
                        }
                        if rule.once_per.is_some() && !rule.shadow {
                            out.fired.push(rule.name.clone());
                        }
                        RuleOutcome::Matched {
                            shadow: rule.shadow,
                            actions,
                        }
                    }
                },
            }
        };
        if explain || !matches!(outcome, RuleOutcome::Failed { .. }) {
            out.rules.push(RuleTrace {
                rule: rule.name.clone(),
                outcome,
            });
        }
        if !explain && stopped_by.is_some() {
            break;
        }
    }
    out.handoff = handoff;
    out
}

/// Why a rule whose conditions hold may not fire now.
enum Hold {
    /// A human has the chat.
    Handoff(String),
    /// The rule fired in this chat within its `once_per` window.
    OncePer(String),
}

fn held(
    rule: &Rule,
    handoff: Option<&Handoff>,
    chat: &ChatState,
    now: DateTime<Utc>,
) -> Option<Hold> {
    if let Some(h) = handoff
        && !rule.during_handoff
    {
        let until = h.until.to_rfc3339_opts(SecondsFormat::Secs, true);
        return Some(Hold::Handoff(format!(
            "a human has this chat until {until} (handoff by `{}`)",
            h.rule
        )));
    }
    let once = rule.once_per?;
    let last = *chat.fired.get(&rule.name)?;
    let next = once.next_after(last, rule.timezone);
    (now < next).then(|| {
        let fmt = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        Hold::OncePer(format!(
            "once_per: fired in this chat at {}, next possible at {}",
            fmt(last),
            fmt(next)
        ))
    })
}

#[allow(clippy::too_many_arguments)]
fn run_actions(
    set: &RuleSet,
    rule: &Rule,
    event: &Event,
    base: &Base<'_>,
    captures: &BTreeMap<String, String>,
    now: DateTime<Utc>,
    out: &mut Evaluation,
    handoff: &mut Option<Handoff>,
) -> Vec<ActionOutcome> {
    let steps = Steps {
        set,
        rule,
        event,
        captures,
        now,
    };
    steps.run(
        &rule.actions,
        Some(0),
        &|contact| rule_context(base, rule, captures, contact),
        out,
        handoff,
    )
}

/// What running a rule's actions needs besides the actions and their context.
struct Steps<'a> {
    set: &'a RuleSet,
    rule: &'a Rule,
    event: &'a Event,
    captures: &'a BTreeMap<String, String>,
    now: DateTime<Utc>,
}

impl Steps<'_> {
    /// Renders `steps` in order; `first` is the position of the first among the rule's
    /// actions (`None` for a lookup's `on_error`). A lookup ends the run: the steps after
    /// it wait for its answer.
    fn run(
        &self,
        steps: &[Step],
        first: Option<usize>,
        ctx_of: &dyn Fn(&Contact) -> Value,
        out: &mut Evaluation,
        handoff: &mut Option<Handoff>,
    ) -> Vec<ActionOutcome> {
        let (set, rule, event, now) = (self.set, self.rule, self.event, self.now);
        let mut outcomes = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let name = step.action.name();
            // Each action sees the contact as the previous actions left it.
            let ctx = ctx_of(&out.contact);
            let cx = RenderCx {
                webhook_allow: &set.webhook_allow,
                templates: &set.templates,
                ctx: &ctx,
                event,
                contact: &out.contact,
                now,
                rule: &rule.name,
            };
            let rendered = step.action.render(&cx).and_then(|mut effects| {
                for effect in &mut effects {
                    effect.on_channel(&event.channel_name);
                    if let Work::Lookup(call) = effect {
                        call.step = first.map_or(u32::MAX, |f| (f + i) as u32);
                        call.event = event.snapshot();
                        call.vars = stored_vars(&ctx);
                    }
                }
                Ok((effects, schedule(step, &cx, rule, event, self.captures)?))
            });
            let waiting = match &step.action {
                crate::actions::Action::Lookup(lookup) => Some(lookup.name.clone()),
                _ => None,
            };
            let past = match (&step.timing, &rendered) {
                (Timing::AtUnlessPast(_), Ok((_, Some(s)))) => {
                    s.run_at.as_ref().ok().filter(|at| **at < now).copied()
                }
                _ => None,
            };
            match rendered {
                Ok(_) if past.is_some() => {
                    let at = past.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
                    outcomes.push(ActionOutcome {
                        action: name,
                        effects: Vec::new(),
                        at: past,
                        key: None,
                        error: None,
                        waits_for: None,
                        skipped: Some(format!(
                            "its time, {}, was already past (if_past: skip)",
                            at.unwrap_or_default()
                        )),
                        source: None,
                    });
                }
                Ok((effects, schedule)) => {
                    let at = schedule
                        .as_ref()
                        .and_then(|s| s.run_at.as_ref().ok().copied());
                    let key = schedule.as_ref().and_then(|s| s.key.clone());
                    let error = schedule
                        .as_ref()
                        .and_then(|s| s.run_at.as_ref().err().cloned());
                    if !rule.shadow {
                        for effect in &effects {
                            if schedule.is_none() {
                                apply_now(effect, &mut out.contact, handoff, now);
                            }
                            out.planned.push(Planned {
                                rule: rule.name.clone(),
                                action: name,
                                work: effect.clone(),
                                schedule: schedule.clone(),
                            });
                        }
                    }
                    outcomes.push(ActionOutcome {
                        action: name,
                        effects,
                        at,
                        key,
                        error,
                        waits_for: None,
                        skipped: None,
                        source: None,
                    });
                }
                Err(err) => {
                    // Where it is written, so the log, the event record and a failing rule
                    // test all lead the author to the action.
                    let source = format!("{}:{}", rule.file.display(), step.line);
                    tracing::warn!(rule = %rule.name, action = name, event = %event.id, "action failed: {err} (in `{name}` of rule `{}`, {source})", rule.name);
                    outcomes.push(ActionOutcome {
                        action: name,
                        effects: Vec::new(),
                        at: None,
                        key: None,
                        error: Some(err.to_string()),
                        waits_for: None,
                        skipped: None,
                        source: Some(source),
                    });
                    if let Some(lookup) = waiting {
                        // Without its call there is no answer to wait for.
                        self.skipped(&steps[i + 1..], &lookup, &mut outcomes);
                        break;
                    }
                }
            }
            if let Some(lookup) = waiting {
                self.waiting(&steps[i + 1..], &lookup, &mut outcomes);
                break;
            }
        }
        outcomes
    }

    fn waiting(&self, rest: &[Step], lookup: &str, outcomes: &mut Vec<ActionOutcome>) {
        outcomes.extend(rest.iter().map(|step| ActionOutcome {
            action: step.action.name(),
            effects: Vec::new(),
            at: None,
            key: None,
            error: None,
            waits_for: Some(format!("runs when lookup `{lookup}` answers")),
            skipped: None,
            source: None,
        }));
    }

    fn skipped(&self, rest: &[Step], lookup: &str, outcomes: &mut Vec<ActionOutcome>) {
        outcomes.extend(rest.iter().map(|step| ActionOutcome {
            action: step.action.name(),
            effects: Vec::new(),
            at: None,
            key: None,
            error: Some(format!("not run: lookup `{lookup}` could not be made")),
            waits_for: None,
            skipped: None,
            source: None,
        }));
    }
}

/// The template variables as a lookup's job keeps them: what is not there stays undefined
/// (a `null` would read as a value), and the contact is read afresh when the rule goes on.
fn stored_vars(ctx: &Value) -> serde_json::Value {
    let mut vars = serde_json::to_value(ctx).unwrap_or(serde_json::Value::Null);
    if let Some(map) = vars.as_object_mut() {
        map.retain(|key, value| !value.is_null() && key != "contact");
    }
    vars
}

/// Goes on with the rule of a lookup once it answered (`Ok`) or finally failed (`Err`):
/// the actions after it, or its `on_error`. `contact` is the contact as it is now.
pub fn resume(
    set: &RuleSet,
    call: &crate::vocab::LookupCall,
    answer: Result<serde_json::Value, String>,
    contact: &Contact,
    now: DateTime<Utc>,
) -> Result<Evaluation, String> {
    let gone = |why: &str| {
        format!(
            "the rule `{}` {why} since lookup `{}` was made; the actions after it did not run",
            call.rule, call.name
        )
    };
    let rule = set
        .rules
        .iter()
        .find(|r| r.name == call.rule)
        .ok_or_else(|| gone("is gone from the rules"))?;
    let step = rule
        .actions
        .get(call.step as usize)
        .filter(|s| matches!(&s.action, crate::actions::Action::Lookup(l) if l.name == call.name))
        .ok_or_else(|| gone("changed (the lookup is not where it was)"))?;
    let crate::actions::Action::Lookup(lookup) = &step.action else {
        return Err(gone("changed"));
    };
    let event = Event::from_snapshot(&call.event)
        .ok_or_else(|| "the lookup's stored event is unreadable".to_owned())?;
    let mut vars = call.vars.clone();
    let (steps, first) = match &answer {
        Ok(value) => {
            if let Some(map) = vars.as_object_mut() {
                let lookups = map.entry("lookup").or_insert_with(|| serde_json::json!({}));
                if let Some(lookups) = lookups.as_object_mut() {
                    lookups.insert(call.name.clone(), value.clone());
                }
            }
            let next = call.step as usize + 1;
            (&rule.actions[next.min(rule.actions.len())..], Some(next))
        }
        Err(_) => (&lookup.on_error[..], None),
    };
    let captures: BTreeMap<String, String> = vars
        .get("match")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default();
    let base = to_value(&vars);
    let mut out = Evaluation {
        rules: Vec::new(),
        checked: 1,
        planned: Vec::new(),
        contact: contact.clone(),
        fired: Vec::new(),
        handoff: None,
    };
    let mut handoff = None;
    let runner = Steps {
        set,
        rule,
        event: &event,
        captures: &captures,
        now,
    };
    let actions = runner.run(
        steps,
        first,
        &|contact| context! { contact => to_value(contact), ..base.clone() },
        &mut out,
        &mut handoff,
    );
    out.rules.push(RuleTrace {
        rule: rule.name.clone(),
        outcome: RuleOutcome::Matched {
            shadow: rule.shadow,
            actions,
        },
    });
    out.handoff = handoff;
    Ok(out)
}

/// Later rules of the same event see what earlier ones did to the contact and the chat.
fn apply_now(
    effect: &Work,
    contact: &mut Contact,
    handoff: &mut Option<Handoff>,
    now: DateTime<Utc>,
) {
    match effect {
        Work::Contact(change) => contact.apply(change),
        Work::Handoff(change) => change.apply_to(handoff, now),
        Work::Call(_) | Work::Cancel { .. } | Work::Ai(_) | Work::Lookup(_) => {}
    }
}

fn schedule(
    step: &Step,
    cx: &RenderCx<'_>,
    rule: &Rule,
    event: &Event,
    captures: &BTreeMap<String, String>,
) -> Result<Option<Schedule>, crate::actions::ActionError> {
    let run_at = match &step.timing {
        Timing::Now => return Ok(None),
        Timing::After(delay) => Ok(cx.now + *delay),
        Timing::At(when) => parse_at(&cx.text(when)?, rule.timezone),
        Timing::AtUnlessPast(when) => parse_at(&cx.text(when)?, rule.timezone),
    };
    // Follow-up keys are per channel, like `cancel`'s.
    let key = step
        .key
        .as_ref()
        .map(|k| cx.required(k, "key"))
        .transpose()?
        .map(|k| crate::vocab::scoped(&event.channel_name, &k));
    let vars = step.unless.as_ref().and_then(|u| u.expr.as_ref()).map(|_| {
        serde_json::json!({
            "event": {"kind": event.kind.to_string(), "id": event.id, "channel": event.channel, "at": event.at},
            "sender": event.sender,
            "chat": event.chat,
            "text": event.text,
            "data": event.data.as_deref(),
            "match": captures,
            // For `today` and `date` when the condition is checked.
            (crate::templates::ZONE): rule.timezone.name(),
        })
    });
    Ok(Some(Schedule {
        run_at,
        key,
        unless: step.unless.as_deref().cloned(),
        vars,
    }))
}

struct RuleEval<'a> {
    set: &'a RuleSet,
    base: &'a Base<'a>,
    rule: &'a Rule,
}

impl ExprEval for RuleEval<'_> {
    fn holds(&self, template: &str, input: &Input<'_>) -> Result<bool, String> {
        let ctx = rule_context(self.base, self.rule, &input.captures, input.contact);
        self.set
            .templates
            .render_named(template, &ctx)
            .map(|out| out == "1")
            .map_err(|e| e.to_string())
    }
}

#[derive(Serialize)]
struct EventInfo<'a> {
    kind: String,
    id: &'a str,
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<i64>,
}

/// The parts of the template context that depend only on the event, each built the first
/// time a template needs it: most events (delivery and read statuses above all) match no
/// rule and render nothing, and most rules that render read a few fields (`text`,
/// `sender.name`) and never the raw item, whose conversion for templates costs more than
/// the rest of the context together.
struct Base<'a> {
    event: &'a Event,
    now: DateTime<Utc>,
    /// `event`, `text`, `sender`, `chat` and `now`.
    fields: std::cell::OnceCell<Value>,
    /// `item` and `message` (for the message family one conversion serves both).
    item: std::cell::OnceCell<(Value, Value)>,
    data: std::cell::OnceCell<Value>,
}

impl<'a> Base<'a> {
    fn new(event: &'a Event, now: DateTime<Utc>) -> Self {
        Self {
            event,
            now,
            fields: std::cell::OnceCell::new(),
            item: std::cell::OnceCell::new(),
            data: std::cell::OnceCell::new(),
        }
    }

    /// The context of this event for a rule whose templates read `uses` (their top-level
    /// variables, found when the rule was compiled): the raw `item`, `message` and `data`
    /// are left out unless one of them reads them.
    fn for_rule(&self, uses: &BTreeSet<String>) -> Value {
        let fields = self
            .fields
            .get_or_init(|| event_fields(self.event, self.now))
            .clone();
        let needs_item = uses.contains("item") || uses.contains("message");
        let needs_data = uses.contains("data");
        if !needs_item && !needs_data {
            return fields;
        }
        let (item, message) = if needs_item {
            self.item
                .get_or_init(|| item_and_message(self.event))
                .clone()
        } else {
            (Value::UNDEFINED, Value::UNDEFINED)
        };
        let data = if needs_data {
            self.data
                .get_or_init(|| {
                    self.event
                        .data
                        .as_deref()
                        .map_or(Value::UNDEFINED, to_value)
                })
                .clone()
        } else {
            Value::UNDEFINED
        };
        context! { item => item, message => message, data => data, ..fields }
    }
}

/// The event's own fields for templates.
fn event_fields(event: &Event, now: DateTime<Utc>) -> Value {
    let info = EventInfo {
        kind: event.kind.to_string(),
        id: &event.id,
        channel: &event.channel,
        at: event.at,
    };
    let opt = |v: Option<Value>| v.unwrap_or(Value::UNDEFINED);
    context! {
        event => to_value(&info),
        channel => context! { name => event.channel_name.as_str(), id => event.channel.as_str() },
        text => opt(event.text.as_deref().map(Value::from)),
        sender => opt(event.sender.as_ref().map(to_value)),
        chat => opt(event.chat.as_ref().map(to_value)),
        now => now.to_rfc3339_opts(SecondsFormat::Secs, true),
        sent => opt(event.sent.as_deref().map(to_value)),
        vote => opt((event.kind == crate::events::EventKind::PollVote)
            .then(|| context! { options => to_value(&event.options) })),
    }
}

/// The raw item and the message for templates.
fn item_and_message(event: &Event) -> (Value, Value) {
    let item = to_value(&*event.item);
    // For the message family `message` is the item itself: convert it once.
    let message = match &event.message {
        Some(m) if std::sync::Arc::ptr_eq(m, &event.item) => item.clone(),
        Some(m) => to_value(&**m),
        None => Value::UNDEFINED,
    };
    (item, message)
}

fn rule_context(
    base: &Base<'_>,
    rule: &Rule,
    captures: &BTreeMap<String, String>,
    contact: &Contact,
) -> Value {
    // Written only for the rules that read it; `date` needs the zone wherever it is used.
    let today = rule
        .uses
        .contains("today")
        .then(|| crate::templates::today(base.now, rule.timezone));
    context! {
        match => to_value(captures),
        contact => to_value(contact),
        rule => context! { name => rule.name.as_str() },
        today => today,
        __zone__ => crate::templates::zone_value(rule.timezone),
        ..base.for_rule(&rule.uses)
    }
}
