//! Protecting Whapi.Cloud (and the WhatsApp numbers behind it) from Riposte: per channel, a
//! circuit breaker that stops calling while it keeps failing, and a pace ([`crate::pace`]), so
//! one number that is throttled or disconnected does not hold back the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::ChannelCounters;
use crate::pace::Pacer;

/// One channel's breaker, pace and counters.
#[derive(Debug)]
pub struct Guard {
    pub name: String,
    pub breaker: Breaker,
    pub pacer: Option<Pacer>,
    pub counters: Arc<ChannelCounters>,
}

/// Every channel's guard, by name.
#[derive(Debug)]
pub struct Guards {
    by_name: HashMap<String, Arc<Guard>>,
    /// The guard of calls that name no channel.
    default: Arc<Guard>,
}

impl Guards {
    /// A guard per channel `(name, least time between two calls)`; `default` is the name of
    /// the channel whose guard calls without a channel go through.
    pub fn new(
        channels: &[(String, Option<Duration>)],
        default: &str,
        policy: BreakerPolicy,
    ) -> Self {
        let guard = |name: &str, interval: Option<Duration>| {
            Arc::new(Guard {
                name: name.to_owned(),
                breaker: Breaker::for_channel(policy, name),
                pacer: interval.map(Pacer::new),
                counters: crate::metrics::channel(name),
            })
        };
        let by_name: HashMap<String, Arc<Guard>> = channels
            .iter()
            .map(|(name, interval)| (name.clone(), guard(name, *interval)))
            .collect();
        let default = by_name
            .get(default)
            .cloned()
            .unwrap_or_else(|| guard(default, None));
        Self { by_name, default }
    }

    /// Every channel's pace is kept by `n` instances together: each takes its part.
    pub fn share(&self, n: u32) {
        for guard in self.by_name.values().chain(std::iter::once(&self.default)) {
            if let Some(pacer) = &guard.pacer {
                pacer.share(n);
            }
        }
    }

    /// The guard of a channel; `None` names the default channel. A name no channel has (the
    /// client refuses its calls) gets the default guard.
    pub fn of(&self, channel: Option<&str>) -> &Arc<Guard> {
        channel
            .and_then(|name| self.by_name.get(name))
            .unwrap_or(&self.default)
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
    /// The channel it guards, for its log lines and counters.
    channel: String,
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
        Self::for_channel(policy, crate::vocab::DEFAULT_CHANNEL)
    }

    /// A closed breaker for one channel's calls.
    pub fn for_channel(policy: BreakerPolicy, channel: &str) -> Self {
        Self {
            policy,
            state: Mutex::new(BreakerState {
                cooldown: policy.cooldown,
                ..BreakerState::default()
            }),
            channel: channel.to_owned(),
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
            tracing::info!(channel = %self.channel, "Whapi.Cloud answers again; calls resume");
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
            crate::metrics::channel(&self.channel)
                .breaker_opened
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                channel = %self.channel,
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
