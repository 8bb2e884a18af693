//! A value a filter cannot read (`tomorrow` piped to `date`). A filter only sees the value,
//! not where it came from; the error keeps the value, and [`explain`] names the variable from
//! the template's source, so the message says `data.time` is `tomorrow` rather than only that
//! something somewhere was.

use minijinja::{Error, ErrorKind};

/// Longest value quoted back in a message.
const SHOWN: usize = 60;

/// A value that is not what a filter reads.
#[derive(Debug, thiserror::Error)]
#[error("{filter}: {}", self.describe(None))]
pub(crate) struct BadValue {
    pub(crate) filter: &'static str,
    /// The value as written, `None` when it is undefined.
    pub(crate) value: Option<String>,
    /// What the filter reads, as a noun phrase: `a date (...)`.
    pub(crate) expected: &'static str,
}

impl BadValue {
    /// The template error carrying this value.
    pub(crate) fn into_error(self) -> Error {
        let kind = if self.value.is_none() {
            ErrorKind::UndefinedError
        } else {
            ErrorKind::InvalidOperation
        };
        Error::new(kind, self.to_string()).with_source(self)
    }

    fn describe(&self, field: Option<&str>) -> String {
        let value = self.value.as_deref().map(shorten);
        match (field, value) {
            (None, None) => format!("the value is undefined, not {}", self.expected),
            (Some(field), None) => format!("`{field}` is undefined, not {}", self.expected),
            (None, Some(value)) => format!("`{value}` is not {}", self.expected),
            (Some(field), Some(value)) => {
                format!("`{field}` is `{value}`, which is not {}", self.expected)
            }
        }
    }
}

fn shorten(value: &str) -> String {
    match value.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

/// The error of a failed render, naming the variable a [`BadValue`] came from when the filter
/// was applied to a variable (`data.time | date(...)`); other errors as they are.
pub(crate) fn explain(err: Error, source: &str) -> Error {
    let Some(bad) = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<BadValue>())
    else {
        return err;
    };
    let Some(field) = err
        .range()
        .and_then(|range| source.get(..range.start))
        .and_then(operand)
    else {
        return err;
    };
    let message = format!("{}: {}", bad.filter, bad.describe(Some(field)));
    Error::new(err.kind(), message)
}

/// The variable a filter written at the end of `before` is applied to: `data.time` in
/// `{{ data.time | `. Nothing when it is applied to a literal, a call or another filter.
fn operand(before: &str) -> Option<&str> {
    let before = before.trim_end().strip_suffix('|')?.trim_end();
    let start = before
        .rfind(|c: char| !(c.is_alphanumeric() || "_.[]'\"".contains(c)))
        .map_or(0, |i| {
            i + before[i..].chars().next().map_or(1, char::len_utf8)
        });
    let field = &before[start..];
    let first = field.chars().next()?;
    let after_filter = before[..start].trim_end().ends_with('|');
    (first.is_alphabetic() || first == '_')
        .then_some(field)
        .filter(|_| !after_filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operand_is_a_variable_not_a_literal_or_a_filter() {
        assert_eq!(operand("Hi {{ data.time | "), Some("data.time"));
        assert_eq!(operand("{{ data['when'] |"), Some("data['when']"));
        assert_eq!(operand("{% if now|"), Some("now"));
        assert_eq!(operand("{{ '2026-01-01' | "), None);
        assert_eq!(operand("{{ data.t | trim | "), None);
        assert_eq!(operand("{{ f(x) | "), None);
        assert_eq!(operand("{{ data.time "), None);
    }

    #[test]
    fn long_values_are_cut() {
        let bad = BadValue {
            filter: "date",
            value: Some("x".repeat(100)),
            expected: "a date",
        };
        assert_eq!(
            bad.to_string(),
            format!("date: `{}…` is not a date", "x".repeat(60))
        );
    }
}
