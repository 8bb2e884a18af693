//! Requests a second per source address, as token buckets: a forged flood is refused before
//! it can fill the disk, while Whapi.Cloud's bursts pass.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Buckets kept before full ones (sources quiet for a second or more) are dropped, so memory
/// stays bounded whatever addresses a flood comes from.
const KEPT: usize = 10_000;

/// A token bucket per source: `per_second` tokens a second, at most a second's worth saved.
#[derive(Debug)]
pub struct RateLimit {
    per_second: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// A limit of `per_second` requests a second per source (at least one).
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second: per_second.max(1),
            buckets: Mutex::default(),
        }
    }

    /// The limit, in requests a second.
    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Takes a token for `source`, or says how long until one is free.
    pub fn take(&self, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(self.per_second);
        let key = group(source);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= KEPT && !buckets.contains_key(&key) {
            buckets.retain(|_, b| refill(*b, now, rate) < rate);
            // Thousands of sources busy at once: per-source limits mean little then, and
            // scanning again for every new one would cost more than the requests.
            if buckets.len() > KEPT / 2 {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let tokens = refill(*bucket, now, rate);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / rate))
        }
    }
}

fn refill(bucket: Bucket, now: Instant, rate: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * rate).min(rate)
}

/// The source a bucket belongs to: an IPv4 address, or an IPv6 /64 (one subscriber's
/// network, whose addresses cost nothing to change).
fn group(source: IpAddr) -> IpAddr {
    match source.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_source_gets_a_second_of_burst_then_the_rate() {
        let limit = RateLimit::new(10);
        let start = Instant::now();
        for _ in 0..10 {
            assert!(limit.take(ip("10.0.0.1"), start).is_ok());
        }
        let wait = limit.take(ip("10.0.0.1"), start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(limit.take(ip("10.0.0.2"), start).is_ok(), "another source");
        let later = start + Duration::from_millis(100);
        assert!(limit.take(ip("10.0.0.1"), later).is_ok());
        assert!(limit.take(ip("10.0.0.1"), later).is_err());
    }

    #[test]
    fn addresses_of_one_ipv6_network_share_a_bucket() {
        let limit = RateLimit::new(1);
        let now = Instant::now();
        assert!(limit.take(ip("2001:db8::1"), now).is_ok());
        assert!(limit.take(ip("2001:db8::ffff:1"), now).is_err());
        assert!(limit.take(ip("2001:db8:0:1::1"), now).is_ok());
        assert!(limit.take(ip("::ffff:10.0.0.1"), now).is_ok());
        assert!(
            limit.take(ip("10.0.0.1"), now).is_err(),
            "mapped is the same host"
        );
    }

    #[test]
    fn quiet_sources_are_forgotten_when_many_are_kept() {
        let limit = RateLimit::new(5);
        let start = Instant::now();
        for n in 0..KEPT as u32 {
            limit.take(IpAddr::V4(n.into()), start).unwrap();
        }
        let later = start + Duration::from_secs(1);
        limit.take(ip("192.0.2.1"), later).unwrap();
        assert_eq!(limit.buckets.lock().unwrap().len(), 1);
    }
}
