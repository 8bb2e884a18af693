//! The per-chat limit on model answers: a sliding window of answer times per chat.
//!
//! Kept in memory: after a restart a chat may get one more window's worth, which is what a
//! limit against runaway costs needs, and it costs no write per answer.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Chats beyond which idle entries are swept out.
const SWEEP_OVER: usize = 10_000;

/// Answer times per chat.
#[derive(Debug, Default)]
pub(crate) struct PerChat {
    seen: Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>,
}

impl PerChat {
    /// Counts an answer for `chat` at `now` if fewer than `count` were counted in the last
    /// `window`; false (and nothing counted) when the chat is over its limit.
    pub(crate) fn admit(
        &self,
        chat: &str,
        count: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() > SWEEP_OVER {
            seen.retain(|_, times| times.back().is_some_and(|t| now - *t < window));
        }
        let times = seen.entry(chat.to_owned()).or_default();
        while times.front().is_some_and(|t| now - *t >= window) {
            times.pop_front();
        }
        if times.len() >= count as usize {
            return false;
        }
        times.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_gets_count_answers_per_window() {
        let limits = PerChat::default();
        let start = Utc::now();
        let hour = Duration::hours(1);
        assert!(limits.admit("a", 2, hour, start));
        assert!(limits.admit("a", 2, hour, start + Duration::minutes(1)));
        assert!(!limits.admit("a", 2, hour, start + Duration::minutes(2)));
        assert!(limits.admit("b", 2, hour, start + Duration::minutes(2)));
        assert!(limits.admit("a", 2, hour, start + Duration::minutes(61)));
    }
}
