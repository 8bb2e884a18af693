//! `webhook:` → a compiled [`WebhookAction`]: its URL, method, headers and body checked at load
//! time, and whether the URL's host comes from event data (then it must be on the allow-list).

use super::Compiler;
use crate::actions::{Action, BodyTemplate, JsonTemplate, WebhookAction};
use crate::config::WebhookSpec;
use crate::templates::Text;

/// Compiles a `webhook:` action.
pub(super) fn webhook(hook: &WebhookSpec, cx: &mut Compiler<'_>) -> Option<Action> {
    // Every part is checked before giving up, so one `check` run reports all mistakes.
    let url = cx.url(&hook.url);
    if let Some(u) = url.as_ref().and_then(|u| u.literal())
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        let message = format!("webhook url `{u}` must start with http:// or https://");
        cx.error(hook.url.line, hook.url.column, message);
    }
    let method = match &hook.method {
        None => Some("POST".to_owned()),
        Some(m) => {
            let upper = m.value.to_ascii_uppercase();
            if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&upper.as_str()) {
                Some(upper)
            } else {
                let message = format!(
                    "unknown HTTP method `{}`, expected GET, POST, PUT, PATCH or DELETE",
                    m.value
                );
                cx.error(m.line, m.column, message);
                None
            }
        }
    };
    let mut headers = Some(Vec::new());
    if let Some(h) = &hook.headers {
        for (name, value) in &h.value {
            match (cx.text_at(value, h.line, h.column), headers.as_mut()) {
                (Some(t), Some(list)) => list.push((name.clone(), t)),
                _ => headers = None,
            }
        }
    }
    let body = match &hook.body {
        None => Some(None),
        Some(b) => match &b.value {
            serde_json::Value::String(s) => cx
                .text_at(s, b.line, b.column)
                .map(|t| Some(BodyTemplate::Text(t))),
            other => {
                json_template(other, b.line, b.column, cx).map(|j| Some(BodyTemplate::Json(j)))
            }
        },
    };
    let url = url.filter(|u| u.literal().is_none_or(|l| l.starts_with("http")))?;
    let host_from_template = host_is_templated(&hook.url.value);
    let channel = hook.channel.as_ref().map(|name| cx.channel(name));
    Some(Action::Webhook(Box::new(WebhookAction {
        url,
        host_from_template,
        method: method?,
        headers: headers?,
        body: body?,
        channel,
    })))
}

fn json_template(
    value: &serde_json::Value,
    line: u32,
    column: u32,
    cx: &mut Compiler<'_>,
) -> Option<JsonTemplate> {
    use serde_json::Value;
    Some(match value {
        Value::String(s) => {
            let trimmed = s.trim();
            let whole = trimmed
                .strip_prefix("{{")
                .and_then(|r| r.strip_suffix("}}"))
                .filter(|inner| !inner.contains("{{") && !inner.contains("}}"));
            match whole {
                Some(expr) => JsonTemplate::Value(cx.json_value_at(expr.trim(), line, column)?),
                None => match cx.text_at(s, line, column)? {
                    Text::Literal(l) => JsonTemplate::Fixed(Value::String(l)),
                    t => JsonTemplate::Text(t),
                },
            }
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(json_template(item, line, column, cx)?);
            }
            JsonTemplate::Array(out)
        }
        Value::Object(map) => {
            let mut out = Vec::with_capacity(map.len());
            for (k, v) in map {
                out.push((k.clone(), json_template(v, line, column, cx)?));
            }
            JsonTemplate::Object(out)
        }
        fixed => JsonTemplate::Fixed(fixed.clone()),
    })
}

/// Whether a URL template's host part depends on a template (`https://{{ data.host }}/x`).
fn host_is_templated(url: &str) -> bool {
    let end = [url.find("{{"), url.find("{%")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(url.len());
    let literal = &url[..end];
    if literal.len() == url.len() {
        return false;
    }
    match literal.split_once("://") {
        Some((_, rest)) => !rest.contains(['/', '?', '#']),
        None => true,
    }
}
