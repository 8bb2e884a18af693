//! `then:` entries → compiled [`Step`]s: the action, when it runs, its follow-up `key` and
//! `unless`, with every problem located.

use super::Compiler;
use super::ai::ai_reply;
use super::message::message;
use super::webhook::webhook;
use crate::actions::{Action, LookupAction, Step, Timing, Unless};
use crate::config::{
    ActionSpec, HandoffSpec, Located, LookupSpec, MessageContent, UnlessSpec, WebhookSpec,
};

/// The action keys, for "exactly one per entry" messages.
const ACTION_KEYS: &str = "reply, send, forward, react, mark_read, delete, tag, untag, set, webhook, lookup, group_add, group_remove, cancel, handoff, ai_reply";

/// Compiles one `then:` entry with its timing; problems are recorded on the compiler.
pub(super) fn compile_step(spec: &Located<ActionSpec>, cx: &mut Compiler<'_>) -> Option<Step> {
    let a = &spec.value;
    let action = compile_action(spec, cx);
    let timing = match (&a.after, &a.at) {
        (Some(_), Some(at)) => {
            cx.error(at.line, at.column, "write `after` or `at`, not both");
            None
        }
        (Some(after), None) => match crate::duration::parse(&after.value) {
            Ok(d) => chrono::Duration::from_std(d).ok().map(Timing::After),
            Err(e) => {
                cx.error(after.line, after.column, e);
                None
            }
        },
        (None, Some(at)) => cx.text(at).map(|when| {
            let skip = a.if_past.as_ref().map(|p| p.value) == Some(crate::config::IfPast::Skip);
            if skip {
                Timing::AtUnlessPast(Box::new(when))
            } else {
                Timing::At(Box::new(when))
            }
        }),
        (None, None) => Some(Timing::Now),
    };
    if let (Some(if_past), None) = (&a.if_past, &a.at) {
        cx.error(
            if_past.line,
            if_past.column,
            "`if_past` goes with `at` (a time that may already be past)",
        );
        return None;
    }
    if let (Some(lookup), false) = (&a.lookup, matches!(timing, Some(Timing::Now))) {
        cx.error(
            lookup.line,
            lookup.column,
            "a lookup runs when its rule fires; put `after` or `at` on the actions after it",
        );
        return None;
    }
    let key = match &a.key {
        Some(k) => Some(cx.text(k)?),
        None => None,
    };
    let unless = match &a.unless {
        Some(u) => Some(Box::new(unless(u, cx)?)),
        None => None,
    };
    if matches!(timing, Some(Timing::Now)) {
        for (name, given) in [
            ("key", a.key.as_ref().map(|k| (k.line, k.column))),
            ("unless", a.unless.as_ref().map(|u| (u.line, u.column))),
        ] {
            if let Some((line, column)) = given {
                cx.error(
                    line,
                    column,
                    format!("`{name}` only applies to follow-ups: add `after` or `at`"),
                );
                return None;
            }
        }
    }
    Some(Step {
        action: action?,
        timing: timing?,
        key,
        unless,
        line: spec.line,
    })
}

fn unless(spec: &Located<UnlessSpec>, cx: &mut Compiler<'_>) -> Option<Unless> {
    let u = &spec.value;
    let tags = u.tags.clone().unwrap_or_default();
    let compiled = Unless {
        all_tags: tags.all,
        any_tags: tags.any,
        no_tags: tags.none,
        attrs: u.attrs.clone().unwrap_or_default().into_iter().collect(),
        expr: u.expr.as_ref().map(|e| e.value.clone()),
    };
    if let Some(expr) = &u.expr {
        // Checked now so a typo is found at load time; evaluated when the follow-up is due.
        cx.condition(expr)?;
    }
    if compiled.is_empty() {
        cx.error(
            spec.line,
            spec.column,
            "`unless` needs `tags`, `attrs` or `if`",
        );
        return None;
    }
    Some(compiled)
}

fn handoff(spec: &Located<HandoffSpec>, cx: &mut Compiler<'_>) -> Option<Action> {
    let h = &spec.value;
    let parts = handoff_parts(&h.duration, h.notify.as_ref(), h.resume_on.as_deref(), cx)?;
    Some(Action::Handoff {
        duration: parts.duration,
        notify: parts.notify,
        resume_on: parts.resume_on,
    })
}

/// What `handoff` and `ai_reply.handoff` share: how long, who is told, the word that ends it.
pub(super) struct HandoffParts {
    pub(super) duration: chrono::Duration,
    pub(super) notify: Option<Box<Action>>,
    pub(super) resume_on: Option<String>,
}

pub(super) fn handoff_parts(
    duration: &Located<String>,
    notify: Option<&Located<MessageContent>>,
    resume_on: Option<&str>,
    cx: &mut Compiler<'_>,
) -> Option<HandoffParts> {
    let duration = match crate::duration::parse(&duration.value) {
        Ok(d) => chrono::Duration::from_std(d).ok(),
        Err(e) => {
            cx.error(duration.line, duration.column, e);
            None
        }
    };
    let notify = match notify {
        Some(n) => Some(Box::new(message(n, true, cx)?)),
        None => None,
    };
    Some(HandoffParts {
        duration: duration?,
        notify,
        resume_on: resume_on
            .map(|w| w.trim().to_owned())
            .filter(|w| !w.is_empty()),
    })
}

/// Compiles the action of a `then:` entry.
fn compile_action(spec: &Located<ActionSpec>, cx: &mut Compiler<'_>) -> Option<Action> {
    let a = &spec.value;
    let present: Vec<&str> = [
        ("reply", a.reply.is_some()),
        ("send", a.send.is_some()),
        ("forward", a.forward.is_some()),
        ("react", a.react.is_some()),
        ("mark_read", a.mark_read.is_some()),
        ("delete", a.delete.is_some()),
        ("tag", a.tag.is_some()),
        ("untag", a.untag.is_some()),
        ("set", a.set.is_some()),
        ("webhook", a.webhook.is_some()),
        ("lookup", a.lookup.is_some()),
        ("group_add", a.group_add.is_some()),
        ("group_remove", a.group_remove.is_some()),
        ("cancel", a.cancel.is_some()),
        ("handoff", a.handoff.is_some()),
        ("ai_reply", a.ai_reply.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, p)| p.then_some(k))
    .collect();
    match present.len() {
        0 => {
            cx.error(
                spec.line,
                spec.column,
                format!("empty action: write one of {ACTION_KEYS}"),
            );
            return None;
        }
        1 => {}
        _ => {
            let keys = present
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(" and ");
            cx.error(spec.line, spec.column, format!("one action per entry: {keys} are in the same entry; start each with its own `-`"));
            return None;
        }
    }
    if let Some(reply) = &a.reply {
        return message(reply, false, cx);
    }
    if let Some(send) = &a.send {
        return message(send, true, cx);
    }
    if let Some(forward) = &a.forward {
        return cx.text(&forward.to).map(|to| Action::Forward { to });
    }
    if let Some(emoji) = &a.react {
        return cx.text(emoji).map(|emoji| Action::React { emoji });
    }
    if let Some(mark) = a.mark_read {
        if !mark {
            cx.error(
                spec.line,
                spec.column,
                "`mark_read: false` does nothing; remove the entry",
            );
            return None;
        }
        return Some(Action::MarkRead);
    }
    if let Some(delete) = a.delete {
        if !delete {
            cx.error(
                spec.line,
                spec.column,
                "`delete: false` does nothing; remove the entry",
            );
            return None;
        }
        return Some(Action::Delete);
    }
    if let Some(tags) = a.tag.as_ref().or(a.untag.as_ref()) {
        let names: Vec<String> = tags.value.iter().map(|t| t.trim().to_owned()).collect();
        if names.iter().any(String::is_empty) {
            cx.error(tags.line, tags.column, "empty tag name");
            return None;
        }
        return Some(if a.tag.is_some() {
            Action::Tag(names)
        } else {
            Action::Untag(names)
        });
    }
    if let Some(set) = &a.set {
        let mut pairs = Vec::new();
        for (key, value) in &set.value {
            pairs.push((key.clone(), cx.text_at(value, set.line, set.column)?));
        }
        return Some(Action::Set(pairs));
    }
    if let Some(hook) = &a.webhook {
        return webhook(hook, cx);
    }
    if let Some(spec) = &a.lookup {
        return lookup(spec, cx);
    }
    if let Some(key) = &a.cancel {
        return cx.text(key).map(Action::Cancel);
    }
    if let Some(ai) = &a.ai_reply {
        return ai_reply(ai, cx).map(|ai| Action::AiReply(Box::new(ai)));
    }
    if let Some(h) = &a.handoff {
        return handoff(h, cx);
    }
    let (add, group) = match (&a.group_add, &a.group_remove) {
        (Some(g), _) => (true, g),
        (None, Some(g)) => (false, g),
        (None, None) => return None,
    };
    let group_id = cx.text(&group.group);
    let mut participants = Vec::new();
    for p in group.participants.value.iter() {
        participants.push(cx.text_at(p, group.participants.line, group.participants.column)?);
    }
    if participants.is_empty() {
        cx.error(
            group.participants.line,
            group.participants.column,
            "`participants` is empty",
        );
        return None;
    }
    Some(Action::Group {
        add,
        group: group_id?,
        participants,
    })
}

/// The longest a lookup's try may take: a rule waiting longer answers nobody in time.
const LOOKUP_TIMEOUT_MAX: std::time::Duration = std::time::Duration::from_secs(60);
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Compiles a `lookup:`; its name is known to the actions compiled after it. Every part is
/// checked before giving up, so one `check` reports each mistake.
fn lookup(spec: &Located<LookupSpec>, cx: &mut Compiler<'_>) -> Option<Action> {
    let l = &spec.value;
    let name = l.name.value.trim();
    let is_identifier = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let mut ok = true;
    if !is_identifier {
        cx.error(
            l.name.line,
            l.name.column,
            format!("`as: {name}` names the answer for templates (`lookup.NAME`): use lower-case letters, digits and `_`, starting with a letter"),
        );
        ok = false;
    } else if cx.lookups.iter().any(|n| n == name) {
        cx.error(
            l.name.line,
            l.name.column,
            format!("a lookup `as: {name}` comes earlier in this rule; give this one another name"),
        );
        ok = false;
    }
    let timeout = match &l.timeout {
        None => Some(LOOKUP_TIMEOUT),
        Some(t) => match crate::duration::parse(&t.value) {
            Ok(d) if d <= LOOKUP_TIMEOUT_MAX && !d.is_zero() => Some(d),
            Ok(_) => {
                cx.error(t.line, t.column, "a lookup's `timeout` is at most 60s");
                None
            }
            Err(e) => {
                cx.error(t.line, t.column, e);
                None
            }
        },
    };
    // `on_error` runs without the answer: it sees the lookups before this one only.
    let mut on_error = Some(Vec::new());
    for step in l.on_error.iter().flatten() {
        let compiled = if step.value.lookup.is_some() {
            cx.error(
                step.line,
                step.column,
                "`on_error` cannot hold another lookup; put the fallback's lookup in a rule of its own",
            );
            None
        } else {
            compile_step(step, cx)
        };
        match (compiled, on_error.as_mut()) {
            (Some(step), Some(list)) => list.push(step),
            _ => on_error = None,
        }
    }
    let hook = WebhookSpec {
        url: l.url.clone(),
        method: Some(l.method.clone().unwrap_or_else(|| Located {
            value: "GET".into(),
            line: spec.line,
            column: spec.column,
        })),
        headers: l.headers.clone(),
        body: l.body.clone(),
        channel: None,
    };
    let call = webhook(&hook, cx);
    if is_identifier {
        // Known from here on even when this lookup has a mistake, so later actions are
        // checked against it instead of repeating the error.
        cx.lookups.push(name.to_owned());
    }
    let Some(Action::Webhook(call)) = call else {
        return None;
    };
    ok.then(|| {
        Some(Action::Lookup(Box::new(LookupAction {
            call: *call,
            name: name.to_owned(),
            timeout: timeout?,
            on_error: on_error?,
        })))
    })
    .flatten()
}
