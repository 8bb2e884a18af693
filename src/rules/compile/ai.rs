//! `ai_reply` → a compiled [`AiReply`]: its knowledge files read (only from inside the rules
//! folder), its limits checked, its handoff compiled.

use super::Compiler;
use super::action::handoff_parts;
use crate::actions::{AiHandoffAction, AiReply};
use crate::config::{AiHandoffSpec, AiReplySpec, Located, Mode};
use crate::vocab::PerChatLimit;

/// Most bytes of knowledge one `ai_reply` may include: it is sent with every model call.
const KNOWLEDGE_MAX: usize = 64 * 1024;
/// Longest model wait: well inside the lease of a claimed job, so a slow model is never
/// asked twice for one message.
const TIMEOUT_MAX: std::time::Duration = std::time::Duration::from_secs(60);
/// WhatsApp's limit on a text message.
const REPLY_MAX: u32 = 4096;

/// A number within bounds, or an error at its position.
fn bounded(
    value: Option<&Located<u32>>,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
    key: &str,
    cx: &mut Compiler<'_>,
) -> Option<u32> {
    let Some(v) = value else {
        return Some(default);
    };
    if range.contains(&v.value) {
        return Some(v.value);
    }
    cx.error(
        v.line,
        v.column,
        format!(
            "`{key}: {}` is out of range: write {} to {}",
            v.value,
            range.start(),
            range.end()
        ),
    );
    None
}

fn duration(
    value: Option<&Located<String>>,
    default: &str,
    cx: &mut Compiler<'_>,
) -> Option<std::time::Duration> {
    let Some(v) = value else {
        return crate::duration::parse(default).ok();
    };
    match crate::duration::parse(&v.value) {
        Ok(d) => Some(d),
        Err(e) => {
            cx.error(v.line, v.column, e);
            None
        }
    }
}

/// Compiles an `ai_reply`; problems are recorded on the compiler.
pub(super) fn ai_reply(spec: &Located<AiReplySpec>, cx: &mut Compiler<'_>) -> Option<AiReply> {
    let a = &spec.value;
    let system = cx.text(&a.system);
    let knowledge = knowledge(a, cx);
    let history = bounded(a.history.as_ref(), 20, 1..=200, "history", cx);
    let history_chars = bounded(
        a.history_chars.as_ref(),
        8000,
        100..=200_000,
        "history_chars",
        cx,
    );
    let max_reply = bounded(a.max_reply.as_ref(), 1000, 1..=REPLY_MAX, "max_reply", cx);
    let attempts = bounded(a.attempts.as_ref(), 2, 1..=5, "attempts", cx);
    let forget_after = duration(a.forget_after.as_ref(), "24h", cx)
        .and_then(|d| chrono::Duration::from_std(d).ok());
    // Every problem is reported, so nothing returns before the last setting is checked.
    let mut timeout = duration(a.timeout.as_ref(), "20s", cx);
    if let (Some(t), Some(given)) = (timeout, &a.timeout)
        && !(std::time::Duration::from_secs(1)..=TIMEOUT_MAX).contains(&t)
    {
        cx.error(
            given.line,
            given.column,
            "`timeout` must be between 1s and 60s",
        );
        timeout = None;
    }
    let temperature = match &a.temperature {
        Some(t) if !(0.0..=2.0).contains(&t.value) => {
            cx.error(t.line, t.column, "`temperature` must be between 0 and 2");
            None
        }
        other => Some(other.as_ref().map(|t| t.value)),
    };
    let per_chat = match &a.per_chat {
        None => Some(None),
        Some(rate) => match crate::campaigns::rate_parts(&rate.value) {
            Ok((0, _)) => {
                cx.error(
                    rate.line,
                    rate.column,
                    format!(
                        "`per_chat: {}` never answers; remove the action instead",
                        rate.value
                    ),
                );
                None
            }
            Ok((count, per)) => Some(Some(PerChatLimit {
                count,
                window_s: per.num_seconds(),
            })),
            Err(e) => {
                cx.error(rate.line, rate.column, e);
                None
            }
        },
    };
    let fallback = match &a.fallback {
        Some(f) => cx.text(f).map(Some),
        None => Some(None),
    };
    let handoff = match &a.handoff {
        Some(h) => handoff(h, cx).map(Some),
        None => Some(None),
    };
    let model = a
        .model
        .as_ref()
        .map(|m| m.value.trim().to_owned())
        .filter(|m| !m.is_empty());
    let knowledge = knowledge?;
    Some(AiReply {
        system: system?,
        knowledge_id: knowledge_id(&knowledge),
        knowledge: knowledge.into(),
        model,
        history: history?,
        history_chars: history_chars?,
        forget_after: forget_after?,
        max_tokens: a.max_tokens.as_ref().map(|m| m.value),
        temperature: temperature?,
        timeout: timeout?,
        attempts: attempts?,
        fallback: fallback?,
        max_reply: max_reply?,
        per_chat: per_chat?,
        shadow: a.mode == Some(Mode::Shadow),
        agent_messages: a.agent_messages.unwrap_or(true),
        handoff: handoff?,
    })
}

fn knowledge_id(text: &str) -> String {
    use sha2::Digest;
    if text.is_empty() {
        return String::new();
    }
    sha2::Sha256::digest(text.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads the knowledge files into one text, each under its file name.
fn knowledge(a: &AiReplySpec, cx: &mut Compiler<'_>) -> Option<String> {
    let Some(files) = &a.knowledge else {
        return Some(String::new());
    };
    let mut text = String::new();
    for name in files.value.iter() {
        let read = cx.file_inside(name, "knowledge file").and_then(|path| {
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read knowledge file `{}`: {e}", path.display()))
        });
        match read {
            Ok(content) => {
                text.push_str(&format!("\n\n## {name}\n\n{}", content.trim()));
            }
            Err(message) => {
                cx.error(files.line, files.column, message);
                return None;
            }
        }
    }
    if text.len() > KNOWLEDGE_MAX {
        cx.error(
            files.line,
            files.column,
            format!(
                "knowledge is {} KiB, more than the limit of {} KiB (it is sent with every model call): shorten the files",
                text.len().div_ceil(1024),
                KNOWLEDGE_MAX / 1024
            ),
        );
        return None;
    }
    Some(text)
}

fn handoff(spec: &Located<AiHandoffSpec>, cx: &mut Compiler<'_>) -> Option<AiHandoffAction> {
    let h = &spec.value;
    let parts = handoff_parts(&h.duration, h.notify.as_ref(), h.resume_on.as_deref(), cx);
    let when_reply = match &h.when_reply {
        Some(pattern) => match regex::Regex::new(&pattern.value) {
            Ok(_) => Some(pattern.value.clone()),
            Err(e) => {
                cx.error(pattern.line, pattern.column, format!("invalid regex: {e}"));
                return None;
            }
        },
        None => None,
    };
    let after_fallbacks = match &h.after_fallbacks {
        Some(n) if n.value == 0 => {
            cx.error(n.line, n.column, "`after_fallbacks` must be 1 or more");
            return None;
        }
        other => other.as_ref().map(|n| n.value),
    };
    let parts = parts?;
    Some(AiHandoffAction {
        duration: parts.duration,
        resume_on: parts.resume_on,
        notify: parts.notify,
        when_reply,
        after_fallbacks,
    })
}
