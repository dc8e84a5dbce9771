//! The in-process cache of link records on the redirect hot path: bounded, short-lived, and
//! invalidated when this process changes a link (other processes see the change within the
//! TTL). Unknown codes are cached too, so that a scanner trying random paths costs one store
//! read per code and TTL.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::Link;
use crate::store::{Result, Store};

pub struct LinkCache(moka::sync::Cache<String, Option<Arc<Link>>>);

impl LinkCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        )
    }

    pub async fn get(&self, store: &dyn Store, code: &str) -> Result<Option<Arc<Link>>> {
        if let Some(hit) = self.0.get(code) {
            return Ok(hit);
        }
        let link = store.get_link(code).await?.map(Arc::new);
        self.0.insert(code.to_owned(), link.clone());
        Ok(link)
    }

    pub fn forget(&self, code: &str) {
        self.0.invalidate(code);
    }
}
