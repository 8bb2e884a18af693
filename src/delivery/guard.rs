//! Protecting Whapi.Cloud (and the WhatsApp number behind it) from Riposte: a circuit breaker
//! that stops calling while it keeps failing. The global pace of calls is [`crate::pace`].

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

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
}
