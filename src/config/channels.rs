//! The channels file as written: the WhatsApp numbers (Whapi.Cloud channels) one engine serves,
//! and the environment variables that hold their tokens. Kept apart from the rule files,
//! which anyone who edits rules may read.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::Located;

/// A channels file.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelsFile {
    /// Channels by name (letters, digits, `_` and `-`); the first one listed is the default
    /// (custom events, and jobs written before channels were configured), unless one is
    /// named `default`.
    pub channels: BTreeMap<String, Located<ChannelSpec>>,
}

/// One WhatsApp number.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// Whapi.Cloud's channel id (`channel_id` in its webhooks), e.g. `MANTIS-Z9XW1`.
    #[serde(default)]
    pub id: Option<Located<String>>,
    /// The environment variable that holds the channel's token (never the token itself).
    pub token_env: Located<String>,
    /// Most calls to Whapi.Cloud through this channel (`10/s`, `600/min`); default
    /// `--whapi-rate`.
    #[serde(default)]
    pub rate: Option<Located<String>>,
}
