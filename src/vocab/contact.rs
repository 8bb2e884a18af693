//! A person Riposte knows, and the changes rules make to them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A person Riposte knows: tags and attributes set by rules or imports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    #[serde(rename = "phone")]
    pub phone: String,
    #[serde(rename = "tags")]
    pub tags: BTreeSet<String>,
    #[serde(rename = "attrs")]
    pub attrs: BTreeMap<String, String>,
}

/// A change to a contact made by a `tag`, `untag` or `set` action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContactChange {
    #[serde(rename = "tag")]
    Tag {
        #[serde(rename = "phone")]
        phone: String,
        #[serde(rename = "tag")]
        tag: String,
    },
    #[serde(rename = "untag")]
    Untag {
        #[serde(rename = "phone")]
        phone: String,
        #[serde(rename = "tag")]
        tag: String,
    },
    #[serde(rename = "set")]
    Set {
        #[serde(rename = "phone")]
        phone: String,
        #[serde(rename = "key")]
        key: String,
        #[serde(rename = "value")]
        value: String,
    },
}

impl Contact {
    /// Applies a change in memory, so later rules of the same event see it.
    pub fn apply(&mut self, change: &ContactChange) {
        match change {
            ContactChange::Tag { tag, .. } => {
                self.tags.insert(tag.clone());
            }
            ContactChange::Untag { tag, .. } => {
                self.tags.remove(tag);
            }
            ContactChange::Set { key, value, .. } => {
                self.attrs.insert(key.clone(), value.clone());
            }
        }
    }
}

impl ContactChange {
    /// The phone of the contact it changes.
    pub fn phone(&self) -> &str {
        match self {
            Self::Tag { phone, .. } | Self::Untag { phone, .. } | Self::Set { phone, .. } => phone,
        }
    }
}
