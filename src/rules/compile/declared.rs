//! `events:` declarations: compiled into the fields each custom event's `data` must have.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Compiler;
use crate::config::{EventSpec, FIELD_TYPES, Located};
use crate::events::{DeclaredEvent, EventKind, Field, FieldType};
use crate::rules::did_you_mean;

/// Declared events by name.
pub(crate) type Declared = BTreeMap<String, Arc<DeclaredEvent>>;

impl Compiler<'_> {
    /// Compiles one `events:` entry.
    pub(super) fn declared_event(
        &mut self,
        name: &str,
        spec: &Located<EventSpec>,
    ) -> Option<DeclaredEvent> {
        let errors_before = self.diagnostics.len();
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid_name {
            self.error(
                spec.line,
                spec.column,
                format!("event name `{name}`: use letters, digits, `_`, `-` and `.`"),
            );
        }
        let mut fields = Vec::with_capacity(spec.value.data.len());
        for (field, kind) in &spec.value.data {
            let written = kind.value.trim();
            let (required, type_name) = match written.strip_prefix("optional ") {
                Some(rest) => (false, rest.trim()),
                None => (true, written),
            };
            match FieldType::from_name(type_name) {
                Some(kind) => fields.push(Field {
                    name: field.clone(),
                    kind,
                    required,
                }),
                None => {
                    let hint = did_you_mean(type_name, FIELD_TYPES).map_or_else(
                        || format!(", expected one of: {}", FIELD_TYPES.join(", ")),
                        |b| format!(", did you mean `{b}`?"),
                    );
                    self.error(
                        kind.line,
                        kind.column,
                        format!("unknown type `{type_name}` for field `{field}`{hint}"),
                    );
                }
            }
        }
        (self.diagnostics.len() == errors_before).then(|| DeclaredEvent {
            name: name.to_owned(),
            description: spec.value.description.clone(),
            fields,
            file: self.path.clone(),
            line: spec.line,
        })
    }

    /// The `data` fields a rule on `events` may use: those every one of its custom events
    /// declares, or `None` (any field) when one of them is not declared.
    pub(super) fn data_fields(&self, events: &[EventKind]) -> Option<Vec<String>> {
        let mut declared = events.iter().filter_map(|kind| match kind {
            EventKind::Custom(name) => Some(self.declared.get(name)),
            _ => None,
        });
        let first = declared.next()??;
        let mut fields: Vec<String> = first.field_names().map(str::to_owned).collect();
        for other in declared {
            let other = other?;
            fields.retain(|f| other.field_names().any(|o| o == f));
        }
        Some(fields)
    }
}
