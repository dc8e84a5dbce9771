//! The click spool: where answered clicks wait, on local disk, while the store does not answer.
//!
//! One file per process (`<spool dir>/clicks.spool`, locked so that two processes never share
//! it). Its whole size cap is reserved on disk when it opens (`posix_fallocate`), so a disk that
//! fills up later (the embedded store's outage) still has room for the spool. Layout:
//!
//! | offset | what |
//! |--------|------|
//! | 0      | `KLSPOOL1`, generation (u64 LE), replayed-up-to offset (u64 LE) |
//! | 4096   | records: length (u32), clicks (u32), generation (u64), CRC-32 of generation and payload (u32), payload (JSON) |
//!
//! A group of clicks is one record, appended and fsync'd before any of its redirects is
//! answered (the click writer calls this with a whole group, so one fsync serves many clicks).
//! Records of an older generation, or a torn tail, end the log: when everything was replayed
//! the generation goes up and writing starts over at 4096, so leftovers of an earlier round are
//! never read again. A record of this generation with a bad checksum ends it too, unless the
//! record its length points to reads: then it is a damaged record inside the log, skipped (its
//! clicks lost) and said. A file whose header is not one of these is set aside
//! (`<name>.damaged-<time>`) and a new log started, not written over. The replayed-up-to offset is written without fsync: after
//! a crash a few groups may be replayed twice, which the stores recognise by their entry ids
//! and count once.
//!
//! The embedded store keeps its click journal in the same format (`Spool::open_file`,
//! `store::embedded::journal`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::domain::{ClickInfo, EntryId};

const MAGIC: &[u8; 8] = b"KLSPOOL1";
const HEADER: u64 = 4096;
const RECORD_HEAD: usize = 20;
/// How long opening waits for the file's lock before naming another process.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A click as the spool keeps it: the stores rebuild its counters from it on replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpooledClick {
    pub code: String,
    pub ms: u64,
    pub seq: u64,
    pub info: ClickInfo,
}

/// A click as the spool writes it, borrowed from the click being written (its info, or that
/// info's JSON written already: `serde_json::value::RawValue`); it reads back as a
/// `SpooledClick`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SpooledClickRef<'a, I: ?Sized = ClickInfo> {
    pub code: &'a str,
    pub ms: u64,
    pub seq: u64,
    pub info: &'a I,
}

impl SpooledClick {
    pub fn entry(&self) -> EntryId {
        EntryId {
            ms: self.ms,
            seq: self.seq,
        }
    }
}

/// How full the spool is (for `/metrics` and `/readyz`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Depth {
    /// Clicks written to the spool and not yet replayed into the store.
    pub clicks: u64,
    /// Bytes those clicks take.
    pub bytes: u64,
    /// Bytes of the capacity taken: replayed records' room is used again only once the spool
    /// is empty, so this, not `bytes`, is what a full spool is judged by (`nearly_full`).
    pub used_bytes: u64,
    /// The most the spool holds.
    pub capacity_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the click spool is full ({0} bytes)")]
    Full(u64),
    #[error("the click spool could not be written: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Spool {
    path: PathBuf,
    capacity: u64,
    state: Mutex<State>,
    /// Mirrors of the state for readers that must not wait behind an fsync (the redirect path,
    /// `/readyz`, `/metrics`): clicks and bytes waiting.
    waiting_clicks: AtomicU64,
    waiting_bytes: AtomicU64,
    /// Where the next record goes (space is reused only once everything was replayed).
    end: AtomicU64,
    /// The replayer's last attempt failed: the store does not take clicks now.
    refused: AtomicBool,
    /// Clicks are kept here, neither written to the store nor replayed (`hold`).
    held: AtomicBool,
    /// The replayer is writing the spool's last records: new clicks wait for it, briefly, so
    /// that the spool empties under a steady load too.
    closing: AtomicBool,
}

struct State {
    file: File,
    generation: u64,
    /// Where the next record goes.
    end: u64,
    /// Everything before this offset is in the store.
    replayed: u64,
    /// Clicks between `replayed` and `end`.
    pending: u64,
}

/// Records read for replay: their clicks, and the offset that marks them replayed.
pub struct Chunk {
    pub clicks: Vec<SpooledClick>,
    pub upto: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, reserving `capacity` bytes, and reads what an earlier
    /// run left in it.
    pub fn open(dir: &Path, capacity: u64) -> anyhow::Result<Self> {
        // Kolink's user alone, as the data directory it is in by default.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .with_context(|| format!("Failed to create the spool directory {}", dir.display()))?;
        Self::open_file(&dir.join("clicks.spool"), capacity)
    }

    /// `open` of the log at `path` itself (the embedded store keeps its click journal in this
    /// format, `store::embedded::journal`).
    pub fn open_file(path: &Path, capacity: u64) -> anyhow::Result<Self> {
        let path = path.to_owned();
        // Kolink's user alone, as the embedded store's file.
        let file = std::os::unix::fs::OpenOptionsExt::mode(&mut OpenOptions::new(), 0o600)
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("Failed to open the click spool {}", path.display()))?;
        // A server stopped in this process (a restart in place, tests) may still be letting go
        // of it for a moment; another process keeps it.
        let until = std::time::Instant::now() + LOCK_WAIT;
        while file.try_lock().is_err() {
            if std::time::Instant::now() >= until {
                bail!(
                    "Another kolink process uses the click log {}: one process at a time runs on an embedded store's data directory (KOLINK_DATA_DIR), and processes on one Redis each need their own KOLINK_SPOOL_DIR",
                    path.display()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let capacity = capacity.max(HEADER * 2);
        reserve(&file, capacity).with_context(|| {
            format!(
                "Failed to reserve {capacity} bytes for the click spool {}",
                path.display()
            )
        })?;
        let mut head = [0u8; 24];
        file.read_exact_at(&mut head, 0)?;
        let state = if &head[..8] == MAGIC {
            let generation = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
            let replayed = u64::from_le_bytes(head[16..24].try_into().expect("8 bytes"));
            // To the file's end, not the cap: a cap lowered since keeps what was spooled.
            let len = file.metadata()?.len();
            scan(file, generation, replayed, len.max(capacity), &path)?
        } else if head.iter().any(|&b| b != 0) {
            // Not a log's header, and not a new file's zeros: kept aside, not written over, and
            // said (what it held may still be read from it).
            let aside = path.with_extension(format!("damaged-{}", chrono::Utc::now().timestamp_micros()));
            std::fs::rename(&path, &aside)
                .with_context(|| format!("Failed to set the unreadable click log {} aside", path.display()))?;
            tracing::error!(
                path = %path.display(),
                kept_as = %aside.display(),
                "the click log's header is not one kolink writes: the file is kept aside and a new log started; the clicks it held are not replayed"
            );
            drop(file);
            return Self::open_file(&path, capacity);
        } else {
            let state = State {
                file,
                generation: 1,
                end: HEADER,
                replayed: HEADER,
                pending: 0,
            };
            write_header(&state.file, state.generation, state.replayed, true)?;
            state
        };
        let spool = Self {
            path,
            capacity,
            waiting_clicks: AtomicU64::new(0),
            waiting_bytes: AtomicU64::new(0),
            end: AtomicU64::new(HEADER),
            refused: AtomicBool::new(false),
            held: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            state: Mutex::new(state),
        };
        spool.mirror(&spool.state());
        Ok(spool)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves offsets that are still consistent on disk.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn mirror(&self, s: &State) {
        self.end.store(s.end, Ordering::SeqCst);
        self.waiting_bytes.store(s.end - s.replayed, Ordering::SeqCst);
        self.waiting_clicks.store(s.pending, Ordering::SeqCst);
    }

    /// Whether clicks wait to be replayed (new clicks must then queue behind them). Never waits.
    pub fn holds_clicks(&self) -> bool {
        self.waiting_bytes.load(Ordering::SeqCst) > 0
    }

    /// Whether the spool has (almost) no room left for new clicks: less than 1 % of it free at
    /// its end, the measure `append` refuses by. Never waits.
    pub fn nearly_full(&self) -> bool {
        self.capacity.saturating_sub(self.end.load(Ordering::SeqCst)) < self.capacity / 100
    }

    /// Whether the store is known not to take clicks now: a write of the writer or the
    /// replayer's last attempt failed, and clicks wait in the spool.
    pub fn store_refuses(&self) -> bool {
        self.refused.load(Ordering::SeqCst) && self.holds_clicks()
    }

    /// Keeps every click here, new ones and those waiting, until released: the store is not
    /// known yet to be the one they belong to (a start from the link book, before Redis
    /// answered and was checked). Never waits.
    pub fn hold(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }

    /// Whether clicks are held here (`hold`). Never waits.
    pub fn held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    /// Records whether the store refused the last write of clicks (the writer's or the
    /// replayer's).
    pub fn set_store_refuses(&self, refuses: bool) {
        self.refused.store(refuses, Ordering::SeqCst);
    }

    /// Never waits.
    pub fn depth(&self) -> Depth {
        Depth {
            clicks: self.waiting_clicks.load(Ordering::SeqCst),
            bytes: self.waiting_bytes.load(Ordering::SeqCst),
            used_bytes: self.end.load(Ordering::SeqCst).saturating_sub(HEADER),
            capacity_bytes: self.capacity,
        }
    }

    /// Appends a group of clicks as one record and syncs it to disk. Blocking.
    pub fn append<C: Serialize>(&self, clicks: &[C]) -> Result<(), SpoolError> {
        self.write_record(clicks, true)
    }

    /// `append` without waiting for the disk: the record's writeback starts, and it is on disk
    /// once `sync` returns. Blocking.
    pub fn append_unsynced<C: Serialize>(&self, clicks: &[C]) -> Result<(), SpoolError> {
        self.write_record(clicks, false)
    }

    /// Writes a record at the end; it counts as appended only once written (and, with `sync`,
    /// on disk): a record whose sync failed is written over by the next one.
    fn write_record<C: Serialize>(&self, clicks: &[C], sync: bool) -> Result<(), SpoolError> {
        let payload = serde_json::to_vec(clicks).map_err(std::io::Error::other)?;
        let mut s = self.state();
        let len = RECORD_HEAD as u64 + payload.len() as u64;
        if s.end + len > self.capacity {
            return Err(SpoolError::Full(self.capacity));
        }
        let mut record = Vec::with_capacity(len as usize);
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&(clicks.len() as u32).to_le_bytes());
        record.extend_from_slice(&s.generation.to_le_bytes());
        record.extend_from_slice(&checksum(s.generation, &payload).to_le_bytes());
        record.extend_from_slice(&payload);
        s.file.write_all_at(&record, s.end)?;
        if sync {
            s.file.sync_data()?;
        } else {
            start_writeback(&s.file, s.end, len);
        }
        s.end += len;
        s.pending += clicks.len() as u64;
        self.mirror(&s);
        self.closing.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Waits until every record appended is on disk. Blocking.
    pub fn sync(&self) -> std::io::Result<()> {
        self.state().file.sync_data()
    }

    /// The next records to replay, at most about `max_clicks` clicks (at least one record).
    /// When they are the last ones, the spool is `closing` until `mark_replayed` (or
    /// `reopen_after_failure`). Blocking.
    pub fn next_chunk(&self, max_clicks: usize) -> anyhow::Result<Option<Chunk>> {
        let s = self.state();
        let mut at = s.replayed;
        let mut clicks = Vec::new();
        while at < s.end && (clicks.is_empty() || clicks.len() < max_clicks) {
            match read_record(&s.file, at, s.generation, s.end)? {
                Some((record, next)) => {
                    clicks.extend(record);
                    at = next;
                }
                // A damaged record the opening's scan skipped (and said).
                None => {
                    at = damaged(&s.file, at, s.generation, s.end)?
                        .context("the click spool has a record it cannot read inside its written part")?
                        .0;
                }
            }
        }
        // Only while the store takes replays: waiting on a store that may not answer would
        // only slow the redirects down.
        if at == s.end && at > s.replayed && !self.refused.load(Ordering::SeqCst) {
            self.closing.store(true, Ordering::SeqCst);
        }
        Ok((at > s.replayed).then_some(Chunk { clicks, upto: at }))
    }

    /// Marks every record as stored (their clicks reached the store another way) and starts a
    /// new generation at the top of the file. Blocking.
    pub fn mark_all_replayed(&self) -> std::io::Result<()> {
        let end = self.state().end;
        self.mark_replayed(end, u64::MAX)
    }

    /// Whether the replayer is writing the last records (new clicks should wait for it).
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// The last records were not replayed after all: new clicks need not wait.
    pub fn reopen_after_failure(&self) {
        self.closing.store(false, Ordering::SeqCst);
    }

    /// Marks everything before `upto` as stored, and ends `closing`: the replayer's last
    /// records are in, so that new clicks need not wait for it any more. When nothing is left,
    /// starts a new generation at the top of the file. Blocking.
    pub fn mark_replayed(&self, upto: u64, clicks: u64) -> std::io::Result<()> {
        let mut s = self.state();
        let replayed = upto.min(s.end);
        if replayed == s.end {
            // A new round: on disk first (synced), so that clicks appended in it are never
            // behind a header that still names the old one.
            write_header(&s.file, s.generation + 1, HEADER, true)?;
            s.generation += 1;
            s.end = HEADER;
            s.replayed = HEADER;
            s.pending = 0;
        } else {
            write_header(&s.file, s.generation, replayed, false)?;
            s.replayed = replayed;
            s.pending = s.pending.saturating_sub(clicks);
        }
        self.mirror(&s);
        self.closing.store(false, Ordering::SeqCst);
        Ok(())
    }
}

fn write_header(file: &File, generation: u64, replayed: u64, sync: bool) -> std::io::Result<()> {
    let mut head = [0u8; 24];
    head[..8].copy_from_slice(MAGIC);
    head[8..16].copy_from_slice(&generation.to_le_bytes());
    head[16..24].copy_from_slice(&replayed.to_le_bytes());
    file.write_all_at(&head, 0)?;
    if sync {
        file.sync_data()?;
    }
    Ok(())
}

/// Finds the end of the log of `generation` and how many clicks wait after `replayed`.
fn scan(file: File, generation: u64, replayed: u64, limit: u64, path: &Path) -> anyhow::Result<State> {
    let mut at = HEADER;
    let mut boundaries = vec![HEADER];
    let mut counts = vec![0u64];
    loop {
        let next = match read_record(&file, at, generation, limit)? {
            Some((clicks, next)) => {
                counts.push(counts.last().copied().unwrap_or(0) + clicks.len() as u64);
                next
            }
            // A record of this log that does not read (a byte changed on the disk) but whose
            // length does, followed by one that reads: the log goes on past it. It was taken
            // for the log's end, and every click after it was dropped without a word.
            None => match damaged(&file, at, generation, limit)? {
                Some((next, clicks)) => {
                    tracing::error!(
                        path = %path.display(),
                        offset = at,
                        bytes = next - at,
                        clicks,
                        "a damaged record of the click log is skipped: its clicks are lost, the records after it are kept"
                    );
                    counts.push(counts.last().copied().unwrap_or(0));
                    next
                }
                None => break,
            },
        };
        at = next;
        boundaries.push(at);
    }
    // A replayed-up-to offset that is not a record boundary (a torn header): replay from the top;
    // the stores count nothing twice.
    let i = boundaries.iter().position(|&b| b == replayed).unwrap_or(0);
    let total = counts.last().copied().unwrap_or(0);
    Ok(State {
        file,
        generation,
        end: at,
        replayed: boundaries[i],
        pending: total - counts[i],
    })
}

/// A record's head at `at`: where the record ends, how many clicks it says it holds, and its
/// checksum; `None` where no record of `generation` starts (the log's end).
fn head_at(file: &File, at: u64, generation: u64, limit: u64) -> anyhow::Result<Option<(u64, u32, u32)>> {
    if at + RECORD_HEAD as u64 > limit {
        return Ok(None);
    }
    let mut head = [0u8; RECORD_HEAD];
    file.read_exact_at(&mut head, at)?;
    let len = u64::from(u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")));
    let clicks = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    let stamp = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(head[16..20].try_into().expect("4 bytes"));
    let next = at + RECORD_HEAD as u64 + len;
    Ok((len > 0 && stamp == generation && next <= limit).then_some((next, clicks, crc)))
}

/// The record at `at`, and where the next one starts; `None` where the log of `generation` ends.
fn read_record(file: &File, at: u64, generation: u64, limit: u64) -> anyhow::Result<Option<(Vec<SpooledClick>, u64)>> {
    let Some((next, _, crc)) = head_at(file, at, generation, limit)? else {
        return Ok(None);
    };
    let mut payload = vec![0u8; (next - at) as usize - RECORD_HEAD];
    file.read_exact_at(&mut payload, at + RECORD_HEAD as u64)?;
    if checksum(generation, &payload) != crc {
        return Ok(None);
    }
    match serde_json::from_slice(&payload) {
        Ok(clicks) => Ok(Some((clicks, next))),
        Err(_) => Ok(None),
    }
}

/// Where the record at `at` would end, and the clicks it says it held, when it is one of
/// `generation`'s that does not read and the record after it does: a damaged record inside
/// the log, not its end (a record cut short by a crash is the last one).
fn damaged(file: &File, at: u64, generation: u64, limit: u64) -> anyhow::Result<Option<(u64, u32)>> {
    let Some((next, clicks, _)) = head_at(file, at, generation, limit)? else {
        return Ok(None);
    };
    Ok(read_record(file, next, generation, limit)?.map(|_| (next, clicks)))
}

fn checksum(generation: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&generation.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Starts writing `len` bytes at `offset` to disk without waiting, so that a later `sync_data`
/// finds them on their way. Only a hint: `sync_data` does the work itself where this fails.
fn start_writeback(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range only reads the descriptor, which `file` keeps open.
    unsafe {
        libc::sync_file_range(
            std::os::fd::AsRawFd::as_raw_fd(file),
            offset,
            len,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Reserves `len` bytes of disk for the file, so that writes inside it never need new space.
fn reserve(file: &File, len: u64) -> std::io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(std::io::Error::other)?;
    // SAFETY: posix_fallocate only reads the descriptor, which `file` keeps open.
    let rc = unsafe { libc::posix_fallocate(std::os::fd::AsRawFd::as_raw_fd(file), 0, len) };
    match rc {
        0 => Ok(()),
        // File systems without fallocate: the space is not reserved, the spool still works.
        libc::EOPNOTSUPP | libc::EINVAL => file.set_len(file.metadata()?.len().max(len as u64)),
        e => Err(std::io::Error::from_raw_os_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(code: &str, ms: u64) -> SpooledClick {
        SpooledClick {
            code: code.into(),
            ms,
            seq: 7,
            info: ClickInfo::default(),
        }
    }

    #[test]
    fn appended_clicks_come_back_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(!spool.holds_clicks());
        spool.append(&[click("a", 1), click("b", 2)]).unwrap();
        spool.append(&[click("a", 3)]).unwrap();
        assert_eq!(spool.depth().clicks, 3);
        drop(spool);

        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.depth().clicks, 3);
        let chunk = spool.next_chunk(2).unwrap().unwrap();
        let ms: Vec<u64> = chunk.clicks.iter().map(|c| c.ms).collect();
        assert_eq!(ms, [1, 2]);
        spool.mark_replayed(chunk.upto, 2).unwrap();
        assert_eq!(spool.depth().clicks, 1);
        drop(spool);

        // The replayed part is not handed out again after a reopen.
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let chunk = spool.next_chunk(100).unwrap().unwrap();
        assert_eq!(chunk.clicks.len(), 1);
        assert_eq!(chunk.clicks[0].ms, 3);
        spool.mark_replayed(chunk.upto, 1).unwrap();
        assert!(!spool.holds_clicks());
        assert!(spool.next_chunk(100).unwrap().is_none());
    }

    /// While the replayer writes the spool's last records, new click groups wait for it
    /// (`closing`); once they are stored, nothing is left to wait for. A soak audit found the
    /// spool still `closing` after its last records were replayed, so that every later group
    /// waited out the writer's 50 ms, until a restart.
    #[test]
    fn the_spool_is_no_longer_closing_once_its_last_records_are_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(&[click("a", 1)]).unwrap();
        spool.append(&[click("a", 2)]).unwrap();
        let first = spool.next_chunk(1).unwrap().unwrap();
        assert!(!spool.closing(), "more records behind this chunk");
        spool.mark_replayed(first.upto, 1).unwrap();
        let last = spool.next_chunk(1).unwrap().unwrap();
        assert!(spool.closing(), "the last records on their way");
        spool.mark_replayed(last.upto, 1).unwrap();
        assert!(!spool.holds_clicks());
        assert!(!spool.closing(), "nothing left to wait for");
    }

    #[test]
    fn a_spool_let_go_of_a_moment_later_opens() {
        let dir = tempfile::tempdir().unwrap();
        let held = Spool::open(dir.path(), 1 << 20).unwrap();
        let letting_go = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(held);
        });
        assert!(Spool::open(dir.path(), 1 << 20).is_ok());
        letting_go.join().unwrap();
    }

    #[test]
    fn a_borrowed_click_reads_back_as_the_click() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let info = ClickInfo {
            visitor: "ab12".into(),
            suspicious: true,
            ..ClickInfo::default()
        };
        let borrowed = SpooledClickRef {
            code: "amy-serum",
            ms: 5,
            seq: 9,
            info: &info,
        };
        spool.append(&[borrowed]).unwrap();
        let read = spool.next_chunk(10).unwrap().unwrap().clicks;
        assert_eq!(read.len(), 1);
        assert_eq!((read[0].code.as_str(), read[0].ms, read[0].seq), ("amy-serum", 5, 9));
        assert_eq!(read[0].info, info);
    }

    #[test]
    fn a_click_with_its_info_written_as_json_already_is_the_same_record() {
        let info = ClickInfo {
            visitor: "ab12".into(),
            dims: crate::domain::Dimensions::default().with(crate::domain::Dimension::Device, "mobile \"x\""),
            ..ClickInfo::default()
        };
        let json = serde_json::value::to_raw_value(&info).unwrap();
        let raw = SpooledClickRef {
            code: "amy-serum",
            ms: 5,
            seq: 9,
            info: &*json,
        };
        let typed = SpooledClickRef {
            code: "amy-serum",
            ms: 5,
            seq: 9,
            info: &info,
        };
        assert_eq!(
            serde_json::to_string(&[&raw]).unwrap(),
            serde_json::to_string(&[&typed]).unwrap()
        );
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(&[raw]).unwrap();
        let read = spool.next_chunk(10).unwrap().unwrap().clicks;
        assert_eq!(read[0].info, info);
    }

    #[test]
    fn a_new_round_never_reads_leftovers_of_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(&[click("a", 1)]).unwrap();
        spool.append(&[click("a", 2)]).unwrap();
        let chunk = spool.next_chunk(100).unwrap().unwrap();
        spool.mark_replayed(chunk.upto, 2).unwrap();
        // A shorter round over the same bytes: the second old record is still on disk after it.
        spool.append(&[click("b", 9)]).unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.depth().clicks, 1);
        let chunk = spool.next_chunk(100).unwrap().unwrap();
        assert_eq!(chunk.clicks.len(), 1);
        assert_eq!(chunk.clicks[0].code, "b");
    }

    #[test]
    fn a_torn_tail_ends_the_log_and_a_full_spool_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), HEADER * 2).unwrap();
        spool.append(&[click("a", 1)]).unwrap();
        let end = spool.state().end;
        // A record cut short by a crash: its checksum does not match.
        spool.state().file.write_all_at(&[0xFF; 8], end - 4).unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), HEADER * 2).unwrap();
        assert_eq!(spool.depth().clicks, 0);
        let many: Vec<SpooledClick> = (0..200).map(|i| click("a", i)).collect();
        assert!(matches!(spool.append(&many), Err(SpoolError::Full(_))));
    }

    /// Found by a fault audit: one byte changed in the third of 94 records dropped the 91
    /// sound records after it, and a log whose header was damaged was written over, both
    /// without a word.
    #[test]
    fn a_damaged_record_loses_its_clicks_alone_and_an_unknown_header_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let mut starts = Vec::new();
        for i in 0..5 {
            starts.push(spool.state().end);
            spool.append(&[click("a", i), click("b", i)]).unwrap();
        }
        // A byte of the third record's payload changed.
        spool
            .state()
            .file
            .write_all_at(b"#", starts[2] + RECORD_HEAD as u64 + 3)
            .unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        let chunk = spool.next_chunk(100).unwrap().unwrap();
        let ms: Vec<u64> = chunk.clicks.iter().map(|c| c.ms).collect();
        assert_eq!(ms, [0, 0, 1, 1, 3, 3, 4, 4]);
        assert_eq!(spool.depth().clicks, 8);
        // The last record cut short (a crash) still ends the log.
        spool
            .state()
            .file
            .write_all_at(b"#", starts[4] + RECORD_HEAD as u64 + 3)
            .unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.depth().clicks, 6);

        spool.state().file.write_all_at(b"garbage!", 0).unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.depth().clicks, 0);
        let aside: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("clicks.damaged-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
    }

    /// Found by a fault audit: redirects were refused "spool full" while `/readyz` and
    /// `/metrics` showed the spool a third full, since replayed room is used again only once
    /// the spool is empty. `used_bytes` is what the refusal is judged by.
    #[test]
    fn the_room_taken_is_what_a_full_spool_is_judged_by() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), HEADER * 4).unwrap();
        assert_eq!(spool.depth().used_bytes, 0);
        let mut n = 0;
        while !spool.nearly_full() {
            spool.append(&[click("a", n)]).unwrap();
            n += 1;
        }
        let chunk = spool.next_chunk(n as usize - 1).unwrap().unwrap();
        spool.mark_replayed(chunk.upto, chunk.clicks.len() as u64).unwrap();
        let d = spool.depth();
        assert_eq!(d.clicks, 1);
        assert!(spool.nearly_full());
        assert!(d.bytes < d.capacity_bytes / 10, "{}", d.bytes);
        assert!(
            d.used_bytes + HEADER + d.capacity_bytes / 100 > d.capacity_bytes,
            "{}",
            d.used_bytes
        );
        let last = spool.next_chunk(10).unwrap().unwrap();
        spool.mark_replayed(last.upto, 1).unwrap();
        assert_eq!(spool.depth().used_bytes, 0, "a drained spool starts over at the top");
    }

    #[test]
    fn a_lowered_cap_keeps_what_was_spooled() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for i in 0..100 {
            spool.append(&[click("a", i)]).unwrap();
        }
        drop(spool);
        let spool = Spool::open(dir.path(), HEADER * 4).unwrap();
        assert_eq!(spool.depth().clicks, 100);
        assert!(spool.nearly_full());
        let mut replayed = 0;
        while let Some(chunk) = spool.next_chunk(7).unwrap() {
            replayed += chunk.clicks.len() as u64;
            spool.mark_replayed(chunk.upto, chunk.clicks.len() as u64).unwrap();
        }
        assert_eq!(replayed, 100);
        assert!(!spool.nearly_full(), "a drained spool starts over at the top");
    }

    #[test]
    fn a_second_process_cannot_share_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Spool::open(dir.path(), 1 << 20).unwrap();
        let second = Spool::open(dir.path(), 1 << 20).err().expect("kept by the first");
        assert!(second.to_string().contains("Another kolink process"), "{second}");
    }
}
