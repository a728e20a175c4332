//! A keyed GCRA rate limiter on the injected clock (so tests move time instead of sleeping).
//!
//! GCRA keeps one number per key, the "theoretical arrival time": a request is allowed if it
//! does not arrive more than `burst` emission intervals early. Keys are forgotten once idle, and
//! the table is bounded: when it is full, idle keys are swept; if it is still full the oldest
//! half is dropped (failing open for *new* keys is better than failing closed for everyone).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use crate::Timestamp;

#[derive(Debug)]
pub struct RateLimiter<K> {
    /// Microseconds between requests at the sustained rate; 0 disables the limiter.
    /// (Microseconds, so that high limits such as a benchmark's are still exact.)
    interval_us: i64,
    /// How far ahead of schedule a key may run: `interval × (burst − 1)`.
    tolerance_us: i64,
    max_keys: usize,
    table: Mutex<HashMap<K, i64>>,
}

/// How long to wait before trying again, whole seconds (≥ 1), for `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `per_second` sustained requests with bursts of `burst`. `per_second == 0.0` disables it.
    pub fn new(per_second: f64, burst: u32, max_keys: usize) -> Self {
        let interval_us = if per_second > 0.0 {
            ((1_000_000.0 / per_second).round() as i64).max(1)
        } else {
            0
        };
        Self {
            interval_us,
            tolerance_us: interval_us.saturating_mul(i64::from(burst.max(1)) - 1),
            max_keys: max_keys.max(16),
            table: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.interval_us > 0
    }

    /// Counts one request for `key`; `Err` if it is over the limit (the request is not counted).
    pub fn check(&self, key: &K, now: Timestamp) -> Result<(), RetryAfter> {
        if self.interval_us == 0 {
            return Ok(());
        }
        let now = now.millis().saturating_mul(1000);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let tat = table.get(key).copied().unwrap_or(now).max(now);
        let earliest = tat - self.tolerance_us;
        if now < earliest {
            let wait_us = earliest - now;
            return Err(RetryAfter(((wait_us + 999_999) / 1_000_000).max(1) as u64));
        }
        if table.len() >= self.max_keys && !table.contains_key(key) {
            table.retain(|_, t| *t > now);
            if table.len() >= self.max_keys {
                let mut times: Vec<i64> = table.values().copied().collect();
                times.sort_unstable();
                let cut = times[times.len() / 2];
                table.retain(|_, t| *t > cut);
            }
        }
        table.insert(key.clone(), tat + self.interval_us);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_limits_then_recovers() {
        let l = RateLimiter::new(1.0, 3, 100);
        let t = Timestamp::from_secs(1000);
        for _ in 0..3 {
            assert!(l.check(&"a", t).is_ok());
        }
        assert_eq!(l.check(&"a", t), Err(RetryAfter(1)));
        assert!(l.check(&"b", t).is_ok(), "keys are independent");
        assert!(l.check(&"a", t.plus_secs(1)).is_ok(), "recovers by itself");
    }

    #[test]
    fn high_rates_are_exact() {
        // The clock ticks in milliseconds, so a burst of at least rate × 1 ms is needed to reach
        // the full rate; the benchmark's settings are far above that.
        let l = RateLimiter::new(1_000_000.0, 1000, 100);
        let t = Timestamp::from_secs(1);
        for _ in 0..1000 {
            assert!(l.check(&"a", t).is_ok());
        }
        assert!(
            l.check(&"a", t).is_err(),
            "the burst is spent within one millisecond"
        );
        for ms in 1..200 {
            let t = Timestamp::from_millis(1000 + ms);
            for _ in 0..1000 {
                assert!(l.check(&"a", t).is_ok(), "a million per second sustained");
            }
        }
    }

    #[test]
    fn disabled_and_bounded() {
        let l = RateLimiter::new(0.0, 1, 100);
        assert!(!l.is_enabled());
        assert!(l.check(&1, Timestamp::from_secs(1)).is_ok());
        let l = RateLimiter::new(1.0, 1, 16);
        for k in 0..1000 {
            assert!(l.check(&k, Timestamp::from_secs(1)).is_ok());
        }
        assert!(l.table.lock().unwrap().len() <= 16);
    }
}
