//! A chat, and what Riposte remembers about it: a handoff, when `once_per` rules last fired,
//! the conversation an `ai_reply` reads.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A chat id as Whapi.Cloud writes it: `4915…@s.whatsapp.net` for a person, `…@g.us` for a
/// group, `…@newsletter` for a channel, or the bare number a `send` names.
///
/// One person's chat has several spellings (`4915…`, `+4915…`, `4915…@s.whatsapp.net`,
/// `4915…@c.us`, a device's `4915…:12@s.whatsapp.net`); [`ChatId::phone`] is the one place that
/// reads them, and the lane and the memory key follow from it, so every spelling is one chat.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChatId(String);

impl ChatId {
    /// A chat id as written; it is read, not changed.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The phone number of a person's chat: digits only, without `+`, domain or device.
    /// `None` for groups, channels, hidden numbers (`…@lid`) and anything with other
    /// characters in it.
    pub fn phone(&self) -> Option<&str> {
        let id = self.0.as_str();
        let user = match id.split_once('@') {
            None => id,
            Some((user, "s.whatsapp.net" | "c.us")) => match user.split_once(':') {
                Some((user, device)) if is_digits(device) => user,
                Some(_) => return None,
                None => user,
            },
            Some(_) => return None,
        };
        let digits = user.strip_prefix('+').unwrap_or(user);
        is_digits(digits).then_some(digits)
    }

    /// What one chat is known by, however it was spelled: a person's number, else the id.
    fn key(&self) -> &str {
        self.phone().unwrap_or(&self.0)
    }

    /// The ordering lane of the chat: calls in one lane are made in order.
    pub fn lane(&self) -> String {
        format!("chat:{}", self.key())
    }

    /// The key the chat's conversation is remembered under.
    pub fn memory_key(&self) -> String {
        self.key().to_owned()
    }
}

impl std::fmt::Display for ChatId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// A change to a chat's handoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HandoffChange {
    #[serde(rename = "start")]
    Start {
        #[serde(rename = "chat")]
        chat: String,
        #[serde(rename = "until")]
        until: DateTime<Utc>,
        #[serde(rename = "resume_on")]
        resume_on: Option<String>,
        #[serde(rename = "rule")]
        rule: String,
    },
    #[serde(rename = "end")]
    End {
        #[serde(rename = "chat")]
        chat: String,
    },
}

impl HandoffChange {
    /// The change as made on `channel`: its chat becomes that channel's chat.
    pub fn scope(&mut self, channel: &str) {
        let (Self::Start { chat, .. } | Self::End { chat }) = self;
        *chat = super::scoped(channel, chat);
    }

    /// The chat's handoff after this change.
    pub fn apply_to(&self, current: &mut Option<Handoff>, now: DateTime<Utc>) {
        *current = match self {
            Self::Start {
                chat,
                until,
                resume_on,
                rule,
            } => Some(Handoff {
                chat: chat.clone(),
                until: *until,
                since: now,
                resume_on: resume_on.clone(),
                rule: rule.clone(),
            }),
            Self::End { .. } => None,
        };
    }
}

/// A human agent has a chat until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    #[serde(rename = "chat")]
    pub chat: String,
    #[serde(rename = "until")]
    pub until: DateTime<Utc>,
    #[serde(rename = "since")]
    pub since: DateTime<Utc>,
    #[serde(rename = "resume_on")]
    pub resume_on: Option<String>,
    #[serde(rename = "rule")]
    pub rule: String,
}

/// What Riposte remembers about a chat: a handoff, and when `once_per` rules last fired.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatState {
    #[serde(rename = "handoff")]
    pub handoff: Option<Handoff>,
    #[serde(rename = "fired")]
    pub fired: BTreeMap<String, DateTime<Utc>>,
}

/// Who wrote a message of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// The contact.
    #[serde(rename = "user")]
    User,
    /// Riposte (a rule's reply, a campaign, a model answer).
    #[serde(rename = "bot")]
    Bot,
    /// A person writing from the business's own phone.
    #[serde(rename = "agent")]
    Agent,
}

impl Role {
    /// The role as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Bot => "bot",
            Self::Agent => "agent",
        }
    }

    /// The role of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => Self::User,
            "bot" => Self::Bot,
            "agent" => Self::Agent,
            _ => return None,
        })
    }
}

/// One message of a chat's conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// The chat's memory key ([`ChatId::memory_key`]).
    #[serde(rename = "chat")]
    pub chat: String,
    #[serde(rename = "role")]
    pub role: Role,
    #[serde(rename = "text")]
    pub text: String,
    #[serde(rename = "at")]
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_person_s_chat_is_one_lane_and_one_memory() {
        let spellings = [
            "4915112345678",
            "+4915112345678",
            "4915112345678@s.whatsapp.net",
            "4915112345678@c.us",
            "4915112345678:12@s.whatsapp.net",
        ];
        for id in spellings {
            let chat = ChatId::new(id);
            assert_eq!(chat.phone(), Some("4915112345678"), "{id}");
            assert_eq!(chat.lane(), "chat:4915112345678", "{id}");
            assert_eq!(chat.memory_key(), "4915112345678", "{id}");
        }
    }

    #[test]
    fn groups_channels_and_hidden_numbers_have_no_phone_and_keep_their_id() {
        for id in [
            "120363041234567890@g.us",
            "120363041234567890@newsletter",
            "123456789012345@lid",
            "4915=cmd|x",
            "+49 151 2345678",
            "4915112345678:x@s.whatsapp.net",
            "",
        ] {
            let chat = ChatId::new(id);
            assert_eq!(chat.phone(), None, "{id}");
            assert_eq!(chat.lane(), format!("chat:{id}"));
            assert_eq!(chat.memory_key(), id);
        }
    }
}
