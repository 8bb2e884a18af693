//! `lookup:` jobs: ask another system, then go on with the rest of the rule with its answer
//! (or its `on_error` once it finally fails), in the same commit as the job's result.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;

use super::Delivery;
use crate::events::Event;
use crate::store::Op;
use crate::vocab::{Job, JobResult, LookupCall};
use crate::whapi::CallOutcome;

/// Answers given instead of calling, by lookup name (rule tests): an answer, or a failure.
#[derive(Debug, Default)]
pub struct ScriptedLookups(Mutex<BTreeMap<String, Result<Value, String>>>);

impl ScriptedLookups {
    /// From now on, lookup `name` answers `answer` (or fails with its error).
    pub fn set(&self, name: &str, answer: Result<Value, String>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), answer);
    }

    fn answer(&self, name: &str) -> Result<Value, String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .unwrap_or_else(|| Err(format!("no scripted answer for lookup `{name}`")))
    }
}

/// A JSON answer as templates read it; an empty one is `null`.
fn parse_answer(body: &str) -> Result<Value, String> {
    if body.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(body).map_err(|e| {
        format!(
            "the answer is not JSON ({e}): {}",
            crate::quote::quoted(body, 200)
        )
    })
}

impl Delivery {
    /// Makes a lookup's call; with the final answer, renders what the rule does next.
    pub(super) async fn lookup(&self, job: &Job, call: &LookupCall) -> (JobResult, Vec<Op>) {
        let answer = match &self.lookups {
            Some(script) => script.answer(&call.name),
            None => {
                let key = format!("riposte-job-{}", job.id);
                let timeout = Duration::from_millis(call.timeout_ms.max(1));
                match self.client.ask(&call.request, &key, timeout).await {
                    CallOutcome::Delivered { body, .. } => parse_answer(&body),
                    CallOutcome::Rejected { error } => Err(error),
                    CallOutcome::Retry { error, retry_after } => {
                        match self.retry_or_give_up(job, error, retry_after) {
                            JobResult::Dead { error } => Err(error),
                            retry => return (retry, Vec::new()),
                        }
                    }
                }
            }
        };
        let now = self.clock.now();
        let event = Event::from_snapshot(&call.event);
        let phone = event
            .as_ref()
            .and_then(|e| e.sender.as_ref())
            .map(|s| s.phone.clone())
            .unwrap_or_default();
        let contact = match self.store.contact(&phone).await {
            Ok(contact) => contact,
            Err(err) => {
                // Nothing was decided: ask again shortly rather than go on without the contact.
                return (
                    JobResult::Retry {
                        at: now + chrono::Duration::seconds(1),
                        error: format!("cannot read the contact to go on with: {err}"),
                    },
                    Vec::new(),
                );
            }
        };
        let rules = self.rules.borrow().clone();
        let evaluation = match crate::engine::resume(&rules, call, answer.clone(), &contact, now) {
            Ok(evaluation) => evaluation,
            Err(why) => {
                tracing::warn!(job = %job.id, rule = %call.rule, "{why}");
                return (JobResult::Dead { error: why }, Vec::new());
            }
        };
        let mut outcome = crate::store::Outcome::default();
        if let Some(event) = &event {
            crate::intake::plan(
                evaluation.planned,
                &evaluation.contact.phone,
                event,
                now,
                &mut outcome,
            );
        }
        let actions = serde_json::to_value(&evaluation.rules).unwrap_or(Value::Null);
        let result = match answer {
            Ok(answer) => {
                tracing::info!(job = %job.id, rule = %call.rule, lookup = %call.name, "answered; the rule goes on");
                JobResult::Done {
                    response: serde_json::json!({ "answer": answer, "then": actions }).to_string(),
                }
            }
            Err(error) => {
                let what = if call_has_on_error(&rules, call) {
                    "its on_error ran"
                } else {
                    "the rest of the rule is skipped"
                };
                tracing::warn!(job = %job.id, rule = %call.rule, lookup = %call.name, "lookup failed, {what}: {error}");
                JobResult::Dead {
                    error: format!("lookup `{}` failed, {what}: {error}", call.name),
                }
            }
        };
        (result, outcome.ops)
    }
}

fn call_has_on_error(rules: &crate::rules::RuleSet, call: &LookupCall) -> bool {
    rules
        .rules
        .iter()
        .find(|r| r.name == call.rule)
        .and_then(|r| r.actions.get(call.step as usize))
        .is_some_and(
            |s| matches!(&s.action, crate::actions::Action::Lookup(l) if !l.on_error.is_empty()),
        )
}
