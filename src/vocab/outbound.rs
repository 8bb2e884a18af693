//! A fully rendered HTTP call, as a job stores it and the client makes it.

use serde::{Deserialize, Serialize};

use super::ChatId;

/// Who receives an outbound call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// The Whapi.Cloud gate; `path` is relative to it and the channel token is added.
    #[serde(rename = "whapi")]
    Whapi,
    /// Another system; `path` is the full URL.
    #[serde(rename = "external")]
    External,
}

/// A fully rendered HTTP call, stored in a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundRequest {
    #[serde(rename = "target")]
    pub target: Target,
    #[serde(rename = "method")]
    pub method: String,
    #[serde(rename = "path")]
    pub path: String,
    #[serde(rename = "headers", default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    #[serde(rename = "body", default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Payload>,
    /// Calls in one lane (one chat) are made in order.
    #[serde(rename = "lane")]
    pub lane: String,
    /// The channel (WhatsApp number) a Whapi.Cloud call goes out through; `None` for the
    /// default channel.
    #[serde(rename = "channel", default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// For a message: pin it, once sent, for this long.
    #[serde(rename = "pin", default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<PinFor>,
}

/// How long a message stays pinned, as Whapi.Cloud takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PinFor {
    #[serde(rename = "day")]
    Day,
    #[serde(rename = "week")]
    Week,
    #[serde(rename = "month")]
    Month,
}

impl PinFor {
    /// Every length, as written in rule files.
    pub const ALL: [(&'static str, Self); 3] = [
        ("day", Self::Day),
        ("week", Self::Week),
        ("month", Self::Month),
    ];

    /// The length as written in rule files and sent to Whapi.Cloud.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    #[serde(rename = "json")]
    Json(serde_json::Value),
    #[serde(rename = "text")]
    Text(String),
}

impl OutboundRequest {
    /// A call to Whapi.Cloud, in the lane of `lane`'s chat.
    pub fn whapi(
        method: &str,
        path: String,
        body: Option<serde_json::Value>,
        lane: &ChatId,
    ) -> Self {
        Self {
            target: Target::Whapi,
            method: method.to_owned(),
            path,
            headers: Vec::new(),
            body: body.map(Payload::Json),
            lane: lane.lane(),
            channel: None,
            pin: None,
        }
    }

    /// The call sent through `channel` (when it names none yet), in that channel's lane.
    pub fn through(&mut self, channel: &str) {
        let channel = self.channel.as_deref().unwrap_or(channel);
        // The default channel's calls keep today's lanes and stored form (no channel).
        if channel == super::DEFAULT_CHANNEL {
            self.channel = None;
            return;
        }
        self.lane = super::scoped(channel, &self.lane);
        if self.channel.is_none() {
            self.channel = Some(channel.to_owned());
        }
    }

    /// A text message to a chat, as `reply` would send it.
    pub fn text_message(to: &str, text: &str) -> Self {
        Self::whapi(
            "POST",
            "/messages/text".to_owned(),
            Some(serde_json::json!({ "to": to, "body": text })),
            &ChatId::new(to),
        )
    }

    /// The person a Whapi.Cloud send goes to, if it goes to one (its `to` is a phone number).
    pub fn recipient_phone(&self) -> Option<String> {
        let Some(Payload::Json(body)) = &self.body else {
            return None;
        };
        let to = body.get("to")?.as_str()?;
        ChatId::new(to).phone().map(str::to_owned)
    }
}
