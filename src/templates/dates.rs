//! Dates as people write them: the `date` filter (`{{ data.time | date("%A %d.%m.", "de") }}`
//! → `Dienstag 03.03.`) and the `today` variable, both in the time zone of the rule or
//! campaign that renders them.
//!
//! The zone travels in the render context under [`ZONE`], a name no template can write (it is
//! not among the variables `check` knows), so one compiled template serves rules in different
//! zones.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::format::{Fixed, Item, StrftimeItems};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use minijinja::value::{Object, ObjectRepr, ValueKind};
use minijinja::{Error, ErrorKind, State, Value};

use super::bad_value::BadValue;
use super::locales::{self, Locale};

/// The context key that holds the zone of the rule or campaign rendering a template.
pub const ZONE: &str = "__zone__";

/// The format `date` writes without one: a local date and time, as `at:` reads it.
const DEFAULT_FORMAT: &str = "%Y-%m-%d %H:%M";

/// What `date` reads, for messages.
pub(crate) const ACCEPTED: &str = "a date (RFC 3339 like `2026-03-03T14:30:00+01:00`, \
                                   `2026-03-03`, `2026-03-03 14:30`, or Unix seconds)";

/// Local date and time forms, read in the rule's zone.
const LOCAL_FORMATS: [&str; 4] = [
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
];

/// RFC 3339 with a space for the `T`, as databases write it.
const SPACED_RFC3339: &str = "%Y-%m-%d %H:%M:%S%.f%:z";

/// A time zone in the render context. Kept as JSON (the variables a lookup's job stores) it is
/// its name, which [`zone`] reads back.
#[derive(Debug)]
struct Zone(Tz);

impl Object for Zone {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name())
    }
}

/// The context value of `zone` under [`ZONE`] (`__zone__ => zone_value(zone)`).
pub fn zone_value(zone: Tz) -> Value {
    Value::from_object(Zone(zone))
}

/// `today`: the date at `now` in `zone`, as `2026-03-03`.
pub fn today(now: DateTime<Utc>, zone: Tz) -> String {
    now.with_timezone(&zone).date_naive().to_string()
}

/// The zone of the rule or campaign rendering: an object, or a name where the context was
/// kept as JSON (a follow-up's `unless`); UTC when the context has none.
pub(super) fn zone(state: &State<'_, '_>) -> Tz {
    state.lookup(ZONE).map_or(Tz::UTC, |value| {
        value
            .downcast_object_ref::<Zone>()
            .map(|z| z.0)
            .or_else(|| value.as_str().and_then(|name| name.parse().ok()))
            .unwrap_or(Tz::UTC)
    })
}

/// A time as read: an instant, or a local date and time without a zone.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Moment {
    Instant(DateTime<FixedOffset>),
    Local(NaiveDateTime),
}

impl Moment {
    /// The time in `zone`: an instant converted to it, a local time taken as written (in a
    /// daylight-saving gap, an hour later, as `at:` does).
    fn in_zone(self, zone: Tz) -> Option<DateTime<Tz>> {
        match self {
            Self::Instant(t) => Some(t.with_timezone(&zone)),
            Self::Local(local) => zone.from_local_datetime(&local).earliest().or_else(|| {
                zone.from_local_datetime(&(local + chrono::Duration::hours(1)))
                    .earliest()
            }),
        }
    }
}

/// Reads a date written as text.
fn read_text(text: &str) -> Option<Moment> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(Moment::Instant(t));
    }
    if let Ok(t) = DateTime::parse_from_str(text, SPACED_RFC3339) {
        return Some(Moment::Instant(t));
    }
    if let Some(t) = LOCAL_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    {
        return Some(Moment::Local(t));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| Moment::Local(d.and_time(chrono::NaiveTime::MIN)))
}

/// Reads a template value as a time: text in one of the accepted forms, or Unix seconds.
fn read(value: &Value) -> Result<Moment, BadValue> {
    let bad = |value: Option<String>| BadValue {
        filter: "date",
        value,
        expected: ACCEPTED,
    };
    match value.kind() {
        ValueKind::Undefined => Err(bad(None)),
        ValueKind::String => value
            .as_str()
            .and_then(read_text)
            .ok_or_else(|| bad(Some(value.to_string()))),
        ValueKind::Number => seconds(value).ok_or_else(|| bad(Some(value.to_string()))),
        _ => Err(bad(Some(value.to_string()))),
    }
}

fn seconds(value: &Value) -> Option<Moment> {
    let t = match value.as_i64() {
        Some(secs) => DateTime::from_timestamp(secs, 0)?,
        None => {
            let secs = f64::try_from(value.clone()).ok()?;
            if !secs.is_finite() {
                return None;
            }
            DateTime::from_timestamp_millis((secs * 1000.0).round() as i64)?
        }
    };
    Some(Moment::Instant(t.fixed_offset()))
}

/// Whether a literal piped to `date` reads as a time, and if not, why.
pub(super) fn check_input(value: &Value) -> Result<(), String> {
    read(value).map(|_| ()).map_err(|bad| bad.to_string())
}

/// `{{ value | date(format, locale) }}`: the time in the rule's zone, written with a strftime
/// format (default `%Y-%m-%d %H:%M`) and day and month names in a language (default `en`).
pub(super) fn date(
    state: &State<'_, '_>,
    value: &Value,
    format: Option<&str>,
    locale: Option<&str>,
) -> Result<String, Error> {
    let invalid = |message: String| Error::new(ErrorKind::InvalidOperation, message);
    let locale = locale.map_or(Ok(locales::DEFAULT), |code| locales::named("date", code));
    let locale = locale.map_err(invalid)?;
    let zone = zone(state);
    let time = read(value)
        .map_err(BadValue::into_error)?
        .in_zone(zone)
        .ok_or_else(|| invalid(format!("date: `{value}` does not exist in {zone}")))?;
    write("date", &time, format.unwrap_or(DEFAULT_FORMAT), locale).map_err(invalid)
}

/// Writes a time with a strftime format, day and month names in `locale`; a bad format is an
/// error of `filter`.
pub(crate) fn write<Z: TimeZone>(
    filter: &str,
    time: &DateTime<Z>,
    format: &str,
    locale: &'static Locale,
) -> Result<String, String>
where
    Z::Offset: std::fmt::Display,
{
    let day = time.weekday().num_days_from_monday() as usize;
    let month = time.month0() as usize;
    let items = StrftimeItems::new(format).map(|item| match item {
        Item::Fixed(Fixed::LongWeekdayName) => Item::Literal(locale.days[day]),
        Item::Fixed(Fixed::ShortWeekdayName) => Item::Literal(locale.days_short[day]),
        Item::Fixed(Fixed::LongMonthName) => Item::Literal(locale.months[month]),
        Item::Fixed(Fixed::ShortMonthName) => Item::Literal(locale.months_short[month]),
        other => other,
    });
    let mut out = String::new();
    // A bad `%` code makes chrono's formatter fail, where `to_string` would panic.
    match write!(out, "{}", time.format_with_items(items)) {
        Ok(()) => Ok(out),
        Err(_) => Err(check_format(filter, format)
            .err()
            .unwrap_or_else(|| format!("{filter}: cannot write the format `{format}`"))),
    }
}

/// Whether a strftime format is valid, and if not, the `%` code that is not.
pub(crate) fn check_format(filter: &str, format: &str) -> Result<(), String> {
    let mut rest = format;
    while let Some(at) = rest.find('%') {
        rest = &rest[at..];
        // The shortest valid code here: `%d`, `%-d`, `%.3f`, `%::z`.
        let ends = rest.char_indices().map(|(i, c)| i + c.len_utf8()).skip(1);
        let valid = ends
            .take(4)
            .find(|&end| !StrftimeItems::new(&rest[..end]).any(|i| matches!(i, Item::Error)));
        let Some(end) = valid else {
            let code: String = rest.chars().take(2).collect();
            return Err(format!(
                "{filter}: `{code}` in `{format}` is not a strftime code \
                 (e.g. %A weekday, %d day, %B month, %m, %Y, %H:%M)"
            ));
        };
        rest = &rest[end..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::{Environment, context};

    fn render(source: &str, ctx: Value) -> Result<String, Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_filter("date", date);
        env.render_str(source, ctx)
    }

    fn berlin() -> Value {
        zone_value(chrono_tz::Europe::Berlin)
    }

    #[test]
    fn names_days_and_months_in_seven_languages() {
        let ctx = context! { t => "2026-03-03 14:30", __zone__ => berlin() };
        let cases = [
            ("en", "Tuesday Tue 03 March Mar"),
            ("de", "Dienstag Di 03 März Mär"),
            ("es", "martes mar 03 marzo mar"),
            ("pt", "terça-feira ter 03 março mar"),
            ("fr", "mardi mar 03 mars mars"),
            ("it", "martedì mar 03 marzo mar"),
            ("ro", "marți mar 03 martie mar"),
        ];
        for (locale, expected) in cases {
            let source = format!("{{{{ t | date('%A %a %d %B %b', '{locale}') }}}}");
            assert_eq!(render(&source, ctx.clone()).unwrap(), expected, "{locale}");
        }
        assert_eq!(
            render("{{ t | date('%A %d.%m. %H:%M', 'de') }}", ctx).unwrap(),
            "Dienstag 03.03. 14:30"
        );
    }

    #[test]
    fn reads_every_accepted_form_in_the_rule_zone() {
        let cases = [
            // An offset is converted to the rule's zone: 13:30 UTC is 14:30 in Berlin.
            ("2026-03-03T13:30:00Z", "03.03.2026 14:30"),
            ("2026-03-03T08:30:00-05:00", "03.03.2026 14:30"),
            ("2026-03-03T14:30:00.250+01:00", "03.03.2026 14:30"),
            ("2026-03-03 13:30:00+00:00", "03.03.2026 14:30"),
            // Without an offset it is already local.
            ("2026-03-03 14:30", "03.03.2026 14:30"),
            ("2026-03-03T14:30", "03.03.2026 14:30"),
            ("2026-03-03 14:30:59", "03.03.2026 14:30"),
            ("2026-03-03", "03.03.2026 00:00"),
            ("  2026-03-03 ", "03.03.2026 00:00"),
        ];
        for (input, expected) in cases {
            let ctx = context! { t => input, __zone__ => berlin() };
            let out = render("{{ t | date('%d.%m.%Y %H:%M') }}", ctx).unwrap();
            assert_eq!(out, expected, "{input}");
        }
        // WhatsApp's Unix seconds, as a whole or a fractional number.
        let ctx = context! { t => 1_772_544_600, f => 1_772_544_600.4, __zone__ => berlin() };
        assert_eq!(
            render("{{ t | date('%H:%M') }} {{ f | date('%H:%M:%S') }}", ctx).unwrap(),
            "14:30 14:30:00"
        );
    }

    #[test]
    fn without_a_zone_or_arguments_it_writes_utc_iso() {
        let ctx = context! { t => "2026-03-03T13:30:00+00:00" };
        assert_eq!(render("{{ t | date }}", ctx).unwrap(), "2026-03-03 13:30");
        // As kept in a follow-up's JSON, the zone is a name.
        let ctx = context! { t => "2026-07-01T12:00:00Z", __zone__ => "America/New_York" };
        assert_eq!(
            render("{{ t | date('%H:%M %Z') }}", ctx).unwrap(),
            "08:00 EDT"
        );
    }

    #[test]
    fn the_zone_is_kept_as_its_name() {
        let ctx = context! { today => "2026-03-03", __zone__ => berlin() };
        let json = serde_json::to_value(&ctx).unwrap();
        assert_eq!(json["__zone__"], "Europe/Berlin");
        let kept = crate::templates::to_value(&json);
        assert_eq!(
            render("{{ '2026-03-03T12:00:00Z' | date('%H:%M') }}", kept).unwrap(),
            "13:00"
        );
    }

    #[test]
    fn today_is_the_date_in_the_zone() {
        let now = DateTime::parse_from_rfc3339("2026-03-03T23:30:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(today(now, Tz::UTC), "2026-03-03");
        assert_eq!(today(now, chrono_tz::Europe::Berlin), "2026-03-04");
        let ctx = context! { today => today(now, chrono_tz::Europe::Berlin), __zone__ => berlin() };
        assert_eq!(
            render("{{ today | date('%A %d. %B', 'de') }}", ctx).unwrap(),
            "Mittwoch 04. März"
        );
    }

    #[test]
    fn a_value_that_is_no_date_says_what_is_accepted() {
        for value in [
            Value::from("tomorrow"),
            Value::from("03.03.2026"),
            Value::from("2026-02-30"),
            Value::from(true),
            Value::from(f64::NAN),
        ] {
            let err = render("{{ t | date('%d') }}", context! { t => value.clone() }).unwrap_err();
            let detail = err.detail().unwrap_or_default();
            assert!(
                detail.contains("is not a date (RFC 3339"),
                "{value}: {detail}"
            );
        }
        let err = render("{{ data.t | date }}", context! { data => context! {} }).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UndefinedError);
    }

    #[test]
    fn bad_formats_and_locales_are_named() {
        let ctx = context! { t => "2026-03-03" };
        let err = render("{{ t | date('%d.%m. %Q') }}", ctx.clone()).unwrap_err();
        assert!(
            err.to_string()
                .contains("`%Q` in `%d.%m. %Q` is not a strftime code"),
            "{err}"
        );
        let err = render("{{ t | date('%d', 'gr') }}", ctx).unwrap_err();
        assert!(err.to_string().contains("unknown locale `gr`"), "{err}");
    }

    #[test]
    fn format_checks_accept_chrono_codes_with_modifiers() {
        for ok in [
            "%A %-d. %B %Y, %H:%M",
            "%e %b %y %I:%M %p",
            "%.3f %::z %%",
            "Uhr",
            "",
            "%c",
        ] {
            assert_eq!(check_format("date", ok), Ok(()), "{ok}");
        }
        for bad in ["%", "%Q", "%d %", "100%"] {
            assert!(check_format("date", bad).is_err(), "{bad}");
        }
    }
}
