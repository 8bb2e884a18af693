//! Webhook URL templates. Every value a URL template writes is percent-encoded, so event data
//! can fill a path segment or a query value but never add `/`, `?`, `#`, `&` or `@`; the rule
//! author opts a trusted value out with `{{ x | safe_url }}`. A value that lands in the host
//! part is kept as written but may only hold host characters. Which hosts a URL may then name
//! is the webhook action's business, not this module's.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use std::borrow::Cow;

use minijinja::{AutoEscape, Error, ErrorKind, Output, State, Value, escape_formatter};

use super::Text;

/// The name suffix that gives a template the URL auto-escape mode.
pub(super) const SUFFIX: &str = ".url";
const MODE: &str = "url";

/// Characters a value keeps unencoded: RFC 3986's unreserved ones. The same set serves the
/// path and the query, where it also keeps `&`, `=`, `+` and `#` from leaking; a space is `%20`,
/// which both read as a space.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Marks around each encoded value in the raw rendering, so [`finish`] knows which part of the
/// URL it landed in. Unicode noncharacters: no encoded value holds them, and no real URL does.
const OPEN: char = '\u{FDD0}';
const CLOSE: char = '\u{FDD1}';

/// Longest URL quoted back in an error.
const SHOWN: usize = 120;

/// A webhook URL: written out in full, or a template compiled by
/// [`Templates::url`](super::Templates::url) and rendered by
/// [`Templates::render_url`](super::Templates::render_url).
#[derive(Debug, Clone, PartialEq)]
pub struct UrlText(pub(super) Text);

impl UrlText {
    /// The URL when it holds no template.
    pub fn literal(&self) -> Option<&str> {
        match &self.0 {
            Text::Literal(url) => Some(url),
            Text::Template(_) => None,
        }
    }
}

/// Why a rendered webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error(
        "webhook url: a template value comes before `://`; a URL taken whole from data needs `| safe_url` (and its host must be on --webhook-allow)"
    )]
    ValueInScheme,
    #[error("webhook url `{0}` must start with http:// or https://")]
    NotHttp(String),
    #[error(
        "webhook url: a user name or password (`…@` before the host) is refused in a templated URL; send credentials in `headers`"
    )]
    Userinfo,
    #[error(
        "webhook url: the template value `{0}` cannot be part of a host (letters, digits, `.`, `-`, `_`, a `:port` or an `[IPv6]` address)"
    )]
    BadHost(String),
    #[error("webhook url: a template value makes the path segment `{0}`")]
    DotSegment(String),
    #[error(
        "webhook url: the template's output has an unbalanced or altered value mark (a filter cut through an encoded value)"
    )]
    Marks,
}

/// The auto-escape mode of a template, by its name.
pub(super) fn auto_escape(name: &str) -> AutoEscape {
    if name.ends_with(SUFFIX) {
        AutoEscape::Custom(Cow::Borrowed(MODE))
    } else {
        // WhatsApp text is not HTML: never escape `&`, `<` or quotes.
        AutoEscape::None
    }
}

/// Writes a value: in a URL template percent-encoded between marks (raw if it is a safe
/// string), elsewhere as it is.
pub(super) fn formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if !matches!(state.auto_escape(), AutoEscape::Custom(mode) if mode == MODE) {
        return escape_formatter(out, state, value);
    }
    let written = if value.is_safe() {
        out.write_str(value.as_str().unwrap_or_default())
    } else {
        let text = value.to_string();
        out.write_fmt(format_args!(
            "{OPEN}{}{CLOSE}",
            utf8_percent_encode(&text, VALUE)
        ))
    };
    written.map_err(Error::from)
}

/// `{{ x | safe_url }}`: the value goes into a URL as written, not encoded.
pub(super) fn safe_url(value: &Value) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "safe_url: the value is undefined",
        ));
    }
    Ok(Value::from_safe_string(value.to_string()))
}

/// Which part of the URL the rendering has reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Scheme,
    Authority,
    Path,
    Query,
}

/// Turns the raw rendering of a URL template into the URL: removes the marks, checks each value
/// against the part it landed in, and refuses user info and schemes other than HTTP(S).
pub(super) fn finish(raw: &str) -> Result<String, UrlError> {
    let mut url = Url::default();
    let mut rest = raw;
    while let Some(open) = rest.find([OPEN, CLOSE]) {
        url.trusted(&rest[..open])?;
        let after = &rest[open..];
        if !after.starts_with(OPEN) {
            return Err(UrlError::Marks);
        }
        let after = &after[OPEN.len_utf8()..];
        let close = after.find([OPEN, CLOSE]).ok_or(UrlError::Marks)?;
        if !after[close..].starts_with(CLOSE) {
            return Err(UrlError::Marks);
        }
        url.value(&after[..close])?;
        rest = &after[close + CLOSE.len_utf8()..];
    }
    url.trusted(rest)?;
    url.end()
}

/// A URL being put together from trusted text and encoded values.
#[derive(Debug)]
struct Url {
    out: String,
    part: Part,
    /// Where the current path segment starts in `out`, and whether a value is in it.
    segment: usize,
    segment_has_value: bool,
}

impl Default for Url {
    fn default() -> Self {
        Self {
            out: String::new(),
            part: Part::Scheme,
            segment: 0,
            segment_has_value: false,
        }
    }
}

impl Url {
    /// Text the rule author wrote (or marked `safe_url`): it decides the URL's structure.
    fn trusted(&mut self, text: &str) -> Result<(), UrlError> {
        for c in text.chars() {
            if self.part == Part::Path && matches!(c, '/' | '?' | '#') {
                self.close_segment()?;
            }
            self.out.push(c);
            self.part = match (self.part, c) {
                (Part::Scheme, '/') if self.out.ends_with("://") => Part::Authority,
                (Part::Authority | Part::Path, '/') => Part::Path,
                (Part::Authority | Part::Path, '?' | '#') => Part::Query,
                (part, _) => part,
            };
            if c == '/' && self.part == Part::Path {
                self.segment = self.out.len();
                self.segment_has_value = false;
            }
        }
        Ok(())
    }

    /// A value the formatter encoded.
    fn value(&mut self, encoded: &str) -> Result<(), UrlError> {
        let well_formed = encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b));
        if !well_formed {
            return Err(UrlError::Marks);
        }
        match self.part {
            Part::Scheme => return Err(UrlError::ValueInScheme),
            Part::Authority => {
                let value = percent_decode_str(encoded).decode_utf8_lossy();
                if value.contains('@') {
                    return Err(UrlError::Userinfo);
                }
                let host_like = value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
                if !host_like {
                    return Err(UrlError::BadHost(shown(&value)));
                }
                self.out.push_str(&value);
            }
            Part::Path => {
                self.segment_has_value = true;
                self.out.push_str(encoded);
            }
            Part::Query => self.out.push_str(encoded),
        }
        Ok(())
    }

    /// A path segment ends: `.` and `..` made with a value would climb out of the route.
    fn close_segment(&mut self) -> Result<(), UrlError> {
        let segment = &self.out[self.segment..];
        if self.segment_has_value && (segment == "." || segment == "..") {
            return Err(UrlError::DotSegment(segment.to_owned()));
        }
        Ok(())
    }

    fn end(mut self) -> Result<String, UrlError> {
        if self.part == Part::Path {
            self.close_segment()?;
        }
        let lower = self.out.get(..8).unwrap_or(&self.out).to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(UrlError::NotHttp(shown(&self.out)));
        }
        let rest = self.out.split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(UrlError::Userinfo);
        }
        Ok(self.out)
    }
}

fn shown(text: &str) -> String {
    crate::quote::quoted(text, SHOWN)
}

#[cfg(test)]
mod tests {
    use minijinja::context;

    use super::super::{RenderError, Scope, Templates};
    use super::*;

    const SCOPE: Scope<'static> = Scope::Event {
        groups: &[],
        lookups: &[],
        data: None,
    };

    /// Renders `source` as a webhook URL with `data` as the event's custom data.
    fn url(source: &str, data: Value) -> Result<String, RenderError> {
        let mut t = Templates::new();
        let url = t.url(source, SCOPE).unwrap();
        t.render_url(&url, &context! { data => data })
    }

    fn refused(source: &str, data: Value) -> UrlError {
        match url(source, data) {
            Err(RenderError::Url(err)) => err,
            other => panic!("{source}: {other:?}"),
        }
    }

    #[test]
    fn a_value_in_the_path_is_one_encoded_segment() {
        let data = context! { x => "a/../b?c#d@e%2F f" };
        assert_eq!(
            url("https://hooks.example.com/orders/{{ data.x }}/notes", data).unwrap(),
            "https://hooks.example.com/orders/a%2F..%2Fb%3Fc%23d%40e%252F%20f/notes"
        );
    }

    #[test]
    fn a_value_in_the_query_cannot_add_a_parameter() {
        let data = context! { q => "x&admin=1#+é", n => 42 };
        assert_eq!(
            url("https://h.example/s?q={{ data.q }}&n={{ data.n }}", data).unwrap(),
            "https://h.example/s?q=x%26admin%3D1%23%2B%C3%A9&n=42"
        );
    }

    #[test]
    fn safe_url_writes_a_trusted_value_as_it_is() {
        let data = context! { url => "https://hooks.example.com/a/b?c=d&e=f", x => "a/b" };
        assert_eq!(
            url("{{ data.url | safe_url }}", data.clone()).unwrap(),
            "https://hooks.example.com/a/b?c=d&e=f"
        );
        assert_eq!(
            url(
                "https://h.example/{{ data.x | safe_url }}/{{ data.x }}",
                data
            )
            .unwrap(),
            "https://h.example/a/b/a%2Fb"
        );
    }

    #[test]
    fn a_whole_url_from_data_needs_safe_url() {
        let data = context! { url => "https://hooks.example.com/a" };
        assert_eq!(refused("{{ data.url }}", data), UrlError::ValueInScheme);
    }

    #[test]
    fn a_value_in_the_host_keeps_its_port_and_may_hold_only_host_characters() {
        let ok = |host: &str| url("http://{{ data.h }}/x", context! { h => host });
        assert_eq!(
            ok("hooks.example.com").unwrap(),
            "http://hooks.example.com/x"
        );
        assert_eq!(ok("127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080/x");
        assert_eq!(ok("[::1]:8080").unwrap(), "http://[::1]:8080/x");
        assert_eq!(
            refused("http://{{ data.h }}/x", context! { h => "evil.example/x?" }),
            UrlError::BadHost("evil.example/x?".into())
        );
        assert_eq!(
            refused(
                "http://{{ data.h }}/x",
                context! { h => "user:pw@evil.example" }
            ),
            UrlError::Userinfo
        );
    }

    #[test]
    fn user_info_in_a_templated_url_is_refused() {
        let data = context! { t => "s3cret", url => "https://u:p@h.example/x" };
        assert_eq!(
            refused("https://bot:{{ data.t }}@h.example/x", data.clone()),
            UrlError::Userinfo
        );
        assert_eq!(
            refused("{{ data.url | safe_url }}", data),
            UrlError::Userinfo
        );
        assert!(
            !UrlError::Userinfo.to_string().contains("s3cret"),
            "the error never repeats credentials"
        );
    }

    #[test]
    fn a_value_cannot_make_a_dot_segment() {
        for x in [".", ".."] {
            assert_eq!(
                refused("https://h.example/a/{{ data.x }}/b", context! { x => x }),
                UrlError::DotSegment(x.into())
            );
            assert_eq!(
                refused("https://h.example/a/{{ data.x }}", context! { x => x }),
                UrlError::DotSegment(x.into())
            );
        }
        assert_eq!(
            refused("https://h.example/{{ data.x }}.?q", context! { x => "." }),
            UrlError::DotSegment("..".into())
        );
        // Dots inside a segment, or in the query, are a value like any other.
        assert_eq!(
            url(
                "https://h.example/{{ data.x }}?q={{ data.x }}",
                context! { x => "..a" }
            )
            .unwrap(),
            "https://h.example/..a?q=..a"
        );
    }

    #[test]
    fn only_http_and_https_urls_leave() {
        assert_eq!(
            refused(
                "{{ data.u | safe_url }}",
                context! { u => "file:///etc/passwd" }
            ),
            UrlError::NotHttp("file:///etc/passwd".into())
        );
        assert!(url("HTTPS://h.example/{{ data.u }}", context! { u => "x" }).is_ok());
    }

    #[test]
    fn a_filter_that_cuts_through_a_value_is_caught() {
        let data = context! { x => "abcdef" };
        assert_eq!(
            refused(
                "https://h.example/{{ data.x }}{{ '\u{FDD1}' | safe_url }}",
                data
            ),
            UrlError::Marks
        );
    }

    #[test]
    fn a_url_and_a_text_with_the_same_source_are_two_templates() {
        let mut t = Templates::new();
        let source = "https://h.example/{{ data.x }}";
        let text = t.text(source, SCOPE).unwrap();
        let url = t.url(source, SCOPE).unwrap();
        let again = t.url(source, SCOPE).unwrap();
        assert_eq!(url, again, "URLs alike share one template");
        let ctx = context! { data => context! { x => "a b/c" } };
        assert_eq!(t.render(&text, &ctx).unwrap(), "https://h.example/a b/c");
        assert_eq!(
            t.render_url(&url, &ctx).unwrap(),
            "https://h.example/a%20b%2Fc"
        );
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn safe_url_changes_nothing_in_text_and_an_undefined_value_is_an_error() {
        let mut t = Templates::new();
        let text = t.text("{{ data.x | safe_url }} & co", SCOPE).unwrap();
        let ctx = context! { data => context! { x => "a/b <c>" } };
        assert_eq!(t.render(&text, &ctx).unwrap(), "a/b <c> & co");
        let url = t
            .url("https://h.example/{{ data.y | safe_url }}", SCOPE)
            .unwrap();
        assert!(t.render_url(&url, &ctx).is_err());
    }

    #[test]
    fn a_url_without_a_template_is_the_authors() {
        let mut t = Templates::new();
        let url = t.url("https://u:p@h.example/a/../b", SCOPE).unwrap();
        assert_eq!(url.literal(), Some("https://u:p@h.example/a/../b"));
        assert_eq!(
            t.render_url(&url, &context! {}).unwrap(),
            "https://u:p@h.example/a/../b"
        );
    }
}
