//! The compiled `ai_reply` action, and its rendering into the [`AiCall`] its job runs. It is
//! compiled from its YAML (knowledge files read, limits checked) in `rules::compile`.

use super::{Action, ActionError, RenderCx};

use crate::templates::Text;
use crate::vocab::{AiCall, AiHandoff, PerChatLimit, Work};

/// A compiled `ai_reply`.
#[derive(Debug, Clone)]
pub struct AiReply {
    pub system: Text,
    /// The knowledge files' text, ready to follow the instructions.
    pub knowledge: std::sync::Arc<str>,
    /// A hash of `knowledge`: jobs name it instead of carrying up to 64 KiB each.
    pub knowledge_id: String,
    pub model: Option<String>,
    pub history: u32,
    pub history_chars: u32,
    pub forget_after: chrono::Duration,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub timeout: std::time::Duration,
    pub attempts: u32,
    pub fallback: Option<Text>,
    pub max_reply: u32,
    pub per_chat: Option<PerChatLimit>,
    pub shadow: bool,
    pub agent_messages: bool,
    pub handoff: Option<AiHandoffAction>,
}

/// A compiled `ai_reply.handoff`.
#[derive(Debug, Clone)]
pub struct AiHandoffAction {
    pub duration: chrono::Duration,
    pub resume_on: Option<String>,
    pub notify: Option<Box<Action>>,
    pub when_reply: Option<String>,
    pub after_fallbacks: Option<u32>,
}

impl AiReply {
    /// Renders the call its job will make.
    pub(super) fn render(&self, cx: &RenderCx<'_>) -> Result<Vec<Work>, ActionError> {
        let chat = cx.chat_id("ai_reply")?;
        let system = cx.text(&self.system)?;
        let fallback = match &self.fallback {
            Some(f) => Some(cx.text(f)?).filter(|f| !f.trim().is_empty()),
            None => None,
        };
        let handoff = match &self.handoff {
            Some(h) => Some(AiHandoff {
                for_s: h.duration.num_seconds(),
                resume_on: h.resume_on.clone(),
                notify: match &h.notify {
                    Some(n) => n.render(cx)?.into_iter().find_map(|e| match e {
                        Work::Call(r) => Some(r),
                        _ => None,
                    }),
                    None => None,
                },
                when_reply: h.when_reply.clone(),
                after_fallbacks: h.after_fallbacks,
            }),
            None => None,
        };
        Ok(vec![Work::Ai(Box::new(AiCall {
            chat,
            system,
            knowledge: Some(self.knowledge_id.clone()).filter(|k| !k.is_empty()),
            model: self.model.clone(),
            history: self.history,
            history_chars: self.history_chars,
            forget_after_s: self.forget_after.num_seconds(),
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            timeout_ms: self.timeout.as_millis() as u64,
            attempts: self.attempts,
            fallback,
            max_reply: self.max_reply,
            per_chat: self.per_chat,
            shadow: self.shadow,
            handoff,
            channel: None,
        }))])
    }
}
