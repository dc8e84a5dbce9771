//! The connection under the Redis store: one Redis, or a Redis Cluster.
//!
//! Every command and pipeline whose keys share one hash slot goes through [`Conn`] the same way
//! on either (the cluster client routes it to the slot's master, follows `MOVED`/`ASK` and
//! refreshes its view of the cluster). Work over many links' keys (a campaign's counters, a
//! click group of many links) is a [`Spread`]: on one Redis it is one pipeline; on a cluster it
//! is split into one pipeline per shard, sent concurrently, by a map of slot ranges to shards
//! that is read with `CLUSTER SLOTS` and read again whenever a shard answers `MOVED` or `ASK`
//! (slots moved to another shard).
//!
//! With `wait_replicas` set, a spread that writes ends each pipeline with `WAIT`: its answer
//! counts only once that many replicas of each shard it wrote to hold the writes, so a master
//! that dies after answering loses nothing its replica is promoted with.
//!
//! Every command is held to the store's identity ([`Foreign`]): a Redis found not to keep the
//! visitor-hash key the process started with is refused every command, as an unavailable one.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// How long `WAIT` waits for replicas before the write counts as not done (the click goes to
/// the spool and is written again, once, later). A replica acknowledges within a round trip;
/// below the redirect's 250 ms, so that a shard without a replica costs a write attempt, not a
/// redirect's whole wait.
const WAIT_TIMEOUT: Duration = Duration::from_millis(200);

/// Redis Cluster's number of hash slots.
const SLOTS: u16 = 16384;

/// A connection to one Redis or a cluster, refusing every command while its Redis is found
/// not to be this process's store (`Foreign`).
/// A connection to one Redis or a cluster, held to the store's identity (`Foreign`).
#[derive(Clone)]
pub(super) struct Conn {
    link: Link,
    foreign: Foreign,
}

#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Link::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }
}

/// Whether the Redis answering is this process's store, as far as is known. Once a process
/// holds its store's identity (`arm`: the key of its visitor hashes, as read at start), a Redis
/// found not to keep it (it came back flushed, restarted without its data, or another Redis
/// took the address) is `FOREIGN`: every command fails as an unavailable store's would, so that
/// clicks wait in the spool, links redirect from the link book and the API answers 503, and
/// nothing is read from or written to it. On one Redis, a dropped connection puts it
/// `IN_DOUBT`: the next command reads the identity first, then runs or fails. A store's
/// connections share one.
#[derive(Clone, Default)]
pub(super) struct Foreign(Arc<ForeignState>);

#[derive(Default)]
pub(super) struct ForeignState {
    state: AtomicU8,
    /// One read of the identity at a time: the commands that find it in doubt wait for the
    /// one under way rather than each read it (a slow Redis would get them all at once).
    reading: tokio::sync::Mutex<()>,
    /// The key that holds the identity, and its value.
    identity: std::sync::OnceLock<(String, String)>,
    /// Woken when a dropped connection puts the identity in doubt.
    doubt: tokio::sync::Notify,
}

const REFUSAL: &str = "Redis is not this process's store";
const REFUSAL_DETAIL: &str =
    "it does not hold the keys this process started with (flushed, restarted without its data, or another Redis)";

/// No identity held yet (a start, before the store's secrets are read): nothing is refused.
const UNARMED: u8 = 0;
const CONFIRMED: u8 = 1;
const IN_DOUBT: u8 = 2;
const FOREIGN: u8 = 3;

impl Foreign {
    fn state(&self) -> u8 {
        self.0.state.load(Ordering::SeqCst)
    }

    /// Whether Redis was found not to be this process's store (commands are refused).
    pub(super) fn is_foreign(&self) -> bool {
        self.state() == FOREIGN
    }

    /// Whether the identity must be read before the next command.
    pub(super) fn in_doubt(&self) -> bool {
        self.state() == IN_DOUBT
    }

    /// Holds the store to `value`, kept under `key` (as read at start).
    pub(super) fn arm(&self, key: String, value: String) {
        if self.0.identity.set((key, value)).is_ok() {
            let _ = self
                .0
                .state
                .compare_exchange(UNARMED, CONFIRMED, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// A connection dropped: whatever answers next may be another Redis.
    fn doubt(&self) {
        if self
            .0
            .state
            .compare_exchange(CONFIRMED, IN_DOUBT, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.0.doubt.notify_one();
        }
    }

    /// Waits until a dropped connection puts the identity in doubt.
    pub(super) async fn doubted(&self) {
        self.0.doubt.notified().await
    }

    /// Reads the identity over `link` and says what it found: `Ok` when Redis is this
    /// process's store (or none is held yet), the refusal when it is not, Redis's error when
    /// it does not answer.
    async fn confirm(&self, link: &mut Link) -> RedisResult<()> {
        let Some((key, expected)) = self.0.identity.get() else {
            return Ok(());
        };
        let doubted = self.state() == IN_DOUBT;
        let _one = self.0.reading.lock().await;
        // A doubt the read before this one settled.
        match self.state() {
            CONFIRMED if doubted => return Ok(()),
            FOREIGN if doubted => return Err(Self::refusal()),
            _ => {}
        }
        let found: Option<String> = match redis::cmd("GET").arg(key).query_async(link).await {
            Ok(found) => found,
            Err(e) => {
                if Self::dropped(&e) && matches!(link, Link::Single(_)) {
                    self.doubt();
                }
                return Err(e);
            }
        };
        let ours = found.as_deref() == Some(expected.as_str());
        let was = self
            .0
            .state
            .swap(if ours { CONFIRMED } else { FOREIGN }, Ordering::SeqCst);
        match (ours, was == FOREIGN) {
            (true, true) => tracing::warn!(
                "Redis is this process's store again: clicks waiting in the spool are written, and it is read and written as before"
            ),
            (false, false) => tracing::error!(
                flushed = found.is_none(),
                "Redis answers but is not this process's store ({}): nothing is read from or written to it; clicks wait in the spool and links redirect from the link book until its data is back, or this process is restarted to start on this Redis",
                if found.is_none() {
                    "it holds none of its keys: flushed, or restarted without its data"
                } else {
                    "it holds another store's keys"
                }
            ),
            _ => {}
        }
        match ours {
            true => Ok(()),
            false => Err(Self::refusal()),
        }
    }

    /// Whether an error says the connection dropped (or never came): what answers after it
    /// may be another Redis. A reply that is late is not one (a frozen or slow Redis is the
    /// same Redis), nor this guard's own refusal.
    fn dropped(e: &RedisError) -> bool {
        (e.is_connection_dropped() || e.is_connection_refusal() || e.is_io_error())
            && !e.is_timeout()
            && !Self::is_refusal(e)
    }

    /// The error every command gets while Redis is foreign: an I/O error's kind, so that it is
    /// an unavailable store's everywhere.
    pub(super) fn refusal() -> RedisError {
        RedisError::from((ErrorKind::Io, REFUSAL, REFUSAL_DETAIL.to_owned()))
    }

    /// Whether `e` is `refusal`'s.
    pub(super) fn is_refusal(e: &RedisError) -> bool {
        e.detail() == Some(REFUSAL_DETAIL)
    }
}

impl Conn {
    pub(super) fn single(c: ConnectionManager, foreign: Foreign) -> Self {
        Conn {
            link: Link::Single(c),
            foreign,
        }
    }

    pub(super) fn cluster(c: ClusterConnection, foreign: Foreign) -> Self {
        Conn {
            link: Link::Cluster(c),
            foreign,
        }
    }

    /// Reads the store's identity now (`Foreign::confirm`).
    pub(super) async fn confirm_identity(&self) -> RedisResult<()> {
        self.foreign.confirm(&mut self.link.clone()).await
    }

    fn cluster_link(&self) -> Option<ClusterConnection> {
        match &self.link {
            Link::Cluster(c) => Some(c.clone()),
            Link::Single(_) => None,
        }
    }

    /// Runs `f` on the link as the identity allows: refused while Redis is foreign, after
    /// reading the identity while it is in doubt; a dropped connection (one Redis) puts it in
    /// doubt.
    fn guarded<'a, T: Send + 'a>(
        &'a mut self,
        f: impl FnOnce(&'a mut Link) -> RedisFuture<'a, T> + Send + 'a,
    ) -> RedisFuture<'a, T> {
        let Conn { link, foreign } = self;
        Box::pin(async move {
            match foreign.state() {
                FOREIGN => return Err(Foreign::refusal()),
                IN_DOUBT => foreign.confirm(link).await?,
                _ => {}
            }
            let single = matches!(link, Link::Single(_));
            let r = f(link).await;
            if let Err(e) = &r {
                if single && Foreign::dropped(e) {
                    foreign.doubt();
                }
            }
            r
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.guarded(move |link| link.req_packed_command(cmd))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.guarded(move |link| link.req_packed_commands(pipeline, offset, count))
    }

    fn get_db(&self) -> i64 {
        self.link.get_db()
    }
}

/// The hash slot of a key: CRC16 of its hash tag (the part between the first `{` and the next
/// `}`, when not empty) or of the whole key, modulo 16384.
pub(super) fn slot_of(key: &str) -> u16 {
    let k = key.as_bytes();
    let tagged = k.iter().position(|&b| b == b'{').and_then(|open| {
        let close = k[open + 1..].iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &k[open + 1..open + 1 + close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(k)) % SLOTS
}

/// Commands over keys of many slots, in one pipeline: each command is added after [`Spread::on`]
/// names a key of the slot it touches.
pub(super) struct Spread {
    pipe: Pipeline,
    slots: Vec<u16>,
    cluster: bool,
    /// A command's error is its value, not the spread's error.
    keep_errors: bool,
}

impl Spread {
    /// The pipeline, to add exactly one command touching the slot of `key`.
    pub(super) fn on(&mut self, key: &str) -> &mut Pipeline {
        if self.cluster {
            self.slots.push(slot_of(key));
        }
        &mut self.pipe
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pipe.is_empty()
    }

    /// Each command's error comes back as its value (`Value::ServerError`).
    pub(super) fn keeping_errors(mut self) -> Self {
        self.keep_errors = true;
        self
    }
}

/// Slot ranges and the shard (index) serving each, sorted by first slot.
type ShardMap = Arc<Vec<(u16, u16, usize)>>;

/// The store's connection and how it spreads work over a cluster.
pub(super) struct Redis {
    pub(super) conn: Conn,
    /// Writes that wait for replicas go on a connection of their own: Redis answers a
    /// connection's commands in order, so reads behind a `WAIT` would wait with it.
    waiting: Conn,
    /// Replicas each write must reach before it counts (`WAIT`); 0: no wait.
    pub(super) wait_replicas: usize,
    shards: RwLock<ShardMap>,
}

impl Redis {
    /// `waiting`: a second connection to the same Redis, for writes that wait for replicas.
    pub(super) fn new(conn: Conn, waiting: Conn, wait_replicas: usize) -> Self {
        Redis {
            conn,
            waiting,
            wait_replicas,
            shards: RwLock::new(Arc::new(Vec::new())),
        }
    }

    fn conn_for(&self, wait: Option<usize>) -> Conn {
        match wait {
            Some(_) => self.waiting.clone(),
            None => self.conn.clone(),
        }
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.conn.link, Link::Cluster(_))
    }

    pub(super) fn spread(&self) -> Spread {
        Spread {
            pipe: redis::pipe(),
            slots: Vec::new(),
            cluster: self.is_cluster(),
            keep_errors: false,
        }
    }

    /// Reads which shard serves which slots (`CLUSTER SLOTS`).
    pub(super) async fn refresh_shards(&self) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        let reply: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut conn).await?;
        let mut masters: Vec<Vec<u8>> = Vec::new();
        let mut map = Vec::new();
        for range in reply {
            let Value::Array(parts) = range else { continue };
            let (Some(Value::Int(first)), Some(Value::Int(last)), Some(Value::Array(master))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            // A master is named by its node id (third item); its address stands in when absent.
            let name = match (master.get(2), master.first(), master.get(1)) {
                (Some(Value::BulkString(id)), _, _) => id.clone(),
                (_, Some(Value::BulkString(host)), Some(Value::Int(port))) => {
                    let mut n = host.clone();
                    n.extend_from_slice(format!(":{port}").as_bytes());
                    n
                }
                _ => continue,
            };
            let shard = match masters.iter().position(|m| *m == name) {
                Some(i) => i,
                None => {
                    masters.push(name);
                    masters.len() - 1
                }
            };
            map.push((*first as u16, *last as u16, shard));
        }
        map.sort_unstable();
        *self.shards.write().expect("shard map lock") = Arc::new(map);
        Ok(())
    }

    fn shard_of(map: &[(u16, u16, usize)], slot: u16) -> Option<usize> {
        let i = map.partition_point(|(first, _, _)| *first <= slot);
        let (_, last, shard) = map.get(i.checked_sub(1)?)?;
        (slot <= *last).then_some(*shard)
    }

    /// Runs a spread: one value per command, in order, or the first command's error. `wait`:
    /// the commands write, and count only once `wait_replicas` replicas hold them.
    pub(super) async fn run(&self, spread: Spread, wait: bool) -> RedisResult<Vec<Value>> {
        if spread.is_empty() {
            return Ok(vec![]);
        }
        let wait = (wait && self.wait_replicas > 0).then_some(self.wait_replicas);
        if !self.is_cluster() {
            let mut pipe = spread.pipe;
            pipe_with_wait(&mut pipe, wait);
            let mut conn = self.conn_for(wait);
            let values = conn.req_packed_commands(&pipe, 0, pipe.len()).await?;
            return answers(values, wait, spread.keep_errors);
        }
        match self.run_by_shard(&spread, wait).await {
            Err(e) if e.redirect_node().is_some() => {
                // Slots moved (or the map is not read yet): read the map again and go once more.
                self.refresh_shards().await?;
                self.run_by_shard(&spread, wait).await
            }
            r => r,
        }
    }

    async fn run_by_shard(&self, spread: &Spread, wait: Option<usize>) -> RedisResult<Vec<Value>> {
        let mut map = self.shards.read().expect("shard map lock").clone();
        if map.is_empty() {
            self.refresh_shards().await?;
            map = self.shards.read().expect("shard map lock").clone();
        }
        // Commands per shard, keeping their positions.
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, &slot) in spread.slots.iter().enumerate() {
            // A slot no shard serves (the cluster is changing): its own group, routed by slot.
            let shard = Self::shard_of(&map, slot).unwrap_or(usize::MAX - slot as usize);
            match groups.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((shard, vec![i])),
            }
        }
        // Before any shard's pipeline goes: a refusal after some were sent would be a write
        // made in part.
        if self.conn.foreign.is_foreign() {
            return Err(Foreign::refusal());
        }
        let commands: Vec<&Cmd> = spread.pipe.cmd_iter().collect();
        let mut tasks = Vec::with_capacity(groups.len());
        for (_, idx) in &groups {
            let mut pipe = redis::pipe();
            for &i in idx {
                pipe.add_command(commands[i].clone());
            }
            pipe_with_wait(&mut pipe, wait);
            let route = SingleNodeRoutingInfo::SpecificNode(Route::new(spread.slots[idx[0]], SlotAddr::Master));
            let Some(mut conn) = self.conn_for(wait).cluster_link() else {
                unreachable!("shard pipelines are sent on a cluster only")
            };
            let keep_errors = spread.keep_errors;
            tasks.push(tokio::spawn(async move {
                let n = pipe.len();
                let values = conn.route_pipeline(pipe, 0, n, route).await?;
                answers(values, wait, keep_errors)
            }));
        }
        let mut out = vec![Value::Nil; commands.len()];
        let mut first_err = None;
        for ((_, idx), task) in groups.iter().zip(tasks) {
            let answered = task
                .await
                .map_err(|e| RedisError::from(std::io::Error::other(format!("a shard's pipeline task failed: {e}"))))?;
            match answered {
                Ok(values) => {
                    for (&i, v) in idx.iter().zip(values) {
                        out[i] = v;
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// Ends `pipe` with `WAIT` for `n` replicas when asked (`answers` checks its count).
fn pipe_with_wait(pipe: &mut Pipeline, wait: Option<usize>) {
    if let Some(n) = wait {
        pipe.cmd("WAIT").arg(n).arg(WAIT_TIMEOUT.as_millis() as u64);
    }
}

/// The commands' values, the first server error as the error (unless `keep_errors`); with
/// `wait_for`, the last value is `WAIT`'s count of replicas, which must reach it.
fn answers(mut values: Vec<Value>, wait_for: Option<usize>, keep_errors: bool) -> RedisResult<Vec<Value>> {
    let acked = wait_for.map(|_| match values.pop() {
        Some(Value::Int(a)) => Ok(a),
        Some(Value::ServerError(e)) => Err(e),
        _ => Ok(0),
    });
    // A command's own error first (a missing script must be loaded, whatever the replicas did).
    if !keep_errors {
        if let Some(i) = values.iter().position(|v| matches!(v, Value::ServerError(_))) {
            return Err(values.swap_remove(i).extract_error().unwrap_err());
        }
    }
    if let (Some(n), Some(acked)) = (wait_for, acked) {
        let acked = acked?;
        if (acked as usize) < n {
            return Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("WAIT: {acked} of {n} replicas acknowledged the write in time"),
            )));
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_hash_tag() {
        // Values from Redis' own `CLUSTER KEYSLOT`.
        assert_eq!(slot_of("foo"), 12182);
        assert_eq!(slot_of("kl:{foo}:clicks"), 12182);
        assert_eq!(slot_of("123456789"), 12739);
    }

    #[test]
    fn a_slot_finds_its_shard() {
        let map = vec![(0, 5460, 0), (5461, 10922, 1), (10923, 16383, 2)];
        assert_eq!(Redis::shard_of(&map, 0), Some(0));
        assert_eq!(Redis::shard_of(&map, 5461), Some(1));
        assert_eq!(Redis::shard_of(&map, 16383), Some(2));
        assert_eq!(Redis::shard_of(&[(10, 20, 0)], 5), None);
        assert_eq!(Redis::shard_of(&[(10, 20, 0)], 21), None);
    }
}
