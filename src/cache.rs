//! The in-process cache of link records on the redirect hot path: bounded, short-lived, and
//! invalidated when this process changes a link (other processes see the change within the
//! TTL). Unknown codes are cached too, so that a scanner trying random paths costs one store
//! read per code and TTL.
//!
//! A record past its TTL is read again, within the store's deadline (`STORE_DEADLINE`); when
//! the store does not answer, or is known not to (clicks wait in the spool), the last record
//! read stays in use (for up to a day), so that a store outage does not break links that were
//! followed before it. Links never read before the outage answer `503`: kolink cannot know
//! where they go.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clicks::STORE_DEADLINE;
use crate::domain::Link;
use crate::store::{Result, Store, StoreError};

/// How long a record may stand in for the store while the store does not answer.
const STALE_FOR: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
struct Entry {
    read_at: Instant,
    link: Option<Arc<Link>>,
}

pub struct LinkCache {
    entries: moka::sync::Cache<String, Entry>,
    fresh_for: Duration,
}

impl LinkCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(STALE_FOR.max(ttl))
                .build(),
            fresh_for: ttl,
        }
    }

    /// The link of `code`. `store_sick`: the store is known not to answer (clicks wait in the
    /// spool), so a record past its TTL is used without asking it.
    pub async fn get(&self, store: &dyn Store, code: &str, store_sick: bool) -> Result<Option<Arc<Link>>> {
        let cached = self.entries.get(code);
        if let Some(hit) = &cached {
            if store_sick || hit.read_at.elapsed() < self.fresh_for {
                return Ok(hit.link.clone());
            }
        }
        let read = match tokio::time::timeout(STORE_DEADLINE, store.get_link(code)).await {
            Ok(read) => read,
            Err(_) => Err(StoreError::Unavailable(anyhow::anyhow!(
                "the store did not answer a link lookup within {STORE_DEADLINE:?}"
            ))),
        };
        match (read, cached) {
            (Ok(link), _) => {
                let link = link.map(Arc::new);
                self.entries.insert(
                    code.to_owned(),
                    Entry {
                        read_at: Instant::now(),
                        link: link.clone(),
                    },
                );
                Ok(link)
            }
            // The store does not answer: the last record read stands in for it.
            (Err(StoreError::Unavailable(_)), Some(stale)) => Ok(stale.link),
            (Err(e), _) => Err(e),
        }
    }

    pub fn forget(&self, code: &str) {
        self.entries.invalidate(code);
    }
}
