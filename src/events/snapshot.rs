//! What of an event the actions after a `lookup:` need, kept with the lookup's job: the
//! rule's templates read their stored variables, but the actions themselves read the event
//! (the chat a `reply` answers, the message a `react` targets, the sender a `tag` tags).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Chat, Event, EventKind, Party};
use crate::vocab::MessageId;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    kind: String,
    id: String,
    channel: String,
    channel_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    /// Phone and name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sender: Option<(String, Option<String>)>,
    /// Id and name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chat: Option<(String, Option<String>)>,
    #[serde(default)]
    from_me: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emoji: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    options: Vec<String>,
}

impl Event {
    /// The event's stored snapshot (without the raw item, which the stored variables hold
    /// when a rule reads it).
    pub fn snapshot(&self) -> Value {
        let snapshot = Snapshot {
            kind: self.kind.to_string(),
            id: self.id.clone(),
            channel: self.channel.clone(),
            channel_name: self.channel_name.clone(),
            at: self.at,
            message_id: self.message_id.as_ref().map(|m| m.as_str().to_owned()),
            message_type: self.message_type.clone(),
            text: self.text.clone(),
            sender: self
                .sender
                .as_ref()
                .map(|p| (p.phone.clone(), p.name.clone())),
            chat: self.chat.as_ref().map(|c| (c.id.clone(), c.name.clone())),
            from_me: self.from_me,
            reply_id: self.reply_id.clone(),
            emoji: self.emoji.clone(),
            status: self.status.clone(),
            options: self.options.clone(),
        };
        serde_json::to_value(snapshot).unwrap_or(Value::Null)
    }

    /// The event a snapshot was taken of, when it is one.
    pub fn from_snapshot(value: &Value) -> Option<Self> {
        let s = Snapshot::deserialize(value).ok()?;
        let kind = EventKind::from_name(&s.kind).unwrap_or(EventKind::Unknown);
        let mut event = Self::new(kind, &s.channel, Arc::new(Value::Null));
        event.id = s.id;
        event.channel_name = s.channel_name;
        event.at = s.at;
        event.has_own_id = true;
        event.message_id = s.message_id.map(MessageId::new);
        event.message_type = s.message_type;
        event.text = s.text;
        event.sender = s.sender.map(|(phone, name)| Party { phone, name });
        event.chat = s.chat.map(|(id, name)| Chat::from_id(&id, name));
        event.from_me = s.from_me;
        event.reply_id = s.reply_id;
        event.emoji = s.emoji;
        event.status = s.status;
        event.options = s.options;
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_gives_back_what_actions_read() {
        let body: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/whapi/message-text-group.json"
        ))
        .unwrap();
        let event = super::super::parse_webhook(super::super::WebhookBody {
            body: &body,
            path: "",
            method: "POST",
        })
        .remove(0);
        let back = Event::from_snapshot(&event.snapshot()).unwrap();
        assert_eq!(back.kind, event.kind);
        assert_eq!(back.dedupe_key(), event.dedupe_key());
        assert_eq!(back.chat, event.chat);
        assert_eq!(back.sender, event.sender);
        assert_eq!(back.message_id, event.message_id);
        assert_eq!(back.text, event.text);
        assert!(Event::from_snapshot(&Value::Null).is_none());
    }
}
