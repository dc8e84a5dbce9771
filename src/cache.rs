//! The in-process cache of links on the redirect hot path, each as a redirect needs it
//! (`domain::Redirect`, not the whole record): bounded, and invalidated when this process
//! changes a link. Unknown codes are cached too, for `MISS_FRESH_FOR` (or the TTL, if shorter),
//! so that a scanner trying random paths costs one store read per code and second; past that
//! an unknown code is read again before it is answered, so that a link another process mints
//! is followed within a second where its code was tried before (a typo, a KOL trying it
//! early), not after a TTL of 404s.
//!
//! A record is fresh for the TTL (`link_cache_seconds`). Past it, the cached record answers at
//! once and one background read refreshes it (so other processes' changes are seen within the
//! TTL plus one read); a redirect never waits on the store for a link it has read before. When
//! the store does not answer, the last record read stays in use (for up to a day), so that a
//! store outage does not break links that were followed before it. A code never read waits for
//! the store, within its deadline (`STORE_DEADLINE`); when the store does not answer, the link
//! book (`crate::link_book`, Redis stores) says where it goes, and else a code's last
//! "unknown" stands. While the store's last answer to a link read was none, the book is asked
//! first, so that each link's first tap of an outage does not wait out the deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clicks::STORE_DEADLINE;
use crate::domain::Redirect;
use crate::link_book::LinkBook;
use crate::store::{Result, Store, StoreError};

/// How long a record may stand in for the store while the store does not answer.
const STALE_FOR: Duration = Duration::from_secs(24 * 3600);
/// How long "no such link" is taken from the cache before the store is asked again.
const MISS_FRESH_FOR: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct Entry {
    read_at: Instant,
    link: Option<Arc<Redirect>>,
    /// A background read of this code is under way.
    refreshing: Arc<AtomicBool>,
}

type Entries = quick_cache::sync::Cache<String, Entry>;

pub struct LinkCache {
    entries: Arc<Entries>,
    fresh_for: Duration,
    book: Option<Arc<LinkBook>>,
    /// The store's last answer to a read of a link was none (a timeout or a refusal): a code
    /// this process has not read is then looked up in the book first, rather than after
    /// waiting `STORE_DEADLINE` for a store that is most likely still down. Cleared by the
    /// next read the store answers (every link served from the book is refreshed).
    store_down: Arc<AtomicBool>,
}

impl LinkCache {
    pub fn new(capacity: u64, ttl: Duration, book: Option<Arc<LinkBook>>) -> Self {
        Self {
            entries: Arc::new(Entries::new(usize::try_from(capacity).unwrap_or(usize::MAX).max(1))),
            fresh_for: ttl,
            book,
            store_down: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The link of `code`: from the cache when this process has read it (refreshed in the
    /// background past the TTL), else from the store within `STORE_DEADLINE`.
    pub async fn get(&self, store: &Arc<dyn Store>, code: &str) -> Result<Option<Arc<Redirect>>> {
        let cached = self
            .entries
            .get(code)
            .map(|hit| (hit.read_at.elapsed(), hit))
            .filter(|(age, _)| *age < STALE_FOR.max(self.fresh_for));
        // A code found unknown is asked about again past `MISS_FRESH_FOR`, before answering.
        // (The entry is moved out, not cloned: this is every redirect's path.)
        let (cached, answer) = match cached {
            Some((age, hit)) if hit.link.is_some() || age < MISS_FRESH_FOR.min(self.fresh_for) => {
                (None, Some((age, hit)))
            }
            stale_miss => (stale_miss, None),
        };
        if let Some((age, hit)) = answer {
            let link = hit.link.clone();
            if age >= self.fresh_for && !hit.refreshing.swap(true, Ordering::SeqCst) {
                let (entries, store, code) = (self.entries.clone(), store.clone(), code.to_owned());
                let down = self.store_down.clone();
                tokio::spawn(async move {
                    // Kept as it was when the store does not answer: the flag is cleared so
                    // that a later redirect tries again.
                    match tokio::time::timeout(STORE_DEADLINE * 4, store.get_link(&code)).await {
                        Ok(Ok(link)) => {
                            down.store(false, Ordering::Relaxed);
                            remember(&entries, code, link);
                        }
                        _ => {
                            down.store(true, Ordering::Relaxed);
                            hit.refreshing.store(false, Ordering::SeqCst);
                        }
                    }
                });
            }
            return Ok(link);
        }
        if self.store_down.load(Ordering::Relaxed) {
            if let Some(link) = self.stand_in_from_book(code).await {
                return Ok(Some(link));
            }
        }
        let read = match tokio::time::timeout(STORE_DEADLINE, store.get_link(code)).await {
            Ok(read) => read,
            Err(_) => Err(StoreError::Unavailable(anyhow::anyhow!(
                "the store did not answer a link lookup within {STORE_DEADLINE:?}"
            ))),
        };
        match read {
            Ok(link) => {
                self.store_down.store(false, Ordering::Relaxed);
                Ok(remember(&self.entries, code.to_owned(), link))
            }
            Err(StoreError::Unavailable(e)) => {
                self.store_down.store(true, Ordering::Relaxed);
                // The store does not answer: the book says where the link goes. Else a code
                // found unknown before stays unknown, as a link read before stays in use,
                // rather than making every scanner's request wait.
                if let Some(link) = self.stand_in_from_book(code).await {
                    return Ok(Some(link));
                }
                match cached {
                    Some((_, hit)) if hit.link.is_none() => Ok(None),
                    _ => Err(StoreError::Unavailable(e)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `code`'s link from the book, kept in the cache as a record past its TTL (so the next
    /// redirect asks the store again in the background, and a book's older row does not outlive
    /// the outage).
    async fn stand_in_from_book(&self, code: &str) -> Option<Arc<Redirect>> {
        let link = Arc::new(self.in_book(code).await?);
        let read_at = Instant::now().checked_sub(self.fresh_for).unwrap_or_else(Instant::now);
        remember_read(&self.entries, code.to_owned(), Some(link.clone()), read_at);
        Some(link)
    }

    async fn in_book(&self, code: &str) -> Option<Redirect> {
        let book = self.book.clone()?;
        let c = code.to_owned();
        match tokio::task::spawn_blocking(move || book.get(&c)).await {
            Ok(Ok(link)) => link,
            Ok(Err(e)) => {
                crate::telemetry::warn_limited!(error = %e, "the link book was not read");
                None
            }
            Err(_) => None,
        }
    }

    pub fn forget(&self, code: &str) {
        self.entries.remove(code);
    }
}

fn remember(entries: &Entries, code: String, link: Option<crate::domain::Link>) -> Option<Arc<Redirect>> {
    let link = link.map(|l| Arc::new(Redirect::from(l)));
    remember_read(entries, code, link.clone(), Instant::now());
    link
}

fn remember_read(entries: &Entries, code: String, link: Option<Arc<Redirect>>, read_at: Instant) {
    entries.insert(
        code,
        Entry {
            read_at,
            link,
            refreshing: Arc::new(AtomicBool::new(false)),
        },
    );
}
