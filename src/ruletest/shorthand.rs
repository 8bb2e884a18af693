//! Event shorthands of rule tests → the webhook bodies Whapi.Cloud would send.

use serde_json::{Value, json};

use super::spec::{EventSpec, GroupEvent, MessageEvent, ReplyEvent};

/// What a test step feeds in.
pub(super) enum Feed {
    Webhook(Value),
    Custom { name: String, data: Value },
}

const CHANNEL: &str = "TEST-CHANNEL";

fn private_chat(phone: &str) -> String {
    if phone.contains('@') {
        phone.to_owned()
    } else {
        format!("{phone}@s.whatsapp.net")
    }
}

fn envelope(key: &str, item: Value, kind: &str, method: &str) -> Value {
    json!({ key: [item], "event": {"type": kind, "event": method}, "channel_id": CHANNEL })
}

/// A generated message id, shaped like Whapi.Cloud's so `react`, `forward` and `mark_read`
/// accept it as they would a real one.
fn message_id(n: u64) -> String {
    format!("test-msg{n:04}")
}

fn message(m: &MessageEvent, n: u64) -> Value {
    let kind = m.message_type.clone().unwrap_or_else(|| "text".into());
    let text = m.text.clone().unwrap_or_default();
    let mut item = json!({
        "id": m.id.clone().unwrap_or_else(|| message_id(n)),
        "from_me": m.from_me,
        "type": kind,
        "chat_id": m.chat.clone().unwrap_or_else(|| private_chat(&m.from)),
        "timestamp": 0,
        "source": "mobile",
        "from": m.from,
    });
    let content = match kind.as_str() {
        "text" => json!({"body": text}),
        "image" | "video" | "document" | "gif" => {
            json!({"id": format!("{kind}-test"), "caption": text, "link": format!("https://example.com/{kind}")})
        }
        _ => json!({"body": text}),
    };
    item[kind.as_str()] = content;
    if let Some(name) = &m.name {
        item["from_name"] = json!(name);
    }
    envelope("messages", item, "messages", "post")
}

fn reply(r: &ReplyEvent, list: bool, n: u64) -> Value {
    let (kind, prefix, key) = if list {
        ("list_reply", "ListV3:", "list_reply")
    } else {
        ("buttons_reply", "ButtonsV3:", "buttons_reply")
    };
    let mut item = json!({
        "id": message_id(n),
        "from_me": false,
        "type": "reply",
        "chat_id": private_chat(&r.from),
        "timestamp": 0,
        "from": r.from,
        "reply": {"type": kind, key: {"id": format!("{prefix}{}", r.id), "title": r.title.clone().unwrap_or_else(|| r.id.clone())}},
    });
    if let Some(name) = &r.name {
        item["from_name"] = json!(name);
    }
    envelope("messages", item, "messages", "post")
}

fn group(g: &GroupEvent, action: &str) -> Value {
    envelope(
        "groups_participants",
        json!({"group_id": g.group, "participants": [g.participant], "action": action}),
        "groups",
        "put",
    )
}

/// Turns a step's event into what is fed in; `n` numbers generated message ids. `read` loads
/// a fixture file.
pub(super) fn feed(
    spec: &EventSpec,
    n: u64,
    read: impl Fn(&str) -> Result<Value, String>,
) -> Result<Feed, String> {
    if let Some(name) = &spec.custom {
        return Ok(Feed::Custom {
            name: name.clone(),
            data: spec.data.clone().unwrap_or_else(|| json!({})),
        });
    }
    let body = if let Some(file) = &spec.file {
        read(file)?
    } else if let Some(webhook) = &spec.webhook {
        webhook.clone()
    } else if let Some(m) = &spec.message {
        message(m, n)
    } else if let Some(b) = &spec.button {
        reply(b, false, n)
    } else if let Some(l) = &spec.list {
        reply(l, true, n)
    } else if let Some(r) = &spec.reaction {
        let item = json!({
            "id": message_id(n), "from_me": false, "type": "action", "chat_id": private_chat(&r.from),
            "timestamp": 0, "from": r.from,
            "action": {"type": "reaction", "target": r.target.clone().unwrap_or_else(|| "test-target".into()), "emoji": r.emoji},
        });
        envelope("messages", item, "messages", "post")
    } else if let Some(s) = &spec.status {
        // Without an id, the runner fills in the last message Riposte sent to `to`.
        let item = json!({"id": s.id.clone().unwrap_or_default(), "status": s.status, "recipient_id": private_chat(&s.to), "timestamp": "0"});
        envelope("statuses", item, "statuses", "post")
    } else if let Some(v) = &spec.vote {
        // WhatsApp names a chosen option by the SHA-256 of its text; the poll's id is filled
        // in by the runner (the last poll sent to the voter).
        let votes: Vec<String> = v
            .options
            .iter()
            .map(|o| crate::events::option_id(o))
            .collect();
        let item = json!({
            "id": message_id(n), "from_me": false, "type": "action", "chat_id": private_chat(&v.from),
            "timestamp": 0, "from": v.from,
            "action": {"type": "vote", "target": "", "votes": votes},
        });
        envelope("messages", item, "messages", "post")
    } else if let Some(g) = &spec.group_join {
        group(g, "add")
    } else if let Some(g) = &spec.group_leave {
        group(g, "remove")
    } else {
        return Err("the event needs one of message, button, list, reaction, status, vote, group_join, group_leave, custom, file or webhook".into());
    };
    Ok(Feed::Webhook(body))
}
