//! What a matched rule does: compiled actions, and their rendering into contact changes and
//! outbound requests (the exact Whapi.Cloud or webhook call a job will make).
//!
//! The rule files are compiled into these forms by `rules::compile`: this module knows nothing
//! of the YAML they were written in.

mod ai;
mod lookup;
mod message;
mod step;
mod webhook;

use minijinja::Value;

pub use ai::{AiHandoffAction, AiReply};
pub use lookup::LookupAction;
pub(crate) use message::mention_number;
pub use message::{
    Buttons, Content, Extras, List, Location, Media, MediaKind, Poll, Recipient, Section,
};
pub use step::{Step, Timing, Unless, parse_at};

use crate::events::Event;
use crate::templates::{RenderError, Templates, Text, UrlText};
use crate::vocab::{
    ChatId, Contact, ContactChange, HandoffChange, MessageId, OutboundRequest, Work,
};
use crate::whapi::path::{IdKind, InvalidId};

/// A compiled action.
#[derive(Debug, Clone)]
pub enum Action {
    Message {
        to: Recipient,
        content: Content,
        quote: bool,
        typing: Option<u8>,
        /// Mentions and a `send`'s channel; boxed, as they are rare and every step is the
        /// size of the largest action.
        extras: Option<Box<Extras>>,
    },
    Forward {
        to: Text,
    },
    React {
        emoji: Text,
    },
    MarkRead,
    /// Deletes the event's message for everyone.
    Delete,
    Tag(Vec<String>),
    Untag(Vec<String>),
    Set(Vec<(String, Text)>),
    /// Boxed: larger than the other actions and rarer than messages.
    Webhook(Box<WebhookAction>),
    /// Asks another system; the rule's later actions run with its answer.
    Lookup(Box<LookupAction>),
    Group {
        add: bool,
        group: Text,
        participants: Vec<Text>,
    },
    /// Cancels the pending follow-ups with a key.
    Cancel(Text),
    /// A human takes over the chat; `notify` tells the agents.
    Handoff {
        duration: chrono::Duration,
        notify: Option<Box<Self>>,
        resume_on: Option<String>,
    },
    /// A language model answers over the chat's conversation.
    AiReply(Box<AiReply>),
}

/// A compiled `webhook:` action.
#[derive(Debug, Clone)]
pub struct WebhookAction {
    /// Values in it are percent-encoded unless marked `| safe_url`.
    pub url: UrlText,
    /// The URL's host comes from a template (event data), so it must be on the allow-list.
    pub host_from_template: bool,
    pub method: String,
    pub headers: Vec<(String, Text)>,
    pub body: Option<BodyTemplate>,
    /// The channel the call belongs to (default: the event's).
    pub channel: Option<String>,
}

/// A webhook body: JSON whose strings are templates, or one text template.
#[derive(Debug, Clone)]
pub enum BodyTemplate {
    Text(Text),
    Json(JsonTemplate),
}

/// A JSON value whose string leaves are templates. A string that is exactly `{{ expr }}`
/// keeps the expression's type (number, list, object) instead of becoming text.
#[derive(Debug, Clone)]
pub enum JsonTemplate {
    Fixed(serde_json::Value),
    Text(Text),
    Value(String),
    Array(Vec<Self>),
    Object(Vec<(String, Self)>),
}

/// Why an action could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{0}")]
    Missing(String),
    #[error("`{0}` rendered to an empty value")]
    Empty(&'static str),
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
}

/// What rendering needs: the templates, the context, the event and its contact.
pub struct RenderCx<'a> {
    pub templates: &'a Templates,
    pub ctx: &'a Value,
    pub event: &'a Event,
    pub contact: &'a Contact,
    pub now: chrono::DateTime<chrono::Utc>,
    pub rule: &'a str,
    /// Hosts a webhook URL may name when its host comes from a template.
    pub webhook_allow: &'a [crate::rules::Glob],
}

impl RenderCx<'_> {
    pub(crate) fn text(&self, text: &Text) -> Result<String, ActionError> {
        Ok(self.templates.render(text, self.ctx)?)
    }

    pub(crate) fn required(&self, text: &Text, what: &'static str) -> Result<String, ActionError> {
        let out = self.text(text)?;
        let trimmed = out.trim();
        if trimmed.is_empty() {
            return Err(ActionError::Empty(what));
        }
        Ok(trimmed.to_owned())
    }

    fn message_id(&self, action: &str) -> Result<&str, ActionError> {
        self.event
            .message_id
            .as_ref()
            .map(MessageId::as_str)
            .ok_or_else(|| {
                ActionError::Missing(format!(
                    "`{action}` needs a message, and a {} event has none",
                    self.event.kind
                ))
            })
    }

    /// The event's message id as a Whapi.Cloud path segment.
    fn message_segment(&self, action: &str) -> Result<String, ActionError> {
        let id = self.message_id(action)?;
        let field = format!("the event's message id for `{action}`");
        Ok(IdKind::Message.segment(&field, id)?)
    }

    pub(crate) fn chat_id(&self, action: &str) -> Result<String, ActionError> {
        self.event
            .chat
            .as_ref()
            .map(|c| c.id.clone())
            .ok_or_else(|| {
                ActionError::Missing(format!(
                    "`{action}` needs a chat, and this {} event has none",
                    self.event.kind
                ))
            })
    }

    fn contact_phone(&self, action: &str) -> Result<String, ActionError> {
        if !self.contact.phone.is_empty() {
            return Ok(self.contact.phone.clone());
        }
        let whose = if self.event.sender.is_some() {
            "'s sender has no phone number"
        } else {
            " has no sender"
        };
        Err(ActionError::Missing(format!(
            "`{action}` needs a contact, and this {} event{whose}",
            self.event.kind
        )))
    }
}

impl Action {
    /// The action's name as written in rule files.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Message {
                to: Recipient::EventChat,
                ..
            } => "reply",
            Self::Message { .. } => "send",
            Self::Forward { .. } => "forward",
            Self::React { .. } => "react",
            Self::MarkRead => "mark_read",
            Self::Delete => "delete",
            Self::Tag(_) => "tag",
            Self::Untag(_) => "untag",
            Self::Set(_) => "set",
            Self::Webhook(_) => "webhook",
            Self::Lookup(_) => "lookup",
            Self::Group { add: true, .. } => "group_add",
            Self::Group { add: false, .. } => "group_remove",
            Self::Cancel(_) => "cancel",
            Self::Handoff { .. } => "handoff",
            Self::AiReply(_) => "ai_reply",
        }
    }

    /// Renders the action into its effects.
    pub fn render(&self, cx: &RenderCx<'_>) -> Result<Vec<Work>, ActionError> {
        match self {
            Self::Message {
                to,
                content,
                quote,
                typing,
                extras,
            } => {
                message::render(cx, to, content, *quote, *typing, extras.as_deref()).map(|mut r| {
                    r.channel = extras.as_ref().and_then(|e| e.channel.clone());
                    vec![Work::Call(r)]
                })
            }
            Self::Forward { to } => {
                let id = cx.message_segment("forward")?;
                let to = cx.required(to, "forward.to")?;
                Ok(vec![whapi(
                    "POST",
                    format!("/messages/{id}"),
                    Some(serde_json::json!({ "to": to })),
                    &to,
                )])
            }
            Self::React { emoji } => {
                let id = cx.message_segment("react")?;
                let emoji = cx.text(emoji)?;
                let lane = chat_lane(cx);
                Ok(vec![whapi(
                    "PUT",
                    format!("/messages/{id}/reaction"),
                    Some(serde_json::json!({ "emoji": emoji })),
                    &lane,
                )])
            }
            Self::MarkRead => {
                let id = cx.message_segment("mark_read")?;
                Ok(vec![whapi(
                    "PUT",
                    format!("/messages/{id}"),
                    None,
                    &chat_lane(cx),
                )])
            }
            Self::Delete => {
                let id = cx.message_segment("delete")?;
                Ok(vec![whapi(
                    "DELETE",
                    format!("/messages/{id}"),
                    None,
                    &chat_lane(cx),
                )])
            }
            Self::Tag(tags) | Self::Untag(tags) => {
                let phone = cx.contact_phone(self.name())?;
                let add = matches!(self, Self::Tag(_));
                Ok(tags
                    .iter()
                    .map(|tag| {
                        let (phone, tag) = (phone.clone(), tag.clone());
                        Work::Contact(if add {
                            ContactChange::Tag { phone, tag }
                        } else {
                            ContactChange::Untag { phone, tag }
                        })
                    })
                    .collect())
            }
            Self::Set(pairs) => {
                let phone = cx.contact_phone("set")?;
                pairs
                    .iter()
                    .map(|(key, value)| {
                        Ok(Work::Contact(ContactChange::Set {
                            phone: phone.clone(),
                            key: key.clone(),
                            value: cx.text(value)?,
                        }))
                    })
                    .collect()
            }
            Self::Webhook(hook) => webhook::render(cx, hook).map(|mut r| {
                r.channel.clone_from(&hook.channel);
                vec![Work::Call(r)]
            }),
            Self::AiReply(ai) => ai.render(cx),
            Self::Lookup(lookup) => lookup.render(cx),
            Self::Cancel(key) => Ok(vec![Work::Cancel {
                key: cx.required(key, "cancel")?,
            }]),
            Self::Handoff {
                duration,
                notify,
                resume_on,
            } => {
                let chat = cx.chat_id("handoff")?;
                let mut effects = vec![Work::Handoff(HandoffChange::Start {
                    chat,
                    until: cx.now + *duration,
                    resume_on: resume_on.clone(),
                    rule: cx.rule.to_owned(),
                })];
                if let Some(notify) = notify {
                    effects.extend(notify.render(cx)?);
                }
                Ok(effects)
            }
            Self::Group {
                add,
                group,
                participants,
            } => {
                let group = cx.required(group, "group")?;
                let field = format!("`{}.group`", self.name());
                let segment = IdKind::Group.segment(&field, &group)?;
                let people = participants
                    .iter()
                    .map(|p| {
                        cx.required(p, "participants")
                            .map(|p| crate::events::bare_phone(&p))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let method = if *add { "POST" } else { "DELETE" };
                let body = serde_json::json!({ "participants": people });
                Ok(vec![whapi(
                    method,
                    format!("/groups/{segment}/participants"),
                    Some(body),
                    &group,
                )])
            }
        }
    }
}

fn chat_lane(cx: &RenderCx<'_>) -> String {
    cx.event
        .chat
        .as_ref()
        .map_or_else(|| cx.event.channel.clone(), |c| c.id.clone())
}

fn whapi(method: &str, path: String, body: Option<serde_json::Value>, lane: &str) -> Work {
    Work::Call(OutboundRequest::whapi(
        method,
        path,
        body,
        &ChatId::new(lane),
    ))
}
