//! Delivery: the worker that claims due jobs, makes their calls and records the result, with
//! retries (exponential backoff, full jitter, `Retry-After`) and dead letters.
//!
//! A crash between the remote answer and the commit that marks the job done is the only window
//! in which a call can be repeated: the job's lease expires and it is claimed again.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::actions::{OutboundRequest, Payload, Unless};
use crate::campaigns::OPTED_OUT;
use crate::clock::Clock;
use crate::metrics;
use crate::store::{Job, JobKind, JobResult, JobWork, Op, Store, StoreResult};
use crate::whapi::{CallOutcome, Client};

/// How failed calls are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The first retry waits up to this long; each further one up to twice as long.
    pub base: Duration,
    /// The longest wait between two attempts.
    pub cap: Duration,
    /// After this many calls a job is dead.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(300),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt, or `None` when the job has used its attempts.
    /// `jitter` is a number in `[0, 1)`; full jitter spreads retries of many jobs apart.
    pub fn next_delay(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exponent = attempts.saturating_sub(1).min(20);
        let ceiling = self.base.saturating_mul(1 << exponent).min(self.cap);
        let delay = ceiling.mul_f64(jitter.clamp(0.0, 1.0));
        Some(retry_after.map_or(delay, |ra| delay.max(ra)))
    }
}

/// How long a claimed job stays claimed before another worker may take it over.
const LEASE: Duration = Duration::from_secs(120);
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
    /// Told about every job that runs (not skipped), before its result is recorded.
    pub observer: Option<Observer>,
}

/// A callback that sees each job as it runs (rule tests record the actions with it).
pub type Observer = Arc<dyn Fn(&Job) + Send + Sync>;

impl Delivery {
    /// Runs until `shutdown` turns true, then waits for calls in flight to be recorded.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut in_flight = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let room = this.concurrency.saturating_sub(in_flight.len());
            let mut claimed = 0;
            if room > 0 {
                let now = this.clock.now();
                match this.store.claim_jobs(now, now + LEASE, room as u32).await {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for job in jobs {
                            let this = this.clone();
                            in_flight.spawn(async move { this.deliver(job).await });
                        }
                    }
                    Err(err) => tracing::error!("cannot claim jobs: {err}"),
                }
            }
            if claimed > 0 {
                continue;
            }
            let idle = this.idle_time().await;
            tokio::select! {
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                () = this.wake.notified() => {}
                () = tokio::time::sleep(idle) => {}
                _ = shutdown.changed() => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
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
                self.deliver(job).await;
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

    async fn deliver(&self, job: Job) {
        let result = match self.skip_reason(&job).await {
            Ok(Some(reason)) => {
                tracing::info!(job = job.id, rule = %job.rule, "skipped: {reason}");
                JobResult::Skipped { reason }
            }
            Ok(None) => {
                if let Some(observe) = &self.observer {
                    observe(&job);
                }
                self.perform(&job).await
            }
            Err(err) => {
                // The lease will expire and the job will be tried again.
                tracing::error!(job = job.id, "cannot check the job's contact: {err}");
                return;
            }
        };
        match &result {
            JobResult::Done { .. } => metrics::JOBS_DONE.inc(),
            JobResult::Retry { .. } => metrics::JOBS_RETRIED.inc(),
            JobResult::Dead { .. } => metrics::JOBS_DEAD.inc(),
            JobResult::Skipped { .. } => metrics::JOBS_SKIPPED.inc(),
        }
        if let Err(err) = self
            .store
            .finish_job(job.id, &result, self.clock.now())
            .await
        {
            tracing::error!(job = job.id, "cannot record job result: {err}");
        }
    }

    /// Follow-ups and campaign sends never reach a contact who opted out meanwhile, and a
    /// follow-up's `unless` is checked against the contact as it is now.
    async fn skip_reason(&self, job: &Job) -> StoreResult<Option<String>> {
        if job.kind == JobKind::Action {
            return Ok(None);
        }
        let mut phones: Vec<String> = job.contact.iter().cloned().collect();
        if let JobWork::Call(request) = &job.work
            && let Some(to) = recipient_phone(request)
        {
            phones.push(to);
        }
        let now = self.clock.now();
        for phone in &phones {
            let contact = self.store.contact(phone).await?;
            if contact.tags.contains(OPTED_OUT) {
                return Ok(Some(format!("{phone} is tagged `{OPTED_OUT}`")));
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

    async fn perform(&self, job: &Job) -> JobResult {
        let local = match &job.work {
            JobWork::Call(request) => return self.call(job, request).await,
            JobWork::Contact(change) => Op::Contact(change.clone()),
            JobWork::Cancel { key } => Op::Cancel { key: key.clone() },
            JobWork::Handoff(change) => Op::Handoff(change.clone()),
        };
        match self.store.apply(&[local], self.clock.now()).await {
            Ok(()) => JobResult::Done {
                response: "applied".into(),
            },
            Err(err) => JobResult::Retry {
                at: self.clock.now() + chrono::Duration::seconds(1),
                error: err.to_string(),
            },
        }
    }

    async fn call(&self, job: &Job, request: &OutboundRequest) -> JobResult {
        let key = format!("riposte-job-{}", job.id);
        let outcome = self.client.call(request, &key).await;
        let now = self.clock.now();
        match outcome {
            CallOutcome::Delivered { status, body } => {
                let what = if self.client.dry_run() {
                    "logged (dry-run)"
                } else {
                    "delivered"
                };
                tracing::info!(job = job.id, rule = %job.rule, action = %job.action, status, "{what}");
                JobResult::Done { response: body }
            }
            CallOutcome::Rejected { error } => {
                tracing::warn!(job = job.id, rule = %job.rule, action = %job.action, "rejected, moved to dead letters: {error}");
                JobResult::Dead { error }
            }
            CallOutcome::Retry { error, retry_after } => {
                let jitter = rand::rng().random::<f64>();
                match self.policy.next_delay(job.attempts, retry_after, jitter) {
                    Some(delay) => {
                        tracing::warn!(job = job.id, rule = %job.rule, attempt = job.attempts, "call failed, retrying in {delay:?}: {error}");
                        let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                        JobResult::Retry { at, error }
                    }
                    None => {
                        tracing::error!(job = job.id, rule = %job.rule, attempts = job.attempts, "giving up, moved to dead letters: {error}");
                        JobResult::Dead {
                            error: format!("after {} attempts: {error}", job.attempts),
                        }
                    }
                }
            }
        }
    }
}

/// The private number a Whapi send goes to, if it goes to a person.
fn recipient_phone(request: &OutboundRequest) -> Option<String> {
    let Some(Payload::Json(body)) = &request.body else {
        return None;
    };
    let to = body.get("to")?.as_str()?;
    let digits = to.strip_suffix("@s.whatsapp.net").unwrap_or(to);
    digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_gives_up() {
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10),
            max_attempts: 5,
        };
        assert_eq!(
            policy.next_delay(1, None, 1.0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            policy.next_delay(3, None, 1.0),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            policy.next_delay(4, None, 1.0),
            Some(Duration::from_secs(8))
        );
        assert_eq!(
            policy.next_delay(4, None, 0.5),
            Some(Duration::from_secs(4))
        );
        assert_eq!(policy.next_delay(5, None, 1.0), None);
        let capped = RetryPolicy {
            max_attempts: 100,
            ..policy
        };
        assert_eq!(
            capped.next_delay(30, None, 1.0),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn retry_after_is_a_floor() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.next_delay(1, Some(Duration::from_secs(2)), 0.0),
            Some(Duration::from_secs(2))
        );
    }
}
