//! `then:` entries → compiled [`Action`]s, with every problem located.

use super::Compiler;
use super::ai::ai_reply;
use crate::actions::{
    Action, BodyTemplate, Buttons, Content, JsonTemplate, List, Location, Media, MediaKind,
    Recipient, Section, Step, Timing, Unless, WebhookAction,
};
use crate::config::{ActionSpec, HandoffSpec, Located, MessageContent, MessageSpec, UnlessSpec};
use crate::duration;
use crate::templates::Text;

/// The action keys, for "exactly one per entry" messages.
const ACTION_KEYS: &str = "reply, send, forward, react, mark_read, tag, untag, set, webhook, group_add, group_remove, cancel, handoff, ai_reply";

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
        (None, Some(at)) => cx.text(at).map(Timing::At),
        (None, None) => Some(Timing::Now),
    };
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
        ("tag", a.tag.is_some()),
        ("untag", a.untag.is_some()),
        ("set", a.set.is_some()),
        ("webhook", a.webhook.is_some()),
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

fn opt(cx: &mut Compiler<'_>, text: Option<&Located<String>>) -> Result<Option<Text>, ()> {
    match text {
        None => Ok(None),
        Some(t) => cx.text(t).map(Some).ok_or(()),
    }
}

pub(super) fn message(
    spec: &Located<MessageContent>,
    is_send: bool,
    cx: &mut Compiler<'_>,
) -> Option<Action> {
    let (line, column) = (spec.line, spec.column);
    let m = match &spec.value {
        MessageContent::Text(text) => &MessageSpec {
            text: Some(Located {
                value: text.clone(),
                line,
                column,
            }),
            ..MessageSpec::default()
        },
        MessageContent::Full(m) => m,
    };
    let action = if is_send { "send" } else { "reply" };
    let to = match (&m.to, is_send) {
        (Some(to), true) => Recipient::To(cx.text(to)?),
        (None, true) => {
            cx.error(
                line,
                column,
                "`send` needs `to:` (a number, chat, group or channel id)",
            );
            return None;
        }
        (Some(to), false) => {
            cx.error(
                to.line,
                to.column,
                "`reply` always answers in the event's chat; use `send` to choose `to`",
            );
            return None;
        }
        (None, false) => Recipient::EventChat,
    };
    let typing = match &m.typing {
        None => None,
        Some(t) => match duration::parse(&t.value) {
            Ok(d) if d.as_secs() <= 60 => Some(d.as_secs().max(1) as u32),
            Ok(_) => {
                cx.error(t.line, t.column, "`typing` is at most 60s");
                return None;
            }
            Err(e) => {
                cx.error(t.line, t.column, e);
                return None;
            }
        },
    };
    let content = content(m, action, line, column, cx)?;
    Some(Action::Message {
        to,
        content,
        quote: m.quote,
        typing,
    })
}

pub(super) fn content(
    m: &MessageSpec,
    action: &str,
    line: u32,
    column: u32,
    cx: &mut Compiler<'_>,
) -> Option<Content> {
    let media = [
        (MediaKind::Image, &m.image),
        (MediaKind::Document, &m.document),
        (MediaKind::Video, &m.video),
        (MediaKind::Audio, &m.audio),
    ];
    let media: Vec<_> = media
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
    let kinds = media.len()
        + usize::from(m.location.is_some())
        + usize::from(m.buttons.is_some())
        + usize::from(m.list.is_some());
    if kinds > 1 {
        cx.error(line, column, format!("`{action}` can carry one of image, document, video, audio, location, buttons or list"));
        return None;
    }
    let header = opt(cx, m.header.as_ref()).ok()?;
    let footer = opt(cx, m.footer.as_ref()).ok()?;
    if let Some((kind, url)) = media.first() {
        if m.text.is_some() && m.caption.is_some() {
            cx.error(
                line,
                column,
                "write the caption once: `text` and `caption` mean the same with media",
            );
            return None;
        }
        let caption = opt(cx, m.caption.as_ref().or(m.text.as_ref())).ok()?;
        let filename = opt(cx, m.filename.as_ref()).ok()?;
        if *kind == MediaKind::Audio && caption.is_some() {
            cx.error(line, column, "audio messages have no caption");
            return None;
        }
        return Some(Content::Media(Box::new(Media {
            kind: *kind,
            url: cx.text(url)?,
            caption,
            filename,
        })));
    }
    if let Some(loc) = &m.location {
        let name = opt(cx, loc.value.name.as_ref()).ok()?;
        let address = opt(cx, loc.value.address.as_ref()).ok()?;
        if !(-90.0..=90.0).contains(&loc.value.latitude)
            || !(-180.0..=180.0).contains(&loc.value.longitude)
        {
            cx.error(
                loc.line,
                loc.column,
                "latitude must be within ±90 and longitude within ±180",
            );
            return None;
        }
        return Some(Content::Location(Box::new(Location {
            latitude: loc.value.latitude,
            longitude: loc.value.longitude,
            name,
            address,
        })));
    }
    let Some(text) = &m.text else {
        cx.error(
            line,
            column,
            format!("`{action}` needs `text` (or image, document, video, audio or location)"),
        );
        return None;
    };
    let body = cx.text(text)?;
    if let Some(buttons) = &m.buttons {
        if buttons.value.is_empty() || buttons.value.len() > 3 {
            cx.error(
                buttons.line,
                buttons.column,
                format!(
                    "WhatsApp shows 1 to 3 buttons, this has {}",
                    buttons.value.len()
                ),
            );
            return None;
        }
        let mut compiled = Vec::new();
        for b in &buttons.value {
            if b.title.value.chars().count() > 25 && !b.title.value.contains("{{") {
                cx.error(
                    b.title.line,
                    b.title.column,
                    "button titles are at most 25 characters",
                );
                return None;
            }
            compiled.push((cx.text(&b.id)?, cx.text(&b.title)?));
        }
        return Some(Content::Buttons(Box::new(Buttons {
            body,
            header,
            footer,
            buttons: compiled,
        })));
    }
    if let Some(list) = &m.list {
        let mut sections = Vec::new();
        for s in &list.value.sections {
            let mut rows = Vec::new();
            for r in &s.rows {
                let description = opt(cx, r.description.as_ref()).ok()?;
                rows.push((cx.text(&r.id)?, cx.text(&r.title)?, description));
            }
            sections.push(Section {
                title: cx.text(&s.title)?,
                rows,
            });
        }
        if sections.iter().all(|s| s.rows.is_empty()) {
            cx.error(list.line, list.column, "a list needs at least one row");
            return None;
        }
        return Some(Content::List(Box::new(List {
            body,
            header,
            footer,
            label: cx.text(&list.value.label)?,
            sections,
        })));
    }
    if header.is_some() || footer.is_some() {
        cx.error(
            line,
            column,
            "`header` and `footer` go with `buttons` or `list`",
        );
        return None;
    }
    Some(Content::Text(body))
}

fn webhook(hook: &crate::config::WebhookSpec, cx: &mut Compiler<'_>) -> Option<Action> {
    // Every part is checked before giving up, so one `check` run reports all mistakes.
    let url = cx.url(&hook.url);
    if let Some(u) = url.as_ref().and_then(|u| u.literal())
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        let message = format!("webhook url `{u}` must start with http:// or https://");
        cx.error(hook.url.line, hook.url.column, message);
    }
    let method = match &hook.method {
        None => Some("POST".to_owned()),
        Some(m) => {
            let upper = m.value.to_ascii_uppercase();
            if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&upper.as_str()) {
                Some(upper)
            } else {
                let message = format!(
                    "unknown HTTP method `{}`, expected GET, POST, PUT, PATCH or DELETE",
                    m.value
                );
                cx.error(m.line, m.column, message);
                None
            }
        }
    };
    let mut headers = Some(Vec::new());
    if let Some(h) = &hook.headers {
        for (name, value) in &h.value {
            match (cx.text_at(value, h.line, h.column), headers.as_mut()) {
                (Some(t), Some(list)) => list.push((name.clone(), t)),
                _ => headers = None,
            }
        }
    }
    let body = match &hook.body {
        None => Some(None),
        Some(b) => match &b.value {
            serde_json::Value::String(s) => cx
                .text_at(s, b.line, b.column)
                .map(|t| Some(BodyTemplate::Text(t))),
            other => {
                json_template(other, b.line, b.column, cx).map(|j| Some(BodyTemplate::Json(j)))
            }
        },
    };
    let url = url.filter(|u| u.literal().is_none_or(|l| l.starts_with("http")))?;
    let host_from_template = host_is_templated(&hook.url.value);
    Some(Action::Webhook(Box::new(WebhookAction {
        url,
        host_from_template,
        method: method?,
        headers: headers?,
        body: body?,
    })))
}

fn json_template(
    value: &serde_json::Value,
    line: u32,
    column: u32,
    cx: &mut Compiler<'_>,
) -> Option<JsonTemplate> {
    use serde_json::Value;
    Some(match value {
        Value::String(s) => {
            let trimmed = s.trim();
            let whole = trimmed
                .strip_prefix("{{")
                .and_then(|r| r.strip_suffix("}}"))
                .filter(|inner| !inner.contains("{{") && !inner.contains("}}"));
            match whole {
                Some(expr) => JsonTemplate::Value(cx.json_value_at(expr.trim(), line, column)?),
                None => match cx.text_at(s, line, column)? {
                    Text::Literal(l) => JsonTemplate::Fixed(Value::String(l)),
                    t => JsonTemplate::Text(t),
                },
            }
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(json_template(item, line, column, cx)?);
            }
            JsonTemplate::Array(out)
        }
        Value::Object(map) => {
            let mut out = Vec::with_capacity(map.len());
            for (k, v) in map {
                out.push((k.clone(), json_template(v, line, column, cx)?));
            }
            JsonTemplate::Object(out)
        }
        fixed => JsonTemplate::Fixed(fixed.clone()),
    })
}

/// Whether a URL template's host part depends on a template (`https://{{ data.host }}/x`).
fn host_is_templated(url: &str) -> bool {
    let end = [url.find("{{"), url.find("{%")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(url.len());
    let literal = &url[..end];
    if literal.len() == url.len() {
        return false;
    }
    match literal.split_once("://") {
        Some((_, rest)) => !rest.contains(['/', '?', '#']),
        None => true,
    }
}
