//! A job: work for later or for delivery (a call, a contact change, a cancel, a handoff, a
//! model call), why it exists, and how it ended. Rendered actions are [`Work`] too, so one
//! type goes from a rule to the store to the worker that does it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ContactChange, HandoffChange, JobId, OutboundRequest, RuleName};

/// The version of the stored form of [`Work`] this release writes. Version 1 is the JSON of
/// [`Work`] as its serde names give it, with no marker; a later version will be an object
/// `{"v": N, ...}`, which this release refuses with a clear error rather than misreads.
pub const WORK_FORMAT: u32 = 1;

/// What an action does, now or as a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Work {
    /// An HTTP call to Whapi.Cloud or another system.
    #[serde(rename = "call")]
    Call(OutboundRequest),
    /// A change to a contact (`tag`, `untag`, `set`).
    #[serde(rename = "contact")]
    Contact(ContactChange),
    /// Cancels the pending follow-ups with a key.
    #[serde(rename = "cancel")]
    Cancel {
        #[serde(rename = "key")]
        key: String,
    },
    /// A human takes over a chat, or gives it back.
    #[serde(rename = "handoff")]
    Handoff(HandoffChange),
    /// An `ai_reply`: ask the model, then answer, fall back or hand off.
    #[serde(rename = "ai")]
    Ai(Box<AiCall>),
    /// A `lookup:`: ask another system, then go on with the rule's later actions.
    #[serde(rename = "lookup")]
    Lookup(Box<super::LookupCall>),
}

/// Why stored work cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StoredWorkError {
    #[error(
        "job work of format version {0}, written by a newer Riposte (this one reads {WORK_FORMAT})"
    )]
    Newer(u64),
    #[error("job work is unreadable: {0}")]
    Unreadable(#[from] serde_json::Error),
}

impl Work {
    /// Whether the work is done where the event is processed (in the same transaction),
    /// rather than by a worker: a contact change, a cancel, a handoff.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            Self::Contact(_) | Self::Cancel { .. } | Self::Handoff(_)
        )
    }

    /// The work as done for an event that came in on `channel`: calls go out through it
    /// (unless they name their own), and what is kept per chat (handoffs, follow-up keys) is
    /// kept per channel and chat.
    pub fn on_channel(&mut self, channel: &str) {
        match self {
            Self::Call(request) => request.through(channel),
            Self::Ai(call) => {
                if call.channel.is_none() && channel != super::DEFAULT_CHANNEL {
                    call.channel = Some(channel.to_owned());
                }
                if let Some(notify) = call.handoff.as_mut().and_then(|h| h.notify.as_mut()) {
                    notify.through(channel);
                }
            }
            Self::Handoff(change) => change.scope(channel),
            Self::Cancel { key } => *key = super::scoped(channel, key),
            Self::Lookup(call) => call.request.through(channel),
            Self::Contact(_) => {}
        }
    }

    /// The channel the work goes out through, if it names one.
    pub fn channel(&self) -> Option<&str> {
        match self {
            Self::Call(request) => request.channel.as_deref(),
            Self::Ai(call) => call.channel.as_deref(),
            Self::Lookup(call) => call.request.channel.as_deref(),
            _ => None,
        }
    }

    /// The stored form ([`WORK_FORMAT`]).
    pub fn to_stored(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Reads the stored form of any version this release knows.
    pub fn from_stored(text: &str) -> Result<Self, StoredWorkError> {
        match serde_json::from_str(text) {
            Ok(work) => Ok(work),
            Err(err) => {
                #[derive(Deserialize)]
                struct Versioned {
                    v: u64,
                }
                match serde_json::from_str::<Versioned>(text) {
                    Ok(Versioned { v }) if u64::from(WORK_FORMAT) < v => {
                        Err(StoredWorkError::Newer(v))
                    }
                    _ => Err(err.into()),
                }
            }
        }
    }
}

/// A rendered `ai_reply`, stored in its job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiCall {
    /// The event's chat: the answer goes there, its conversation is sent along.
    #[serde(rename = "chat")]
    pub chat: String,
    /// The rendered instructions.
    #[serde(rename = "system")]
    pub system: String,
    /// The knowledge to add, by id: looked up in the rules when the job runs.
    #[serde(rename = "knowledge", default, skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<String>,
    #[serde(rename = "model", default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(rename = "history")]
    pub history: u32,
    #[serde(rename = "history_chars")]
    pub history_chars: u32,
    #[serde(rename = "forget_after_s")]
    pub forget_after_s: i64,
    #[serde(
        rename = "max_tokens",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_tokens: Option<u32>,
    #[serde(
        rename = "temperature",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub temperature: Option<f64>,
    #[serde(rename = "timeout_ms")]
    pub timeout_ms: u64,
    #[serde(rename = "attempts")]
    pub attempts: u32,
    #[serde(rename = "fallback", default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    #[serde(rename = "max_reply")]
    pub max_reply: u32,
    #[serde(rename = "per_chat", default, skip_serializing_if = "Option::is_none")]
    pub per_chat: Option<PerChatLimit>,
    #[serde(rename = "shadow", default)]
    pub shadow: bool,
    #[serde(rename = "handoff", default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<AiHandoff>,
    /// The channel the event came in on, and the answer goes out through; `None` for the
    /// default channel.
    #[serde(rename = "channel", default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl AiCall {
    fn channel(&self) -> &str {
        super::channel::or_default(self.channel.as_deref())
    }

    /// What the chat's state (handoff, fallbacks in a row, answer limits) is kept under.
    pub fn state_key(&self) -> String {
        super::scoped(self.channel(), &self.chat)
    }

    /// What the chat's conversation is remembered under.
    pub fn memory_key(&self) -> String {
        super::scoped(
            self.channel(),
            &super::ChatId::new(self.chat.as_str()).memory_key(),
        )
    }

    /// The chat's ordering lane.
    pub fn lane(&self) -> String {
        super::scoped(
            self.channel(),
            &super::ChatId::new(self.chat.as_str()).lane(),
        )
    }

    /// A text message to the chat, through the event's channel.
    pub fn message(&self, text: &str) -> OutboundRequest {
        let mut request = OutboundRequest::text_message(&self.chat, text);
        request.through(self.channel());
        request
    }
}

/// At most `count` answers per chat in `window_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PerChatLimit {
    #[serde(rename = "count")]
    pub count: u32,
    #[serde(rename = "window_s")]
    pub window_s: i64,
}

/// A rendered `ai_reply.handoff`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiHandoff {
    #[serde(rename = "for_s")]
    pub for_s: i64,
    #[serde(rename = "resume_on", default, skip_serializing_if = "Option::is_none")]
    pub resume_on: Option<String>,
    /// The message to the agents, rendered when the event came; the reason is added to it.
    #[serde(rename = "notify", default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<OutboundRequest>,
    #[serde(
        rename = "when_reply",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub when_reply: Option<String>,
    #[serde(
        rename = "after_fallbacks",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub after_fallbacks: Option<u32>,
}

/// Why a job exists; follow-ups and campaign sends are checked against opt-out when due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    /// An action of a rule, run at once.
    #[serde(rename = "action")]
    Action,
    /// An action with `after` or `at`.
    #[serde(rename = "follow_up")]
    FollowUp,
    /// One recipient of a campaign run.
    #[serde(rename = "campaign")]
    Campaign,
    /// What another job's result started: an `ai_reply`'s answer or handoff once the model
    /// answered, the pin of a message once it was sent.
    #[serde(rename = "answer")]
    Answer,
}

impl JobKind {
    /// The kind as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Action => "action",
            Self::FollowUp => "follow_up",
            Self::Campaign => "campaign",
            Self::Answer => "answer",
        }
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "action" => Self::Action,
            "follow_up" => Self::FollowUp,
            "campaign" => Self::Campaign,
            "answer" => Self::Answer,
            _ => return None,
        })
    }
}

/// A job to be created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    pub kind: JobKind,
    /// The rule that made it (a campaign's name for a campaign send).
    pub rule: RuleName,
    pub action: String,
    pub event: String,
    pub work: Work,
    pub run_at: DateTime<Utc>,
    /// The follow-up's key: a pending job with the same key is replaced.
    pub key: Option<String>,
    /// The phone of the contact the job is about.
    pub contact: Option<String>,
    /// Conditions that skip the job when they hold at its time (JSON of `actions::Unless`).
    pub unless: Option<serde_json::Value>,
    /// The event's template variables, kept for `unless.if`.
    pub vars: Option<serde_json::Value>,
    pub campaign_run: Option<i64>,
    /// Created dead with this reason (a follow-up whose `at` is not a time).
    pub dead: Option<String>,
}

impl NewJob {
    /// An immediate job for a rule's action.
    pub fn action(rule: &str, action: &str, event: &str, work: Work, now: DateTime<Utc>) -> Self {
        Self {
            kind: JobKind::Action,
            rule: RuleName::new(rule),
            action: action.to_owned(),
            event: event.to_owned(),
            work,
            run_at: now,
            key: None,
            contact: None,
            unless: None,
            vars: None,
            campaign_run: None,
            dead: None,
        }
    }

    /// The ordering lane of the job: one chat's calls go out in order, and a model's answer
    /// goes out before anything later in the same chat.
    pub fn lane(&self) -> String {
        match &self.work {
            Work::Call(request) => request.lane.clone(),
            Work::Ai(call) => call.lane(),
            Work::Lookup(call) => call.request.lane.clone(),
            _ => format!("local:{}", self.contact.as_deref().unwrap_or("")),
        }
    }
}

/// The state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    #[serde(rename = "pending")]
    Pending,
    #[serde(rename = "sending")]
    Sending,
    #[serde(rename = "done")]
    Done,
    #[serde(rename = "dead")]
    Dead,
    #[serde(rename = "cancelled")]
    Cancelled,
    /// Not run: the contact opted out, or `unless` held.
    #[serde(rename = "skipped")]
    Skipped,
}

impl JobStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
        }
    }

    /// The status of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "sending" => Self::Sending,
            "done" => Self::Done,
            "dead" => Self::Dead,
            "cancelled" => Self::Cancelled,
            "skipped" => Self::Skipped,
            _ => return None,
        })
    }
}

/// A stored job.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: JobId,
    pub kind: JobKind,
    pub rule: RuleName,
    pub action: String,
    pub event: String,
    pub work: Work,
    pub status: JobStatus,
    /// Runs so far (including the one in flight for a claimed job).
    pub attempts: u32,
    pub run_at: DateTime<Utc>,
    pub key: Option<String>,
    pub contact: Option<String>,
    pub unless: Option<serde_json::Value>,
    pub vars: Option<serde_json::Value>,
    pub campaign_run: Option<i64>,
    pub last_error: Option<String>,
    /// What the call answered (a model job: its answer), once done.
    pub response: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// How a claimed job ended this time.
#[derive(Debug, Clone)]
pub enum JobResult {
    Done {
        response: String,
    },
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    Dead {
        error: String,
    },
    Skipped {
        reason: String,
    },
    /// Not run yet (a rate is used up): run at `at`, and this claim does not count as an
    /// attempt.
    Later {
        at: DateTime<Utc>,
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of jobs as the December 2026 release wrote them (`tests/fixtures/db`), one of each
    /// kind of work: read, then written again, each is the same text.
    #[test]
    fn the_stored_form_of_version_1_reads_and_writes_unchanged() {
        let rows = [
            r#"{"call":{"target":"whapi","method":"POST","path":"/messages/text","body":{"json":{"to":"4915112345678@s.whatsapp.net","body":"Hi Anna"}},"lane":"chat:4915112345678"}}"#,
            r#"{"call":{"target":"whapi","method":"PUT","path":"/messages/Fixture1Msg.aB3cDe-gBgKa1Zr8k","lane":"chat:4915112345678"}}"#,
            r#"{"call":{"target":"external","method":"POST","path":"http://127.0.0.1:9/hook","headers":[["x-a","b"]],"body":{"text":"hi"},"lane":"webhook:127.0.0.1"}}"#,
            r#"{"contact":{"tag":{"phone":"4915112345678","tag":"later"}}}"#,
            r#"{"contact":{"untag":{"phone":"4915112345678","tag":"later"}}}"#,
            r#"{"contact":{"set":{"phone":"4915112345678","key":"visited","value":"yes"}}}"#,
            r#"{"handoff":{"start":{"chat":"4915112345678@s.whatsapp.net","until":"2026-12-06T09:49:19.338106469Z","resume_on":null,"rule":"everything"}}}"#,
            r#"{"handoff":{"end":{"chat":"4915112345678@s.whatsapp.net"}}}"#,
            r#"{"cancel":{"key":"nudge-4915112345678"}}"#,
            r#"{"ai":{"chat":"4915112345678@s.whatsapp.net","system":"You help.","history":20,"history_chars":8000,"forget_after_s":86400,"timeout_ms":20000,"attempts":2,"fallback":"Sorry, not now.","max_reply":1000,"shadow":false}}"#,
        ];
        for row in rows {
            let work = Work::from_stored(row).unwrap();
            assert_eq!(work.to_stored().unwrap(), row);
        }
    }

    #[test]
    fn a_model_call_keeps_its_chat_per_channel_and_answers_through_it() {
        let mut work = Work::from_stored(
            r#"{"ai":{"chat":"4915112345678@s.whatsapp.net","system":"You help.","history":20,"history_chars":8000,"forget_after_s":86400,"timeout_ms":20000,"attempts":2,"max_reply":1000,"shadow":false}}"#,
        )
        .unwrap();
        let Work::Ai(default) = work.clone() else {
            unreachable!()
        };
        assert_eq!(default.memory_key(), "4915112345678");
        assert_eq!(default.state_key(), "4915112345678@s.whatsapp.net");
        assert_eq!(default.lane(), "chat:4915112345678");
        work.on_channel("support");
        let Work::Ai(support) = &work else {
            unreachable!()
        };
        assert_eq!(support.memory_key(), "support/4915112345678");
        assert_eq!(support.state_key(), "support/4915112345678@s.whatsapp.net");
        assert_eq!(support.lane(), "support/chat:4915112345678");
        let answer = support.message("Hi");
        assert_eq!(answer.channel.as_deref(), Some("support"));
        assert_eq!(answer.lane, "support/chat:4915112345678");
        assert!(
            work.to_stored()
                .unwrap()
                .ends_with(r#","channel":"support"}}"#)
        );
    }

    #[test]
    fn work_of_a_newer_format_is_refused_by_name() {
        let err = Work::from_stored(r#"{"v":2,"work":{}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "job work of format version 2, written by a newer Riposte (this one reads 1)"
        );
        assert!(matches!(
            Work::from_stored(r#"{"send":{}}"#),
            Err(StoredWorkError::Unreadable(_))
        ));
    }
}
