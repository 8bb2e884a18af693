//! Retry timing: exponential backoff with full jitter, capped, never earlier than `Retry-After`.

use std::time::Duration;

/// How failed calls are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The first retry waits up to this long; each further one up to twice as long.
    pub base: Duration,
    /// The longest wait between two attempts.
    pub cap: Duration,
    /// After this many calls a job is dead.
    pub max_attempts: u32,
    /// A job still failing this long after it was due is dead, whatever its attempts.
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(300),
            max_attempts: 10,
            max_age: Duration::from_secs(24 * 3600),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_gives_up() {
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10),
            max_attempts: 5,
            max_age: Duration::from_secs(3600),
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
