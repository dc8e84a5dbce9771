//! The embedded store's file, and recovering from its I/O errors without a restart.
//!
//! After an I/O error on commit (a full disk, typically) redb refuses every later operation
//! with `PreviousIo` until the database is closed and opened again. [`Handle`] does that by
//! itself: an I/O error marks the database broken; the next call (at most one attempt a second)
//! waits for the calls in flight to let go of it, closes it and opens the file again (redb's
//! repair runs then, which needs the space back). Until that succeeds calls answer
//! `Unavailable`, so the redirect spools its clicks and `/readyz` says `503`.
//!
//! [`DiskFaults`] makes the disk act full, for tests and drills: the file goes through a thin
//! storage backend that refuses writes with `ENOSPC` while it is set, exactly as the kernel does.

use std::fs::OpenOptions;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use redb::backends::FileBackend;
use redb::{BackendError, Database, StorageBackend};

use crate::store::{Result, StoreError};

/// Calls of one kind (`Calls`) that may wait on the disk at once, running or queued for the
/// store's threads (`pool`). A disk that hangs holds every call (a caller that gives up does not
/// take its call back); past this, calls answer `Unavailable` at once instead of piling up. A
/// burst of a few hundred concurrent requests still just queues.
pub(super) const MAX_IN_FLIGHT: usize = 384;

/// What a call does. Reads and writes each have their own `MAX_IN_FLIGHT` places: writes piled
/// up behind a commit that hangs (one writer thread) do not take the places of reads, which the
/// page cache can still answer, nor reads those of writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Calls {
    Reads = 0,
    Writes = 1,
}

/// How often a broken database is opened again, at most.
const REOPEN_EVERY: Duration = Duration::from_secs(1);
/// How long a reopen waits for calls in flight to let go of the broken database.
const LET_GO_WITHIN: Duration = Duration::from_secs(2);

/// Switches that make the embedded store's disk act full (`ENOSPC` on every write) or hang
/// (every read and write waits until the switch is off again).
#[derive(Debug, Clone, Default)]
pub struct DiskFaults {
    full: Arc<AtomicBool>,
    hung: Arc<AtomicBool>,
}

impl DiskFaults {
    pub fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    pub fn set_hung(&self, hung: bool) {
        self.hung.store(hung, Ordering::SeqCst);
    }

    fn wait_while_hung(&self) {
        while self.hung.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(super) fn check_write(&self) -> std::io::Result<()> {
        self.wait_while_hung();
        if self.full.load(Ordering::SeqCst) {
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        } else {
            Ok(())
        }
    }
}

/// The database file, written through `DiskFaults`.
#[derive(Debug)]
struct Disk {
    file: FileBackend,
    faults: DiskFaults,
}

impl StorageBackend for Disk {
    fn len(&self) -> std::result::Result<u64, std::io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::result::Result<(), std::io::Error> {
        self.faults.wait_while_hung();
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::result::Result<(), std::io::Error> {
        if len > self.file.len()? {
            self.faults.check_write()?;
        }
        self.file.set_len(len)
    }

    fn sync_data(&self) -> std::result::Result<(), std::io::Error> {
        self.faults.check_write()?;
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::result::Result<(), std::io::Error> {
        self.faults.check_write()?;
        self.file.write(offset, data)
    }

    fn close(&self) -> std::result::Result<(), std::io::Error> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> std::result::Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> std::result::Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> std::result::Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> std::result::Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> std::result::Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> std::result::Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

/// Opens (or creates) the database at `path` through `faults`.
pub(super) fn open_file(path: &Path, cache_bytes: usize, faults: &DiskFaults) -> anyhow::Result<Database> {
    let file = std::os::unix::fs::OpenOptionsExt::mode(&mut OpenOptions::new(), 0o600)
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("Failed to open the embedded database {}", path.display()))?;
    let disk = Disk {
        file: FileBackend::new(file)?,
        faults: faults.clone(),
    };
    Database::builder()
        .set_cache_size(cache_bytes)
        .create_with_backend(disk)
        .with_context(|| format!("Failed to open the embedded database {}", path.display()))
}

/// What runs on the database each time it is opened again, before any call uses it.
pub(super) type Recover = Box<dyn Fn(&Database) -> anyhow::Result<()> + Send + Sync>;

/// The open database, reopened after I/O errors (see the module doc).
pub(super) struct Handle {
    path: PathBuf,
    cache_bytes: usize,
    faults: DiskFaults,
    /// The click journal's recovery: the reopened file lacks the clicks committed non-durably.
    recover: Recover,
    db: RwLock<Option<Arc<Database>>>,
    broken: AtomicBool,
    reopening: Mutex<Option<Instant>>,
    /// Calls in flight, by `Calls`.
    in_flight: [AtomicUsize; 2],
}

/// A call's place among the `MAX_IN_FLIGHT` of its kind; given back when the call ends.
pub(super) struct Ticket(Arc<Handle>, Calls);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.in_flight[self.1 as usize].fetch_sub(1, Ordering::SeqCst);
    }
}

impl Handle {
    pub(super) fn new(path: PathBuf, cache_bytes: usize, faults: DiskFaults, db: Database, recover: Recover) -> Self {
        Self {
            path,
            cache_bytes,
            faults,
            recover,
            db: RwLock::new(Some(Arc::new(db))),
            broken: AtomicBool::new(false),
            reopening: Mutex::new(None),
            in_flight: [AtomicUsize::new(0), AtomicUsize::new(0)],
        }
    }

    /// A place for one call of `kind`, or `Unavailable` when `MAX_IN_FLIGHT` calls of that
    /// kind wait on the disk.
    pub(super) fn ticket(self: &Arc<Self>, kind: Calls) -> Result<Ticket> {
        let in_flight = &self.in_flight[kind as usize];
        if in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            let what = match kind {
                Calls::Reads => "reads",
                Calls::Writes => "writes",
            };
            return Err(StoreError::Unavailable(anyhow::anyhow!(
                "{MAX_IN_FLIGHT} {what} wait on the embedded store's disk"
            )));
        }
        Ok(Ticket(self.clone(), kind))
    }

    /// Runs `f` on the database (blocking); an I/O error marks it for reopening.
    pub(super) fn with<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let db = self.current()?;
        let out = f(&db);
        if let Err(StoreError::Unavailable(_)) = &out {
            self.broken.store(true, Ordering::SeqCst);
        }
        out
    }

    fn current(&self) -> Result<Arc<Database>> {
        if self.broken.load(Ordering::SeqCst) {
            self.reopen()?;
        }
        self.db
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| recovering("is being opened again"))
    }

    fn reopen(&self) -> Result<()> {
        let mut last = match self.reopening.try_lock() {
            Ok(last) => last,
            // A reopen that panicked left nothing half done that the next one does not redo.
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(recovering("is being opened again")),
        };
        if !self.broken.load(Ordering::SeqCst) {
            return Ok(());
        }
        if last.is_some_and(|t| t.elapsed() < REOPEN_EVERY) {
            return Err(recovering("failed; it is opened again every second"));
        }
        *last = Some(Instant::now());
        let old = self.db.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut old) = old {
            // redb holds the file's lock until the last user lets go.
            let until = Instant::now() + LET_GO_WITHIN;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(still_used) if Instant::now() < until => {
                        old = still_used;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(still_used) => {
                        *self.db.write().unwrap_or_else(|p| p.into_inner()) = Some(still_used);
                        return Err(recovering("waits for calls in flight"));
                    }
                }
            }
        }
        let opened = super::tables::create_tables(open_file(&self.path, self.cache_bytes, &self.faults))
            .and_then(|db| (self.recover)(&db).map(|()| db));
        match opened {
            Ok(db) => {
                *self.db.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(db));
                self.broken.store(false, Ordering::SeqCst);
                tracing::info!(path = %self.path.display(), "the embedded store recovered from an I/O error");
                Ok(())
            }
            Err(e) => {
                crate::telemetry::warn_limited!(
                    error = format!("{e:#}"),
                    "the embedded store cannot be opened again yet"
                );
                Err(StoreError::Unavailable(e))
            }
        }
    }
}

fn recovering(what: &str) -> StoreError {
    StoreError::Unavailable(anyhow::anyhow!("the embedded store hit an I/O error and {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(dir: &Path, faults: &DiskFaults) -> Arc<Handle> {
        let path = dir.join("kolink.redb");
        let db = open_file(&path, 1 << 20, faults).unwrap();
        Arc::new(Handle::new(path, 1 << 20, faults.clone(), db, Box::new(|_| Ok(()))))
    }

    #[test]
    fn past_the_calls_in_flight_a_call_is_refused_at_once_and_a_finished_one_frees_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let h = handle(dir.path(), &DiskFaults::default());
        for (kind, other) in [(Calls::Writes, Calls::Reads), (Calls::Reads, Calls::Writes)] {
            let tickets: Vec<Ticket> = (0..MAX_IN_FLIGHT).map(|_| h.ticket(kind).unwrap()).collect();
            assert!(matches!(h.ticket(kind), Err(StoreError::Unavailable(_))));
            // Writes piled up behind a hung commit leave reads their places, and the other way.
            let others: Vec<Ticket> = (0..MAX_IN_FLIGHT).map(|_| h.ticket(other).unwrap()).collect();
            drop(tickets);
            assert!(h.ticket(kind).is_ok());
            drop(others);
        }
    }

    #[test]
    fn a_full_disk_breaks_writes_until_it_has_room_and_then_the_database_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let faults = DiskFaults::default();
        let h = handle(dir.path(), &faults);
        const T: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("t");
        let write = |n: u64| {
            h.with(|db| {
                let txn = db.begin_write()?;
                txn.open_table(T)?.insert("n", n)?;
                txn.commit()?;
                Ok(())
            })
        };
        write(1).unwrap();
        faults.set_full(true);
        assert!(matches!(write(2), Err(StoreError::Unavailable(_))));
        faults.set_full(false);
        // At most one reopen a second.
        let until = Instant::now() + Duration::from_secs(5);
        while write(3).is_err() {
            assert!(Instant::now() < until, "not reopened");
            std::thread::sleep(Duration::from_millis(50));
        }
        let n = h
            .with(|db| {
                use redb::ReadableDatabase;
                Ok(db.begin_read()?.open_table(T)?.get("n")?.map(|v| v.value()))
            })
            .unwrap();
        assert_eq!(n, Some(3));
    }
}
