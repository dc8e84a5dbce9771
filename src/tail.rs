//! `kolink tail --group NAME`: every click and conversion as NDJSON on stdout, for a warehouse.
//!
//! A Redis consumer group on every link's click stream and on the conversion log (see
//! `store::redis::tail`) remembers what the group has had, so several readers of one group
//! share the work and a reader that stops goes on where it left off. Each round takes what is
//! new on every stream, writes one line per entry, flushes, and only then acknowledges: an entry
//! is delivered at least once (a reader killed between writing and acknowledging writes it again
//! when it comes back; de-duplicate on `id`). New links are picked up each round. Idle, it reads
//! again after `POLL`, waiting longer (to `POLL_MAX`) while nothing comes (the streams are
//! many, one per link, so it polls instead of blocking);
//! every `SWEEP` it delivers again what it took and lost, claims what readers that never came
//! back left idle, and lists every link again.
//!
//! When Redis stops answering (a restart, a failover, a stall), a following reader says so on
//! stderr and tries again, after `RETRY` and then longer (to `RETRY_MAX`), going on where the
//! group stopped; only `--once` gives up.
//!
//! Lines: `{"type": "click", "link": "<code>", "id": "<kl_cid>", "at": …, …}` with the columns
//! of the API's click export, and `{"type": "conversion", …}` with a conversion as the API lists
//! it when it was accepted (later status changes are not sent again).

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::clock::SystemClock;
use crate::config::{Settings, StorageKind};
use crate::export::{click_object, click_row};
use crate::store::redis::{RedisStore, TailStream};
use crate::store::StoreError;

/// Entries taken from each stream per round.
const COUNT: usize = 1000;
/// How long an idle reader waits before it reads again: `POLL`, doubling while nothing comes up
/// to `POLL_MAX` (each read is one command per link).
const POLL: Duration = Duration::from_millis(500);
const POLL_MAX: Duration = Duration::from_secs(8);
/// How often a reader delivers again what it took and did not acknowledge (a read whose answer
/// was lost), claims what other consumers left idle this long, and lists every link again
/// (links are found by id, and ids are reserved before their links are written).
const SWEEP: Duration = Duration::from_secs(60);
/// How long a following reader waits before trying Redis again, doubling to `RETRY_MAX` while
/// it does not answer.
const RETRY: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Links are looked for from this many ids below the highest seen, each round.
const ID_SLACK: u64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailOptions {
    pub group: String,
    pub consumer: String,
    /// Stop once nothing new is left, instead of following.
    pub once: bool,
}

pub const USAGE: &str = "\
Usage: kolink tail --group NAME [--consumer NAME] [--once]

Streams every click and conversion as NDJSON on stdout, through a Redis consumer group:
what the group has had is not sent again; entries are acknowledged after they are written
(at least once: de-duplicate on id). --consumer names this reader within the group (default:
the host name; readers sharing a group need names of their own, and a reader started again
under its name gets what it had not acknowledged); --once stops when nothing new is left.
Needs the Redis store (KOLINK_REDIS_URL or KOLINK_REDIS_CLUSTER).";

impl TailOptions {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut group = None;
        let mut consumer = None;
        let mut once = false;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--group" => group = Some(it.next().ok_or("--group needs a name")?.clone()),
                "--consumer" => consumer = Some(it.next().ok_or("--consumer needs a name")?.clone()),
                "--once" => once = true,
                other => return Err(format!("unknown option '{other}'")),
            }
        }
        let group = group.ok_or("--group NAME is required")?;
        for (what, v) in [("group", Some(&group)), ("consumer", consumer.as_ref())] {
            if v.is_some_and(|v| v.is_empty() || v.len() > 128 || v.chars().any(|c| c.is_control() || c == ' ')) {
                return Err(format!("the {what} name must be 1 to 128 characters without spaces"));
            }
        }
        let consumer = consumer.unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            match host.trim() {
                "" => "kolink-tail".to_owned(),
                h => h.to_owned(),
            }
        });
        Ok(TailOptions { group, consumer, once })
    }
}

/// Runs the reader until stopped (or, with `once`, until nothing new is left).
pub async fn run(settings: &Settings, opts: &TailOptions, out: &mut impl Write) -> anyhow::Result<()> {
    if settings.storage() != StorageKind::Redis {
        bail!("kolink tail reads Redis streams: set KOLINK_REDIS_URL or KOLINK_REDIS_CLUSTER");
    }
    let target = settings.redis_target().context("no Redis is set")?;
    let retention = Duration::from_secs(u64::from(settings.click_retention_days) * 86_400);
    // A following reader started with its Redis waits for it, as `kolink serve` does.
    let wait = if opts.once {
        Duration::ZERO
    } else {
        crate::startup::START_WAIT
    };
    let store = crate::startup::connect_waiting(wait, || {
        RedisStore::connect(&target, &settings.redis_prefix, retention, 0, Arc::new(SystemClock))
    })
    .await?;
    let mut wait = RETRY;
    loop {
        match follow(&store, opts, out, &mut wait).await {
            Ok(()) => return Ok(()),
            Err(e) if !opts.once && unavailable(&e) => {
                tracing::warn!(error = %format!("{e:#}"), "Redis does not answer: trying again in {} s", wait.as_secs());
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                }
                wait = (wait * 2).min(RETRY_MAX);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether `e` is Redis not answering, which may pass, rather than something to stop for.
fn unavailable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<StoreError>()
            .is_some_and(|s| matches!(s, StoreError::Unavailable(_)))
    })
}

/// One run of the reader, from the group's own pending entries on: ends when stopped (or, with
/// `once`, when nothing new is left), or at the first error. `wait` goes back to `RETRY` after
/// every round Redis answered.
async fn follow(
    store: &RedisStore,
    opts: &TailOptions,
    out: &mut impl Write,
    wait: &mut Duration,
) -> anyhow::Result<()> {
    let mut streams = vec![TailStream::Conversions];
    store.create_groups(&opts.group, &streams).await?;
    let mut known: HashSet<u64> = HashSet::new();
    let mut highest: u64 = 0;
    // First what this consumer took before and did not acknowledge (and what others left idle),
    // then what is new; again at each sweep.
    let mut again = true;
    let mut swept = Instant::now();
    let mut poll = POLL;
    loop {
        let from = if again { 0 } else { highest.saturating_sub(ID_SLACK) };
        let added: Vec<TailStream> = store
            .links_after(from)
            .await?
            .into_iter()
            .filter(|(_, id)| known.insert(*id))
            .map(|(code, link_id)| {
                highest = highest.max(link_id);
                TailStream::Clicks { code, link_id }
            })
            .collect();
        if !added.is_empty() {
            store.create_groups(&opts.group, &added).await?;
            streams.extend(added);
        }
        if again {
            store
                .claim_idle(&opts.group, &opts.consumer, &streams, SWEEP, COUNT)
                .await?;
        }
        let taken = store.take(&opts.group, &opts.consumer, &streams, COUNT, again).await?;
        *wait = RETRY;
        for (i, c) in &taken.clicks {
            let TailStream::Clicks { code, link_id } = &streams[*i] else {
                continue;
            };
            let mut line = serde_json::Map::new();
            line.insert("type".into(), "click".into());
            line.insert("link".into(), code.as_str().into());
            line.extend(click_object(c, &click_row(*link_id, c)));
            writeln!(out, "{}", Value::Object(line))?;
        }
        for c in &taken.conversions {
            let mut line = serde_json::Map::new();
            line.insert("type".into(), "conversion".into());
            if let Value::Object(fields) = serde_json::to_value(c)? {
                line.extend(fields);
            }
            writeln!(out, "{}", Value::Object(line))?;
        }
        out.flush().context("Failed to write to stdout")?;
        store.acknowledge(&opts.group, &streams, &taken).await?;
        if !taken.is_empty() {
            poll = POLL;
        } else {
            if again {
                again = false;
                continue;
            }
            if opts.once {
                return Ok(());
            }
            if swept.elapsed() >= SWEEP {
                again = true;
                swept = Instant::now();
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
            poll = (poll * 2).min(POLL_MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_need_a_group_and_take_a_consumer() {
        let o = TailOptions::parse(&args(&["--group", "wh", "--consumer", "a1", "--once"])).unwrap();
        assert_eq!(
            o,
            TailOptions {
                group: "wh".into(),
                consumer: "a1".into(),
                once: true
            }
        );
        assert!(TailOptions::parse(&args(&["--once"])).unwrap_err().contains("--group"));
        assert!(TailOptions::parse(&args(&["--group"])).is_err());
        assert!(TailOptions::parse(&args(&["--group", "a b"])).is_err());
        assert!(TailOptions::parse(&args(&["--group", "wh", "--follow"]))
            .unwrap_err()
            .contains("--follow"));
    }
}
