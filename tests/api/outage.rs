//! Store outages under load: redirects keep being answered from the spool, promptly, and every
//! answered click is in the store exactly once after it recovers.
//!
//! The outages are real: redis-server killed (SIGKILL) or frozen (SIGSTOP); the embedded
//! store's disk refusing writes with `ENOSPC` (`DiskFaults`, the same error a full disk gives).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_app, start, stored_click_ids, Backend, Backing, TestApp, PHONE};

/// How a test takes the store away.
#[derive(Debug, Clone, Copy)]
enum Outage {
    RedisKilled,
    RedisFrozen,
    DiskFull,
}

impl Outage {
    fn of(backend: Backend) -> Self {
        match backend {
            Backend::Redis => Outage::RedisKilled,
            Backend::Embedded => Outage::DiskFull,
            Backend::Cluster => unreachable!("a cluster's outage is a failover: see scale_out"),
        }
    }

    fn begin(self, app: &mut TestApp) {
        match self {
            Outage::RedisKilled => app.redis.as_mut().unwrap().kill(),
            Outage::RedisFrozen => app.redis.as_ref().unwrap().pause(),
            Outage::DiskFull => app.faults.set_full(true),
        }
    }

    fn end(self, app: &mut TestApp) {
        match self {
            Outage::RedisKilled => app.redis.as_mut().unwrap().start_again(),
            Outage::RedisFrozen => app.redis.as_ref().unwrap().resume(),
            Outage::DiskFull => app.faults.set_full(false),
        }
    }
}

/// One answer a tapper got.
struct Tap {
    status: u16,
    took: Duration,
    click_id: Option<String>,
}

/// Tappers following `code` in a loop, each tap a different person, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Tap>>>,
}

impl Load {
    fn start(app: &TestApp, code: &str, tappers: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..tappers)
            .map(|t| {
                let (api, url, stop) = (app.api.clone(), app.url(&format!("/{code}")), stop.clone());
                tokio::spawn(async move {
                    let mut taps = Vec::new();
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let began = Instant::now();
                        let r = api
                            .get(&url)
                            .header("user-agent", format!("{PHONE} t{t}-{n}"))
                            .send()
                            .await
                            .expect("the server answers");
                        let took = began.elapsed();
                        let click_id = r
                            .headers()
                            .get("location")
                            .and_then(|l| l.to_str().ok())
                            .and_then(|l| l.rsplit_once("kl_cid=").map(|(_, c)| c.to_owned()));
                        taps.push(Tap {
                            status: r.status().as_u16(),
                            took,
                            click_id,
                        });
                    }
                    taps
                })
            })
            .collect();
        Load { stop, tasks }
    }

    async fn finish(self) -> Vec<Tap> {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(t.await.unwrap());
        }
        all
    }
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let r = app.api.get(app.url("/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Waits until the store answers and the spool is empty.
/// Waits up to 20 s for the `/metrics` value `name` to reach `at_least`; else fails, saying
/// what never happened (`what`).
async fn wait_for_metric(app: &TestApp, name: &str, at_least: f64, what: &str) {
    let until = Instant::now() + Duration::from_secs(20);
    while app.metric(name).await < at_least {
        assert!(Instant::now() < until, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_until_ready(app: &TestApp) -> Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = readyz(app).await;
        if status == 200 && body["status"] == "ready" {
            return body;
        }
        assert!(
            Instant::now() < until,
            "not ready 30 s after the outage: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The heart of it: load, outage, recovery; every answer a prompt `302`; every answered click
/// stored once.
async fn outage_under_load(mut app: TestApp, outage: Outage) {
    app.seed().await;
    assert_eq!(app.tap("amy-serum").await.status(), 302); // the link is known to this process
    let load = Load::start(&app, "amy-serum", 16);
    tokio::time::sleep(Duration::from_millis(500)).await;
    outage.begin(&mut app);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (during, body) = readyz(&app).await;
    assert_eq!(
        body["status"], "degraded",
        "{outage:?}: /readyz during the outage: {during} {body}"
    );
    assert!(body["spool"]["clicks"].as_u64().unwrap() > 0, "{body}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    outage.end(&mut app);
    // The spool drains while the load goes on, and clicks go straight to the store again.
    let ready = wait_until_ready(&app).await;
    assert_eq!(ready["spool"]["clicks"], 0);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let taps = load.finish().await;
    // A store just back may still be slow enough for a few groups to be spooled again.
    wait_until_ready(&app).await;

    let refused: Vec<u16> = taps.iter().map(|t| t.status).filter(|&s| s != 302).collect();
    assert!(
        refused.is_empty(),
        "{outage:?}: {} of {} answers were not 302, the first {:?}",
        refused.len(),
        taps.len(),
        refused.first()
    );
    let mut took: Vec<Duration> = taps.iter().map(|t| t.took).collect();
    took.sort();
    let p99 = took[took.len() * 99 / 100];
    let max = *took.last().unwrap();
    println!("{outage:?}: {} taps, p99 {p99:?}, slowest {max:?}", taps.len());
    // The promise is 250 ms plus an fsync; a shared test machine gets a wide margin here (the
    // figures in the README are this test's, with --nocapture). Before the spool: 1–10.5 s, or 503.
    assert!(max < Duration::from_secs(2), "{outage:?}: a redirect took {max:?}");

    let answered: HashSet<String> = taps.into_iter().filter_map(|t| t.click_id).collect();
    let stored = stored_click_ids(&app.api, &app.address, "amy-serum").await;
    let stored_set: HashSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), stored_set.len(), "a click stored twice");
    let missing: Vec<&String> = answered.iter().filter(|c| !stored_set.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "{outage:?}: {} answered clicks not stored",
        missing.len()
    );
    // The first tap, then the load: exactly once each, in the log and in the counters.
    assert_eq!(stored.len(), answered.len() + 1);
    assert_eq!(app.link_totals("amy-serum").await["clicks"], stored.len() as u64);
}

per_store!(a_store_outage_under_load_breaks_no_link_and_loses_no_click: redis embedded);
async fn a_store_outage_under_load_breaks_no_link_and_loses_no_click(backend: Backend) {
    outage_under_load(spawn_app(backend).await, Outage::of(backend)).await;
}

#[tokio::test]
async fn a_frozen_redis_under_load_breaks_no_link_and_loses_no_click() {
    outage_under_load(spawn_app(Backend::Redis).await, Outage::RedisFrozen).await;
}

/// A full disk, then space again: the embedded store works again without a restart, and
/// `/readyz` said so all along.
#[tokio::test]
async fn the_embedded_store_recovers_from_a_full_disk_without_a_restart() {
    let app = spawn_app(Backend::Embedded).await;
    app.create_campaign("before").await;
    app.faults.set_full(true);
    let r = app
        .post(
            "/api/v1/campaigns",
            &serde_json::json!({"id": "during", "name": "During"}),
        )
        .await;
    crate::helpers::assert_error(r, 503, "storage_unavailable").await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    app.faults.set_full(false);
    wait_until_ready(&app).await;
    app.create_campaign("after").await;
    let ids: Vec<String> = app.get_ok("/api/v1/campaigns").await["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["after", "before"]);
}

per_store!(a_full_spool_with_the_store_down_refuses_redirects_and_says_so: redis embedded);
/// Store down and spool full: only then is a redirect refused, and `/readyz` says why.
async fn a_full_spool_with_the_store_down_refuses_redirects_and_says_so(backend: Backend) {
    let backing = Backing::new(backend);
    let mut settings = crate::helpers::settings_for(&backing);
    settings.spool_max_mb = 1;
    let mut app = start(backing, settings).await;
    app.seed().await;
    app.tap("amy-serum").await;
    let outage = Outage::of(backend);
    outage.begin(&mut app);
    let mut answered = HashSet::new();
    let mut refused = 0;
    // About 3,000 clicks fit in a megabyte; taps come 32 at a time so that this is quick.
    for round in 0..300 {
        let taps: Vec<_> = (0..32)
            .map(|i| {
                let (api, url) = (app.api.clone(), app.url("/amy-serum"));
                tokio::spawn(async move {
                    api.get(url)
                        .header("user-agent", format!("{PHONE} r{round}-{i}"))
                        .send()
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in taps {
            let r = t.await.unwrap();
            match r.status().as_u16() {
                302 => {
                    let loc = r.headers()["location"].to_str().unwrap();
                    answered.insert(loc.rsplit_once("kl_cid=").unwrap().1.to_owned());
                }
                503 => {
                    refused += 1;
                    assert!(r.headers().get("retry-after").is_some());
                }
                s => panic!("unexpected {s}"),
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "the spool never filled");
    assert!(answered.len() > 1000, "only {} clicks spooled", answered.len());
    let (status, body) = readyz(&app).await;
    assert_eq!((status, body["status"].as_str()), (503, Some("unavailable")), "{body}");

    outage.end(&mut app);
    wait_until_ready(&app).await;
    let stored: HashSet<String> = stored_click_ids(&app.api, &app.address, "amy-serum")
        .await
        .into_iter()
        .collect();
    assert!(
        answered.iter().all(|c| stored.contains(c)),
        "an answered click is missing"
    );
    assert_eq!(stored.len(), answered.len() + 1, "refused clicks were not stored");
}

per_store!(the_spool_is_drained_at_shutdown_or_replayed_at_the_next_start: redis embedded);
/// Shutdown replays the spool into a store that is back; a store still down at shutdown leaves
/// the spool on disk, and the next start replays it.
async fn the_spool_is_drained_at_shutdown_or_replayed_at_the_next_start(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.seed().await;
    app.tap("amy-serum").await;
    let outage = Outage::of(backend);

    // Back before shutdown: drained by it.
    outage.begin(&mut app);
    let mut answered = Vec::new();
    for _ in 0..20 {
        answered.push(app.click_id("amy-serum").await);
    }
    outage.end(&mut app);
    let (backing, settings) = app.stop().await;
    let faults = backing.faults.clone();
    let left = kolink::spool::Spool::open(backing.spool.path(), 64 << 20)
        .unwrap()
        .depth();
    assert_eq!(left.clicks, 0, "shutdown left clicks in the spool");

    // Still down at shutdown: left in the spool (shutdown tries for 10 s, then leaves it).
    let mut app = start(backing, settings).await;
    let stored: HashSet<String> = stored_click_ids(&app.api, &app.address, "amy-serum")
        .await
        .into_iter()
        .collect();
    assert!(answered.iter().all(|c| stored.contains(c)), "drained at shutdown");
    answered.push(app.click_id("amy-serum").await); // this process knows the link now
    outage.begin(&mut app);
    for _ in 0..20 {
        answered.push(app.click_id("amy-serum").await);
    }
    let (backing, settings) = app.stop().await;
    let left = kolink::spool::Spool::open(backing.spool.path(), 64 << 20)
        .unwrap()
        .depth();
    assert_eq!(left.clicks, 20, "the clicks the store did not take wait in the spool");
    faults.set_full(false);
    let mut backing = backing;
    if let Some(r) = backing.redis.as_mut() {
        r.start_again();
    }
    let app = start(backing, settings).await;
    wait_until_ready(&app).await;
    let stored = stored_click_ids(&app.api, &app.address, "amy-serum").await;
    let set: HashSet<&String> = stored.iter().collect();
    assert!(answered.iter().all(|c| set.contains(c)), "replayed at the next start");
    assert_eq!(stored.len(), answered.len() + 1);
}

/// A disk that hangs: reads that need it are answered `503` with `Retry-After` after 10 s, not
/// held for ever, and the server keeps serving what needs no disk.
#[tokio::test]
async fn a_hung_disk_gets_a_prompt_503_not_a_hanging_request() {
    let app = spawn_app(Backend::Embedded).await;
    app.create_campaign("spring-sale").await;
    // A fresh process with no page cache: reading the campaign needs the disk.
    let (backing, mut settings) = app.stop().await;
    settings.embedded_cache_mb = 0;
    let app = start(backing, settings).await;
    app.faults.set_hung(true);
    let began = Instant::now();
    let r = app.get("/api/v1/campaigns/spring-sale").await;
    let took = began.elapsed();
    let healthz = app.api.get(app.url("/healthz")).send().await.unwrap().status();
    app.faults.set_hung(false);
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    crate::helpers::assert_error(r, 503, "storage_unavailable").await;
    assert!(took < Duration::from_secs(15), "answered after {took:?}");
    assert_eq!(healthz, 200);
    assert_eq!(app.get("/api/v1/campaigns/spring-sale").await.status(), 200);
}

/// Anyone can load a pixel, and each is a store write: a flood of them filled the embedded
/// store's queue, so that webhooks and API writes were refused and clicks spooled. Pixels being
/// counted are bounded: with the store stuck, the ones past the bound are answered `503`
/// (uncounted) after a redirect's wait rather than joining the queue, and the ones counted are
/// answered once the store takes them.
#[tokio::test]
async fn a_flood_of_pixels_takes_a_bounded_share_of_the_store() {
    let app = spawn_app(Backend::Embedded).await;
    app.seed().await;
    app.faults.set_hung(true);
    let mut waiting = Vec::new();
    // Twenty readers (one visitor's loads past ten a minute count nothing anyway).
    for reader in 0..20 {
        let request = app
            .api
            .get(app.url("/p/amy-serum.gif"))
            .header("user-agent", format!("{} reader/{reader}", crate::helpers::PHONE))
            .send();
        waiting.push(tokio::spawn(async move { request.await.unwrap() }));
    }
    // Those past the bound come back while the store is still stuck.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut refused = 0;
    let mut pending = Vec::new();
    for p in waiting {
        if p.is_finished() {
            let r = p.await.unwrap();
            assert!(r.headers().get("retry-after").is_some());
            crate::helpers::assert_error(r, 503, "storage_unavailable").await;
            refused += 1;
        } else {
            pending.push(p);
        }
    }
    app.faults.set_hung(false);
    for p in pending {
        let r = p.await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/gif");
    }
    assert_eq!(refused, 12, "20 pixels, 8 counted at once");
    let stats = app.get_ok("/api/v1/links/amy-serum/stats").await;
    assert_eq!(stats["totals"]["pixel_impressions"], 8, "{stats}");
    // The server and the store serve on.
    assert_eq!(app.tap("amy-serum").await.status(), 302);
    assert_eq!(app.pixel("amy-serum").await.status(), 200);
}

/// A purchase carrying the click id of a redirect answered from the spool can reach kolink
/// before the replay has written that click: the store is back, the click not yet. It is still
/// attributed to the click (it waits for the replay), not stored unattributed for good.
#[tokio::test]
async fn a_purchase_that_arrives_while_its_click_is_spooled_is_attributed() {
    let app = spawn_app(Backend::Redis).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    // The link is in the process's cache, so that redirects need no store.
    app.tap("amy-serum").await;
    let redis = app.redis.as_ref().unwrap();
    redis.pause();
    let mut clicks = Vec::new();
    for _ in 0..3 {
        clicks.push(app.click_id("amy-serum").await);
    }
    // Sent while Redis is frozen: each waits on the store, which comes back before the replay
    // of the spool has begun.
    let sent = futures_util::future::join_all(clicks.iter().enumerate().map(|(i, click)| {
        let body = serde_json::json!({"order_id": format!("o{i}"), "event": "purchase", "amount": "100",
                                      "currency": "TWD", "click_id": click});
        let (app, secret) = (&app, &secret);
        async move { app.webhook_ok("acme", secret, &body).await }
    }));
    let resume = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        redis.resume();
    };
    let (receipts, ()) = tokio::join!(sent, resume);
    for r in &receipts {
        assert_eq!(r["status"], "attributed", "{receipts:?}");
        assert_eq!(r["method"], "click_id", "{r}");
    }
    let totals = app.link_totals("amy-serum").await;
    assert_eq!(totals["conversions"], 3, "{totals}");
    assert_eq!(totals["clicks"], 4, "{totals}");
}

/// A code found unknown before the store stopped answering stays unknown (404) while it does
/// not answer, as a link followed before keeps redirecting: a scanner's requests are not made
/// to wait for the store, nor turned into 503s.
#[tokio::test]
async fn a_code_found_unknown_stays_unknown_while_the_store_does_not_answer() {
    let app = spawn_app(Backend::Redis).await;
    app.seed().await;
    assert_eq!(app.tap("no-such-code").await.status(), 404);
    assert_eq!(app.tap("amy-serum").await.status(), 302);
    let redis = app.redis.as_ref().unwrap();
    redis.pause();
    // Past the second an unknown code is taken from the cache without asking.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let unknown = app.tap("no-such-code").await.status().as_u16();
    let known = app.tap("amy-serum").await.status().as_u16();
    let never_seen = app.tap("never-seen-code").await.status().as_u16();
    redis.resume();
    assert_eq!((unknown, known, never_seen), (404, 302, 503));
}

/// A link this process has never followed (minted elsewhere, or simply not tapped yet) still
/// redirects while Redis is down, as one it followed does: the link book on local disk says
/// where it goes, and its click waits in the spool. It answered 503 before. A link stopped
/// before the outage stays stopped; a code the book does not know is still 503.
#[tokio::test]
async fn a_link_never_followed_here_redirects_while_redis_is_down() {
    let mut app = spawn_app(Backend::Redis).await;
    app.seed().await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "amy", "code": "amy-off"}))
        .await;
    app.patch_ok("/api/v1/links/amy-off", &json!({"status": "disabled"}))
        .await;
    // Created after the change above: a copy that holds it holds the change too.
    app.create_link(json!({"campaign": "spring-sale", "kol": "amy", "code": "amy-last"}))
        .await;
    wait_for_metric(
        &app,
        "kolink_link_book_links",
        3.0,
        "the link book never held the 3 links",
    )
    .await;

    app.redis.as_mut().unwrap().kill();
    let tap = app.tap("amy-serum").await;
    let followed = tap.status().as_u16();
    let location = tap.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    let stopped = app.tap("amy-off").await.status().as_u16();
    let unknown = app.tap("never-seen-code").await.status().as_u16();
    app.redis.as_mut().unwrap().start_again();

    assert_eq!((followed, stopped, unknown), (302, 410, 503));
    let location = location.unwrap();
    assert!(
        location.starts_with("https://shop.example.com/serum?ref=home&utm_source=instagram")
            && location.contains("kl_cid="),
        "{location}"
    );
    assert!(app.metric("kolink_link_book_answers_total").await >= 2.0);
    wait_until_ready(&app).await;
    let stats = app.get_ok("/api/v1/links/amy-serum/stats").await;
    assert_eq!(stats["totals"]["clicks"], 1, "the spooled click, replayed once");
}

/// After its first whole copy, the link book reads only the links created or changed since
/// its last copy: with 100,000 links, each process read every one of them again after each
/// change anywhere (0.5–0.7 s of its CPU and 0.1–0.2 s of Redis's each time). What the
/// changes bring still answers during an outage.
#[tokio::test]
async fn the_link_book_reads_only_the_links_changed_since_its_last_copy() {
    let mut app = spawn_app(Backend::Redis).await;
    app.seed().await;
    let (whole, changes) = (
        r#"kolink_link_book_copies_total{kind="whole"}"#,
        r#"kolink_link_book_copies_total{kind="changes"}"#,
    );
    wait_for_metric(&app, whole, 1.0, "the link book was never copied").await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "amy", "code": "amy-new"}))
        .await;
    app.patch_ok("/api/v1/links/amy-serum", &json!({"status": "disabled"}))
        .await;
    // The change's copy holds both: the link minted first, then the one stopped.
    wait_for_metric(&app, changes, 1.0, "the changes were never copied").await;
    wait_for_metric(
        &app,
        "kolink_link_book_links",
        2.0,
        "the changes never reached the link book",
    )
    .await;
    assert_eq!(app.metric(whole).await, 1.0, "no whole copy after the first");

    app.redis.as_mut().unwrap().kill();
    let minted = app.tap("amy-new").await.status().as_u16();
    let stopped = app.tap("amy-serum").await.status().as_u16();
    app.redis.as_mut().unwrap().start_again();
    assert_eq!((minted, stopped), (302, 410));
}

/// A process of an older version changes a link without numbering the change (a rolling
/// upgrade): the version it leaves moves without a numbered change, and the book is copied
/// whole, so that the change is in it all the same.
#[tokio::test]
async fn a_link_changed_by_an_older_process_reaches_the_link_book_by_a_whole_copy() {
    let mut app = spawn_app(Backend::Redis).await;
    app.seed().await;
    let whole = r#"kolink_link_book_copies_total{kind="whole"}"#;
    wait_for_metric(&app, "kolink_link_book_links", 1.0, "the link book never held the link").await;
    let copied_whole = app.metric(whole).await;
    // What an older version's `UPDATE_LINK` does: the record, and a new version.
    use redis::AsyncCommands;
    let mut conn = app.redis.as_ref().unwrap().connection().await;
    let record: String = conn.hget("kl:{meta}:links", "amy-serum").await.unwrap();
    let stopped = record.replace(r#""status":"active""#, r#""status":"disabled""#);
    assert_ne!(record, stopped);
    let _: () = conn.hset("kl:{meta}:links", "amy-serum", &stopped).await.unwrap();
    let _: () = conn.set("kl:{meta}:links:version", 42).await.unwrap();
    wait_for_metric(&app, whole, copied_whole + 1.0, "the change was never copied").await;

    app.redis.as_mut().unwrap().kill();
    let status = app.tap("amy-serum").await.status().as_u16();
    app.redis.as_mut().unwrap().start_again();
    assert_eq!(status, 410, "stopped, as the book now says");
}

/// A process restarted while Redis is down (a deploy, a crash, a node moved) started only once
/// Redis answered again, up to a minute later, or not at all: every link it served was down
/// with it. It now starts from its link book, which keeps what a start needs: its links
/// redirect and their clicks wait in the spool, and once Redis answers the start completes
/// and the clicks are stored once. The admin API answers 503 meanwhile.
#[tokio::test]
async fn a_process_restarted_while_redis_is_down_starts_from_its_link_book() {
    let app = spawn_app(Backend::Redis).await;
    app.seed().await;
    assert_eq!(app.tap("amy-serum").await.status(), 302);
    wait_for_metric(&app, "kolink_link_book_links", 1.0, "the link book never held the link").await;
    let (mut backing, settings) = app.stop().await;
    backing.redis.as_mut().unwrap().kill();

    let started = Instant::now();
    let mut app = start(backing, settings).await;
    let took = started.elapsed();
    let tap = app.tap("amy-serum").await;
    let (status, location) = (
        tap.status().as_u16(),
        tap.headers().get("location").map(|l| l.to_str().unwrap().to_owned()),
    );
    let api = app.get("/api/v1/links/amy-serum").await.status().as_u16();
    let (ready, _) = readyz(&app).await;
    app.redis.as_mut().unwrap().start_again();

    assert!(took < Duration::from_secs(30), "started after {took:?}");
    assert_eq!((status, api, ready), (302, 503, 503));
    assert!(location.unwrap().contains("kl_cid="));
    wait_until_ready(&app).await;
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let clicks = app.get_ok("/api/v1/links/amy-serum/stats").await["totals"]["clicks"].clone();
        if clicks == 2 {
            break;
        }
        assert!(Instant::now() < until, "the spooled click was not stored: {clicks}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The start completed: the book is kept up to date again.
    app.create_link(json!({"campaign": "spring-sale", "kol": "amy", "code": "amy-new"}))
        .await;
    wait_for_metric(
        &app,
        "kolink_link_book_links",
        2.0,
        "the link book is not copied after the start",
    )
    .await;
}

/// A process started from its link book writes nothing to a Redis that comes back without the
/// keys the book was made with (flushed, or a new Redis at the address): the clicks it took
/// meanwhile stay in its spool and it is not ready, where the verification of the first
/// version found them written, as clicks of links that store does not have.
#[tokio::test]
async fn a_start_from_the_link_book_writes_nothing_to_a_redis_that_came_back_empty() {
    use redis::AsyncCommands;
    let app = spawn_app(Backend::Redis).await;
    app.seed().await;
    wait_for_metric(&app, "kolink_link_book_links", 1.0, "the link book never held the link").await;
    let (mut backing, settings) = app.stop().await;
    backing.redis.as_mut().unwrap().kill();
    let mut app = start(backing, settings).await;
    assert_eq!(app.tap("amy-serum").await.status(), 302);

    let redis = app.redis.as_mut().unwrap();
    redis.start_again_empty();
    let mut conn = redis.connection().await;
    // Once the process has read its keys, it has decided.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .unwrap();
        if stats.contains("cmdstat_get") {
            break;
        }
        assert!(Instant::now() < until, "the process never came back to Redis");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let clicks: bool = conn.exists("kl:{amy-serum}:clicks").await.unwrap();
    let (ready, body) = readyz(&app).await;
    assert_eq!(
        (clicks, ready, &body["spool"]["clicks"]),
        (false, 503, &json!(1)),
        "{body}"
    );
    // Nor through the API, nor from a shop's delivery (both retried later).
    let kol = app
        .post(
            "/api/v1/kols",
            &json!({"id": "ben", "name": "Ben", "platform": "instagram"}),
        )
        .await;
    crate::helpers::assert_error(kol, 503, "storage_unavailable").await;
    // Nothing at all: not even the layout's version.
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    assert_eq!(keys, 0, "nothing written to that Redis");
}

/// A Redis killed and started again without its data under a running process: the process
/// wrote the clicks it had spooled during the gap into it, and its empty link list turned every
/// link into a 404 while `/readyz` said ready (found by a fault audit: 5,849 answered clicks
/// went to the empty Redis and were missing once its data was back). The process now finds it
/// is not its store: links redirect from the link book, their clicks wait in the spool, it is
/// not ready, and nothing is written there; once the Redis with its data is back, the spool is
/// written to it and every answered click is there.
#[tokio::test]
async fn a_redis_back_without_its_data_under_a_running_process_gets_nothing_and_loses_nothing() {
    use redis::AsyncCommands;
    let mut app = spawn_app(Backend::Redis).await;
    app.seed().await;
    wait_for_metric(&app, "kolink_link_book_links", 1.0, "the link book never held the link").await;
    let mut ids = vec![app.click_id("amy-serum").await];

    app.redis.as_mut().unwrap().start_again_without_its_data();
    for _ in 0..5 {
        ids.push(app.click_id("amy-serum").await);
    }
    // Past the link cache's life: the link comes from the link book, not from that Redis.
    tokio::time::sleep(Duration::from_secs(6)).await;
    ids.push(app.click_id("amy-serum").await);
    let mut conn = app.redis.as_ref().unwrap().connection().await;
    let written: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    let (ready, body) = readyz(&app).await;
    assert_eq!(
        (written, ready),
        (0, 503),
        "nothing written to the Redis without its data: {body}"
    );
    assert_eq!(body["spool"]["clicks"], json!(6), "{body}");

    app.redis.as_mut().unwrap().start_again_with_its_data();
    let mut conn = app.redis.as_ref().unwrap().connection().await;
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let stored: u64 = conn.xlen("kl:{amy-serum}:clicks").await.unwrap();
        if stored == ids.len() as u64 {
            break;
        }
        assert!(
            Instant::now() < until,
            "{stored} of {} answered clicks stored",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = app.get_ok("/api/v1/links/amy-serum/clicks").await;
    let listed: Vec<&str> = listed["clicks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids);
    assert_eq!(readyz(&app).await.0, 200);
}

/// The book belongs to one store: after Redis was emptied (flushed, or restored from an older
/// backup) a process on the same disk does not send anyone to a link the store no longer has.
#[tokio::test]
async fn the_link_book_forgets_the_links_of_a_store_that_lost_them() {
    let app = spawn_app(Backend::Redis).await;
    app.seed().await;
    wait_for_metric(&app, "kolink_link_book_links", 1.0, "the link book never held the link").await;
    let mut app = crate::helpers::restart_with_store_changed(
        app,
        async |conn, _| {
            let _: () = redis::cmd("FLUSHDB").query_async(conn).await.unwrap();
        },
        |_| unreachable!("a Redis test"),
    )
    .await;
    assert_eq!(app.metric("kolink_link_book_links").await, 0.0);
    app.redis.as_mut().unwrap().kill();
    let status = app.tap("amy-serum").await.status().as_u16();
    app.redis.as_mut().unwrap().start_again();
    assert_eq!(status, 503, "not sent where no link of the store goes");
}
