//! CSV cells a spreadsheet opens safely. A cell that starts with `=`, `+`, `-`, `@`, a tab or a
//! carriage return is run as a formula by Excel, LibreOffice and Google Sheets, and contact
//! names and attributes come from the people who write in: such a cell is written with a
//! leading `'`, which spreadsheets read as "text". Reading strips that one `'` again, so
//! `contacts export` then `contacts import` gives back the same values (a `-5%` discount, a
//! `+49…` number).

use std::borrow::Cow;

/// The characters that make a spreadsheet treat a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether `text` is some `'`s and then a formula start: the cells written with one more `'`,
/// so that reading takes exactly one away.
fn quoted_formula(text: &str) -> bool {
    text.trim_start_matches('\'').starts_with(FORMULA_START)
}

/// The cell as written to a CSV file: a formula start gets a leading `'`.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    if quoted_formula(text) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The value of a cell read from a CSV file: the `'` [`neutralise`] added is taken away.
pub fn restore(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if quoted_formula(rest) => rest,
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_quoted_and_read_back_unchanged() {
        for value in [
            "=HYPERLINK(\"http://evil.example\",\"click\")",
            "+4915112345678",
            "-5%",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "'=already quoted",
            "''-twice",
        ] {
            let written = neutralise(value);
            assert!(
                written.starts_with('\''),
                "{value:?} written as {written:?}"
            );
            assert_eq!(restore(&written), value);
        }
    }

    #[test]
    fn plain_cells_are_left_alone() {
        for value in [
            "4915112345678",
            "Anna",
            "",
            "'",
            "it's",
            "'quoted",
            "a=b",
            " =1",
        ] {
            assert_eq!(neutralise(value), value);
            assert_eq!(restore(value), value);
        }
    }
}
