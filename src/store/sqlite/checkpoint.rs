//! Keeping the write-ahead log short while writes never pause.
//!
//! A checkpoint copies the log into the database file; once all of it is copied, the next
//! commit starts the log afresh. A checkpoint beside a writer that never pauses never copies
//! all of it, so the log would grow without end; one on the writer's thread stalls every
//! webhook of the next commit for as long as it takes, and most of that is the two disk
//! flushes it makes (the log before copying, the database file after): the more was written
//! since the last one the longer they take, and even a short one takes milliseconds. So the
//! bulk is copied and flushed on a thread of its own, and the writer finishes only the tail,
//! and only once every [`RESTART_EVERY`]: it asks the checkpointer to catch up, and finishes
//! right after it has, when only a few milliseconds of writes are left to copy and flush.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How often the checkpointer copies the log into the database file beside the writer.
const COPY_EVERY: Duration = Duration::from_millis(100);
/// How often the writer lets the log start afresh; the log holds about this much of writes.
#[cfg(not(test))]
pub(super) const RESTART_EVERY: Duration = Duration::from_millis(1000);
#[cfg(test)]
pub(super) const RESTART_EVERY: Duration = Duration::from_millis(20);
/// A checkpoint round this short means the checkpointer has caught up with the writer.
const CAUGHT_UP: Duration = Duration::from_millis(3);
/// Most rounds the checkpointer runs back to back to catch up.
const ROUNDS: usize = 4;
/// If the checkpointer cannot catch up (a disk slower than the writes), the writer finishes a
/// checkpoint after this long anyway: a longer stall, but a log that stays bounded.
const RESTART_AT_LATEST: Duration = RESTART_EVERY.saturating_mul(4);

/// What the checkpointer is asked to do besides its regular rounds.
pub(super) enum Ask {
    /// Catch up with the writer, then say so.
    CatchUp,
}

/// The writer's side: when the log is due for a restart, and whether the checkpointer has
/// caught up since it asked.
pub(super) struct Restarts {
    ask: Sender<Ask>,
    caught_up: Arc<AtomicBool>,
    since: Instant,
    asked: bool,
}

/// The thread that copies the log into the database file beside the writer.
pub(super) struct Checkpointer {
    asks: Receiver<Ask>,
    caught_up: Arc<AtomicBool>,
}

impl Restarts {
    /// The writer's side, and the checkpointer to run on a thread of its own; the
    /// checkpointer stops once the writer's side is dropped.
    pub(super) fn new() -> (Self, Checkpointer) {
        let (ask, asks) = std::sync::mpsc::channel();
        let caught_up = Arc::new(AtomicBool::new(false));
        let checkpointer = Checkpointer {
            asks,
            caught_up: caught_up.clone(),
        };
        let restarts = Self {
            ask,
            caught_up,
            since: Instant::now(),
            asked: false,
        };
        (restarts, checkpointer)
    }

    /// Called after each commit: finishes a checkpoint when one is due and only a short tail
    /// is left, so the log starts afresh with the next commit.
    pub(super) fn after_commit(&mut self, conn: &Connection) {
        let waited = self.since.elapsed();
        if waited < RESTART_EVERY {
            return;
        }
        if !self.asked {
            // The checkpointer is gone only if the writer is stopping too.
            let _ = self.ask.send(Ask::CatchUp);
            self.asked = true;
            return;
        }
        if !self.caught_up.swap(false, Ordering::AcqRel) && waited < RESTART_AT_LATEST {
            return;
        }
        let started = Instant::now();
        match passive(conn) {
            // The checkpointer was at work: ask it to catch up again.
            Ok(true) => {
                self.asked = false;
                return;
            }
            Ok(false) => tracing::debug!(
                "the log starts afresh; the writer's part of the checkpoint took {:?}",
                started.elapsed()
            ),
            Err(err) => tracing::warn!("database checkpoint failed: {err}"),
        }
        self.since = Instant::now();
        self.asked = false;
    }
}

/// A checkpoint that never waits for the writer or the readers; true if it could not run.
fn passive(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        r.get::<_, i64>(0).map(|busy| busy != 0)
    })
}

impl Checkpointer {
    /// Copies the log every [`COPY_EVERY`], and catches up when the writer asks, until the
    /// writer is gone.
    pub(super) fn run(self, conn: &Connection) {
        loop {
            let rounds = match self.asks.recv_timeout(COPY_EVERY) {
                Ok(Ask::CatchUp) => ROUNDS,
                Err(RecvTimeoutError::Timeout) => 1,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            for _ in 0..rounds {
                let started = Instant::now();
                if let Err(err) = passive(conn) {
                    tracing::warn!("database checkpoint failed: {err}");
                    break;
                }
                // What the writer committed during a short round is all that is left.
                if started.elapsed() < CAUGHT_UP {
                    break;
                }
            }
            if rounds > 1 {
                self.caught_up.store(true, Ordering::Release);
            }
        }
    }
}
