//! The click log in Redis: writing groups of clicks with the `CLICKS` script, reading entries back.

use std::collections::HashMap;

use redis::{AsyncCommands, Value};

use super::{failed, parse_stream_id, stream_id, RedisStore};
use crate::domain::{ClickInfo, Dimension, EntryId, StoredClick};
use crate::store::{NewClick, Result};

impl RedisStore {
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
        let mut pipe = redis::pipe();
        let mut invocations = Vec::with_capacity(groups.len());
        for (code, idx) in &groups {
            let mut inv = self.clicks.prepare_invoke();
            inv.key(self.link_key(code, "clicks"))
                .key(self.link_key(code, "stats"))
                .key(self.link_key(code, "rollups"));
            let mut days: Vec<String> = Vec::new();
            inv.arg(&minid).arg(super::EXACT_VISITORS).arg(idx.len());
            for &i in idx {
                let c = &clicks[i];
                let (uv, visitor) = match &c.visit {
                    None => (0, ""),
                    Some(v) => match days.iter().position(|d| *d == v.day) {
                        Some(p) => (p + 1, v.visitor.as_str()),
                        None => {
                            days.push(v.day.clone());
                            (days.len(), v.visitor.as_str())
                        }
                    },
                };
                let kv = entry_fields(&c.info);
                inv.arg(stream_id(c.entry)).arg(uv).arg(visitor).arg(kv.len());
                for f in &kv {
                    inv.arg(*f);
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
            for d in &days {
                inv.key(self.link_key(code, &format!("uvs:{d}")))
                    .key(self.link_key(code, &format!("uv:{d}")))
                    .arg(d);
            }
            invocations.push(inv);
        }
        for inv in &invocations {
            pipe.invoke_script(inv);
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
        let mut out = vec![EntryId { ms: 0, seq: 0 }; clicks.len()];
        for ((_, idx), ids) in groups.iter().zip(replies) {
            for (&i, id) in idx.iter().zip(ids) {
                out[i] = parse_stream_id(&id).unwrap_or(clicks[i].entry);
            }
        }
        Ok(out)
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
