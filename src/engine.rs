//! The rule engine: one event against a rule set gives, for each rule, matched or the
//! condition that failed, and the rendered effects of the matched rules' actions.
//!
//! Pure and synchronous: no I/O, no clock. The server, `simulate` and rule tests all call
//! [`evaluate`] and differ only in what they do with the result.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use minijinja::value::Serde;
use minijinja::{Value, context};
use serde::Serialize;

use crate::actions::{Effect, RenderCx};
use crate::events::Event;
use crate::rules::{ExprEval, Input, Rule, RuleSet};
use crate::store::Contact;

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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An effect to carry out, with the rule and action it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub rule: String,
    pub action: &'static str,
    pub effect: Effect,
}

/// The result of evaluating one event.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Per rule; in explain mode every rule, otherwise only the rules for the event's kind.
    pub rules: Vec<RuleTrace>,
    /// Effects of live (not shadow) rules, in order.
    #[serde(skip)]
    pub planned: Vec<Planned>,
    /// The contact after the rules' tag and set actions.
    #[serde(skip)]
    pub contact: Contact,
}

/// Evaluates an event. `explain` also reports rules that listen to other event kinds.
pub fn evaluate(
    set: &RuleSet,
    event: &Event,
    contact: &Contact,
    now: DateTime<Utc>,
    explain: bool,
) -> Evaluation {
    let base = base_context(event, now);
    let mut contact = contact.clone();
    if contact.phone.is_empty()
        && let Some(sender) = &event.sender
    {
        contact.phone.clone_from(&sender.phone);
    }
    let mut traces = Vec::new();
    let mut planned = Vec::new();
    let mut stopped_by: Option<&str> = None;
    let candidates: Box<dyn Iterator<Item = &Rule>> = if explain {
        Box::new(set.rules.iter())
    } else {
        Box::new(set.for_kind(&event.kind))
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
                contact: &contact,
                captures: BTreeMap::new(),
            };
            match rule.when.check(&mut input, &eval) {
                Err(miss) => RuleOutcome::Failed {
                    condition: miss.condition,
                    detail: miss.detail,
                },
                Ok(()) => {
                    let captures = input.captures;
                    let actions = run_actions(
                        set,
                        rule,
                        event,
                        &base,
                        &captures,
                        &mut contact,
                        &mut planned,
                    );
                    if rule.stop {
                        stopped_by = Some(&rule.name);
                    }
                    RuleOutcome::Matched {
                        shadow: rule.shadow,
                        actions,
                    }
                }
            }
        };
        traces.push(RuleTrace {
            rule: rule.name.clone(),
            outcome,
        });
    }
    Evaluation {
        rules: traces,
        planned,
        contact,
    }
}

fn run_actions(
    set: &RuleSet,
    rule: &Rule,
    event: &Event,
    base: &Value,
    captures: &BTreeMap<String, String>,
    contact: &mut Contact,
    planned: &mut Vec<Planned>,
) -> Vec<ActionOutcome> {
    let mut outcomes = Vec::with_capacity(rule.actions.len());
    for action in &rule.actions {
        // Each action sees the contact as the previous actions left it.
        let ctx = rule_context(base, rule, captures, contact);
        let cx = RenderCx {
            templates: &set.templates,
            ctx: &ctx,
            event,
            contact,
        };
        match action.render(&cx) {
            Ok(effects) => {
                if !rule.shadow {
                    for effect in &effects {
                        if let Effect::Contact(change) = effect {
                            contact.apply(change);
                        }
                        planned.push(Planned {
                            rule: rule.name.clone(),
                            action: action.name(),
                            effect: effect.clone(),
                        });
                    }
                }
                outcomes.push(ActionOutcome {
                    action: action.name(),
                    effects,
                    error: None,
                });
            }
            Err(err) => {
                tracing::warn!(rule = %rule.name, action = action.name(), event = %event.id, "action failed: {err}");
                outcomes.push(ActionOutcome {
                    action: action.name(),
                    effects: Vec::new(),
                    error: Some(err.to_string()),
                });
            }
        }
    }
    outcomes
}

struct RuleEval<'a> {
    set: &'a RuleSet,
    base: &'a Value,
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

/// The parts of the template context that depend only on the event.
fn base_context(event: &Event, now: DateTime<Utc>) -> Value {
    let info = EventInfo {
        kind: event.kind.to_string(),
        id: &event.id,
        channel: &event.channel,
        at: event.at,
    };
    let opt = |v: Option<Value>| v.unwrap_or(Value::UNDEFINED);
    context! {
        item => to_value(&*event.item),
        message => opt(event.message.as_deref().map(to_value)),
        event => to_value(&info),
        text => opt(event.text.as_deref().map(Value::from)),
        sender => opt(event.sender.as_ref().map(to_value)),
        chat => opt(event.chat.as_ref().map(to_value)),
        data => opt(event.data.as_deref().map(to_value)),
        now => now.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

fn rule_context(
    base: &Value,
    rule: &Rule,
    captures: &BTreeMap<String, String>,
    contact: &Contact,
) -> Value {
    context! {
        match => to_value(captures),
        contact => to_value(contact),
        rule => context! { name => rule.name.as_str() },
        ..base.clone()
    }
}

fn to_value<T: Serialize + ?Sized>(value: &T) -> Value {
    Value::from(Serde(value))
}
