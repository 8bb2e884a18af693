//! `campaigns:` and `calendars:` as written.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Located, MessageContent, OneOrMany, TagsSpec};

/// A message sent on a schedule to an audience.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    /// Unique campaign name.
    pub name: Located<String>,
    /// What the campaign is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Cron schedule: 5 fields (`0 9 * * MON`) or 6 with seconds first.
    pub schedule: Located<String>,
    /// Time zone the schedule is read in (an IANA name such as `Europe/Berlin`); default the
    /// server's `--timezone`.
    #[serde(default)]
    pub timezone: Option<Located<String>>,
    /// Who receives it.
    #[serde(default)]
    pub audience: Option<Located<AudienceSpec>>,
    /// The message: the same content keys as `reply`; templates see `contact`.
    #[serde(default)]
    pub send: Option<Located<MessageContent>>,
    /// Instead of `send`: actions done for each recipient (`send` with `to`, `group_remove`,
    /// `tag`, `untag`, `set`, `webhook`, `cancel`); templates see `contact`.
    #[serde(default)]
    pub then: Option<Located<Vec<Located<super::ActionSpec>>>>,
    /// Most messages per minute (`30/min`, `1/s`, `500/h`); default `20/min`.
    #[serde(default)]
    pub rate: Option<Located<String>>,
    /// After downtime: `skip` missed runs (default) or run the last missed one `once`.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Contacts with any of these tags are left out (`opted-out` always is).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Set to false to pause the campaign.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The channel (WhatsApp number) to send through, by its name in the channels file;
    /// required when more than one channel is configured.
    #[serde(default)]
    pub channel: Option<Located<String>>,
}

fn yes() -> bool {
    true
}

/// What to do about runs missed while Riposte was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Missed runs are not made up.
    #[default]
    Skip,
    /// The most recent missed run is made once, at start.
    Once,
}

/// Who a campaign goes to; the parts add up.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceSpec {
    /// Every known contact (those with tags or attributes); opted-out ones are left out as
    /// always.
    #[serde(default)]
    pub all: Option<Located<bool>>,
    /// Contacts by tag.
    #[serde(default)]
    pub tags: Option<TagsSpec>,
    /// Numbers, listed.
    #[serde(default)]
    pub numbers: Option<OneOrMany<String>>,
    /// A CSV file (relative to the rule file) with a `phone` column; other columns become
    /// `contact.attrs`.
    #[serde(default)]
    pub file: Option<Located<String>>,
    /// A group or channel id: the message is posted there once.
    #[serde(default)]
    pub chat_id: Option<OneOrMany<String>>,
    /// The members of a WhatsApp group, as it is when the run is planned; with
    /// `inactive_for`, only those who have not posted in it for that long.
    #[serde(default)]
    pub group_members: Option<Located<GroupMembersSpec>>,
    /// Only recipients for whom this expression is true, e.g. a birthday today:
    /// `contact.attrs.birthday[5:] == now[5:10]`.
    #[serde(default, rename = "if")]
    pub expr: Option<Located<String>>,
}

/// A group's members as an audience.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupMembersSpec {
    /// The group id (`…@g.us`).
    pub group: Located<String>,
    /// Only members who have not posted in the group for this long (`30d`), as Riposte saw
    /// it; a member who joined within it counts as active.
    #[serde(default)]
    pub inactive_for: Option<Located<String>>,
    /// Leave the group's admins out (default true).
    #[serde(default)]
    pub except_admins: Option<bool>,
}

/// Named opening hours.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// Unique calendar name, used as `hours: {calendar: NAME}`.
    pub name: Located<String>,
    /// Time zone of the hours (an IANA name); default the server's `--timezone`.
    #[serde(default)]
    pub timezone: Option<Located<String>>,
    /// Weekly opening hours.
    pub open: Vec<Located<OpenSpec>>,
    /// Dates (`2026-12-24`) on which it is closed all day.
    #[serde(default)]
    pub closed: Vec<Located<String>>,
}

/// Days and a time range.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenSpec {
    /// Days: `Mon-Fri`, `Sat`, `Mon,Wed,Fri`, `daily`.
    pub days: String,
    /// Time range, `09:00-18:00`.
    pub between: String,
}

/// A calendar by name, or hours written in place.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoursSpec {
    /// A calendar from `calendars:`.
    #[serde(default)]
    pub calendar: Option<String>,
    /// Days, as in a calendar (`Mon-Fri`).
    #[serde(default)]
    pub days: Option<String>,
    /// Time range (`09:00-18:00`).
    #[serde(default)]
    pub between: Option<String>,
    /// Time zone of inline hours; default the server's.
    #[serde(default)]
    pub timezone: Option<String>,
}
