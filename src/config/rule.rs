//! `rules:` entries and their `when:` conditions, as written.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ActionSpec, Located, OneOrMany};

/// A Riposte rule file.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// Rules, evaluated in file order (files in path order).
    #[serde(default)]
    pub rules: Vec<Located<RuleSpec>>,
    /// Messages sent on a schedule to an audience.
    #[serde(default)]
    pub campaigns: Vec<Located<super::CampaignSpec>>,
    /// Opening hours, for the `hours` and `outside_hours` conditions.
    #[serde(default)]
    pub calendars: Vec<Located<super::CalendarSpec>>,
    /// Custom events other systems post to `/events/NAME`, with the fields of their `data`.
    #[serde(default)]
    pub events: std::collections::BTreeMap<String, Located<super::EventSpec>>,
}

/// One rule: when an event matches `when`, run the actions in `then`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique name across the whole rule set; shown in logs, traces and `simulate`.
    // Optional to the YAML reader so that a missing name is reported at the rule itself.
    #[schemars(required)]
    pub name: Option<Located<String>>,
    /// What the rule is for, in a sentence.
    #[serde(default)]
    pub description: Option<String>,
    /// Conditions; every condition given must hold. An empty `when` matches every `message`.
    #[serde(default)]
    pub when: Located<ConditionSpec>,
    /// Actions, run in order.
    #[serde(default)]
    pub then: Vec<Located<ActionSpec>>,
    /// When true, later rules do not see an event this rule matched.
    #[serde(default)]
    pub stop: bool,
    /// Set to false to switch the rule off without deleting it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `live` (default) sends; `shadow` evaluates and records what it would have done.
    #[serde(default)]
    pub mode: Mode,
    /// Fire at most once per chat in this window (`12h`), or once per calendar `day` or `week`
    /// in the rule's time zone.
    #[serde(default)]
    pub once_per: Option<Located<String>>,
    /// Keep firing while a human has the chat (for opt-out and similar).
    #[serde(default)]
    pub during_handoff: bool,
    /// Time zone for `at:` times without an offset (an IANA name); default the server's.
    #[serde(default)]
    pub timezone: Option<Located<String>>,
}

fn yes() -> bool {
    true
}

impl Default for Located<ConditionSpec> {
    fn default() -> Self {
        Self::unplaced(ConditionSpec::default())
    }
}

/// Whether a rule's actions are carried out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Actions are carried out.
    #[default]
    Live,
    /// Actions are rendered and recorded, never sent.
    Shadow,
}

/// Conditions on an event. Every condition given must hold; `any`, `all` and `not` combine
/// blocks of conditions.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    /// Event kind(s): `message`, `button_reply`, `status`, `group_join`, `custom:NAME`, ...
    /// Default `message`.
    #[serde(default)]
    pub event: Option<Located<OneOrMany<String>>>,
    /// Message content type(s): `text`, `image`, `document`, `video`, `audio`, `voice`, ...
    #[serde(default, rename = "type")]
    pub message_type: Option<OneOrMany<String>>,
    /// Regular expression searched in the text, caption, link preview or tapped button title.
    /// Named groups such as `(?P<order>\d+)` become `match.order`.
    #[serde(default)]
    pub text: Option<Located<String>>,
    /// Words or phrases, matched case-insensitively as whole words anywhere in the text.
    #[serde(default)]
    pub keywords: Option<Located<Vec<String>>>,
    /// Sender numbers or globs (`49*`).
    #[serde(default)]
    pub from: Option<Located<OneOrMany<String>>>,
    /// Sender numbers or globs that must not match.
    #[serde(default)]
    pub not_from: Option<Located<OneOrMany<String>>>,
    /// Chat kind(s): `private`, `group`, `channel`, `status` or `any`.
    #[serde(default)]
    pub chat: Option<Located<OneOrMany<String>>>,
    /// Channel name(s) from the channels file: the WhatsApp number the event came in on.
    #[serde(default)]
    pub channel: Option<Located<OneOrMany<String>>>,
    /// Chat id(s) or globs (`120363041234567890@g.us`, `*@g.us`).
    #[serde(default)]
    pub chat_id: Option<Located<OneOrMany<String>>>,
    /// Match our own outgoing messages (true) instead of incoming ones (false, the default).
    #[serde(default)]
    pub from_me: Option<bool>,
    /// Tapped button or list row id(s) as sent, without Whapi's `ButtonsV3:` / `ListV3:`
    /// prefix: exact, a glob over the whole id (`cancel-*`, `?` for one character) or a
    /// `/regex/`.
    #[serde(default)]
    pub reply_id: Option<Located<OneOrMany<String>>>,
    /// For `poll_vote`: the voter chose (one of) these option(s), by their text.
    #[serde(default)]
    pub option: Option<Located<OneOrMany<String>>>,
    /// Reaction emoji(s).
    #[serde(default)]
    pub emoji: Option<OneOrMany<String>>,
    /// Status value(s): delivery (`sent`, `delivered`, `read`, `played`, `failed`, `deleted`),
    /// call (`ringing`, `missed`, ...), presence or channel status.
    #[serde(default)]
    pub status: Option<OneOrMany<String>>,
    /// Tags on the sender's contact.
    #[serde(default)]
    pub tags: Option<TagsSpec>,
    /// Custom event name(s) (the `NAME` of `/events/NAME`).
    #[serde(default)]
    pub name: Option<OneOrMany<String>>,
    /// Within opening hours: `{calendar: NAME}` or `{days: Mon-Fri, between: "09:00-18:00"}`.
    #[serde(default)]
    pub hours: Option<Located<super::HoursSpec>>,
    /// Outside opening hours (same shape as `hours`).
    #[serde(default)]
    pub outside_hours: Option<Located<super::HoursSpec>>,
    /// A template expression that must be true, e.g. `data.total > 100`.
    #[serde(default, rename = "if")]
    pub expr: Option<Located<String>>,
    /// At least one of these blocks must hold.
    #[serde(default)]
    pub any: Option<Vec<Located<Self>>>,
    /// Every one of these blocks must hold.
    #[serde(default)]
    pub all: Option<Vec<Located<Self>>>,
    /// This block must not hold.
    #[serde(default)]
    pub not: Option<Box<Located<Self>>>,
}

/// Conditions on the contact's tags.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagsSpec {
    /// The contact has every one of these tags.
    #[serde(default)]
    pub all: Vec<String>,
    /// The contact has at least one of these tags.
    #[serde(default)]
    pub any: Vec<String>,
    /// The contact has none of these tags.
    #[serde(default)]
    pub none: Vec<String>,
}
