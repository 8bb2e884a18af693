//! The WhatsApp numbers (Whapi.Cloud channels) one engine serves: read from the channels file,
//! or the one channel `default` that `WHAPI_TOKEN` gives when there is none. Webhooks are
//! routed to a channel by their `channel_id` (or the channel named in their URL), and each
//! channel has its own token, pace and circuit breaker.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{ChannelsFile, Located, SourceFile};
use crate::rules::{Diagnostic, did_you_mean};
use crate::vocab::DEFAULT_CHANNEL;

/// The environment variable of the default channel's token.
pub const DEFAULT_TOKEN_ENV: &str = "WHAPI_TOKEN";

/// Path segments Whapi.Cloud's `method` webhook mode puts in the URL: no channel may be named so.
const RESERVED: &[&str] = &["post", "put", "patch", "delete"];

/// One WhatsApp number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    /// Whapi.Cloud's channel id; `None` accepts every id (the one channel of an engine
    /// without a channels file).
    pub id: Option<String>,
    /// The environment variable that holds the token.
    pub token_env: String,
    /// Least time between two calls through this channel; `None`: `--whapi-rate`.
    pub interval: Option<Duration>,
}

/// The channels of an engine, in the order the file lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    list: Vec<Channel>,
    /// The file they were read from.
    file: Option<PathBuf>,
}

impl Default for Channels {
    fn default() -> Self {
        Self::single()
    }
}

impl Channels {
    /// The one channel of an engine without a channels file: every `channel_id`, `WHAPI_TOKEN`.
    pub fn single() -> Self {
        Self {
            list: vec![Channel {
                name: DEFAULT_CHANNEL.to_owned(),
                id: None,
                token_env: DEFAULT_TOKEN_ENV.to_owned(),
                interval: None,
            }],
            file: None,
        }
    }

    /// The channels of `file`, or the single default channel without one.
    pub fn from_setting(file: Option<&Path>) -> Result<Self, Vec<Diagnostic>> {
        match file {
            Some(path) => Self::load(path),
            None => Ok(Self::single()),
        }
    }

    /// Reads a channels file; every problem is a located diagnostic.
    pub fn load(path: &Path) -> Result<Self, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Diagnostic::error(
                path,
                1,
                1,
                format!("cannot read the channels file: {e}"),
            )]
        })?;
        Self::parse(&SourceFile {
            path: path.to_owned(),
            text,
            root: None,
        })
    }

    /// Parses the text of a channels file.
    pub fn parse(source: &SourceFile) -> Result<Self, Vec<Diagnostic>> {
        let file: ChannelsFile = crate::config::parse_yaml(source).map_err(|d| vec![d])?;
        let path = source.path.as_path();
        let mut problems = Vec::new();
        let mut entries: Vec<_> = file.channels.into_iter().collect();
        // The file's order, which names the default channel: the map reads them sorted.
        entries.sort_by_key(|(_, spec)| (spec.line, spec.column));
        if entries.is_empty() {
            problems.push(Diagnostic::error(
                path,
                1,
                1,
                "the channels file names no channel: add one under `channels:`",
            ));
        }
        let several = entries.len() > 1;
        let mut list: Vec<Channel> = Vec::with_capacity(entries.len());
        for (name, spec) in entries {
            let at = |l: &Located<String>| (l.line.max(1), l.column.max(1));
            let mut error = |(line, column): (u32, u32), message: String| {
                problems.push(Diagnostic::error(path, line, column, message));
            };
            let place = (spec.line.max(1), spec.column.max(1));
            if !is_name(&name) || RESERVED.contains(&name.as_str()) {
                error(
                    place,
                    format!(
                        "channel name `{}` is not usable: use letters, digits, `_` and `-` (and not post, put, patch or delete)",
                        crate::quote::quoted(&name, 64)
                    ),
                );
            }
            let spec = spec.value;
            let id = spec.id.as_ref().map(|id| id.value.trim().to_owned());
            match (&spec.id, &id) {
                (Some(written), Some(id)) if id.is_empty() => {
                    error(at(written), format!("channel `{name}` has an empty `id`"));
                }
                (Some(written), Some(id)) => {
                    if let Some(other) = list.iter().find(|c| c.id.as_deref() == Some(id)) {
                        error(
                            at(written),
                            format!("channel `{name}` has the id of channel `{}`", other.name),
                        );
                    }
                }
                _ if several => error(
                    place,
                    format!(
                        "channel `{name}` needs `id:` (Whapi.Cloud's channel id): with several channels, webhooks are told apart by it"
                    ),
                ),
                _ => {}
            }
            let token_env = spec.token_env.value.trim().to_owned();
            if !is_env_name(&token_env) {
                error(
                    at(&spec.token_env),
                    format!(
                        "`token_env` names the environment variable that holds the token (e.g. WHAPI_TOKEN_{}), not the token itself",
                        name.to_ascii_uppercase().replace('-', "_")
                    ),
                );
            }
            let interval = match &spec.rate {
                None => None,
                Some(rate) => match crate::campaigns::parse_rate(&rate.value)
                    .and_then(|d| d.to_std().map_err(|e| e.to_string()))
                {
                    Ok(interval) => Some(interval),
                    Err(e) => {
                        error(at(rate), e);
                        None
                    }
                },
            };
            list.push(Channel {
                name,
                id,
                token_env,
                interval,
            });
        }
        if problems.is_empty() {
            Ok(Self {
                list,
                file: Some(source.path.clone()),
            })
        } else {
            Err(problems)
        }
    }

    /// Whether the rules name only these channels (and every campaign one, when there are
    /// several); else every problem, located.
    pub fn fit(&self, set: &crate::rules::RuleSet) -> Result<(), Vec<Diagnostic>> {
        let problems = set.channel_problems(&self.names(), self.file.is_some());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The channels in the file's order.
    pub fn list(&self) -> &[Channel] {
        &self.list
    }

    /// The channels' names in the file's order.
    pub fn names(&self) -> Vec<String> {
        self.list.iter().map(|c| c.name.clone()).collect()
    }

    /// The file the channels were read from.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The channel custom events come in on, and jobs that name no channel go out through:
    /// the one named `default`, else the first listed.
    pub fn default_channel(&self) -> &Channel {
        self.named(DEFAULT_CHANNEL)
            .or_else(|| self.list.first())
            .unwrap_or_else(|| unreachable!("a channel list is never empty"))
    }

    /// The channel of a name.
    pub fn named(&self, name: &str) -> Option<&Channel> {
        self.list.iter().find(|c| c.name == name)
    }

    /// The channel a webhook came in on: the one its URL names (when the body's `channel_id`
    /// agrees), else the one with its `channel_id`, else one that accepts every id. `None`:
    /// no configured channel has that id.
    pub fn route(&self, channel_id: &str, url_names: Option<&str>) -> Option<&Channel> {
        if let Some(name) = url_names {
            // A body without a `channel_id` is the URL's channel's.
            let accepts = |c: &&Channel| {
                channel_id == crate::events::NO_CHANNEL_ID
                    || c.id.as_deref().is_none_or(|id| id == channel_id)
            };
            return self.named(name).filter(accepts);
        }
        self.list
            .iter()
            .find(|c| c.id.as_deref() == Some(channel_id))
            .or_else(|| self.list.iter().find(|c| c.id.is_none()))
    }

    /// The channel a webhook's URL names (`/webhook/NAME/...`), if it names one.
    pub fn in_path<'a>(&self, path: &'a str) -> Option<&'a str> {
        let first = path.trim_start_matches('/').split('/').next()?;
        self.named(first).map(|_| first)
    }

    /// Did-you-mean for a channel name that is not configured.
    pub fn suggest(&self, name: &str) -> Option<&str> {
        did_you_mean(name, self.list.iter().map(|c| c.name.as_str()))
    }

    /// Each channel's token, read from the variable its `token_env` names.
    pub fn read_tokens(&self) -> Tokens {
        Tokens(
            self.list
                .iter()
                .map(|c| {
                    let token = std::env::var(&c.token_env)
                        .ok()
                        .filter(|t| !t.trim().is_empty());
                    (c.name.clone(), token)
                })
                .collect(),
        )
    }
}

/// Each channel's token by name (`None`: unset, so the channel is dry-run). Never printed.
#[derive(Clone, Default)]
pub struct Tokens(pub Vec<(String, Option<String>)>);

impl Tokens {
    /// The token of the one default channel.
    pub fn single(token: Option<String>) -> Self {
        Self(vec![(DEFAULT_CHANNEL.to_owned(), token)])
    }

    /// The token of a channel.
    pub fn of(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, t)| t.as_deref())
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are secrets: only whether each is set is shown.
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(n, t)| (n, if t.is_some() { "<set>" } else { "<unset>" })),
            )
            .finish()
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.as_bytes()[0].is_ascii_digit()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Channels, Vec<String>> {
        Channels::parse(&SourceFile {
            path: "channels.yaml".into(),
            text: text.to_owned(),
            root: None,
        })
        .map_err(|ds| ds.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn channels_keep_the_file_s_order_and_route_by_id() {
        let channels = parse(
            "channels:\n  support: {id: HAWK-7QP2L, token_env: WHAPI_TOKEN_SUPPORT, rate: 10/s}\n  sales:   {id: MANTIS-Z9XW1, token_env: WHAPI_TOKEN_SALES}\n",
        )
        .unwrap();
        assert_eq!(channels.names(), ["support", "sales"]);
        assert_eq!(channels.default_channel().name, "support");
        assert_eq!(channels.route("MANTIS-Z9XW1", None).unwrap().name, "sales");
        assert_eq!(channels.route("OTHER-1", None), None);
        assert_eq!(
            channels.list()[0].interval,
            Some(Duration::from_millis(100))
        );
        assert_eq!(channels.in_path("sales/messages/post"), Some("sales"));
        assert_eq!(channels.in_path("messages/post"), None);
        assert_eq!(
            channels.route("HAWK-7QP2L", Some("sales")),
            None,
            "the URL and the body disagree"
        );
    }

    #[test]
    fn without_a_file_one_channel_takes_every_id() {
        let channels = Channels::single();
        assert_eq!(channels.route("ANY-1", None).unwrap().name, "default");
        assert_eq!(channels.default_channel().token_env, "WHAPI_TOKEN");
    }

    #[test]
    fn mistakes_are_located_and_all_reported() {
        let errors = parse(
            "channels:\n  sales: {token_env: WHAPI_TOKEN_SALES}\n  support: {id: X-1, token_env: 'abc-123 secret', rate: fast}\n  bad name: {id: X-1, token_env: T}\n",
        )
        .unwrap_err();
        let all = errors.join("\n");
        assert!(
            all.contains("channels.yaml:2:10: error: channel `sales` needs `id:`"),
            "{all}"
        );
        assert!(all.contains(":3:"), "{all}");
        assert!(
            all.contains("`token_env` names the environment variable"),
            "{all}"
        );
        assert!(all.contains("invalid rate `fast`"), "{all}");
        assert!(
            all.contains("channel name `bad name` is not usable"),
            "{all}"
        );
        assert!(all.contains("has the id of channel"), "{all}");
        let unknown = parse("channels:\n  sales: {id: X, token: abc}\n").unwrap_err();
        assert!(unknown[0].contains("unknown field `token`"), "{unknown:?}");
    }
}
