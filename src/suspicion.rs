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

/// Keyed by (link id, the visitor hash's first 64 bits): no allocation per click.
pub struct Suspicion(moka::sync::Cache<(u64, u64), Recent>);

impl Suspicion {
    pub fn new(capacity: u64) -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(Duration::from_secs(60))
                .build(),
        )
    }

    /// Records a click of `visitor` on link `link_id` at `now`; true when it is past the limit.
    pub fn click(&self, link_id: u64, visitor: &str, now: DateTime<Utc>) -> bool {
        // Visitor hashes are keyed HMACs in hex: their first 16 digits are as good as a hash.
        let visitor = visitor
            .get(..16)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or_else(|| {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                visitor.hash(&mut h);
                h.finish()
            });
        let times = self
            .0
            .get_with((link_id, visitor), || Arc::new(Mutex::new(VecDeque::new())));
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
        let (v, w) = ("0123456789abcdef01234567", "fedcba9876543210fedcba98");
        for i in 0..10 {
            assert!(!s.click(1, v, t0 + TimeDelta::seconds(i)), "click {i}");
        }
        assert!(s.click(1, v, t0 + TimeDelta::seconds(30)));
        assert!(!s.click(1, w, t0 + TimeDelta::seconds(30)), "another visitor");
        assert!(!s.click(2, v, t0 + TimeDelta::seconds(30)), "another link");
        // A minute after the first click, one slot is free again.
        assert!(!s.click(1, v, t0 + TimeDelta::seconds(60)));
        assert!(s.click(1, v, t0 + TimeDelta::seconds(60)));
    }
}
