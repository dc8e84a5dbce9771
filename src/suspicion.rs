//! Suspicious clicks: more than 10 clicks from one visitor on one link within a minute. The
//! 11th and later are still redirected (never refused for rate) but counted as
//! `suspicious_clicks`, not clicks.
//!
//! Each process keeps, per (link, visitor), the times of the last 10 clicks in a bounded cache;
//! behind a load balancer without client affinity each process judges the clicks it sees.
//! Windows that have gone quiet for a minute tell nothing more and are swept out once a minute,
//! so that the cache holds the last minute or two of visitors, not its capacity's worth.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

/// Clicks allowed per visitor and link within `WINDOW` before they are suspicious.
pub const LIMIT: usize = 10;
const WINDOW: TimeDelta = TimeDelta::seconds(60);

/// The times of a visitor's last clicks on a link, oldest first.
type Recent = Arc<Mutex<VecDeque<DateTime<Utc>>>>;

/// Keyed by (link id, the visitor hash's first 64 bits): no allocation per click.
pub struct Suspicion {
    windows: Arc<quick_cache::sync::Cache<(u64, u64), Recent>>,
    /// Events allowed per key within `WINDOW` (`LIMIT` unless made `with_limit`).
    limit: usize,
    /// When windows were last swept (Unix seconds).
    swept_at: AtomicI64,
}

impl Suspicion {
    pub fn new(capacity: u64) -> Self {
        Self {
            windows: Arc::new(quick_cache::sync::Cache::new(
                usize::try_from(capacity).unwrap_or(usize::MAX).max(1),
            )),
            swept_at: AtomicI64::new(0),
            limit: LIMIT,
        }
    }

    /// Windows that allow `limit` events a minute (a mail service's image proxy loads a pixel
    /// for many readers from one address).
    pub fn with_limit(capacity: u64, limit: usize) -> Self {
        Self {
            limit,
            ..Self::new(capacity)
        }
    }

    /// Drops the windows whose last click is a `WINDOW` old, at most once a `WINDOW`; the click
    /// that finds the last sweep that old starts it. Within a tokio runtime the sweep runs on a
    /// blocking thread (100,000 windows took about 30 ms), and it takes each shard's lock for one
    /// window at a time, so redirects never wait on it. A window swept while a click is adding to
    /// it loses that click (the next one starts a new window): it held only clicks a minute old.
    fn sweep(&self, now: DateTime<Utc>) {
        let last = self.swept_at.load(Ordering::Relaxed);
        if now.timestamp() - last < WINDOW.num_seconds()
            || self
                .swept_at
                .compare_exchange(last, now.timestamp(), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let windows = self.windows.clone();
        let quiet = move |times: &Recent| {
            let times = times.lock().unwrap_or_else(|p| p.into_inner());
            // An empty window is one a click has just made and is about to fill.
            times.back().is_some_and(|t| now - *t >= WINDOW)
        };
        let sweep = move || {
            for (key, times) in windows.iter() {
                if quiet(&times) {
                    windows.remove_if(&key, |t| Arc::ptr_eq(t, &times) && quiet(t));
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(sweep)),
            Err(_) => sweep(),
        }
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
        self.sweep(now);
        let times = match self.windows.get_or_insert_with(&(link_id, visitor), || {
            Ok::<_, std::convert::Infallible>(Arc::new(Mutex::new(VecDeque::new())))
        }) {
            Ok(times) => times,
            Err(never) => match never {},
        };
        let mut times = times.lock().unwrap_or_else(|p| p.into_inner());
        while times.front().is_some_and(|t| now - *t >= WINDOW) {
            times.pop_front();
        }
        if times.len() >= self.limit {
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

    #[test]
    fn windows_quiet_for_a_minute_are_swept_out_and_busy_ones_kept() {
        let s = Suspicion::new(1_000);
        let t0 = Utc::now();
        let (v, w) = ("0123456789abcdef01234567", "fedcba9876543210fedcba98");
        s.click(1, v, t0);
        s.click(1, w, t0 + TimeDelta::seconds(40));
        assert_eq!(s.windows.len(), 2);
        // The next sweep is due a minute after the first: v's last click is then a minute old.
        s.click(2, v, t0 + TimeDelta::seconds(61));
        assert_eq!(s.windows.len(), 2, "w's window and the new one stay");
        assert!(
            s.windows.get(&(1, 0x0123456789abcdef)).is_none(),
            "v's quiet window is gone"
        );
        // A swept window starts again empty: ten more clicks pass.
        for i in 0..10 {
            assert!(!s.click(1, v, t0 + TimeDelta::seconds(62 + i)), "click {i}");
        }
    }

    #[tokio::test]
    async fn within_a_runtime_the_sweep_runs_beside_the_click_that_found_it_due() {
        let s = Suspicion::new(1_000);
        let t0 = Utc::now();
        for link in 0..100 {
            s.click(link, "0123456789abcdef01234567", t0);
        }
        s.click(1_000, "0123456789abcdef01234567", t0 + TimeDelta::seconds(61));
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while s.windows.len() > 1 {
            assert!(std::time::Instant::now() < until, "not swept: {}", s.windows.len());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(s.windows.get(&(1_000, 0x0123456789abcdef)).is_some());
    }
}
