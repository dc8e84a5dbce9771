//! The Redis store: production and scale-out.
//!
//! Every key starts with a configurable prefix (`kl` by default). Keys that one click or one
//! conversion touches carry the link code as a hash tag, so each script's keys live in one slot
//! of a Redis Cluster; management records share the `{meta}` slot and the conversion log the
//! `{conv}` slot.
//!
//! | key                               | type   | holds                                             |
//! |-----------------------------------|--------|---------------------------------------------------|
//! | `kl:{meta}:secret:<name>`         | string | admin token hash, visitor-hash key (the store's identity, `conn::Foreign`), session key, link book's store id |
//! | `kl:{meta}:<kinds>`               | hash   | campaign / KOL / shop id → JSON record            |
//! | `kl:{meta}:<kinds>:idx`           | zset   | id scored by creation sequence (newest-first lists)|
//! | `kl:{meta}:seq:<kind>`            | string | creation sequence per kind; `link` gives link ids |
//! | `kl:{meta}:links`                 | hash   | link code → JSON record                           |
//! | `kl:{meta}:links:idx`             | zset   | link code scored by numeric link id               |
//! | `kl:{meta}:summaries`             | hash   | link code → what reports need (`LinkSummary` JSON)|
//! | `kl:{meta}:links:version`         | string | a random number, new with every link created or changed by this version (`lookup::LinkLists`) |
//! | `kl:{meta}:links:changes`         | zset   | the codes of the latest 2,000 links created or changed, each scored by the number of its last change (`scripts::link_changes!`) |
//! | `kl:{meta}:links:changes:seq`     | string | the number of the last change of links            |
//! | `kl:{meta}:links:changes:floor`   | string | the highest change number `links:changes` let go  |
//! | `kl:{meta}:link_ids`              | hash   | numeric link id → code (resolves click ids)       |
//! | `kl:{meta}:coupons`               | hash   | coupon key (`CouponKey`) → code                   |
//! | `kl:{meta}:campaign:<id>:links`   | zset   | the campaign's link codes by link id              |
//! | `kl:{meta}:kol:<id>:links`        | zset   | the KOL's link codes by link id                   |
//! | `kl:{<code>}:clicks`              | stream | the link's click log; entry id = click time + seq = the click id's entry part, or, for a click re-keyed by this version, field `cid`; field `i` = the click (`clicks::entry_line`) |
//! | `kl:{<code>}:stats`               | hash   | the link's counters (`crate::counters`)           |
//! | `kl:{<code>}:hours_from`          | string | the first day whose hours the last `PRUNE_HOURS` kept (`crate::hours`) |
//! | `kl:{meta}:hours:pruned`          | zset   | one member, `pass`, scored by the first kept day (days from 0001-01-01) of the latest whole pass of `PRUNE_HOURS` over every link; only raised (`ZADD GT`) |
//! | `kl:{<code>}:rollups`             | hash   | their daily totals and all-time breakdowns; a copy of the metrics (`m\|<day>`) |
//! | `kl:{<code>}:writers`             | hash   | writer tag → its last re-keyed click's proposed id; `r\|<proposed id>` → a re-keyed click's entry id (`scripts::writers!`) |
//! | `kl:{meta}:schema`                | string | layout version (2: rollups built for every link; 3: summaries; 4: metrics copied into the rollups) |
//! | `kl:{<code>}:uvs:<YYYY-MM-DD>`    | set    | the day's first 10,000 unique visitors (exact)    |
//! | `kl:{<code>}:uv:<YYYY-MM-DD>`     | HLL    | the day's unique visitors past those 10,000       |
//! | `kl:{<code>}:metrics`             | hash   | day → JSON platform insights (`DayInsights`)      |
//! | `kl:{<code>}:orders`              | set    | conversion ids already added to the counters      |
//! | `kl:{<code>}:refunded`            | hash   | purchase key → refunds counted, minor units       |
//! | `kl:{conv}:log`                   | stream | every accepted conversion, field `j` = JSON       |
//! | `kl:{conv}:recs`                  | hash   | entry id → a conversion's changed JSON (status)   |
//! | `kl:{conv}:idem`                  | hash   | idempotency key → entry id in the log             |
//! | `kl:{conv}:pending:<purchase key>`| set    | refunds waiting for that purchase                 |
//!
//! Scripts: `CREATE_RECORD`, `CREATE_LINKS`, `UPDATE_LINK` keep the `{meta}` indexes in step;
//! `CLICKS_SUMMED` writes a group of one link's clicks (XADD per click, the group's counters summed
//! by kolink, visitors; atomically); `CLICKS` the same deciding click by click, for a group that
//! was written before in part (a retry, a replay) or whose ids do not increase (a replay of two
//! processes' clicks); either re-keys a click that meets another instance's later id;
//! `SAVE_CONVERSION` and `COUNT_CONVERSION` make webhooks idempotent (the latter writes no hour
//! of a day already pruned); `PRUNE_HOURS` removes a link's hourly counters of days past their
//! retention (`crate::hours`), those its rollups name since its last run; `REPLACE_ROLLUPS` builds
//! a link's rollups from its counters (once, when a store written by an older version is first
//! opened), unless a click moved the counters meanwhile.
//!
//! Click entries get ids chosen by kolink (see `crate::clicks`), so writing a batch again after
//! a dropped connection finds each entry already there and counts nothing twice. When another
//! instance wrote a later id to the same stream first, the entry falls back to a Redis-chosen id
//! and remembers the proposed one in its `rid` field, so that a retry finds it too. The click
//! is still known by the proposed id everywhere (its `kl_cid`, `get_click`, the click export,
//! `kolink tail`): a redirect answered from the spool hands that id out before any re-key can
//! happen, so it is the only id a click can be sure to have. The re-keyed entry names it in
//! `cid` too; a reader of the raw stream takes `cid` where an entry has one, else the entry id
//! (entries re-keyed by earlier versions have a `rid` and no `cid`: those versions handed out
//! the entry id).
//!
//! Cursors are scores of the list's zset, or stream ids of the conversion log.
//!
//! Production Redis needs persistence: `appendonly yes` (AOF, `appendfsync everysec` or
//! `always`), or a click answered with `302` may be lost when Redis restarts.
//!
//! **On a Redis Cluster** (`Target::Cluster`) the same keys and scripts serve: each script's
//! keys share one slot (the tags above), the `{meta}` slot holds every management record and
//! index (so creating links stays one atomic script), the `{conv}` slot the conversion log.
//! Work over many links (a click group, a campaign's counters) is spread one pipeline per shard
//! (`conn`). With `wait_replicas`, click groups and conversions end with `WAIT`.
//!
//! **Reports' reads** of many links' hashes and visitor counts go, on one Redis, through
//! connections of their own whose replies are decoded in place (`bulk`); on a cluster, through
//! the client like everything else. A link's rollups and full map, which a click's script
//! writes together, are read together in one `MULTI`/`EXEC` (both keys in the link's slot).

mod bulk;
mod clicks;
mod conn;
mod resp;
mod scripts;
mod tail;

pub use tail::{TailStream, Taken};

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, FromRedisValue, Script, Value};

use super::{
    summary_json, ClickLog, Conversions, Counted, Counters, Cursor, Detail, Kind, LinkChanges, LinkConflict, LinkData,
    LinkIndex, LinkRows, Links, NewClick, Records, RefundCap, Result, Scan, Store, StoreError,
};
use crate::clock::SharedClock;
use crate::domain::{Conversion, CouponKey, DayInsights, EntryId, Link, StoredClick};
use scripts::*;

/// Unique visitors of a link and day are counted exactly up to this many (a set); past it, an
/// estimate is added for the rest (a HyperLogLog, ±0.81 % of the rest only).
pub use super::EXACT_VISITORS;

/// The latest link changes `links:changes` keeps (`scripts::link_changes!`): more than a link
/// book reads at once (`link_book::PAGE`), which copies every link when more changed.
const LINK_CHANGES_KEPT: usize = 2_000;

/// How many times a click batch is written again after a connection error before giving up.
const CLICK_WRITE_TRIES: usize = 5;

/// Which Redis: one server, or the seed nodes of a Redis Cluster.
#[derive(Debug, Clone)]
pub enum Target {
    Single(String),
    Cluster(Vec<String>),
}

pub struct RedisStore {
    redis: conn::Redis,
    /// Reports' reads of many links' counters on connections of their own, past the client's
    /// reply parser (`bulk`); on one Redis, not on a cluster.
    bulk: Option<bulk::BulkReads>,
    /// Set while Redis is found not to be this process's store (`confirm_identity`).
    foreign: conn::Foreign,
    prefix: String,
    /// How long clicks are kept, in milliseconds: the setting, or longer
    /// (`keep_clicks_for_at_least`).
    click_retention_ms: std::sync::atomic::AtomicU64,
    clock: SharedClock,
    create_record: Script,
    create_links: Script,
    update_link: Script,
    fold_coupon: Script,
    replace_record: Script,
    clicks: Script,
    clicks_summed: Script,
    save_conversion: Script,
    count_conversion: Script,
    update_conversion: Script,
    replace_rollups: Script,
    put_insights: Script,
    copy_insights: Script,
    prune_hours: Script,
}

/// Sorts a Redis failure: no answer (connection, timeout, a server not ready, out of memory,
/// unable to persist: `MISCONF` is a full disk on the Redis host; or a cluster moving the slot
/// under way: `MOVED`, `ASK`, `TRYAGAIN`) is `Unavailable`, so clicks wait in the spool; anything
/// else Redis refused is a bug of ours, `Corrupt`.
fn failed(what: &'static str) -> impl FnOnce(redis::RedisError) -> StoreError {
    move |e| {
        let unavailable = e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
            || matches!(
                e.code(),
                Some(
                    "LOADING"
                        | "BUSY"
                        | "MASTERDOWN"
                        | "TRYAGAIN"
                        | "CLUSTERDOWN"
                        | "READONLY"
                        | "OOM"
                        | "MISCONF"
                        | "MOVED"
                        | "ASK"
                )
            );
        let e = anyhow::Error::new(e).context(what);
        if unavailable {
            StoreError::Unavailable(e)
        } else {
            StoreError::Corrupt(e)
        }
    }
}

/// Redis' `<ms>-<seq>` form of a log entry id; written digit by digit (one per click).
fn stream_id(e: EntryId) -> String {
    let mut s = String::with_capacity(41);
    push_decimal(&mut s, e.ms);
    s.push('-');
    push_decimal(&mut s, e.seq);
    s
}

fn push_decimal(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.extend(digits[at..].iter().map(|&d| char::from(d)));
}

fn parse_stream_id(s: &str) -> Option<EntryId> {
    let (ms, seq) = s.split_once('-')?;
    Some(EntryId {
        ms: ms.parse().ok()?,
        seq: seq.parse().ok()?,
    })
}

/// A connection to `target` (and the bulk readers' address on one Redis): made now, or, with
/// `lazy` (one Redis only), on first use.
async fn open(
    target: &Target,
    lazy: bool,
    foreign: &conn::Foreign,
) -> anyhow::Result<(conn::Conn, Option<bulk::BulkReads>)> {
    Ok(match target {
        Target::Single(url) => {
            let client = redis::Client::open(url.as_str()).context("Failed to parse the Redis URL")?;
            let info = client.get_connection_info().clone();
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(5)))
                .set_response_timeout(Some(Duration::from_secs(5)))
                .set_number_of_retries(3)
                .set_max_delay(Duration::from_secs(2));
            let conn = if lazy {
                ConnectionManager::new_lazy_with_config(client, config)
                    .context("Failed to set up the Redis connection")?
            } else {
                ConnectionManager::new_with_config(client, config)
                    .await
                    .context("Failed to connect to Redis")?
            };
            (conn::Conn::single(conn, foreign.clone()), bulk::BulkReads::new(&info))
        }
        Target::Cluster(_) if lazy => anyhow::bail!("a Redis Cluster is not connected to lazily"),
        Target::Cluster(seeds) => {
            let client = redis::cluster::ClusterClientBuilder::new(seeds.iter().map(String::as_str))
                .connection_timeout(Duration::from_secs(5))
                .response_timeout(Duration::from_secs(5))
                .retries(3)
                .build()
                .context("Failed to parse the Redis Cluster seeds")?;
            let conn = client
                .get_async_connection()
                .await
                .context("Failed to connect to the Redis Cluster")?;
            (conn::Conn::cluster(conn, foreign.clone()), None)
        }
    })
}

impl RedisStore {
    /// Connects (the connection reconnects by itself later) and loads the scripts.
    /// `wait_replicas`: how many replicas must hold a click before it counts as written.
    pub async fn connect(
        target: &Target,
        prefix: &str,
        click_retention: Duration,
        wait_replicas: usize,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let store = Self::opened(target, false, prefix, click_retention, wait_replicas, clock).await?;
        store.finish_start().await?;
        Ok(store)
    }

    /// One Redis (not a cluster), connected to on first use and not asked anything yet: a
    /// process started while Redis does not answer (`startup`), which calls `finish_start`
    /// once it does. Calls made while Redis does not answer fail as `Unavailable`.
    pub async fn connect_lazily(
        url: &str,
        prefix: &str,
        click_retention: Duration,
        wait_replicas: usize,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let target = Target::Single(url.to_owned());
        Self::opened(&target, true, prefix, click_retention, wait_replicas, clock).await
    }

    /// What a start asks of Redis: the scripts loaded, the layout brought up to date, and a
    /// word about its durability.
    pub async fn finish_start(&self) -> anyhow::Result<()> {
        self.load_scripts().await.context("Failed to load the Redis scripts")?;
        self.migrate().await?;
        if !self.redis.is_cluster() {
            self.warn_unless_durable().await;
        }
        Ok(())
    }

    async fn opened(
        target: &Target,
        lazy: bool,
        prefix: &str,
        click_retention: Duration,
        wait_replicas: usize,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let foreign = conn::Foreign::default();
        let (conn, bulk) = open(target, lazy, &foreign).await?;
        // Writes that wait for replicas get a connection of their own (see `conn`).
        let waiting = if wait_replicas > 0 {
            open(target, lazy, &foreign).await?.0
        } else {
            conn.clone()
        };
        Ok(Self {
            redis: conn::Redis::new(conn, waiting, wait_replicas),
            bulk,
            foreign,
            prefix: prefix.to_owned(),
            click_retention_ms: std::sync::atomic::AtomicU64::new(
                u64::try_from(click_retention.as_millis()).unwrap_or(u64::MAX),
            ),
            clock,
            create_record: Script::new(CREATE_RECORD),
            create_links: Script::new(CREATE_LINKS),
            update_link: Script::new(UPDATE_LINK),
            fold_coupon: Script::new(FOLD_COUPON),
            replace_record: Script::new(REPLACE_RECORD),
            clicks: Script::new(CLICKS),
            clicks_summed: Script::new(CLICKS_SUMMED),
            save_conversion: Script::new(SAVE_CONVERSION),
            count_conversion: Script::new(COUNT_CONVERSION),
            update_conversion: Script::new(UPDATE_CONVERSION),
            replace_rollups: Script::new(REPLACE_ROLLUPS),
            put_insights: Script::new(PUT_INSIGHTS),
            copy_insights: Script::new(COPY_INSIGHTS),
            prune_hours: Script::new(PRUNE_HOURS),
        })
    }

    /// Says at start when the Redis kolink keeps everything in would lose it: no append-only
    /// file, or keys evicted under memory pressure (`durability_warnings`). A Redis whose
    /// `INFO` is not allowed is left unjudged.
    async fn warn_unless_durable(&self) {
        let mut conn = self.conn();
        let info: Result<String, _> = redis::cmd("INFO")
            .arg("persistence")
            .arg("memory")
            .query_async(&mut conn)
            .await;
        if let Ok(info) = info {
            for warning in durability_warnings(&info) {
                tracing::warn!("{warning}");
            }
        }
    }

    /// Brings a store written by an older version to this layout, once: version 2 built every
    /// link's rollups, version 3 its summary, version 4 copied its metrics into its rollups.
    /// Every kolink process on the store must run a version with all three, or the clicks,
    /// links and metrics of older ones miss them.
    async fn migrate(&self) -> anyhow::Result<()> {
        const SCHEMA: u64 = 4;
        let mut conn = self.conn();
        let done: Option<u64> = conn
            .get(self.meta("schema"))
            .await
            .map_err(failed("Failed to read the layout version"))?;
        if done >= Some(SCHEMA) {
            return Ok(());
        }
        if done < Some(2) {
            self.build_rollups()
                .await
                .context("Failed to build the counters' rollups")?;
        }
        if done < Some(3) {
            self.build_summaries()
                .await
                .context("Failed to build the links' summaries")?;
        }
        self.copy_insights()
            .await
            .context("Failed to copy the links' metrics into their rollups")?;
        let _: () = conn
            .set(self.meta("schema"), SCHEMA)
            .await
            .map_err(failed("Failed to record the layout version"))?;
        Ok(())
    }

    /// Every link's code, for the layout changes above.
    async fn all_link_codes(&self) -> Result<Vec<String>> {
        self.conn()
            .hkeys(self.meta("links"))
            .await
            .map_err(failed("Failed to list the links"))
    }

    /// Writes the summary of every link that has none (`LinkRows::Summaries`).
    async fn build_summaries(&self) -> Result<()> {
        let mut conn = self.conn();
        let codes = self.all_link_codes().await?;
        for chunk in codes.chunks(500) {
            let records: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(self.meta("links"))
                .arg(chunk)
                .query_async(&mut conn)
                .await
                .map_err(failed("Failed to read links from Redis"))?;
            let mut pipe = redis::pipe();
            for json in records.into_iter().flatten() {
                let link: Link = match serde_json::from_str(&json) {
                    Ok(link) => link,
                    Err(e) => {
                        tracing::warn!(error = %e, "a link record does not decode: no summary");
                        continue;
                    }
                };
                // Not over a summary that a link update wrote meanwhile.
                pipe.hset_nx(self.meta("summaries"), link.code.as_str(), summary_json(&link)?)
                    .ignore();
            }
            if pipe.is_empty() {
                continue;
            }
            let _: () = pipe
                .query_async(&mut conn)
                .await
                .map_err(failed("Failed to write link summaries to Redis"))?;
        }
        Ok(())
    }

    /// Copies every link's metrics into its rollups (`COPY_INSIGHTS`, one script call per link,
    /// so that it neither misses nor undoes a `PUT_INSIGHTS` running beside it, and replaces a
    /// copy left stale by an older process).
    async fn copy_insights(&self) -> Result<()> {
        let codes = self.all_link_codes().await?;
        for chunk in codes.chunks(500) {
            let mut spread = self.redis.spread();
            for code in chunk {
                let metrics = self.link_key(code, "metrics");
                let mut inv = self.copy_insights.prepare_invoke();
                inv.key(&metrics).key(self.link_key(code, "rollups"));
                spread.on(&metrics).invoke_script(&inv);
            }
            let _: Vec<i64> = self
                .run_spread(spread, false)
                .await
                .map_err(failed("Failed to copy metrics in Redis"))?;
        }
        Ok(())
    }

    /// Builds every link's rollups from its counters: a store written before rollups existed
    /// gets them at the first start of a version with them.
    async fn build_rollups(&self) -> Result<()> {
        let mut conn = self.conn();
        let codes = self.all_link_codes().await?;
        for chunk in codes.chunks(500) {
            let mut spread = self.redis.spread();
            for code in chunk {
                let key = self.link_key(code, "stats");
                spread.on(&key).hgetall(&key);
            }
            let stats: Vec<HashMap<String, i64>> = self
                .run_spread(spread, false)
                .await
                .map_err(failed("Failed to read counters from Redis"))?;
            for (code, mut counters) in chunk.iter().zip(stats) {
                // A click between the read and the write: read again (clicks only add).
                while !self.replace_rollups(code, &counters).await? {
                    counters = conn
                        .hgetall(self.link_key(code, "stats"))
                        .await
                        .map_err(failed("Failed to read counters from Redis"))?;
                }
            }
        }
        Ok(())
    }

    /// Replaces a link's rollups with those of `counters` (and its exact visitor sets) if the
    /// counters are still `counters`; `false` when they moved.
    async fn replace_rollups(&self, code: &str, counters: &HashMap<String, i64>) -> Result<bool> {
        let mut sums: HashMap<String, i64> = HashMap::new();
        for (f, n) in counters {
            for r in crate::counters::rollups(f) {
                *sums.entry(r).or_default() += n;
            }
        }
        // The days with human clicks are the days with visitors.
        let days: Vec<String> = sums
            .keys()
            .filter_map(|f| f.strip_prefix("c|").map(str::to_owned))
            .collect();
        let mut pipe = redis::pipe();
        for d in &days {
            pipe.scard(self.link_key(code, &format!("uvs:{d}")));
        }
        let mut conn = self.conn();
        let visitors: Vec<i64> = if days.is_empty() {
            vec![]
        } else {
            pipe.query_async(&mut conn)
                .await
                .map_err(failed("Failed to count visitors in Redis"))?
        };
        for (d, n) in days.iter().zip(visitors) {
            if n > 0 {
                sums.insert(crate::counters::visitors_field(d), n);
            }
        }
        let mut inv = self.replace_rollups.prepare_invoke();
        inv.key(self.link_key(code, "stats"))
            .key(self.link_key(code, "rollups"))
            .arg(counters.len())
            .arg(counters.values().sum::<i64>());
        for (f, n) in &sums {
            inv.arg(f).arg(n);
        }
        let replaced: i64 = inv
            .invoke_async(&mut conn)
            .await
            .map_err(failed("Failed to build a link's rollups"))?;
        Ok(replaced == 1)
    }

    async fn load_scripts(&self) -> Result<()> {
        let mut conn = self.conn();
        for s in [
            &self.clicks_summed,
            &self.clicks,
            &self.save_conversion,
            &self.count_conversion,
            &self.create_links,
            &self.create_record,
            &self.update_link,
            &self.put_insights,
            &self.copy_insights,
            &self.prune_hours,
        ] {
            s.prepare_invoke()
                .load_async(&mut conn)
                .await
                .map_err(failed("Failed to load a Redis script"))?;
        }
        Ok(())
    }

    fn conn(&self) -> conn::Conn {
        self.redis.conn.clone()
    }

    /// Runs commands over many links' keys (see `conn`), each value read as a `T`.
    async fn run_spread<T: FromRedisValue>(&self, spread: conn::Spread, wait: bool) -> redis::RedisResult<Vec<T>> {
        self.redis
            .run(spread, wait)
            .await?
            .into_iter()
            .map(|v| T::from_redis_value(v).map_err(redis::RedisError::from))
            .collect()
    }

    /// Runs a script whose keys share the slot of `key`; with `wait_replicas`, its answer counts
    /// only once that many replicas hold its writes (`WAIT`, as for clicks).
    async fn invoke_durably<T: FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
        key: &str,
    ) -> redis::RedisResult<T> {
        if self.redis.wait_replicas == 0 {
            return inv.invoke_async(&mut self.conn()).await;
        }
        let run = || async {
            let mut spread = self.redis.spread();
            spread.on(key).invoke_script(inv);
            let mut values = self.run_spread::<T>(spread, true).await?;
            values
                .pop()
                .ok_or_else(|| redis::RedisError::from(std::io::Error::other("no answer from Redis")))
        };
        self.with_scripts(run).await
    }

    /// Runs `run`, and once more after loading the scripts when Redis had lost them (it
    /// restarted, or its script cache was flushed): for scripts sent in a pipeline, which
    /// `invoke_async` does not load by itself.
    async fn with_scripts<T, F: std::future::Future<Output = redis::RedisResult<T>>>(
        &self,
        run: impl Fn() -> F,
    ) -> redis::RedisResult<T> {
        match run().await {
            Err(e) if is_noscript(&e) => {
                self.load_scripts().await.map_err(|_| e)?;
                run().await
            }
            r => r,
        }
    }

    /// `kl:{meta}:<rest>`: management records.
    fn meta(&self, rest: &str) -> String {
        format!("{}:{{meta}}:{rest}", self.prefix)
    }

    /// `kl:{<code>}:<rest>`: a key of one link, in the link's slot.
    fn link_key(&self, code: &str, rest: &str) -> String {
        // Built by hand: a report over 10,000 links names 10,000 keys, and `format!` took
        // about 450 instructions a key.
        let mut key = String::with_capacity(self.prefix.len() + code.len() + rest.len() + 4);
        for part in [self.prefix.as_str(), ":{", code, "}:", rest] {
            key.push_str(part);
        }
        key
    }

    /// `kl:{conv}:<rest>`: the conversion log and its idempotency index.
    fn conv(&self, rest: &str) -> String {
        format!("{}:{{conv}}:{rest}", self.prefix)
    }

    /// `kl:{meta}:<kinds>`: records of one kind by id.
    fn kind_key(&self, kind: Kind) -> String {
        self.meta(kind.plural())
    }

    /// `kl:{meta}:seq:<kinds>`: the creation sequence of one kind.
    fn kind_seq(&self, kind: Kind) -> String {
        self.meta(&format!("seq:{}", kind.plural()))
    }

    /// The zset of link codes scored by link id that `index` reads.
    fn link_index(&self, index: LinkIndex<'_>) -> String {
        match index {
            LinkIndex::All => self.meta("links:idx"),
            LinkIndex::Campaign(c) => self.meta(&format!("campaign:{c}:links")),
            LinkIndex::Kol(k) => self.meta(&format!("kol:{k}:links")),
        }
    }

    /// The rows of `codes` from `index` (records or summaries, `None` for a link without one),
    /// and with `scored` a member's score (`values_and_score`).
    async fn link_values(
        &self,
        index: LinkIndex<'_>,
        rows: LinkRows,
        codes: &[String],
        scored: Option<(&str, &str)>,
    ) -> Result<(Vec<Option<String>>, Option<u64>)> {
        let records = rows == LinkRows::Records || matches!(index, LinkIndex::All);
        let hash = self.meta(if records { "links" } else { "summaries" });
        let (mut values, score) = self.values_and_score(&hash, codes, scored).await?;
        // A link written by an older version has no summary: its record stands in.
        if !records && values.iter().any(Option::is_none) {
            values = self.hash_values(&self.meta("links"), codes).await?;
        }
        Ok((values, score))
    }

    /// Newest-first members of a zset scored by sequence, each with its cursor.
    async fn scan_zset(&self, zset: &str, after: Option<Cursor>, limit: usize) -> Result<Vec<(Cursor, String)>> {
        let cmd = newest_first(zset, after, limit, true)?;
        let mut rows = Vec::with_capacity(limit.min(10_000));
        let mut member = None;
        self.read_items(zset, cmd, "Failed to list from Redis", |item| {
            let item = item.ok_or_else(|| not_read_as("a listed member", "nil"))?;
            match member.take() {
                None => member = Some(text(item)),
                Some(id) => {
                    let score =
                        whole_score(item).ok_or_else(|| not_read_as("a listed member's score", "something else"))?;
                    rows.push((Cursor::mint([score]), id));
                }
            }
            Ok(())
        })
        .await?;
        if member.is_some() {
            return Err(not_read_as("a listed member", "one without its score"));
        }
        Ok(rows)
    }

    /// Values of `hash` for the members of a scan, in order (`None` for a member without one).
    async fn hash_values(&self, hash: &str, members: &[String]) -> Result<Vec<Option<String>>> {
        Ok(self.values_and_score(hash, members, None).await?.0)
    }

    /// One command on `key` whose answer is an array, each item handed to `each` as bytes
    /// (`None` for a nil one): read on the bulk connections on one Redis (a long list decoded
    /// in place, not value by value by the client's parser), else through the client.
    async fn read_items(
        &self,
        key: &str,
        cmd: redis::Cmd,
        what: &'static str,
        mut each: impl FnMut(Option<&[u8]>) -> Result<()>,
    ) -> Result<()> {
        // One key, so `add` runs once: the command (thousands of arguments for a long list)
        // moves into the pipeline, not a copy of it.
        let mut cmd = Some(cmd);
        let add = |pipe: &mut redis::Pipeline, _: usize, _: &str| {
            pipe.add_command(cmd.take().expect("one command for one key"));
        };
        self.read_each(&[key.to_owned()], add, what, |reply| reply.each_item(&mut each))
            .await
    }

    /// The values of `members` in `hash` (`hash_values`), and with `scored` (a zset and one of
    /// its members) that member's score, in the same round trip.
    async fn values_and_score(
        &self,
        hash: &str,
        members: &[String],
        scored: Option<(&str, &str)>,
    ) -> Result<(Vec<Option<String>>, Option<u64>)> {
        if members.is_empty() {
            return Ok((vec![], None));
        }
        let mut values = Vec::with_capacity(members.len());
        let mut score = None;
        // Built straight into the pipeline: a page's `HMGET` has thousands of arguments.
        let add = |pipe: &mut redis::Pipeline, i: usize, key: &str| {
            if i == 0 {
                let hmget = pipe.cmd("HMGET").arg(key);
                for m in members {
                    hmget.arg(m);
                }
            } else if let Some((_, member)) = scored {
                pipe.cmd("ZSCORE").arg(key).arg(member);
            }
        };
        let mut keys = vec![hash.to_owned()];
        keys.extend(scored.map(|(zset, _)| zset.to_owned()));
        let mut taken = 0;
        self.read_each(&keys, add, "Failed to read records from Redis", |reply| {
            taken += 1;
            match taken {
                1 => reply.each_item(|item| {
                    values.push(item.map(text));
                    Ok(())
                }),
                _ => {
                    score = Some(reply.score()?);
                    Ok(())
                }
            }
        })
        .await?;
        if values.len() != members.len() {
            return Err(not_read_as("a record list", "a list of another length"));
        }
        Ok((values, score))
    }

    /// Clicks before this id are past their retention (`MINID` of the click scripts' `XADD`s and `XTRIM`s).
    fn minid(&self) -> String {
        let kept = self.click_retention_ms.load(std::sync::atomic::Ordering::Relaxed);
        let cutoff = self.clock.now().timestamp_millis() - i64::try_from(kept).unwrap_or(i64::MAX);
        cutoff.max(0).to_string()
    }
}

/// A scan's cursors with their members' values; a member without one (its record gone) is
/// left out.
/// What `INFO persistence memory` says that would lose kolink's data.
fn durability_warnings(info: &str) -> Vec<String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
            .map(str::trim)
    };
    let mut warnings = Vec::new();
    if field("aof_enabled") == Some("0") {
        warnings.push(
            "Redis keeps no append-only file (appendonly no): a restart of Redis loses what it took since its \
             last snapshot (clicks, conversions, links); set appendonly yes with appendfsync everysec"
                .to_owned(),
        );
    }
    if let Some(policy) = field("maxmemory_policy").filter(|p| *p != "noeviction") {
        warnings.push(format!(
            "Redis may evict keys when its memory is full (maxmemory-policy {policy}): links, clicks and \
             counters would go without a trace; set maxmemory-policy noeviction"
        ));
    }
    warnings
}

fn with_values(cursors: Vec<Cursor>, values: Vec<Option<String>>) -> Scan<String> {
    cursors
        .into_iter()
        .zip(values)
        .filter_map(|(c, v)| Some((c, v?)))
        .collect()
}

/// `ZREVRANGEBYSCORE` of up to `limit` members of `zset` after `after`, newest first, with
/// their scores or without.
fn newest_first(zset: &str, after: Option<Cursor>, limit: usize, scores: bool) -> Result<redis::Cmd> {
    let max = match after {
        Some(c) => format!("({}", c.position::<1>()?[0]),
        None => "+inf".to_owned(),
    };
    let mut cmd = redis::cmd("ZREVRANGEBYSCORE");
    cmd.arg(zset).arg(max).arg("-inf");
    if scores {
        cmd.arg("WITHSCORES");
    }
    cmd.arg("LIMIT").arg(0).arg(limit);
    Ok(cmd)
}

/// A score of kolink's zsets as Redis writes it (they are whole numbers: ids and sequences).
fn whole_score(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Bytes from Redis as text: as they are where they are UTF-8 (checked at `str::from_utf8`'s
/// speed, which `from_utf8_lossy` is far from on long lists), else with replacement characters.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A reply of another kind than asked for: a fault, never an empty answer.
fn not_read_as(what: &str, got: &str) -> StoreError {
    StoreError::Corrupt(anyhow::anyhow!("{what} read back as {got}"))
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
        let mut conn = self.conn();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(failed("Failed to ping Redis"))?;
        Ok(())
    }

    async fn init_secret(&self, name: &str, candidate: &str) -> Result<(String, bool)> {
        let key = self.meta(&format!("secret:{name}"));
        let mut conn = self.conn();
        let set: bool = redis::cmd("SET")
            .arg(&key)
            .arg(candidate)
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await
            .map_err(failed("Failed to store a secret"))?
            .is_some();
        if set {
            return Ok((candidate.to_owned(), true));
        }
        let v: String = conn.get(&key).await.map_err(failed("Failed to read a secret"))?;
        Ok((v, false))
    }

    async fn secret(&self, name: &str) -> Result<Option<String>> {
        let key = self.meta(&format!("secret:{name}"));
        self.conn().get(&key).await.map_err(failed("Failed to read a secret"))
    }

    fn hold_to_identity(&self, visitor_key: &str) {
        self.foreign
            .arm(self.meta("secret:visitor_key"), visitor_key.to_owned());
    }

    async fn confirm_identity(&self) -> Result<()> {
        self.redis
            .conn
            .confirm_identity()
            .await
            .map_err(failed("Failed to read the store's identity"))
    }

    async fn identity_in_doubt(&self) {
        self.foreign.doubted().await
    }

    async fn replace_secret(&self, name: &str, value: &str) -> Result<()> {
        let key = self.meta(&format!("secret:{name}"));
        self.conn()
            .set(&key, value)
            .await
            .map_err(failed("Failed to store a secret"))
    }
}

#[async_trait::async_trait]
impl Records for RedisStore {
    async fn create_record(&self, kind: Kind, id: &str, json: String) -> Result<bool> {
        let mut conn = self.conn();
        let created: i64 = self
            .create_record
            .key(self.kind_key(kind))
            .key(format!("{}:idx", self.kind_key(kind)))
            .key(self.kind_seq(kind))
            .arg(id)
            .arg(json)
            .invoke_async(&mut conn)
            .await
            .map_err(failed("Failed to create a record in Redis"))?;
        Ok(created == 1)
    }

    async fn get_record(&self, kind: Kind, id: &str) -> Result<Option<String>> {
        let mut conn = self.conn();
        conn.hget(self.kind_key(kind), id)
            .await
            .map_err(failed("Failed to read a record from Redis"))
    }

    async fn get_records(&self, kind: Kind, ids: &[String]) -> Result<Vec<Option<String>>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut conn = self.conn();
        redis::cmd("HMGET")
            .arg(self.kind_key(kind))
            .arg(ids)
            .query_async(&mut conn)
            .await
            .map_err(failed("Failed to read records from Redis"))
    }

    async fn replace_record(&self, kind: Kind, id: &str, expected: &str, json: String) -> Result<bool> {
        let mut conn = self.conn();
        let replaced: i64 = self
            .replace_record
            .key(self.kind_key(kind))
            .arg(id)
            .arg(expected)
            .arg(json)
            .invoke_async(&mut conn)
            .await
            .map_err(failed("Failed to update a record in Redis"))?;
        Ok(replaced == 1)
    }

    async fn scan_records(&self, kind: Kind, after: Option<Cursor>, limit: usize) -> Result<Scan<String>> {
        let ids = self
            .scan_zset(&format!("{}:idx", self.kind_key(kind)), after, limit)
            .await?;
        let (cursors, ids): (Vec<_>, Vec<_>) = ids.into_iter().unzip();
        let values = self.hash_values(&self.kind_key(kind), &ids).await?;
        Ok(with_values(cursors, values))
    }
}

#[async_trait::async_trait]
impl Links for RedisStore {
    async fn reserve_link_ids(&self, n: u64) -> Result<u64> {
        let mut conn = self.conn();
        let last: u64 = conn
            .incr(self.meta("seq:link"), n)
            .await
            .map_err(failed("Failed to reserve link ids"))?;
        Ok(last + 1 - n)
    }

    async fn create_links(&self, links: &[Link]) -> Result<std::result::Result<(), LinkConflict>> {
        let mut inv = self.create_links.prepare_invoke();
        inv.key(self.meta("links"))
            .key(self.meta("link_ids"))
            .key(self.meta("coupons"))
            .key(self.meta("links:idx"))
            .key(self.meta("summaries"))
            .key(self.meta("links:version"))
            .key(self.meta("links:changes"))
            .key(self.meta("links:changes:seq"))
            .key(self.meta("links:changes:floor"));
        for l in links {
            inv.key(self.link_index(LinkIndex::Campaign(l.campaign.as_str())))
                .key(self.link_index(LinkIndex::Kol(l.kol.as_str())));
            inv.arg(l.code.as_str())
                .arg(l.id)
                .arg(coupon_arg(l))
                .arg(serde_json::to_string(l)?)
                .arg(summary_json(l)?);
        }
        inv.arg(LINK_CHANGES_KEPT).arg(rand::random::<u64>());
        let mut conn = self.conn();
        let (what, which): (String, String) = inv
            .invoke_async(&mut conn)
            .await
            .map_err(failed("Failed to create links in Redis"))?;
        Ok(conflict(&what, which))
    }

    async fn update_link(&self, expected: &str, new: &Link) -> Result<std::result::Result<(), LinkConflict>> {
        let old: Link = serde_json::from_str(expected)?;
        let mut conn = self.conn();
        let (what, which): (String, String) = self
            .update_link
            .key(self.meta("links"))
            .key(self.meta("coupons"))
            .key(self.meta("summaries"))
            .key(self.meta("links:version"))
            .key(self.meta("links:changes"))
            .key(self.meta("links:changes:seq"))
            .key(self.meta("links:changes:floor"))
            .arg(new.code.as_str())
            .arg(coupon_arg(&old))
            .arg(coupon_arg(new))
            .arg(serde_json::to_string(new)?)
            .arg(expected)
            .arg(summary_json(new)?)
            .arg(rand::random::<u64>())
            .arg(legacy_coupon_arg(&old))
            .arg(LINK_CHANGES_KEPT)
            .invoke_async(&mut conn)
            .await
            .map_err(failed("Failed to update a link in Redis"))?;
        Ok(conflict(&what, which))
    }

    async fn get_link_json(&self, code: &str) -> Result<Option<String>> {
        let mut conn = self.conn();
        conn.hget(self.meta("links"), code)
            .await
            .map_err(failed("Failed to read a link from Redis"))
    }

    async fn link_code_by_id(&self, id: u64) -> Result<Option<String>> {
        let mut conn = self.conn();
        conn.hget(self.meta("link_ids"), id)
            .await
            .map_err(failed("Failed to read a link id from Redis"))
    }

    async fn fold_coupon_keys(&self) -> Result<usize> {
        let mut conn = self.conn();
        let key = self.meta("coupons");
        // Only keys with letters outside ASCII can change; the rest are read and left.
        let mut stale = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("HSCAN")
                .arg(&key)
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(failed("Failed to read the coupons from Redis"))?;
            for pair in page.chunks_exact(2) {
                let folded = CouponKey::of(&pair[0]);
                if folded.as_str() != pair[0] {
                    stale.push((pair[0].clone(), folded));
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut moved = 0;
        for (old, new) in stale {
            let (done, holder): (u8, String) = self
                .fold_coupon
                .key(&key)
                .arg(&old)
                .arg(new.as_str())
                .invoke_async(&mut conn)
                .await
                .map_err(failed("Failed to move a coupon in Redis"))?;
            if done == 1 {
                moved += 1;
            } else if !holder.is_empty() {
                // For the log only: a failed read leaves the link unnamed, not the start failed.
                let stays: Option<String> = conn.hget(&key, &old).await.unwrap_or(None);
                crate::store::warn_coupon_stays(&old, stays.as_deref().unwrap_or_default(), &holder);
            }
        }
        Ok(moved)
    }

    async fn link_code_by_coupon(&self, coupon: &CouponKey) -> Result<Option<String>> {
        let mut conn = self.conn();
        conn.hget(self.meta("coupons"), coupon.as_str())
            .await
            .map_err(failed("Failed to read a coupon from Redis"))
    }

    /// The random number that `CREATE_LINKS` and `UPDATE_LINK` leave with every change, with the
    /// number of links: a link minted by a process of an older version, which leaves none,
    /// still moves it. A process of an older version that changes a link does not.
    async fn links_version(&self) -> Result<Option<u64>> {
        let (changes, links): (Option<u64>, u64) = redis::pipe()
            .get(self.meta("links:version"))
            .zcard(self.meta("links:idx"))
            .query_async(&mut self.conn())
            .await
            .map_err(failed("Failed to read the links' version"))?;
        // An odd multiplier: distinct counts of links give distinct versions with one nonce.
        Ok(Some(changes.unwrap_or(0) ^ links.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    }

    /// From `links:changes` (`scripts::link_changes!`), read in one transaction; the records
    /// after it.
    async fn link_changes(&self, after: Option<u64>, limit: usize) -> Result<Option<LinkChanges>> {
        // With no `after`, a range that holds nothing.
        let min = after.map_or_else(|| "+inf".to_owned(), |a| format!("({a}"));
        let (seq, links, codes, floor): (Option<u64>, u64, Vec<String>, Option<u64>) = redis::pipe()
            .atomic()
            .get(self.meta("links:changes:seq"))
            .zcard(self.meta("links:idx"))
            .zrangebyscore_limit(self.meta("links:changes"), min, "+inf", 0, limit as isize + 1)
            .get(self.meta("links:changes:floor"))
            .query_async(&mut self.conn())
            .await
            .map_err(failed("Failed to read the links' changes"))?;
        let seq = seq.unwrap_or(0);
        let all_known = |after: u64| after <= seq && floor.unwrap_or(0) <= after && codes.len() <= limit;
        let records = match after {
            Some(after) if all_known(after) => Some(self.hash_values(&self.meta("links"), &codes).await?),
            _ => None,
        };
        Ok(Some(LinkChanges {
            seq,
            links,
            // A code without a record (none is ever removed) is left out.
            records: records.map(|r| r.into_iter().flatten().collect()),
        }))
    }

    async fn scan_links(
        &self,
        index: LinkIndex<'_>,
        rows: LinkRows,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Scan<String>> {
        let (cursors, codes): (Vec<_>, Vec<_>) = self
            .scan_zset(&self.link_index(index), after, limit)
            .await?
            .into_iter()
            .unzip();
        let values = self.link_values(index, rows, &codes, None).await?.0;
        Ok(with_values(cursors, values))
    }

    /// The members alone, and the last one's score read with the values (`values_and_score`):
    /// Redis writes each score of a `WITHSCORES` reply as a double, which took it 1.40 ms for
    /// a page of 2,500 links of a campaign's index (measured so) against 0.65 ms for the members
    /// alone.
    async fn link_rows(
        &self,
        index: LinkIndex<'_>,
        rows: LinkRows,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<Cursor>)> {
        let zset = self.link_index(index);
        let cmd = newest_first(&zset, after, limit, false)?;
        let mut codes = Vec::with_capacity(limit.min(10_000));
        self.read_items(&zset, cmd, "Failed to list from Redis", |item| {
            codes.push(text(item.ok_or_else(|| not_read_as("a listed member", "nil"))?));
            Ok(())
        })
        .await?;
        // A full page: the next one starts after its last member's score.
        let last = codes
            .last()
            .filter(|_| codes.len() == limit)
            .map(|code| (zset.as_str(), code.as_str()));
        let (values, next) = self.link_values(index, rows, &codes, last).await?;
        Ok((values.into_iter().flatten().collect(), next.map(|s| Cursor::mint([s]))))
    }
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
    /// Runs one read command per key, over many links' keys, and hands each reply to `each` in
    /// order, exactly one per key (or fails): on the bulk connections on one Redis (`bulk`),
    /// else through the client, a pipeline per shard. `add` adds the command of the `i`th key to a pipeline. An error
    /// reply fails the read (`what`), as does an error of `each`.
    async fn read_each(
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
enum ReadReply<'a> {
    Bulk(bulk::Reply<'a>),
    Client(&'a Value),
}

impl<'a> ReadReply<'a> {
    /// Each item of an array reply as bytes (`None` for a nil one); a nil reply has none, and
    /// any other reply is a fault.
    fn each_item(self, mut each: impl FnMut(Option<&[u8]>) -> Result<()>) -> Result<()> {
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
    fn score(self) -> Result<u64> {
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

#[async_trait::async_trait]
impl Conversions for RedisStore {
    async fn save_conversion(&self, conversion: &Conversion) -> Result<Conversion> {
        let mut inv = self.save_conversion.prepare_invoke();
        inv.key(self.conv("idem"))
            .key(self.conv("log"))
            .key(self.conv("recs"))
            .arg(conversion.idempotency_key())
            .arg(serde_json::to_string(conversion)?);
        let json: String = self
            .invoke_durably(&inv, &self.conv("log"))
            .await
            .map_err(failed("Failed to store a conversion in Redis"))?;
        Ok(serde_json::from_str(&json)?)
    }

    async fn find_conversion(&self, idempotency_key: &str) -> Result<Option<Conversion>> {
        let mut conn = self.conn();
        let id: Option<String> = conn
            .hget(self.conv("idem"), idempotency_key)
            .await
            .map_err(failed("Failed to read from Redis"))?;
        let Some(id) = id else { return Ok(None) };
        let found = self.conversions_range(&id, &id, 1, false).await?;
        Ok(found.into_iter().next().map(|(_, c)| c))
    }

    async fn count_conversion(
        &self,
        code: &str,
        conversion_id: &str,
        fields: &[(String, i64)],
        refund: Option<&RefundCap>,
    ) -> Result<Counted> {
        let mut inv = self.count_conversion.prepare_invoke();
        inv.key(self.link_key(code, "orders"))
            .key(self.link_key(code, "stats"))
            .key(self.link_key(code, "refunded"))
            .key(self.link_key(code, "rollups"))
            .key(self.link_key(code, "hours_from"))
            .arg(conversion_id);
        match refund {
            Some(r) => inv.arg(&r.order).arg(r.amount).arg(r.limit),
            None => inv.arg("").arg(0).arg(0),
        };
        inv.arg(fields.len());
        for (f, n) in fields {
            inv.arg(f).arg(n);
        }
        for (f, n) in fields {
            for r in crate::counters::rollups(f) {
                inv.arg(r).arg(n);
            }
        }
        let counted: i64 = self
            .invoke_durably(&inv, &self.link_key(code, "orders"))
            .await
            .map_err(failed("Failed to count a conversion in Redis"))?;
        Ok(match counted {
            1 => Counted::Now,
            2 => Counted::OverRefund,
            _ => Counted::Before,
        })
    }

    async fn update_conversion(&self, conversion: &Conversion) -> Result<()> {
        let mut conn = self.conn();
        let _: i64 = self
            .update_conversion
            .key(self.conv("idem"))
            .key(self.conv("recs"))
            .arg(conversion.idempotency_key())
            .arg(serde_json::to_string(conversion)?)
            .invoke_async(&mut conn)
            .await
            .map_err(failed("Failed to update a conversion in Redis"))?;
        Ok(())
    }

    async fn add_pending(&self, order_key: &str, refund_key: &str) -> Result<()> {
        let mut conn = self.conn();
        conn.sadd(self.conv(&format!("pending:{order_key}")), refund_key)
            .await
            .map_err(failed("Failed to remember a pending refund in Redis"))
    }

    async fn is_counted(&self, code: &str, conversion_id: &str) -> Result<bool> {
        let mut conn = self.conn();
        conn.sismember(self.link_key(code, "orders"), conversion_id)
            .await
            .map_err(failed("Failed to read whether a conversion is counted"))
    }

    async fn pending(&self, order_key: &str) -> Result<Vec<String>> {
        let mut conn = self.conn();
        conn.smembers(self.conv(&format!("pending:{order_key}")))
            .await
            .map_err(failed("Failed to read pending refunds from Redis"))
    }

    async fn remove_pending(&self, order_key: &str, refund_key: &str) -> Result<()> {
        let mut conn = self.conn();
        conn.srem(self.conv(&format!("pending:{order_key}")), refund_key)
            .await
            .map_err(failed("Failed to forget a pending refund in Redis"))
    }

    async fn scan_conversions(&self, after: Option<Cursor>, limit: usize) -> Result<Scan<Conversion>> {
        let end = match after {
            Some(c) => {
                let [ms, seq] = c.position::<2>()?;
                format!("({}", stream_id(EntryId { ms, seq }))
            }
            None => "+".to_owned(),
        };
        let rows = self.conversions_range(&end, "-", limit, true).await?;
        Ok(rows
            .into_iter()
            .map(|(id, c)| (Cursor::mint([id.ms, id.seq]), c))
            .collect())
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

    /// Conversion log entries between `a` and `b` (XREVRANGE when `rev`), with their ids.
    async fn conversions_range(&self, a: &str, b: &str, count: usize, rev: bool) -> Result<Vec<(EntryId, Conversion)>> {
        let mut conn = self.conn();
        let reply: redis::streams::StreamRangeReply = if rev {
            conn.xrevrange_count(self.conv("log"), a, b, count).await
        } else {
            conn.xrange_count(self.conv("log"), a, b, count).await
        }
        .map_err(failed("Failed to read conversions from Redis"))?;
        // Conversions whose status changed keep their new version beside the log.
        let changed: Vec<Option<String>> = if reply.ids.is_empty() {
            vec![]
        } else {
            redis::cmd("HMGET")
                .arg(self.conv("recs"))
                .arg(reply.ids.iter().map(|e| e.id.as_str()).collect::<Vec<_>>())
                .query_async(&mut conn)
                .await
                .map_err(failed("Failed to read conversions from Redis"))?
        };
        let mut out = Vec::with_capacity(reply.ids.len());
        for (e, changed) in reply.ids.iter().zip(changed) {
            let id = parse_stream_id(&e.id)
                .ok_or_else(|| StoreError::corrupt(format!("conversion entry id {} is not a stream id", e.id)))?;
            let conversion = match (changed, e.map.get("j")) {
                (Some(json), _) => serde_json::from_str(&json)?,
                (None, Some(Value::BulkString(j))) => serde_json::from_slice(j)?,
                (None, _) => return Err(StoreError::corrupt(format!("conversion entry {} has no record", e.id))),
            };
            out.push((id, conversion));
        }
        Ok(out)
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

/// The coupon index key of a link, `''` for none (the scripts' convention).
/// The key a link's coupon had under the older rule, when it differs (`CouponKey::legacy`).
fn legacy_coupon_arg(link: &Link) -> String {
    link.coupon
        .as_ref()
        .and_then(|c| CouponKey::legacy(c.as_str()))
        .map(|k| k.as_str().to_owned())
        .unwrap_or_default()
}

fn coupon_arg(link: &Link) -> String {
    link.coupon
        .as_ref()
        .map(|c| c.key().as_str().to_owned())
        .unwrap_or_default()
}

fn conflict(what: &str, which: String) -> std::result::Result<(), LinkConflict> {
    match what {
        "code" => Err(LinkConflict::Code(which)),
        "coupon" => Err(LinkConflict::Coupon(which)),
        "stale" => Err(LinkConflict::Stale),
        _ => Ok(()),
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
    fn text_from_redis_is_kept_as_is_and_bytes_that_are_not_utf8_read_as_before() {
        assert_eq!(text(b"{\"code\":\"bench\"}"), "{\"code\":\"bench\"}");
        assert_eq!(text("café ☕".as_bytes()), "café ☕");
        for bad in [&b"ab\xffcd"[..], b"\xc3", b"x\xe2\x82"] {
            assert_eq!(text(bad), String::from_utf8_lossy(bad));
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
    fn a_cluster_moving_a_slot_is_unavailable_and_a_script_error_is_a_bug() {
        let err = |resp: &[u8]| redis::parse_redis_value(resp).unwrap().extract_error().unwrap_err();
        for moving in [
            &b"-ASK 3999 127.0.0.1:6381\r\n"[..],
            b"-MOVED 3999 127.0.0.1:6381\r\n",
            b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
        ] {
            assert!(matches!(failed("x")(err(moving)), StoreError::Unavailable(_)));
        }
        let bug = err(b"-ERR user_script:1: Script attempted to access nonexistent global variable\r\n");
        assert!(matches!(failed("x")(bug), StoreError::Corrupt(_)));
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

    #[test]
    fn a_redis_that_would_lose_data_is_named() {
        let durable = "# Persistence\r\naof_enabled:1\r\n# Memory\r\nmaxmemory_policy:noeviction\r\n";
        assert!(durability_warnings(durable).is_empty());
        let forgetful = "# Persistence\r\naof_enabled:0\r\n# Memory\r\nmaxmemory_policy:allkeys-lru\r\n";
        let said = durability_warnings(forgetful);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].contains("appendonly yes") && said[1].contains("allkeys-lru"),
            "{said:?}"
        );
        // Fields it does not find are not judged.
        assert!(durability_warnings("").is_empty());
    }

    #[test]
    fn stream_ids_round_trip() {
        let e = EntryId {
            ms: 1_700_000_000_000,
            seq: 5,
        };
        assert_eq!(stream_id(e), "1700000000000-5");
        let edges = EntryId { ms: 0, seq: u64::MAX };
        assert_eq!(stream_id(edges), "0-18446744073709551615");
        assert_eq!(parse_stream_id(&stream_id(edges)), Some(edges));
        assert_eq!(parse_stream_id("1700000000000-5"), Some(e));
        assert_eq!(parse_stream_id("x-1"), None);
    }
}
