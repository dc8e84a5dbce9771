//! Suspicious clicks: more than 10 clicks from one visitor on one link within a minute. The
//! 11th and later are still redirected (never refused for rate) but counted as
//! `suspicious_clicks`, not clicks.
//!
//! Each process keeps, per (link, visitor), the times of the last 10 clicks in a bounded,
//! expiring cache; behind a load balancer without client affinity each process judges the
//! clicks it sees.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Clicks allowed per visitor and link within `WINDOW` before they are suspicious.
pub const LIMIT: usize = 10;
const WINDOW: TimeDelta = TimeDelta::seconds(60);

/// The times of a visitor's last clicks on a link, oldest first.
type Recent = Arc<Mutex<VecDeque<DateTime<Utc>>>>;

pub struct Suspicion(moka::sync::Cache<(String, String), Recent>);

impl Suspicion {
    pub fn new(capacity: u64) -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(Duration::from_secs(60))
                .build(),
        )
    }

    /// Records a click of `visitor` on `code` at `now`; true when it is past the limit.
    pub fn click(&self, code: &str, visitor: &str, now: DateTime<Utc>) -> bool {
        let times = self.0.get_with((code.to_owned(), visitor.to_owned()), || {
            Arc::new(Mutex::new(VecDeque::new()))
        });
        let mut times = times.lock().unwrap_or_else(|p| p.into_inner());
        while times.front().is_some_and(|t| now - *t >= WINDOW) {
            times.pop_front();
        }
        if times.len() >= LIMIT {
            return true;
        }
        times.push_back(now);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_click_within_a_minute_is_suspicious_and_the_window_slides() {
        let s = Suspicion::new(100);
        let t0 = Utc::now();
        for i in 0..10 {
            assert!(!s.click("a", "v", t0 + TimeDelta::seconds(i)), "click {i}");
        }
        assert!(s.click("a", "v", t0 + TimeDelta::seconds(30)));
        assert!(!s.click("a", "w", t0 + TimeDelta::seconds(30)), "another visitor");
        assert!(!s.click("b", "v", t0 + TimeDelta::seconds(30)), "another link");
        // A minute after the first click, one slot is free again.
        assert!(!s.click("a", "v", t0 + TimeDelta::seconds(60)));
        assert!(s.click("a", "v", t0 + TimeDelta::seconds(60)));
    }
}
