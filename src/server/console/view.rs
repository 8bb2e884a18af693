//! Rendering console pages: the templates (compiled into the binary, HTML-escaped), the
//! stylesheet and script, and the small SVG charts.

use std::sync::LazyLock;

use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value};

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // `.html` names turn on HTML escaping of every value written into a page.
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("login.html", include_str!("templates/login.html")),
        ("message.html", include_str!("templates/message.html")),
        ("overview.html", include_str!("templates/overview.html")),
        ("events.html", include_str!("templates/events.html")),
        ("event_rows.html", include_str!("templates/event_rows.html")),
        ("event.html", include_str!("templates/event.html")),
        ("jobs.html", include_str!("templates/jobs.html")),
        ("campaigns.html", include_str!("templates/campaigns.html")),
        (
            "campaign_preview.html",
            include_str!("templates/campaign_preview.html"),
        ),
        ("inbox.html", include_str!("templates/inbox.html")),
        ("contacts.html", include_str!("templates/contacts.html")),
        (
            "contacts_import.html",
            include_str!("templates/contacts_import.html"),
        ),
        ("rules.html", include_str!("templates/rules.html")),
        ("rule_file.html", include_str!("templates/rule_file.html")),
    ] {
        if let Err(err) = env.add_template(name, source) {
            // The templates are part of the binary: a mistake in one is caught by the tests.
            tracing::error!("console template {name}: {err}");
        }
    }
    env.add_filter("json", |v: Value| {
        serde_json::to_string_pretty(&v).unwrap_or_default()
    });
    env
});

/// A page rendered from `template` with `ctx`.
pub(super) fn page(template: &str, ctx: Value) -> Response {
    page_with(StatusCode::OK, template, ctx)
}

/// A page with a status other than 200.
pub(super) fn page_with(status: StatusCode, template: &str, ctx: Value) -> Response {
    match TEMPLATES.get_template(template).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!("console page {template}: {err:#}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>This page could not be shown; the server log says why.</p>"),
            )
                .into_response()
        }
    }
}

/// A piece of a page (rows added by the live updates), or nothing if it cannot be rendered.
pub(super) fn fragment(template: &str, ctx: Value) -> String {
    TEMPLATES
        .get_template(template)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|err| {
            tracing::error!("console fragment {template}: {err:#}");
            String::new()
        })
}

/// A page that only says why a request was refused.
pub(super) fn refused(status: StatusCode, why: &str) -> Response {
    page_with(
        status,
        "message.html",
        minijinja::context! { title => "Not allowed", message => why },
    )
}

/// `value` percent-encoded for a query string.
pub(super) fn query_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `GET /ui/assets/console.css`.
pub(super) async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
}

/// `GET /ui/assets/console.js`.
pub(super) async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "max-age=300")],
        body,
    )
        .into_response()
}

/// A bar chart of counts per time slot as SVG, labelled for screen readers.
pub(super) fn bars(title: &str, counts: &[u64]) -> String {
    const WIDTH: usize = 600;
    const HEIGHT: u64 = 80;
    let most = counts.iter().copied().max().unwrap_or(0).max(1);
    let slot = WIDTH / counts.len().max(1);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        html_escape(title)
    );
    for (i, count) in counts.iter().enumerate() {
        let h = count * HEIGHT / most;
        svg.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{h}\"><title>{count}</title></rect>",
            i * slot,
            HEIGHT - h,
            slot.saturating_sub(1).max(1)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A campaign run's funnel as horizontal SVG bars: planned, sent, delivered, read, replied,
/// failed, each with its count written beside it.
pub(super) fn funnel(run: &serde_json::Value) -> String {
    const STAGES: [&str; 6] = ["planned", "sent", "delivered", "read", "replied", "failed"];
    let counts: Vec<u64> = STAGES
        .iter()
        .map(|s| run[*s].as_u64().unwrap_or(0))
        .collect();
    let most = counts.iter().copied().max().unwrap_or(0).max(1);
    let mut svg = String::from(
        "<svg class=\"funnel\" viewBox=\"0 0 400 150\" role=\"img\" aria-label=\"Funnel of the run\">",
    );
    for (i, (stage, count)) in STAGES.iter().zip(&counts).enumerate() {
        let y = i * 25;
        let width = count * 260 / most;
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\">{stage}</text><rect x=\"80\" y=\"{}\" width=\"{width}\" height=\"18\" class=\"{stage}\"></rect><text x=\"{}\" y=\"{}\">{count}</text>",
            y + 15,
            y + 2,
            85 + width,
            y + 15
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// Text made safe to place in HTML.
pub(super) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for name in [
            "base.html",
            "login.html",
            "overview.html",
            "events.html",
            "event.html",
            "jobs.html",
            "rules.html",
            "rule_file.html",
            "message.html",
            "campaigns.html",
            "inbox.html",
            "contacts.html",
            "event_rows.html",
        ] {
            assert!(TEMPLATES.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn charts_escape_their_title_and_scale_to_the_largest_count() {
        let svg = bars("a <b>", &[0, 5, 10]);
        assert!(svg.contains("aria-label=\"a &lt;b&gt;\""));
        assert!(svg.contains("height=\"80\""));
        assert!(svg.contains("height=\"40\""));
    }
}
