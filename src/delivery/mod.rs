//! Delivery: the worker that claims due jobs, makes their calls and records the result, with
//! retries (exponential backoff, full jitter, `Retry-After`) and dead letters.
//!
//! A crash between the remote answer and the commit that marks the job done is the only window
//! in which a call can be repeated: the job's lease expires and it is claimed again.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use crate::actions::Unless;
use crate::ai::Assistant;
use crate::campaigns::OPTED_OUT;
use crate::clock::Clock;
use crate::events::EventKind;
use crate::metrics;
use crate::rules::RuleSet;
use crate::store::{Op, Store, StoreResult};
use crate::vocab::{Job, JobKind, JobResult, OutboundRequest, Payload, Role, Target, Turn, Work};
use crate::whapi::{CallOutcome, Client};

mod guard;
mod lookup;
mod names;
mod ready;
mod retry;
mod sent;

pub use guard::{Breaker, BreakerPolicy, Guard, Guards};
pub use lookup::ScriptedLookups;
pub use ready::{ReadyJobs, ReadyQueue, STALE as READY_STALE, ready_queue};
pub use retry::RetryPolicy;

/// How long a claimed job stays claimed before another worker may take it over.
pub const LEASE: Duration = Duration::from_secs(120);
/// Longest sleep when nothing is due, so a job written by another process is seen.
const IDLE: Duration = Duration::from_secs(1);

/// The delivery worker.
pub struct Delivery {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub client: Client,
    pub policy: RetryPolicy,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Woken when new jobs are written.
    pub wake: Arc<Notify>,
    /// Told about every job that runs (not skipped), before its result is recorded, and about
    /// each handoff an `ai_reply` starts.
    pub observer: Option<Observer>,
    /// Per channel: pauses calls while Whapi.Cloud keeps failing, and spaces them.
    pub guards: Arc<Guards>,
    /// Asks the language model for `ai_reply` jobs.
    pub assistant: Arc<Assistant>,
    /// The current rules: whether sent messages are remembered for `ai_reply`.
    pub rules: watch::Receiver<Arc<RuleSet>>,
    /// Jobs intake claimed as it wrote them.
    pub ready: Option<ReadyJobs>,
    /// Answers for `lookup:` jobs instead of calls (rule tests); `None` calls.
    pub lookups: Option<Arc<ScriptedLookups>>,
}

/// A callback that sees each job as it runs (rule tests record the actions with it).
pub type Observer = Arc<dyn Fn(&Job) + Send + Sync>;

impl Delivery {
    /// Runs until `shutdown` turns true, then waits for calls in flight to be recorded.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut ready = self.ready.take();
        let this = Arc::new(self);
        // A slot is held while a job's call is made, not while its result is committed: the
        // commit is shared with other writes and would hold the slot idle.
        let slots = Arc::new(Semaphore::new(this.concurrency.max(1)));
        let mut running = JoinSet::new();
        let start = |running: &mut JoinSet<()>, job: Job| {
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                return false;
            };
            let this = this.clone();
            running.spawn(async move { this.deliver(job, Some(slot)).await });
            true
        };
        // Whether the database may hold due jobs: at start, when woken (jobs written, a lane
        // freed), and on the idle timer, which catches jobs that came due meanwhile.
        let mut look = true;
        loop {
            if *shutdown.borrow() {
                break;
            }
            while running.try_join_next().is_some() {}
            let mut room = slots.available_permits();
            // Jobs handed over were claimed first; they go before any claimed now.
            while room > 0 {
                let Some((job, since)) = ready.as_mut().and_then(ReadyJobs::try_next) else {
                    break;
                };
                if since.elapsed() < ready::STALE && start(&mut running, job) {
                    room -= 1;
                }
            }
            if room > 0 && look {
                let now = this.clock.now();
                match this.store.claim_jobs(now, now + LEASE, room as u32).await {
                    Ok(jobs) => {
                        // A full claim may have left more behind.
                        look = jobs.len() == room;
                        for job in jobs {
                            start(&mut running, job);
                        }
                    }
                    Err(err) => {
                        tracing::error!("cannot claim jobs: {err}");
                        look = false;
                    }
                }
                continue;
            }
            let idle = if running.is_empty() {
                this.idle_time().await
            } else {
                IDLE
            };
            let handed = async {
                match ready.as_mut() {
                    Some(ready) if room > 0 => ready.next().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                Ok(_) = slots.clone().acquire_owned(), if room == 0 => {}
                Some((job, since)) = handed => {
                    if since.elapsed() < ready::STALE {
                        start(&mut running, job);
                    }
                }
                () = this.wake.notified() => look = true,
                () = tokio::time::sleep(idle) => look = true,
                _ = shutdown.changed() => {}
            }
        }
        while running.join_next().await.is_some() {}
    }

    /// Runs every job that is due now, one after the other, until none is left (rule tests
    /// call this instead of running the worker).
    pub async fn drain(&self) -> StoreResult<()> {
        loop {
            let now = self.clock.now();
            let jobs = self.store.claim_jobs(now, now + LEASE, 100).await?;
            if jobs.is_empty() {
                return Ok(());
            }
            for job in jobs {
                self.deliver(job, None).await;
            }
        }
    }

    async fn idle_time(&self) -> Duration {
        match self.store.next_job_due().await {
            Ok(Some(due)) => (due - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(5), IDLE),
            _ => IDLE,
        }
    }

    /// Runs a job and records its result; `slot` is given back once the call is made.
    async fn deliver(&self, job: Job, slot: Option<OwnedSemaphorePermit>) {
        let (result, ops) = match self.skip_reason(&job).await {
            Ok(Some(reason)) => {
                tracing::info!(job = %job.id, rule = %job.rule, "skipped: {reason}");
                (JobResult::Skipped { reason }, Vec::new())
            }
            Ok(None) => match self.held_by_breaker(&job) {
                Some(later) => (later, Vec::new()),
                None => {
                    if let Some(observe) = &self.observer {
                        observe(&job);
                    }
                    self.perform(&job).await
                }
            },
            Err(err) => {
                // The lease will expire and the job will be tried again.
                tracing::error!(job = %job.id, "cannot check the job's contact: {err}");
                return;
            }
        };
        drop(slot);
        match &result {
            JobResult::Done { .. } => metrics::JOBS_DONE.inc(),
            JobResult::Retry { .. } => metrics::JOBS_RETRIED.inc(),
            JobResult::Dead { .. } => metrics::JOBS_DEAD.inc(),
            JobResult::Skipped { .. } => metrics::JOBS_SKIPPED.inc(),
            JobResult::Later { .. } => {}
        }
        if let Some(observe) = &self.observer {
            // What a job applies with its result (a handoff an `ai_reply` starts, the actions
            // after a lookup, in their order) is told to the observer as the jobs it stands for.
            let goes_on = matches!(job.work, Work::Lookup(_));
            for op in &ops {
                let (action, work) = match op {
                    Op::Apply(work) => (
                        match work {
                            Work::Handoff(_) => "handoff",
                            Work::Cancel { .. } => "cancel",
                            _ => "set",
                        },
                        work,
                    ),
                    Op::Job(new) if goes_on && new.kind == JobKind::Action => {
                        (new.action.as_str(), &new.work)
                    }
                    _ => continue,
                };
                if goes_on || matches!(work, Work::Handoff(_)) {
                    observe(&Job {
                        kind: JobKind::Answer,
                        action: action.into(),
                        work: work.clone(),
                        ..job.clone()
                    });
                }
            }
        }
        let wrote_jobs = ops.iter().any(|op| matches!(op, Op::Job(_)));
        match self
            .store
            .finish_job_with(job.id, &result, ops, self.clock.now())
            .await
        {
            Err(err) => tracing::error!(job = %job.id, "cannot record job result: {err}"),
            Ok(lane_due) if lane_due || wrote_jobs => self.wake.notify_one(),
            Ok(_) => {}
        }
    }

    /// A call through a channel whose breaker is open waits until it may probe; calls through
    /// other channels go on. The wait is not an attempt.
    fn held_by_breaker(&self, job: &Job) -> Option<JobResult> {
        let Work::Call(request) = &job.work else {
            return None;
        };
        if request.target != Target::Whapi || self.client.is_dry(request) {
            return None;
        }
        let guard = self.guards.of(request.channel.as_deref());
        let guard::Permit::WaitUntil(until) = guard.breaker.permit() else {
            return None;
        };
        let wait = until.saturating_duration_since(tokio::time::Instant::now());
        Some(JobResult::Later {
            at: self.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default(),
            reason: format!(
                "channel `{}`: Whapi.Cloud keeps failing; waiting for the breaker",
                guard.name
            ),
        })
    }

    /// Follow-ups and campaign sends never reach a contact who opted out meanwhile, and a
    /// follow-up's `unless` is checked against the contact as it is now.
    async fn skip_reason(&self, job: &Job) -> StoreResult<Option<String>> {
        // Answers to what a contact just wrote, like a rule's own replies, are not held back.
        if matches!(job.kind, JobKind::Action | JobKind::Answer) {
            return Ok(None);
        }
        let mut phones: Vec<String> = job.contact.iter().cloned().collect();
        if let Work::Call(request) = &job.work
            && let Some(to) = request.recipient_phone()
        {
            phones.push(to);
        }
        let now = self.clock.now();
        // Opting out of one number is a tag of its own: `opted_out:CHANNEL`.
        let channel = &self.guards.of(job.work.channel()).name;
        let of_channel = format!("{OPTED_OUT}:{channel}");
        for phone in &phones {
            let contact = self.store.contact(phone).await?;
            if let Some(tag) = [OPTED_OUT, of_channel.as_str()]
                .into_iter()
                .find(|tag| contact.tags.contains(*tag))
            {
                return Ok(Some(format!("{phone} is tagged `{tag}`")));
            }
        }
        let Some(unless) = job
            .unless
            .as_ref()
            .and_then(|u| serde_json::from_value::<Unless>(u.clone()).ok())
        else {
            return Ok(None);
        };
        let contact = self
            .store
            .contact(job.contact.as_deref().unwrap_or_default())
            .await?;
        Ok(match unless.skip_reason(&contact, job.vars.as_ref(), now) {
            Ok(reason) => reason,
            // A broken expression must not send what the author meant to hold back.
            Err(err) => Some(format!("unless could not be evaluated ({err}); not sent")),
        })
    }

    /// Runs a job; returns its result and what it leaves behind (committed with the result).
    async fn perform(&self, job: &Job) -> (JobResult, Vec<Op>) {
        let local = match &job.work {
            Work::Call(request) => {
                let result = self.call(job, request).await;
                let mut ops = self.remember_sent(request, &result);
                // What became of a message is kept where someone reads it: a campaign's
                // funnel, or a rule on statuses or poll votes (like conversations, kept only
                // while some rule uses them).
                let keep = job.kind == JobKind::Campaign || {
                    let rules = self.rules.borrow();
                    rules.listens_to(&EventKind::Status) || rules.listens_to(&EventKind::PollVote)
                };
                ops.extend(sent::record(job, request, &result, keep, self.clock.now()));
                ops.extend(names::learned(job, &result));
                return (result, ops);
            }
            Work::Lookup(call) => return self.lookup(job, call).await,
            Work::Ai(call) => {
                let now = self.clock.now();
                let knowledge = call.knowledge.as_deref().and_then(|id| {
                    let found = self.rules.borrow().knowledge(id, job.rule.as_str());
                    if found.is_none() {
                        tracing::warn!(job = %job.id, rule = %job.rule, "the rule's knowledge is gone from the rules; answering without it");
                    }
                    found
                });
                return match self
                    .assistant
                    .run(&*self.store, job, call, knowledge.as_deref(), now)
                    .await
                {
                    Ok(decided) => (decided.result, decided.ops),
                    Err(err) => (
                        JobResult::Retry {
                            at: now + chrono::Duration::seconds(1),
                            error: err.to_string(),
                        },
                        Vec::new(),
                    ),
                };
            }
            local => Op::Apply(local.clone()),
        };
        // The change goes in with the job's result, in one commit.
        (
            JobResult::Done {
                response: "applied".into(),
            },
            vec![local],
        )
    }

    /// A message sent to a chat becomes part of its conversation, while rules use `ai_reply`.
    fn remember_sent(&self, request: &OutboundRequest, result: &JobResult) -> Vec<Op> {
        if !matches!(result, JobResult::Done { .. })
            || request.target != Target::Whapi
            || !request.path.starts_with("/messages/")
            || self.rules.borrow().memory.is_none()
        {
            return Vec::new();
        }
        let Some(Payload::Json(body)) = &request.body else {
            return Vec::new();
        };
        let Some(to) = body.get("to").and_then(|v| v.as_str()) else {
            return Vec::new();
        };
        let text = [&body["body"], &body["body"]["text"], &body["caption"]]
            .into_iter()
            .find_map(|v| v.as_str())
            .map(str::to_owned)
            .or_else(|| {
                body["media"]
                    .as_str()
                    .map(|_| format!("[{}]", request.path.trim_start_matches("/messages/")))
            });
        match text {
            Some(text) if !text.trim().is_empty() => vec![Op::Turn(Turn {
                chat: crate::vocab::scoped(
                    crate::vocab::channel::or_default(request.channel.as_deref()),
                    &crate::vocab::ChatId::new(to).memory_key(),
                ),
                role: Role::Bot,
                text,
                at: self.clock.now(),
            })],
            _ => Vec::new(),
        }
    }

    async fn call(&self, job: &Job, request: &OutboundRequest) -> JobResult {
        let key = format!("riposte-job-{}", job.id);
        let dry = self.client.is_dry(request);
        let guard = (request.target == Target::Whapi && !dry)
            .then(|| self.guards.of(request.channel.as_deref()));
        if let Some(pacer) = guard.and_then(|g| g.pacer.as_ref()) {
            pacer.wait().await;
        }
        let outcome = self.client.call(request, &key).await;
        if let Some(guard) = guard {
            let counted = match &outcome {
                CallOutcome::Retry { .. } => {
                    guard.breaker.failure();
                    &guard.counters.failed
                }
                CallOutcome::Rejected { .. } => {
                    guard.breaker.success();
                    &guard.counters.failed
                }
                CallOutcome::Delivered { .. } => {
                    guard.breaker.success();
                    &guard.counters.sent
                }
            };
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        match outcome {
            CallOutcome::Delivered { status, body } => {
                let what = if dry { "logged (dry-run)" } else { "delivered" };
                tracing::info!(job = %job.id, rule = %job.rule, action = %job.action, status, "{what}");
                JobResult::Done { response: body }
            }
            CallOutcome::Rejected { error } => {
                tracing::warn!(job = %job.id, rule = %job.rule, action = %job.action, "rejected, moved to dead letters: {error}");
                JobResult::Dead { error }
            }
            CallOutcome::Retry { error, retry_after } => {
                self.retry_or_give_up(job, error, retry_after)
            }
        }
    }

    /// A failed try: tried again after the policy's delay, or given up on (dead) when the
    /// job has been trying for longer than it may.
    fn retry_or_give_up(
        &self,
        job: &Job,
        error: String,
        retry_after: Option<Duration>,
    ) -> JobResult {
        let now = self.clock.now();
        let jitter = rand::rng().random::<f64>();
        let age = (now - job.run_at.min(job.created_at))
            .to_std()
            .unwrap_or_default();
        let delay = self
            .policy
            .next_delay(job.attempts, retry_after, jitter)
            .filter(|d| age + *d <= self.policy.max_age);
        match delay {
            Some(delay) => {
                tracing::warn!(job = %job.id, rule = %job.rule, attempt = job.attempts, "call failed, retrying in {delay:?}: {error}");
                let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                JobResult::Retry { at, error }
            }
            None => {
                tracing::error!(job = %job.id, rule = %job.rule, attempts = job.attempts, "giving up, moved to dead letters: {error}");
                JobResult::Dead {
                    error: format!(
                        "gave up after {} attempts over {}s: {error}",
                        job.attempts,
                        age.as_secs()
                    ),
                }
            }
        }
    }
}
