//! The YAML reader's errors in the words of someone editing a rule file, with the fix where
//! the mistake is a common one (a tab, an unquoted `: `, a regex in double quotes, a key out
//! of line).

use serde_saphyr::{DefaultMessageFormatter, MessageFormatter};

use super::SourceFile;
use crate::rules::Diagnostic;

/// The diagnostic for a YAML reader error, located in `source`.
pub(super) fn yaml_diagnostic(source: &SourceFile, err: &serde_saphyr::Error) -> Diagnostic {
    let err = err.without_snippet();
    let (mut line, mut column) = err
        .location()
        .map_or((1, 1), |l| (l.line() as u32, l.column() as u32));
    let message = match err {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => unknown_name_message("field", field, expected),
        serde_saphyr::Error::SerdeUnknownVariant {
            variant, expected, ..
        } => unknown_name_message("value", variant, expected),
        other => {
            let text = DefaultMessageFormatter.format_message(other);
            let text = text
                .escape_debug()
                .to_string()
                .replace("\\'", "'")
                .replace("\\\"", "\"");
            if text.contains("found a tab") {
                // Point at the tab itself, which the YAML reader reports at the token before it.
                if let Some((n, l)) = source
                    .text
                    .lines()
                    .enumerate()
                    .skip(line.saturating_sub(2) as usize)
                    .find(|(_, l)| l.contains('\t'))
                {
                    line = n as u32 + 1;
                    column = l.find('\t').unwrap_or(0) as u32 + 1;
                }
            }
            let at = source.text.lines().nth(line.saturating_sub(1) as usize);
            let plain = at.and_then(|l| explain(&text, l, &source.text, line));
            plain.unwrap_or_else(|| friendlier(&text))
        }
    };
    Diagnostic::error(&source.path, line.max(1), column.max(1), message)
}

/// The mistakes that need the line to explain: what was written there and how to write it.
fn explain(reader: &str, line: &str, file: &str, at: u32) -> Option<String> {
    if reader.contains("mapping values are not allowed") {
        return unquoted_colon(line).or_else(|| indentation(file, at));
    }
    if reader.contains("unknown escape character") {
        return escape_in_double_quotes(line);
    }
    for (kind, open, close) in [("mapping", '{', '}'), ("sequence", '[', ']')] {
        if reader.starts_with(&format!(
            "while parsing a flow {kind}, did not find expected"
        )) {
            return Some(unclosed(file, at, open, close));
        }
    }
    if reader.contains("did not find expected key")
        || reader.contains("did not find expected '-' indicator")
        || reader.contains("block sequence entries are not allowed")
    {
        return indentation(file, at);
    }
    None
}

/// The key and the value of a `key: value` line (after any `- `).
fn key_and_value(line: &str) -> Option<(&str, &str)> {
    let body = line.trim_start();
    let body = body.strip_prefix("- ").map_or(body, str::trim_start);
    let (key, value) = body.split_once(':')?;
    let key = key.trim();
    (!key.is_empty() && !key.contains(' ')).then_some((key, value.trim()))
}

fn single_quoted(key: &str, value: &str) -> String {
    format!("`{key}: '{}'`", value.replace('\'', "''"))
}

/// `text: (?i)order: (\d+)`: the second `: ` starts a key in YAML's eyes.
fn unquoted_colon(line: &str) -> Option<String> {
    let (key, value) = key_and_value(line)?;
    let quoted_or_nested = value.starts_with(['"', '\'', '{', '[', '|', '>', '&', '*', '!']);
    if quoted_or_nested || !(value.contains(": ") || value.ends_with(':')) {
        return None;
    }
    Some(format!(
        "the value of `{key}` contains `: `, which YAML reads as the start of another key; \
         put the value in single quotes: {}",
        single_quoted(key, value)
    ))
}

/// Backslash escapes a double-quoted YAML string may hold.
const YAML_ESCAPES: &str = "0abt\tnvfre \"/\\N_LPxuU";

/// `text: "(?i)order (\d+)"`: `\d` is no escape YAML knows.
fn escape_in_double_quotes(line: &str) -> Option<String> {
    let (key, value) = key_and_value(line)?;
    let inner = value.strip_prefix('"')?;
    let inner = inner.rfind('"').map_or(inner, |end| &inner[..end]);
    let mut chars = inner.chars();
    let mut bad = None;
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) if YAML_ESCAPES.contains(next) => {}
                Some(next) => {
                    bad = Some(next);
                    break;
                }
                None => break,
            }
        }
    }
    let bad = bad?;
    Some(format!(
        "`\\{bad}` cannot be written inside double quotes; write regexes in single quotes, \
         where a backslash is just a backslash: {}",
        single_quoted(key, inner)
    ))
}

/// A `{` or `[` left open: the YAML reader notices only on a later line.
fn unclosed(file: &str, at: u32, open: char, close: char) -> String {
    let opened = file
        .lines()
        .take(at as usize)
        .enumerate()
        .filter(|(_, l)| l.matches(open).count() > l.matches(close).count())
        .last()
        .map(|(n, _)| format!(" on line {}", n + 1))
        .unwrap_or_default();
    format!(
        "the `{open}`{opened} is not closed: end the value with `{close}` and separate its \
         entries with `,` (or put the value in quotes if the `{open}` is part of the text)"
    )
}

/// A line whose indentation fits none of the lines above it: which columns would.
fn indentation(file: &str, at: u32) -> Option<String> {
    let lines: Vec<&str> = file.lines().collect();
    let index = at.checked_sub(1)? as usize;
    let here = *lines.get(index)?;
    let depth = indent(here);
    let entry = is_entry(here);
    let mut below: Option<Level> = None;
    let mut above: Option<Level> = None;
    let mut open = usize::MAX;
    for (n, line) in lines[..index].iter().enumerate().rev() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let d = indent(line);
        if d >= open {
            // Inside a map or list that was closed before the line in question.
            continue;
        }
        open = d;
        for level in levels(line, n as u32 + 1)
            .into_iter()
            .filter(|l| l.entry == entry)
        {
            if level.column < depth && below.as_ref().is_none_or(|b| level.column > b.column) {
                below = Some(level);
            } else if level.column > depth && above.as_ref().is_none_or(|a| level.column < a.column)
            {
                above = Some(level);
            }
        }
    }
    let what = if entry {
        "this list entry".to_owned()
    } else {
        key_and_value(here).map_or("this line".to_owned(), |(k, _)| format!("`{k}`"))
    };
    let others = if entry {
        "the entries of the list above it"
    } else {
        "the keys around it"
    };
    let options: Vec<String> = [below, above]
        .into_iter()
        .flatten()
        .map(|l| {
            format!(
                "column {} (like {} on line {})",
                l.column + 1,
                l.name,
                l.line
            )
        })
        .collect();
    if options.is_empty() {
        return None;
    }
    Some(format!(
        "the indentation is off: {what} starts in column {}, but {others} start in {}; \
         line it up with the one it belongs to",
        depth + 1,
        options.join(" or ")
    ))
}

/// A column a line opens for the lines after it: its list entry's dash, or its key.
#[derive(Clone)]
struct Level {
    column: usize,
    entry: bool,
    name: String,
    line: u32,
}

fn levels(line: &str, number: u32) -> Vec<Level> {
    let depth = indent(line);
    let mut out = Vec::new();
    let mut body = &line[depth..];
    let mut column = depth;
    if is_entry(line) {
        out.push(Level {
            column,
            entry: true,
            name: "the entry".into(),
            line: number,
        });
        let rest = body[1..].trim_start();
        column += body.len() - rest.len();
        body = rest;
    }
    if let Some((key, _)) = key_and_value(body) {
        out.push(Level {
            column,
            entry: false,
            name: format!("`{key}`"),
            line: number,
        });
    }
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_entry(line: &str) -> bool {
    let body = line.trim_start_matches(' ');
    body == "-" || body.starts_with("- ")
}

/// Rewrites the YAML reader's other messages in the words of someone editing a rule file.
fn friendlier(text: &str) -> String {
    if text.contains("found a tab") {
        return "a tab is used for indentation here, and YAML indents with spaces only: \
                replace the tab with spaces"
            .into();
    }
    if text.starts_with("while parsing a block mapping, did not find expected key") {
        return "the indentation is off: keys of one map must start in the same column".into();
    }
    for (open, close) in [('{', '}'), ('[', ']')] {
        if text.starts_with(&format!("unclosed bracket '{open}'")) {
            return format!(
                "the `{open}` opened here is not closed: end the value with `{close}` and \
                 separate its entries with `,` (or put the value in quotes if the `{open}` is \
                 part of the text)"
            );
        }
    }
    if text.starts_with("expected sequence start") {
        return "expected a list here (each entry starts with `- `)".into();
    }
    if text.starts_with("expected mapping start") {
        return "expected a map here (`key: value` lines), not a list or a single value".into();
    }
    if let Some(rest) = text.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        return format!("`{key}` appears twice in the same map; keep one");
    }
    if text.starts_with("invalid boolean") {
        return "expected `true` or `false` (`yes`, `no`, `on` and `off` are not booleans here)"
            .into();
    }
    text.to_owned()
}

/// "unknown field `x`", with the closest expected name or the list of them.
pub(super) fn unknown_name_message(what: &str, name: &str, expected: &[&str]) -> String {
    let mut message = format!("unknown {what} `{name}`");
    if let Some(best) = crate::rules::did_you_mean(name, expected.iter().copied()) {
        message.push_str(&format!(", did you mean `{best}`?"));
    } else if !expected.is_empty() {
        message.push_str(&format!(", expected one of: {}", expected.join(", ")));
    }
    message
}
