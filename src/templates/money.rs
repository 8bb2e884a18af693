//! Amounts as people write them: `{{ 42.5 | money("EUR", "de") }}` → `42,50 €`. The amount is
//! rounded to the currency's minor units (half away from zero, on the decimal digits as
//! written, so `2.675` is `2.68` although the nearest binary float is below it) and written
//! with the language's separators and symbol position.

use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};

use super::bad_value::BadValue;
use super::locales::{self, Locale, NBSP};

/// A currency the `money` filter writes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Currency {
    pub(crate) code: &'static str,
    symbol: &'static str,
    /// Digits after the decimal separator.
    minor: usize,
}

/// The currencies `money` knows, by ISO 4217 code.
pub(crate) const CURRENCIES: [Currency; 7] = [
    Currency {
        code: "EUR",
        symbol: "€",
        minor: 2,
    },
    Currency {
        code: "USD",
        symbol: "$",
        minor: 2,
    },
    Currency {
        code: "GBP",
        symbol: "£",
        minor: 2,
    },
    Currency {
        code: "RON",
        symbol: "RON",
        minor: 2,
    },
    Currency {
        code: "BRL",
        symbol: "R$",
        minor: 2,
    },
    Currency {
        code: "CHF",
        symbol: "CHF",
        minor: 2,
    },
    Currency {
        code: "JPY",
        symbol: "¥",
        minor: 0,
    },
];

const EXPECTED: &str = "an amount (a number, or text like `42.50`)";

impl Currency {
    /// The currency with this code, or why there is none.
    pub(crate) fn named(code: &str) -> Result<&'static Self, String> {
        CURRENCIES.iter().find(|c| c.code == code).ok_or_else(|| {
            let codes: Vec<&str> = CURRENCIES.iter().map(|c| c.code).collect();
            let upper = code.to_ascii_uppercase();
            let hint = crate::rules::did_you_mean(&upper, codes.iter().copied())
                .map_or_else(String::new, |b| format!(", did you mean `{b}`?"));
            format!(
                "money: unknown currency `{code}`{hint} (currencies: {})",
                codes.join(", ")
            )
        })
    }

    /// The symbol as `locale` writes it: Romanian writes its own currency `lei`.
    fn symbol(&self, locale: &Locale) -> &'static str {
        match (self.code, locale.code) {
            ("RON", "ro") => "lei",
            _ => self.symbol,
        }
    }
}

/// An amount read as decimal digits, so rounding works on what was written.
#[derive(Debug, PartialEq)]
struct Amount {
    negative: bool,
    whole: String,
    fraction: String,
}

/// Reads `-1234.5`, `+3`, `.5` (a number, or text holding one, without separators).
fn read_text(text: &str) -> Option<Amount> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    Some(Amount {
        negative,
        whole: whole.to_owned(),
        fraction: fraction.to_owned(),
    })
}

fn read(value: &Value) -> Result<Amount, BadValue> {
    let bad = |value: Option<String>| BadValue {
        filter: "money",
        value,
        expected: EXPECTED,
    };
    match value.kind() {
        ValueKind::Undefined => Err(bad(None)),
        // A float writes itself in plain decimals (`1e21` as twenty-two digits), never NaN
        // or infinity in a form `read_text` accepts.
        ValueKind::Number | ValueKind::String => {
            let text = value.to_string();
            read_text(&text).ok_or_else(|| bad(Some(text)))
        }
        _ => Err(bad(Some(value.to_string()))),
    }
}

/// Whether a literal piped to `money` reads as an amount, and if not, why.
pub(super) fn check_input(value: &Value) -> Result<(), String> {
    read(value).map(|_| ()).map_err(|bad| bad.to_string())
}

impl Amount {
    /// Rounded to `minor` decimals, half away from zero: the whole part and the decimals.
    fn rounded(&self, minor: usize) -> (String, String) {
        let mut digits: Vec<u8> = self.whole.bytes().collect();
        digits.extend(
            self.fraction
                .bytes()
                .chain(std::iter::repeat(b'0'))
                .take(minor),
        );
        let up = self
            .fraction
            .as_bytes()
            .get(minor)
            .is_some_and(|d| *d >= b'5');
        if up {
            let carried = digits.iter_mut().rev().all(|d| {
                if *d == b'9' {
                    *d = b'0';
                    true
                } else {
                    *d += 1;
                    false
                }
            });
            if carried {
                digits.insert(0, b'1');
            }
        }
        let fraction = digits.split_off(digits.len() - minor);
        let start = digits
            .iter()
            .position(|d| *d != b'0')
            .unwrap_or(digits.len());
        let whole = match &digits[start..] {
            [] => "0".to_owned(),
            rest => String::from_utf8_lossy(rest).into_owned(),
        };
        (whole, String::from_utf8_lossy(&fraction).into_owned())
    }
}

/// Writes an amount in a currency as `locale` does.
fn write(amount: &Amount, currency: &Currency, locale: &Locale) -> String {
    let (whole, fraction) = amount.rounded(currency.minor);
    let zero = whole == "0" && fraction.bytes().all(|d| d == b'0');
    let mut number = String::new();
    let grouped = whole.len() >= locale.group_from;
    for (i, digit) in whole.chars().enumerate() {
        if grouped && i > 0 && (whole.len() - i) % 3 == 0 {
            number.push(locale.group);
        }
        number.push(digit);
    }
    if !fraction.is_empty() {
        number.push(locale.decimal);
        number.push_str(&fraction);
    }
    let symbol = currency.symbol(locale);
    let sign = if amount.negative && !zero { "-" } else { "" };
    if locale.symbol_first {
        let spaced = locale.symbol_spaced || symbol.ends_with(char::is_alphabetic);
        let space = if spaced {
            NBSP.to_string()
        } else {
            String::new()
        };
        format!("{sign}{symbol}{space}{number}")
    } else {
        format!("{sign}{number}{NBSP}{symbol}")
    }
}

/// `{{ amount | money(currency, locale) }}`: the amount in a currency, as the language
/// (default `en`) writes it.
pub(super) fn money(value: &Value, currency: &str, locale: Option<&str>) -> Result<String, Error> {
    let invalid = |message: String| Error::new(ErrorKind::InvalidOperation, message);
    let currency = Currency::named(currency).map_err(invalid)?;
    let locale = locale.map_or(Ok(locales::DEFAULT), |code| locales::named("money", code));
    let locale = locale.map_err(invalid)?;
    let amount = read(value).map_err(BadValue::into_error)?;
    Ok(write(&amount, currency, locale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money_in(value: impl Into<Value>, currency: &str, locale: &str) -> String {
        money(&value.into(), currency, Some(locale))
            .unwrap()
            .replace(NBSP, " ")
    }

    #[test]
    fn each_language_writes_amounts_its_way() {
        let cases = [
            ("en", "EUR", "€1,234.50"),
            ("en", "USD", "$1,234.50"),
            ("en", "GBP", "£1,234.50"),
            ("en", "CHF", "CHF 1,234.50"),
            ("de", "EUR", "1.234,50 €"),
            ("de", "CHF", "1.234,50 CHF"),
            ("es", "EUR", "1234,50 €"),
            ("pt", "BRL", "R$ 1.234,50"),
            ("fr", "EUR", "1 234,50 €"),
            ("it", "EUR", "1.234,50 €"),
            ("ro", "RON", "1.234,50 lei"),
            ("en", "RON", "RON 1,234.50"),
            ("en", "JPY", "¥1,235"),
            ("de", "JPY", "1.235 ¥"),
        ];
        for (locale, currency, expected) in cases {
            assert_eq!(
                money_in(1234.5, currency, locale),
                expected,
                "{locale} {currency}"
            );
        }
        assert_eq!(money_in(42.5, "EUR", "de"), "42,50 €");
        assert_eq!(money_in(12345.5, "EUR", "es"), "12.345,50 €");
        assert_eq!(money_in(1234567, "USD", "en"), "$1,234,567.00");
    }

    #[test]
    fn the_space_before_a_symbol_does_not_break() {
        assert_eq!(
            money(&Value::from(42.5), "EUR", Some("de")).unwrap(),
            "42,50\u{a0}€"
        );
        assert_eq!(
            money(&Value::from(1234), "EUR", Some("fr")).unwrap(),
            "1\u{a0}234,00\u{a0}€"
        );
    }

    #[test]
    fn rounds_half_away_from_zero_on_the_written_digits() {
        assert_eq!(money_in(2.675, "EUR", "en"), "€2.68");
        assert_eq!(money_in(2.665, "EUR", "en"), "€2.67");
        assert_eq!(money_in(-2.675, "EUR", "en"), "-€2.68");
        assert_eq!(money_in(9.995, "EUR", "en"), "€10.00");
        assert_eq!(money_in(999.995, "EUR", "en"), "€1,000.00");
        assert_eq!(money_in(0.5, "JPY", "en"), "¥1");
        assert_eq!(money_in(-0.004, "EUR", "de"), "0,00 €");
        assert_eq!(money_in(-1234.5, "EUR", "de"), "-1.234,50 €");
        assert_eq!(money_in(-3, "BRL", "pt"), "-R$ 3,00");
        assert_eq!(
            money_in(1e21, "USD", "en"),
            "$1,000,000,000,000,000,000,000.00"
        );
    }

    #[test]
    fn reads_numbers_and_numeric_text() {
        assert_eq!(money_in("42.5", "EUR", "de"), "42,50 €");
        assert_eq!(money_in(" -7 ", "EUR", "de"), "-7,00 €");
        assert_eq!(money_in(".5", "EUR", "en"), "€0.50");
        assert_eq!(money_in("007.10", "EUR", "en"), "€7.10");
        for bad in ["42,50", "1,234.50", "ten", "", "-", ".", "1e3", "€5"] {
            let err = money(&Value::from(bad), "EUR", None).unwrap_err();
            assert!(err.to_string().contains("is not an amount"), "{bad}: {err}");
        }
        assert!(money(&Value::from(f64::INFINITY), "EUR", None).is_err());
        let err = money(&Value::UNDEFINED, "EUR", None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UndefinedError);
    }

    #[test]
    fn unknown_currencies_and_locales_are_named() {
        assert_eq!(
            Currency::named("eur").unwrap_err(),
            "money: unknown currency `eur`, did you mean `EUR`? \
             (currencies: EUR, USD, GBP, RON, BRL, CHF, JPY)"
        );
        let err = money(&Value::from(1), "EUR", Some("english")).unwrap_err();
        assert!(
            err.to_string().contains("unknown locale `english`"),
            "{err}"
        );
    }
}
