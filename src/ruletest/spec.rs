//! `*.test.yaml` files as written.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::Located;

/// A rule test file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Test cases, run one after the other, each on a fresh database.
    pub tests: Vec<Located<TestCase>>,
}

/// One test case: events in, time passing, actions expected.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// What the case checks.
    pub name: String,
    /// The virtual clock's start (RFC 3339); default `2026-01-05T09:00:00Z`, a Monday.
    #[serde(default)]
    pub at: Option<Located<String>>,
    /// Rule files or folders, relative to this file; default every rule file beside it.
    #[serde(default)]
    pub rules: Vec<String>,
    /// A channels file (several WhatsApp numbers), relative to this file; default one
    /// channel, `default`.
    #[serde(default)]
    pub channels: Option<String>,
    /// Contacts in the database before the first step.
    #[serde(default)]
    pub contacts: Vec<ContactSpec>,
    /// What the stand-in language model answers to `ai_reply`, one entry per call in order:
    /// a reply text, `{handoff: REASON}` (the model calls the handoff tool) or
    /// `{fail: ERROR}` (the call fails, as on a timeout).
    #[serde(default)]
    pub model: Vec<ModelAnswerSpec>,
    /// Who is in each group, for campaigns whose audience is `group_members` (no call is made
    /// in a test): group id → members.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<MemberSpec>>,
    /// The steps, in order.
    pub steps: Vec<Located<StepSpec>>,
}

/// A `riposte simulate --steps` file: a rule test case's set-up and steps, without names or
/// expectations.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepsFile {
    /// The virtual clock's start (RFC 3339); `--at` wins; default `2026-01-05T09:00:00Z`.
    #[serde(default)]
    pub at: Option<Located<String>>,
    /// Contacts in the database before the first step.
    #[serde(default)]
    pub contacts: Vec<ContactSpec>,
    /// What the stand-in language model answers, one entry per call.
    #[serde(default)]
    pub model: Vec<ModelAnswerSpec>,
    /// Who is in each group: group id → members.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<MemberSpec>>,
    /// The steps: `event`, `advance`, `lookups`, `failing_lookups`.
    pub steps: Vec<Located<StepSpec>>,
}

/// One scripted model answer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ModelAnswerSpec {
    /// The model replies with this text.
    Reply(String),
    /// The model calls the `handoff` tool with this reason.
    Handoff {
        /// The reason the model gives.
        handoff: String,
    },
    /// The model call fails with this error.
    Fail {
        /// What went wrong, e.g. `timeout`.
        fail: String,
    },
}

/// A member of a group.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberSpec {
    pub phone: String,
    /// An admin of the group.
    #[serde(default)]
    pub admin: bool,
}

/// A contact to start with.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactSpec {
    pub phone: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
}

/// One step: exactly one of `event`, `advance` and `expect`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// An event: `{message: {...}}`, `{button: {...}}`, `{custom: NAME, data: {...}}`, `{file: FIXTURE}`, ...
    #[serde(default)]
    pub event: Option<Located<EventSpec>>,
    /// Move the virtual clock forward (`1h`, `2d`); due follow-ups and campaign runs happen.
    #[serde(default)]
    pub advance: Option<Located<String>>,
    /// The actions since the last `expect`, in order; `[]` for none. Values between slashes
    /// (`/your cart/`) are regexes.
    #[serde(default)]
    pub expect: Option<Located<Vec<serde_json::Value>>>,
    /// With `expect`: other actions may come between and after the expected ones.
    #[serde(default)]
    pub ignore_extra: bool,
    /// What `lookup:` actions answer from this step on, by their `as:` name (any JSON);
    /// alone or beside an `event`. No call is made in a test.
    #[serde(default)]
    pub lookups: Option<BTreeMap<String, serde_json::Value>>,
    /// Lookups that fail from this step on (as after their last retry), with the error, so
    /// their `on_error` runs.
    #[serde(default)]
    pub failing_lookups: Option<BTreeMap<String, String>>,
}

/// An event to feed in.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// A webhook body in a JSON file, relative to the test file.
    #[serde(default)]
    pub file: Option<String>,
    /// A webhook body written in place.
    #[serde(default)]
    pub webhook: Option<serde_json::Value>,
    /// A text (or other) message.
    #[serde(default)]
    pub message: Option<MessageEvent>,
    /// A tap on a quick-reply button.
    #[serde(default)]
    pub button: Option<ReplyEvent>,
    /// A pick from a list.
    #[serde(default)]
    pub list: Option<ReplyEvent>,
    /// A reaction.
    #[serde(default)]
    pub reaction: Option<ReactionEvent>,
    /// A delivery status; without `id`, of the last message Riposte sent to `to`.
    #[serde(default)]
    pub status: Option<StatusEvent>,
    /// A vote in the last poll Riposte sent to `from`.
    #[serde(default)]
    pub vote: Option<VoteEvent>,
    /// Someone joins a group.
    #[serde(default)]
    pub group_join: Option<GroupEvent>,
    /// Someone leaves a group.
    #[serde(default)]
    pub group_leave: Option<GroupEvent>,
    /// A custom event's name (`cart_abandoned`), with `data`.
    #[serde(default)]
    pub custom: Option<String>,
    /// The custom event's body.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    /// The channel (a name from the case's channels file) a webhook comes in on; default
    /// the default channel.
    #[serde(default)]
    pub channel: Option<String>,
}

/// `message:` shorthand.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageEvent {
    /// Sender number.
    pub from: String,
    #[serde(default)]
    pub text: Option<String>,
    /// Sender push name.
    #[serde(default)]
    pub name: Option<String>,
    /// Chat id; default the sender's private chat.
    #[serde(default)]
    pub chat: Option<String>,
    /// Message type; default `text` (`image`, `document`, `video` put `text` in the caption).
    #[serde(default, rename = "type")]
    pub message_type: Option<String>,
    /// Our own message (sent from the business phone).
    #[serde(default)]
    pub from_me: bool,
    /// Message id; default generated.
    #[serde(default)]
    pub id: Option<String>,
}

/// `button:` / `list:` shorthand.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyEvent {
    pub from: String,
    /// The id the button or row was sent with.
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `reaction:` shorthand.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactionEvent {
    pub from: String,
    pub emoji: String,
    /// The message reacted to.
    #[serde(default)]
    pub target: Option<String>,
}

/// `status:` shorthand.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusEvent {
    /// `sent`, `delivered`, `read`, `played`, `failed`, `deleted`.
    pub status: String,
    /// Recipient number or chat id.
    pub to: String,
    /// The message id.
    #[serde(default)]
    pub id: Option<String>,
}

/// `vote:` shorthand.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteEvent {
    /// The voter's number.
    pub from: String,
    /// The options chosen, by their text.
    pub options: Vec<String>,
}

/// `group_join:` / `group_leave:` shorthand.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupEvent {
    /// Group id (`…@g.us`).
    pub group: String,
    /// The person's number.
    pub participant: String,
}
