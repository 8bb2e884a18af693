//! What a body must be before it is stored: UTF-8, one JSON object, nested no deeper than
//! intake can read, and (for Whapi.Cloud webhooks) holding no more items than the limit.
//!
//! Everything here runs before the answer, on every webhook, so it reads the body once with
//! serde's skipping visitors and builds no tree: intake parses the stored text again anyway.

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::ApiError;

/// Deepest nesting a stored body may have, the top object included: the most that intake's
/// JSON parser reads back (serde_json stops at 128 levels).
pub const MAX_DEPTH: usize = 127;

/// A Whapi.Cloud webhook body as text, if it is one JSON object of at most `max_items` items.
pub(super) fn webhook(body: &[u8], max_items: usize) -> Result<&str, ApiError> {
    let text = utf8(body)?;
    let shape = shape(text)?;
    if shape.items > max_items {
        return Err(ApiError::TooLarge(format!(
            "body holds {} items (messages, statuses, participants and the like), more than the limit of {max_items} (--max-items)",
            shape.items
        )));
    }
    Ok(text)
}

/// A custom event body as text: one JSON object, or nothing at all (an empty object).
pub(super) fn custom(body: &[u8]) -> Result<&str, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok("{}");
    }
    let text = utf8(body)?;
    shape(text)?;
    Ok(text)
}

fn utf8(body: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(body)
        .map_err(|e| ApiError::BadRequest(format!("body is not UTF-8 (byte {})", e.valid_up_to())))
}

/// Checks the text is one JSON object nested at most [`MAX_DEPTH`] deep, and counts its items.
fn shape(text: &str) -> Result<Shape, ApiError> {
    let shape = match serde_json::from_str::<Shape>(text) {
        Ok(shape) if shape.kind == "an object" => shape,
        Ok(other) => {
            return Err(ApiError::BadRequest(format!(
                "body must be a JSON object, got {}",
                other.kind
            )));
        }
        Err(err) => {
            return Err(ApiError::BadRequest(format!(
                "body is not valid JSON: {err}"
            )));
        }
    };
    if let Some(at) = too_deep(text, MAX_DEPTH) {
        return Err(ApiError::BadRequest(format!(
            "body is nested more than {MAX_DEPTH} levels deep (at byte {at})"
        )));
    }
    Ok(shape)
}

/// Where valid JSON text first opens more than `max` arrays and objects at once, if it does.
/// A scan of the bytes: serde's skipping visitor checks no depth.
fn too_deep(text: &str, max: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (at, &byte) in text.as_bytes().iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(at);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// What kind of JSON value a body is and, for an object, how many items its families hold:
/// every element of a top-level array, and for `groups_participants` every participant (each
/// becomes its own event).
struct Shape {
    kind: &'static str,
    items: usize,
}

impl Shape {
    fn of(kind: &'static str) -> Self {
        Self { kind, items: 0 }
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Kind;

        impl<'de> Visitor<'de> for Kind {
            type Value = Shape;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                let mut items = 0usize;
                while let Some(Family(participants)) = map.next_key()? {
                    let count = map.next_value_seed(Items::Family { participants })?;
                    items = items.saturating_add(count);
                }
                Ok(Shape {
                    kind: "an object",
                    items,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Shape::of("an array"))
            }
            fn visit_unit<E>(self) -> Result<Shape, E> {
                Ok(Shape::of("null"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::of("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::of("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::of("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::of("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::of("a string"))
            }
        }

        d.deserialize_any(Kind)
    }
}

/// A top-level key; `true` for `groups_participants`, whose items count their participants.
struct Family(bool);

impl<'de> Deserialize<'de> for Family {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyIs("groups_participants")).map(Self)
    }
}

/// A key of a participant change; `true` for `participants`.
struct Participants(bool);

impl<'de> Deserialize<'de> for Participants {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyIs("participants")).map(Self)
    }
}

/// Whether a key, once unescaped, is this one.
struct KeyIs(&'static str);

impl Visitor<'_> for KeyIs {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// Counts the items of a value: for a family's value, each element of its list (or, for
/// participant changes, each participant named); for one participant change, its participants.
/// Anything else holds none.
#[derive(Clone, Copy)]
enum Items {
    Family { participants: bool },
    Change,
}

impl<'de> DeserializeSeed<'de> for Items {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Items {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut count = 0usize;
        match self {
            Self::Family { participants: true } => {
                while let Some(named) = seq.next_element_seed(Self::Change)? {
                    count = count.saturating_add(named.max(1));
                }
            }
            Self::Family {
                participants: false,
            } => {
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
            }
            Self::Change => {
                IgnoredAny.visit_seq(seq)?;
            }
        }
        Ok(count)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        match self {
            // A lone change, not in a list: still one event per participant.
            Self::Family { participants: true } => {
                Self::Change.visit_map(map).map(|named| named.max(1))
            }
            Self::Family {
                participants: false,
            } => IgnoredAny.visit_map(map).map(|_| 0),
            Self::Change => {
                let mut named = 0;
                while let Some(Participants(is)) = map.next_key()? {
                    if is {
                        named = map.next_value_seed(Self::Family {
                            participants: false,
                        })?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(named)
            }
        }
    }
    fn visit_unit<E>(self) -> Result<usize, E> {
        Ok(0)
    }
    fn visit_bool<E>(self, _: bool) -> Result<usize, E> {
        Ok(0)
    }
    fn visit_i64<E>(self, _: i64) -> Result<usize, E> {
        Ok(0)
    }
    fn visit_u64<E>(self, _: u64) -> Result<usize, E> {
        Ok(0)
    }
    fn visit_f64<E>(self, _: f64) -> Result<usize, E> {
        Ok(0)
    }
    fn visit_str<E>(self, _: &str) -> Result<usize, E> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(body: &str) -> String {
        match webhook(body.as_bytes(), 1000) {
            Ok(text) => format!("ok: {text}"),
            Err(err) => err.to_string(),
        }
    }

    fn items(body: &str) -> usize {
        shape(body).map(|s| s.items).unwrap_or(usize::MAX)
    }

    #[test]
    fn only_a_json_object_is_accepted_and_the_reason_names_what_came() {
        let body = r#"{"messages":[{"id":"a","text":{"body":"\u00e9 [1, {}]"}}],"n":1.5e3}"#;
        assert_eq!(reason(body), format!("ok: {body}"));
        for (body, got) in [
            ("[1, 2]", "an array"),
            ("\"hi\"", "a string"),
            ("42", "a number"),
            ("-1.5", "a number"),
            ("true", "a boolean"),
            ("null", "null"),
        ] {
            assert_eq!(
                reason(body),
                format!("body must be a JSON object, got {got}")
            );
        }
        assert!(reason(r#"{"a": }"#).starts_with("body is not valid JSON: "));
        assert!(reason(r#"{"a": 1} {}"#).starts_with("body is not valid JSON: trailing"));
    }

    #[test]
    fn items_are_the_elements_of_top_level_lists_and_each_participant() {
        assert_eq!(
            items(r#"{"messages":[{},{},{}],"statuses":[1,2],"event":{"type":"x"}}"#),
            5
        );
        assert_eq!(
            items(r#"{"health":{"status":"x"},"channel_id":"c","n":[]}"#),
            0
        );
        let participants = r#"{"groups_participants":[
            {"group_id":"g","participants":["1","2","3"],"action":"add"},
            {"group_id":"g","participants":[],"action":"add"},
            {"group_id":"g","action":"add"}]}"#;
        assert_eq!(
            items(participants),
            5,
            "3, then 1 for each change naming no one"
        );
        let lone = r#"{"groups_participants":{"participants":[{"id":"1"},{"id":"2"}]}}"#;
        assert_eq!(items(lone), 2);
        let escaped_key = r#"{"groups_\u0070articipants":[{"participants":["1","2"]}]}"#;
        assert_eq!(items(escaped_key), 2, "a key is compared after unescaping");
    }

    #[test]
    fn a_body_over_the_item_limit_is_too_large() {
        let list = vec!["{}"; 1001].join(",");
        let err = webhook(format!(r#"{{"messages":[{list}]}}"#).as_bytes(), 1000).unwrap_err();
        assert!(matches!(err, ApiError::TooLarge(_)), "{err}");
        assert!(err.to_string().contains("1001 items"), "{err}");
        let list = vec!["{}"; 1000].join(",");
        assert!(webhook(format!(r#"{{"messages":[{list}]}}"#).as_bytes(), 1000).is_ok());
    }

    #[test]
    fn nesting_is_refused_past_what_intake_reads_back() {
        let nested = |levels: usize| {
            format!(
                r#"{{"a":{}1{}}}"#,
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            )
        };
        let deepest = nested(MAX_DEPTH);
        assert!(webhook(deepest.as_bytes(), 1000).is_ok());
        assert!(
            serde_json::from_str::<serde_json::Value>(&deepest).is_ok(),
            "what the door lets in, intake can read"
        );
        let err = webhook(nested(MAX_DEPTH + 1).as_bytes(), 1000).unwrap_err();
        assert!(err.to_string().contains("nested more than 127"), "{err}");
        let strings = format!(r#"{{"a":"{}","b":"\"[[["}}"#, "[".repeat(500));
        assert!(
            webhook(strings.as_bytes(), 1000).is_ok(),
            "brackets in strings are text"
        );
        assert!(custom(nested(100_000).as_bytes()).is_err());
    }
}
