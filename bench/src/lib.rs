//! Shared pieces of the load harness: the message marker format and percentile arithmetic.
//!
//! Every load message carries `m<ID> t<MICROS>`: a unique id (to count duplicates and losses at
//! the stand-in) and the wall-clock microsecond it was sent (for the end-to-end latency).

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The marker `m<ID> t<MICROS>` a load message carries and every reply repeats.
///
/// Compiled once: the stand-in looks for it in every call, and compiling a regex costs far
/// more than the rest of answering a call.
pub fn marker() -> &'static regex::Regex {
    static MARKER: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"m([A-Za-z0-9-]+) t(\d+)").expect("marker regex is valid")
    });
    &MARKER
}

/// Microseconds since the Unix epoch, the clock `load.lua` stamps messages with.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

/// The `p`-th percentile (0–100) of sorted values, nearest rank; 0 when there are none.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of a few measurements (the middle one, or the lower middle for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn marker_finds_id_and_time() {
        let caps = marker()
            .captures("Parcel 4242: Where is parcel 4242? mr1-0-17 t1767261600123456")
            .expect("marker");
        assert_eq!(&caps[1], "r1-0-17");
        assert_eq!(&caps[2], "1767261600123456");
    }
}
