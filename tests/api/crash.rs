//! Crash safety: the real binary, killed with SIGKILL while redirecting, has kept every click
//! whose 302 was received.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{stored_click_ids, Backend, Backing, PHONE, TOKEN};

fn spawn_kolink(backing: &Backing, port: u16) -> Child {
    spawn_kolink_with(backing, port, &[])
}

/// The kolink binary serving on `port` over `backing`, with `env` added to its settings.
pub fn spawn_kolink_with(backing: &Backing, port: u16, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kolink"));
    cmd.arg("serve")
        .env_remove("KOLINK_REDIS_URL")
        .env_remove("KOLINK_REDIS_CLUSTER")
        .env_remove("KOLINK_CONFIG")
        .env("KOLINK_LISTEN", format!("127.0.0.1:{port}"))
        .env("KOLINK_ADMIN_TOKEN", TOKEN)
        .env("KOLINK_LOG", "error")
        .env("KOLINK_SPOOL_DIR", backing.spool.path())
        .env("KOLINK_SPOOL_MAX_MB", "16")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match (&backing.redis, &backing.cluster, &backing.data) {
        (Some(r), _, _) => cmd.env("KOLINK_STORAGE", "redis").env("KOLINK_REDIS_URL", r.url()),
        (None, Some(c), _) => cmd
            .env("KOLINK_STORAGE", "redis")
            .env("KOLINK_REDIS_CLUSTER", &c.seeds)
            .env("KOLINK_REDIS_PREFIX", &c.prefix),
        (None, None, Some(d)) => cmd.env("KOLINK_STORAGE", "embedded").env("KOLINK_DATA_DIR", d.path()),
        (None, None, None) => unreachable!(),
    };
    cmd.envs(env.iter().copied());
    cmd.spawn().expect("start the kolink binary")
}

pub async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("kolink did not become ready at {base}");
}

per_store!(clicks_answered_before_a_sigkill_survive_it);
async fn clicks_answered_before_a_sigkill_survive_it(backend: Backend) {
    let backing = Backing::new(backend);
    let port = crate::helpers::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut child = spawn_kolink(&backing, port);
    wait_healthy(&client, &base).await;
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    post(
        "/api/v1/campaigns",
        json!({"id": "c", "name": "C", "destination": "https://s.example/"}),
    )
    .await
    .unwrap();
    post(
        "/api/v1/kols",
        json!({"id": "amy", "name": "Amy", "platform": "instagram"}),
    )
    .await
    .unwrap();
    let r = post(
        "/api/v1/links",
        json!({"campaign": "c", "kol": "amy", "code": "crash-1"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);

    // 32 tappers in a loop; SIGKILL lands while they are busy.
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let client = client.clone();
        let url = format!("{base}/crash-1");
        tasks.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            for _ in 0..200 {
                match client.get(&url).header("user-agent", PHONE).send().await {
                    Ok(r) if r.status() == 302 => {
                        let loc = r.headers()["location"].to_str().unwrap().to_owned();
                        answered.push(loc.rsplit_once("kl_cid=").unwrap().1.to_owned());
                    }
                    _ => break,
                }
            }
            answered
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    child.kill().expect("SIGKILL kolink");
    child.wait().unwrap();
    let mut answered = HashSet::new();
    for t in tasks {
        answered.extend(t.await.unwrap());
    }
    assert!(
        answered.len() > 10,
        "{backend:?}: the load ran before the kill ({} answered)",
        answered.len()
    );

    let mut child = spawn_kolink(&backing, port);
    wait_healthy(&client, &base).await;
    let stored: HashSet<String> = stored_click_ids(&client, &base, "crash-1").await.into_iter().collect();
    eprintln!("{backend:?}: answered {} stored {}", answered.len(), stored.len());
    let lost: Vec<&String> = answered.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{backend:?}: {} answered clicks lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    // Recovered clicks (the embedded store's journal, Redis's AOF) are counted once each.
    let totals = client
        .get(format!("{base}/api/v1/links/crash-1/stats"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["totals"]
        .clone();
    let counted = totals["clicks"].as_u64().unwrap() + totals["suspicious_clicks"].as_u64().unwrap();
    assert_eq!(counted, stored.len() as u64, "{backend:?}: {totals}");
    child.kill().unwrap();
    child.wait().unwrap();
}
