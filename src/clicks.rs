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
//! The writer stops when every `ClickWriter` handle is gone; `ClickWriter::start` returns its
//! task so that shutdown can wait for the last group to be written.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock::SharedClock;
use crate::domain::{ClickInfo, EntryId};
use crate::store::{NewClick, Store, StoreError};
use crate::telemetry::Meters;

const MAX_BATCH: usize = 512;
const QUEUE: usize = 16 * 1024;

type Reply = oneshot::Sender<Result<EntryId, Arc<StoreError>>>;

/// A click waiting for the writer: its link and what the redirect saw.
struct Pending {
    code: String,
    info: ClickInfo,
}

#[derive(Clone)]
pub struct ClickWriter {
    tx: mpsc::Sender<(Pending, Reply)>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The store refused or did not answer; which one, the error says.
    #[error("the click could not be stored: {0}")]
    Store(Arc<StoreError>),
    #[error("the click writer has stopped")]
    Stopped,
}

impl ClickWriter {
    /// Starts the writer task on the current runtime; the task ends once every handle is dropped.
    pub fn start(store: Arc<dyn Store>, meters: Arc<Meters>, clock: SharedClock) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(store, meters, clock, rx));
        (Self { tx }, task)
    }

    /// Records one click; returns its log entry id once it is durably stored.
    pub async fn record(&self, code: &str, info: ClickInfo) -> Result<EntryId, WriteError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            code: code.to_owned(),
            info,
        };
        self.tx.send((pending, reply)).await.map_err(|_| WriteError::Stopped)?;
        match answer.await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(e)) => Err(WriteError::Store(e)),
            Err(_) => Err(WriteError::Stopped),
        }
    }
}

async fn run(store: Arc<dyn Store>, meters: Arc<Meters>, clock: SharedClock, mut rx: mpsc::Receiver<(Pending, Reply)>) {
    let mut ids = EntryIds::new();
    let mut batch: Vec<(Pending, Reply)> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Ids are given here, in write order, so that each link's log only ever grows.
        let (clicks, replies): (Vec<NewClick>, Vec<Reply>) = batch
            .drain(..)
            .map(|(p, reply)| {
                let entry = ids.next(clock.now());
                let at = Utc
                    .timestamp_millis_opt(entry.ms as i64)
                    .single()
                    .unwrap_or_else(|| clock.now());
                (
                    NewClick {
                        fields: crate::counters::click_fields(at, &p.info),
                        visit: crate::counters::visit(at, &p.info),
                        code: p.code,
                        entry,
                        at,
                        info: p.info,
                    },
                    reply,
                )
            })
            .unzip();
        meters.click_batches.inc();
        match store.write_clicks(&clicks).await {
            Ok(ids) => {
                meters.clicks_written.inc_by(ids.len() as u64);
                for (reply, id) in replies.into_iter().zip(ids) {
                    let _ = reply.send(Ok(id));
                }
            }
            Err(e) => {
                meters.click_batch_failures.inc();
                tracing::error!(error = %e, clicks = clicks.len(), "Failed to store a click batch");
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Strictly increasing log entry ids of one writer.
struct EntryIds {
    /// 24 random bits, shifted so that 2^32 clicks fit in one millisecond below them.
    tag: u64,
    last: (u64, u64),
}

impl EntryIds {
    fn new() -> Self {
        Self {
            tag: (rand::random::<u64>() & 0xFF_FFFF) << 32,
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
