//! Opening hours: weekly ranges in a time zone, minus closed dates. Used by the `hours` and
//! `outside_hours` conditions and the `next_open` and `hours_today` template functions.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// One weekly opening range: these weekdays, from `start` to `end` local time.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    pub days: [bool; 7],
    pub start: NaiveTime,
    pub end: NaiveTime,
}

/// Compiled opening hours.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    pub name: String,
    pub timezone: Tz,
    pub open: Vec<Opening>,
    pub closed: BTreeSet<NaiveDate>,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn weekday(name: &str) -> Result<usize, String> {
    let lower = name.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| lower.starts_with(d) && (lower.len() == 3 || full_day(d).starts_with(&lower)))
        .ok_or_else(|| {
            format!(
                "unknown day `{}`, expected Mon, Tue, Wed, Thu, Fri, Sat or Sun",
                name.trim()
            )
        })
}

fn full_day(short: &str) -> &'static str {
    match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    }
}

/// Parses `Mon-Fri`, `Sat`, `Mon,Wed,Fri`, `Fri-Mon` (wrapping) or `daily`.
pub fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "daily" | "every day" | "all"
    ) {
        return Ok([true; 7]);
    }
    for part in text.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (weekday(from)?, weekday(to)?);
                let mut d = from;
                loop {
                    days[d] = true;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[weekday(part)?] = true,
        }
    }
    Ok(days)
}

/// Parses `09:00-18:00`. An end of `24:00` means midnight at the end of the day.
pub fn parse_between(text: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let bad = || format!("invalid time range `{text}`, expected e.g. `09:00-18:00`");
    let (from, to) = text.split_once('-').ok_or_else(bad)?;
    let start = NaiveTime::parse_from_str(from.trim(), "%H:%M").map_err(|_| bad())?;
    let end = if to.trim() == "24:00" {
        NaiveTime::from_hms_opt(23, 59, 59).ok_or_else(bad)?
    } else {
        NaiveTime::parse_from_str(to.trim(), "%H:%M").map_err(|_| bad())?
    };
    if end <= start {
        return Err(format!("time range `{text}` ends before it starts"));
    }
    Ok((start, end))
}

impl Calendar {
    /// Whether the calendar is open at an instant.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.timezone);
        if self.closed.contains(&local.date_naive()) {
            return false;
        }
        let day = local.weekday().num_days_from_monday() as usize;
        let time = local.time();
        self.open
            .iter()
            .any(|o| o.days[day] && o.start <= time && time < o.end)
    }

    /// The opening hours on a date, in order, with ranges that overlap or touch joined into
    /// one; none on a closed date.
    pub fn hours_on(&self, date: NaiveDate) -> Vec<(NaiveTime, NaiveTime)> {
        if self.closed.contains(&date) {
            return Vec::new();
        }
        let day = date.weekday().num_days_from_monday() as usize;
        let mut ranges: Vec<(NaiveTime, NaiveTime)> = self
            .open
            .iter()
            .filter(|o| o.days[day])
            .map(|o| (o.start, o.end))
            .collect();
        ranges.sort();
        let mut joined: Vec<(NaiveTime, NaiveTime)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match joined.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => joined.push((start, end)),
            }
        }
        joined
    }

    /// The next instant the calendar opens at or after `at` (within two weeks plus holidays).
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Tz>> {
        if self.is_open(at) {
            return Some(at.with_timezone(&self.timezone));
        }
        let start = at.with_timezone(&self.timezone).date_naive();
        for offset in 0..(14 + self.closed.len() as i64) {
            let date = start + Duration::days(offset);
            if self.closed.contains(&date) {
                continue;
            }
            let day = date.weekday().num_days_from_monday() as usize;
            let mut opens: Vec<NaiveTime> = self
                .open
                .iter()
                .filter(|o| o.days[day])
                .map(|o| o.start)
                .collect();
            opens.sort();
            for time in opens {
                let Some(local) = self
                    .timezone
                    .from_local_datetime(&date.and_time(time))
                    .earliest()
                else {
                    continue;
                };
                if local.with_timezone(&Utc) > at {
                    return Some(local);
                }
            }
        }
        None
    }
}

/// A weekday's short English name, for messages.
pub fn day_name(day: Weekday) -> &'static str {
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][day.num_days_from_monday() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office() -> Calendar {
        let (start, end) = parse_between("09:00-18:00").unwrap();
        let (sat_start, sat_end) = parse_between("10:00-14:00").unwrap();
        Calendar {
            name: "office".into(),
            timezone: chrono_tz::Europe::Berlin,
            open: vec![
                Opening {
                    days: parse_days("Mon-Fri").unwrap(),
                    start,
                    end,
                },
                Opening {
                    days: parse_days("Sat").unwrap(),
                    start: sat_start,
                    end: sat_end,
                },
            ],
            closed: [NaiveDate::from_ymd_opt(2026, 12, 24).unwrap()].into(),
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn open_in_local_time_not_utc() {
        let cal = office();
        // 08:30 UTC is 09:30 in Berlin in winter.
        assert!(cal.is_open(utc("2026-12-01T08:30:00Z")));
        assert!(!cal.is_open(utc("2026-12-01T07:30:00Z")));
        // 17:30 UTC is 18:30 Berlin: closed.
        assert!(!cal.is_open(utc("2026-12-01T17:30:00Z")));
        // Saturday 11:00 Berlin open, Sunday closed.
        assert!(cal.is_open(utc("2026-12-05T10:00:00Z")));
        assert!(!cal.is_open(utc("2026-12-06T10:00:00Z")));
        // Closed on a holiday that is a Thursday.
        assert!(!cal.is_open(utc("2026-12-24T10:00:00Z")));
    }

    #[test]
    fn next_opening_skips_nights_weekends_and_holidays() {
        let cal = office();
        let next = cal.next_open(utc("2026-12-05T15:00:00Z")).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-12-07T09:00:00+01:00");
        let next = cal.next_open(utc("2026-12-23T18:00:00Z")).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-12-25T09:00:00+01:00");
    }

    #[test]
    fn hours_on_a_day_join_overlaps_and_skip_holidays() {
        let mut cal = office();
        let (start, end) = parse_between("17:00-20:00").unwrap();
        cal.open.push(Opening {
            days: parse_days("Mon").unwrap(),
            start,
            end,
        });
        let (start, end) = parse_between("07:00-08:00").unwrap();
        cal.open.push(Opening {
            days: parse_days("Mon").unwrap(),
            start,
            end,
        });
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let text = |d: u32| {
            cal.hours_on(day(d))
                .iter()
                .map(|(s, e)| format!("{}-{}", s.format("%H:%M"), e.format("%H:%M")))
                .collect::<Vec<_>>()
        };
        // Monday 7 December: the early range, then 09-18 and 17-20 as one.
        assert_eq!(text(7), ["07:00-08:00", "09:00-20:00"]);
        assert_eq!(text(5), ["10:00-14:00"]);
        assert!(text(6).is_empty(), "Sunday");
        assert!(text(24).is_empty(), "a closed Thursday");
    }

    #[test]
    fn day_lists_and_bad_input() {
        assert_eq!(
            parse_days("Fri-Mon").unwrap(),
            [true, false, false, false, true, true, true]
        );
        assert_eq!(
            parse_days("mon,wed").unwrap(),
            [true, false, true, false, false, false, false]
        );
        assert!(
            parse_days("Mon-Fry")
                .unwrap_err()
                .contains("unknown day `Fry`")
        );
        assert!(parse_between("18:00-09:00").is_err());
        assert!(parse_between("9-5").is_err());
    }
}
