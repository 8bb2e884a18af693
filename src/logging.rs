//! Log output: the subscriber the binary installs, as text (the default) or one JSON object a
//! line. Many values in log lines came from outside (a response body, a model's answer, a
//! template error quoting a message), so the text format escapes line breaks, control
//! characters and ANSI sequences in every field and message: a value can neither start a
//! forged log line nor repaint a terminal. JSON escapes them by itself.
//!
//! This module owns where logs go and how values are written; what is logged belongs to the
//! code that logs it.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::{FormatFields, Writer};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the process-wide subscriber: `RUST_LOG` filters (else `default_filter`),
/// `RIPOSTE_LOG_FORMAT=json` gives one JSON object a line, anything else escaped text.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    if std::env::var("RIPOSTE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .json()
            .init();
    } else {
        text_subscriber(filter, std::io::stderr).init();
    }
}

/// The text-format subscriber writing to `writer`, every value escaped by [`EscapedFields`].
pub fn text_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .fmt_fields(EscapedFields)
        .finish()
}

/// Formats the fields of events and spans like the default text format (the message bare,
/// the others as `name=value`), with every value escaped.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = FieldVisitor {
            writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct FieldVisitor<'w> {
    writer: Writer<'w>,
    empty: bool,
    result: fmt::Result,
}

impl FieldVisitor<'_> {
    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) -> fmt::Result {
        let name = field.name();
        if !std::mem::replace(&mut self.empty, false) {
            self.writer.write_char(' ')?;
        }
        if name != "message" {
            let name = name.strip_prefix("r#").unwrap_or(name);
            if self.writer.has_ansi_escapes() {
                // Italic name and dimmed `=`, as the default text format paints them.
                write!(self.writer, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m")?;
            } else {
                write!(self.writer, "{name}=")?;
            }
        }
        Escaping(&mut self.writer).write_fmt(value)
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.record_debug(field, &format_args!("{text}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `log` records carry their metadata as fields; the line already shows it.
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.result = self.write(field, format_args!("{value:?}"));
    }
}

/// Writes through to `W`, escaping what would break a log line or drive a terminal.
struct Escaping<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape(s, self.0)
    }
}

/// Writes `text` with line breaks as `\n` / `\r` / `\t`, the other C0 and C1 control
/// characters and DEL (ESC, so every ANSI sequence, among them) as `\x1b`, and the Unicode
/// line separators and direction overrides (which move text on a viewer's screen) as `\u{…}`.
fn escape(text: &str, out: &mut impl fmt::Write) -> fmt::Result {
    let mut plain = 0;
    for (at, c) in text.char_indices() {
        if !c.is_control() && !moves_text(c) {
            continue;
        }
        out.write_str(&text[plain..at])?;
        plain = at + c.len_utf8();
        match c {
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            _ if c.is_control() => write!(out, "\\x{:02x}", u32::from(c))?,
            _ => write!(out, "\\u{{{:x}}}", u32::from(c))?,
        }
    }
    out.write_str(&text[plain..])
}

/// Line and paragraph separators, and the bidirectional embeddings, overrides and isolates.
fn moves_text(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        escape(text, &mut out).unwrap();
        out
    }

    #[test]
    fn line_breaks_controls_and_ansi_are_escaped_and_the_rest_kept() {
        assert_eq!(escaped("a\nb\r\nc\td"), r"a\nb\r\nc\td");
        assert_eq!(escaped("\x1b[31mred\x1b[0m"), r"\x1b[31mred\x1b[0m");
        assert_eq!(escaped("\0\x07\x7f\u{85}\u{9b}"), r"\x00\x07\x7f\x85\x9b");
        assert_eq!(escaped("x\u{2028}y\u{202e}z"), r"x\u{2028}y\u{202e}z");
        assert_eq!(
            escaped("Grüße, 🙂 \"ok\" C:\\dir"),
            "Grüße, 🙂 \"ok\" C:\\dir"
        );
    }
}
