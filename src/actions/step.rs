//! A step of a rule's `then`: an action plus when it runs (`after`, `at`), its follow-up `key`
//! and the `unless` conditions checked when it is due.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::Action;

use crate::templates::{Templates, Text};
use crate::vocab::Contact;

/// When an action runs.
#[derive(Debug, Clone)]
pub enum Timing {
    Now,
    After(chrono::Duration),
    /// A template that renders to a time; a time already past sends at once. Boxed, as
    /// most steps are not timed this way and every step is as large as its largest timing.
    At(Box<Text>),
    /// The same, but a time already past skips the follow-up (`if_past: skip`).
    AtUnlessPast(Box<Text>),
}

/// A compiled `then:` entry.
#[derive(Debug, Clone)]
pub struct Step {
    pub action: Action,
    pub timing: Timing,
    pub key: Option<Text>,
    /// Boxed: most steps have none, and a rule set holds thousands of steps.
    pub unless: Option<Box<Unless>>,
    /// The line of its rule file the action is written on, for errors at run time.
    pub line: u32,
}

/// Conditions on the contact that skip a follow-up when they hold at its time. Kept as data in
/// the job, so a follow-up still knows them after its rule changed or went away.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Unless {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attrs: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "if")]
    pub expr: Option<String>,
}

impl Unless {
    /// Why the follow-up is skipped, or `None` if it runs. Every condition given must hold for
    /// a skip. `vars` are the event's template variables kept from when it was scheduled.
    pub fn skip_reason(
        &self,
        contact: &Contact,
        vars: Option<&serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, String> {
        let has = |t: &String| contact.tags.contains(t);
        let mut reasons = Vec::new();
        if !self.all_tags.is_empty() {
            if !self.all_tags.iter().all(has) {
                return Ok(None);
            }
            reasons.push(format!("contact has {}", self.all_tags.join(", ")));
        }
        if !self.any_tags.is_empty() {
            let Some(tag) = self.any_tags.iter().find(|t| has(t)) else {
                return Ok(None);
            };
            reasons.push(format!("contact has `{tag}`"));
        }
        if !self.no_tags.is_empty() {
            if self.no_tags.iter().any(has) {
                return Ok(None);
            }
            reasons.push(format!("contact has none of {}", self.no_tags.join(", ")));
        }
        for (key, expected) in &self.attrs {
            if contact.attrs.get(key) != Some(expected) {
                return Ok(None);
            }
            reasons.push(format!("{key} is `{expected}`"));
        }
        if let Some(expr) = &self.expr {
            let mut ctx = vars.cloned().unwrap_or_else(|| serde_json::json!({}));
            if let Some(map) = ctx.as_object_mut() {
                map.insert(
                    "contact".into(),
                    serde_json::to_value(contact).unwrap_or_default(),
                );
                map.insert("now".into(), now.to_rfc3339().into());
                let zone = map
                    .get(crate::templates::ZONE)
                    .and_then(|z| z.as_str())
                    .and_then(|z| z.parse().ok())
                    .unwrap_or(Tz::UTC);
                map.insert("today".into(), crate::templates::today(now, zone).into());
            }
            if !Templates::new().holds_once(expr, &crate::templates::to_value(&ctx))? {
                return Ok(None);
            }
            reasons.push(format!("`{expr}` is true"));
        }
        Ok(Some(format!("unless: {}", reasons.join(" and "))))
    }

    /// Whether any condition is given.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Reads the time an `at:` template rendered: RFC 3339, or a local date and time in `zone`.
pub fn parse_at(text: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
            // In a spring-forward gap the earliest valid instant after it is used.
            return zone
                .from_local_datetime(&local)
                .earliest()
                .or_else(|| {
                    zone.from_local_datetime(&(local + chrono::Duration::hours(1)))
                        .earliest()
                })
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| format!("`{text}` does not exist in {zone}"));
        }
    }
    Err(format!(
        "`at` rendered to `{text}`, which is not a time (expected RFC 3339 or `YYYY-MM-DD HH:MM`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_accepts_offsets_and_local_times() {
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            parse_at("2026-03-02T10:00:00+01:00", berlin)
                .unwrap()
                .to_rfc3339(),
            "2026-03-02T09:00:00+00:00"
        );
        assert_eq!(
            parse_at("2026-07-02 10:00", berlin).unwrap().to_rfc3339(),
            "2026-07-02T08:00:00+00:00"
        );
        assert!(
            parse_at("next tuesday", berlin)
                .unwrap_err()
                .contains("not a time")
        );
    }

    #[test]
    fn unless_needs_every_condition() {
        let unless = Unless {
            any_tags: vec!["ordered".into()],
            attrs: vec![("cart".into(), "c-9".into())],
            ..Unless::default()
        };
        let mut contact = Contact::default();
        contact.tags.insert("ordered".into());
        let now = Utc::now();
        assert_eq!(unless.skip_reason(&contact, None, now), Ok(None));
        contact.attrs.insert("cart".into(), "c-9".into());
        assert_eq!(
            unless.skip_reason(&contact, None, now),
            Ok(Some(
                "unless: contact has `ordered` and cart is `c-9`".into()
            ))
        );
    }

    #[test]
    fn unless_if_reads_today_in_the_rules_zone_when_it_is_due() {
        let unless = Unless {
            expr: Some("today == '2026-03-03' and now | date('%H') == '05'".into()),
            ..Unless::default()
        };
        let vars = serde_json::json!({ crate::templates::ZONE: "Asia/Tokyo" });
        let due = DateTime::parse_from_rfc3339("2026-03-02T20:00:00Z")
            .unwrap()
            .to_utc();
        let reason = unless.skip_reason(&Contact::default(), Some(&vars), due);
        assert!(reason.unwrap().is_some(), "Tokyo is a day ahead of UTC");
        let utc = unless.skip_reason(&Contact::default(), None, due);
        assert_eq!(utc, Ok(None), "without a zone, UTC");
    }

    #[test]
    fn unless_if_sees_the_event_and_the_contact_now() {
        let unless = Unless {
            expr: Some("contact.attrs.last_order == data.cart_id".into()),
            ..Unless::default()
        };
        let mut contact = Contact::default();
        contact.attrs.insert("last_order".into(), "c-9".into());
        let vars = serde_json::json!({"data": {"cart_id": "c-9"}});
        assert!(
            unless
                .skip_reason(&contact, Some(&vars), Utc::now())
                .unwrap()
                .is_some()
        );
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod size {
    /// A rule set holds every rule's steps: 10,000 rules hold some 12,500 of them.
    #[test]
    fn a_step_stays_small() {
        assert!(std::mem::size_of::<super::Step>() <= 152);
        assert!(std::mem::size_of::<crate::actions::Action>() <= 80);
    }
}
