//! Requests per second per API key: a token bucket per key name.
//!
//! Written here rather than taken from `governor`: one bucket per key behind one mutex is
//! twenty lines, and the server has a handful of keys, not millions of clients.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second` sustained, bursts of up to two seconds' worth.
    pub fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self {
            per_second,
            burst: per_second * 2.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Takes one token of `key`'s bucket, or says how long until there is one.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_its_rate_and_keys_do_not_share() {
        let limiter = RateLimiter::new(10);
        let t0 = Instant::now();
        for _ in 0..20 {
            assert!(limiter.take("a", t0).is_ok());
        }
        let wait = limiter.take("a", t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert!(
            limiter.take("b", t0).is_ok(),
            "another key has its own bucket"
        );
        assert!(limiter.take("a", t0 + Duration::from_millis(100)).is_ok());
    }
}
