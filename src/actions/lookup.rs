//! `lookup:` compiled: a call like `webhook`'s whose JSON answer the rule's later actions
//! read as `lookup.NAME`. Rendering makes the call; the engine adds where the rule goes on.

use super::{ActionError, RenderCx, Step, WebhookAction};
use crate::vocab::{ChatId, LookupCall, Work};

/// A compiled `lookup:` action.
#[derive(Debug, Clone)]
pub struct LookupAction {
    pub call: WebhookAction,
    /// `as:`, the name of the answer.
    pub name: String,
    /// How long one try may take.
    pub timeout: std::time::Duration,
    /// What runs instead of the rest of the rule when the lookup finally fails.
    pub on_error: Vec<Step>,
}

impl LookupAction {
    pub(super) fn render(&self, cx: &RenderCx<'_>) -> Result<Vec<Work>, ActionError> {
        let mut request = super::webhook::render(cx, &self.call)?;
        // One chat's lookups go in order, other chats' alongside (not one lane per host).
        request.lane = match &cx.event.chat {
            Some(chat) => ChatId::new(&chat.id).lane(),
            None => format!("lookup:{}", cx.event.dedupe_key()),
        };
        Ok(vec![Work::Lookup(Box::new(LookupCall {
            request,
            name: self.name.clone(),
            rule: cx.rule.to_owned(),
            step: 0,
            timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            event: serde_json::Value::Null,
            vars: serde_json::Value::Null,
        }))])
    }
}
