//! Renders a `webhook:` action into its call: the URL (values percent-encoded by the URL
//! template), headers and body, and checks a URL whose host comes from event data against the
//! allow-list of hosts and ports (`--webhook-allow`).

use super::WebhookAction;
use super::{ActionError, BodyTemplate, JsonTemplate, RenderCx};
use crate::rules::Glob;
use crate::vocab::{OutboundRequest, Payload, Target};

pub(super) fn render(
    cx: &RenderCx<'_>,
    hook: &WebhookAction,
) -> Result<OutboundRequest, ActionError> {
    let url = cx.templates.render_url(&hook.url, cx.ctx)?;
    if url.is_empty() {
        return Err(ActionError::Empty("webhook.url"));
    }
    let mut headers = Vec::with_capacity(hook.headers.len());
    for (name, value) in &hook.headers {
        headers.push((name.clone(), cx.text(value)?));
    }
    let body = match &hook.body {
        None => None,
        Some(BodyTemplate::Text(t)) => Some(Payload::Text(cx.text(t)?)),
        Some(BodyTemplate::Json(j)) => Some(Payload::Json(render_json(cx, j)?)),
    };
    let to = Authority::of(&url);
    if hook.host_from_template && !to.allowed(cx.webhook_allow) {
        return Err(ActionError::Missing(to.refusal()));
    }
    Ok(OutboundRequest {
        target: Target::External,
        method: hook.method.clone(),
        path: url,
        headers,
        body,
        lane: format!("webhook:{}", to.host),
        channel: None,
        pin: None,
    })
}

/// Where a URL points: its host (lower-cased, without user info) and port.
#[derive(Debug, PartialEq, Eq)]
struct Authority {
    host: String,
    /// The port written in the URL, or the scheme's; `None` when what is written is no port.
    port: Option<u16>,
    /// 443 for `https`, 80 otherwise.
    default_port: u16,
}

impl Authority {
    fn of(url: &str) -> Self {
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        let default_port = if scheme.eq_ignore_ascii_case("https") {
            443
        } else {
            80
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = split_port(host_port);
        let port = match port {
            None | Some("") => Some(default_port),
            Some(port) => port.parse().ok(),
        };
        Self {
            host: host.to_ascii_lowercase(),
            port,
            default_port,
        }
    }

    /// Whether an allow-list entry names this host and port. An entry without a port allows
    /// the scheme's default port only: `hooks.example.com` is not `hooks.example.com:8443`.
    fn allowed(&self, allow: &[Glob]) -> bool {
        let Some(port) = self.port else {
            return false;
        };
        allow.iter().any(|entry| {
            let (host, allowed_port) = split_port(&entry.source);
            let port_ok = match allowed_port {
                None => port == self.default_port,
                Some(glob) => Glob::new(glob).matches(&port.to_string()),
            };
            port_ok && Glob::new(&host.to_ascii_lowercase()).matches(&self.host)
        })
    }

    fn refusal(&self) -> String {
        match self.port {
            Some(port) if port == self.default_port => format!(
                "webhook host `{}` comes from event data and is not on the allow-list (--webhook-allow)",
                self.host
            ),
            Some(port) => format!(
                "webhook host `{}:{port}` comes from event data and is not on the allow-list (--webhook-allow; an entry without a port allows only the default port, so allow `{}:{port}`)",
                self.host, self.host
            ),
            None => format!(
                "webhook host `{}` comes from event data and its port is not a port number",
                self.host
            ),
        }
    }
}

/// `host:port` into its host and port text; `[v6]:port` keeps its brackets.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => {
                let port = authority[end + 1..].strip_prefix(':');
                (&authority[..=end], port)
            }
            None => (authority, None),
        };
    }
    match authority.split_once(':') {
        Some((host, port)) if !port.contains(':') => (host, Some(port)),
        _ => (authority, None),
    }
}

fn render_json(cx: &RenderCx<'_>, json: &JsonTemplate) -> Result<serde_json::Value, ActionError> {
    Ok(match json {
        JsonTemplate::Fixed(v) => v.clone(),
        JsonTemplate::Text(t) => serde_json::Value::String(cx.text(t)?),
        JsonTemplate::Value(name) => {
            let rendered = cx.templates.render_named(name, cx.ctx)?;
            serde_json::from_str(&rendered).unwrap_or(serde_json::Value::String(rendered))
        }
        JsonTemplate::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|i| render_json(cx, i))
                .collect::<Result<_, _>>()?,
        ),
        JsonTemplate::Object(fields) => {
            let mut map = serde_json::Map::with_capacity(fields.len());
            for (k, v) in fields {
                map.insert(k.clone(), render_json(cx, v)?);
            }
            serde_json::Value::Object(map)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> Vec<Glob> {
        entries.iter().map(|e| Glob::new(e)).collect()
    }

    #[test]
    fn the_authority_has_its_host_and_port() {
        let at = |url| {
            let a = Authority::of(url);
            (a.host, a.port)
        };
        assert_eq!(
            at("https://Hooks.Example.com/x"),
            ("hooks.example.com".into(), Some(443))
        );
        assert_eq!(
            at("http://hooks.example.com:8443/x?y"),
            ("hooks.example.com".into(), Some(8443))
        );
        assert_eq!(
            at("http://u:p@10.0.0.1:81#f"),
            ("10.0.0.1".into(), Some(81))
        );
        assert_eq!(at("http://[::1]:8080/x"), ("[::1]".into(), Some(8080)));
        assert_eq!(at("https://[::1]/x"), ("[::1]".into(), Some(443)));
        assert_eq!(at("http://host:/x"), ("host".into(), Some(80)));
        assert_eq!(at("http://host:99999/x"), ("host".into(), None));
    }

    #[test]
    fn an_entry_without_a_port_allows_the_default_port_only() {
        let list = allow(&["hooks.example.com", "*.shop.example"]);
        assert!(Authority::of("https://hooks.example.com/x").allowed(&list));
        assert!(Authority::of("http://hooks.example.com/x").allowed(&list));
        assert!(Authority::of("https://hooks.example.com:443/x").allowed(&list));
        assert!(Authority::of("https://eu.shop.example/x").allowed(&list));
        assert!(!Authority::of("https://hooks.example.com:8443/x").allowed(&list));
        assert!(!Authority::of("http://hooks.example.com:443/x").allowed(&list));
        assert!(!Authority::of("https://hooks.example.com.evil.example/x").allowed(&list));
    }

    #[test]
    fn an_entry_with_a_port_allows_that_port() {
        let list = allow(&["hooks.example.com:8443", "127.0.0.1:*", "[::1]:8080"]);
        assert!(Authority::of("https://hooks.example.com:8443/x").allowed(&list));
        assert!(!Authority::of("https://hooks.example.com/x").allowed(&list));
        assert!(Authority::of("http://127.0.0.1:41234/x").allowed(&list));
        assert!(Authority::of("http://127.0.0.1/x").allowed(&list));
        assert!(Authority::of("http://[::1]:8080/x").allowed(&list));
        assert!(!Authority::of("http://[::1]:8081/x").allowed(&list));
        assert!(!Authority::of("http://127.0.0.1:99999/x").allowed(&list));
    }

    #[test]
    fn the_refusal_says_which_port_to_allow() {
        assert_eq!(
            Authority::of("http://169.254.169.254/x").refusal(),
            "webhook host `169.254.169.254` comes from event data and is not on the allow-list (--webhook-allow)"
        );
        assert_eq!(
            Authority::of("https://hooks.example.com:8443/x").refusal(),
            "webhook host `hooks.example.com:8443` comes from event data and is not on the allow-list (--webhook-allow; an entry without a port allows only the default port, so allow `hooks.example.com:8443`)"
        );
    }
}
