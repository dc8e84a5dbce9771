//! Counters in Redis: a link's counters, rollups, visitors and insights, read over many links at once
//! for reports (`read_each`), and the pruning of old hours.

use chrono::{Datelike, NaiveDate};
use redis::{AsyncCommands, Value};

use super::{bulk, conn, failed, not_read_as, whole_score, RedisStore};
use crate::domain::DayInsights;
use crate::store::{Counters, Detail, LinkData, Result, StoreError};

impl RedisStore {
    /// Runs one read command per key, over many links' keys, and hands each reply to `each` in
    /// order, exactly one per key (or fails): on the bulk connections on one Redis (`bulk`),
    /// else through the client, a pipeline per shard. `add` adds the command of the `i`th key to a pipeline. An error
    /// reply fails the read (`what`), as does an error of `each`.
    pub(super) async fn read_each(
        &self,
        keys: &[String],
        mut add: impl FnMut(&mut redis::Pipeline, usize, &str),
        what: &'static str,
        mut each: impl FnMut(ReadReply<'_>) -> Result<()>,
    ) -> Result<()> {
        // Its own connections bypass `conn::Conn`: held to the store's identity here.
        if self.foreign.in_doubt() {
            self.redis.conn.confirm_identity().await.map_err(failed(what))?;
        }
        if self.foreign.is_foreign() {
            return Err(failed(what)(conn::Foreign::refusal()));
        }
        let Some(bulk) = &self.bulk else {
            let mut spread = self.redis.spread();
            for (i, key) in keys.iter().enumerate() {
                add(spread.on(key), i, key);
            }
            let replies = self.redis.run(spread, false).await.map_err(failed(what))?;
            for reply in &replies {
                each(ReadReply::Client(reply))?;
            }
            return Ok(());
        };
        let mut pipe = redis::pipe();
        for (i, key) in keys.iter().enumerate() {
            add(&mut pipe, i, key);
        }
        // `each`'s own error, carried out of the read that it stops.
        let mut refused = None;
        let read = bulk
            .read(&pipe.get_packed_pipeline(), pipe.len(), |reply| {
                each(ReadReply::Bulk(reply)).map_err(|e| {
                    refused = Some(e);
                    redis::RedisError::from((redis::ErrorKind::Client, "a reply was refused"))
                })
            })
            .await;
        match refused {
            Some(e) => Err(e),
            None => read.map_err(failed(what)),
        }
    }
}

/// One reply of `RedisStore::read_each`: decoded in place (`bulk`), or the client's value (a
/// cluster's).
#[derive(Clone, Copy)]
pub(super) enum ReadReply<'a> {
    Bulk(bulk::Reply<'a>),
    Client(&'a Value),
}

impl<'a> ReadReply<'a> {
    /// Each item of an array reply as bytes (`None` for a nil one); a nil reply has none, and
    /// any other reply is a fault.
    pub(super) fn each_item(self, mut each: impl FnMut(Option<&[u8]>) -> Result<()>) -> Result<()> {
        match self {
            ReadReply::Bulk(reply) => {
                let mut items = reply.items().ok_or_else(|| not_read_as("a list", "something else"))?;
                items.try_for_each(&mut each)
            }
            ReadReply::Client(Value::Array(items)) => items.iter().try_for_each(|item| match item {
                Value::Nil => each(None),
                item => each(Some(
                    value_bytes(item).ok_or_else(|| not_read_as("a list item", "something else"))?,
                )),
            }),
            ReadReply::Client(Value::Nil) => Ok(()),
            ReadReply::Client(_) => Err(not_read_as("a list", "something else")),
        }
    }

    /// A member's score (`ZSCORE`) as the whole number kolink's zsets are scored by; none, or
    /// any other reply, is a fault (members are never taken out of a link index).
    pub(super) fn score(self) -> Result<u64> {
        let score = match self {
            ReadReply::Bulk(reply) => reply.text().and_then(whole_score),
            // A RESP3 connection answers with a double.
            ReadReply::Client(Value::Double(d)) => {
                (*d >= 0.0 && d.fract() == 0.0 && *d < u64::MAX as f64).then_some(*d as u64)
            }
            ReadReply::Client(value) => value_bytes(value).and_then(whole_score),
        };
        score.ok_or_else(|| not_read_as("a listed member's score", "something else"))
    }

    /// A count (`SCARD`, `PFCOUNT`); any other reply is a fault.
    fn count(self) -> Result<u64> {
        let n = match self {
            ReadReply::Bulk(reply) => reply.int(),
            ReadReply::Client(Value::Int(n)) => Some(*n),
            ReadReply::Client(_) => None,
        };
        n.and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| not_read_as("a count", "something else"))
    }
}

/// Links per pipeline of `PRUNE_HOURS` calls. Redis runs what it reads of a pipeline before
/// it serves other clients, so a click waits behind a few calls at most. A day's prune of a
/// link looks its day up (well under a millisecond); a link's first reads all its rollups, about
/// 2 ms for four months of data, so the first run after an upgrade is the slow one.
const PRUNE_HOURS_LINKS: usize = 4;
/// Days before the first kept one that `PRUNE_HOURS` looks up: a link last pruned longer ago
/// (kolink stopped for that long) has its rollups read instead.
const PRUNE_HOURS_RECENT_DAYS: u64 = 14;
/// Link codes read from the index at a time by `prune_hours`.
const PRUNE_HOURS_PAGE: usize = 1_000;

#[async_trait::async_trait]
impl Counters for RedisStore {
    async fn bump_counter(&self, code: &str, field: &str) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic().hincr(self.link_key(code, "stats"), field, 1).ignore();
        for r in crate::counters::rollups(field) {
            pipe.hincr(self.link_key(code, "rollups"), r, 1).ignore();
        }
        let mut conn = self.conn();
        let _: () = pipe
            .query_async(&mut conn)
            .await
            .map_err(failed("Failed to count in Redis"))?;
        Ok(())
    }

    async fn put_insights(&self, code: &str, day: NaiveDate, insights: &DayInsights) -> Result<()> {
        let _: i64 = self
            .put_insights
            .key(self.link_key(code, "metrics"))
            .key(self.link_key(code, "rollups"))
            .arg(day.to_string())
            .arg(serde_json::to_string(insights)?)
            .invoke_async(&mut self.conn())
            .await
            .map_err(failed("Failed to store insights in Redis"))?;
        Ok(())
    }

    /// The day and its copy in the rollups together (`MULTI`: both keys in the link's slot).
    async fn remove_insights(&self, code: &str, day: NaiveDate) -> Result<bool> {
        let day = day.to_string();
        let (metrics, _copy): (u64, u64) = redis::pipe()
            .atomic()
            .hdel(self.link_key(code, "metrics"), &day)
            .hdel(self.link_key(code, "rollups"), format!("m|{day}"))
            .query_async(&mut self.conn())
            .await
            .map_err(failed("Failed to remove insights in Redis"))?;
        Ok(metrics > 0)
    }

    async fn link_data(&self, codes: &[String], detail: Detail) -> Result<Vec<LinkData>> {
        if codes.is_empty() {
            return Ok(vec![]);
        }
        // The rollups hold a copy of the metrics (`m|<day>`): one hash per link. With the full
        // map beside it, the two are read in one transaction (`MULTI`, the two `HGETALL`s,
        // `EXEC`), since a click's script writes both: between two plain reads Redis may run
        // another client's commands (it does, where a long pipeline arrives in several reads),
        // and a click would count in one map and not in the other. Each command's key names
        // its slot: `MULTI` and `EXEC` go with the link's (one slot, so no `CROSSSLOT`).
        let (maps, commands): (&[&str], &[&str]) = match detail {
            Detail::Rollups => (&["rollups"], &["HGETALL"]),
            Detail::Full | Detail::Range => (
                &["rollups", "rollups", "stats", "stats"],
                &["MULTI", "HGETALL", "HGETALL", "EXEC"],
            ),
        };
        let keys: Vec<String> = codes
            .iter()
            .flat_map(|code| maps.iter().map(move |map| self.link_key(code, map)))
            .collect();
        // The replies are read as they come, field by field: a report over 10,000 links gets
        // about 130,000 values.
        let mut data = LinkDataReplies::new(detail, codes.len());
        let add = |pipe: &mut redis::Pipeline, i: usize, key: &str| {
            match commands[i % commands.len()] {
                "HGETALL" => pipe.hgetall(key),
                other => pipe.cmd(other),
            };
        };
        self.read_each(&keys, add, "Failed to read counters from Redis", |reply| {
            data.take_reply(reply)
        })
        .await?;
        Ok(data.out)
    }

    async fn prune_hours(&self, keep_from: NaiveDate) -> Result<u64> {
        let keep = keep_from.to_string();
        // A whole pass reads every link (about 6 s of Redis for 100,000 links with nothing to
        // prune); one that was done for this day or a later one, by any process, is not
        // repeated at each start. The day is a score that only rises (`ZADD GT`), so a process
        // that finishes a pass for an earlier day (a longer retention, a clock behind) does not
        // bring the next whole pass back.
        let pruned = self.meta("hours:pruned");
        let day = keep_from.num_days_from_ce();
        let done: Option<f64> = self
            .conn()
            .zscore(&pruned, "pass")
            .await
            .map_err(failed("Failed to read when hours were last pruned"))?;
        if done.is_some_and(|d| d >= f64::from(day)) {
            return Ok(0);
        }
        // The days a link whose last prune was a few days ago has left: looked up, not searched.
        let recent: Vec<String> = (1..=PRUNE_HOURS_RECENT_DAYS)
            .rev()
            .filter_map(|d| keep_from.checked_sub_days(chrono::Days::new(d)))
            .map(|d| d.to_string())
            .collect();
        let prefixes = crate::counters::hourly_prefixes();
        let (mut removed, mut after) = (0, None);
        loop {
            // The index a page at a time: listing 100,000 links at once holds Redis for 40 ms.
            let page = self.scan_zset(&self.meta("links:idx"), after, PRUNE_HOURS_PAGE).await?;
            let Some((last, _)) = page.last() else {
                let _: () = redis::cmd("ZADD")
                    .arg(&pruned)
                    .arg("GT")
                    .arg(day)
                    .arg("pass")
                    .query_async(&mut self.conn())
                    .await
                    .map_err(failed("Failed to note that hours were pruned"))?;
                return Ok(removed);
            };
            after = Some(last.clone());
            for chunk in page.chunks(PRUNE_HOURS_LINKS) {
                let run = || {
                    let mut spread = self.redis.spread();
                    for (_, code) in chunk {
                        let stats = self.link_key(code, "stats");
                        let mut inv = self.prune_hours.prepare_invoke();
                        inv.key(&stats)
                            .key(self.link_key(code, "rollups"))
                            .key(self.link_key(code, "hours_from"))
                            .arg(&keep)
                            .arg(recent.len())
                            .arg(&recent)
                            .arg(&prefixes);
                        spread.on(&stats).invoke_script(&inv);
                    }
                    self.run_spread::<u64>(spread, false)
                };
                let counts = self
                    .with_scripts(run)
                    .await
                    .map_err(failed("Failed to prune old hourly counters in Redis"))?;
                removed += counts.iter().sum::<u64>();
            }
        }
    }

    async fn unique_visitors(&self, pairs: &[(String, NaiveDate)]) -> Result<Vec<u64>> {
        if pairs.is_empty() {
            return Ok(vec![]);
        }
        // Per link and day: the exact set's size, then the estimate's past it.
        let keys: Vec<String> = pairs
            .iter()
            .flat_map(|(code, day)| {
                [
                    self.link_key(code, &format!("uvs:{day}")),
                    self.link_key(code, &format!("uv:{day}")),
                ]
            })
            .collect();
        let count = |pipe: &mut redis::Pipeline, i: usize, key: &str| match i % 2 {
            0 => {
                pipe.scard(key);
            }
            _ => {
                pipe.cmd("PFCOUNT").arg(key);
            }
        };
        let mut counts = Vec::with_capacity(keys.len());
        self.read_each(&keys, count, "Failed to count visitors in Redis", |reply| {
            counts.push(reply.count()?);
            Ok(())
        })
        .await?;
        Ok(counts.chunks(2).map(|c| c.iter().sum()).collect())
    }
}

/// A counter as Redis writes it, as `str::parse` reads it; up to 18 plain digits (every count of
/// a report, about 60,000 of them over 10,000 links) are read without it.
fn parse_count(v: &[u8]) -> Option<i64> {
    if !v.is_empty() && v.len() <= 18 && v.iter().all(u8::is_ascii_digit) {
        return Some(v.iter().fold(0, |n, &d| n * 10 + i64::from(d - b'0')));
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The fields and values of a hash as Redis answered it (`HGETALL`: a flat array in RESP2, a
/// map in RESP3). An error reply is the command's failure.
/// A string reply's bytes (bulk or simple); `None` for any other value.
fn value_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn hash_pairs(reply: &Value) -> Result<Vec<(&[u8], &[u8])>> {
    let pair = |k, v| Some((value_bytes(k)?, value_bytes(v)?));
    match reply {
        Value::Array(items) => Ok(items.chunks_exact(2).filter_map(|kv| pair(&kv[0], &kv[1])).collect()),
        Value::Map(pairs) => Ok(pairs.iter().filter_map(|(k, v)| pair(k, v)).collect()),
        Value::Nil => Ok(Vec::new()),
        Value::ServerError(e) => Err(failed("Failed to read counters from Redis")(redis::RedisError::from(
            e.clone(),
        ))),
        other => Err(StoreError::Corrupt(anyhow::anyhow!("a hash read back as {other:?}"))),
    }
}

/// `link_data`'s answer, built from its replies in the order they were asked for: per link its
/// rollups, or (when the detail has a full map) the transaction that reads its rollups and its
/// full map: `OK`, `QUEUED` twice, then `EXEC`'s two hashes.
struct LinkDataReplies {
    detail: Detail,
    out: Vec<LinkData>,
    /// The link whose rollups were read, waiting for its full map.
    open: Option<LinkData>,
    /// Replies taken so far: where the next falls in its link's transaction.
    taken: usize,
}

impl LinkDataReplies {
    fn new(detail: Detail, links: usize) -> Self {
        LinkDataReplies {
            detail,
            out: Vec::with_capacity(links),
            open: None,
            taken: 0,
        }
    }

    /// The next reply: a hash, or a part of a link's transaction.
    fn take_reply(&mut self, reply: ReadReply<'_>) -> Result<()> {
        let step = self.taken;
        self.taken += 1;
        if !self.detail.full() {
            return self.take_hash(reply);
        }
        let expected: &[u8] = match step % 4 {
            0 => b"OK",
            1 | 2 => b"QUEUED",
            _ => return self.take_exec(reply),
        };
        let status = match reply {
            ReadReply::Bulk(reply) => reply.status(),
            ReadReply::Client(Value::Okay) => Some(&b"OK"[..]),
            ReadReply::Client(Value::SimpleString(s)) => Some(s.as_bytes()),
            ReadReply::Client(_) => None,
        };
        match status == Some(expected) {
            true => Ok(()),
            false => Err(not_read_as("a step of a transaction", "something else")),
        }
    }

    /// `EXEC`'s reply: the link's rollups and full map.
    fn take_exec(&mut self, reply: ReadReply<'_>) -> Result<()> {
        let not_two = || not_read_as("a transaction's two hashes", "something else");
        match reply {
            ReadReply::Bulk(reply) => {
                let mut hashes = reply.replies().ok_or_else(not_two)?;
                match (hashes.next(), hashes.next(), hashes.next()) {
                    (Some(rollups), Some(full), None) => {
                        self.take_hash(ReadReply::Bulk(rollups))?;
                        self.take_hash(ReadReply::Bulk(full))
                    }
                    _ => Err(not_two()),
                }
            }
            ReadReply::Client(Value::Array(hashes)) => match hashes.as_slice() {
                [rollups, full] => {
                    self.take_hash(ReadReply::Client(rollups))?;
                    self.take_hash(ReadReply::Client(full))
                }
                _ => Err(not_two()),
            },
            ReadReply::Client(_) => Err(not_two()),
        }
    }

    /// The next hash reply.
    fn take_hash(&mut self, reply: ReadReply<'_>) -> Result<()> {
        match reply {
            ReadReply::Bulk(reply) => {
                // An error `EXEC` holds (a whole reply that is one fails the read before this).
                if let Some(e) = reply.error() {
                    return Err(failed("Failed to read counters from Redis")(e));
                }
                let (n, pairs) = reply.pairs().ok_or_else(|| not_read_as("a hash", "something else"))?;
                self.take(n, pairs);
            }
            ReadReply::Client(value) => {
                let pairs = hash_pairs(value)?;
                self.take(pairs.len(), pairs.into_iter());
            }
        }
        Ok(())
    }

    /// The next hash reply: its `n` fields and their values.
    fn take<'a>(&mut self, n: usize, pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) {
        if let Some(mut data) = self.open.take() {
            data.full = Self::counts(n, pairs);
            self.out.push(data);
            return;
        }
        let mut data = LinkData {
            rollups: Vec::with_capacity(n),
            ..LinkData::default()
        };
        for (k, v) in pairs {
            if self.detail == Detail::Range && crate::counters::is_all_time(k) {
                continue;
            }
            if let Some(day) = k.strip_prefix(b"m|") {
                let day = std::str::from_utf8(day).ok().and_then(|d| d.parse().ok());
                if let (Some(day), Ok(m)) = (day, serde_json::from_slice(v)) {
                    data.insights.insert(day, m);
                }
            } else if let (Ok(k), Some(n)) = (std::str::from_utf8(k), parse_count(v)) {
                data.rollups.push((k.to_owned(), n));
            }
        }
        match self.detail.full() {
            true => self.open = Some(data),
            false => self.out.push(data),
        }
    }

    fn counts<'a>(n: usize, pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<(String, i64)> {
        let mut full = Vec::with_capacity(n);
        for (k, v) in pairs {
            if let (Ok(k), Some(n)) = (std::str::from_utf8(k), parse_count(v)) {
                full.push((k.to_owned(), n));
            }
        }
        full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_members_score_reads_as_its_whole_number_and_anything_else_is_a_fault() {
        let score = |v: Value| ReadReply::Client(&v).score().ok();
        assert_eq!(score(Value::BulkString(b"11000".to_vec())), Some(11_000));
        assert_eq!(score(Value::Double(11_000.0)), Some(11_000));
        for v in [
            Value::Nil,
            Value::BulkString(b"1.5".to_vec()),
            Value::BulkString(b"-3".to_vec()),
            Value::Double(1.5),
            Value::Double(-3.0),
            Value::Int(7),
        ] {
            assert_eq!(score(v.clone()), None, "{v:?}");
        }
    }

    #[test]
    fn counts_read_as_str_parse_reads_them() {
        for v in [
            "0",
            "7",
            "42",
            "-3",
            "+5",
            "123456789012345678",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "",
            "-",
            "1.5",
            "x",
            "12a",
            " 1",
        ] {
            assert_eq!(parse_count(v.as_bytes()), v.parse::<i64>().ok(), "{v:?}");
        }
        assert_eq!(parse_count(b"\xff"), None);
    }

    #[test]
    fn a_hash_reads_the_same_in_resp2_and_resp3_and_an_error_reply_fails_the_read() {
        let pairs = |reply: Value| {
            hash_pairs(&reply).map(|p| p.into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect::<Vec<_>>())
        };
        let expected = vec![
            (b"c|2026-12-05".to_vec(), b"3".to_vec()),
            (b"h|08".to_vec(), b"1".to_vec()),
        ];
        let resp2 =
            redis::parse_redis_value(b"*4\r\n$12\r\nc|2026-12-05\r\n$1\r\n3\r\n$4\r\nh|08\r\n$1\r\n1\r\n").unwrap();
        assert_eq!(pairs(resp2).unwrap(), expected);
        let resp3 =
            redis::parse_redis_value(b"%2\r\n$12\r\nc|2026-12-05\r\n$1\r\n3\r\n$4\r\nh|08\r\n$1\r\n1\r\n").unwrap();
        assert_eq!(pairs(resp3).unwrap(), expected);
        assert_eq!(pairs(Value::Nil).unwrap(), vec![]);
        let wrong = redis::parse_redis_value(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
            .unwrap();
        assert!(matches!(pairs(wrong), Err(StoreError::Corrupt(_))));
        assert!(matches!(pairs(Value::Int(3)), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn a_links_two_maps_are_read_from_its_transaction_and_nothing_else_passes_for_one() {
        let value = |raw: &[u8]| redis::parse_redis_value(raw).unwrap();
        let rollups = b"*2\r\n$12\r\nc|2026-12-05\r\n$1\r\n3\r\n";
        let full = b"%1\r\n$15\r\nc|2026-12-05|08\r\n$1\r\n3\r\n";
        let exec = value(&[&b"*2\r\n"[..], rollups, full].concat());
        let read = |replies: &[Value]| {
            let mut data = LinkDataReplies::new(Detail::Range, 1);
            replies
                .iter()
                .try_for_each(|r| data.take_reply(ReadReply::Client(r)))
                .map(|()| data.out)
        };
        let queued = Value::SimpleString("QUEUED".into());
        let out = read(&[Value::Okay, queued.clone(), queued.clone(), exec.clone()]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].rollups, [("c|2026-12-05".to_owned(), 3)]);
        assert_eq!(out[0].full, [("c|2026-12-05|08".to_owned(), 3)]);
        // A step out of place, a transaction of one hash, or hashes outside one: a fault.
        for wrong in [
            vec![queued.clone(), Value::Okay, queued.clone(), exec.clone()],
            vec![
                Value::Okay,
                queued.clone(),
                queued.clone(),
                value(&[&b"*1\r\n"[..], rollups].concat()),
            ],
            vec![Value::Okay, queued.clone(), queued.clone(), value(rollups)],
            vec![Value::Okay, queued.clone(), queued, Value::Nil],
        ] {
            assert!(matches!(read(&wrong), Err(StoreError::Corrupt(_))), "{wrong:?}");
        }
    }
}
