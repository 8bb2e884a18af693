//! Bodies this process stored, kept in memory for intake so it need not read them back.
//!
//! The database stays the record: intake takes a claimed range from here only when it
//! follows on from the last batch completed and every body of it is here, and reads it from
//! the database otherwise (at start, after a failed batch, when bodies came faster than it
//! kept up, or when another process stored or claimed some). Every change here happens on the writer's thread right
//! after the commit it follows, so the order here is the order of the ids.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use crate::store::Inbound;

/// Most bodies kept; beyond that intake is behind and reads from the database anyway.
const KEPT: usize = 1024;

/// The bodies committed and not yet known to be processed, in id order.
#[derive(Debug, Default)]
pub(super) struct Inbox {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    bodies: VecDeque<Inbound>,
    /// The id intake needs next (the one after the last body it completed), once known.
    next: Option<i64>,
}

impl Inbox {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A body was committed under `inbound.id`.
    pub(super) fn stored(&self, inbound: Inbound) {
        let mut state = self.state();
        if state.bodies.len() < KEPT {
            state.bodies.push_back(inbound);
        }
    }

    /// Every body up to `id` is processed (a batch was completed, or the database said so).
    pub(super) fn processed_through(&self, id: i64) {
        let mut state = self.state();
        if state.next.is_none_or(|next| next <= id) {
            state.next = Some(id + 1);
        }
        while state.bodies.front().is_some_and(|b| b.id <= id) {
            state.bodies.pop_front();
        }
    }

    /// The bodies `first..=last`, if they are all here and `first` is the one after the last
    /// completed; they are taken out. Otherwise nothing changes.
    pub(super) fn take(&self, first: i64, last: i64) -> Option<Vec<Inbound>> {
        let mut state = self.state();
        if state.next != Some(first) {
            return None;
        }
        while state.bodies.front().is_some_and(|b| b.id < first) {
            state.bodies.pop_front();
        }
        let wanted = usize::try_from(last - first + 1).ok()?;
        let all_here = state.bodies.len() >= wanted
            && state
                .bodies
                .iter()
                .take(wanted)
                .zip(first..)
                .all(|(body, id)| body.id == id);
        if !all_here {
            return None;
        }
        Some(state.bodies.drain(..wanted).collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::store::Source;

    fn body(id: i64) -> Inbound {
        Inbound {
            id,
            source: Source::Custom { name: "e".into() },
            body: "{}".into(),
            received_at: Utc::now(),
        }
    }

    fn ids(batch: Option<Vec<Inbound>>) -> Option<Vec<i64>> {
        batch.map(|b| b.iter().map(|i| i.id).collect())
    }

    #[test]
    fn bodies_are_handed_out_only_while_they_follow_the_last_completed_one() {
        let inbox = Inbox::default();
        inbox.stored(body(1));
        assert_eq!(
            ids(inbox.take(1, 1)),
            None,
            "where intake stands is not known yet"
        );
        inbox.processed_through(0);
        for id in 2..=4 {
            inbox.stored(body(id));
        }
        inbox.stored(body(6));
        assert_eq!(ids(inbox.take(2, 3)), None, "1 comes first");
        assert_eq!(ids(inbox.take(1, 3)), Some(vec![1, 2, 3]));
        // Not completed (the batch failed): the database has them, the inbox does not.
        assert_eq!(ids(inbox.take(1, 3)), None);
        inbox.processed_through(3);
        assert_eq!(ids(inbox.take(4, 5)), None, "5 is missing");
        assert_eq!(ids(inbox.take(4, 4)), Some(vec![4]));
        inbox.processed_through(5);
        assert_eq!(ids(inbox.take(6, 6)), Some(vec![6]));
        inbox.processed_through(6);
        inbox.processed_through(2);
        inbox.stored(body(7));
        assert_eq!(
            ids(inbox.take(7, 7)),
            Some(vec![7]),
            "the cursor never moves back"
        );
    }

    #[test]
    fn a_full_inbox_keeps_the_oldest_and_the_rest_is_read_from_the_database() {
        let inbox = Inbox::default();
        inbox.processed_through(0);
        for id in 1..=(KEPT as i64 + 10) {
            inbox.stored(body(id));
        }
        assert_eq!(
            ids(inbox.take(1, KEPT as i64 + 1)),
            None,
            "the last was not kept"
        );
        let batch = ids(inbox.take(1, KEPT as i64)).unwrap();
        assert_eq!(batch.len(), KEPT);
        inbox.processed_through(KEPT as i64);
        assert_eq!(ids(inbox.take(KEPT as i64 + 1, KEPT as i64 + 1)), None);
    }
}
