//! The Redis store: production and scale-out.
//!
//! Every key starts with a configurable prefix (`kl` by default). Keys that one click or one
//! conversion touches carry the link code as a hash tag, so each script's keys live in one slot
//! of a Redis Cluster; management records share the `{meta}` slot and the conversion log the
//! `{conv}` slot.
//!
//! | key                               | type   | holds                                             |
//! |-----------------------------------|--------|---------------------------------------------------|
//! | `kl:{meta}:secret:<name>`         | string | admin token hash, visitor-hash key                |
//! | `kl:{meta}:<kinds>`               | hash   | campaign / KOL / shop id → JSON record            |
//! | `kl:{meta}:<kinds>:idx`           | zset   | id scored by creation sequence (newest-first lists)|
//! | `kl:{meta}:seq:<kind>`            | string | creation sequence per kind; `link` gives link ids |
//! | `kl:{meta}:links`                 | hash   | link code → JSON record                           |
//! | `kl:{meta}:links:idx`             | zset   | link code scored by numeric link id               |
//! | `kl:{meta}:link_ids`              | hash   | numeric link id → code (resolves click ids)       |
//! | `kl:{meta}:coupons`               | hash   | upper-cased coupon → code (coupons are unique)    |
//! | `kl:{meta}:campaign:<id>:links`   | zset   | the campaign's link codes by link id              |
//! | `kl:{meta}:kol:<id>:links`        | zset   | the KOL's link codes by link id                   |
//! | `kl:{<code>}:clicks`              | stream | the link's click log; entry id = click time + seq |
//! | `kl:{<code>}:stats`               | hash   | the link's counters (`crate::counters`)           |
//! | `kl:{<code>}:uv:<YYYY-MM-DD>`     | HLL    | the link's unique visitors of that UTC day        |
//! | `kl:{<code>}:metrics`             | hash   | day → JSON platform metrics                       |
//! | `kl:{<code>}:orders`              | set    | conversion ids already added to the counters      |
//! | `kl:{conv}:log`                   | stream | every accepted conversion, field `j` = JSON       |
//! | `kl:{conv}:idem`                  | hash   | idempotency key → entry id in the log             |
//!
//! Scripts: `CREATE_RECORD`, `CREATE_LINKS`, `UPDATE_LINK` keep the `{meta}` indexes in step;
//! `CLICKS` writes a group of one link's clicks (XADD + HINCRBY + PFADD per click, atomically);
//! `SAVE_CONVERSION` and `APPLY_CONVERSION` make webhooks idempotent.
//!
//! Click entries get ids chosen by kolink (see `crate::clicks`), so writing a batch again after
//! a dropped connection finds each entry already there and counts nothing twice. When another
//! instance wrote a later id to the same stream first, the entry falls back to a Redis-chosen id
//! and remembers the proposed one in its `rid` field, so that a retry finds it too.
//!
//! Production Redis needs persistence: `appendonly yes` (AOF, `appendfsync everysec` or
//! `always`), or a click answered with `302` may be lost when Redis restarts.

mod clicks;
mod scripts;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script, Value};

use super::{ConversionFilter, Kind, LinkConflict, LinkData, LinkFilter, NewClick, Page, Result, Store};
use crate::domain::{Conversion, DayMetrics, Link, StoredClick, StreamId};
use scripts::*;

/// How many times a click batch is written again after a connection error before giving up.
const CLICK_WRITE_TRIES: usize = 5;

/// The longest a click batch may take, retries included, before its redirects are refused.
const CLICK_WRITE_DEADLINE: Duration = Duration::from_secs(8);

pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    click_retention: Duration,
    create_record: Script,
    create_links: Script,
    update_link: Script,
    clicks: Script,
    save_conversion: Script,
    apply_conversion: Script,
}

impl RedisStore {
    /// Connects (the connection reconnects by itself later) and loads the scripts.
    pub async fn connect(url: &str, prefix: &str, click_retention: Duration) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("Failed to parse the Redis URL")?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .context("Failed to connect to Redis")?;
        let store = Self {
            conn,
            prefix: prefix.to_owned(),
            click_retention,
            create_record: Script::new(CREATE_RECORD),
            create_links: Script::new(CREATE_LINKS),
            update_link: Script::new(UPDATE_LINK),
            clicks: Script::new(CLICKS),
            save_conversion: Script::new(SAVE_CONVERSION),
            apply_conversion: Script::new(APPLY_CONVERSION),
        };
        store.load_scripts().await?;
        Ok(store)
    }

    async fn load_scripts(&self) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        for s in [&self.clicks, &self.create_links, &self.create_record, &self.update_link] {
            s.prepare_invoke()
                .load_async(&mut conn)
                .await
                .context("Failed to load a Redis script")?;
        }
        Ok(())
    }

    /// `kl:{meta}:<rest>`: management records.
    fn meta(&self, rest: &str) -> String {
        format!("{}:{{meta}}:{rest}", self.prefix)
    }

    /// `kl:{<code>}:<rest>`: a key of one link, in the link's slot.
    fn link_key(&self, code: &str, rest: &str) -> String {
        format!("{}:{{{code}}}:{rest}", self.prefix)
    }

    /// `kl:{conv}:<rest>`: the conversion log and its idempotency index.
    fn conv(&self, rest: &str) -> String {
        format!("{}:{{conv}}:{rest}", self.prefix)
    }

    fn kind_key(&self, kind: Kind) -> String {
        self.meta(kind.plural())
    }

    fn kind_seq(&self, kind: Kind) -> String {
        self.meta(&format!("seq:{}", kind.plural()))
    }

    fn links_for(&self, filter: &LinkFilter) -> String {
        match (&filter.campaign, &filter.kol) {
            (Some(c), _) => self.meta(&format!("campaign:{c}:links")),
            (None, Some(k)) => self.meta(&format!("kol:{k}:links")),
            (None, None) => self.meta("links:idx"),
        }
    }

    /// Newest-first page of members of a zset scored by sequence, with a numeric cursor.
    async fn page_ids(&self, zset: &str, cursor: Option<&str>, limit: usize) -> Result<(Vec<String>, Option<String>)> {
        let max = match cursor {
            Some(c) => format!("({}", c.parse::<u64>().context("Failed to read the cursor")?),
            None => "+inf".to_owned(),
        };
        let mut conn = self.conn.clone();
        let rows: Vec<(String, f64)> = conn
            .zrevrangebyscore_limit_withscores(zset, max, "-inf", 0, limit as isize)
            .await
            .context("Failed to list from Redis")?;
        let next = if rows.len() == limit {
            rows.last().map(|(_, s)| (*s as u64).to_string())
        } else {
            None
        };
        Ok((rows.into_iter().map(|(id, _)| id).collect(), next))
    }

    fn minid(&self) -> String {
        let cutoff = Utc::now().timestamp_millis() - self.click_retention.as_millis() as i64;
        cutoff.max(0).to_string()
    }
}

fn is_noscript(e: &redis::RedisError) -> bool {
    e.code() == Some("NOSCRIPT")
}

#[async_trait::async_trait]
impl Store for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .context("Failed to ping Redis")?;
        Ok(())
    }

    async fn init_secret(&self, name: &str, candidate: &str) -> Result<(String, bool)> {
        let key = self.meta(&format!("secret:{name}"));
        let mut conn = self.conn.clone();
        let set: bool = redis::cmd("SET")
            .arg(&key)
            .arg(candidate)
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await
            .context("Failed to store a secret")?
            .is_some();
        if set {
            return Ok((candidate.to_owned(), true));
        }
        let v: String = conn.get(&key).await.context("Failed to read a secret")?;
        Ok((v, false))
    }

    async fn create_record(&self, kind: Kind, id: &str, json: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let created: i64 = self
            .create_record
            .key(self.kind_key(kind))
            .key(format!("{}:idx", self.kind_key(kind)))
            .key(self.kind_seq(kind))
            .arg(id)
            .arg(json)
            .invoke_async(&mut conn)
            .await
            .context("Failed to create a record in Redis")?;
        Ok(created == 1)
    }

    async fn get_record(&self, kind: Kind, id: &str) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        Ok(conn
            .hget(self.kind_key(kind), id)
            .await
            .context("Failed to read a record from Redis")?)
    }

    async fn put_record(&self, kind: Kind, id: &str, json: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: () = conn
            .hset(self.kind_key(kind), id, json)
            .await
            .context("Failed to update a record in Redis")?;
        Ok(())
    }

    async fn list_records(&self, kind: Kind, cursor: Option<&str>, limit: usize) -> Result<Page<String>> {
        let (ids, next) = self
            .page_ids(&format!("{}:idx", self.kind_key(kind)), cursor, limit)
            .await?;
        if ids.is_empty() {
            return Ok(Page {
                items: vec![],
                next: None,
            });
        }
        let mut conn = self.conn.clone();
        let items: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.kind_key(kind))
            .arg(&ids)
            .query_async(&mut conn)
            .await
            .context("Failed to read records from Redis")?;
        Ok(Page {
            items: items.into_iter().flatten().collect(),
            next,
        })
    }

    async fn reserve_link_ids(&self, n: u64) -> Result<u64> {
        let mut conn = self.conn.clone();
        let last: u64 = conn
            .incr(self.meta("seq:link"), n)
            .await
            .context("Failed to reserve link ids")?;
        Ok(last + 1 - n)
    }

    async fn create_links(&self, links: &[Link]) -> Result<std::result::Result<(), LinkConflict>> {
        let mut inv = self.create_links.prepare_invoke();
        inv.key(self.meta("links"))
            .key(self.meta("link_ids"))
            .key(self.meta("coupons"))
            .key(self.meta("links:idx"));
        for l in links {
            inv.key(self.meta(&format!("campaign:{}:links", l.campaign)))
                .key(self.meta(&format!("kol:{}:links", l.kol)));
            inv.arg(l.code.as_str())
                .arg(l.id)
                .arg(coupon_key(l.coupon.as_deref()))
                .arg(serde_json::to_string(l)?);
        }
        let mut conn = self.conn.clone();
        let (what, which): (String, String) = inv
            .invoke_async(&mut conn)
            .await
            .context("Failed to create links in Redis")?;
        Ok(conflict(&what, which))
    }

    async fn update_link(&self, old: &Link, new: &Link) -> Result<std::result::Result<(), LinkConflict>> {
        let mut conn = self.conn.clone();
        let (what, which): (String, String) = self
            .update_link
            .key(self.meta("links"))
            .key(self.meta("coupons"))
            .arg(new.code.as_str())
            .arg(coupon_key(old.coupon.as_deref()))
            .arg(coupon_key(new.coupon.as_deref()))
            .arg(serde_json::to_string(new)?)
            .invoke_async(&mut conn)
            .await
            .context("Failed to update a link in Redis")?;
        Ok(conflict(&what, which))
    }

    async fn get_link(&self, code: &str) -> Result<Option<Link>> {
        let mut conn = self.conn.clone();
        let json: Option<String> = conn
            .hget(self.meta("links"), code)
            .await
            .context("Failed to read a link from Redis")?;
        json.map(|j| serde_json::from_str(&j).context("Failed to decode a stored link"))
            .transpose()
    }

    async fn link_code_by_id(&self, id: u64) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        Ok(conn
            .hget(self.meta("link_ids"), id)
            .await
            .context("Failed to read a link id from Redis")?)
    }

    async fn link_code_by_coupon(&self, coupon: &str) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        Ok(conn
            .hget(self.meta("coupons"), coupon_key(Some(coupon)))
            .await
            .context("Failed to read a coupon from Redis")?)
    }

    async fn list_links(&self, filter: &LinkFilter, cursor: Option<&str>, limit: usize) -> Result<Page<Link>> {
        // With both filters, page through the campaign's links and keep the KOL's.
        let zset = self.links_for(filter);
        let mut cursor = cursor.map(str::to_owned);
        let mut items = Vec::new();
        loop {
            let want = limit - items.len();
            let (codes, next) = self.page_ids(&zset, cursor.as_deref(), want.max(50)).await?;
            if codes.is_empty() {
                return Ok(Page { items, next: None });
            }
            let mut conn = self.conn.clone();
            let rows: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(self.meta("links"))
                .arg(&codes)
                .query_async(&mut conn)
                .await
                .context("Failed to read links from Redis")?;
            for json in rows.into_iter().flatten() {
                let link: Link = serde_json::from_str(&json).context("Failed to decode a stored link")?;
                if filter.kol.as_ref().is_some_and(|k| link.kol.as_str() != k) {
                    continue;
                }
                items.push(link);
                if items.len() == limit {
                    return Ok(Page {
                        next: Some(items.last().map(|l| l.id.to_string()).unwrap_or_default()),
                        items,
                    });
                }
            }
            match next {
                Some(n) => cursor = Some(n),
                None => return Ok(Page { items, next: None }),
            }
        }
    }

    async fn write_clicks(&self, clicks: &[NewClick]) -> Result<Vec<StreamId>> {
        // Redirects wait on this write: give up after a bounded time, so that an unreachable
        // Redis means a prompt 503 rather than tapping into a hanging page.
        tokio::time::timeout(CLICK_WRITE_DEADLINE, self.write_clicks_retrying(clicks))
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not store the clicks within {CLICK_WRITE_DEADLINE:?}"))?
    }

    async fn get_click(&self, code: &str, entry: StreamId) -> Result<Option<StoredClick>> {
        let mut clicks = self.read_range(code, &entry.to_string(), &entry.to_string(), 1).await?;
        Ok(clicks.pop())
    }

    async fn read_clicks(&self, code: &str, after: Option<StreamId>, limit: usize) -> Result<Vec<StoredClick>> {
        let start = match after {
            Some(a) => format!("({a}"),
            None => "-".to_owned(),
        };
        self.read_range(code, &start, "+", limit).await
    }

    async fn bump_counter(&self, code: &str, field: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = conn
            .hincr(self.link_key(code, "stats"), field, 1)
            .await
            .context("Failed to count in Redis")?;
        Ok(())
    }

    async fn put_metrics(&self, code: &str, day: NaiveDate, metrics: &DayMetrics) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: () = conn
            .hset(
                self.link_key(code, "metrics"),
                day.to_string(),
                serde_json::to_string(metrics)?,
            )
            .await
            .context("Failed to store metrics in Redis")?;
        Ok(())
    }

    async fn save_conversion(&self, conversion: &Conversion) -> Result<Conversion> {
        let mut conn = self.conn.clone();
        let json: String = self
            .save_conversion
            .key(self.conv("idem"))
            .key(self.conv("log"))
            .arg(conversion.idempotency_key())
            .arg(serde_json::to_string(conversion)?)
            .invoke_async(&mut conn)
            .await
            .context("Failed to store a conversion in Redis")?;
        serde_json::from_str(&json).context("Failed to decode a stored conversion")
    }

    async fn find_conversion(&self, idempotency_key: &str) -> Result<Option<Conversion>> {
        let mut conn = self.conn.clone();
        let id: Option<String> = conn
            .hget(self.conv("idem"), idempotency_key)
            .await
            .context("Failed to read from Redis")?;
        let Some(id) = id else { return Ok(None) };
        let page = self.conversions_range(&id, &id, 1, false).await?;
        Ok(page.into_iter().next().map(|(_, c)| c))
    }

    async fn apply_conversion(&self, conversion: &Conversion, fields: &[(String, i64)]) -> Result<bool> {
        let Some(code) = &conversion.link else {
            return Ok(false);
        };
        let mut inv = self.apply_conversion.prepare_invoke();
        inv.key(self.link_key(code, "orders"))
            .key(self.link_key(code, "stats"))
            .arg(&conversion.id);
        for (f, n) in fields {
            inv.arg(f).arg(n);
        }
        let mut conn = self.conn.clone();
        let applied: i64 = inv
            .invoke_async(&mut conn)
            .await
            .context("Failed to count a conversion in Redis")?;
        Ok(applied == 1)
    }

    async fn list_conversions(
        &self,
        filter: &ConversionFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Conversion>> {
        let mut end = match cursor {
            Some(c) => format!("({}", StreamId::parse_redis(c).context("Failed to read the cursor")?),
            None => "+".to_owned(),
        };
        let mut items = Vec::new();
        loop {
            let batch = self.conversions_range(&end, "-", 200, true).await?;
            let exhausted = batch.len() < 200;
            for (id, c) in batch {
                end = format!("({id}");
                if filter.matches(&c) {
                    items.push(c);
                    if items.len() == limit {
                        return Ok(Page { items, next: Some(id) });
                    }
                }
            }
            if exhausted {
                return Ok(Page { items, next: None });
            }
        }
    }

    async fn link_data(&self, codes: &[String]) -> Result<Vec<LinkData>> {
        if codes.is_empty() {
            return Ok(vec![]);
        }
        let mut pipe = redis::pipe();
        for code in codes {
            pipe.hgetall(self.link_key(code, "stats"))
                .hgetall(self.link_key(code, "metrics"));
        }
        let mut conn = self.conn.clone();
        let replies: Vec<HashMap<String, String>> = pipe
            .query_async(&mut conn)
            .await
            .context("Failed to read counters from Redis")?;
        let mut out = Vec::with_capacity(codes.len());
        let mut it = replies.into_iter();
        while let (Some(stats), Some(metrics)) = (it.next(), it.next()) {
            let counters = stats
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                .collect();
            let metrics = metrics
                .into_iter()
                .filter_map(|(d, j)| Some((d.parse().ok()?, serde_json::from_str(&j).ok()?)))
                .collect();
            out.push(LinkData { counters, metrics });
        }
        Ok(out)
    }

    async fn unique_visitors(&self, pairs: &[(String, NaiveDate)]) -> Result<Vec<u64>> {
        if pairs.is_empty() {
            return Ok(vec![]);
        }
        let mut pipe = redis::pipe();
        for (code, day) in pairs {
            pipe.cmd("PFCOUNT").arg(self.link_key(code, &format!("uv:{day}")));
        }
        let mut conn = self.conn.clone();
        Ok(pipe
            .query_async(&mut conn)
            .await
            .context("Failed to count visitors in Redis")?)
    }
}

impl RedisStore {
    /// Writes a click group, again after connection errors (the script skips what is stored).
    async fn write_clicks_retrying(&self, clicks: &[NewClick]) -> Result<Vec<StreamId>> {
        let mut last_err = None;
        for attempt in 0..CLICK_WRITE_TRIES {
            match self.invoke_clicks(clicks).await {
                Ok(ids) => return Ok(ids),
                Err(e) if is_noscript(&e) => {
                    // Redis restarted or flushed its script cache; load and write again.
                    self.load_scripts().await?;
                    last_err = Some(e);
                }
                Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => {
                    tracing::warn!(attempt, error = %e, "click batch write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(20 * (attempt as u64 + 1))).await;
                    last_err = Some(e);
                }
                Err(e) => return Err(e).context("Failed to write clicks to Redis"),
            }
        }
        Err(last_err
            .map(anyhow::Error::from)
            .unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
        .context("Failed to write clicks to Redis")
    }

    /// Conversion log entries between `a` and `b` (XREVRANGE when `rev`), with their ids.
    async fn conversions_range(&self, a: &str, b: &str, count: usize, rev: bool) -> Result<Vec<(String, Conversion)>> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = if rev {
            conn.xrevrange_count(self.conv("log"), a, b, count).await
        } else {
            conn.xrange_count(self.conv("log"), a, b, count).await
        }
        .context("Failed to read conversions from Redis")?;
        let mut out = Vec::with_capacity(reply.ids.len());
        for e in reply.ids {
            let Some(Value::BulkString(j)) = e.map.get("j") else {
                continue;
            };
            let c: Conversion = serde_json::from_slice(j).context("Failed to decode a stored conversion")?;
            out.push((e.id, c));
        }
        Ok(out)
    }
}

/// Coupons are unique regardless of case.
fn coupon_key(coupon: Option<&str>) -> String {
    coupon.map(str::to_uppercase).unwrap_or_default()
}

fn conflict(what: &str, which: String) -> std::result::Result<(), LinkConflict> {
    match what {
        "code" => Err(LinkConflict::Code(which)),
        "coupon" => Err(LinkConflict::Coupon(which)),
        _ => Ok(()),
    }
}
