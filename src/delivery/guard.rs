//! Protecting Whapi.Cloud (and the WhatsApp number behind it) from Riposte: a global pace for
//! calls and a circuit breaker that stops calling while it keeps failing.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Spaces calls at least `interval` apart, across every worker task.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pace of one call per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: Mutex::new(None),
        }
    }

    /// Takes the next slot if it comes within `max` (`Ok`), else leaves it and says when it
    /// comes (`Err`), so a caller can come back then instead of holding a worker.
    pub fn slot_within(&self, max: Duration) -> Result<Instant, Instant> {
        self.take(Some(max))
    }

    /// Takes the next slot, unless it comes later than `max` from now.
    fn take(&self, max: Option<Duration>) -> Result<Instant, Instant> {
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let slot = next.map_or(now, |n| n.max(now));
        if max.is_some_and(|max| slot > now + max) {
            return Err(slot);
        }
        *next = Some(slot + self.interval);
        Ok(slot)
    }

    /// Waits for this call's slot.
    pub async fn wait(&self) {
        let slot = self.take(None).unwrap_or_else(|slot| slot);
        tokio::time::sleep_until(slot).await;
    }
}

/// When the breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// Failed calls in a row (network errors, 429, 5xx) that open the breaker.
    pub threshold: u32,
    /// How long the first opening lasts; each failed probe doubles it.
    pub cooldown: Duration,
    /// The longest opening.
    pub max_cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            cooldown: Duration::from_secs(10),
            max_cooldown: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
    cooldown: Duration,
    probing: bool,
}

/// Closed: calls flow. Open: no calls until the cooldown ends. Then one probe call: success
/// closes the breaker, failure opens it again for twice as long.
#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: Mutex<BreakerState>,
}

/// What the worker may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Claim as many jobs as there is room for.
    Flow,
    /// Claim one job, to find out whether Whapi.Cloud is back.
    Probe,
    /// Claim nothing until then.
    WaitUntil(Instant),
}

impl Breaker {
    /// A closed breaker.
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            state: Mutex::new(BreakerState {
                cooldown: policy.cooldown,
                ..BreakerState::default()
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the worker may claim now.
    pub fn permit(&self) -> Permit {
        let mut s = self.state();
        match s.open_until {
            None => Permit::Flow,
            Some(until) if Instant::now() < until => Permit::WaitUntil(until),
            Some(_) if s.probing => Permit::WaitUntil(Instant::now() + Duration::from_millis(50)),
            Some(_) => {
                s.probing = true;
                Permit::Probe
            }
        }
    }

    /// Records a call that reached Whapi.Cloud and was answered (any 2xx or 4xx but 429).
    pub fn success(&self) {
        let mut s = self.state();
        if s.open_until.is_some() {
            tracing::info!("Whapi.Cloud answers again; calls resume");
        }
        *s = BreakerState {
            cooldown: self.policy.cooldown,
            ..BreakerState::default()
        };
    }

    /// Records a failed call (network error, timeout, 429, 5xx).
    pub fn failure(&self) {
        let mut s = self.state();
        s.failures += 1;
        let reopen = s.probing;
        if reopen || (s.open_until.is_none() && s.failures >= self.policy.threshold) {
            if reopen {
                s.cooldown = (s.cooldown * 2).min(self.policy.max_cooldown);
            }
            s.open_until = Some(Instant::now() + s.cooldown);
            s.probing = false;
            crate::metrics::BREAKER_OPENED.inc();
            tracing::warn!(
                failures = s.failures,
                "Whapi.Cloud keeps failing; pausing calls for {:?}, then probing",
                s.cooldown
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slot_too_far_away_is_left_for_later() {
        let pacer = Pacer::new(Duration::from_secs(10));
        let first = pacer.slot_within(Duration::from_secs(2)).unwrap();
        let later = pacer.slot_within(Duration::from_secs(2)).unwrap_err();
        assert_eq!(later, first + Duration::from_secs(10));
        // Leaving it took nothing: a caller willing to wait gets that same slot.
        assert_eq!(pacer.slot_within(Duration::from_secs(10)), Ok(later));
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_probes_and_backs_off() {
        let breaker = Breaker::new(BreakerPolicy {
            threshold: 3,
            cooldown: Duration::from_secs(10),
            max_cooldown: Duration::from_secs(15),
        });
        for _ in 0..2 {
            breaker.failure();
        }
        assert_eq!(breaker.permit(), Permit::Flow);
        breaker.failure();
        assert!(matches!(breaker.permit(), Permit::WaitUntil(_)));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(breaker.permit(), Permit::Probe);
        assert!(
            matches!(breaker.permit(), Permit::WaitUntil(_)),
            "one probe at a time"
        );
        breaker.failure();
        tokio::time::advance(Duration::from_secs(14)).await;
        assert!(
            matches!(breaker.permit(), Permit::WaitUntil(_)),
            "the second opening is longer (capped at 15 s)"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(breaker.permit(), Permit::Probe);
        breaker.success();
        assert_eq!(breaker.permit(), Permit::Flow);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_calls() {
        let pacer = Pacer::new(Duration::from_millis(100));
        let start = Instant::now();
        for _ in 0..5 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }
}
