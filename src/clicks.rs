//! The click write path: a writer task that groups clicks arriving together.
//!
//! Each redirect hands its click to the writer and waits. The writer takes every click waiting
//! in its queue (up to `MAX_BATCH`), writes them with one store call (one pipelined round trip
//! to Redis, one script call per link), then answers each waiting redirect. Under load the
//! groups grow by themselves; idle, a click is written alone at once. Atomicity stays per click:
//! each click's log entry, counters and visitor are written together.
//!
//! Log entry ids are chosen here, not by the store, so a batch written again after a dropped
//! connection is recognised entry by entry and never counted twice. Ids are given by the writer
//! in write order and strictly increase (so a link's log only grows); the sequence part starts
//! with a random per-writer tag so that two kolink instances never propose the same id. The
//! time part comes from the application's clock.
//!
//! **When the store does not answer** within `STORE_DEADLINE` (250 ms), the group goes to the
//! spool (`crate::spool`, fsync'd) and its redirects are answered anyway. While the spool holds
//! clicks, new groups queue behind them in the spool, so that each link's log still only grows;
//! a replayer task feeds the spool back to the store in order, with the clicks' own entry ids
//! (a group the store took late, or twice, is counted once). Only when neither the store nor
//! the spool takes a click is its redirect refused.
//!
//! The writer stops when every `ClickWriter` handle is gone; `ClickWriter::start` returns its
//! tasks so that shutdown can wait for the last group to be written and the spool drained.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::clock::SharedClock;
use crate::domain::{ClickInfo, EntryId};
use crate::spool::{Spool, SpooledClick};
use crate::store::{NewClick, Store, StoreError};
use crate::telemetry::Meters;

const MAX_BATCH: usize = 512;
const QUEUE: usize = 16 * 1024;
/// How long a redirect waits for the store before its click goes to the spool (API.md).
pub const STORE_DEADLINE: Duration = Duration::from_millis(250);
/// How long a group waits for the replayer's last records before it is spooled behind them.
/// One store write of a group takes a few milliseconds when the store is well.
const CATCH_UP_WAIT: Duration = Duration::from_millis(50);
/// How long one replay of spooled clicks may take before it is tried again later.
const REPLAY_DEADLINE: Duration = Duration::from_secs(5);
/// Longest pause between replay attempts while the store does not answer.
const REPLAY_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long shutdown keeps replaying the spool before leaving the rest for the next start.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

type Reply = oneshot::Sender<Result<EntryId, Arc<WriteError>>>;

/// A click waiting for the writer: its link and what the redirect saw.
struct Pending {
    code: String,
    info: ClickInfo,
    /// When the redirect handed it over: its 250 ms run from here, waiting in the queue
    /// included.
    arrived: tokio::time::Instant,
}

#[derive(Clone)]
pub struct ClickWriter {
    tx: mpsc::Sender<(Pending, Reply)>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The store refused the click, or did not answer and the spool could not take it.
    #[error("the click could not be stored: {0}")]
    Store(StoreError),
    #[error("the click writer has stopped")]
    Stopped,
}

/// The writer and replayer tasks; shutdown waits for both.
pub struct WriterTasks {
    writer: JoinHandle<()>,
    replayer: JoinHandle<()>,
    draining: watch::Sender<bool>,
}

impl WriterTasks {
    /// Waits for the writer to write what it holds (it ends once every `ClickWriter` is gone),
    /// then gives the replayer a last chance to empty the spool; what is left stays on disk.
    pub async fn finish(self) {
        if tokio::time::timeout(Duration::from_secs(15), self.writer)
            .await
            .is_err()
        {
            tracing::warn!("the click writer did not stop within 15 s");
        }
        let _ = self.draining.send(true);
        let mut replayer = self.replayer;
        if tokio::time::timeout(DRAIN_DEADLINE + Duration::from_secs(1), &mut replayer)
            .await
            .is_err()
        {
            tracing::warn!("the click spool replayer did not stop in time; the spool keeps the rest");
            replayer.abort();
            let _ = replayer.await;
        }
    }
}

impl ClickWriter {
    /// Starts the writer and the spool's replayer on the current runtime; the writer ends once
    /// every handle is dropped.
    pub fn start(
        store: Arc<dyn Store>,
        spool: Arc<Spool>,
        meters: Arc<Meters>,
        clock: SharedClock,
    ) -> (Self, WriterTasks) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (wake, woken) = watch::channel(());
        let (draining, drain) = watch::channel(false);
        let writer = tokio::spawn(run(
            Writer {
                store: store.clone(),
                spool: spool.clone(),
                meters: meters.clone(),
                clock,
                wake,
            },
            rx,
        ));
        let replayer = tokio::spawn(replay(store, spool, meters, woken, drain));
        (
            Self { tx },
            WriterTasks {
                writer,
                replayer,
                draining,
            },
        )
    }

    /// Records one click; returns its log entry id once it is durably stored, in the store or
    /// in the spool.
    pub async fn record(&self, code: &str, info: ClickInfo) -> Result<EntryId, Arc<WriteError>> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            code: code.to_owned(),
            info,
            arrived: tokio::time::Instant::now(),
        };
        self.tx
            .send((pending, reply))
            .await
            .map_err(|_| Arc::new(WriteError::Stopped))?;
        answer.await.unwrap_or_else(|_| Err(Arc::new(WriteError::Stopped)))
    }
}

/// A click with the counter fields and visit the stores write with it.
pub fn new_click(code: String, entry: EntryId, info: ClickInfo) -> NewClick {
    let at = Utc
        .timestamp_millis_opt(entry.ms as i64)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    NewClick {
        fields: crate::counters::click_fields(at, &info),
        visit: crate::counters::visit(at, &info),
        code,
        entry,
        at,
        info,
    }
}

struct Writer {
    store: Arc<dyn Store>,
    spool: Arc<Spool>,
    meters: Arc<Meters>,
    clock: SharedClock,
    /// Tells the replayer that the spool has clicks.
    wake: watch::Sender<()>,
}

async fn run(w: Writer, mut rx: mpsc::Receiver<(Pending, Reply)>) {
    let mut ids = EntryIds::new();
    let mut batch: Vec<(Pending, Reply)> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // The group's store deadline is its oldest click's: no click waits past it for the
        // store, however long it queued behind a slow group.
        let started = tokio::time::Instant::now();
        let oldest = batch.iter().map(|(p, _)| p.arrived).min().unwrap_or(started);
        let deadline = oldest + STORE_DEADLINE;
        w.meters
            .click_queue_seconds
            .observe(started.saturating_duration_since(oldest).as_secs_f64());
        // Ids are given here, in write order, so that each link's log only ever grows.
        let (clicks, replies): (Vec<NewClick>, Vec<Reply>) = batch
            .drain(..)
            .map(|(p, reply)| (new_click(p.code, ids.next(w.clock.now()), p.info), reply))
            .unzip();
        w.meters.click_batches.inc();
        let written = w.write(clicks, deadline).await;
        w.meters.click_write_seconds.observe(started.elapsed().as_secs_f64());
        match written {
            Ok(ids) => {
                for (reply, id) in replies.into_iter().zip(ids) {
                    let _ = reply.send(Ok(id));
                }
            }
            Err(e) => {
                w.meters.click_batch_failures.inc();
                crate::telemetry::warn_limited!(error = %e, clicks = replies.len(), "Failed to store a click group; its redirects are refused");
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

impl Writer {
    /// Writes a group to the store; past `deadline` (250 ms from its oldest click's arrival), or
    /// while earlier clicks wait in the spool (a link's log only grows), to the spool.
    async fn write(&self, clicks: Vec<NewClick>, deadline: tokio::time::Instant) -> Result<Vec<EntryId>, WriteError> {
        if self.spool.closing() {
            // The replayer is writing the spool's last records: wait for that one write, so that
            // new clicks go straight to the store once more (were they always spooled behind it,
            // a steady load would never let the spool empty).
            let until = (tokio::time::Instant::now() + CATCH_UP_WAIT).min(deadline);
            while self.spool.closing() && tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if !self.spool.holds_clicks() && !self.spool.held() {
            match tokio::time::timeout_at(deadline, self.store.write_clicks(&clicks)).await {
                Ok(Ok(ids)) => {
                    self.meters.clicks_written.inc_by(ids.len() as u64);
                    return Ok(ids);
                }
                Ok(Err(StoreError::Unavailable(e))) => {
                    crate::telemetry::warn_limited!(error = %e, "the store does not take clicks; spooling them");
                }
                Ok(Err(e)) => return Err(WriteError::Store(e)),
                Err(_) => {
                    crate::telemetry::warn_limited!(deadline = ?STORE_DEADLINE, "the store did not answer in time; spooling clicks");
                }
            }
            // Until the replayer gets a group in, the next groups go to the spool at once.
            self.spool.set_store_refuses(true);
        }
        let ids: Vec<EntryId> = clicks.iter().map(|c| c.entry).collect();
        let spooled: Vec<SpooledClick> = clicks
            .into_iter()
            .map(|c| SpooledClick {
                code: c.code,
                ms: c.entry.ms,
                seq: c.entry.seq,
                info: c.info,
            })
            .collect();
        let spool = self.spool.clone();
        let n = spooled.len() as u64;
        let appended = tokio::task::spawn_blocking(move || spool.append(&spooled))
            .await
            .map_err(|e| WriteError::Store(StoreError::Corrupt(anyhow::Error::new(e))))?;
        match appended {
            Ok(()) => {
                self.meters.clicks_spooled.inc_by(n);
                self.wake.send_replace(());
                Ok(ids)
            }
            Err(e) => Err(WriteError::Store(StoreError::Unavailable(anyhow::Error::new(e)))),
        }
    }
}

/// Feeds the spool back into the store, in order, with the clicks' own entry ids.
async fn replay(
    store: Arc<dyn Store>,
    spool: Arc<Spool>,
    meters: Arc<Meters>,
    mut woken: watch::Receiver<()>,
    mut drain: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(50);
    let mut drain_until = None;
    let mut writer_gone = false;
    loop {
        // Shutdown asked for, or nobody left to ask: replay what is there, for a bounded time.
        let draining = writer_gone || *drain.borrow() || drain.has_changed().is_err();
        if draining && drain_until.is_none() {
            drain_until = Some(tokio::time::Instant::now() + DRAIN_DEADLINE);
        }
        let replayed = match drain_until {
            None => replay_some(&store, &spool, &meters).await,
            // Shutdown waits no longer than the drain deadline, whatever the store does.
            Some(until) => tokio::time::timeout_at(until, replay_some(&store, &spool, &meters))
                .await
                .unwrap_or(Err(())),
        };
        match replayed {
            Ok(_) => spool.set_store_refuses(false),
            Err(()) => spool.set_store_refuses(true),
        }
        match replayed {
            Ok(true) if draining => return,
            Ok(true) => {
                backoff = Duration::from_millis(50);
                // Nothing to replay: sleep until the writer spools again or shutdown begins.
                tokio::select! {
                    r = woken.changed() => writer_gone = r.is_err(),
                    _ = drain.changed() => {}
                }
            }
            Ok(false) => backoff = Duration::from_millis(50),
            Err(()) => {
                if drain_until.is_some_and(|until| tokio::time::Instant::now() >= until) {
                    tracing::warn!(
                        clicks = spool.depth().clicks,
                        "shutting down with clicks in the spool; the next start replays them"
                    );
                    return;
                }
                if draining {
                    tokio::time::sleep(backoff).await;
                } else {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = drain.changed() => {}
                    }
                }
                backoff = (backoff * 2).min(REPLAY_BACKOFF_MAX);
            }
        }
    }
}

/// Replays one chunk. `Ok(true)`: the spool is empty; `Ok(false)`: more to do; `Err`: the store
/// did not take it (try again later).
async fn replay_some(store: &Arc<dyn Store>, spool: &Arc<Spool>, meters: &Meters) -> Result<bool, ()> {
    if spool.held() {
        return Err(());
    }
    let s = spool.clone();
    let chunk = match tokio::task::spawn_blocking(move || s.next_chunk(MAX_BATCH)).await {
        Ok(Ok(Some(chunk))) => chunk,
        Ok(Ok(None)) => return Ok(true),
        Ok(Err(e)) => {
            tracing::error!(error = %e, path = %spool.path().display(), "Failed to read the click spool");
            return Err(());
        }
        Err(e) => {
            tracing::error!(error = %e, "the click spool reader failed");
            return Err(());
        }
    };
    let n = chunk.clicks.len() as u64;
    let clicks: Vec<NewClick> = chunk
        .clicks
        .into_iter()
        .map(|c| new_click(c.code.clone(), c.entry(), c.info))
        .collect();
    // A Redis that came back without its data is not this process's store: the clicks stay
    // here rather than go to it (checked before each chunk, not only by the store's watch).
    let written = async {
        store.confirm_identity().await?;
        store.write_clicks(&clicks).await
    };
    match tokio::time::timeout(REPLAY_DEADLINE, written).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            spool.reopen_after_failure();
            crate::telemetry::warn_limited!(error = %e, "spooled clicks not replayed yet");
            return Err(());
        }
        Err(_) => {
            spool.reopen_after_failure();
            return Err(());
        }
    }
    meters.clicks_written.inc_by(n);
    meters.clicks_replayed.inc_by(n);
    let s = spool.clone();
    match tokio::task::spawn_blocking(move || s.mark_replayed(chunk.upto, n)).await {
        Ok(Ok(())) => Ok(!spool.holds_clicks()),
        Ok(Err(e)) => {
            // The clicks are stored; the spool replays them again later and the store counts
            // them once.
            spool.reopen_after_failure();
            tracing::error!(error = %e, "Failed to mark spooled clicks replayed");
            Err(())
        }
        Err(_) => {
            spool.reopen_after_failure();
            Err(())
        }
    }
}

/// Strictly increasing log entry ids of one writer.
struct EntryIds {
    /// 24 random bits, never all zero, shifted so that 2^32 clicks fit in one millisecond
    /// below them: a writer's sequence parts are 2^32 and up, never one Redis chooses itself
    /// (see the Redis store's re-keying).
    tag: u64,
    last: (u64, u64),
}

impl EntryIds {
    fn new() -> Self {
        Self {
            tag: (rand::random::<u64>() % 0xFF_FFFF + 1) << 32,
            last: (0, 0),
        }
    }

    fn next(&mut self, now: DateTime<Utc>) -> EntryId {
        let now = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let (ms, seq) = if now > self.last.0 {
            (now, 0)
        } else {
            // Same millisecond, or the clock stepped back: stay on the last one.
            (self.last.0, self.last.1 + 1)
        };
        self.last = (ms, seq);
        EntryId {
            ms,
            seq: self.tag | seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_strictly_increase_and_carry_the_writer_tag_even_when_the_clock_steps_back() {
        let mut ids = EntryIds::new();
        let t0 = Utc::now();
        let mut prev = ids.next(t0);
        for i in 0..100_000i64 {
            // Every tenth id the clock steps back a second.
            let t = if i % 10 == 0 {
                t0 - chrono::TimeDelta::seconds(1)
            } else {
                t0 + chrono::TimeDelta::milliseconds(i / 100)
            };
            let id = ids.next(t);
            assert!(id > prev, "{id:?} after {prev:?}");
            assert_eq!(id.seq >> 32, prev.seq >> 32);
            prev = id;
        }
    }
}
