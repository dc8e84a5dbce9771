//! Reading the click and conversion streams with a consumer group, for `kolink tail`.
//!
//! Every link's click stream (`kl:{<code>}:clicks`) and the conversion log (`kl:{conv}:log`)
//! get the group (`XGROUP CREATE … 0 MKSTREAM`: from the first entry kept). A reader takes
//! entries with `XREADGROUP` (one pipeline per shard over every stream), hands them on, then
//! acknowledges them (`XACK`); what it took and did not acknowledge (it stopped in between) is
//! delivered to the same consumer again (`XREADGROUP … 0`), and what a consumer that never came
//! back left idle is claimed by another (`XAUTOCLAIM`), so a warehouse gets every entry at
//! least once.

use redis::Value;

use super::{clicks::click_from_entry, failed, parse_stream_id, RedisStore};
use crate::domain::{Conversion, StoredClick};
use crate::store::{Result, StoreError};

/// One stream the reader follows.
#[derive(Debug, Clone)]
pub enum TailStream {
    /// A link's clicks: its code and numeric id (for click ids).
    Clicks {
        code: String,
        link_id: u64,
    },
    Conversions,
}

/// What one read gave: each stream's entries, with the entry ids to acknowledge.
#[derive(Debug, Default)]
pub struct Taken {
    pub clicks: Vec<(usize, StoredClick)>,
    pub conversions: Vec<Conversion>,
    acks: Vec<(usize, String)>,
}

impl Taken {
    pub fn is_empty(&self) -> bool {
        self.acks.is_empty()
    }
}

impl RedisStore {
    fn tail_key(&self, s: &TailStream) -> String {
        match s {
            TailStream::Clicks { code, .. } => self.link_key(code, "clicks"),
            TailStream::Conversions => self.conv("log"),
        }
    }

    /// Links created after the link id `after`, oldest first: (code, id).
    pub async fn links_after(&self, after: u64) -> Result<Vec<(String, u64)>> {
        let mut conn = self.conn();
        redis::cmd("ZRANGEBYSCORE")
            .arg(self.meta("links:idx"))
            .arg(format!("({after}"))
            .arg("+inf")
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(failed("Failed to list links from Redis"))
    }

    /// One command per stream, written by `add` for the stream's key; each command's answer,
    /// or its error as its value.
    async fn per_stream(
        &self,
        streams: &[TailStream],
        what: &'static str,
        add: impl Fn(&mut redis::Pipeline, &str),
    ) -> Result<Vec<Value>> {
        let mut spread = self.redis.spread().keeping_errors();
        for s in streams {
            let key = self.tail_key(s);
            add(spread.on(&key), &key);
        }
        self.redis.run(spread, false).await.map_err(failed(what))
    }

    /// Creates `group` on each stream that lacks it, from the stream's first entry.
    pub async fn create_groups(&self, group: &str, streams: &[TailStream]) -> Result<()> {
        const WHAT: &str = "Failed to create a consumer group";
        let values = self
            .per_stream(streams, WHAT, |pipe, key| {
                pipe.cmd("XGROUP")
                    .arg("CREATE")
                    .arg(key)
                    .arg(group)
                    .arg("0")
                    .arg("MKSTREAM");
            })
            .await?;
        errors_but("BUSYGROUP", values, WHAT)
    }

    /// Moves to `consumer` the entries other consumers of `group` took and have not
    /// acknowledged for `idle` (a reader that stopped for good), up to `count` per stream;
    /// `take(.., again: true)` then delivers them.
    pub async fn claim_idle(
        &self,
        group: &str,
        consumer: &str,
        streams: &[TailStream],
        idle: std::time::Duration,
        count: usize,
    ) -> Result<()> {
        const WHAT: &str = "Failed to claim idle entries";
        let values = self
            .per_stream(streams, WHAT, |pipe, key| {
                pipe.cmd("XAUTOCLAIM")
                    .arg(key)
                    .arg(group)
                    .arg(consumer)
                    .arg(idle.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(count)
                    .arg("JUSTID");
            })
            .await?;
        // A group lost with a failover is made again by the next `take`.
        errors_but("NOGROUP", values, WHAT)
    }

    /// Up to `count` entries of each stream for `consumer`: those it took before and did not
    /// acknowledge (`again`), or new ones. A stream that lost the group (a failover before it
    /// reached a replica) gets it again, from its first entry, and is read next time.
    pub async fn take(
        &self,
        group: &str,
        consumer: &str,
        streams: &[TailStream],
        count: usize,
        again: bool,
    ) -> Result<Taken> {
        const WHAT: &str = "Failed to read streams from Redis";
        let values = self
            .per_stream(streams, WHAT, |pipe, key| {
                pipe.cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(group)
                    .arg(consumer)
                    .arg("COUNT")
                    .arg(count)
                    .arg("STREAMS")
                    .arg(key)
                    .arg(if again { "0" } else { ">" });
            })
            .await?;
        let mut lost = Vec::new();
        let mut replies = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            match v {
                Value::ServerError(e) if e.code() == "NOGROUP" => {
                    lost.push(streams[i].clone());
                    replies.push(None);
                }
                Value::ServerError(e) => return Err(failed(WHAT)(e.into())),
                v => replies.push(
                    <Option<redis::streams::StreamReadReply> as redis::FromRedisValue>::from_redis_value(v)
                        .map_err(|e| failed(WHAT)(e.into()))?,
                ),
            }
        }
        if !lost.is_empty() {
            self.create_groups(group, &lost).await?;
        }
        let mut taken = Taken::default();
        for (i, reply) in replies.into_iter().enumerate() {
            for key in reply.map(|r| r.keys).unwrap_or_default() {
                for e in key.ids {
                    match &streams[i] {
                        TailStream::Clicks { .. } => {
                            // An entry trimmed away after it was delivered reads as no fields.
                            if let Some(c) = click_from_entry(&e.id, &e.map).filter(|_| !e.map.is_empty()) {
                                taken.clicks.push((i, c));
                            }
                        }
                        TailStream::Conversions => match e.map.get("j") {
                            Some(Value::BulkString(j)) => taken.conversions.push(serde_json::from_slice(j)?),
                            Some(_) => {
                                return Err(StoreError::corrupt(format!("conversion entry {} is not JSON", e.id)))
                            }
                            None => {}
                        },
                    }
                    if parse_stream_id(&e.id).is_some() {
                        taken.acks.push((i, e.id));
                    }
                }
            }
        }
        Ok(taken)
    }

    /// Acknowledges what `taken` holds.
    pub async fn acknowledge(&self, group: &str, streams: &[TailStream], taken: &Taken) -> Result<()> {
        let mut spread = self.redis.spread();
        let mut i = 0;
        while i < taken.acks.len() {
            let stream = taken.acks[i].0;
            let key = self.tail_key(&streams[stream]);
            let cmd = spread.on(&key).cmd("XACK").arg(&key).arg(group);
            while i < taken.acks.len() && taken.acks[i].0 == stream {
                cmd.arg(&taken.acks[i].1);
                i += 1;
            }
        }
        self.redis
            .run(spread, false)
            .await
            .map_err(failed("Failed to acknowledge entries in Redis"))?;
        Ok(())
    }
}

/// Fails on the first command's error whose code is not `expected`.
fn errors_but(expected: &str, values: Vec<Value>, what: &'static str) -> Result<()> {
    for v in values {
        if let Value::ServerError(e) = v {
            if e.code() != expected {
                return Err(failed(what)(e.into()));
            }
        }
    }
    Ok(())
}
