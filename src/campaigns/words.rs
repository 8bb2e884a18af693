//! A cron schedule in words for the console (`0 9 * * MON` → "every Monday at 09:00"). Only
//! the shapes people write are put in words; anything else is left as the cron text.

use crate::templates::locales::DEFAULT as ENGLISH;

/// The schedule in words, or `None` when its shape is not one put in words.
pub fn in_words(schedule: &str) -> Option<String> {
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    let [minute, hour, day, month, weekday] = match fields.as_slice() {
        [m, h, d, mo, w] => [*m, *h, *d, *mo, *w],
        // Six fields: seconds first; only a fire on the minute is put in words.
        ["0", m, h, d, mo, w] => [*m, *h, *d, *mo, *w],
        _ => return None,
    };
    let when = time_of_day(minute, hour)?;
    let days = match (day, month, weekday) {
        ("*", "*", "*") => "every day".to_owned(),
        ("*", "*", w) => format!("every {}", weekdays(w)?),
        (d, "*", "*") => format!("on day {} of every month", number(d, 1, 31)?),
        (d, m, "*") => format!("every year on {} {}", number(d, 1, 31)?, month_name(m)?),
        _ => return None,
    };
    if days == "every day" && when.starts_with("every ") {
        return Some(when);
    }
    Some(format!("{days} {when}"))
}

fn time_of_day(minute: &str, hour: &str) -> Option<String> {
    if let Some(step) = minute.strip_prefix("*/")
        && hour == "*"
    {
        return Some(format!("every {} minutes", number(step, 1, 59)?));
    }
    let minute = number(minute, 0, 59)?;
    if hour == "*" {
        return Some(format!("every hour at {minute:02} minutes past"));
    }
    let hours: Vec<u32> = hour
        .split(',')
        .map(|h| number(h, 0, 23))
        .collect::<Option<_>>()?;
    let times: Vec<String> = hours
        .iter()
        .map(|h| format!("{h:02}:{minute:02}"))
        .collect();
    Some(format!("at {}", joined(&times)))
}

fn weekdays(field: &str) -> Option<String> {
    if let Some((from, to)) = field.split_once('-') {
        return Some(format!("{} to {}", weekday(from)?, weekday(to)?));
    }
    let names: Vec<String> = field
        .split(',')
        .map(|d| weekday(d).map(str::to_owned))
        .collect::<Option<_>>()?;
    Some(joined(&names))
}

fn weekday(field: &str) -> Option<&'static str> {
    // Cron counts from Sunday (0, and 7 again); the names start on Monday.
    if let Ok(n) = field.parse::<usize>() {
        return ENGLISH.days.get((n + 6) % 7).copied();
    }
    ENGLISH
        .days
        .iter()
        .find(|d| d[..3].eq_ignore_ascii_case(field))
        .copied()
}

fn month_name(field: &str) -> Option<&'static str> {
    if let Ok(n) = field.parse::<usize>() {
        return ENGLISH.months.get(n.checked_sub(1)?).copied();
    }
    ENGLISH
        .months
        .iter()
        .find(|m| m[..3].eq_ignore_ascii_case(field))
        .copied()
}

fn number(field: &str, low: u32, high: u32) -> Option<u32> {
    field.parse().ok().filter(|n| (low..=high).contains(n))
}

/// `a`, `a and b`, `a, b and c`.
fn joined(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::in_words;

    #[test]
    fn the_shapes_people_write_read_as_words() {
        for (cron, words) in [
            ("0 9 * * MON", "every Monday at 09:00"),
            ("30 18 * * 1-5", "every Monday to Friday at 18:30"),
            ("0 9 * * *", "every day at 09:00"),
            (
                "0 9,17 * * SAT,SUN",
                "every Saturday and Sunday at 09:00 and 17:00",
            ),
            ("0 10 1 * *", "on day 1 of every month at 10:00"),
            ("0 10 1 1 *", "every year on 1 January at 10:00"),
            ("*/15 * * * *", "every 15 minutes"),
            ("0 0 9 * * 7", "every Sunday at 09:00"),
        ] {
            assert_eq!(in_words(cron).as_deref(), Some(words), "{cron}");
        }
    }

    #[test]
    fn other_shapes_are_left_as_cron() {
        for cron in ["0 9 1 * MON", "0 9 L * *", "0 9-17/2 * * *", "30 0 9 * * *"] {
            assert_eq!(in_words(cron), None, "{cron}");
        }
    }
}
