//! The link book: where every link goes, copied to this process's local disk, for a store on
//! Redis. A redirect needs the link's record before it can answer; the link cache
//! (`crate::cache`) keeps the links this process has followed, so that a Redis outage does not
//! break them, but a link never followed here (minted on another process, tapped for the
//! first time during the outage, or pushed out of the cache) could only be answered `503`.
//! With the book, the cache answers such a code from disk while Redis does not answer, and its
//! click goes to the spool like any other (API.md: "a store outage never breaks a KOL's link").
//!
//! `keep` copies every link into the book at start and again whenever the store's links change
//! (`Store::links_version`, checked every `CHECK_EVERY`; a copy waits at least twenty times as
//! long as the last one took, so that a store of many links busy with changes is not read over
//! and over). A change made within that time before an outage is not in the book: a link
//! stopped then may still redirect during the outage, and one minted then is `503`. Rows are
//! only rewritten when they changed. The book is a cache: it holds nothing that is not in the
//! store, and a book that cannot be opened (another process holds the directory, a full disk)
//! leaves kolink without it, as before, and says so.
//!
//! `<spool dir>/links.redb` (the spool's directory is the process's own local disk), a few
//! hundred bytes a link, with a page cache of `CACHE_BYTES`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::domain::{Link, LinkStatus, Redirect, ShortCode};
use crate::store::{LinkIndex, LinkRows, Store};

/// Code → `Row` as JSON.
const REDIRECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("redirects");
/// The book's page cache: lookups happen only while the store does not answer.
const CACHE_BYTES: usize = 2 << 20;
/// How often the store's links version is read.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// Links read from the store a page.
const PAGE: usize = 1000;

/// What a redirect needs of a link, as the book keeps it (its code is the key).
#[derive(Serialize, Deserialize, PartialEq)]
struct Row {
    id: u64,
    target_url: Box<str>,
    status: LinkStatus,
    expires_at: Option<DateTime<Utc>>,
}

pub struct LinkBook {
    db: redb::Database,
    /// Redirects answered from the book (`kolink_link_book_answers_total`).
    answered: Counter,
    /// Links in the book after its last copy (`kolink_link_book_links`).
    size: Gauge,
}

impl LinkBook {
    /// Opens (or creates) `<dir>/links.redb`, readable by kolink's user alone. Blocking.
    pub fn open(dir: &Path, answered: Counter, size: Gauge) -> anyhow::Result<Self> {
        let path = dir.join("links.redb");
        let file = std::os::unix::fs::OpenOptionsExt::mode(&mut std::fs::OpenOptions::new(), 0o600)
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("Failed to open the link book {}", path.display()))?;
        let db = redb::Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(redb::backends::FileBackend::new(file)?)
            .with_context(|| format!("Failed to open the link book {}", path.display()))?;
        let w = db.begin_write()?;
        let n = w.open_table(REDIRECTS)?.len()?;
        w.commit()?;
        size.set(i64::try_from(n).unwrap_or(i64::MAX));
        Ok(Self { db, answered, size })
    }

    /// Where `code` goes, as last copied. Blocking.
    pub fn get(&self, code: &str) -> anyhow::Result<Option<Redirect>> {
        let t = self.db.begin_read()?.open_table(REDIRECTS)?;
        let Some(bytes) = t.get(code)? else {
            return Ok(None);
        };
        let row: Row = serde_json::from_slice(bytes.value())?;
        let code = ShortCode::stored(code).map_err(|e| anyhow::anyhow!("{e}"))?;
        self.answered.inc();
        Ok(Some(Redirect {
            id: row.id,
            code,
            target_url: row.target_url,
            status: row.status,
            expires_at: row.expires_at,
        }))
    }

    /// Writes `links` where they changed, durably when `last` (the end of a copy). Returns how
    /// many rows changed. Blocking.
    fn write(&self, links: &[Link], last: bool) -> anyhow::Result<usize> {
        let mut w = self.db.begin_write()?;
        w.set_durability(if last {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        })?;
        let mut changed = 0;
        {
            let mut t = w.open_table(REDIRECTS)?;
            for l in links {
                let row = serde_json::to_vec(&Row {
                    id: l.id,
                    target_url: l.target_url.as_str().into(),
                    status: l.status,
                    expires_at: l.expires_at,
                })?;
                let same = t.get(l.code.as_str())?.is_some_and(|old| old.value() == row.as_slice());
                if !same {
                    t.insert(l.code.as_str(), row.as_slice())?;
                    changed += 1;
                }
            }
            if last {
                self.size.set(i64::try_from(t.len()?).unwrap_or(i64::MAX));
            }
        }
        w.commit()?;
        Ok(changed)
    }
}

/// Keeps `book` a copy of the store's links (see the module doc); runs until aborted.
pub async fn keep(book: Arc<LinkBook>, store: Arc<dyn Store>) {
    let mut copied: Option<u64> = None;
    let mut wait = CHECK_EVERY;
    loop {
        match store.links_version().await {
            Ok(None) => return,
            Ok(Some(version)) if copied != Some(version) => {
                let started = Instant::now();
                match copy(&book, store.as_ref()).await {
                    Ok((links, changed)) => {
                        copied = Some(version);
                        wait = CHECK_EVERY.max(started.elapsed() * 20);
                        tracing::debug!(links, changed, took = ?started.elapsed(), "link book copied");
                    }
                    Err(e) => crate::telemetry::warn_limited!(error = %e, "link book not copied"),
                }
            }
            Ok(Some(_)) => {}
            // The store does not answer: the book stays as it is, and is what answers.
            Err(_) => {}
        }
        tokio::time::sleep(wait).await;
    }
}

/// Every link of the store into the book, a page at a time: how many links, and how many rows
/// changed.
async fn copy(book: &Arc<LinkBook>, store: &dyn Store) -> anyhow::Result<(usize, usize)> {
    let (mut after, mut links, mut changed) = (None, 0, 0);
    loop {
        let (rows, next) = store.link_rows(LinkIndex::All, LinkRows::Records, after, PAGE).await?;
        let page: Vec<Link> = rows.iter().filter_map(|r| serde_json::from_str(r).ok()).collect();
        links += page.len();
        let last = next.is_none();
        let b = book.clone();
        changed += tokio::task::spawn_blocking(move || b.write(&page, last)).await??;
        match next {
            Some(n) => after = Some(n),
            None => return Ok((links, changed)),
        }
    }
}
