//! Events: what happened on WhatsApp (or in another system), normalised from a Whapi.Cloud
//! webhook body into the kinds rule authors name in `when.event`.
//!
//! This module owns the event vocabulary and the parsing of webhook bodies. It never fails on
//! a surprise: unknown families become [`EventKind::Unknown`] events that are recorded but fire
//! no rule, and every raw item is kept verbatim so rules and templates can reach any field.

mod declared;
mod parse;
mod snapshot;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::vocab::MessageId;

pub use declared::{DeclaredEvent, Field, FieldType};
pub use parse::{WebhookBody, parse_webhook, parse_webhook_owned};
pub(crate) use parse::{bare_phone, phone_number};

/// The kinds of event a rule can name in `when.event`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Message,
    ButtonReply,
    ListReply,
    Reaction,
    PollVote,
    MessageEdited,
    MessageDeleted,
    Status,
    GroupJoin,
    GroupLeave,
    GroupPromote,
    GroupDemote,
    GroupCreated,
    GroupUpdated,
    Call,
    ChatCreated,
    ChatUpdated,
    ChatDeleted,
    ContactCreated,
    ContactUpdated,
    LabelCreated,
    LabelRemoved,
    Presence,
    ChannelStatus,
    /// `custom:NAME`, posted to `/events/NAME` by another system.
    Custom(String),
    /// A webhook family Riposte does not know: recorded, never matched.
    Unknown,
}

/// Every built-in kind with its rule-file name, in documentation order.
pub const BUILTIN_KINDS: &[(&str, EventKind)] = &[
    ("message", EventKind::Message),
    ("button_reply", EventKind::ButtonReply),
    ("list_reply", EventKind::ListReply),
    ("reaction", EventKind::Reaction),
    ("poll_vote", EventKind::PollVote),
    ("message_edited", EventKind::MessageEdited),
    ("message_deleted", EventKind::MessageDeleted),
    ("status", EventKind::Status),
    ("group_join", EventKind::GroupJoin),
    ("group_leave", EventKind::GroupLeave),
    ("group_promote", EventKind::GroupPromote),
    ("group_demote", EventKind::GroupDemote),
    ("group_created", EventKind::GroupCreated),
    ("group_updated", EventKind::GroupUpdated),
    ("call", EventKind::Call),
    ("chat_created", EventKind::ChatCreated),
    ("chat_updated", EventKind::ChatUpdated),
    ("chat_deleted", EventKind::ChatDeleted),
    ("contact_created", EventKind::ContactCreated),
    ("contact_updated", EventKind::ContactUpdated),
    ("label_created", EventKind::LabelCreated),
    ("label_removed", EventKind::LabelRemoved),
    ("presence", EventKind::Presence),
    ("channel_status", EventKind::ChannelStatus),
];

impl EventKind {
    /// Parses a rule-file event name (`message`, `custom:cart_abandoned`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        if let Some(custom) = name.strip_prefix("custom:") {
            return (!custom.is_empty()).then(|| Self::Custom(custom.to_owned()));
        }
        BUILTIN_KINDS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| k.clone())
    }

    /// The kinds whose item is a WhatsApp message (templates see it as `message`).
    pub fn is_message_family(&self) -> bool {
        matches!(
            self,
            Self::Message
                | Self::ButtonReply
                | Self::ListReply
                | Self::Reaction
                | Self::PollVote
                | Self::MessageEdited
                | Self::MessageDeleted
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Custom(name) => write!(f, "custom:{name}"),
            Self::Unknown => f.write_str("unknown"),
            other => {
                let name = BUILTIN_KINDS
                    .iter()
                    .find(|(_, k)| k == other)
                    .map_or("unknown", |(n, _)| n);
                f.write_str(name)
            }
        }
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where a conversation happens, derived from the chat id's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    Private,
    Group,
    Channel,
    /// `status@broadcast` and story messages.
    Status,
    Unknown,
}

impl ChatKind {
    /// Classifies a Whapi chat id (`…@s.whatsapp.net`, `…@g.us`, `…@newsletter`, ...).
    pub fn of(chat_id: &str) -> Self {
        if chat_id.ends_with("@g.us") {
            Self::Group
        } else if chat_id.ends_with("@newsletter") {
            Self::Channel
        } else if chat_id == "status@broadcast" || chat_id == "stories" {
            Self::Status
        } else if chat_id.ends_with("@s.whatsapp.net")
            || chat_id.ends_with("@lid")
            || (!chat_id.is_empty() && chat_id.bytes().all(|b| b.is_ascii_digit()))
        {
            Self::Private
        } else {
            Self::Unknown
        }
    }

    /// The name rule authors use in `when.chat`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Group => "group",
            Self::Channel => "channel",
            Self::Status => "status",
            Self::Unknown => "unknown",
        }
    }
}

/// A person involved in an event: the sender of a message, the participant of a group change.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Party {
    /// Bare digits, as Whapi writes contact ids (`4915112345678`); empty when the person's id
    /// holds no phone number (a hidden `@lid` number, a group, any other character).
    pub phone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The conversation an event belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chat {
    pub id: String,
    pub kind: ChatKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Chat {
    /// A chat described by its id alone.
    pub fn from_id(id: &str, name: Option<String>) -> Self {
        Self {
            id: id.to_owned(),
            kind: ChatKind::of(id),
            name,
        }
    }
}

/// The `channel` of an event whose body has no `channel_id`.
pub const NO_CHANNEL_ID: &str = "default";

/// One normalised event. Cheap to clone: the raw item is shared.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    /// The item's identity for dedupe: a message id, `status id:status`, or a content hash.
    pub id: String,
    /// Whapi `channel_id`, or `custom` for events posted to `/events/NAME`.
    pub channel: String,
    /// The name of the configured channel the event came in on (`default` for the one
    /// channel of an engine without a channels file, and for custom events).
    pub channel_name: String,
    /// When it happened according to the sender (Unix seconds), if the item says.
    pub at: Option<i64>,
    /// Whether the item carries an id of its own (else dedupe uses a content hash).
    pub has_own_id: bool,
    /// The raw item exactly as Whapi sent it.
    pub item: Arc<Value>,
    /// The message as it is now, for the message family (for edits: after the edit).
    pub message: Option<Arc<Value>>,
    /// The id of the WhatsApp message this event is about (reply, react, forward target).
    pub message_id: Option<MessageId>,
    pub message_type: Option<String>,
    pub text: Option<String>,
    pub sender: Option<Party>,
    pub chat: Option<Chat>,
    pub from_me: bool,
    /// Button or list row id, with Whapi's `ButtonsV3:` / `ListV3:` prefix removed.
    pub reply_id: Option<String>,
    pub emoji: Option<String>,
    /// Delivery status, call status, presence or channel status.
    pub status: Option<String>,
    /// Body of a custom event.
    pub data: Option<Arc<Value>>,
    /// For a status or a poll vote: the message Riposte sent that it is about, when it was
    /// one (templates see it as `sent`).
    pub sent: Option<Arc<crate::vocab::SentMessage>>,
    /// For a poll vote: the options chosen, by name when the poll is known.
    pub options: Vec<String>,
    /// `text` lower-cased and single-spaced, made once for all `keywords` conditions.
    folded: std::sync::OnceLock<String>,
}

impl Event {
    /// A blank event of a kind; the parser fills in what the item offers.
    pub fn new(kind: EventKind, channel: &str, item: Arc<Value>) -> Self {
        Self {
            kind,
            id: String::new(),
            channel: channel.to_owned(),
            channel_name: crate::vocab::DEFAULT_CHANNEL.to_owned(),
            at: None,
            has_own_id: false,
            item,
            message: None,
            message_id: None,
            message_type: None,
            text: None,
            sender: None,
            chat: None,
            from_me: false,
            reply_id: None,
            emoji: None,
            status: None,
            data: None,
            sent: None,
            options: Vec::new(),
            folded: std::sync::OnceLock::new(),
        }
    }

    /// The text as `keywords` compare it: lower-cased, whitespace runs as one space.
    pub fn folded_text(&self) -> &str {
        self.folded.get_or_init(|| {
            self.text
                .as_deref()
                .map(crate::rules::fold)
                .unwrap_or_default()
        })
    }

    /// The custom event `custom:NAME` with `data` as its body.
    pub fn custom(name: &str, id: &str, data: Value) -> Self {
        let data = Arc::new(data);
        let mut event = Self::new(EventKind::Custom(name.to_owned()), "custom", data.clone());
        event.id = id.to_owned();
        event.has_own_id = true;
        event.sender = custom_party(&data);
        event.chat = event
            .sender
            .as_ref()
            .map(|p| Chat::from_id(&format!("{}@s.whatsapp.net", p.phone), None));
        event.data = Some(data);
        event
    }

    /// What the event's chat state (handoff, `once_per`) is kept under: its chat on its
    /// channel.
    pub fn chat_key(&self) -> Option<String> {
        let chat = self.chat.as_ref()?;
        Some(crate::vocab::scoped(&self.channel_name, &chat.id))
    }

    /// The key under which this event is remembered so a retry never fires twice.
    /// The event, knowing the message Riposte sent that it is about. A vote in a poll
    /// Riposte sent gets its choices by name: WhatsApp names an option by the SHA-256 of
    /// its text.
    pub fn with_sent(mut self, sent: crate::vocab::SentMessage) -> Self {
        for choice in &mut self.options {
            if sent.options.contains(choice) {
                continue;
            }
            if let Some(name) = sent
                .options
                .iter()
                .find(|o| option_hashes(o).contains(choice))
            {
                choice.clone_from(name);
            }
        }
        self.sent = Some(Arc::new(sent));
        self
    }

    pub fn dedupe_key(&self) -> String {
        format!("{}|{}|{}", self.channel, self.kind, self.id)
    }
}

/// A custom event about a person names them in `phone` (or `chat_id`); that person becomes
/// the event's sender and chat so `reply` and contact tags work as for a message.
fn custom_party(data: &Value) -> Option<Party> {
    let raw = data
        .get("phone")
        .or_else(|| data.get("chat_id"))
        .or_else(|| data.get("to"))?;
    let digits = match raw {
        Value::String(s) => parse::phone_number(s),
        Value::Number(n) => parse::phone_number(&n.to_string()),
        _ => None,
    }?;
    let name = data.get("name").and_then(Value::as_str).map(str::to_owned);
    Some(Party {
        phone: digits,
        name,
    })
}

/// The ways a poll option's id may be written: the SHA-256 of its text in base64 or hex.
fn option_hashes(option: &str) -> [String; 2] {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(option.as_bytes());
    let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
    [base64(&digest), hex]
}

/// A poll option's id as a vote names it: the SHA-256 of its text, in base64.
pub fn option_id(option: &str) -> String {
    let [base64, _] = option_hashes(option);
    base64
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod vote_tests {
    use super::*;

    #[test]
    fn option_ids_are_the_sha256_of_their_text() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        // `printf %s Montag | openssl dgst -sha256 -binary | base64`
        assert_eq!(
            option_hashes("Montag")[0],
            "twP8auuc9lxVb2HflJ2POvVPgeKahmxn7tltt51HNBY="
        );
    }
}
