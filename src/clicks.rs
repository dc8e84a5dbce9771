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
//! in write order and strictly increase within this process (so a link's log only grows); the sequence part starts with a random per-process tag so that two
//! kolink instances never propose the same id.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{TimeZone, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::domain::{ClickInfo, StreamId};
use crate::store::{NewClick, Store};
use crate::telemetry::Meters;

const MAX_BATCH: usize = 512;
const QUEUE: usize = 16 * 1024;

type Reply = oneshot::Sender<Result<StreamId, String>>;

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
    #[error("the click could not be stored: {0}")]
    Store(String),
    #[error("the click writer has stopped")]
    Stopped,
}

impl ClickWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>, meters: Arc<Meters>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, meters, rx));
        Self { tx }
    }

    /// Records one click; returns its log entry id once it is durably stored.
    pub async fn record(&self, code: &str, info: ClickInfo) -> Result<StreamId, WriteError> {
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

async fn run(store: Arc<dyn Store>, meters: Arc<Meters>, mut rx: mpsc::Receiver<(Pending, Reply)>) {
    let mut batch: Vec<(Pending, Reply)> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Ids are given here, in write order, so that each link's log only ever grows.
        let (clicks, replies): (Vec<NewClick>, Vec<Reply>) = batch
            .drain(..)
            .map(|(p, reply)| {
                let entry = next_id();
                let at = Utc
                    .timestamp_millis_opt(entry.ms as i64)
                    .single()
                    .unwrap_or_else(Utc::now);
                let fields = crate::counters::click_fields(at, &p.info);
                (
                    NewClick {
                        code: p.code,
                        entry,
                        at,
                        info: p.info,
                        fields,
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
                tracing::error!(
                    error = format!("{e:#}"),
                    clicks = clicks.len(),
                    "Failed to store a click batch"
                );
                let msg = format!("{e:#}");
                for reply in replies {
                    let _ = reply.send(Err(msg.clone()));
                }
            }
        }
    }
}

/// Per-process generator of strictly increasing stream ids.
fn next_id() -> StreamId {
    use std::sync::Mutex;
    use std::sync::OnceLock;

    static TAG: OnceLock<u64> = OnceLock::new();
    static LAST: Mutex<(u64, u64)> = Mutex::new((0, 0));

    // 24 random bits, shifted so that 2^32 clicks fit in one millisecond below them.
    let tag = *TAG.get_or_init(|| (rand::random::<u64>() & 0xFF_FFFF) << 32);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let (ms, seq) = if now > last.0 {
        (now, 0)
    } else {
        // Same millisecond, or the clock stepped back: stay on the last one.
        (last.0, last.1 + 1)
    };
    *last = (ms, seq);
    StreamId { ms, seq: tag | seq }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_strictly_increase_and_carry_the_process_tag() {
        let mut prev = next_id();
        for _ in 0..100_000 {
            let id = next_id();
            assert!(id > prev, "{id} after {prev}");
            assert_eq!(id.seq >> 32, prev.seq >> 32);
            prev = id;
        }
    }
}
