//! Conversation memory: which messages of a chat the model sees.

use chrono::{DateTime, Duration, Utc};

use crate::vocab::Turn;

/// The current conversation out of a chat's last turns (oldest first): the turns since the
/// last quiet period longer than `forget_after`, then the newest of those that fit in
/// `max_chars` (the newest turn is always kept, cut to the budget if it alone is longer).
pub fn conversation(
    mut turns: Vec<Turn>,
    now: DateTime<Utc>,
    forget_after: Duration,
    max_chars: usize,
) -> Vec<Turn> {
    let mut start = turns.len();
    let mut later = now;
    for (i, turn) in turns.iter().enumerate().rev() {
        if later - turn.at > forget_after {
            break;
        }
        later = turn.at;
        start = i;
    }
    turns.drain(..start);
    let mut total = 0;
    let mut keep_from = turns.len();
    for (i, turn) in turns.iter().enumerate().rev() {
        let chars = turn.text.chars().count();
        if total + chars > max_chars && keep_from < turns.len() {
            break;
        }
        total += chars;
        keep_from = i;
    }
    turns.drain(..keep_from);
    if total > max_chars
        && let Some(only) = turns.first_mut()
    {
        only.text = only.text.chars().take(max_chars).collect();
    }
    turns
}

/// Cuts a reply to at most `max` characters, at the last word boundary, with an ellipsis.
pub fn cut_reply(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let keep = max.saturating_sub(1);
    let head: String = text.chars().take(keep).collect();
    let ends_a_word = text.chars().nth(keep).is_some_and(char::is_whitespace);
    let at_word = if ends_a_word {
        head.as_str()
    } else {
        head.rfind(char::is_whitespace)
            .filter(|&i| i > head.len() / 2)
            .map_or(head.as_str(), |i| &head[..i])
    };
    format!("{}…", at_word.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Role;

    fn turn(text: &str, minutes_ago: i64, now: DateTime<Utc>) -> Turn {
        Turn {
            chat: "c".into(),
            role: Role::User,
            text: text.into(),
            at: now - Duration::minutes(minutes_ago),
        }
    }

    fn texts(turns: &[Turn]) -> Vec<&str> {
        turns.iter().map(|t| t.text.as_str()).collect()
    }

    #[test]
    fn a_quiet_period_starts_a_new_conversation() {
        let now = Utc::now();
        let turns = vec![
            turn("yesterday", 26 * 60, now),
            turn("hello", 3, now),
            turn("again", 1, now),
        ];
        let kept = conversation(turns, now, Duration::hours(24), 1000);
        assert_eq!(texts(&kept), ["hello", "again"]);
        let quiet = conversation(
            vec![turn("old", 25 * 60, now)],
            now,
            Duration::hours(24),
            10,
        );
        assert!(quiet.is_empty());
    }

    #[test]
    fn the_budget_drops_the_oldest_and_cuts_a_lone_long_message() {
        let now = Utc::now();
        let turns = vec![
            turn("aaaa", 3, now),
            turn("bbbb", 2, now),
            turn("cc", 1, now),
        ];
        assert_eq!(
            texts(&conversation(turns, now, Duration::hours(1), 6)),
            ["bbbb", "cc"]
        );
        let long = vec![turn("0123456789", 1, now)];
        assert_eq!(
            texts(&conversation(long, now, Duration::hours(1), 4)),
            ["0123"]
        );
    }

    #[test]
    fn long_replies_are_cut_at_a_word() {
        assert_eq!(cut_reply("short", 10), "short");
        assert_eq!(
            cut_reply("We open at nine and close at five", 20),
            "We open at nine and…"
        );
        assert_eq!(cut_reply("ééééééééééé", 5).chars().count(), 5);
    }
}
