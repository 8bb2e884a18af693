//! A global pace: calls spaced at least an interval apart across every task, for Whapi.Cloud
//! (the WhatsApp number behind it) and for the language model. It knows nothing of either, so
//! delivery and the model caller share it without depending on each other.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Spaces calls at least `interval` apart, across every worker task.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    /// How many share the pace (instances on one database): each takes its part.
    sharers: AtomicU32,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pace of one call per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            sharers: AtomicU32::new(1),
            next: Mutex::new(None),
        }
    }

    /// The pace is shared by `n` callers that each keep their own (several instances): this
    /// one spaces its calls `n` times the interval apart, so together they keep the pace.
    pub fn share(&self, n: u32) {
        self.sharers.store(n.max(1), Ordering::Relaxed);
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
        *next = Some(slot + self.interval * self.sharers.load(Ordering::Relaxed));
        Ok(slot)
    }

    /// Waits for this call's slot.
    pub async fn wait(&self) {
        let slot = self.take(None).unwrap_or_else(|slot| slot);
        tokio::time::sleep_until(slot).await;
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
    async fn a_shared_pace_spaces_each_sharer_s_calls_further() {
        let pacer = Pacer::new(Duration::from_millis(100));
        pacer.share(3);
        let start = Instant::now();
        for _ in 0..5 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(1200));
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
