//! The click log in Redis: writing groups of clicks with the `CLICKS` script, reading entries back.

use std::collections::HashMap;

use redis::{AsyncCommands, Value};

use super::{failed, parse_stream_id, stream_id, RedisStore};
use crate::domain::{ClickInfo, Dimension, EntryId, StoredClick};
use crate::store::{NewClick, Result};

impl RedisStore {
    /// Writes a group of clicks: one script call per link, all in one pipelined round trip.
    /// Each link's counters are summed here (`CLICKS_SUMMED`); a link whose clicks are not all
    /// new is written again click by click (`CLICKS`) in a second round trip.
    pub(super) async fn invoke_clicks(&self, clicks: &[NewClick]) -> redis::RedisResult<Vec<EntryId>> {
        // Group by link, keeping each link's clicks in order: one script call per link.
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, c) in clicks.iter().enumerate() {
            match groups.iter_mut().find(|(code, _)| *code == c.code) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((&c.code, vec![i])),
            }
        }
        let minid = self.minid();
        let mut out = vec![EntryId { ms: 0, seq: 0 }; clicks.len()];
        let mut pipe = redis::pipe();
        for (code, idx) in &groups {
            pipe.invoke_script(&self.click_invocation(code, idx, clicks, &minid, true));
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Option<Vec<String>>> = pipe.query_async(&mut conn).await?;
        let mut again = Vec::new();
        for ((code, idx), ids) in groups.iter().zip(replies) {
            match ids {
                Some(ids) => take_ids(&mut out, idx, ids, clicks),
                None => again.push((*code, idx)),
            }
        }
        if !again.is_empty() {
            let mut pipe = redis::pipe();
            for (code, idx) in &again {
                pipe.invoke_script(&self.click_invocation(code, idx, clicks, &minid, false));
            }
            let replies: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
            for ((_, idx), ids) in again.into_iter().zip(replies) {
                take_ids(&mut out, idx, ids, clicks);
            }
        }
        Ok(out)
    }

    /// The script call writing the clicks `idx` of one link: with the counters summed over
    /// them (`CLICKS_SUMMED`), or each click's own (`CLICKS`).
    fn click_invocation<'a>(
        &'a self,
        code: &str,
        idx: &[usize],
        clicks: &[NewClick],
        minid: &str,
        summed: bool,
    ) -> redis::ScriptInvocation<'a> {
        let mut inv = if summed {
            self.clicks_summed.prepare_invoke()
        } else {
            self.clicks.prepare_invoke()
        };
        inv.key(self.link_key(code, "clicks"))
            .key(self.link_key(code, "stats"))
            .key(self.link_key(code, "rollups"));
        let mut days: Vec<&str> = Vec::new();
        inv.arg(minid).arg(super::EXACT_VISITORS).arg(idx.len());
        let mut sums: Vec<(&str, u64)> = Vec::new();
        for &i in idx {
            let c = &clicks[i];
            let (uv, visitor) = match &c.visit {
                None => (0, ""),
                Some(v) => match days.iter().position(|d| *d == v.day) {
                    Some(p) => (p + 1, v.visitor.as_str()),
                    None => {
                        days.push(&v.day);
                        (days.len(), v.visitor.as_str())
                    }
                },
            };
            let kv = entry_fields(&c.info);
            inv.arg(stream_id(c.entry)).arg(uv).arg(visitor).arg(kv.len());
            for f in &kv {
                inv.arg(*f);
            }
            if summed {
                for f in &c.fields {
                    match sums.iter_mut().find(|(s, _)| *s == f) {
                        Some((_, n)) => *n += 1,
                        None => sums.push((f, 1)),
                    }
                }
                continue;
            }
            inv.arg(c.fields.len());
            for f in &c.fields {
                inv.arg(f);
            }
            let rollups: Vec<String> = c.fields.iter().flat_map(|f| crate::counters::rollups(f)).collect();
            inv.arg(rollups.len());
            for r in &rollups {
                inv.arg(r);
            }
        }
        if summed {
            // Each distinct field's rollups, once, with the field's amount.
            let mut rollups: Vec<(String, u64)> = Vec::new();
            for (f, n) in &sums {
                for r in crate::counters::rollups(f) {
                    match rollups.iter_mut().find(|(s, _)| *s == r) {
                        Some((_, m)) => *m += n,
                        None => rollups.push((r, *n)),
                    }
                }
            }
            inv.arg(sums.len());
            for (f, n) in &sums {
                inv.arg(*f).arg(*n);
            }
            inv.arg(rollups.len());
            for (r, n) in &rollups {
                inv.arg(r).arg(*n);
            }
        }
        for d in &days {
            inv.key(self.link_key(code, &format!("uvs:{d}")))
                .key(self.link_key(code, &format!("uv:{d}")))
                .arg(*d);
        }
        inv
    }

    pub(super) async fn read_range(
        &self,
        code: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<StoredClick>> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = conn
            .xrange_count(self.link_key(code, "clicks"), start, end, limit)
            .await
            .map_err(failed("Failed to read clicks from Redis"))?;
        Ok(reply
            .ids
            .iter()
            .filter_map(|e| click_from_entry(&e.id, &e.map))
            .collect())
    }
}

/// Takes a link's entry ids from its script's answer (a click re-keyed by Redis under `rid`
/// keeps the id Redis chose).
fn take_ids(out: &mut [EntryId], idx: &[usize], ids: Vec<String>, clicks: &[NewClick]) {
    for (&i, id) in idx.iter().zip(ids) {
        out[i] = parse_stream_id(&id).unwrap_or(clicks[i].entry);
    }
}

/// The fields of a click log entry: `bot`, `v` (visitor), then each dimension under its
/// `Dimension::key`; empty values are left out to save memory.
pub(super) fn entry_fields(c: &ClickInfo) -> Vec<&str> {
    let mut kv = Vec::with_capacity(16);
    if c.bot {
        kv.extend(["bot", "1"]);
    }
    if !c.preview.is_empty() {
        kv.extend(["pv", c.preview.as_str()]);
    }
    if c.suspicious {
        kv.extend(["sus", "1"]);
    }
    if !c.visitor.is_empty() {
        kv.extend(["v", c.visitor.as_str()]);
    }
    for (d, v) in c.dims.iter() {
        if !v.is_empty() {
            kv.push(d.key());
            kv.push(v);
        }
    }
    if kv.is_empty() {
        kv.extend(["v", ""]);
    }
    kv
}

pub(super) fn click_from_entry(id: &str, fields: &HashMap<String, Value>) -> Option<StoredClick> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        _ => String::new(),
    };
    let mut info = ClickInfo::default();
    for (k, v) in fields {
        match k.as_str() {
            "bot" => info.bot = text(v) == "1",
            "pv" => info.preview = text(v),
            "sus" => info.suspicious = text(v) == "1",
            "v" => info.visitor = text(v),
            key => {
                if let Some(d) = Dimension::from_key(key) {
                    info.dims.set(d, text(v));
                }
            }
        }
    }
    Some(StoredClick {
        entry: parse_stream_id(id)?,
        info,
    })
}
