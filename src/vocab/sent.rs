//! Messages Riposte sent, by the id Whapi.Cloud gave them, and what became of each: the
//! statuses Whapi.Cloud reports, and whether the recipient wrote back.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A sent message as recorded when its call succeeded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    /// Whapi.Cloud's id of the message.
    pub id: String,
    /// The channel it went out through (`None`: the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The chat it went to.
    pub chat: String,
    /// The rule that sent it (a campaign's name for a campaign send).
    pub rule: String,
    /// The campaign that sent it, and which of its runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(skip)]
    pub campaign_run: Option<i64>,
    /// Its text (or caption, or a poll's question), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// What it was: `text`, `image`, `poll`, ... (the send endpoint).
    pub kind: String,
    pub sent_at: DateTime<Utc>,
    /// `sent`, `delivered`, `read`, `played` or `failed`: the furthest it got.
    pub status: String,
    /// For a poll: its options, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A status Whapi.Cloud reported for a message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageStatus {
    pub id: String,
    /// `delivered`, `read`, `played`, `failed`, ...
    pub status: String,
    pub at: DateTime<Utc>,
}

/// How far a status says a message got: a later report of an earlier stage (a `delivered`
/// arriving after `read`) changes nothing. `failed` only counts before delivery; other
/// statuses are not stages.
pub fn stage(status: &str) -> Option<i64> {
    match status {
        "sent" => Some(1),
        "failed" => Some(2),
        "delivered" => Some(3),
        "read" => Some(4),
        "played" => Some(5),
        _ => None,
    }
}
