//! The embedded store: the zero-setup default, one redb file (`<data_dir>/kolink.redb`).
//!
//! redb is pure Rust, ACID and crash-safe: a committed write transaction is on disk (fsync)
//! when `commit` returns. Every call runs on the store's own threads (`pool`), never on an
//! actix worker: writes on one, reads on two. Clicks arrive in groups from `crate::clicks`; a
//! group is one record appended to the click journal (`<data_dir>/kolink.journal`, one fsync
//! shared by many concurrent redirects) and one non-durable transaction, which a durable commit
//! writes to the file within 50 ms while clicks come (`journal`). Every other write commits
//! durably.
//!
//! | table            | key                        | value                                  |
//! |------------------|----------------------------|----------------------------------------|
//! | `secrets`        | name                       | admin token hash, visitor-hash key     |
//! | `records`        | (kind, id)                 | campaign / KOL / shop JSON             |
//! | `record_idx`     | (kind, seq)                | id (newest-first lists)                |
//! | `seqs`           | name                       | last sequence number given             |
//! | `links`          | code                       | link JSON                              |
//! | `link_ids`       | numeric link id            | code (click ids; newest-first list)    |
//! | `coupons`        | coupon key (`CouponKey`)   | code                                   |
//! | `campaign_links` | (campaign, link id)        | the link's summary JSON (`LinkSummary`)|
//! | `kol_links`      | (KOL, link id)             | the link's summary JSON (`LinkSummary`)|
//! | `clicks`         | (code, ms, seq)            | click JSON (the link's click log)      |
//! | `counters`       | (code, field)              | count (`crate::counters` fields)       |
//! | `visitors`       | (code, day, visitor hash)  | () — a day's first 10,000 unique visitors |
//! | `visitor_sketches` | (code, day)              | HyperLogLog of the day's later visitors (`sketch`) |
//! | `metrics`        | (code, day)                | platform insights JSON (`DayInsights`) |
//! | `orders`         | (code, conversion id)      | () — conversions already counted       |
//! | `conversions`    | seq                        | conversion JSON                        |
//! | `conversion_idem`| idempotency key            | seq in `conversions`                   |
//! | `refunded`       | (code, purchase key)       | refunds counted, minor units           |
//! | `pending`        | (purchase key, refund key) | () — refunds waiting for the purchase  |
//!
//! Cursors are the sequence or link id of the last item of a page. I/O errors are
//! `StoreError::Unavailable`; anything else redb reports is `StoreError::Corrupt`. After an I/O
//! error the file is closed and opened again by itself (`disk`), so a disk that filled up and
//! was freed needs no restart.

mod disk;
mod journal;
mod pool;
mod sketch;
mod tables;

use disk::Calls;
pub use disk::DiskFaults;

/// The page cache of `open` (the setting's default, `embedded_cache_mb`).
pub const DEFAULT_CACHE_BYTES: usize = 6 << 20;

/// Threads that run the store's reads (`pool`): link lookups of redirects, lists and reports.
/// Writes have one thread of their own: redb lets one write transaction run at a time, so more
/// writer threads would only wait on it, and a commit waiting on fsync never holds up a read.
/// Each thread keeps its own allocator pages, so fewer threads is less memory: 8 threads shared
/// by reads and writes held 80–86 MiB after 100,000 links were minted, these three 47–49.
const READ_THREADS: usize = 2;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::NaiveDate;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use tokio::task::JoinHandle;

use super::{
    summary_json, ClickLog, Conversions, Counted, Counters, Cursor, Detail, Kind, LinkConflict, LinkData, LinkIndex,
    LinkRows, Links, NewClick, Records, RefundCap, Result, Scan, Store, StoreError,
};
use crate::clock::SharedClock;
use crate::domain::{ClickInfo, Conversion, CouponKey, DayInsights, EntryId, Link, LinkSummary, StoredClick};
use tables::*;

pub struct EmbeddedStore {
    db: Arc<disk::Handle>,
    readers: pool::Pool,
    writer: Arc<pool::Pool>,
    journal: Arc<journal::Journal>,
    upkeep: Mutex<Option<JoinHandle<()>>>,
    /// Moves after every write of links (`Links::links_version`). One process holds the
    /// database (its file lock), so a count in memory sees every change; it starts at a random
    /// number, as a version must not come back for another store.
    links_version: Arc<AtomicU64>,
}

/// See `EmbeddedStore::links_change`.
struct LinksChange(Arc<AtomicU64>);

impl Drop for LinksChange {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// What redb reports, sorted: I/O failures are `Unavailable`, the rest `Corrupt`.
fn sort(e: redb::Error) -> StoreError {
    let unavailable = matches!(
        e,
        redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
    );
    let e = anyhow::Error::new(e).context("The embedded store failed");
    if unavailable {
        StoreError::Unavailable(e)
    } else {
        StoreError::Corrupt(e)
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                sort(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);

impl EmbeddedStore {
    /// Opens (or creates) `<dir>/kolink.redb` (readable by kolink's user alone) and its click journal, applies what the journal
    /// holds, and starts the upkeep (idle checkpoints of the journal, hourly pruning).
    pub async fn open(dir: &Path, click_retention: Duration, clock: SharedClock) -> anyhow::Result<Self> {
        Self::open_with(dir, click_retention, clock, DEFAULT_CACHE_BYTES, DiskFaults::default()).await
    }

    /// `open` with a page cache of `cache_bytes`, writing through `faults` (which tests and
    /// drills use to make the disk act full or hang).
    pub async fn open_with(
        dir: &Path,
        click_retention: Duration,
        clock: SharedClock,
        cache_bytes: usize,
        faults: DiskFaults,
    ) -> anyhow::Result<Self> {
        // Kolink's user alone: the file holds the shops' secrets and the session key.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .map_err(|e| anyhow::anyhow!("Failed to create the data directory {}: {e}", dir.display()))?;
        let path = dir.join("kolink.redb");
        warn_if_others_read(&path);
        let journal_path = dir.join("kolink.journal");
        let shown = dir.display().to_string();
        let (db, journal) = tokio::task::spawn_blocking(move || {
            // Which file a failure is of, and what a full disk means here: a start writes (the
            // tables, the journal's clicks), and was refused with a bare "No space left".
            let of = |what: &str| {
                format!("Failed to open the embedded store's {what} in {shown} (a start writes to it: a full disk stops it)")
            };
            // The database first: its lock tells a second process that the directory is taken.
            let db = create_tables(disk::open_file(&path, cache_bytes, &faults)).with_context(|| of("database"))?;
            let journal =
                Arc::new(journal::Journal::open(&journal_path, faults.clone()).with_context(|| of("click journal"))?);
            let n = journal.recover(&db).with_context(|| of("click journal"))?;
            if n > 0 {
                tracing::info!(clicks = n, "applied the clicks the embedded store's journal held");
            }
            // The database opened again after an I/O error has only what was committed durably.
            let recover = {
                let journal = journal.clone();
                Box::new(move |db: &Database| journal.recover(db).map(drop))
            };
            anyhow::Ok((disk::Handle::new(path, cache_bytes, faults, db, recover), journal))
        })
        .await??;
        let db = Arc::new(db);
        let writer = Arc::new(pool::Pool::new("write", 1).context("Failed to start the embedded store's threads")?);
        let upkeep = tokio::spawn(upkeep(
            Arc::downgrade(&db),
            Arc::downgrade(&writer),
            Arc::downgrade(&journal),
            click_retention,
            clock,
        ));
        Ok(Self {
            db,
            readers: pool::Pool::new("read", READ_THREADS).context("Failed to start the embedded store's threads")?,
            writer,
            journal,
            upkeep: Mutex::new(Some(upkeep)),
            links_version: Arc::new(AtomicU64::new(rand::random())),
        })
    }

    /// Removes click log entries older than `cutoff_ms` (counters stay); returns how many.
    /// Runs hourly by itself; public for tests and tools.
    pub async fn prune_clicks_before(&self, cutoff_ms: u64) -> Result<u64> {
        let journal = self.journal.clone();
        self.run_writing(move |db| prune(db, &journal, cutoff_ms)).await
    }

    /// Moves the links version when dropped, on the writer thread with the write of links that
    /// holds it: after that write has committed or failed (a commit that reported an error may
    /// still have landed), never before, so a list read after the version is not older than it.
    fn links_change(&self) -> LinksChange {
        LinksChange(self.links_version.clone())
    }

    /// Runs a read on the reader threads.
    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.on(&self.readers, Calls::Reads, f).await
    }

    /// The text under `key` in a table of text by text (links, coupons, secrets).
    async fn text(
        &self,
        table: TableDefinition<'static, &'static str, &'static str>,
        key: &str,
    ) -> Result<Option<String>> {
        let key = key.to_owned();
        self.run(move |db| {
            let t = db.begin_read()?.open_table(table)?;
            Ok(t.get(key.as_str())?.map(|v| v.value().to_owned()))
        })
        .await
    }

    /// Runs `f`, which writes, on the writer thread.
    async fn run_writing<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.on(&self.writer, Calls::Writes, f).await
    }

    async fn on<T, F>(&self, threads: &pool::Pool, kind: Calls, f: F) -> Result<T>
    where
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.db.clone();
        let ticket = db.ticket(kind)?;
        threads
            .run(move || {
                let _ticket = ticket;
                db.with(f)
            })
            .await
            .map_err(|_| StoreError::Corrupt(anyhow::anyhow!("An embedded store call failed (it panicked)")))?
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&WriteTransaction) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run_writing(move |db| {
            let txn = db.begin_write()?;
            let out = f(&txn)?;
            txn.commit()?;
            Ok(out)
        })
        .await
    }
}

fn next_seq(txn: &WriteTransaction, name: &str, n: u64) -> Result<u64> {
    let mut seqs = txn.open_table(SEQS)?;
    let last = seqs.get(name)?.map(|v| v.value()).unwrap_or(0);
    seqs.insert(name, last + n)?;
    Ok(last + 1)
}

fn coupon_key(link: &Link) -> Option<CouponKey> {
    link.coupon.as_ref().map(|c| c.key())
}

/// The exclusive upper bound a cursor stands for; no cursor is the top of the list.
/// Says so when a database file made by an older version can be read by other local users
/// (it was created under the umask, often 644); new files are made 600. Left to the operator
/// to change, since a backup job may rely on it.
fn warn_if_others_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the embedded database (shop secrets, session key) can be read by other users: chmod 600 it"
            );
        }
    }
}

fn before(after: Option<Cursor>) -> Result<u64> {
    match after {
        Some(c) => Ok(c.position::<1>()?[0]),
        None => Ok(u64::MAX),
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    /// A write, committed to disk: reads keep working on a full disk, and readiness is about
    /// taking clicks.
    async fn ping(&self) -> Result<()> {
        self.write(|txn| {
            let mut seqs = txn.open_table(SEQS)?;
            let n = seqs.get("readyz")?.map(|v| v.value()).unwrap_or(0);
            seqs.insert("readyz", n.wrapping_add(1))?;
            Ok(())
        })
        .await
    }

    async fn init_secret(&self, name: &str, candidate: &str) -> Result<(String, bool)> {
        let (name, candidate) = (name.to_owned(), candidate.to_owned());
        self.write(move |txn| {
            let mut t = txn.open_table(SECRETS)?;
            if let Some(v) = t.get(name.as_str())? {
                return Ok((v.value().to_owned(), false));
            }
            t.insert(name.as_str(), candidate.as_str())?;
            Ok((candidate, true))
        })
        .await
    }

    async fn secret(&self, name: &str) -> Result<Option<String>> {
        self.text(SECRETS, name).await
    }

    async fn replace_secret(&self, name: &str, value: &str) -> Result<()> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.write(move |txn| {
            txn.open_table(SECRETS)?.insert(name.as_str(), value.as_str())?;
            Ok(())
        })
        .await
    }

    async fn close(&self) {
        let upkeep = self.upkeep.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(p) = upkeep {
            p.abort();
            let _ = p.await;
        }
        // A stop leaves the clicks in the database file itself; were this to fail, the next
        // start applies them from the journal.
        let journal = self.journal.clone();
        if let Err(e) = self.run_writing(move |db| journal.checkpoint(db)).await {
            tracing::warn!(error = %e, "Failed to write the last clicks into the embedded database; the next start applies them from its journal");
        }
    }
}

#[async_trait::async_trait]
impl Records for EmbeddedStore {
    async fn create_record(&self, kind: Kind, id: &str, json: String) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |txn| {
            let k = kind.plural();
            if txn.open_table(RECORDS)?.get((k, id.as_str()))?.is_some() {
                return Ok(false);
            }
            let seq = next_seq(txn, k, 1)?;
            txn.open_table(RECORDS)?.insert((k, id.as_str()), json.as_str())?;
            txn.open_table(RECORD_IDX)?.insert((k, seq), id.as_str())?;
            Ok(true)
        })
        .await
    }

    async fn get_record(&self, kind: Kind, id: &str) -> Result<Option<String>> {
        let id = id.to_owned();
        self.run(move |db| {
            let t = db.begin_read()?.open_table(RECORDS)?;
            Ok(t.get((kind.plural(), id.as_str()))?.map(|v| v.value().to_owned()))
        })
        .await
    }

    async fn get_records(&self, kind: Kind, ids: &[String]) -> Result<Vec<Option<String>>> {
        let ids = ids.to_vec();
        self.run(move |db| {
            let t = db.begin_read()?.open_table(RECORDS)?;
            ids.iter()
                .map(|id| Ok(t.get((kind.plural(), id.as_str()))?.map(|v| v.value().to_owned())))
                .collect()
        })
        .await
    }

    async fn replace_record(&self, kind: Kind, id: &str, expected: &str, json: String) -> Result<bool> {
        let (id, expected) = (id.to_owned(), expected.to_owned());
        self.write(move |txn| {
            let mut t = txn.open_table(RECORDS)?;
            let key = (kind.plural(), id.as_str());
            if t.get(key)?.is_none_or(|v| v.value() != expected) {
                return Ok(false);
            }
            t.insert(key, json.as_str())?;
            Ok(true)
        })
        .await
    }

    async fn scan_records(&self, kind: Kind, after: Option<Cursor>, limit: usize) -> Result<Scan<String>> {
        let before = before(after)?;
        self.run(move |db| {
            let txn = db.begin_read()?;
            let idx = txn.open_table(RECORD_IDX)?;
            let records = txn.open_table(RECORDS)?;
            let k = kind.plural();
            let mut out = Vec::new();
            for row in idx.range((k, 0)..(k, before))?.rev().take(limit) {
                let (key, id) = row?;
                if let Some(json) = records.get((k, id.value()))? {
                    out.push((Cursor::mint([key.value().1]), json.value().to_owned()));
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait::async_trait]
impl Links for EmbeddedStore {
    async fn reserve_link_ids(&self, n: u64) -> Result<u64> {
        self.write(move |txn| next_seq(txn, "link", n)).await
    }

    async fn create_links(&self, links: &[Link]) -> Result<std::result::Result<(), LinkConflict>> {
        let links = links.to_vec();
        let moves = self.links_change();
        self.run_writing(move |db| {
            let _moves = moves;
            let txn = db.begin_write()?;
            {
                let existing = txn.open_table(LINKS)?;
                let coupons = txn.open_table(COUPONS)?;
                for l in &links {
                    if existing.get(l.code.as_str())?.is_some() {
                        return Ok(Err(LinkConflict::Code(l.code.to_string())));
                    }
                    if let Some(c) = coupon_key(l) {
                        if coupons.get(c.as_str())?.is_some() {
                            return Ok(Err(LinkConflict::Coupon(c.as_str().to_owned())));
                        }
                    }
                }
            }
            {
                let mut table = txn.open_table(LINKS)?;
                let mut ids = txn.open_table(LINK_IDS)?;
                let mut coupons = txn.open_table(COUPONS)?;
                let mut by_campaign = txn.open_table(CAMPAIGN_LINKS)?;
                let mut by_kol = txn.open_table(KOL_LINKS)?;
                for l in &links {
                    let code = l.code.as_str();
                    table.insert(code, serde_json::to_string(l)?.as_str())?;
                    ids.insert(l.id, code)?;
                    if let Some(c) = coupon_key(l) {
                        coupons.insert(c.as_str(), code)?;
                    }
                    let summary = summary_json(l)?;
                    by_campaign.insert((l.campaign.as_str(), l.id), summary.as_str())?;
                    by_kol.insert((l.kol.as_str(), l.id), summary.as_str())?;
                }
            }
            txn.commit()?;
            Ok(Ok(()))
        })
        .await
    }

    async fn update_link(&self, expected: &str, new: &Link) -> Result<std::result::Result<(), LinkConflict>> {
        let old: Link = serde_json::from_str(expected)?;
        let (expected, new) = (expected.to_owned(), new.clone());
        let moves = self.links_change();
        self.run_writing(move |db| {
            let _moves = moves;
            let txn = db.begin_write()?;
            let code = new.code.as_str();
            if txn.open_table(LINKS)?.get(code)?.is_none_or(|v| v.value() != expected) {
                return Ok(Err(LinkConflict::Stale));
            }
            let (old_c, new_c) = (coupon_key(&old), coupon_key(&new));
            {
                let mut coupons = txn.open_table(COUPONS)?;
                if let Some(n) = new_c.as_ref().filter(|n| Some(*n) != old_c.as_ref()) {
                    let owner = coupons.get(n.as_str())?.map(|v| v.value().to_owned());
                    if owner.is_some_and(|o| o != code) {
                        return Ok(Err(LinkConflict::Coupon(n.as_str().to_owned())));
                    }
                }
                // A coupon changed leaves neither of its keys behind: today's, nor the older
                // rule's, where it stayed because today's was taken (`CouponKey::legacy`).
                let older = old.coupon.as_ref().and_then(|c| CouponKey::legacy(c.as_str()));
                for o in [old_c.as_ref(), older.as_ref()].into_iter().flatten() {
                    if Some(o) == new_c.as_ref() {
                        continue;
                    }
                    let owned = coupons.get(o.as_str())?.is_some_and(|v| v.value() == code);
                    if owned {
                        coupons.remove(o.as_str())?;
                    }
                }
                if let Some(n) = &new_c {
                    coupons.insert(n.as_str(), code)?;
                }
                txn.open_table(LINKS)?
                    .insert(code, serde_json::to_string(&new)?.as_str())?;
                let summary = summary_json(&new)?;
                txn.open_table(CAMPAIGN_LINKS)?
                    .insert((new.campaign.as_str(), new.id), summary.as_str())?;
                txn.open_table(KOL_LINKS)?
                    .insert((new.kol.as_str(), new.id), summary.as_str())?;
            }
            txn.commit()?;
            Ok(Ok(()))
        })
        .await
    }

    async fn links_version(&self) -> Result<Option<u64>> {
        Ok(Some(self.links_version.load(Ordering::Acquire)))
    }

    async fn get_link_json(&self, code: &str) -> Result<Option<String>> {
        self.text(LINKS, code).await
    }

    async fn link_code_by_id(&self, id: u64) -> Result<Option<String>> {
        self.run(move |db| {
            Ok(db
                .begin_read()?
                .open_table(LINK_IDS)?
                .get(id)?
                .map(|v| v.value().to_owned()))
        })
        .await
    }

    async fn fold_coupon_keys(&self) -> Result<usize> {
        self.write(|txn| {
            let mut coupons = txn.open_table(COUPONS)?;
            let mut stale = Vec::new();
            for row in coupons.iter()? {
                let (key, code) = row?;
                let folded = CouponKey::of(key.value());
                if folded.as_str() != key.value() {
                    stale.push((key.value().to_owned(), folded, code.value().to_owned()));
                }
            }
            let mut moved = 0;
            for (old, new, code) in stale {
                if let Some(holder) = coupons.get(new.as_str())? {
                    crate::store::warn_coupon_stays(&old, &code, holder.value());
                    continue;
                }
                coupons.insert(new.as_str(), code.as_str())?;
                coupons.remove(old.as_str())?;
                moved += 1;
            }
            Ok(moved)
        })
        .await
    }

    async fn link_code_by_coupon(&self, coupon: &CouponKey) -> Result<Option<String>> {
        self.text(COUPONS, coupon.as_str()).await
    }

    async fn scan_links(
        &self,
        index: LinkIndex<'_>,
        rows: LinkRows,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Scan<String>> {
        let before = before(after)?;
        let index = match index {
            LinkIndex::All => None,
            LinkIndex::Campaign(c) => Some((CAMPAIGN_LINKS, c.to_owned())),
            LinkIndex::Kol(k) => Some((KOL_LINKS, k.to_owned())),
        };
        self.run(move |db| {
            let txn = db.begin_read()?;
            let links = txn.open_table(LINKS)?;
            let record = |code: &str| -> Result<Option<String>> { Ok(links.get(code)?.map(|j| j.value().to_owned())) };
            let mut out = Vec::new();
            match &index {
                // The campaign and KOL indexes hold each link's summary, in order: a report
                // reads them alone, in a few contiguous pages.
                Some((table, owner)) => {
                    let table = txn.open_table(*table)?;
                    for row in table
                        .range((owner.as_str(), 0)..(owner.as_str(), before))?
                        .rev()
                        .take(limit)
                    {
                        let (k, v) = row?;
                        let (id, value) = (k.value().1, v.value());
                        let json = if !value.starts_with('{') {
                            // A row written by an older version (one that ran on this file after
                            // it was brought to summaries, or a record that did not decode then)
                            // holds the code alone: its record stands in.
                            record(value)?
                        } else if rows == LinkRows::Summaries {
                            Some(value.to_owned())
                        } else {
                            record(serde_json::from_str::<LinkSummary>(value)?.code.as_str())?
                        };
                        out.extend(json.map(|json| (Cursor::mint([id]), json)));
                    }
                }
                None => {
                    for row in txn.open_table(LINK_IDS)?.range(0..before)?.rev().take(limit) {
                        let (id, code) = row?;
                        out.extend(record(code.value())?.map(|json| (Cursor::mint([id.value()]), json)));
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait::async_trait]
impl ClickLog for EmbeddedStore {
    /// The group answered once it is in the journal and the database's memory; a checkpoint
    /// then due runs after the answer, before the writer's next job (`journal::Journal::write`).
    async fn write_clicks(&self, clicks: &[NewClick]) -> Result<Vec<EntryId>> {
        let clicks = clicks.to_vec();
        let (journal, db) = (self.journal.clone(), self.db.clone());
        let ticket = db.ticket(Calls::Writes)?;
        self.writer
            .run_then(move || {
                let written = db.with(|d| journal.write(d, &clicks));
                let then: Option<pool::Then> = (written.is_ok() && journal.due()).then(|| {
                    Box::new(move || {
                        let _ticket = ticket;
                        if let Err(e) = db.with(|d| journal.checkpoint(d)) {
                            crate::telemetry::warn_limited!(error = %e, "the embedded store's clicks were not checkpointed; the journal keeps them");
                        }
                    }) as pool::Then
                });
                (written.map(|()| clicks.iter().map(|c| c.entry).collect()), then)
            })
            .await
            .map_err(|_| StoreError::Corrupt(anyhow::anyhow!("An embedded store call failed (it panicked)")))?
    }

    async fn get_click(&self, code: &str, entry: EntryId) -> Result<Option<StoredClick>> {
        let code = code.to_owned();
        self.run(move |db| {
            let t = db.begin_read()?.open_table(CLICKS)?;
            let json = t
                .get((code.as_str(), entry.ms, entry.seq))?
                .map(|v| v.value().to_owned());
            match json {
                Some(j) => Ok(Some(StoredClick {
                    entry,
                    info: serde_json::from_str(&j)?,
                })),
                None => Ok(None),
            }
        })
        .await
    }

    async fn read_clicks(&self, code: &str, after: Option<EntryId>, limit: usize) -> Result<Vec<StoredClick>> {
        let code = code.to_owned();
        self.run(move |db| {
            let t = db.begin_read()?.open_table(CLICKS)?;
            let c = code.as_str();
            let start = after.map(|a| (a.ms, a.seq)).unwrap_or((0, 0));
            let mut out = Vec::new();
            for row in t.range((c, start.0, start.1)..=(c, u64::MAX, u64::MAX))? {
                let (k, v) = row?;
                let (_, ms, seq) = k.value();
                let entry = EntryId { ms, seq };
                if after == Some(entry) {
                    continue;
                }
                let info: ClickInfo = serde_json::from_str(v.value())?;
                out.push(StoredClick { entry, info });
                if out.len() == limit {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait::async_trait]
impl Counters for EmbeddedStore {
    async fn bump_counter(&self, code: &str, field: &str) -> Result<()> {
        let (code, field) = (code.to_owned(), field.to_owned());
        self.write(move |txn| add_counters(txn, HashMap::from([((code.as_str(), field.as_str()), 1)])))
            .await
    }

    async fn put_insights(&self, code: &str, day: NaiveDate, insights: &DayInsights) -> Result<()> {
        let (code, day, json) = (code.to_owned(), day.to_string(), serde_json::to_string(insights)?);
        self.write(move |txn| {
            txn.open_table(METRICS)?
                .insert((code.as_str(), day.as_str()), json.as_str())?;
            Ok(())
        })
        .await
    }

    async fn remove_insights(&self, code: &str, day: NaiveDate) -> Result<bool> {
        let (code, day) = (code.to_owned(), day.to_string());
        self.write(move |txn| {
            let mut metrics = txn.open_table(METRICS)?;
            let removed = metrics.remove((code.as_str(), day.as_str()))?.is_some();
            Ok(removed)
        })
        .await
    }

    async fn link_data(&self, codes: &[String], detail: Detail) -> Result<Vec<LinkData>> {
        let codes = codes.to_vec();
        self.run(move |db| {
            let txn = db.begin_read()?;
            let (rollups, insights) = (txn.open_table(ROLLUPS)?, txn.open_table(METRICS)?);
            let full = if detail.full() {
                Some(txn.open_table(COUNTERS)?)
            } else {
                None
            };
            let all_time = detail != Detail::Range;
            let fields =
                |t: &redb::ReadOnlyTable<(&str, &str), i64>, c: &str, all_time: bool| -> Result<Vec<(String, i64)>> {
                    let mut out = Vec::new();
                    for row in t.range((c, "")..)? {
                        let (k, v) = row?;
                        let (kc, field) = k.value();
                        if kc != c {
                            break;
                        }
                        if all_time || !crate::counters::is_all_time(field.as_bytes()) {
                            out.push((field.to_owned(), v.value()));
                        }
                    }
                    Ok(out)
                };
            let mut out = Vec::with_capacity(codes.len());
            for code in &codes {
                let c = code.as_str();
                let mut data = LinkData::default();
                if let Some(full) = &full {
                    data.full = fields(full, c, true)?;
                }
                data.rollups = fields(&rollups, c, all_time)?;
                for row in insights.range((c, "")..)? {
                    let (k, v) = row?;
                    let (kc, day) = k.value();
                    if kc != c {
                        break;
                    }
                    if let (Ok(d), Ok(m)) = (day.parse(), serde_json::from_str(v.value())) {
                        data.insights.insert(d, m);
                    }
                }
                out.push(data);
            }
            Ok(out)
        })
        .await
    }

    async fn prune_hours(&self, keep_from: NaiveDate) -> Result<u64> {
        let ends: Arc<Vec<(String, String)>> = Arc::new(
            crate::counters::hourly_prefixes()
                .into_iter()
                .map(|p| {
                    let end = format!("{p}{keep_from}");
                    (p, end)
                })
                .collect(),
        );
        let (mut removed, mut at) = (0, Some((String::new(), 0)));
        while let Some(from) = at {
            let ends = ends.clone();
            let (n, next) = self.write(move |txn| prune_hours(txn, from, &ends)).await?;
            removed += n;
            at = next;
        }
        Ok(removed)
    }

    async fn unique_visitors(&self, pairs: &[(String, NaiveDate)]) -> Result<Vec<u64>> {
        let pairs = pairs.to_vec();
        self.run(move |db| {
            let txn = db.begin_read()?;
            let t = txn.open_table(VISITORS)?;
            let sketches = txn.open_table(VISITOR_SKETCHES)?;
            let mut out = Vec::with_capacity(pairs.len());
            for (code, day) in &pairs {
                let d = day.to_string();
                let mut n = 0u64;
                for row in t.range((code.as_str(), d.as_str(), "")..)? {
                    let (k, _) = row?;
                    let (kc, kd, _) = k.value();
                    if kc != code || kd != d {
                        break;
                    }
                    n += 1;
                }
                let key = (code.as_str(), d.as_str());
                if let Some(sketch) = sketches.get(key)?.and_then(|b| read_sketch(key, b.value())) {
                    n = n.saturating_add(sketch.count());
                }
                out.push(n);
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait::async_trait]
impl Conversions for EmbeddedStore {
    async fn save_conversion(&self, conversion: &Conversion) -> Result<Conversion> {
        let conversion = conversion.clone();
        self.write(move |txn| {
            let key = conversion.idempotency_key();
            let existing = txn.open_table(CONVERSION_IDEM)?.get(key.as_str())?.map(|v| v.value());
            if let Some(seq) = existing {
                if let Some(json) = txn.open_table(CONVERSIONS)?.get(seq)? {
                    return Ok(serde_json::from_str(json.value())?);
                }
            }
            let seq = next_seq(txn, "conversions", 1)?;
            txn.open_table(CONVERSIONS)?
                .insert(seq, serde_json::to_string(&conversion)?.as_str())?;
            txn.open_table(CONVERSION_IDEM)?.insert(key.as_str(), seq)?;
            Ok(conversion)
        })
        .await
    }

    async fn find_conversion(&self, idempotency_key: &str) -> Result<Option<Conversion>> {
        let key = idempotency_key.to_owned();
        self.run(move |db| {
            let txn = db.begin_read()?;
            let Some(seq) = txn.open_table(CONVERSION_IDEM)?.get(key.as_str())?.map(|v| v.value()) else {
                return Ok(None);
            };
            let json = txn.open_table(CONVERSIONS)?.get(seq)?.map(|v| v.value().to_owned());
            Ok(json.map(|j| serde_json::from_str(&j)).transpose()?)
        })
        .await
    }

    async fn count_conversion(
        &self,
        code: &str,
        conversion_id: &str,
        fields: &[(String, i64)],
        refund: Option<&RefundCap>,
    ) -> Result<Counted> {
        let (code, id, fields, refund) = (
            code.to_owned(),
            conversion_id.to_owned(),
            fields.to_vec(),
            refund.cloned(),
        );
        self.write(move |txn| {
            let mut orders = txn.open_table(ORDERS)?;
            if orders.get((code.as_str(), id.as_str()))?.is_some() {
                return Ok(Counted::Before);
            }
            if let Some(r) = &refund {
                let mut refunded = txn.open_table(REFUNDED)?;
                let key = (code.as_str(), r.order.as_str());
                let so_far = refunded.get(key)?.map(|v| v.value()).unwrap_or(0);
                if so_far.saturating_add(r.amount) > r.limit {
                    return Ok(Counted::OverRefund);
                }
                refunded.insert(key, so_far + r.amount)?;
            }
            orders.insert((code.as_str(), id.as_str()), ())?;
            let sums = fields.iter().map(|(f, n)| ((code.as_str(), f.as_str()), *n)).collect();
            add_counters(txn, sums)?;
            Ok(Counted::Now)
        })
        .await
    }

    async fn is_counted(&self, code: &str, conversion_id: &str) -> Result<bool> {
        let (code, id) = (code.to_owned(), conversion_id.to_owned());
        self.run(move |db| {
            let orders = db.begin_read()?.open_table(ORDERS)?;
            Ok(orders.get((code.as_str(), id.as_str()))?.is_some())
        })
        .await
    }

    async fn update_conversion(&self, conversion: &Conversion) -> Result<()> {
        let (key, json) = (conversion.idempotency_key(), serde_json::to_string(conversion)?);
        self.write(move |txn| {
            let seq = txn.open_table(CONVERSION_IDEM)?.get(key.as_str())?.map(|v| v.value());
            if let Some(seq) = seq {
                txn.open_table(CONVERSIONS)?.insert(seq, json.as_str())?;
            }
            Ok(())
        })
        .await
    }

    async fn add_pending(&self, order_key: &str, refund_key: &str) -> Result<()> {
        let (order, refund) = (order_key.to_owned(), refund_key.to_owned());
        self.write(move |txn| {
            txn.open_table(PENDING)?.insert((order.as_str(), refund.as_str()), ())?;
            Ok(())
        })
        .await
    }

    async fn pending(&self, order_key: &str) -> Result<Vec<String>> {
        let order = order_key.to_owned();
        self.run(move |db| {
            let t = db.begin_read()?.open_table(PENDING)?;
            let mut out = Vec::new();
            for row in t.range((order.as_str(), "")..)? {
                let (k, _) = row?;
                let (o, refund) = k.value();
                if o != order {
                    break;
                }
                out.push(refund.to_owned());
            }
            Ok(out)
        })
        .await
    }

    async fn remove_pending(&self, order_key: &str, refund_key: &str) -> Result<()> {
        let (order, refund) = (order_key.to_owned(), refund_key.to_owned());
        self.write(move |txn| {
            txn.open_table(PENDING)?.remove((order.as_str(), refund.as_str()))?;
            Ok(())
        })
        .await
    }

    async fn scan_conversions(&self, after: Option<Cursor>, limit: usize) -> Result<Scan<Conversion>> {
        let before = before(after)?;
        self.run(move |db| {
            let t = db.begin_read()?.open_table(CONVERSIONS)?;
            let mut out = Vec::new();
            for row in t.range(0..before)?.rev().take(limit) {
                let (seq, json) = row?;
                out.push((Cursor::mint([seq.value()]), serde_json::from_str(json.value())?));
            }
            Ok(out)
        })
        .await
    }
}

/// Writes a group of clicks into `txn`: each click's log entry, counters and unique visitor.
/// A click whose entry is there already (the same group again: a replayed spool or journal)
/// counts nothing twice.
///
/// A day's first `EXACT_VISITORS` visitors of a link are rows of `visitors` (and counted in the
/// rollups' `u|<day>`); later new ones go to the day's sketch, as the Redis store does.
///
/// `infos` holds each click's info as JSON (the log's row), written once for the journal too.
fn apply_clicks(txn: &WriteTransaction, clicks: &[NewClick], infos: &[Box<serde_json::value::RawValue>]) -> Result<()> {
    let mut log = txn.open_table(CLICKS)?;
    let mut visitors = txn.open_table(VISITORS)?;
    let rollups = txn.open_table(ROLLUPS)?;
    let mut sums: HashMap<(&str, &str), i64> = HashMap::new();
    let mut days: HashMap<(&str, &str), DayVisitors> = HashMap::new();
    let mut sketches = txn.open_table(VISITOR_SKETCHES)?;
    for (c, info) in clicks.iter().zip(infos) {
        let key = (c.code.as_str(), c.entry.ms, c.entry.seq);
        if log.insert(key, info.get())?.is_some() {
            continue;
        }
        for f in &c.fields {
            *sums.entry((c.code.as_str(), f.as_str())).or_default() += 1;
        }
        let Some(v) = &c.visit else { continue };
        let day_key = (c.code.as_str(), v.day.as_str());
        let day = match days.entry(day_key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let field = crate::counters::visitors_field(&v.day);
                let n = rollups.get((day_key.0, field.as_str()))?.map_or(0, |n| n.value());
                e.insert(DayVisitors::new(n.max(0) as u64))
            }
        };
        let row = (day_key.0, day_key.1, v.visitor.as_str());
        if day.exact < super::EXACT_VISITORS {
            if visitors.insert(row, ())?.is_none() {
                day.exact += 1;
            }
        } else if visitors.get(row)?.is_none() {
            if day.sketch.is_none() {
                // A sketch that does not decode starts over: a click is never refused for it.
                let stored = sketches.get(day_key)?.and_then(|b| read_sketch(day_key, b.value()));
                day.sketch = Some(stored.unwrap_or_else(sketch::Sketch::new));
            }
            if let Some(s) = &mut day.sketch {
                day.sketch_changed |= s.add(&v.visitor);
            }
        }
    }
    // The rollups are written below by `add_rollups`, which opens the table again.
    drop((log, visitors, rollups));
    let mut new_visitors: HashMap<(&str, String), i64> = HashMap::new();
    for (&(code, day), d) in &days {
        if let (Some(s), true) = (&d.sketch, d.sketch_changed) {
            sketches.insert((code, day), s.as_bytes())?;
        }
        if d.exact != d.exact_before {
            let added = (d.exact - d.exact_before) as i64;
            new_visitors.insert((code, crate::counters::visitors_field(day)), added);
        }
    }
    drop(sketches);
    add_counters(txn, sums)?;
    add_rollups(txn, new_visitors)
}

/// A stored visitor sketch, or `None` (and a warning) when its bytes are not one.
fn read_sketch((code, day): (&str, &str), bytes: &[u8]) -> Option<sketch::Sketch> {
    let sketch = sketch::Sketch::from_bytes(bytes);
    if sketch.is_none() {
        tracing::warn!(
            code,
            day,
            len = bytes.len(),
            "a visitor sketch does not decode: its visitors are not counted"
        );
    }
    sketch
}

/// One link's visitors of one day, while a group of clicks is written.
struct DayVisitors {
    /// Rows in `visitors` (the rollups' `u|<day>`) before the group, and now.
    exact_before: u64,
    exact: u64,
    /// The day's sketch, read once it was needed.
    sketch: Option<sketch::Sketch>,
    sketch_changed: bool,
}

impl DayVisitors {
    fn new(exact: u64) -> Self {
        Self {
            exact_before: exact,
            exact,
            sketch: None,
            sketch_changed: false,
        }
    }
}

/// What one write transaction of `prune_hours` does at most, about: clicks wait for it. Links
/// (each a dozen range lookups), and fields removed (a link's first prune after an upgrade can
/// have months of hours).
const PRUNE_HOURS_LINKS: usize = 500;
const PRUNE_HOURS_FIELDS: u64 = 20_000;

/// Removes the hourly fields in `[prefix, end)` of each (prefix, end) of `ends` from the
/// counters of the links from `from` on (a code, and the index in `ends` to start at on it),
/// for about `PRUNE_HOURS_LINKS` links or `PRUNE_HOURS_FIELDS` fields; returns how many went,
/// and where to go on (`None` once every link is done).
fn prune_hours(
    txn: &WriteTransaction,
    (code, first): (String, usize),
    ends: &[(String, String)],
) -> Result<(u64, Option<(String, usize)>)> {
    let links = txn.open_table(LINKS)?;
    let mut counters = txn.open_table(COUNTERS)?;
    let mut removed = 0;
    for (n, row) in links.range::<&str>(code.as_str()..)?.enumerate() {
        let (c, _) = row?;
        let c = c.value();
        if n == PRUNE_HOURS_LINKS {
            return Ok((removed, Some((c.to_owned(), 0))));
        }
        let skip = if c == code { first } else { 0 };
        for (i, (prefix, end)) in ends.iter().enumerate().skip(skip) {
            if removed >= PRUNE_HOURS_FIELDS {
                return Ok((removed, Some((c.to_owned(), i))));
            }
            counters.retain_in((c, prefix.as_str())..(c, end.as_str()), |_, _| {
                removed += 1;
                false
            })?;
        }
    }
    Ok((removed, None))
}

/// Adds each sum to its counter, and to the counter's rollups.
fn add_counters(txn: &WriteTransaction, sums: HashMap<(&str, &str), i64>) -> Result<()> {
    let mut t = txn.open_table(COUNTERS)?;
    let mut rollups: HashMap<(&str, String), i64> = HashMap::new();
    for ((code, field), n) in sums {
        let current = t.get((code, field))?.map(|v| v.value()).unwrap_or(0);
        t.insert((code, field), current + n)?;
        for r in crate::counters::rollups(field) {
            *rollups.entry((code, r)).or_default() += n;
        }
    }
    add_rollups(txn, rollups)
}

/// Adds each sum to its rollup field.
fn add_rollups(txn: &WriteTransaction, sums: HashMap<(&str, String), i64>) -> Result<()> {
    let mut t = txn.open_table(ROLLUPS)?;
    for ((code, field), n) in sums {
        let current = t.get((code, field.as_str()))?.map(|v| v.value()).unwrap_or(0);
        t.insert((code, field.as_str()), current + n)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use redb::ReadableTableMetadata;

    use super::*;

    /// `n` writes on the writer thread, the first held there (a commit waiting on a slow disk)
    /// and the rest queued behind it, until `release` wakes each.
    struct HeldWrites {
        release: std::sync::mpsc::Sender<()>,
        writes: Vec<JoinHandle<Result<()>>>,
    }

    impl HeldWrites {
        async fn start(store: &Arc<EmbeddedStore>, n: usize) -> Self {
            let (release, held) = std::sync::mpsc::channel::<()>();
            let held = Arc::new(Mutex::new(held));
            let writes = (0..n)
                .map(|_| {
                    let (store, held) = (store.clone(), held.clone());
                    tokio::spawn(async move {
                        store
                            .run_writing(move |_| {
                                let _ = held.lock().unwrap().recv();
                                Ok(())
                            })
                            .await
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(100)).await;
            HeldWrites { release, writes }
        }

        async fn release(self) {
            for _ in &self.writes {
                self.release.send(()).unwrap();
            }
            for w in self.writes {
                w.await.unwrap().unwrap();
            }
        }
    }

    async fn open_store(dir: &Path) -> Arc<EmbeddedStore> {
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        Arc::new(
            EmbeddedStore::open(dir, Duration::from_secs(3600), clock)
                .await
                .unwrap(),
        )
    }

    /// The day's human clicks of `code` in `store`, from its rollups.
    async fn clicks_of(store: &EmbeddedStore, code: &str, day: &str) -> i64 {
        let data = store.link_data(&[code.to_owned()], Detail::Rollups).await.unwrap();
        data[0].rollup(&format!("c|{day}")).unwrap_or(0)
    }

    /// `n` clicks of `code` on the day of `at`, one per visitor `visitor-<i>` for i from `first`,
    /// entry sequence numbers from `seq`, written in groups of 500.
    async fn visits(
        store: &EmbeddedStore,
        code: &str,
        at: chrono::DateTime<chrono::Utc>,
        first: u64,
        n: u64,
        seq: u64,
    ) {
        let clicks: Vec<NewClick> = (0..n).map(|i| visit(code, at, first + i, seq + i)).collect();
        for group in clicks.chunks(500) {
            store.write_clicks(group).await.unwrap();
        }
    }

    async fn uniques(store: &EmbeddedStore, code: &str, at: chrono::DateTime<chrono::Utc>) -> u64 {
        store.unique_visitors(&[(code.into(), at.date_naive())]).await.unwrap()[0]
    }

    fn link(code: &str, id: u64) -> Link {
        serde_json::from_value(serde_json::json!({
            "id": id, "code": code, "campaign": "spring-sale", "kol": "amy",
            "destination": "https://shop.example.com/p", "target_url": "https://shop.example.com/p",
            "utm": {"source": "instagram", "medium": "kol", "campaign": "spring-sale", "content": "amy", "term": null},
            "cost": "5.00", "coupon": null, "tags": [], "status": "active",
            "created_at": "2026-11-22T08:15:00Z", "updated_at": "2026-11-22T08:15:00Z", "expires_at": null
        }))
        .unwrap()
    }

    /// Reports keep a campaign's link list while the version stays: it must move with every
    /// write of links, and only once the write is over, or a list read in between would be kept
    /// as if it were new.
    #[tokio::test]
    async fn the_links_version_moves_once_each_write_of_links_is_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        let version = || async { store.links_version().await.unwrap().unwrap() };
        let v0 = version().await;

        // A create waiting behind another write has not moved it yet.
        let held = HeldWrites::start(&store, 1).await;
        let create = tokio::spawn({
            let store = store.clone();
            async move { store.create_links(&[link("amy-a", 1)]).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(version().await, v0, "moved before the write ran");
        held.release().await;
        create.await.unwrap().unwrap().unwrap();
        let v1 = version().await;
        assert_ne!(v1, v0);

        // A change moves it, and so does a write that changed nothing (a taken code).
        let old = store.get_link_json("amy-a").await.unwrap().unwrap();
        let mut changed = link("amy-a", 1);
        changed.tags = vec!["reel".to_owned()];
        store.update_link(&old, &changed).await.unwrap().unwrap();
        let v2 = version().await;
        assert!(v2 != v1 && v2 != v0);
        let taken = store.create_links(&[link("amy-a", 2)]).await.unwrap();
        assert!(matches!(taken, Err(LinkConflict::Code(_))), "{taken:?}");
        assert!(![v0, v1, v2].contains(&version().await));
    }

    #[tokio::test]
    async fn visitors_past_ten_thousand_are_a_sketch_that_returning_visitors_replays_and_restarts_leave_alone() {
        let dir = tempfile::tempdir().unwrap();
        let at = chrono::Utc::now();
        let store = open_store(dir.path()).await;
        visits(&store, "amy-serum", at, 0, 12_000, 1).await;
        let first = uniques(&store, "amy-serum", at).await;
        assert!((11_880..=12_120).contains(&first), "{first}");
        let sketches = |store: Arc<EmbeddedStore>| async move {
            store
                .run(|db| Ok(db.begin_read()?.open_table(VISITOR_SKETCHES)?.len()?))
                .await
                .unwrap()
        };
        assert_eq!(sketches(store.clone()).await, 1, "one sketch, of the day past 10,000");

        // The same clicks again (a replayed journal or spool), and the first 10,000 visitors
        // coming back with new clicks, change nothing.
        visits(&store, "amy-serum", at, 0, 12_000, 1).await;
        visits(&store, "amy-serum", at, 0, 10_000, 100_000).await;
        assert_eq!(uniques(&store, "amy-serum", at).await, first);

        store.close().await;
        drop(store);
        let store = open_store(dir.path()).await;
        assert_eq!(
            uniques(&store, "amy-serum", at).await,
            first,
            "the same after a restart"
        );
        visits(&store, "amy-serum", at, 12_000, 3_000, 200_000).await;
        let more = uniques(&store, "amy-serum", at).await;
        assert!((14_850..=15_150).contains(&more), "{more}");
    }

    #[tokio::test]
    async fn a_day_counted_exactly_past_ten_thousand_by_an_older_version_goes_on_with_a_sketch() {
        // Older versions kept every visitor of a day as a row, and `u|<day>` counted them all.
        let dir = tempfile::tempdir().unwrap();
        let at = chrono::Utc::now();
        let store = open_store(dir.path()).await;
        let day = crate::counters::day_string(at);
        store
            .write(move |txn| {
                let mut rows = txn.open_table(VISITORS)?;
                for i in 0..10_500 {
                    rows.insert(("amy-serum", day.as_str(), format!("visitor-{i}").as_str()), ())?;
                }
                let field = crate::counters::visitors_field(&day);
                txn.open_table(ROLLUPS)?.insert(("amy-serum", field.as_str()), 10_500)?;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(uniques(&store, "amy-serum", at).await, 10_500);

        // 200 clicks: 100 of those visitors again, 100 new ones.
        visits(&store, "amy-serum", at, 10_400, 200, 1).await;
        assert_eq!(uniques(&store, "amy-serum", at).await, 10_600);
    }

    #[tokio::test]
    async fn a_visitor_sketch_that_does_not_decode_starts_over_and_refuses_no_click() {
        let dir = tempfile::tempdir().unwrap();
        let at = chrono::Utc::now();
        let store = open_store(dir.path()).await;
        visits(&store, "amy-serum", at, 0, 10_000, 1).await;
        let day = crate::counters::day_string(at);
        store
            .write(move |txn| {
                txn.open_table(VISITOR_SKETCHES)?
                    .insert(("amy-serum", day.as_str()), &b"not a sketch"[..])?;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(
            uniques(&store, "amy-serum", at).await,
            10_000,
            "an unreadable sketch counts nobody"
        );

        visits(&store, "amy-serum", at, 10_000, 1, 50_000).await;
        assert_eq!(uniques(&store, "amy-serum", at).await, 10_001);
    }

    #[tokio::test]
    async fn clicks_the_journal_holds_and_the_database_lacks_are_applied_once_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let at = chrono::Utc::now();
        let day = crate::counters::day_string(at);
        let clicks = clicks_at("amy-serum", at, 1);
        // The first click reached the database (and a stop wrote it to the file); then the
        // whole group was journaled and the process died before applying it.
        let store = open_store(dir.path()).await;
        store.write_clicks(&clicks[..1]).await.unwrap();
        store.close().await;
        drop(store);
        journal::Journal::open(&dir.path().join("kolink.journal"), DiskFaults::default())
            .unwrap()
            .append(&clicks)
            .unwrap();

        let store = open_store(dir.path()).await;
        assert_eq!(clicks_of(&store, "amy-serum", &day).await, 3);
        for c in &clicks {
            assert!(store.get_click("amy-serum", c.entry).await.unwrap().is_some());
        }
        let visitors = store
            .unique_visitors(&[("amy-serum".into(), at.date_naive())])
            .await
            .unwrap();
        assert_eq!(visitors, vec![3]);
        // Applied, the journal started over: a second start adds nothing.
        drop(store);
        let store = open_store(dir.path()).await;
        assert_eq!(clicks_of(&store, "amy-serum", &day).await, 3);
    }

    /// Three clicks of `code` (one visitor each) at `at`, entry sequence numbers from `first`.
    fn clicks_at(code: &str, at: chrono::DateTime<chrono::Utc>, first: u64) -> Vec<NewClick> {
        (first..first + 3).map(|seq| visit(code, at, seq, seq)).collect()
    }

    /// A click of visitor `visitor-<visitor>` on `code` at `at`, entry sequence number `seq`.
    fn visit(code: &str, at: chrono::DateTime<chrono::Utc>, visitor: u64, seq: u64) -> NewClick {
        let info = ClickInfo {
            visitor: format!("visitor-{visitor}"),
            ..ClickInfo::default()
        };
        let entry = EntryId {
            ms: at.timestamp_millis() as u64,
            seq,
        };
        crate::clicks::new_click(code.into(), entry, info)
    }

    #[tokio::test]
    async fn clicks_written_just_before_the_disk_filled_are_there_once_it_has_room_again() {
        let dir = tempfile::tempdir().unwrap();
        let faults = DiskFaults::default();
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        let store = EmbeddedStore::open_with(
            dir.path(),
            Duration::from_secs(3600),
            clock,
            DEFAULT_CACHE_BYTES,
            faults.clone(),
        )
        .await
        .unwrap();
        let at = chrono::Utc::now();
        let day = crate::counters::day_string(at);
        // Journaled and in the database's memory, not yet in its file.
        store.write_clicks(&clicks_at("amy-serum", at, 1)).await.unwrap();

        faults.set_full(true);
        // The first refusal breaks the database; the next call closes it while the disk is
        // still full (what only its memory held cannot reach the file then) and cannot open it.
        for seq in [4, 7] {
            let refused = store.write_clicks(&clicks_at("amy-serum", at, seq)).await;
            assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
        }
        faults.set_full(false);
        // The database is opened again (at most once a second): from its file and the journal.
        let until = std::time::Instant::now() + Duration::from_secs(10);
        let mut again = store.write_clicks(&clicks_at("amy-serum", at, 10)).await;
        while again.is_err() {
            assert!(std::time::Instant::now() < until, "not reopened: {again:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
            again = store.write_clicks(&clicks_at("amy-serum", at, 10)).await;
        }
        assert_eq!(clicks_of(&store, "amy-serum", &day).await, 6);
        for c in clicks_at("amy-serum", at, 1) {
            assert!(store.get_click("amy-serum", c.entry).await.unwrap().is_some());
        }
    }

    #[tokio::test]
    async fn the_journal_is_written_into_the_database_within_a_second_after_the_last_click() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        store
            .write_clicks(&clicks_at("amy-serum", chrono::Utc::now(), 1))
            .await
            .unwrap();
        assert!(store.journal.holds_clicks());
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while store.journal.holds_clicks() {
            assert!(std::time::Instant::now() < until, "no checkpoint while idle");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test]
    async fn pruned_clicks_never_come_back_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let at = chrono::Utc::now();
        let day = crate::counters::day_string(at);
        let store = open_store(dir.path()).await;
        store.write_clicks(&clicks_at("amy-serum", at, 1)).await.unwrap();
        let cutoff = at.timestamp_millis() as u64 + 1;
        assert_eq!(store.prune_clicks_before(cutoff).await.unwrap(), 3);
        // A start after a crash applies what the journal holds: the pruned clicks' entries are
        // gone, so they would count again.
        drop(store);
        let store = open_store(dir.path()).await;
        assert_eq!(clicks_of(&store, "amy-serum", &day).await, 3);
    }

    #[tokio::test]
    async fn reads_run_while_writes_wait_on_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        let held = HeldWrites::start(&store, 2 * READ_THREADS + 8).await;

        let read = tokio::time::timeout(Duration::from_secs(10), store.get_link("amy-serum")).await;
        held.release().await;
        assert!(matches!(read, Ok(Ok(None))), "the read waited behind the writes");
    }

    #[tokio::test]
    async fn writes_piled_up_to_their_bound_behind_a_held_commit_leave_reads_their_places() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path()).await;
        let held = HeldWrites::start(&store, disk::MAX_IN_FLIGHT).await;

        let refused = store.run_writing(|_| Ok(())).await;
        let read = tokio::time::timeout(Duration::from_secs(10), store.get_link("amy-serum")).await;
        held.release().await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "one write past the bound"
        );
        assert!(matches!(read, Ok(Ok(None))), "the read found no place: {read:?}");
    }
}
