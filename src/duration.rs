//! Durations as rule authors write them: `90s`, `15m`, `2h`, `3d`, `1h30m`.

use std::time::Duration;

/// Parses a duration of one or more `<number><unit>` parts (units `ms`, `s`, `m`, `h`, `d`, `w`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration, expected e.g. `90s`, `2h` or `3d`".into());
    }
    if text.contains(char::is_whitespace) {
        return Err(format!(
            "invalid duration `{text}`: write it without spaces, e.g. `90s`, `2h` or `3d`"
        ));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration `{text}`, expected e.g. `90s`, `2h` or `3d`"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("number too large in `{text}`"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds = match unit {
            "ms" => {
                total += Duration::from_millis(number);
                continue;
            }
            "s" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            "" => {
                return Err(format!(
                    "duration `{text}` needs a unit: `{number}s`, `{number}m`, `{number}h` or `{number}d`"
                ));
            }
            other => {
                return Err(format!(
                    "unknown unit `{other}` in duration `{text}`, expected ms, s, m, h, d or w"
                ));
            }
        };
        total += Duration::from_secs(number.saturating_mul(seconds));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        assert!(parse("10").unwrap_err().contains("needs a unit"));
        assert!(parse("3 days").is_err());
        assert!(parse("h").is_err());
    }
}
