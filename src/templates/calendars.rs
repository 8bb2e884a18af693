//! The template functions on calendars: `next_open('CALENDAR')` (when it next opens) and
//! `hours_today('CALENDAR')` (`07:00–18:00`, or empty when it is closed today). Both read the
//! time of the event from `now`, so a rule test's virtual clock moves them too, and answer in
//! the calendar's own zone.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveTime, Utc};
use minijinja::{Environment, Error, ErrorKind, State};

use super::{dates, locales};
use crate::calendar::Calendar;

/// The functions that name a calendar, for the checks of their literal arguments.
pub(super) const FUNCTIONS: [&str; 2] = ["next_open", "hours_today"];

/// Adds the calendar functions over these calendars to `env`, replacing earlier ones.
pub(super) fn add(env: &mut Environment<'static>, calendars: HashMap<String, Arc<Calendar>>) {
    let calendars = Arc::new(calendars);
    let by_name = calendars.clone();
    env.add_function(
        "next_open",
        move |state: &State<'_, '_>, name: &str, format: Option<&str>| {
            let calendar = find(&by_name, name)?;
            let Some(next) = calendar.next_open(now(state)) else {
                return Ok(String::new());
            };
            let format = format.unwrap_or("%A %H:%M");
            dates::write("next_open", &next, format, locales::DEFAULT)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e))
        },
    );
    env.add_function(
        "hours_today",
        move |state: &State<'_, '_>, name: &str| -> Result<String, Error> {
            let calendar = find(&calendars, name)?;
            let today = now(state).with_timezone(&calendar.timezone).date_naive();
            Ok(hours_text(&calendar.hours_on(today)))
        },
    );
}

fn find<'a>(
    calendars: &'a HashMap<String, Arc<Calendar>>,
    name: &str,
) -> Result<&'a Calendar, Error> {
    calendars.get(name).map(|c| &**c).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("unknown calendar `{name}`"),
        )
    })
}

/// The time of the event being rendered (`now`), or the clock's when there is none.
fn now(state: &State<'_, '_>) -> DateTime<Utc> {
    state
        .lookup("now")
        .and_then(|v| {
            v.as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        })
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
}

/// `07:00–18:00`, ranges joined with `, `; the end of the day (kept as 23:59:59) as `24:00`.
fn hours_text(ranges: &[(NaiveTime, NaiveTime)]) -> String {
    let end_of_day = NaiveTime::from_hms_opt(23, 59, 59);
    let time = |t: NaiveTime| {
        if Some(t) == end_of_day {
            "24:00".to_owned()
        } else {
            t.format("%H:%M").to_string()
        }
    };
    ranges
        .iter()
        .map(|(start, end)| format!("{}\u{2013}{}", time(*start), time(*end)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{Opening, parse_between, parse_days};
    use minijinja::context;

    fn bakery() -> HashMap<String, Arc<Calendar>> {
        let open = |days: &str, between: &str| {
            let (start, end) = parse_between(between).unwrap();
            Opening {
                days: parse_days(days).unwrap(),
                start,
                end,
            }
        };
        let calendar = Calendar {
            name: "bakery".into(),
            timezone: chrono_tz::Europe::Berlin,
            open: vec![
                open("Mon-Fri", "07:00-18:00"),
                open("Sat", "07:00-12:00"),
                open("Sat", "14:00-24:00"),
            ],
            closed: [chrono::NaiveDate::from_ymd_opt(2026, 12, 24).unwrap()].into(),
        };
        HashMap::from([("bakery".to_owned(), Arc::new(calendar))])
    }

    fn render(source: &str, now: &str) -> Result<String, Error> {
        let mut env = Environment::new();
        add(&mut env, bakery());
        env.render_str(source, context! { now => now })
    }

    #[test]
    fn hours_today_in_the_calendars_zone() {
        let hours = "{{ hours_today('bakery') }}";
        assert_eq!(
            render(hours, "2026-03-03T12:00:00Z").unwrap(),
            "07:00\u{2013}18:00"
        );
        assert_eq!(
            render(hours, "2026-03-07T09:00:00Z").unwrap(),
            "07:00\u{2013}12:00, 14:00\u{2013}24:00"
        );
        // 23:30 UTC on Saturday is already Sunday in Berlin: closed.
        assert_eq!(render(hours, "2026-03-07T23:30:00Z").unwrap(), "");
        assert_eq!(
            render(hours, "2026-12-24T09:00:00Z").unwrap(),
            "",
            "holiday"
        );
        let answer =
            "{% set h = hours_today('bakery') %}{% if h %}open {{ h }}{% else %}closed{% endif %}";
        assert_eq!(render(answer, "2026-03-08T09:00:00Z").unwrap(), "closed");
    }

    #[test]
    fn next_open_takes_a_format() {
        assert_eq!(
            render("{{ next_open('bakery') }}", "2026-03-08T09:00:00Z").unwrap(),
            "Monday 07:00"
        );
        assert_eq!(
            render(
                "{{ next_open('bakery', '%d.%m. %H:%M') }}",
                "2026-03-08T09:00:00Z"
            )
            .unwrap(),
            "09.03. 07:00"
        );
        let err = render("{{ next_open('bakery', '%Q') }}", "2026-03-08T09:00:00Z").unwrap_err();
        assert!(err.to_string().contains("next_open: `%Q`"), "{err}");
        let err = render("{{ hours_today('bakry') }}", "2026-03-08T09:00:00Z").unwrap_err();
        assert!(
            err.to_string().contains("unknown calendar `bakry`"),
            "{err}"
        );
    }
}
