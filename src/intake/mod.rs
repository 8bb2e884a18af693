//! Intake: the worker that turns stored bodies into events, runs the rules over them and
//! commits the result (dedupe keys, contact changes, jobs, event records) in one transaction.
//!
//! A crash before that commit leaves the body unprocessed and nothing of it applied, so it is
//! processed again at the next start; dedupe keys committed with the result stop a Whapi retry
//! or a replay from firing rules twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Notify, watch};

use crate::ai::MemoryPolicy;
use crate::channels::Channels;
use crate::clock::Clock;
use crate::delivery::{LEASE, ReadyQueue};
use crate::engine::{Evaluation, Planned, RuleTrace};
use crate::events::{ChatKind, Event, EventKind, parse_webhook_owned};
use crate::metrics;
use crate::rules::RuleSet;
use crate::store::{
    ChannelHealth, Completed, Conflict, Handover, Inbound, Lookup, Op, Outcome, Source, Store,
    StoreError, StoreResult,
};
use crate::vocab::{ChatState, Contact, JobKind, MessageStatus, NewJob, Role, Turn};

mod memory;

pub use memory::{EnginePanicked, Evaluated, Memory, NAME as NAME_ATTRIBUTE, agent_resume};

/// How long an event with its own id (a message id) is remembered for dedupe.
const REMEMBER_IDENTIFIED: Duration = Duration::from_secs(48 * 3600);
/// How long an event known only by its content (a participant change) is remembered: long
/// enough to absorb Whapi's retries, short enough that a second real join still counts.
const REMEMBER_ANONYMOUS: Duration = Duration::from_secs(600);
/// Most stored bodies processed and committed together.
const BATCH: u32 = 256;
/// How long a batch of stored bodies stays this instance's: far longer than processing one
/// takes, and after a crash the next start of the same instance takes it up at once.
const CLAIM: Duration = Duration::from_secs(60);
/// Times a batch is processed again after another instance or worker got there first.
const CONFLICT_ATTEMPTS: u32 = 5;

/// The intake worker.
pub struct Intake {
    pub store: Arc<dyn Store>,
    pub rules: watch::Receiver<Arc<RuleSet>>,
    pub clock: Arc<dyn Clock>,
    /// Woken when a body is stored.
    pub wake: Arc<Notify>,
    /// Woken when jobs were written.
    pub delivery: Arc<Notify>,
    /// Events older than this fire no rule (a reconnecting phone replays history).
    pub max_event_age: Option<Duration>,
    /// Where the replies claimed as they are written go, straight to delivery.
    pub ready: Option<ReadyQueue>,
    /// The WhatsApp numbers served: each event is routed to one, or recorded as from an
    /// unknown channel.
    pub channels: Arc<Channels>,
}

impl Intake {
    /// Processes stored bodies until `shutdown` turns true; the body in hand is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let batch = match self.claim().await {
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
            let Err(err) = self.process(&batch).await else {
                continue;
            };
            // One body that cannot be committed must not hold back the others: go one by one.
            tracing::warn!(
                "cannot commit {} webhooks together, trying one by one: {err}",
                batch.len()
            );
            for inbound in &batch {
                if let Err(err) = self.process(std::slice::from_ref(inbound)).await {
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

    /// Processes every stored body not processed yet and returns what each one decided (rule
    /// tests read the immediate actions from it).
    pub async fn process_pending(&self) -> StoreResult<Vec<Outcome>> {
        let mut outcomes = Vec::new();
        loop {
            let batch = self.claim().await?;
            if batch.is_empty() {
                return Ok(outcomes);
            }
            outcomes.extend(self.process(&batch).await?);
        }
    }

    /// The next stored bodies, claimed for this instance.
    async fn claim(&self) -> StoreResult<Vec<Inbound>> {
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(CLAIM).unwrap_or_default();
        self.store.claim_inbound(BATCH, now + lease, now).await
    }

    /// Processes claimed bodies in order and commits all their results in one transaction. When
    /// another instance or worker got there first (an event completed, a chat changed), the
    /// batch is processed again from a fresh read, so nothing acts on state that is gone.
    async fn process(&self, batch: &[Inbound]) -> StoreResult<Vec<Outcome>> {
        let mut attempt = 1;
        loop {
            match self.process_once(batch).await? {
                Ok(outcomes) => return Ok(outcomes),
                Err(conflict) if conflict.lost_claim => {
                    tracing::info!(
                        "{} stored webhooks were taken over by another instance",
                        batch.len()
                    );
                    return Ok(Vec::new());
                }
                Err(conflict) if attempt < CONFLICT_ATTEMPTS => {
                    tracing::debug!(?conflict, "completion conflicted; processing again");
                    attempt += 1;
                }
                Err(conflict) => {
                    return Err(StoreError::Conflict(Box::new(conflict)));
                }
            }
        }
    }

    async fn process_once(&self, batch: &[Inbound]) -> StoreResult<Result<Vec<Outcome>, Conflict>> {
        let now = self.clock.now();
        let rules = self.rules.borrow().clone();
        let bodies: Vec<(i64, Vec<Event>)> = batch
            .iter()
            .map(|i| (i.id, routed(events_of(i), i, &self.channels)))
            .collect();
        let known = self.store.known(lookup(&bodies), now).await?;
        let seen = known.seen;
        let sent = known.sent;
        let awaited = known.awaited;
        let read: Vec<(String, u64)> = known.versions.into_iter().collect();
        // Contacts and chats as the store had them for the whole batch, then kept as earlier
        // events of the batch leave them, so the second message sees what the first one did.
        let mut memory = Memory {
            contacts: known.contacts,
            chats: known.chats,
        };
        let mut this_batch = BTreeSet::new();
        let mut names_asked = BTreeSet::new();
        let mut done = Vec::with_capacity(bodies.len());
        for (inbound, events) in &bodies {
            let mut outcome = Outcome::default();
            for event in events {
                let key = event.dedupe_key();
                if seen.contains(&key) || !this_batch.insert(key.clone()) {
                    tracing::debug!(event = %key, "duplicate, ignored");
                    outcome.records.push(record(event, now, "duplicate"));
                    metrics::EVENTS_DUPLICATE.inc();
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
                if event.channel_name.is_empty() {
                    unknown_channel(&event.channel, now);
                    outcome.records.push(record(event, now, "unknown channel"));
                    continue;
                }
                if event.kind == EventKind::ChannelStatus {
                    outcome.ops.push(Op::ChannelHealth(health_of(event, now)));
                }
                outcome
                    .ops
                    .extend(what_became_of_sent(event, &awaited, now));
                outcome.ops.extend(group_activity(event, now));
                // A status or vote about a message Riposte sent tells the rules who sent it.
                let known_sent = event
                    .message_id
                    .as_ref()
                    .and_then(|id| sent.get(id.as_str()))
                    .filter(|_| matches!(event.kind, EventKind::Status | EventKind::PollVote));
                if let Some(learn) = learn_name(event, &memory, &mut names_asked, now) {
                    outcome.ops.push(learn);
                }
                let with_sent;
                let event = match known_sent {
                    Some(found) => {
                        with_sent = event.clone().with_sent(found.clone());
                        &with_sent
                    }
                    None => event,
                };
                if event.kind == EventKind::Unknown {
                    outcome.records.push(record(event, now, "unknown family"));
                } else if self.too_old(event, now) {
                    outcome
                        .records
                        .push(record(event, now, "older than max-event-age"));
                } else {
                    self.evaluate(&rules, *inbound, event, now, &mut memory, &mut outcome)
                        .await?;
                }
            }
            done.push((*inbound, outcome));
        }
        let jobs = done
            .iter()
            .flat_map(|(_, o)| &o.ops)
            .filter(|op| matches!(op, Op::Job(_)))
            .count();
        let handover = self.ready.as_ref().map(|ready| Handover {
            lease_until: now + chrono::Duration::from_std(LEASE).unwrap_or_default(),
            limit: ready.room(),
        });
        let claimed = match self.store.complete(&done, &read, now, handover).await? {
            Completed::Committed(claimed) => claimed,
            Completed::Conflict(conflict) => return Ok(Err(conflict)),
        };
        let left = jobs - claimed.len();
        if let Some(ready) = &self.ready {
            ready.hand_over(claimed);
        }
        if left > 0 {
            self.delivery.notify_one();
        }
        Ok(Ok(done.into_iter().map(|(_, outcome)| outcome).collect()))
    }

    async fn evaluate(
        &self,
        rules: &RuleSet,
        inbound: i64,
        event: &Event,
        now: DateTime<Utc>,
        memory: &mut Memory,
        outcome: &mut Outcome,
    ) -> StoreResult<()> {
        let evaluated = match memory.evaluate(rules, event, now, false) {
            Ok(evaluated) => evaluated,
            Err(EnginePanicked { resumed }) => {
                let resumed = resumed.map(|op| *op);
                tracing::error!(event = %event.dedupe_key(), "rule evaluation panicked; event skipped");
                outcome.ops.extend(resumed);
                outcome.records.push(record(event, now, "engine error"));
                return Ok(());
            }
        };
        let Evaluated {
            mut evaluation,
            contact,
            chat,
            resumed,
            fired,
        } = evaluated;
        outcome.ops.extend(resumed);
        metrics::EVENTS_PROCESSED.inc();
        if let Some(policy) = &rules.memory
            && let Some(turn) = turn_of(event, policy, now)
        {
            outcome.ops.push(Op::Turn(turn));
        }
        let planned = std::mem::take(&mut evaluation.planned);
        plan(planned, &evaluation.contact.phone, event, now, outcome);
        // What the rules saw goes with the record, so `/admin/events` can explain every rule
        // that did not match without the hot path writing a line per rule.
        let seen = Seen {
            rules_version: &rules.version,
            checked: evaluation.checked,
            inputs: Inputs {
                inbound,
                contact: &contact,
                chat: &chat,
            },
        };
        outcome.records.push(record_with(
            event,
            now,
            "processed",
            Some(&evaluation),
            Some(seen),
        ));
        outcome.ops.extend(fired);
        Ok(())
    }

    fn too_old(&self, event: &Event, now: DateTime<Utc>) -> bool {
        match (self.max_event_age, event.at) {
            (Some(max), Some(at)) => now.timestamp() - at > max.as_secs() as i64,
            _ => false,
        }
    }
}

/// The job name of asking WhatsApp for a group member's name (not a rule's action).
pub const LEARN_NAME: &str = "learn_name";

/// A group member Riposte has no name for: asks WhatsApp once (`GET /contacts/{id}/profile`);
/// the answer is kept as the contact's `name`, for the member's later events.
fn learn_name(
    event: &Event,
    memory: &Memory,
    asked: &mut BTreeSet<String>,
    now: DateTime<Utc>,
) -> Option<Op> {
    let sender = event.sender.as_ref()?;
    if !memory::is_membership(&event.kind) || sender.name.is_some() || sender.phone.is_empty() {
        return None;
    }
    let known = memory
        .contacts
        .get(&sender.phone)
        .is_some_and(|c| c.attrs.contains_key(memory::NAME));
    // One question per member and batch.
    if known || !asked.insert(sender.phone.clone()) {
        return None;
    }
    let segment = crate::whapi::path::IdKind::Contact
        .segment("the member's number", &sender.phone)
        .ok()?;
    let mut request = crate::vocab::OutboundRequest::whapi(
        "GET",
        format!("/contacts/{segment}/profile"),
        None,
        &crate::vocab::ChatId::new(sender.phone.as_str()),
    );
    request.through(&event.channel_name);
    let mut job = NewJob::action(
        "group-member-names",
        LEARN_NAME,
        &event.dedupe_key(),
        crate::vocab::Work::Call(request),
        now,
    );
    job.kind = JobKind::Answer;
    job.contact = Some(sender.phone.clone());
    Some(Op::Job(Box::new(job)))
}

/// Who posted in a group, or joined it, and when: what a campaign for inactive members reads.
fn group_activity(event: &Event, now: DateTime<Utc>) -> Option<Op> {
    let chat = event.chat.as_ref().filter(|c| c.kind == ChatKind::Group)?;
    let phone = event.sender.as_ref().map(|s| s.phone.as_str())?;
    let joined = match event.kind {
        EventKind::GroupJoin => true,
        EventKind::Message
        | EventKind::ButtonReply
        | EventKind::ListReply
        | EventKind::PollVote
        | EventKind::Reaction => false,
        _ => return None,
    };
    (!phone.is_empty() && !event.from_me).then(|| Op::GroupActivity {
        group: chat.id.clone(),
        phone: phone.to_owned(),
        at: now,
        joined,
    })
}

/// What an event says of the messages Riposte sent: a status moves one on, and a contact
/// who writes has answered the campaign messages of the day before.
fn what_became_of_sent(
    event: &Event,
    awaited: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Option<Op> {
    if event.kind == EventKind::Status {
        return Some(Op::Status(MessageStatus {
            id: event.message_id.as_ref()?.as_str().to_owned(),
            status: event.status.clone()?,
            at: now,
        }));
    }
    // Only a chat a campaign message awaits is written down: most messages answer none, and
    // cost no more than this look.
    if awaited.is_empty() || !writes(event) {
        return None;
    }
    let chat = crate::vocab::ChatId::new(event.chat.as_ref()?.id.as_str()).memory_key();
    awaited
        .contains(&chat)
        .then_some(Op::Replied { chat, at: now })
}

/// Whether an event is the contact writing (which answers a campaign message).
fn writes(event: &Event) -> bool {
    !event.from_me
        && matches!(
            event.kind,
            EventKind::Message
                | EventKind::ButtonReply
                | EventKind::ListReply
                | EventKind::PollVote
                | EventKind::Reaction
        )
}

/// What a batch is about: the dedupe keys, phones and chats of its events, each once.
fn lookup(bodies: &[(i64, Vec<Event>)]) -> Lookup {
    let events = || bodies.iter().flat_map(|(_, events)| events);
    let keys = events().map(Event::dedupe_key).collect();
    let mut phones: Vec<String> = events()
        .filter_map(|e| e.sender.as_ref().map(|s| s.phone.clone()))
        .collect();
    let mut chats: Vec<String> = events().filter_map(Event::chat_key).collect();
    let mut messages: Vec<String> = events()
        .filter(|e| matches!(e.kind, EventKind::Status | EventKind::PollVote))
        .filter_map(|e| e.message_id.as_ref().map(|m| m.as_str().to_owned()))
        .collect();
    let mut writing: Vec<String> = events()
        .filter(|e| writes(e))
        .filter_map(|e| e.chat.as_ref())
        .map(|c| crate::vocab::ChatId::new(c.id.as_str()).memory_key())
        .collect();
    for list in [&mut phones, &mut chats, &mut messages, &mut writing] {
        list.sort_unstable();
        list.dedup();
        list.retain(|v| !v.is_empty());
    }
    Lookup {
        keys,
        phones,
        chats,
        messages,
        writing,
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
        Source::Webhook { path, method } => parse_webhook_owned(body, path, method),
        Source::Custom { name } => vec![Event::custom(name, &format!("e{}", inbound.id), body)],
    }
}

/// Each event with the name of the channel it came in on: the one the webhook's URL names,
/// else the one with its `channel_id`. An event no channel takes keeps an empty name; custom
/// events come in on the default channel.
pub fn routed(mut events: Vec<Event>, inbound: &Inbound, channels: &Channels) -> Vec<Event> {
    let named = match &inbound.source {
        Source::Webhook { path, .. } => channels.in_path(path),
        Source::Custom { .. } => {
            let name = &channels.default_channel().name;
            for event in &mut events {
                event.channel_name.clone_from(name);
            }
            return events;
        }
    };
    for event in &mut events {
        event.channel_name = channels
            .route(&event.channel, named)
            .map(|c| c.name.clone())
            .unwrap_or_default();
    }
    events
}

/// A channel's health as a `channel_status` event reports it.
fn health_of(event: &Event, now: DateTime<Utc>) -> ChannelHealth {
    let detail = ["/status/text", "/status/code", "/reason", "/text"]
        .iter()
        .find_map(|pointer| event.item.pointer(pointer))
        .map(|v| match v {
            Value::String(s) => crate::quote::quoted(s, 200),
            other => crate::quote::quoted(&other.to_string(), 200),
        });
    ChannelHealth {
        name: event.channel_name.clone(),
        status: event
            .status
            .as_deref()
            .unwrap_or("unknown")
            .to_ascii_lowercase(),
        detail,
        at: now,
    }
}

/// Counts an event from a channel no configured channel has, and says so once an hour per id.
fn unknown_channel(id: &str, now: DateTime<Utc>) {
    use std::sync::Mutex;
    static WARNED: Mutex<Vec<(String, DateTime<Utc>)>> = Mutex::new(Vec::new());
    metrics::WEBHOOKS_UNKNOWN_CHANNEL.inc();
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    warned.retain(|(_, at)| now - *at < chrono::Duration::hours(1));
    if warned.iter().any(|(seen, _)| seen == id) {
        return;
    }
    // A flood of made-up ids must not grow this list without end.
    if warned.len() < 1000 {
        warned.push((id.to_owned(), now));
    }
    tracing::warn!(
        channel_id = %crate::quote::quoted(id, 64),
        "a webhook came from a channel that is not configured: stored and recorded, no rule fired; add it to the channels file if it is yours"
    );
}

/// The message of an event as a turn of its chat's conversation, if it is one: what the
/// contact wrote, or what a person wrote from the business's phone (our own API sends come
/// back as `from_me` too, with `source: api`; they are remembered when they are sent).
pub fn turn_of(event: &Event, policy: &MemoryPolicy, now: DateTime<Utc>) -> Option<Turn> {
    if !matches!(
        event.kind,
        EventKind::Message | EventKind::ButtonReply | EventKind::ListReply
    ) {
        return None;
    }
    let text = event.text.as_deref().filter(|t| !t.trim().is_empty())?;
    let chat = event.chat.as_ref()?;
    let memory_key = crate::vocab::ChatId::new(&chat.id).memory_key();
    let role = if !event.from_me {
        Role::User
    } else if policy.agent_messages
        && event.item.get("source").and_then(Value::as_str) != Some("api")
    {
        Role::Agent
    } else {
        return None;
    };
    Some(Turn {
        chat: crate::vocab::scoped(&event.channel_name, &memory_key),
        role,
        text: text.to_owned(),
        at: now,
    })
}

/// Turns the planned effects into ordered store operations: local changes at once, calls and
/// follow-ups as jobs. `phone` is the contact's, for follow-ups (opt-outs and `unless`).
pub fn plan(
    planned: Vec<Planned>,
    phone: &str,
    event: &Event,
    now: DateTime<Utc>,
    outcome: &mut Outcome,
) {
    let event_key = event.dedupe_key();
    for planned in planned {
        let work = planned.work;
        let Some(schedule) = planned.schedule else {
            outcome.ops.push(if work.is_local() {
                Op::Apply(work)
            } else {
                Op::Job(Box::new(NewJob::action(
                    &planned.rule,
                    planned.action,
                    &event_key,
                    work,
                    now,
                )))
            });
            continue;
        };
        let mut job = NewJob::action(&planned.rule, planned.action, &event_key, work, now);
        job.kind = JobKind::FollowUp;
        job.key = schedule.key;
        job.contact = Some(phone.to_owned()).filter(|p| !p.is_empty());
        job.unless = schedule
            .unless
            .as_ref()
            .and_then(|u| serde_json::to_value(u).ok());
        job.vars = schedule.vars;
        match schedule.run_at {
            Ok(at) => job.run_at = at,
            Err(reason) => job.dead = Some(reason),
        }
        outcome.ops.push(Op::Job(Box::new(job)));
    }
}

/// One event's line in the event log, as JSON text: serialised straight from the event and
/// its evaluation, with no JSON tree built in between.
#[derive(Serialize)]
struct Record<'a> {
    at: String,
    kind: String,
    id: &'a str,
    channel: &'a str,
    chat: Option<&'a str>,
    sender: Option<&'a str>,
    text: Option<&'a str>,
    result: &'a str,
    rules: Option<&'a [RuleTrace]>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    seen: Option<Seen<'a>>,
}

/// What the rules saw when they ran.
#[derive(Serialize)]
struct Seen<'a> {
    rules_version: &'a str,
    checked: usize,
    inputs: Inputs<'a>,
}

#[derive(Serialize)]
struct Inputs<'a> {
    inbound: i64,
    contact: &'a Contact,
    chat: &'a ChatState,
}

/// The record of an event no rule ran on.
fn record(event: &Event, now: DateTime<Utc>, result: &str) -> String {
    record_with(event, now, result, None, None)
}

fn record_with(
    event: &Event,
    now: DateTime<Utc>,
    result: &str,
    evaluation: Option<&Evaluation>,
    seen: Option<Seen<'_>>,
) -> String {
    let line = Record {
        at: now.to_rfc3339(),
        kind: event.kind.to_string(),
        id: &event.id,
        channel: &event.channel,
        chat: event.chat.as_ref().map(|c| c.id.as_str()),
        sender: event.sender.as_ref().map(|s| s.phone.as_str()),
        text: event.text.as_deref(),
        result,
        rules: evaluation.map(|e| e.rules.as_slice()),
        seen,
    };
    // Serialising plain structs of strings and numbers cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}
