//! `then:` entries as written. An entry is a map with exactly one action key; the compile step
//! checks that (a struct of optional keys keeps each key's position, unlike an untagged enum).

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::{Located, OneOrMany};

/// One action. Write exactly one action key per entry.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// Send a message to the event's chat: a text, or a map with content keys.
    #[serde(default)]
    pub reply: Option<Located<MessageContent>>,
    /// Send a message to any number, group or channel (`to:` is required).
    #[serde(default)]
    pub send: Option<Located<MessageContent>>,
    /// Forward the event's message to another chat.
    #[serde(default)]
    pub forward: Option<ForwardSpec>,
    /// React to the event's message with an emoji (an empty string removes the reaction).
    #[serde(default)]
    pub react: Option<Located<String>>,
    /// Mark the event's message as read.
    #[serde(default)]
    pub mark_read: Option<bool>,
    /// Delete the event's message for everyone (Riposte's number must be a group admin to
    /// delete other people's messages in a group).
    #[serde(default)]
    pub delete: Option<bool>,
    /// Add tag(s) to the sender's contact.
    #[serde(default)]
    pub tag: Option<Located<OneOrMany<String>>>,
    /// Remove tag(s) from the sender's contact.
    #[serde(default)]
    pub untag: Option<Located<OneOrMany<String>>>,
    /// Set attributes on the sender's contact; values are templates.
    #[serde(default)]
    pub set: Option<Located<BTreeMap<String, String>>>,
    /// Call another system's HTTP endpoint.
    #[serde(default)]
    pub webhook: Option<WebhookSpec>,
    /// Ask another system (an order's status, stock, lab results): the actions after it in
    /// the rule run once it answers, and see its JSON answer as `lookup.NAME`.
    #[serde(default)]
    pub lookup: Option<Located<LookupSpec>>,
    /// Add people to a group (Riposte's number must be a group admin).
    #[serde(default)]
    pub group_add: Option<GroupSpec>,
    /// Remove people from a group (Riposte's number must be a group admin).
    #[serde(default)]
    pub group_remove: Option<GroupSpec>,
    /// Cancel the pending follow-ups scheduled with this key (a template).
    #[serde(default)]
    pub cancel: Option<Located<String>>,
    /// Hand the chat to a human: rules stop answering in it for a while.
    #[serde(default)]
    pub handoff: Option<Located<HandoffSpec>>,
    /// Answer with a language model over the chat's recent conversation; may hand off.
    #[serde(default)]
    pub ai_reply: Option<Located<AiReplySpec>>,
    /// Run the action this long after the event (`90s`, `2h`, `3d`), as a follow-up.
    #[serde(default)]
    pub after: Option<Located<String>>,
    /// Run the action at this time: a template giving RFC 3339 (`2026-03-02T09:00:00+01:00`)
    /// or a local date and time (`2026-03-02 09:00`) in the rule's time zone.
    #[serde(default)]
    pub at: Option<Located<String>>,
    /// With `at`: what to do when the time is already past when the rule fires: `send` at
    /// once (default) or `skip`.
    #[serde(default)]
    pub if_past: Option<Located<IfPast>>,
    /// Name of the follow-up (a template), so `cancel` can remove it; scheduling the same key
    /// again replaces the pending one.
    #[serde(default)]
    pub key: Option<Located<String>>,
    /// Skip the follow-up if these conditions on the contact hold when it is due.
    #[serde(default)]
    pub unless: Option<Located<UnlessSpec>>,
}

/// What a follow-up whose `at` is already past does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IfPast {
    /// Sent at once.
    Send,
    /// Not scheduled at all.
    Skip,
}

/// Conditions checked when a follow-up is due, against the contact as it is then.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlessSpec {
    /// Tags on the contact.
    #[serde(default)]
    pub tags: Option<super::TagsSpec>,
    /// Contact attributes with these exact values.
    #[serde(default)]
    pub attrs: Option<BTreeMap<String, String>>,
    /// A template expression, e.g. `contact.attrs.last_order_at > event.at`.
    #[serde(default, rename = "if")]
    pub expr: Option<Located<String>>,
}

/// A human takes over a chat.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoffSpec {
    /// How long the bot stays quiet in this chat (`24h`), unless resumed earlier.
    #[serde(rename = "for")]
    pub duration: Located<String>,
    /// A message to the agents, like `send` (needs `to`).
    #[serde(default)]
    pub notify: Option<Located<MessageContent>>,
    /// A word that, written by the agent (from our own number) in the chat, hands it back to
    /// the bot, e.g. `#bot`.
    #[serde(default)]
    pub resume_on: Option<String>,
}

/// An answer written by a language model (any OpenAI-compatible chat-completions endpoint).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AiReplySpec {
    /// Instructions for the model (a template: may use `contact.attrs`, `contact.tags`, ...).
    pub system: Located<String>,
    /// Model name; default `RIPOSTE_LLM_MODEL`.
    #[serde(default)]
    pub model: Option<Located<String>>,
    /// Earlier messages of the conversation sent along, newest kept (default 20).
    #[serde(default)]
    pub history: Option<Located<u32>>,
    /// Most characters of conversation sent along; older messages are left out first
    /// (default 8000).
    #[serde(default)]
    pub history_chars: Option<Located<u32>>,
    /// A conversation quiet for this long is forgotten and the next message starts afresh
    /// (default `24h`).
    #[serde(default)]
    pub forget_after: Option<Located<String>>,
    /// Files (text or Markdown, relative to this rule file and inside the rules folder)
    /// included in the instructions.
    #[serde(default)]
    pub knowledge: Option<Located<OneOrMany<String>>>,
    /// Longest answer the model may write, in tokens.
    #[serde(default)]
    pub max_tokens: Option<Located<u32>>,
    /// Sampling temperature, 0 to 2.
    #[serde(default)]
    pub temperature: Option<Located<f64>>,
    /// How long to wait for the model (default `20s`).
    #[serde(default)]
    pub timeout: Option<Located<String>>,
    /// Model calls tried before giving up with the fallback (default 2).
    #[serde(default)]
    pub attempts: Option<Located<u32>>,
    /// Sent when the model fails, times out or answers nothing (a template).
    #[serde(default)]
    pub fallback: Option<Located<String>>,
    /// Longest reply sent, in characters; a longer answer is cut at a word (default 1000).
    #[serde(default)]
    pub max_reply: Option<Located<u32>>,
    /// Most model answers per chat (`20/h`); beyond it the message gets no answer.
    #[serde(default)]
    pub per_chat: Option<Located<String>>,
    /// `live` (default) sends the answer; `shadow` asks the model and records the answer
    /// without sending it.
    #[serde(default)]
    pub mode: Option<super::Mode>,
    /// Whether messages a person sends from the business's own phone are part of the
    /// conversation the model sees (default true).
    #[serde(default)]
    pub agent_messages: Option<bool>,
    /// When and how a human takes over instead of the model.
    #[serde(default)]
    pub handoff: Option<Located<AiHandoffSpec>>,
}

/// When the model hands a chat to a human. The model is offered a `handoff` tool; calling it
/// hands off, with the model's reason added to `notify`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AiHandoffSpec {
    /// How long the bot stays quiet in the chat (`24h`), unless resumed earlier.
    #[serde(rename = "for")]
    pub duration: Located<String>,
    /// A message to the agents, like `send` (needs `to`); the reason is added as a last line.
    #[serde(default)]
    pub notify: Option<Located<MessageContent>>,
    /// A word that, written by the agent in the chat, hands it back to the bot, e.g. `#bot`.
    #[serde(default)]
    pub resume_on: Option<String>,
    /// Hand off, instead of sending, when the model's answer matches this regex.
    #[serde(default)]
    pub when_reply: Option<Located<String>>,
    /// Hand off after this many fallbacks in a row in the chat.
    #[serde(default)]
    pub after_fallbacks: Option<Located<u32>>,
}

/// Message content for `reply` and `send`. A plain string is a text message.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    /// Recipient for `send`: a number (`4915112345678`), a chat id, a group or a channel id.
    #[serde(default)]
    pub to: Option<Located<String>>,
    /// Message text (with media: the caption).
    #[serde(default)]
    pub text: Option<Located<String>>,
    /// Image URL.
    #[serde(default)]
    pub image: Option<Located<String>>,
    /// Document URL.
    #[serde(default)]
    pub document: Option<Located<String>>,
    /// Video URL.
    #[serde(default)]
    pub video: Option<Located<String>>,
    /// Audio URL.
    #[serde(default)]
    pub audio: Option<Located<String>>,
    /// Caption of an image, document or video.
    #[serde(default)]
    pub caption: Option<Located<String>>,
    /// File name shown for a document.
    #[serde(default)]
    pub filename: Option<Located<String>>,
    /// A location pin.
    #[serde(default)]
    pub location: Option<Located<LocationSpec>>,
    /// Up to three quick-reply buttons under `text`.
    #[serde(default)]
    pub buttons: Option<Located<Vec<ButtonSpec>>>,
    /// A list menu under `text`.
    #[serde(default)]
    pub list: Option<Located<ListSpec>>,
    /// A poll: a question and 2 to 12 options people vote on.
    #[serde(default)]
    pub poll: Option<Located<PollSpec>>,
    /// Numbers to mention in a text, image or video (templates); write `@NUMBER` in the text
    /// where the mention shows.
    #[serde(default)]
    pub mentions: Option<Located<OneOrMany<String>>>,
    /// Header line of a button or list message.
    #[serde(default)]
    pub header: Option<Located<String>>,
    /// Footer line of a button or list message.
    #[serde(default)]
    pub footer: Option<Located<String>>,
    /// Quote the event's message (reply in thread).
    #[serde(default)]
    pub quote: bool,
    /// Pin the message in its chat once it is sent: `day`, `week` or `month`.
    #[serde(default)]
    pub pin: Option<Located<String>>,
    /// Show "typing…" for this long before sending (`2s`, at most `60s`).
    #[serde(default)]
    pub typing: Option<Located<String>>,
    /// For `send`: the channel (WhatsApp number) to send through, by its name in the
    /// channels file; default the event's channel.
    #[serde(default)]
    pub channel: Option<Located<String>>,
}

/// A quick-reply button.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ButtonSpec {
    /// The id a tap sends back (match it with `reply_id`).
    pub id: Located<String>,
    /// The label, at most 25 characters.
    pub title: Located<String>,
}

/// A list menu.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSpec {
    /// Label of the button that opens the list.
    pub label: Located<String>,
    /// Sections of rows.
    pub sections: Vec<ListSectionSpec>,
}

/// A titled group of list rows.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSectionSpec {
    /// Section title.
    pub title: Located<String>,
    /// Rows the user can pick.
    pub rows: Vec<ListRowSpec>,
}

/// One pickable row of a list.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRowSpec {
    /// The id a pick sends back (match it with `reply_id`).
    pub id: Located<String>,
    /// Row title.
    pub title: Located<String>,
    /// Optional second line.
    #[serde(default)]
    pub description: Option<Located<String>>,
}

/// A poll.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollSpec {
    /// The question.
    pub title: Located<String>,
    /// The answers to choose from, 2 to 12 (templates).
    pub options: Located<Vec<String>>,
    /// How many options one person may choose: 1 (default) or 0 for any number.
    #[serde(default)]
    pub count: Option<Located<u8>>,
}

/// A location pin.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationSpec {
    /// Latitude in degrees.
    pub latitude: f64,
    /// Longitude in degrees.
    pub longitude: f64,
    /// Place name.
    #[serde(default)]
    pub name: Option<Located<String>>,
    /// Street address.
    #[serde(default)]
    pub address: Option<Located<String>>,
}

/// Where to forward the event's message.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardSpec {
    /// A number, chat id, group or channel id (a template).
    pub to: Located<String>,
}

/// A call to another system.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// The URL (a template). Template values are percent-encoded, so each fills one path
    /// segment or one query value; `{{ x | safe_url }}` writes a value you trust as it is.
    pub url: Located<String>,
    /// HTTP method; default `POST`.
    #[serde(default)]
    pub method: Option<Located<String>>,
    /// Extra request headers; values are templates.
    #[serde(default)]
    pub headers: Option<Located<BTreeMap<String, String>>>,
    /// Request body: a map is sent as JSON (its string values are templates), a string is
    /// sent as it renders.
    #[serde(default)]
    pub body: Option<Located<serde_json::Value>>,
    /// The channel the call belongs to (for filters and metrics), by its name in the
    /// channels file; default the event's channel.
    #[serde(default)]
    pub channel: Option<Located<String>>,
}

/// A call whose answer the rule's later actions use.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupSpec {
    /// The name of the answer: the actions after the lookup read it as `lookup.NAME`.
    #[serde(rename = "as")]
    pub name: Located<String>,
    /// The URL (a template), encoded as for `webhook`.
    pub url: Located<String>,
    /// HTTP method; default `GET`.
    #[serde(default)]
    pub method: Option<Located<String>>,
    /// Extra request headers; values are templates.
    #[serde(default)]
    pub headers: Option<Located<BTreeMap<String, String>>>,
    /// Request body, as for `webhook`.
    #[serde(default)]
    pub body: Option<Located<serde_json::Value>>,
    /// How long one try may take (default `10s`, at most `60s`); a slow answer is tried
    /// again like any failed call.
    #[serde(default)]
    pub timeout: Option<Located<String>>,
    /// Actions to run instead of the rest of the rule when the lookup finally fails; without
    /// it the rest is skipped and the failure is recorded.
    #[serde(default)]
    pub on_error: Option<Vec<Located<ActionSpec>>>,
}

/// A group and the people to add or remove.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Group id (`…@g.us`), a template.
    pub group: Located<String>,
    /// Numbers (templates), e.g. `"{{ sender.phone }}"`.
    pub participants: Located<OneOrMany<String>>,
}

/// `reply: "text"` is shorthand for `reply: {text: "text"}`.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum MessageContent {
    /// A text message.
    Text(String),
    /// Any message content.
    Full(Box<MessageSpec>),
}

impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StringOrMap;

        impl<'de> Visitor<'de> for StringOrMap {
            type Value = MessageContent;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a text or a map of message content")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MessageContent::Text(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                MessageSpec::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|m| MessageContent::Full(Box::new(m)))
            }
        }

        d.deserialize_any(StringOrMap)
    }
}
