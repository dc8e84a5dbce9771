//! Scale-out: several kolink processes over one Redis Cluster keep every promise of one, and a
//! master killed under load loses no answered click when clicks wait for a replica (`WAIT`).

use std::collections::{HashMap, HashSet};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster_server::{ClusterLease, RedisCluster, NODE_TIMEOUT_MS};
use crate::crash::{spawn_kolink_with, wait_healthy};
use crate::helpers::{stored_click_ids, Backing, PHONE, TOKEN};

/// Three kolink processes over `cluster`, each with its own spool; clicks wait for a replica.
struct Fleet {
    bases: Vec<String>,
    children: Vec<Child>,
    _backings: Vec<Backing>,
    client: reqwest::Client,
}

impl Fleet {
    async fn start(cluster: &RedisCluster, n: usize) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut fleet = Fleet {
            bases: vec![],
            children: vec![],
            _backings: vec![],
            client,
        };
        for _ in 0..n {
            let backing = Backing {
                redis: None,
                cluster: Some(ClusterLease {
                    seeds: cluster.seeds(),
                    prefix: "kl".into(),
                }),
                data: None,
                spool: tempfile::tempdir().unwrap(),
                faults: Default::default(),
            };
            let port = crate::helpers::free_port();
            let child = spawn_kolink_with(
                &backing,
                port,
                &[("KOLINK_REDIS_WAIT_REPLICAS", "1"), ("KOLINK_LINK_CACHE_SECONDS", "1")],
            );
            let base = format!("http://127.0.0.1:{port}");
            wait_healthy(&fleet.client, &base).await;
            fleet.bases.push(base);
            fleet.children.push(child);
            fleet._backings.push(backing);
        }
        fleet
    }

    async fn post(&self, i: usize, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.bases[i]))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, i: usize, path: &str) -> Value {
        let r = self
            .client
            .get(format!("{}{path}", self.bases[i]))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What the tappers saw: per link, the click ids answered; and any tap not answered `302`.
#[derive(Default)]
struct Seen {
    answered: HashMap<String, Vec<String>>,
    refused: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_load_loses_no_answered_click_with_wait() {
    // Arrange: a cluster, three processes, one campaign with links on every shard.
    let mut cluster = RedisCluster::start();
    let fleet = Arc::new(Fleet::start(&cluster, 3).await);
    let r = fleet
        .post(
            0,
            "/api/v1/campaigns",
            json!({"id": "mega", "name": "Mega", "destination": "https://shop.example/"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = fleet
        .post(
            1,
            "/api/v1/kols",
            json!({"id": "amy", "name": "Amy", "platform": "instagram"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let codes: Vec<String> = (0..6).map(|i| format!("mega-{i}")).collect();
    for (i, code) in codes.iter().enumerate() {
        let r = fleet
            .post(
                i % 3,
                "/api/v1/links",
                json!({"campaign": "mega", "kol": "amy", "code": code}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    let victim_code = codes[0].clone();
    let victim = cluster.master_of(&format!("kl:{{{victim_code}}}:clicks"));

    // Act: 24 tappers over the three processes and six links. One second in, the victim link's
    // replica freezes and its master drops the replication link; half a second later the
    // master is killed (SIGKILL) and the replica wakes: what the master took in that half
    // second is gone with it. The old master is started again once its replica has taken over.
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..24usize {
        let (fleet, stop, codes) = (fleet.clone(), stop.clone(), codes.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut n = t;
            while !stop.load(Ordering::Relaxed) {
                let code = &codes[n % codes.len()];
                let base = &fleet.bases[n % fleet.bases.len()];
                n += 1;
                let sent = fleet
                    .client
                    .get(format!("{base}/{code}"))
                    .header("user-agent", PHONE)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 302 => {
                        let loc = r.headers()["location"].to_str().unwrap().to_owned();
                        let id = loc.rsplit_once("kl_cid=").unwrap().1.to_owned();
                        seen.answered.entry(code.clone()).or_default().push(id);
                    }
                    Ok(r) => seen.refused.push(format!("{code}: {}", r.status())),
                    Err(e) => seen.refused.push(format!("{code}: {e}")),
                }
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let replica = cluster.replica_of(victim);
    cluster.pause(replica);
    cluster.cut_replicas(victim);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_at = Instant::now();
    cluster.kill(victim);
    cluster.resume(replica);
    // The replica is promoted after the node timeout and an election.
    let promoted = loop {
        if cluster.master_of(&format!("kl:{{{victim_code}}}:clicks")) == replica {
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < Duration::from_secs(30), "no replica took over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.start_again(victim);
    cluster.wait_healthy();
    assert!(!cluster.is_master(victim), "the old master came back as a replica");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answered: HashMap<String, Vec<String>> = HashMap::new();
    let mut refused = Vec::new();
    for t in tasks {
        let seen = t.await.unwrap();
        for (code, ids) in seen.answered {
            answered.entry(code).or_default().extend(ids);
        }
        refused.extend(seen.refused);
    }

    // Assert: every tap was answered, during the failover too (the spool took what the
    // cluster could not), and every answered click is stored once, counted once.
    assert!(
        refused.is_empty(),
        "taps refused: {:?}",
        &refused[..refused.len().min(5)]
    );
    let victim_taps = answered.get(&victim_code).map_or(0, Vec::len);
    assert!(
        victim_taps > 100,
        "the load ran through the failover ({victim_taps} taps on the victim's link)"
    );
    eprintln!(
        "failover: replica promoted {:.1} s after the kill (node timeout {NODE_TIMEOUT_MS} ms); {} taps answered",
        promoted.as_secs_f64(),
        answered.values().map(Vec::len).sum::<usize>()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, code) in codes.iter().enumerate() {
        let mine: HashSet<&String> = answered[code].iter().collect();
        assert_eq!(
            mine.len(),
            answered[code].len(),
            "{code}: click ids are unique across processes"
        );
        loop {
            let stored = stored_click_ids(&fleet.client, &fleet.bases[i % 3], code).await;
            let stored_set: HashSet<&String> = stored.iter().collect();
            let missing = mine.iter().filter(|c| !stored_set.contains(**c)).count();
            if missing == 0 {
                assert_eq!(stored.len(), mine.len(), "{code}: nothing stored twice or unanswered");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{code}: {missing} of {} answered clicks are not in the store",
                mine.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let stats = fleet.get((i + 1) % 3, &format!("/api/v1/links/{code}/stats")).await;
        let counted =
            stats["totals"]["clicks"].as_u64().unwrap() + stats["totals"]["suspicious_clicks"].as_u64().unwrap();
        assert_eq!(
            counted as usize,
            mine.len(),
            "{code}: every answered click counted once"
        );
    }
}

/// Three kolink instances sharing one prefix of the test cluster, with a link cache of 1 s.
async fn three_instances() -> Vec<crate::helpers::TestApp> {
    instances(3, Some(1)).await
}

/// `n` kolink instances sharing one prefix of the test cluster; `link_cache_seconds`, or the
/// default.
async fn instances(n: usize, link_cache_seconds: Option<u64>) -> Vec<crate::helpers::TestApp> {
    let lease = crate::cluster_server::lease();
    let mut apps = Vec::new();
    for _ in 0..n {
        let backing = Backing {
            redis: None,
            cluster: Some(lease.clone()),
            data: None,
            spool: tempfile::tempdir().unwrap(),
            faults: Default::default(),
        };
        let mut settings = crate::helpers::settings_for(&backing);
        if let Some(seconds) = link_cache_seconds {
            settings.link_cache_seconds = seconds;
        }
        apps.push(crate::helpers::start(backing, settings).await);
    }
    apps
}

#[tokio::test]
async fn instances_over_one_cluster_share_links_click_ids_and_conversions() {
    // Arrange: the link is minted on the first instance.
    let apps = three_instances().await;
    apps[0].seed().await;
    let secret = apps[0].create_shop("acme").await;

    // Act: taps on every instance; the purchase arrives at the third with a click id the
    // second minted.
    let mut ids = HashSet::new();
    for _ in 0..5 {
        for app in &apps {
            assert!(ids.insert(app.click_id("amy-serum").await), "click ids never collide");
        }
    }
    let from_second = apps[1].click_id("amy-serum").await;
    let answer = apps[2]
        .webhook_ok(
            "acme",
            &secret,
            &json!({"order_id": "1001", "event": "purchase", "amount": "1280.00", "currency": "TWD",
                    "click_id": from_second}),
        )
        .await;

    // Assert: attributed by the click; every instance reads the same figures.
    assert_eq!(answer["status"], "attributed");
    assert_eq!(answer["method"], "click_id");
    for app in &apps {
        let totals = app.link_totals("amy-serum").await;
        assert_eq!(
            totals["clicks"].as_u64().unwrap() + totals["suspicious_clicks"].as_u64().unwrap(),
            16
        );
        assert_eq!(totals["conversions"], 1);
        assert_eq!(totals["revenue"], "1280.00");
    }

    // A link disabled on one instance is gone on the others within the cache's TTL.
    let r = apps[0]
        .patch("/api/v1/links/amy-serum", &json!({"status": "disabled"}))
        .await;
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    for app in &apps[1..] {
        loop {
            let status = app.tap("amy-serum").await.status();
            if status == 410 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the change reaches every instance within the TTL ({status})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A code one instance found unknown (a typo, a scanner, a KOL trying a link before it was
/// made) and another then mints is followed within a second, not after the cache's TTL: a
/// new link must not answer 404 to the first people who tap it.
#[tokio::test]
async fn a_link_minted_on_one_instance_is_found_at_once_where_its_code_was_unknown() {
    let apps = instances(2, None).await;
    assert_eq!(
        kolink::config::Settings::defaults().link_cache_seconds,
        5,
        "the default TTL"
    );
    apps[0].seed().await;
    assert_eq!(apps[1].tap("brand-new").await.status(), 404);
    apps[0]
        .create_link(json!({"campaign": "spring-sale", "kol": "amy", "code": "brand-new"}))
        .await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(apps[1].tap("brand-new").await.status(), 302);
}

#[tokio::test]
async fn a_sign_out_on_one_instance_ends_the_session_on_every_instance() {
    let apps = three_instances().await;
    let signed_in = apps[0]
        .api
        .post(apps[0].url("/app/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = |app: &crate::helpers::TestApp| app.api.get(app.url("/app")).header("cookie", cookie.clone()).send();
    for app in &apps {
        assert_eq!(page(app).await.unwrap().status(), 200, "one session for every instance");
    }
    let html = page(&apps[0]).await.unwrap().text().await.unwrap();
    let at = html.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    let csrf = &html[at..at + html[at..].find('"').unwrap()];
    let out = apps[0]
        .api
        .post(apps[0].url("/app/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    // The others read the new key within `KEY_REFRESH` (5 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    for app in &apps {
        loop {
            let status = page(app).await.unwrap().status();
            if status == 303 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the sign-out reaches every instance ({status})"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
