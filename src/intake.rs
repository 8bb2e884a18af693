//! Intake: the worker that turns stored bodies into events, runs the rules over them and
//! commits the result (dedupe keys, contact changes, jobs, event records) in one transaction.
//!
//! A crash before that commit leaves the body unprocessed and nothing of it applied, so it is
//! processed again at the next start; dedupe keys committed with the result stop a Whapi retry
//! or a replay from firing rules twice.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::actions::Effect;
use crate::engine::{self, Evaluation};
use crate::events::{Event, EventKind, WebhookBody, parse_webhook};
use crate::rules::RuleSet;
use crate::store::{Contact, Inbound, NewJob, Outcome, Source, Store, StoreResult};

/// How long an event with its own id (a message id) is remembered for dedupe.
const REMEMBER_IDENTIFIED: Duration = Duration::from_secs(48 * 3600);
/// How long an event known only by its content (a participant change) is remembered: long
/// enough to absorb Whapi's retries, short enough that a second real join still counts.
const REMEMBER_ANONYMOUS: Duration = Duration::from_secs(600);

/// The intake worker.
pub struct Intake {
    pub store: Arc<dyn Store>,
    pub rules: watch::Receiver<Arc<RuleSet>>,
    /// Woken when a body is stored.
    pub wake: Arc<Notify>,
    /// Woken when jobs were written.
    pub delivery: Arc<Notify>,
    /// Events older than this fire no rule (a reconnecting phone replays history).
    pub max_event_age: Option<Duration>,
}

impl Intake {
    /// Processes stored bodies until `shutdown` turns true; the body in hand is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let batch = match self.store.unprocessed(64).await {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::error!("cannot read stored webhooks: {err}");
                    Vec::new()
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            for inbound in batch {
                if let Err(err) = self.process(&inbound).await {
                    tracing::error!(
                        inbound = inbound.id,
                        "cannot process stored webhook, will retry: {err}"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }

    async fn process(&self, inbound: &Inbound) -> StoreResult<()> {
        let now = Utc::now();
        let rules = self.rules.borrow().clone();
        let events = events_of(inbound);
        let keys: Vec<String> = events.iter().map(Event::dedupe_key).collect();
        let seen = self.store.seen(&keys, now).await?;
        let mut outcome = Outcome::default();
        let mut contacts: HashMap<String, Contact> = HashMap::new();
        let mut this_body = BTreeSet::new();
        for event in &events {
            let key = event.dedupe_key();
            if seen.contains(&key) || !this_body.insert(key.clone()) {
                tracing::debug!(event = %key, "duplicate, ignored");
                outcome.records.push(record(event, now, "duplicate", None));
                continue;
            }
            let keep = if event.has_own_id {
                REMEMBER_IDENTIFIED
            } else {
                REMEMBER_ANONYMOUS
            };
            outcome.seen.push((
                key,
                now + chrono::Duration::from_std(keep).unwrap_or_default(),
            ));
            if event.kind == EventKind::Unknown {
                outcome
                    .records
                    .push(record(event, now, "unknown family", None));
                continue;
            }
            if self.too_old(event, now) {
                outcome
                    .records
                    .push(record(event, now, "older than max-event-age", None));
                continue;
            }
            let phone = event
                .sender
                .as_ref()
                .map(|s| s.phone.clone())
                .unwrap_or_default();
            let contact = match contacts.get(&phone) {
                Some(c) => c.clone(),
                None => self.store.contact(&phone).await?,
            };
            // A bug in the engine must cost one event, not stop intake for every later one.
            let evaluated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                engine::evaluate(&rules, event, &contact, now, false)
            }));
            let Ok(evaluation) = evaluated else {
                tracing::error!(event = %event.dedupe_key(), "rule evaluation panicked; event skipped");
                outcome
                    .records
                    .push(record(event, now, "engine error", None));
                continue;
            };
            plan(&evaluation, event, now, &mut outcome);
            outcome
                .records
                .push(record(event, now, "processed", Some(&evaluation)));
            contacts.insert(phone, evaluation.contact);
        }
        let has_jobs = !outcome.jobs.is_empty();
        self.store.complete(inbound.id, &outcome, now).await?;
        if has_jobs {
            self.delivery.notify_one();
        }
        Ok(())
    }

    fn too_old(&self, event: &Event, now: DateTime<Utc>) -> bool {
        match (self.max_event_age, event.at) {
            (Some(max), Some(at)) => now.timestamp() - at > max.as_secs() as i64,
            _ => false,
        }
    }
}

/// The events a stored body holds.
pub fn events_of(inbound: &Inbound) -> Vec<Event> {
    let body: Value = match serde_json::from_str(&inbound.body) {
        Ok(body) => body,
        Err(err) => {
            // Bodies are checked before they are stored; this only guards against a damaged row.
            tracing::error!(inbound = inbound.id, "stored body is not JSON: {err}");
            return Vec::new();
        }
    };
    match &inbound.source {
        Source::Webhook { path, method } => parse_webhook(WebhookBody {
            body: &body,
            path,
            method,
        }),
        Source::Custom { name } => vec![Event::custom(name, &format!("e{}", inbound.id), body)],
    }
}

fn plan(evaluation: &Evaluation, event: &Event, now: DateTime<Utc>, outcome: &mut Outcome) {
    for planned in &evaluation.planned {
        match &planned.effect {
            Effect::Contact(change) => outcome.contact_changes.push(change.clone()),
            Effect::Request(request) => outcome.jobs.push(NewJob {
                rule: planned.rule.clone(),
                action: planned.action.to_owned(),
                event: event.dedupe_key(),
                request: request.clone(),
                run_at: now,
            }),
        }
    }
}

fn record(
    event: &Event,
    now: DateTime<Utc>,
    result: &str,
    evaluation: Option<&Evaluation>,
) -> Value {
    json!({
        "at": now.to_rfc3339(),
        "kind": event.kind.to_string(),
        "id": event.id,
        "channel": event.channel,
        "chat": event.chat.as_ref().map(|c| c.id.as_str()),
        "sender": event.sender.as_ref().map(|s| s.phone.as_str()),
        "text": event.text,
        "result": result,
        "rules": evaluation.map(|e| &e.rules),
    })
}
