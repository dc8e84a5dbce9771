//! Where "now" comes from. The server reads the system clock; tests give it a clock they move,
//! so that attribution windows, expiry and day boundaries are tested on every store.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Now, to the second: record times are shown as `2026-11-22T08:15:00Z`.
    fn now_to_second(&self) -> DateTime<Utc> {
        self.now().trunc_subsecs(0)
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until it is set or advanced.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    pub fn at(t: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self {
            micros: AtomicI64::new(t.timestamp_micros()),
        })
    }

    pub fn set(&self, t: DateTime<Utc>) {
        self.micros.store(t.timestamp_micros(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: TimeDelta) {
        let by = by.num_microseconds().unwrap_or(i64::MAX);
        self.micros.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.micros.load(Ordering::SeqCst)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-22T08:15:00.500Z")
            .unwrap()
            .to_utc();
        let c = ManualClock::at(t0);
        assert_eq!(c.now(), t0);
        c.advance(TimeDelta::days(31));
        assert_eq!(c.now(), t0 + TimeDelta::days(31));
        assert_eq!(c.now_to_second().timestamp_subsec_millis(), 0);
    }
}
