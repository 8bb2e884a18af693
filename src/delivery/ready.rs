//! Calls intake claimed as it wrote them, on their way to delivery without a trip through the
//! database: under load most replies go out this way, and the claim query is left for
//! retries, follow-ups and chats with something else open.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::vocab::Job;
use tokio::sync::mpsc;

/// How long a handed-over job may wait before it is left to its lease. Its lease is longer, so
/// a job left here is claimed again only once no one can still be making its call.
pub const STALE: Duration = Duration::from_secs(60);

/// The sending half, for intake.
#[derive(Clone)]
pub struct ReadyQueue {
    jobs: mpsc::UnboundedSender<(Job, Instant)>,
    shared: Arc<Shared>,
}

struct Shared {
    /// Handed over and not yet started.
    waiting: AtomicUsize,
    /// Most jobs waiting at once: more would only hold leases longer.
    capacity: usize,
}

/// The receiving half, for delivery.
pub struct ReadyJobs {
    jobs: mpsc::UnboundedReceiver<(Job, Instant)>,
    shared: Arc<Shared>,
}

/// A queue of claimed jobs holding at most `capacity` at once.
pub fn ready_queue(capacity: usize) -> (ReadyQueue, ReadyJobs) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        waiting: AtomicUsize::new(0),
        capacity,
    });
    (
        ReadyQueue {
            jobs: tx,
            shared: shared.clone(),
        },
        ReadyJobs { jobs: rx, shared },
    )
}

impl ReadyQueue {
    /// How many more jobs delivery takes now.
    pub fn room(&self) -> u32 {
        if self.jobs.is_closed() {
            return 0;
        }
        let waiting = self.shared.waiting.load(Ordering::Relaxed);
        u32::try_from(self.shared.capacity.saturating_sub(waiting)).unwrap_or(u32::MAX)
    }

    /// Hands claimed jobs to delivery. Should delivery be gone, they stay claimed in the
    /// database and are run after their lease (or at the next start).
    pub fn hand_over(&self, jobs: Vec<Job>) {
        let now = Instant::now();
        for job in jobs {
            self.shared.waiting.fetch_add(1, Ordering::Relaxed);
            if self.jobs.send((job, now)).is_err() {
                self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl ReadyJobs {
    /// The next job handed over, if one is waiting.
    pub(super) fn try_next(&mut self) -> Option<(Job, Instant)> {
        let next = self.jobs.try_recv().ok()?;
        self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
        Some(next)
    }

    /// Waits for the next job handed over.
    pub(super) async fn next(&mut self) -> Option<(Job, Instant)> {
        let next = self.jobs.recv().await?;
        self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
        Some(next)
    }
}
