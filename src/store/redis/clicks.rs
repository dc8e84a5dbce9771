//! The click log in Redis: writing groups of clicks with the `CLICKS` script, reading entries back.

use std::collections::HashMap;
use std::time::Duration;

use redis::{AsyncCommands, Value};

use super::{conn, failed, is_noscript, parse_stream_id, stream_id, RedisStore, CLICK_WRITE_TRIES};
use crate::domain::{ClickInfo, Dimension, EntryId, StoredClick};
use crate::store::{ClickLog, NewClick, Result, StoreError};

impl RedisStore {
    /// Writes a group of clicks: one script call per link, all in one pipelined round trip.
    /// Each link's counters are summed here (`CLICKS_SUMMED`) when its clicks' ids increase (a
    /// writer's always do; a replayed spool can hold two processes' clicks); a link whose clicks
    /// are not all new, or whose ids do not increase, is written click by click (`CLICKS`), in a
    /// second round trip.
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
        let increasing = |idx: &[usize]| idx.windows(2).all(|w| clicks[w[0]].entry < clicks[w[1]].entry);
        let (summed, mut again): (Vec<_>, Vec<_>) = groups
            .iter()
            .map(|(c, idx)| (*c, idx))
            .partition(|(_, idx)| increasing(idx));
        let replies = self.run_click_scripts(&summed, clicks, &minid, true).await?;
        for ((code, idx), written) in summed.into_iter().zip(replies) {
            match written {
                Written::Own(n) if n == idx.len() => {
                    for &i in idx {
                        out[i] = clicks[i].entry;
                    }
                }
                Written::Own(n) => {
                    return Err(redis::RedisError::from(std::io::Error::other(format!(
                        "the click script wrote {n} clicks of a group of {}",
                        idx.len()
                    ))))
                }
                // An empty answer: not all new, nothing written.
                Written::Ids(ids) if ids.is_empty() => again.push((code, idx)),
                Written::Ids(_) => own_ids(&mut out, idx, clicks),
            }
        }
        let replies = self.run_click_scripts(&again, clicks, &minid, false).await?;
        for ((_, idx), written) in again.into_iter().zip(replies) {
            match written {
                Written::Ids(_) => own_ids(&mut out, idx, clicks),
                Written::Own(_) => {
                    return Err(redis::RedisError::from(std::io::Error::other(
                        "the click script answered a number instead of entry ids",
                    )))
                }
            }
        }
        Ok(out)
    }

    /// One pipelined round trip of one click script call per link group (none for no group):
    /// each call's entry ids.
    async fn run_click_scripts(
        &self,
        groups: &[(&str, &Vec<usize>)],
        clicks: &[NewClick],
        minid: &str,
        summed: bool,
    ) -> redis::RedisResult<Vec<Written>> {
        if groups.is_empty() {
            return Ok(vec![]);
        }
        let mut spread = self.redis.spread();
        for (code, idx) in groups {
            let stream = self.link_key(code, "clicks");
            let cmd = self.click_command(code, &stream, idx, clicks, minid, summed);
            spread.on(&stream).add_command(cmd);
        }
        self.run_spread(spread, true).await
    }

    /// The script call writing the clicks `idx` of one link (`stream`: its click stream's key):
    /// with the counters summed over them (`CLICKS_SUMMED`), or each click's own (`CLICKS`).
    /// `EVALSHA` built here, as `Script::prepare_invoke` would (a missing script is loaded by
    /// `with_scripts`), without its copy of every argument: this runs for every click.
    fn click_command(
        &self,
        code: &str,
        stream: &str,
        idx: &[usize],
        clicks: &[NewClick],
        minid: &str,
        summed: bool,
    ) -> redis::Cmd {
        // The group's visit days, in the order they first come; each click's is its place
        // among them, from 1 (0: no visit).
        let mut days: Vec<&str> = Vec::new();
        let visits: Vec<(usize, &str)> = idx
            .iter()
            .map(|&i| match &clicks[i].visit {
                None => (0, ""),
                Some(v) => match days.iter().position(|d| *d == v.day) {
                    Some(p) => (p + 1, v.visitor.as_str()),
                    None => {
                        days.push(&v.day);
                        (days.len(), v.visitor.as_str())
                    }
                },
            })
            .collect();
        let script = if summed { &self.clicks_summed } else { &self.clicks };
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.get_hash())
            .arg(4 + 2 * days.len())
            .arg(stream)
            .arg(self.link_key(code, "stats"))
            .arg(self.link_key(code, "rollups"))
            .arg(self.link_key(code, "writers"));
        for d in &days {
            cmd.arg(self.link_key(code, &format!("uvs:{d}")))
                .arg(self.link_key(code, &format!("uv:{d}")));
        }
        cmd.arg(minid).arg(super::EXACT_VISITORS).arg(idx.len());
        let mut sums: Vec<(&str, u64)> = Vec::new();
        // A writer's clicks share its tag: formatted once per group, not per click.
        let mut tag: Option<(u64, String)> = None;
        for (&i, (uv, visitor)) in idx.iter().zip(visits) {
            let c = &clicks[i];
            let t = c.entry.seq >> 32;
            if tag.as_ref().is_none_or(|(had, _)| *had != t) {
                tag = Some((t, writer_tag(c.entry)));
            }
            cmd.arg(stream_id(c.entry))
                .arg(tag.as_ref().map_or("", |(_, s)| s.as_str()))
                .arg(uv)
                .arg(visitor)
                .arg(entry_line(&c.info));
            if summed {
                for f in &c.fields {
                    add_to(&mut sums, f.as_str(), 1);
                }
            } else {
                cmd.arg(c.fields.len());
                for f in &c.fields {
                    cmd.arg(f);
                }
                let rollups: Vec<String> = c.fields.iter().flat_map(|f| crate::counters::rollups(f)).collect();
                cmd.arg(rollups.len());
                for r in &rollups {
                    cmd.arg(r);
                }
            }
        }
        if summed {
            // Each distinct field's rollups, once, with the field's amount.
            let mut rollups: Vec<(String, u64)> = Vec::new();
            for (f, n) in &sums {
                for r in crate::counters::rollups(f) {
                    add_to(&mut rollups, r, *n);
                }
            }
            cmd.arg(sums.len());
            for (f, n) in &sums {
                cmd.arg(*f).arg(*n);
            }
            cmd.arg(rollups.len());
            for (r, n) in &rollups {
                cmd.arg(r).arg(*n);
            }
        }
        for d in &days {
            cmd.arg(*d);
        }
        cmd
    }

    pub(super) async fn read_range(
        &self,
        code: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<StoredClick>> {
        let mut conn = self.conn();
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

/// A click script's answer for one link's clicks.
pub(super) enum Written {
    /// Every click under its own (proposed) id: how many (`CLICKS_SUMMED`'s usual answer).
    Own(usize),
    /// Each click's entry id (a re-keyed one's is the id Redis chose); none: not written.
    Ids(Vec<String>),
}

impl redis::FromRedisValue for Written {
    fn from_redis_value(v: Value) -> Result<Self, redis::ParsingError> {
        match v {
            Value::Int(n) => Ok(Written::Own(usize::try_from(n).map_err(|_| {
                redis::ParsingError::from(format!("a click script answered {n} clicks"))
            })?)),
            v => Ok(Written::Ids(Vec::<String>::from_redis_value(v)?)),
        }
    }
}

/// The writer tag in a proposed entry id (its sequence part's bits from 32 up), in hex: the
/// click scripts keep each writer's last id under it.
fn writer_tag(e: EntryId) -> String {
    format!("{:x}", e.seq >> 32)
}

/// Adds `n` to `key`'s amount in a short list of distinct keys (a group has a few dozen).
fn add_to<K: PartialEq>(sums: &mut Vec<(K, u64)>, key: K, n: u64) {
    match sums.iter_mut().find(|(k, _)| *k == key) {
        Some((_, m)) => *m += n,
        None => sums.push((key, n)),
    }
}

/// A link's clicks, written, are known by the ids they were proposed under, re-keyed or not: a
/// re-keyed click's entry keeps that id in `rid` and the link's `writers` hash maps it to the
/// entry (`get_click`, `read_clicks`). So a click has one id wherever it went first: a redirect
/// answered from the spool hands out the proposed id before any re-key can happen.
fn own_ids(out: &mut [EntryId], idx: &[usize], clicks: &[NewClick]) {
    for &i in idx {
        out[i] = clicks[i].entry;
    }
}

/// A click log entry holds one field, `i`: the click as `key=value` items joined by U+001F,
/// `bot=1`, `pv` (preview app), `sus=1`, `v` (visitor), then each dimension under its
/// `Dimension::key`; empty values are left out. One field instead of one per item: Redis reads,
/// stores and logs one argument per click instead of up to twenty (entries written before kept
/// their items as fields of their own, and read the same). A U+001F inside a value becomes a
/// space. The click scripts name the field themselves.
const INFO_FIELD: &str = "i";
/// A re-keyed click's own id (`scripts::writers!`'s `rekey`), where it is not the entry's.
const CLICK_ID_FIELD: &str = "cid";
const SEPARATOR: char = '\u{1f}';

pub(super) fn entry_line(c: &ClickInfo) -> String {
    let mut line = String::with_capacity(160);
    let mut item = |key: &str, value: &str| {
        if value.is_empty() {
            return;
        }
        if !line.is_empty() {
            line.push(SEPARATOR);
        }
        line.push_str(key);
        line.push('=');
        if value.contains(SEPARATOR) {
            line.extend(value.chars().map(|ch| if ch == SEPARATOR { ' ' } else { ch }));
        } else {
            line.push_str(value);
        }
    };
    item("bot", if c.bot { "1" } else { "" });
    item("pv", &c.preview);
    item("sus", if c.suspicious { "1" } else { "" });
    item("v", &c.visitor);
    for (d, v) in c.dims.iter() {
        item(d.key(), v);
    }
    line
}

/// One `key=value` item of an entry (or one field of an older entry) into `info`.
fn read_item(info: &mut ClickInfo, key: &str, value: String) {
    match key {
        "bot" => info.bot = value == "1",
        "pv" => info.preview = value,
        "sus" => info.suspicious = value == "1",
        "v" => info.visitor = value,
        key => {
            if let Some(d) = Dimension::from_key(key) {
                info.dims.set(d, value);
            }
        }
    }
}

pub(super) fn click_from_entry(id: &str, fields: &HashMap<String, Value>) -> Option<StoredClick> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        _ => String::new(),
    };
    let mut info = ClickInfo::default();
    for (k, v) in fields {
        if k == INFO_FIELD {
            for item in text(v).split(SEPARATOR) {
                if let Some((key, value)) = item.split_once('=') {
                    read_item(&mut info, key, value.to_owned());
                }
            }
        } else {
            read_item(&mut info, k, text(v));
        }
    }
    // A re-keyed entry names the click's own id in `cid` (the id its redirect handed out, and
    // the time it was made); one re-keyed by an earlier version is known by its entry id.
    let own = fields.get(CLICK_ID_FIELD).map(text).and_then(|c| parse_stream_id(&c));
    Some(StoredClick {
        entry: own.or_else(|| parse_stream_id(id))?,
        info,
    })
}

#[async_trait::async_trait]
impl ClickLog for RedisStore {
    fn keep_clicks_for_at_least(&self, days: u32) {
        let ms = u64::from(days).saturating_mul(86_400_000);
        let before = self
            .click_retention_ms
            .fetch_max(ms, std::sync::atomic::Ordering::Relaxed);
        if ms > before {
            tracing::warn!(
                days,
                "a campaign's attribution window is longer than click_retention_days: this process keeps clicks that long"
            );
        }
    }

    /// Unbounded here: the click writer and the spool's replayer set the deadline.
    async fn write_clicks(&self, clicks: &[NewClick]) -> Result<Vec<EntryId>> {
        self.write_clicks_retrying(clicks).await
    }

    /// The click by the id its redirect handed out; a click re-keyed on replay (stored under
    /// an id Redis chose) is found through its writer's index, and keeps its own id and time.
    async fn get_click(&self, code: &str, entry: EntryId) -> Result<Option<StoredClick>> {
        let id = stream_id(entry);
        if let Some(click) = self.read_range(code, &id, &id, 1).await?.pop() {
            return Ok(Some(click));
        }
        let stored: Option<String> = self
            .conn()
            .hget(self.link_key(code, "writers"), format!("r|{id}"))
            .await
            .map_err(failed("Failed to read a re-keyed click's id from Redis"))?;
        let Some(stored) = stored else { return Ok(None) };
        Ok(self
            .read_range(code, &stored, &stored, 1)
            .await?
            .pop()
            .map(|click| StoredClick { entry, ..click }))
    }

    async fn read_clicks(&self, code: &str, after: Option<EntryId>, limit: usize) -> Result<Vec<StoredClick>> {
        let start = match after {
            // A re-keyed click's id names its proposed place: the page goes on after its entry.
            Some(a) => {
                let id = stream_id(a);
                let moved: Option<String> = self
                    .conn()
                    .hget(self.link_key(code, "writers"), format!("r|{id}"))
                    .await
                    .map_err(failed("Failed to read a re-keyed click's id from Redis"))?;
                format!("({}", moved.unwrap_or(id))
            }
            None => "-".to_owned(),
        };
        self.read_range(code, &start, "+", limit).await
    }
}

impl RedisStore {
    /// Writes a click group, again after connection errors (the script skips what is stored).
    async fn write_clicks_retrying(&self, clicks: &[NewClick]) -> Result<Vec<EntryId>> {
        let mut last_err = None;
        for attempt in 0..CLICK_WRITE_TRIES {
            match self.invoke_clicks(clicks).await {
                Ok(ids) => return Ok(ids),
                Err(e) if is_noscript(&e) => {
                    // Redis restarted or flushed its script cache; load and write again.
                    self.load_scripts().await?;
                    last_err = Some(e);
                }
                // Not this process's store: no try will do (`conn::Foreign`).
                Err(e) if conn::Foreign::is_refusal(&e) => return Err(failed("Failed to write clicks to Redis")(e)),
                Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => {
                    crate::telemetry::warn_limited!(attempt, error = %e, "click batch write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(20 * (attempt as u64 + 1))).await;
                    last_err = Some(e);
                }
                Err(e) => return Err(failed("Failed to write clicks to Redis")(e)),
            }
        }
        Err(match last_err {
            Some(e) => failed("Failed to write clicks to Redis")(e),
            None => StoreError::corrupt("no attempt made to write clicks"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)]) -> HashMap<String, Value> {
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::BulkString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn a_click_reads_back_from_its_one_field_entry() {
        let info = ClickInfo {
            bot: false,
            preview: String::new(),
            suspicious: true,
            visitor: "ab12".into(),
            dims: crate::domain::Dimensions::default()
                .with(Dimension::Device, "mobile")
                .with(Dimension::Referrer, "l.instagram.com")
                .with(Dimension::Source, "qr\u{1f}x=y"),
        };
        let line = entry_line(&info);
        let read = click_from_entry("1700000000000-5", &entry(&[(INFO_FIELD, &line)])).unwrap();
        let mut expected = info.clone();
        expected.dims.set(Dimension::Source, "qr x=y");
        assert_eq!(read.info, expected);
        assert_eq!(
            read.entry,
            EntryId {
                ms: 1_700_000_000_000,
                seq: 5
            }
        );
    }

    #[test]
    fn a_bot_entry_and_an_entry_of_the_older_form_read_the_same() {
        let bot = ClickInfo {
            bot: true,
            preview: "whatsapp".into(),
            ..ClickInfo::default()
        };
        let read = click_from_entry("1-0", &entry(&[(INFO_FIELD, &entry_line(&bot))])).unwrap();
        assert_eq!(read.info, bot);
        // Entries written before kept each item as a field of its own, and a re-keyed one its `rid`.
        let older = entry(&[("v", "ab12"), ("d", "mobile"), ("rid", "5-1")]);
        let read = click_from_entry("1-0", &older).unwrap();
        assert_eq!(
            read.entry,
            EntryId { ms: 1, seq: 0 },
            "re-keyed by an earlier version, which handed out the entry id"
        );
        assert_eq!(read.info.visitor, "ab12");
        assert_eq!(read.info.dims.get(Dimension::Device), "mobile");
        assert!(!read.info.bot);
        let rekeyed = entry(&[("rid", "5-1"), ("cid", "5-1"), (INFO_FIELD, "v=ab12")]);
        let read = click_from_entry("9-0", &rekeyed).unwrap();
        assert_eq!(
            read.entry,
            EntryId { ms: 5, seq: 1 },
            "a re-keyed click reads as its own id"
        );
        assert_eq!(read.info.visitor, "ab12");
    }
}
