//! Whapi.Cloud webhook bodies → events. Every field is optional here: the documented shapes are
//! a guide, and real traffic has more. Nothing in this file can fail.

use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Chat, Event, EventKind, Party};
use crate::vocab::MessageId;

/// A stored webhook body with the request details that Whapi's `path` and `method` modes use
/// to carry the event name instead of the JSON `event` object.
#[derive(Debug, Clone, Copy)]
pub struct WebhookBody<'a> {
    pub body: &'a Value,
    /// The part of the URL after `/webhook/` (empty in body mode).
    pub path: &'a str,
    /// The HTTP method the body arrived with.
    pub method: &'a str,
}

/// Turns one webhook body into its events, in item order. A body of a family Riposte does not
/// know yields one [`EventKind::Unknown`] event so it is still recorded.
pub fn parse_webhook(webhook: WebhookBody<'_>) -> Vec<Event> {
    parse_webhook_owned(webhook.body.clone(), webhook.path, webhook.method)
}

/// [`parse_webhook`] of a body the caller has no further use for: each event's item is moved
/// out of it instead of copied.
pub fn parse_webhook_owned(body: Value, path: &str, method: &str) -> Vec<Event> {
    let Value::Object(mut body) = body else {
        return Vec::new();
    };
    let channel = body
        .get("channel_id")
        .and_then(Value::as_str)
        .unwrap_or(super::NO_CHANNEL_ID)
        .to_owned();
    let method = event_method(&body, path, method);
    let mut events = Vec::new();
    for (key, value) in &mut body {
        parse_family(key, value, &channel, &method, &mut events);
    }
    if events.is_empty() {
        // No family took anything, so the body is whole.
        let item = Arc::new(Value::Object(body));
        let mut event = Event::new(EventKind::Unknown, &channel, item.clone());
        event.id = content_hash(&item);
        events.push(event);
    }
    events
}

/// `event.event` as documented, `event.method` as in the OpenAPI schema, else the URL path or
/// HTTP method of the `path` / `method` webhook modes.
fn event_method(body: &Map<String, Value>, path: &str, method: &str) -> String {
    let from_body = body.get("event").and_then(|e| {
        e.get("event")
            .or_else(|| e.get("method"))
            .and_then(Value::as_str)
    });
    if let Some(m) = from_body {
        return m.to_ascii_lowercase();
    }
    let last_segment = path.rsplit('/').find(|s| !s.is_empty());
    match last_segment {
        Some(seg @ ("post" | "put" | "patch" | "delete")) => seg.to_owned(),
        _ => method.to_ascii_lowercase(),
    }
}

/// Makes the events of one family of the body. A family takes its value out of the body only
/// when it makes at least one event of it, so a body that gives no event is left whole.
fn parse_family(key: &str, value: &mut Value, channel: &str, method: &str, out: &mut Vec<Event>) {
    match key {
        "messages" => each(value, |item| out.push(message_event(item, channel))),
        "messages_updates" => each(value, |item| out.push(message_update(item, channel))),
        "messages_removed" => each(value, |item| out.push(message_removed(item, channel))),
        "messages_removed_all" => out.push(chat_cleared(Arc::new(value.take()), channel)),
        "statuses" => each(value, |item| out.push(status_event(item, channel))),
        // A change with an empty list of participants names no one: it makes no event.
        "groups_participants" if !names_no_one(value) => {
            each(value, |item| participant_events(item, channel, out));
        }
        "groups" => each(value, |item| {
            out.push(chat_item(EventKind::GroupCreated, item, channel))
        }),
        "groups_updates" => each(value, |item| {
            out.push(update_item(EventKind::GroupUpdated, item, channel))
        }),
        "chats" => each(value, |item| {
            out.push(chat_item(EventKind::ChatCreated, item, channel))
        }),
        "chats_updates" => each(value, |item| {
            out.push(update_item(EventKind::ChatUpdated, item, channel))
        }),
        "chats_removed" => each(value, |item| {
            out.push(chat_item(EventKind::ChatDeleted, item, channel))
        }),
        "contacts" => each(value, |item| {
            out.push(contact_item(EventKind::ContactCreated, item, channel))
        }),
        "contacts_updates" => each(value, |item| {
            out.push(contact_item(EventKind::ContactUpdated, item, channel))
        }),
        "labels" => each(value, |item| {
            out.push(plain_item(EventKind::LabelCreated, item, channel))
        }),
        "labels_removed" => each(value, |item| {
            out.push(plain_item(EventKind::LabelRemoved, item, channel))
        }),
        "presences" => each(value, |item| out.push(presence_event(item, channel))),
        "calls" => each(value, |item| out.push(call_event(item, channel))),
        "health" | "qr" | "user" => {
            out.push(channel_status(key, Arc::new(value.take()), channel, method));
        }
        _ => {}
    }
}

/// Calls `f` for each element of an array taken out of `value`, or once for a lone object
/// (defensive: the envelope documents arrays, but a single object costs nothing to accept).
/// An empty array or `null` is left where it is.
fn each(value: &mut Value, mut f: impl FnMut(Arc<Value>)) {
    match value.take() {
        Value::Array(items) if items.is_empty() => *value = Value::Array(items),
        Value::Array(items) => items.into_iter().map(Arc::new).for_each(f),
        Value::Null => {}
        other => f(Arc::new(other)),
    }
}

/// Whether every change in a `groups_participants` value has an empty list of participants.
fn names_no_one(value: &Value) -> bool {
    let empty = |change: &Value| matches!(change.get("participants"), Some(Value::Array(l)) if l.is_empty());
    match value {
        Value::Array(changes) => changes.iter().all(empty),
        other => empty(other),
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn message_at(v: &Value, pointer: &str) -> Option<MessageId> {
    str_at(v, pointer).map(MessageId::new)
}

fn owned_at(v: &Value, pointer: &str) -> Option<String> {
    str_at(v, pointer).map(str::to_owned)
}

/// Whapi writes senders as bare digits but calls and statuses as full JIDs.
pub(crate) fn bare_phone(raw: &str) -> String {
    let user = raw.split('@').next().unwrap_or(raw);
    user.trim_start_matches('+').to_owned()
}

/// The phone number a person's id from a webhook holds: Whapi writes bare digits
/// (`4915112345678`), calls and statuses a personal JID (`…@s.whatsapp.net`), and a leading
/// `+` is how numbers are written elsewhere; a JID may name one of the person's devices
/// (`…:12@s.whatsapp.net`). Anything else is not a phone number, so it never
/// becomes a contact key, a CSV cell or a recipient: a hidden number (`…@lid`), a group, or a
/// value with other characters in it (`4915=cmd|…`, `+49 151`).
pub(crate) fn phone_number(raw: &str) -> Option<String> {
    crate::vocab::ChatId::new(raw).phone().map(str::to_owned)
}

/// A person named by an id from a webhook; their phone is empty when the id holds none.
fn party(raw: &str, name: Option<String>) -> Party {
    Party {
        phone: phone_number(raw).unwrap_or_default(),
        name,
    }
}

/// Seconds since the epoch from a number or a numeric string; call events count milliseconds.
fn timestamp(v: &Value) -> Option<i64> {
    let raw = match v.get("timestamp")? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(if raw > 100_000_000_000 {
        raw / 1000
    } else {
        raw
    })
}

pub(crate) fn content_hash(v: &Value) -> String {
    let digest = Sha256::digest(v.to_string().as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("h:{hex}")
}

fn with_id(mut event: Event, id: Option<String>) -> Event {
    match id {
        Some(id) if !id.is_empty() => {
            event.id = id;
            event.has_own_id = true;
        }
        _ => event.id = content_hash(&event.item),
    }
    event
}

fn message_event(item: Arc<Value>, channel: &str) -> Event {
    let raw = &*item;
    let kind = message_kind(raw);
    let mut event = Event::new(kind, channel, item.clone());
    event.message = Some(item.clone());
    fill_from_message(&mut event, raw);
    with_id(event, owned_at(raw, "/id"))
}

fn message_kind(m: &Value) -> EventKind {
    match str_at(m, "/type").unwrap_or("") {
        "reply" => match str_at(m, "/reply/type") {
            Some("list_reply") => EventKind::ListReply,
            _ => EventKind::ButtonReply,
        },
        "poll_update" => EventKind::PollVote,
        "action" => match str_at(m, "/action/type").unwrap_or("") {
            "reaction" => EventKind::Reaction,
            "vote" => EventKind::PollVote,
            "edit" | "edited" => EventKind::MessageEdited,
            "delete" => EventKind::MessageDeleted,
            _ => EventKind::Message,
        },
        _ => EventKind::Message,
    }
}

/// Fills sender, chat, text and the message-specific fields from a Whapi Message object.
fn fill_from_message(event: &mut Event, m: &Value) {
    event.at = timestamp(m);
    event.from_me = m.get("from_me").and_then(Value::as_bool).unwrap_or(false);
    event.message_type = owned_at(m, "/type");
    event.message_id = message_at(m, "/id");
    if let Some(chat_id) = str_at(m, "/chat_id") {
        event.chat = Some(Chat::from_id(chat_id, owned_at(m, "/chat_name")));
    }
    if let Some(from) = str_at(m, "/from") {
        event.sender = Some(party(from, owned_at(m, "/from_name")));
    }
    event.text = message_text(m);
    match event.kind {
        EventKind::ButtonReply | EventKind::ListReply => {
            let reply = m
                .pointer("/reply/buttons_reply")
                .or_else(|| m.pointer("/reply/list_reply"));
            if let Some(reply) = reply {
                event.reply_id = owned_at(reply, "/id").map(|id| strip_reply_prefix(&id));
                event.text = owned_at(reply, "/title");
            }
        }
        EventKind::Reaction => {
            event.emoji = owned_at(m, "/action/emoji");
            event.message_id = message_at(m, "/action/target").or(event.message_id.take());
        }
        EventKind::MessageEdited | EventKind::MessageDeleted => {
            event.message_id = message_at(m, "/action/target").or(event.message_id.take());
        }
        EventKind::PollVote => {
            // The poll voted in; the choices as Whapi.Cloud gives them (option ids, or the
            // names where a poll's results list its voters).
            event.message_id = message_at(m, "/action/target").or(event.message_id.take());
            event.options = poll_choices(m, event.sender.as_ref());
        }
        _ => {}
    }
}

/// The options a vote chose: `action.votes`, else the options of `poll.results` that list
/// the voter among their voters.
fn poll_choices(m: &Value, voter: Option<&Party>) -> Vec<String> {
    if let Some(votes) = m.pointer("/action/votes").and_then(Value::as_array) {
        return votes
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
    }
    let Some(voter) = voter.filter(|v| !v.phone.is_empty()) else {
        return Vec::new();
    };
    let results = m.pointer("/poll/results").and_then(Value::as_array);
    results
        .into_iter()
        .flatten()
        .filter(|option| {
            option
                .get("voters")
                .and_then(Value::as_array)
                .is_some_and(|voters| {
                    voters
                        .iter()
                        .filter_map(Value::as_str)
                        .any(|v| bare_phone(v) == voter.phone)
                })
        })
        .filter_map(|option| owned_at(option, "/name"))
        .collect()
}

/// Whapi prefixes the ids of tapped buttons and list rows; rules name the id they sent.
fn strip_reply_prefix(id: &str) -> String {
    id.strip_prefix("ButtonsV3:")
        .or_else(|| id.strip_prefix("ListV3:"))
        .unwrap_or(id)
        .to_owned()
}

/// The text a person wrote: body, media caption, link preview body or an edit's new text.
fn message_text(m: &Value) -> Option<String> {
    const POINTERS: &[&str] = &[
        "/text/body",
        "/image/caption",
        "/video/caption",
        "/document/caption",
        "/gif/caption",
        "/short/caption",
        "/link_preview/body",
        "/action/edited_content/body",
        "/interactive/body/text",
        "/hsm/body",
        "/system/body",
    ];
    POINTERS.iter().find_map(|p| owned_at(m, p))
}

fn message_update(item: Arc<Value>, channel: &str) -> Event {
    let raw = &*item;
    let mut event = Event::new(EventKind::MessageEdited, channel, item.clone());
    let current = raw
        .get("after_update")
        .or_else(|| raw.get("trigger"))
        .filter(|v| v.is_object());
    if let Some(message) = current {
        fill_from_message(&mut event, message);
        event.message = Some(Arc::new(message.clone()));
    } else {
        event.message = Some(item.clone());
    }
    event.message_id = message_at(raw, "/id").or(event.message_id.take());
    // One message can be edited many times; the trigger (the edit itself) names each edit.
    let id = owned_at(raw, "/trigger/id").or_else(|| {
        let after = timestamp(raw.get("after_update").unwrap_or(&Value::Null));
        owned_at(raw, "/id").map(|id| format!("{id}:{}", after.unwrap_or_default()))
    });
    with_id(event, id)
}

fn message_removed(item: Arc<Value>, channel: &str) -> Event {
    let raw = &*item;
    let mut event = Event::new(EventKind::MessageDeleted, channel, item.clone());
    event.message = Some(item.clone());
    let id = raw
        .as_str()
        .map(str::to_owned)
        .or_else(|| owned_at(raw, "/id"));
    event.message_id = id.as_deref().map(MessageId::new);
    with_id(event, id)
}

fn chat_cleared(item: Arc<Value>, channel: &str) -> Event {
    let raw = &*item;
    let mut event = Event::new(EventKind::MessageDeleted, channel, item.clone());
    event.message = Some(item.clone());
    if let Some(chat_id) = raw.as_str() {
        event.chat = Some(Chat::from_id(chat_id, None));
    }
    with_id(event, None)
}

fn status_event(item: Arc<Value>, channel: &str) -> Event {
    let raw = &*item;
    let mut event = Event::new(EventKind::Status, channel, item.clone());
    event.at = timestamp(raw);
    event.status = owned_at(raw, "/status");
    event.message_id = message_at(raw, "/id");
    if let Some(recipient) = str_at(raw, "/recipient_id") {
        event.chat = Some(Chat::from_id(recipient, None));
        event.sender = Some(party(str_at(raw, "/viewer_id").unwrap_or(recipient), None));
    }
    // A message goes through several statuses; each is its own event.
    let id = event
        .message_id
        .as_ref()
        .map(|id| format!("{id}:{}", event.status.as_deref().unwrap_or("")));
    with_id(event, id)
}

fn participant_events(item: Arc<Value>, channel: &str, out: &mut Vec<Event>) {
    let raw = &*item;
    let kind = match str_at(raw, "/action") {
        Some("add") => EventKind::GroupJoin,
        Some("remove") => EventKind::GroupLeave,
        Some("promote") => EventKind::GroupPromote,
        Some("demote") => EventKind::GroupDemote,
        _ => EventKind::Unknown,
    };
    let group = str_at(raw, "/group_id");
    let participants: Vec<&Value> = match raw.get("participants") {
        Some(Value::Array(list)) => list.iter().collect(),
        _ => vec![&Value::Null],
    };
    for participant in participants {
        let mut event = Event::new(kind.clone(), channel, item.clone());
        event.at = timestamp(raw);
        event.chat = group.map(|g| Chat::from_id(g, None));
        event.sender = participant
            .as_str()
            .or_else(|| str_at(participant, "/id"))
            .map(|id| party(id, None));
        // Participant changes carry no id; the content hash below covers group, action and
        // person, so one person joining is one event.
        let mut keyed = serde_json::json!({ "change": raw, "participant": participant });
        if let Some(obj) = keyed.as_object_mut() {
            obj.insert("kind".into(), Value::String(kind.to_string()));
        }
        event.id = content_hash(&keyed);
        out.push(event);
    }
}

fn chat_item(kind: EventKind, item: Arc<Value>, channel: &str) -> Event {
    let raw = &*item;
    let mut event = Event::new(kind, channel, item.clone());
    event.at = timestamp(raw);
    let id = raw
        .as_str()
        .map(str::to_owned)
        .or_else(|| owned_at(raw, "/id"));
    if let Some(id) = &id {
        event.chat = Some(Chat::from_id(id, owned_at(raw, "/name")));
    }
    with_id(event, id)
}

fn update_item(kind: EventKind, item: Arc<Value>, channel: &str) -> Event {
    let raw = &*item;
    let mut event = Event::new(kind, channel, item.clone());
    let after = raw.get("after_update").unwrap_or(raw);
    event.at = timestamp(after);
    if let Some(id) = str_at(after, "/id") {
        event.chat = Some(Chat::from_id(id, owned_at(after, "/name")));
    }
    with_id(event, None)
}

fn contact_item(kind: EventKind, item: Arc<Value>, channel: &str) -> Event {
    let raw = &*item;
    let mut event = Event::new(kind, channel, item.clone());
    let contact = raw.get("after_update").unwrap_or(raw);
    if let Some(id) = str_at(contact, "/id") {
        let sender = party(id, owned_at(contact, "/name"));
        // A hidden number's chat is its `@lid` id itself.
        event.chat = if !sender.phone.is_empty() {
            Some(Chat::from_id(
                &format!("{}@s.whatsapp.net", sender.phone),
                None,
            ))
        } else if id.contains('@') {
            Some(Chat::from_id(id, None))
        } else {
            None
        };
        event.sender = Some(sender);
    }
    with_id(event, None)
}

fn plain_item(kind: EventKind, item: Arc<Value>, channel: &str) -> Event {
    let event = Event::new(kind, channel, item);
    with_id(event, None)
}

fn presence_event(item: Arc<Value>, channel: &str) -> Event {
    let raw = &*item;
    let mut event = Event::new(EventKind::Presence, channel, item.clone());
    event.status = owned_at(raw, "/status");
    if let Some(contact) = str_at(raw, "/contact_id") {
        event.chat = Some(Chat::from_id(contact, None));
        event.sender = Some(party(contact, None));
    }
    with_id(event, None)
}

fn call_event(item: Arc<Value>, channel: &str) -> Event {
    let raw = &*item;
    let mut event = Event::new(EventKind::Call, channel, item.clone());
    event.at = timestamp(raw);
    event.status = owned_at(raw, "/status");
    if let Some(chat) = str_at(raw, "/chat_id") {
        event.chat = Some(Chat::from_id(chat, None));
    }
    if let Some(from) = str_at(raw, "/from") {
        event.sender = Some(party(from, None));
    }
    // One call passes through several statuses (ringing, missed, ...): one event each.
    let id =
        owned_at(raw, "/id").map(|id| format!("{id}:{}", event.status.as_deref().unwrap_or("")));
    with_id(event, id)
}

fn channel_status(key: &str, item: Arc<Value>, channel: &str, method: &str) -> Event {
    let raw = &*item;
    let mut event = Event::new(EventKind::ChannelStatus, channel, item.clone());
    event.status = match key {
        "health" => owned_at(raw, "/status/text"),
        "qr" => Some("QR".to_owned()),
        _ if method == "delete" => Some("LOGGED_OUT".to_owned()),
        _ => Some("LOGGED_IN".to_owned()),
    };
    let mut keyed = raw.clone();
    if let Some(obj) = keyed.as_object_mut() {
        obj.insert("family".into(), Value::String(format!("{key}.{method}")));
    }
    event.id = content_hash(&keyed);
    event
}

#[cfg(test)]
mod tests {
    use super::phone_number;

    #[test]
    fn only_digits_make_a_phone_number() {
        for (id, phone) in [
            ("4915112345678", Some("4915112345678")),
            ("4915112345678@s.whatsapp.net", Some("4915112345678")),
            ("+4915112345678", Some("4915112345678")),
            ("4915112345678@c.us", Some("4915112345678")),
            ("4915112345678:12@s.whatsapp.net", Some("4915112345678")),
            ("4915112345678:@s.whatsapp.net", None),
            ("4915112345678:x@s.whatsapp.net", None),
            ("4915112345678:12", None),
            ("123456789012345@lid", None),
            ("120363041234567890@g.us", None),
            ("4915=cmd|' /C calc'!A0", None),
            ("+49 151 2345678", None),
            ("4915112345678\n", None),
            ("++4915112345678", None),
            ("+", None),
            ("", None),
        ] {
            assert_eq!(phone_number(id).as_deref(), phone, "{id:?}");
        }
    }
}
