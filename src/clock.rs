//! The only reader of the wall clock.
//!
//! Everything else takes `now` as a parameter (domain logic) or a [`Clock`]
//! (runtime glue), so tests can pin time. `clippy.toml` forbids
//! `Utc::now`, `Local::now`, `SystemTime::now` and `Instant::now` elsewhere.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::Mutex;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // this is the one allowed reader
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to, for tests and simulations.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    pub fn advance(&self, d: chrono::Duration) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *g += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A monotonic instant for measuring elapsed time (timeouts, latency metrics).
#[allow(clippy::disallowed_methods)] // monotonic time is read here only
pub fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}

/// The shared clock handle passed around the runtime.
pub type SharedClock = Arc<dyn Clock>;

pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 29, 0, 30, 0).single().expect("valid");
        let c = ManualClock::new(t0);
        assert_eq!(c.now(), t0);
        c.advance(chrono::Duration::hours(2));
        assert_eq!(c.now(), t0 + chrono::Duration::hours(2));
    }
}
