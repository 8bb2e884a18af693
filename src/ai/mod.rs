//! AI replies: the `ai_reply` job asks a language model over the chat's conversation, then
//! answers, falls back or hands the chat to a human.
//!
//! The model call is a durable job like every action. What it decides (the reply to send, a
//! handoff and its notification) is written as new jobs in the same commit that finishes the
//! model job, so a crash never sends an answer twice nor loses one, and a failed send is retried
//! without asking the model again.

mod limits;
pub mod memory;
pub mod model;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::metrics;
use crate::pace::Pacer;
use crate::store::{Op, Store, StoreResult};
use crate::vocab::{
    AiCall, HandoffChange, Job, JobKind, JobResult, NewJob, OutboundRequest, Role, Work,
};
use model::{Answer, ChatModel, Message, ModelError, Request};

/// Longest a model job waits in a worker for its slot of the global pace.
const PACE_WAIT: Duration = Duration::from_secs(2);

/// How the conversation is remembered, from the rule set's `ai_reply` actions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryPolicy {
    /// Remember what people write from the business's own phone.
    pub agent_messages: bool,
    /// How long messages are kept: the longest `forget_after`.
    pub keep: chrono::Duration,
}

/// What the model job decided: its result and the work it leaves behind.
#[derive(Debug)]
pub struct Decided {
    pub result: JobResult,
    pub ops: Vec<Op>,
}

/// Asks the model for `ai_reply` jobs, within the global pace and the per-chat limits.
pub struct Assistant {
    model: Arc<dyn ChatModel>,
    pace: Option<Pacer>,
    per_chat: limits::PerChat,
}

impl std::fmt::Debug for Assistant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assistant").finish_non_exhaustive()
    }
}

impl Assistant {
    /// An assistant on `model`, with at most one model call per `pace` across all chats.
    pub fn new(model: Arc<dyn ChatModel>, pace: Option<Duration>) -> Self {
        Self {
            model,
            pace: pace.map(Pacer::new),
            per_chat: limits::PerChat::default(),
        }
    }

    /// Runs an `ai_reply` job; `knowledge` is the text its rule's knowledge files hold.
    pub async fn run(
        &self,
        store: &dyn Store,
        job: &Job,
        call: &AiCall,
        knowledge: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<Decided> {
        let state_key = call.state_key();
        if !call.shadow
            && let Some(handoff) = store
                .chat_states(std::slice::from_ref(&state_key))
                .await?
                .remove(&state_key)
                .and_then(|state| state.handoff)
                .filter(|h| h.until > now)
        {
            // The chat was handed to a person after this message came in (by the answer to
            // an earlier message, say): the person answers it.
            return Ok(Decided {
                result: JobResult::Skipped {
                    reason: format!("a human has this chat (handoff by `{}`)", handoff.rule),
                },
                ops: Vec::new(),
            });
        }
        // The global pace: a model call due within a moment waits for its slot; one due later
        // comes back then, so model jobs never hold the workers that send other replies.
        let slot = match self.pace.as_ref().map(|p| p.slot_within(PACE_WAIT)) {
            Some(Err(slot)) => {
                let wait = slot.saturating_duration_since(tokio::time::Instant::now());
                return Ok(Decided {
                    result: JobResult::Later {
                        at: now + chrono::Duration::from_std(wait).unwrap_or_default(),
                        reason: "waiting for the model's rate (--llm-rate)".into(),
                    },
                    ops: Vec::new(),
                });
            }
            Some(Ok(slot)) => Some(slot),
            None => None,
        };
        if let Some(limit) = call.per_chat
            && job.attempts <= 1
            && !self.per_chat.admit(
                &state_key,
                limit.count,
                chrono::Duration::seconds(limit.window_s),
                now,
            )
        {
            metrics::AI_LIMITED.inc();
            return Ok(Decided {
                result: JobResult::Skipped {
                    reason: format!(
                        "per_chat limit: {} answers in {} s already",
                        limit.count, limit.window_s
                    ),
                },
                ops: Vec::new(),
            });
        }
        let key = call.memory_key();
        let turns = store.turns(&key, call.history).await?;
        let conversation = memory::conversation(
            turns,
            now,
            chrono::Duration::seconds(call.forget_after_s),
            call.history_chars as usize,
        );
        let mut system = call.system.clone();
        if let Some(knowledge) = knowledge {
            system.push_str("\n\n# Knowledge");
            system.push_str(knowledge);
        }
        let mut messages = vec![Message {
            role: "system",
            content: system,
        }];
        messages.extend(conversation.into_iter().map(|t| Message {
            role: if t.role == Role::User {
                "user"
            } else {
                "assistant"
            },
            content: t.text,
        }));
        let request = Request {
            model: call.model.clone(),
            messages,
            max_tokens: call.max_tokens,
            temperature: call.temperature,
            offer_handoff: call.handoff.is_some(),
            timeout: Duration::from_millis(call.timeout_ms),
        };
        if let Some(slot) = slot {
            tokio::time::sleep_until(slot).await;
        }
        metrics::AI_CALLS.inc();
        let answer = self.model.complete(&request).await;
        let fallbacks = store.ai_fallbacks(&state_key).await?;
        Ok(decide(job, call, answer, fallbacks, now))
    }
}

/// Turns the model's answer into the job's result and the work it leaves behind.
fn decide(
    job: &Job,
    call: &AiCall,
    answer: Result<Answer, ModelError>,
    fallbacks: u32,
    now: DateTime<Utc>,
) -> Decided {
    let cx = Decision {
        job,
        call,
        now,
        fallbacks,
    };
    match answer {
        Ok(Answer::Handoff { reason, usage }) => {
            count_tokens(usage);
            cx.hand_off(&format!("the model handed off: {reason}"))
        }
        Ok(Answer::Text { text, usage }) => {
            count_tokens(usage);
            let text = text.trim();
            if text.is_empty() {
                return cx.fall_back("the model answered nothing");
            }
            if let Some(pattern) = call.handoff.as_ref().and_then(|h| h.when_reply.as_ref())
                && regex::Regex::new(pattern).is_ok_and(|re| re.is_match(text))
            {
                return cx.hand_off(&format!("the model's answer matched /{pattern}/: {text}"));
            }
            cx.answer(&memory::cut_reply(text, call.max_reply as usize))
        }
        Err(err) => {
            metrics::AI_FAILURES.inc();
            if err.transient && job.attempts < call.attempts {
                // The contact is waiting: try again soon rather than on the long backoff of
                // other calls.
                let delay = chrono::Duration::seconds(i64::from(job.attempts.clamp(1, 30)));
                tracing::warn!(job = %job.id, rule = %job.rule, "model call failed, trying again: {err}");
                return Decided {
                    result: JobResult::Retry {
                        at: now + delay,
                        error: err.message,
                    },
                    ops: Vec::new(),
                };
            }
            tracing::warn!(job = %job.id, rule = %job.rule, "model call failed: {err}");
            cx.fall_back(&err.message)
        }
    }
}

fn count_tokens(usage: model::Usage) {
    metrics::AI_PROMPT_TOKENS.add(usage.prompt);
    metrics::AI_COMPLETION_TOKENS.add(usage.completion);
}

struct Decision<'a> {
    job: &'a Job,
    call: &'a AiCall,
    now: DateTime<Utc>,
    /// Fallbacks in a row before this answer.
    fallbacks: u32,
}

impl Decision<'_> {
    fn done(&self, response: serde_json::Value, ops: Vec<Op>) -> Decided {
        Decided {
            result: JobResult::Done {
                response: response.to_string(),
            },
            ops,
        }
    }

    fn new_job(&self, action: &str, work: Work) -> Op {
        let mut job = NewJob::action(
            self.job.rule.as_str(),
            action,
            &self.job.event,
            work,
            self.now,
        );
        job.kind = JobKind::Answer;
        job.contact.clone_from(&self.job.contact);
        Op::Job(Box::new(job))
    }

    fn set_fallbacks(&self, count: u32, ops: &mut Vec<Op>) {
        if count != self.fallbacks {
            ops.push(Op::AiFallbacks {
                chat: self.call.state_key(),
                count,
            });
        }
    }

    fn answer(&self, text: &str) -> Decided {
        if self.call.shadow {
            return self.done(json!({"shadow": true, "answer": text}), Vec::new());
        }
        let mut ops = vec![self.new_job("ai_reply", Work::Call(self.call.message(text)))];
        self.set_fallbacks(0, &mut ops);
        self.done(json!({"answer": text}), ops)
    }

    fn fall_back(&self, why: &str) -> Decided {
        metrics::AI_FALLBACKS.inc();
        let count = self.fallbacks.saturating_add(1);
        let limit = self.call.handoff.as_ref().and_then(|h| h.after_fallbacks);
        if limit.is_some_and(|n| count >= n) {
            return self.hand_off(&format!("{count} fallbacks in a row; last: {why}"));
        }
        let mut ops = Vec::new();
        if !self.call.shadow {
            self.set_fallbacks(count, &mut ops);
        }
        match &self.call.fallback {
            Some(text) if !self.call.shadow => {
                ops.insert(
                    0,
                    self.new_job("ai_reply", Work::Call(self.call.message(text))),
                );
                self.done(json!({"fallback": text, "why": why}), ops)
            }
            Some(text) => self.done(json!({"shadow": true, "fallback": text, "why": why}), ops),
            // Nothing to say instead: the job is a dead letter, visible and retryable.
            None => Decided {
                result: JobResult::Dead {
                    error: format!("no answer and no fallback: {why}"),
                },
                ops,
            },
        }
    }

    fn hand_off(&self, reason: &str) -> Decided {
        let Some(handoff) = &self.call.handoff else {
            // The handoff tool is only offered with a `handoff` to run; a model that calls
            // it anyway gets the fallback.
            return self.fall_back(reason);
        };
        metrics::AI_HANDOFFS.inc();
        if self.call.shadow {
            return self.done(json!({"shadow": true, "handoff": reason}), Vec::new());
        }
        // Applied in the commit that finishes this job, not as a job of its own: the chat's
        // next model job (same lane, so after this one) must already see the handoff.
        let mut ops = vec![Op::Apply(Work::Handoff(HandoffChange::Start {
            chat: self.call.state_key(),
            until: self.now + chrono::Duration::seconds(handoff.for_s),
            resume_on: handoff.resume_on.clone(),
            rule: self.job.rule.to_string(),
        }))];
        if let Some(notify) = &handoff.notify {
            ops.push(self.new_job("handoff", Work::Call(with_reason(notify, reason))));
        }
        self.set_fallbacks(0, &mut ops);
        self.done(json!({"handoff": reason}), ops)
    }
}

/// The notification with `Reason: …` as its last line (in its text or caption).
fn with_reason(notify: &OutboundRequest, reason: &str) -> OutboundRequest {
    let mut notify = notify.clone();
    if let Some(crate::vocab::Payload::Json(body)) = &mut notify.body {
        let line = format!("Reason: {reason}");
        let slot = if body["body"].is_string() {
            Some(&mut body["body"])
        } else if body["body"]["text"].is_string() {
            Some(&mut body["body"]["text"])
        } else if body["caption"].is_string() {
            Some(&mut body["caption"])
        } else {
            None
        };
        match slot {
            Some(value) => {
                let text = value.as_str().unwrap_or_default();
                *value = json!(format!("{text}\n\n{line}"));
            }
            None => body["caption"] = json!(line),
        }
    }
    notify
}

#[cfg(test)]
mod tests;
