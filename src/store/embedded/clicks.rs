//! The click log in the embedded store: a group's clicks written into a transaction, read back.

use std::collections::HashMap;

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::counters::{add_counters, add_rollups};
use super::disk::Calls;
use super::tables::*;
use super::{pool, sketch, EmbeddedStore};
use crate::domain::{ClickInfo, EntryId, StoredClick};
use crate::store::{ClickLog, NewClick, Result, StoreError};

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

/// Writes a group of clicks into `txn`: each click's log entry, counters and unique visitor.
/// A click whose entry is there already (the same group again: a replayed spool or journal)
/// counts nothing twice.
///
/// A day's first `EXACT_VISITORS` visitors of a link are rows of `visitors` (and counted in the
/// rollups' `u|<day>`); later new ones go to the day's sketch, as the Redis store does.
///
/// `infos` holds each click's info as JSON (the log's row), written once for the journal too.
pub(super) fn apply_clicks(
    txn: &WriteTransaction,
    clicks: &[NewClick],
    infos: &[Box<serde_json::value::RawValue>],
) -> Result<()> {
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
        if day.exact < crate::store::EXACT_VISITORS {
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
pub(super) fn read_sketch((code, day): (&str, &str), bytes: &[u8]) -> Option<sketch::Sketch> {
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
