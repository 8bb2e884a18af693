//! A `lookup:` in flight: the call to another system, and where its rule goes on once the
//! answer is in. Stored in its job, so the rest of the rule runs after a restart too.

use serde::{Deserialize, Serialize};

use super::OutboundRequest;

/// A rendered `lookup:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupCall {
    #[serde(rename = "request")]
    pub request: OutboundRequest,
    /// The name its answer is known by in the rule's later templates (`lookup.NAME`).
    #[serde(rename = "as")]
    pub name: String,
    /// The rule that goes on, and the position of this lookup among its actions.
    #[serde(rename = "rule")]
    pub rule: String,
    #[serde(rename = "step")]
    pub step: u32,
    /// How long one try may take before it counts as failed (and is tried again).
    #[serde(rename = "timeout_ms")]
    pub timeout_ms: u64,
    /// The event as the rule saw it (its stored snapshot), for the actions after the lookup.
    #[serde(rename = "event")]
    pub event: serde_json::Value,
    /// The rule's template variables when the lookup was made, earlier lookups' answers
    /// included.
    #[serde(rename = "vars")]
    pub vars: serde_json::Value,
}
