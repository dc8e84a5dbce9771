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
//!
//! This file opens the database and runs calls on its threads; the traits are implemented by
//! part: `links` (records, links and their indexes), `clicks` (the click log and a group's
//! writing), `counters` (counters, rollups, visitors, insights, pruning), `conversions`.

mod clicks;
mod conversions;
mod counters;
mod disk;
mod journal;
mod links;
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

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use tokio::task::JoinHandle;

use super::{Cursor, Result, Store, StoreError};
use crate::clock::SharedClock;
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

/// The exclusive upper bound a cursor stands for; no cursor is the top of the list.
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

#[cfg(test)]
mod tests {
    use redb::ReadableTableMetadata;

    use super::*;
    use crate::domain::{ClickInfo, EntryId, Link};
    use crate::store::{ClickLog, Counters, Detail, LinkConflict, Links, NewClick};

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
