//! What rules did, in the words of rule files, and how it is compared with `expect:`.

use std::fmt::Write;

use crate::vocab::{ContactChange, HandoffChange, OutboundRequest, Payload, Work};
use serde_json::{Map, Value, json};

/// One action as a rule author writes it: `{send: {to: ..., text: ...}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub action: String,
    pub fields: Map<String, Value>,
}

impl Done {
    /// The action a job's work stands for.
    pub fn from_work(action: &str, work: &Work) -> Self {
        // A handoff's `notify` is a message like `send`; a model's answer is a `reply`.
        let action = match (action, work) {
            ("handoff", Work::Call(_)) => "send",
            ("ai_reply", Work::Call(_)) => "reply",
            _ => action,
        };
        let fields = match work {
            Work::Call(request) => call_fields(action, request),
            Work::Contact(change) => contact_fields(change),
            Work::Cancel { key } => map(json!({ "key": key })),
            Work::Handoff(HandoffChange::Start { chat, until, .. }) => {
                map(json!({ "chat": chat, "until": until.to_rfc3339() }))
            }
            Work::Handoff(HandoffChange::End { chat }) => {
                map(json!({ "chat": chat, "resume": true }))
            }
            Work::Ai(call) => map(json!({ "chat": call.chat })),
            Work::Lookup(call) => map(json!({ "as": call.name, "url": call.request.path })),
        };
        let action = match work {
            Work::Handoff(HandoffChange::End { .. }) => "resume",
            Work::Contact(ContactChange::Tag { .. }) => "tag",
            Work::Contact(ContactChange::Untag { .. }) => "untag",
            Work::Contact(ContactChange::Set { .. }) => "set",
            _ => action,
        };
        Self {
            action: action.to_owned(),
            fields,
        }
    }

    /// Adds the next action, reading consecutive `set` changes of one contact as one `set`
    /// (an author writes `set: {a: 1, b: 2}` as one action).
    pub fn push_merged(list: &mut Vec<Self>, next: Self) {
        if next.action == "set"
            && let Some(last) = list.last_mut()
            && last.action == "set"
            && last.fields.get("phone") == next.fields.get("phone")
        {
            last.fields.extend(next.fields);
            return;
        }
        list.push(next);
    }

    /// `{action: {fields}}`, for messages.
    pub fn to_value(&self) -> Value {
        json!({ &self.action: Value::Object(self.fields.clone()) })
    }
}

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn contact_fields(change: &ContactChange) -> Map<String, Value> {
    match change {
        ContactChange::Tag { tag, phone } | ContactChange::Untag { tag, phone } => {
            map(json!({ "tag": tag, "phone": phone }))
        }
        ContactChange::Set { key, value, phone } => map(json!({ key: value, "phone": phone })),
    }
}

fn call_fields(action: &str, request: &OutboundRequest) -> Map<String, Value> {
    let body = match &request.body {
        Some(Payload::Json(v)) => v.clone(),
        Some(Payload::Text(t)) => Value::String(t.clone()),
        None => Value::Null,
    };
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    let mut f = Map::new();
    match action {
        "reply" | "send" => {
            f.insert("to".into(), body["to"].clone());
            let endpoint = segments.get(1).copied().unwrap_or("text");
            match endpoint {
                "text" => {
                    f.insert("text".into(), body["body"].clone());
                }
                "interactive" => {
                    f.insert("text".into(), body["body"]["text"].clone());
                    if let Some(buttons) = body["action"]["buttons"].as_array() {
                        let simple: Vec<Value> = buttons
                            .iter()
                            .map(|b| json!({"id": b["id"], "title": b["title"]}))
                            .collect();
                        f.insert("buttons".into(), Value::Array(simple));
                    }
                    if body["action"]["list"].is_object() {
                        f.insert("list".into(), body["action"]["list"].clone());
                    }
                }
                "poll" => {
                    f.insert(
                        "poll".into(),
                        json!({"title": body["title"], "options": body["options"], "count": body["count"]}),
                    );
                }
                "location" => {
                    f.insert("location".into(), json!({"latitude": body["latitude"], "longitude": body["longitude"], "name": body["name"], "address": body["address"]}));
                }
                media => {
                    f.insert(media.into(), body["media"].clone());
                    if !body["caption"].is_null() {
                        f.insert("text".into(), body["caption"].clone());
                        f.insert("caption".into(), body["caption"].clone());
                    }
                    if !body["filename"].is_null() {
                        f.insert("filename".into(), body["filename"].clone());
                    }
                }
            }
            if body["quoted"].is_string() {
                f.insert("quote".into(), json!(true));
            }
            if body["mentions"].is_array() {
                f.insert("mentions".into(), body["mentions"].clone());
            }
        }
        "react" => {
            f.insert("emoji".into(), body["emoji"].clone());
        }
        "forward" => {
            f.insert("to".into(), body["to"].clone());
        }
        "group_add" | "group_remove" => {
            f.insert(
                "group".into(),
                json!(segments.get(1).copied().unwrap_or_default()),
            );
            f.insert("participants".into(), body["participants"].clone());
        }
        "pin" => {
            f.insert("time".into(), body["time"].clone());
        }
        "delete" => {}
        "webhook" => {
            f.insert("url".into(), json!(request.path));
            f.insert("method".into(), json!(request.method));
            f.insert("body".into(), body);
            if !request.headers.is_empty() {
                f.insert(
                    "headers".into(),
                    request
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), json!(v)))
                        .collect::<Map<_, _>>()
                        .into(),
                );
            }
        }
        _ => {
            f.insert("path".into(), json!(request.path));
        }
    }
    if let Some(channel) = &request.channel {
        f.insert("channel".into(), json!(channel));
    }
    f.retain(|_, v| !v.is_null());
    f
}

/// An `expect:` entry: `{ACTION: VALUE}` where VALUE is a map of fields, or the one field an
/// action is usually written with (`reply: TEXT`, `tag: NAME`, `react: EMOJI`, `cancel: KEY`).
pub(super) fn expected(entry: &Value) -> Result<(String, Map<String, Value>), String> {
    let Some(obj) = entry.as_object().filter(|o| o.len() == 1) else {
        return Err(format!(
            "an expected action is `{{ACTION: ...}}` with one action, got `{entry}`"
        ));
    };
    let (action, value) = obj
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap_or_default();
    let fields = match value {
        Value::Object(m) => m,
        Value::Null | Value::Bool(true) => Map::new(),
        scalar => {
            let key = match action.as_str() {
                "reply" | "send" => "text",
                "tag" | "untag" => "tag",
                "react" => "emoji",
                "cancel" => "key",
                "pin" => "time",
                "forward" => "to",
                other => return Err(format!("write `{other}:` with a map of fields")),
            };
            map(json!({ key: scalar }))
        }
    };
    Ok((action, fields))
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why an actual value does not fit an expected one (`/regex/` strings match by regex).
fn mismatch(expected: &Value, actual: Option<&Value>) -> Option<String> {
    let Some(actual) = actual else {
        return Some("missing".into());
    };
    if let Value::String(e) = expected
        && e.len() >= 2
        && e.starts_with('/')
        && e.ends_with('/')
    {
        // Case-insensitive unless the pattern says `(?-i)`: message texts start with capitals.
        let pattern = &e[1..e.len() - 1];
        return match regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .build()
        {
            Ok(re) if re.is_match(&text_of(actual)) => None,
            Ok(_) => Some(format!("{e} did not match {actual}")),
            Err(err) => Some(format!("{e} is not a valid regex: {err}")),
        };
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .find_map(|(k, v)| mismatch(v, a.get(k)).map(|m| format!("{k}: {m}"))),
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (e, a))| mismatch(e, Some(a)).map(|m| format!("[{i}]: {m}"))),
        (e, a) if e == a || (!e.is_object() && !e.is_array() && text_of(e) == text_of(a)) => None,
        (e, a) => Some(format!("expected {e}, got {a}")),
    }
}

/// Why `done` is not the expected action, or `None` if it is.
pub(super) fn differs(action: &str, fields: &Map<String, Value>, done: &Done) -> Option<String> {
    if action != done.action {
        return Some(format!("expected `{action}`, got `{}`", done.action));
    }
    fields
        .iter()
        .find_map(|(k, v)| mismatch(v, done.fields.get(k)).map(|m| format!("{k}: {m}")))
}

/// Compares expected entries with what was done. `ignore_extra`: the expected ones must appear
/// in order, others may come between.
pub(super) fn compare(
    expected_entries: &[Value],
    done: &[Done],
    ignore_extra: bool,
) -> Result<(), String> {
    let parsed: Vec<(String, Map<String, Value>)> = expected_entries
        .iter()
        .map(expected)
        .collect::<Result<_, _>>()?;
    if !ignore_extra {
        if parsed.len() == done.len()
            && let Some(problem) =
                parsed
                    .iter()
                    .zip(done)
                    .enumerate()
                    .find_map(|(i, ((a, f), d))| {
                        differs(a, f, d).map(|m| format!("action {}: {m}", i + 1))
                    })
        {
            return Err(diff(expected_entries, done, &problem));
        }
        if parsed.len() != done.len() {
            let problem = format!("expected {} actions, got {}", parsed.len(), done.len());
            return Err(diff(expected_entries, done, &problem));
        }
        return Ok(());
    }
    let mut rest = done.iter();
    for (i, (action, fields)) in parsed.iter().enumerate() {
        if !rest.any(|d| differs(action, fields, d).is_none()) {
            let problem = format!("expected action {} was not done (in this order)", i + 1);
            return Err(diff(expected_entries, done, &problem));
        }
    }
    Ok(())
}

fn diff(expected_entries: &[Value], done: &[Done], problem: &str) -> String {
    let mut out = format!("{problem}\n    expected:\n");
    if expected_entries.is_empty() {
        out.push_str("      (nothing)\n");
    }
    for e in expected_entries {
        let _ = writeln!(out, "      - {e}");
    }
    out.push_str("    got:\n");
    if done.is_empty() {
        out.push_str("      (nothing)\n");
    }
    for d in done {
        let _ = writeln!(out, "      - {}", d.to_value());
    }
    out
}
