//! The pruning of old hours (`kolink::hours`) on a store of 100,000 links, of which `active`
//! have a click a day for 120 days: how long a first prune (30 days of hours past a 90-day
//! retention), the same day's prune again (as at a restart) and a day's prune take, and how
//! long a click write waits meanwhile (one every 5 ms beside the prune). A benchmark, not a
//! test.
//!
//!   cargo bench --bench prune_hours -- [embedded|redis] [active=10000]
//!
//! For Redis it starts its own `redis-server` (no persistence) on a free port.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use kolink::clock::SystemClock;
use kolink::counters::{click_fields, visit};
use kolink::domain::{ClickInfo, Dimension, Dimensions, EntryId, Link};
use kolink::store::embedded::EmbeddedStore;
use kolink::store::redis::{RedisStore, Target};
use kolink::store::{NewClick, Store};

const LINKS: u64 = 100_000;
const DAYS: i64 = 120;

fn link(id: u64) -> Link {
    serde_json::from_value(serde_json::json!({
        "id": id, "code": format!("l{id:06}"), "campaign": "c", "kol": "k",
        "destination": "https://shop.example.com/", "target_url": "https://shop.example.com/",
        "utm": {"source": "instagram", "medium": "kol", "campaign": "c", "content": "k", "term": null},
        "cost": "0.00", "coupon": null, "tags": [], "status": "active",
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "expires_at": null,
    }))
    .expect("a link record")
}

fn click(id: u64, at: DateTime<Utc>, seq: u64) -> NewClick {
    let info = ClickInfo {
        visitor: format!("v{seq}"),
        dims: Dimensions::default().with(Dimension::Device, "mobile"),
        ..ClickInfo::default()
    };
    let ms = at.timestamp_millis() as u64;
    NewClick {
        code: format!("l{id:06}"),
        entry: EntryId { ms, seq },
        at: Utc.timestamp_millis_opt(ms as i64).unwrap(),
        fields: click_fields(at, &info),
        visit: visit(at, &info),
        info,
    }
}

/// A `redis-server` of its own, stopped when dropped.
struct Redis(Child, u16);

impl Redis {
    fn start(dir: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (apt install redis-server)");
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis(child, port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` adds `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let kind = args.first().map_or("embedded", String::as_str);
    let active: u64 = args
        .get(1)
        .map_or(10_000, |a| a.parse().expect("active links: a number"));
    let dir = tempfile::tempdir().expect("a temp dir");
    let retention = Duration::from_secs(400 * 86_400);
    let mut _redis = None;
    let store: Arc<dyn Store> = match kind {
        "redis" => {
            let redis = Redis::start(dir.path());
            let url = format!("redis://127.0.0.1:{}/", redis.1);
            _redis = Some(redis);
            Arc::new(
                RedisStore::connect(&Target::Single(url), "kl", retention, 0, Arc::new(SystemClock))
                    .await
                    .expect("Redis"),
            )
        }
        _ => Arc::new(
            EmbeddedStore::open(&dir.path().join("data"), retention, Arc::new(SystemClock))
                .await
                .expect("the embedded store"),
        ),
    };

    let ids: Vec<u64> = (1..=LINKS).collect();
    for chunk in ids.chunks(1_000) {
        let links: Vec<Link> = chunk.iter().map(|i| link(*i)).collect();
        store.create_links(&links).await.expect("links").expect("new links");
    }
    let now = Utc::now();
    let t = Instant::now();
    let mut seq = 0;
    for d in 0..DAYS {
        let mut batch = Vec::with_capacity(2_000);
        for id in 1..=active {
            seq += 1;
            let at = now - TimeDelta::days(DAYS - d) + TimeDelta::hours((id % 24) as i64 - 12);
            batch.push(click(id, at, seq));
            if batch.len() == 2_000 {
                store.write_clicks(&batch).await.expect("clicks");
                batch.clear();
            }
        }
        if !batch.is_empty() {
            store.write_clicks(&batch).await.expect("clicks");
        }
    }
    println!(
        "{kind}: {LINKS} links, {active} with a click a day for {DAYS} days ({seq} clicks, written in {:.0} s)",
        t.elapsed().as_secs_f64()
    );

    let keep = (now - TimeDelta::days(89)).date_naive();
    let next = keep.succ_opt().expect("a next day");
    for (what, keep_from) in [
        ("first prune", keep),
        ("the same day again (a restart)", keep),
        ("a day's prune", next),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let probe = {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut worst, mut n) = (Duration::ZERO, 0u64);
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let c = click(1, Utc::now(), 1_000_000_000 + n);
                    let t = Instant::now();
                    store.write_clicks(&[c]).await.expect("a click");
                    worst = worst.max(t.elapsed());
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (worst, n)
            })
        };
        let t = Instant::now();
        let removed = store.prune_hours(keep_from).await.expect("a prune");
        let took = t.elapsed();
        stop.store(true, Ordering::SeqCst);
        let (worst, n) = probe.await.expect("the probe");
        println!(
            "{kind}: {what}: {removed} fields in {:.1} s; a click write waited at most {:.1} ms ({n} writes)",
            took.as_secs_f64(),
            worst.as_secs_f64() * 1_000.0
        );
    }
}
