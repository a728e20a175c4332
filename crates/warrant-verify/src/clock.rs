//! Time as an input: token checks read the time through [`Clock`], so tests can fix it.

use std::time::{SystemTime, UNIX_EPOCH};

/// The time port: NumericDate seconds (RFC 7519 §2).
pub trait Clock: Send + Sync + 'static {
    fn now_secs(&self) -> i64;
}

/// The system's wall clock: the one place in this crate that reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned reader of the system time here
    fn now_secs(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// A clock that always says the same time (tests, replays of recorded traffic).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now_secs(&self) -> i64 {
        self.0
    }
}
