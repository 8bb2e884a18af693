//! Custom events declared in the rule files (`events:`), with the fields their `data` must
//! have: `check` holds rules to them and `/events/NAME` refuses a body that lacks one.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

/// What a declared field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Number,
    Bool,
    /// A phone number: digits, with `+`, spaces, `-` and brackets allowed (7 to 15 digits).
    Phone,
    /// An `http` or `https` address.
    Url,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339 (`2026-03-03T14:30:00+01:00`), or Unix seconds.
    DateTime,
    List,
    Map,
}

impl FieldType {
    /// The type named in a rule file (`text`, `number`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "text" => Self::Text,
            "number" => Self::Number,
            "bool" => Self::Bool,
            "phone" => Self::Phone,
            "url" => Self::Url,
            "date" => Self::Date,
            "datetime" => Self::DateTime,
            "list" => Self::List,
            "map" => Self::Map,
            _ => return None,
        })
    }

    /// The name rule files use for the type.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Bool => "bool",
            Self::Phone => "phone",
            Self::Url => "url",
            Self::Date => "date",
            Self::DateTime => "datetime",
            Self::List => "list",
            Self::Map => "map",
        }
    }

    /// Whether `value` is one of these; what was expected when it is not.
    fn check(self, value: &Value) -> Result<(), &'static str> {
        let (fits, expected) = match self {
            Self::Text => (value.is_string(), "text (a JSON string)"),
            Self::Number => (value.is_number(), "a number"),
            Self::Bool => (value.is_boolean(), "true or false"),
            Self::List => (value.is_array(), "a list"),
            Self::Map => (value.is_object(), "a map (a JSON object)"),
            Self::Phone => return phone(value),
            Self::Url => return url(value),
            Self::Date => (
                value
                    .as_str()
                    .is_some_and(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()),
                "a date written YYYY-MM-DD",
            ),
            Self::DateTime => (
                match value {
                    Value::String(s) => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
                    Value::Number(n) => n.is_i64() || n.is_u64(),
                    _ => false,
                },
                "a date and time in RFC 3339 (2026-03-03T14:30:00+01:00) or Unix seconds",
            ),
        };
        if fits { Ok(()) } else { Err(expected) }
    }

    /// The JSON Schema of the type, for the systems that post the event.
    fn json_schema(self) -> Value {
        match self {
            Self::Text => json!({"type": "string"}),
            Self::Number => json!({"type": "number"}),
            Self::Bool => json!({"type": "boolean"}),
            Self::Phone => {
                json!({"type": ["string", "integer"], "pattern": r"^\+?[0-9 ()\-]{7,20}$"})
            }
            Self::Url => json!({"type": "string", "format": "uri", "pattern": "^https?://"}),
            Self::Date => json!({"type": "string", "format": "date"}),
            Self::DateTime => json!({"type": ["string", "integer"], "format": "date-time"}),
            Self::List => json!({"type": "array"}),
            Self::Map => json!({"type": "object"}),
        }
    }
}

fn phone(value: &Value) -> Result<(), &'static str> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return Err("a phone number (text or digits)"),
    };
    let allowed = text
        .trim()
        .trim_start_matches('+')
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')'));
    let digits = text.chars().filter(char::is_ascii_digit).count();
    if allowed && (7..=15).contains(&digits) {
        Ok(())
    } else {
        Err("a phone number of 7 to 15 digits, `+`, spaces and `-` allowed")
    }
}

fn url(value: &Value) -> Result<(), &'static str> {
    let fits = value.as_str().is_some_and(|s| {
        s.parse::<http::Uri>().is_ok_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
        })
    });
    if fits {
        Ok(())
    } else {
        Err("an http:// or https:// address")
    }
}

/// One declared field of an event's `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub kind: FieldType,
    /// False for a field declared `optional TYPE`.
    pub required: bool,
}

/// A custom event declared in a rule file.
#[derive(Debug, Clone)]
pub struct DeclaredEvent {
    pub name: String,
    pub description: Option<String>,
    /// In the order of their names.
    pub fields: Vec<Field>,
    /// Where it is declared.
    pub file: Arc<Path>,
    pub line: u32,
}

impl DeclaredEvent {
    /// The names of its fields.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.name.as_str())
    }

    /// Every way `data` falls short of the declaration, one sentence per field; empty when it
    /// fits. Fields that are not declared are allowed (senders add fields over time).
    pub fn problems(&self, data: &Value) -> Vec<String> {
        let Some(object) = data.as_object() else {
            return vec![format!("`{}` carries a JSON object", self.name)];
        };
        let mut problems = Vec::new();
        for field in &self.fields {
            match object.get(&field.name) {
                None | Some(Value::Null) if field.required => problems.push(format!(
                    "field `{}` ({}) is missing",
                    field.name,
                    field.kind.name()
                )),
                None | Some(Value::Null) => {}
                Some(value) => {
                    if let Err(expected) = field.kind.check(value) {
                        problems.push(format!(
                            "field `{}` must be {expected}, got {}",
                            field.name,
                            shown(value)
                        ));
                    }
                }
            }
        }
        problems
    }

    /// The JSON Schema of the event's `data`.
    pub fn json_schema(&self) -> Value {
        let properties: serde_json::Map<String, Value> = self
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.kind.json_schema()))
            .collect();
        let required: Vec<&str> = self
            .fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name.as_str())
            .collect();
        let mut schema = json!({
            "type": "object",
            "properties": properties,
            "required": required,
        });
        if let Some(description) = &self.description {
            schema["description"] = description.clone().into();
        }
        schema
    }
}

/// A value as it appears in an error: short, and never a whole posted document.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        let cut: String = text.chars().take(37).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cart() -> DeclaredEvent {
        let field = |name: &str, kind, required| Field {
            name: name.into(),
            kind,
            required,
        };
        DeclaredEvent {
            name: "cart_abandoned".into(),
            description: None,
            fields: vec![
                field("cart_id", FieldType::Text, true),
                field("coupon", FieldType::Text, false),
                field("link", FieldType::Url, true),
                field("phone", FieldType::Phone, true),
                field("since", FieldType::DateTime, false),
                field("total", FieldType::Number, true),
            ],
            file: Arc::from(Path::new("shop.yaml")),
            line: 3,
        }
    }

    #[test]
    fn a_body_that_fits_has_no_problems() {
        let data = json!({"cart_id": "c1", "link": "https://shop.example/c/1",
            "phone": "+49 151 2345-678", "total": 42.5, "since": 1767225600, "extra": [1]});
        assert_eq!(cart().problems(&data), Vec::<String>::new());
    }

    #[test]
    fn each_missing_or_mistyped_field_is_named() {
        let data = json!({"cart_id": 7, "link": "ftp://x", "total": "42,50",
            "since": "yesterday"});
        assert_eq!(
            cart().problems(&data),
            vec![
                "field `cart_id` must be text (a JSON string), got 7",
                "field `link` must be an http:// or https:// address, got \"ftp://x\"",
                "field `phone` (phone) is missing",
                "field `since` must be a date and time in RFC 3339 (2026-03-03T14:30:00+01:00) or Unix seconds, got \"yesterday\"",
                "field `total` must be a number, got \"42,50\"",
            ]
        );
    }

    #[test]
    fn phone_numbers_are_digits_with_the_usual_marks() {
        for good in [
            json!("+4915123456789"),
            json!("0151 234-5678"),
            json!(4915123456789u64),
        ] {
            assert_eq!(phone(&good), Ok(()), "{good}");
        }
        for bad in [
            json!("call me"),
            json!("123"),
            json!(true),
            json!("+49 151 abc 5678"),
        ] {
            assert!(phone(&bad).is_err(), "{bad}");
        }
    }
}
