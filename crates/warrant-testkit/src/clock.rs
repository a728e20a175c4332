//! A clock that tests set and move by hand.

use std::sync::atomic::{AtomicI64, Ordering};

use warrant_core::{Clock, Timestamp};

/// A [`Clock`] whose time only changes when a test says so.
///
/// It uses interior mutability, so share it as `Arc<FixedClock>`: hand one clone to the code
/// under test (as `Arc<dyn Clock>`) and keep another to move time.
#[derive(Debug)]
pub struct FixedClock {
    millis: AtomicI64,
}

impl FixedClock {
    pub fn new(now: Timestamp) -> Self {
        Self {
            millis: AtomicI64::new(now.millis()),
        }
    }

    /// Sets the time (it may go backwards: some tests need that).
    pub fn set(&self, now: Timestamp) {
        self.millis.store(now.millis(), Ordering::SeqCst);
    }

    /// Moves the time by `secs` seconds (negative moves it back).
    pub fn advance_secs(&self, secs: i64) {
        self.advance_millis(secs.saturating_mul(1000));
    }

    /// Moves the time by `ms` milliseconds (negative moves it back).
    pub fn advance_millis(&self, ms: i64) {
        let _ = self
            .millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ms))
            });
    }
}

impl Default for FixedClock {
    /// Starts at [`crate::T0`].
    fn default() -> Self {
        Self::new(crate::T0)
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn set_and_advance() {
        let clock = Arc::new(FixedClock::new(Timestamp::from_millis(1_500)));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        assert_eq!(dyn_clock.now(), Timestamp::from_millis(1_500));
        clock.advance_secs(2);
        assert_eq!(dyn_clock.now(), Timestamp::from_millis(3_500));
        clock.advance_secs(-1);
        assert_eq!(dyn_clock.now(), Timestamp::from_millis(2_500));
        clock.advance_millis(7);
        assert_eq!(dyn_clock.now(), Timestamp::from_millis(2_507));
        clock.set(Timestamp::from_secs(10));
        assert_eq!(dyn_clock.now(), Timestamp::from_millis(10_000));
        assert_eq!(FixedClock::default().now(), crate::T0);
    }
}
