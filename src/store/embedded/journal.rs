//! The embedded store's click journal: a group of clicks is made durable by one sequential
//! append instead of a redb commit.
//!
//! A durable redb commit writes every page a group touched where it lies in the file (a dozen
//! writes for a group of clicks on one link) and syncs them: 0.4–0.6 ms a group on the benchmark
//! machine, and the click writer's groups wait for each other. Instead, a group is appended to
//! the journal (`<data dir>/kolink.journal`, one record, `fdatasync`) and then applied to the
//! database with a non-durable commit, which stays in redb's memory and is read by every later
//! read at once. Only then are its redirects answered: an answered click is on disk (in the
//! journal) and readable (in the database).
//!
//! A durable commit (`checkpoint`) writes what the non-durable ones left: after the answer to the
//! first group `CHECKPOINT_EVERY` after the journal's oldest (the group does not wait for it;
//! the writer's next job does), whenever the journal is half full, within a
//! second once clicks stop coming (the store's upkeep task), before old clicks are pruned, and
//! at a graceful stop. After it the journal starts over. (Every other write of the store commits
//! durably too, which writes the clicks before it; the journal still starts over only after a
//! checkpoint.) At start, and when the database is opened again after an I/O error, whatever the
//! journal still holds is applied again (`recover`): clicks the database already has are
//! recognised by their entry ids and counted once, exactly as a replayed spool.
//!
//! The journal has the spool's file format (`crate::spool`): records with a checksum and a
//! generation, a torn tail ends the log (a damaged record inside it is skipped and said), and
//! its space is reserved when it opens. Its writes go
//! through `DiskFaults` like the database's, so a disk made full refuses clicks as before.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use redb::{Database, Durability};
use serde_json::value::RawValue;

use super::disk::DiskFaults;
use crate::spool::{Spool, SpoolError, SpooledClickRef};
use crate::store::{NewClick, Result, StoreError};

/// Space reserved for the journal. A checkpoint empties it long before it fills: at 60,000
/// clicks a second, `CHECKPOINT_EVERY` is about 1 MiB of records.
const JOURNAL_BYTES: u64 = 16 << 20;
/// Longest time between durable commits while clicks arrive. Shorter keeps each checkpoint's
/// writes small: in the redirect benchmark 50 ms gave a p99 of 3.0 ms, 250 ms 5.8 ms and
/// 1 s 6.7 ms, at the same throughput.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

pub(super) struct Journal {
    log: Spool,
    faults: DiskFaults,
    /// When the oldest record it holds was appended; `None`: it holds none (it started over
    /// and nothing came since).
    since: Mutex<Option<Instant>>,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, keeping what an earlier run left in it for
    /// `recover`.
    pub(super) fn open(path: &Path, faults: DiskFaults) -> anyhow::Result<Self> {
        let log = Spool::open_file(path, JOURNAL_BYTES)
            .with_context(|| format!("Failed to open the embedded store's click journal {}", path.display()))?;
        Ok(Self {
            since: Mutex::new(log.holds_clicks().then(Instant::now)),
            log,
            faults,
        })
    }

    /// Writes `clicks` (a group from the click writer) durably: appended to the journal, then
    /// applied to the database with a non-durable commit. A checkpoint that is due then
    /// (`due`) is the caller's to run, after the group's redirects are answered: a durable
    /// commit is two more syncs, and a disk's slow sync had the group's redirects wait for
    /// them (a soak measured checkpoints adding 3.6 ms to a group at the median). Blocking; on
    /// the writer thread only.
    pub(super) fn write(&self, db: &Database, clicks: &[NewClick]) -> Result<()> {
        let infos = info_json(clicks)?;
        // The record goes to disk while the group is applied; the answer waits for both.
        self.append_unsynced(clicks, &infos)?;
        let applied = apply_in_memory(db, clicks, &infos).and_then(|()| self.log.sync().map_err(unavailable));
        if let Err(StoreError::Corrupt(_)) = &applied {
            // Refused, so never to be applied later: the groups before it are made durable and
            // the journal, this record included, starts over. (Were it `Unavailable`, the
            // database is opened again and the journal applied: the click writer spools the
            // group too, and it counts once.)
            let _ = self.checkpoint(db);
        }
        applied
    }

    /// Appends a group to the journal, synced, without applying it (`write` does both): a
    /// process that died between the two, for tests.
    #[cfg(test)]
    pub(super) fn append(&self, clicks: &[NewClick]) -> Result<()> {
        self.append_unsynced(clicks, &info_json(clicks)?)?;
        self.log.sync().map_err(unavailable)
    }

    /// Appends a group, each click's info as its JSON in `infos`.
    fn append_unsynced(&self, clicks: &[NewClick], infos: &[Box<RawValue>]) -> Result<()> {
        let records: Vec<SpooledClickRef<RawValue>> = clicks
            .iter()
            .zip(infos)
            .map(|(c, info)| SpooledClickRef {
                code: &c.code,
                ms: c.entry.ms,
                seq: c.entry.seq,
                info: &**info,
            })
            .collect();
        self.faults.check_write().map_err(unavailable)?;
        self.log.append_unsynced(&records).map_err(|e| match e {
            SpoolError::Io(e) => unavailable(e),
            full @ SpoolError::Full(_) => StoreError::Unavailable(full.into()),
        })?;
        self.since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Whether the journal holds clicks (a checkpoint has not emptied it since).
    #[cfg(test)]
    pub(super) fn holds_clicks(&self) -> bool {
        self.log.holds_clicks()
    }

    /// Whether a checkpoint is due: the journal holds clicks since `CHECKPOINT_EVERY` or is
    /// half full.
    pub(super) fn due(&self) -> bool {
        let since = *self.since.lock().unwrap_or_else(|p| p.into_inner());
        since.is_some_and(|t| t.elapsed() >= CHECKPOINT_EVERY) || self.log.depth().bytes > JOURNAL_BYTES / 2
    }

    /// A durable commit (everything the non-durable commits left reaches the file), then the
    /// journal starts over. Blocking; on the writer thread only.
    pub(super) fn checkpoint(&self, db: &Database) -> Result<()> {
        if self.since.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            return Ok(());
        }
        db.begin_write()?.commit()?;
        self.emptied()
    }

    /// The journal's clicks are all in the database, durably: it starts over.
    fn emptied(&self) -> Result<()> {
        self.faults.check_write().map_err(unavailable)?;
        self.log.mark_all_replayed().map_err(unavailable)?;
        *self.since.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// Applies whatever the journal holds to `db` (clicks it already has count once), durably,
    /// and starts the journal over; returns how many clicks it held. At start and after the
    /// database was opened again.
    pub(super) fn recover(&self, db: &Database) -> anyhow::Result<usize> {
        let Some(chunk) = self
            .log
            .next_chunk(usize::MAX)
            .context("Failed to read the embedded store's click journal")?
        else {
            return Ok(0);
        };
        let clicks: Vec<NewClick> = chunk
            .clicks
            .into_iter()
            .map(|c| {
                let entry = c.entry();
                crate::clicks::new_click(c.code, entry, c.info)
            })
            .collect();
        let txn = db.begin_write()?;
        super::clicks::apply_clicks(&txn, &clicks, &info_json(&clicks)?)?;
        txn.commit()?;
        self.emptied()?;
        Ok(clicks.len())
    }
}

/// Each click's info as JSON, written once for both the journal's record and the click log's
/// row (serializing it twice was a seventh of the store's writer thread).
fn info_json(clicks: &[NewClick]) -> Result<Vec<Box<RawValue>>> {
    Ok(clicks
        .iter()
        .map(|c| serde_json::value::to_raw_value(&c.info))
        .collect::<serde_json::Result<_>>()?)
}

/// Applies a group with a non-durable commit.
fn apply_in_memory(db: &Database, clicks: &[NewClick], infos: &[Box<RawValue>]) -> Result<()> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::None)
        .map_err(|e| StoreError::Corrupt(anyhow::Error::new(e).context("Failed to start a click write")))?;
    super::clicks::apply_clicks(&txn, clicks, infos)?;
    txn.commit()?;
    Ok(())
}

fn unavailable(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(anyhow::Error::new(e).context("Failed to write the embedded store's click journal"))
}
