//! Calendars and the `hours` / `outside_hours` conditions.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;

use super::Compiler;
use crate::calendar::{Calendar, Opening, parse_between, parse_days};
use crate::config::{CalendarSpec, HoursSpec, Located};
use crate::rules::did_you_mean;

impl Compiler<'_> {
    /// Compiles a `calendars:` entry.
    pub(super) fn calendar(&mut self, spec: &Located<CalendarSpec>) -> Option<Calendar> {
        let c = &spec.value;
        let timezone = self.zone(c.timezone.as_ref());
        let mut open = Vec::new();
        for range in &c.open {
            if let Some(opening) = self.opening(
                &range.value.days,
                &range.value.between,
                range.line,
                range.column,
            ) {
                open.push(opening);
            }
        }
        if c.open.is_empty() {
            self.error(
                spec.line,
                spec.column,
                format!("calendar `{}` has no `open` hours", c.name.value),
            );
        }
        let mut closed = BTreeSet::new();
        for date in &c.closed {
            match NaiveDate::parse_from_str(date.value.trim(), "%Y-%m-%d") {
                Ok(d) => {
                    closed.insert(d);
                }
                Err(_) => self.error(
                    date.line,
                    date.column,
                    format!("invalid date `{}`, expected YYYY-MM-DD", date.value),
                ),
            }
        }
        (open.len() == c.open.len() && closed.len() <= c.closed.len() && !open.is_empty())
            .then_some(Calendar {
                name: c.name.value.clone(),
                timezone: timezone?,
                open,
                closed,
            })
    }

    fn opening(&mut self, days: &str, between: &str, line: u32, column: u32) -> Option<Opening> {
        let days = parse_days(days)
            .map_err(|e| self.error(line, column, e))
            .ok();
        let range = parse_between(between)
            .map_err(|e| self.error(line, column, e))
            .ok();
        let (start, end) = range?;
        Some(Opening {
            days: days?,
            start,
            end,
        })
    }

    /// Resolves `hours:` / `outside_hours:`: a calendar by name, or hours written in place.
    pub(super) fn hours(&mut self, spec: &Located<HoursSpec>) -> Option<Arc<Calendar>> {
        let h = &spec.value;
        let (line, column) = (spec.line, spec.column);
        if let Some(name) = &h.calendar {
            if h.days.is_some() || h.between.is_some() || h.timezone.is_some() {
                self.error(
                    line,
                    column,
                    "give either `calendar` or `days`/`between`/`timezone`, not both",
                );
                return None;
            }
            if let Some(cal) = self.calendars.get(name) {
                return Some(cal.clone());
            }
            let hint = did_you_mean(name, self.calendars.keys().map(String::as_str)).map_or_else(
                || " (define it under `calendars:`)".to_owned(),
                |b| format!(", did you mean `{b}`?"),
            );
            self.error(line, column, format!("unknown calendar `{name}`{hint}"));
            return None;
        }
        let (Some(days), Some(between)) = (&h.days, &h.between) else {
            self.error(
                line,
                column,
                "hours need `calendar`, or `days` and `between`",
            );
            return None;
        };
        let zone = h.timezone.as_ref().map(|z| Located {
            value: z.clone(),
            line,
            column,
        });
        let timezone = self.zone(zone.as_ref())?;
        let opening = self.opening(days, between, line, column)?;
        Some(Arc::new(Calendar {
            name: format!("{days} {between}"),
            timezone,
            open: vec![opening],
            closed: BTreeSet::new(),
        }))
    }
}
