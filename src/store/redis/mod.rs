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
//!
//! This file holds the connection, the key builders and the start; the traits are implemented
//! by part: `links` (records, links and their indexes), `clicks` (the click log), `counters`
//! (counters, rollups, insights, reports' reads, pruning), `conversions`; `migrate` brings an
//! older layout up to date, `scripts` holds the Lua, `conn` the connection and its identity guard,
//! `bulk` and `resp` the reports' own reading of replies, `tail` `kolink tail`.

mod bulk;
mod clicks;
mod conn;
mod conversions;
mod counters;
mod links;
mod migrate;
mod resp;
mod scripts;
mod tail;

pub use tail::{TailStream, Taken};

use std::time::Duration;

use anyhow::Context;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, FromRedisValue, Script};

use super::{Kind, LinkIndex, Result, Store, StoreError};
use crate::clock::SharedClock;
use crate::domain::EntryId;
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

    /// Clicks before this id are past their retention (`MINID` of the click scripts' `XADD`s and `XTRIM`s).
    fn minid(&self) -> String {
        let kept = self.click_retention_ms.load(std::sync::atomic::Ordering::Relaxed);
        let cutoff = self.clock.now().timestamp_millis() - i64::try_from(kept).unwrap_or(i64::MAX);
        cutoff.max(0).to_string()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_redis_is_kept_as_is_and_bytes_that_are_not_utf8_read_as_before() {
        assert_eq!(text(b"{\"code\":\"bench\"}"), "{\"code\":\"bench\"}");
        assert_eq!(text("café ☕".as_bytes()), "café ☕");
        for bad in [&b"ab\xffcd"[..], b"\xc3", b"x\xe2\x82"] {
            assert_eq!(text(bad), String::from_utf8_lossy(bad));
        }
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
