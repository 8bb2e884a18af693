//! `events:` entries: the custom events other systems post to `/events/NAME`, with their
//! fields, as written.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;

use super::Located;

/// A custom event another system posts to `/events/NAME`, and the fields of its `data`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// What the event means, in a sentence.
    #[serde(default)]
    pub description: Option<String>,
    /// Each field of the event's `data` and its type: `text`, `number`, `bool`, `phone`,
    /// `url`, `date`, `datetime`, `list` or `map`; `optional text` (and so on) for a field
    /// the sender may leave out.
    #[serde(default)]
    #[schemars(schema_with = "field_types")]
    pub data: BTreeMap<String, Located<String>>,
}

/// The field type names, for editors.
pub const FIELD_TYPES: [&str; 9] = [
    "text", "number", "bool", "phone", "url", "date", "datetime", "list", "map",
];

fn field_types(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<String> = FIELD_TYPES
        .iter()
        .flat_map(|t| [(*t).to_owned(), format!("optional {t}")])
        .collect();
    json_schema!({
        "type": "object",
        "additionalProperties": { "type": "string", "enum": names }
    })
}
