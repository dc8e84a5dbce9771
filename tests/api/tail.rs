//! `kolink tail --group`: clicks and conversions as NDJSON through a Redis consumer group.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use kolink::clock::SystemClock;
use kolink::store::redis::{RedisStore, TailStream, Target};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, TestApp};

/// The store's Redis and key prefix, as the binary's settings take them.
fn redis_env(app: &TestApp) -> Vec<(&'static str, String)> {
    match (&app.redis, &app.cluster) {
        (Some(r), _) => vec![("KOLINK_REDIS_URL", r.url()), ("KOLINK_REDIS_PREFIX", "kl".into())],
        (None, Some(c)) => vec![
            ("KOLINK_REDIS_CLUSTER", c.seeds.clone()),
            ("KOLINK_REDIS_PREFIX", c.prefix.clone()),
        ],
        (None, None) => vec![],
    }
}

fn target(app: &TestApp) -> (Target, String) {
    match (&app.redis, &app.cluster) {
        (Some(r), _) => (Target::Single(r.url()), "kl".into()),
        (None, Some(c)) => (c.target(), c.prefix.clone()),
        (None, None) => unreachable!("a Redis store"),
    }
}

/// Runs `kolink tail <args> --once` and parses its lines.
async fn tail(app: &TestApp, args: &[&str]) -> Vec<Value> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kolink"));
    cmd.arg("tail")
        .args(args)
        .arg("--once")
        .env_remove("KOLINK_REDIS_URL")
        .env_remove("KOLINK_REDIS_CLUSTER")
        .env_remove("KOLINK_CONFIG")
        .env("KOLINK_LOG", "error")
        .envs(redis_env(app));
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run kolink tail"))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn ids_of(lines: &[Value], kind: &str, field: &str) -> Vec<String> {
    let mut ids: Vec<String> = lines
        .iter()
        .filter(|l| l["type"] == kind)
        .map(|l| l[field].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

per_store!(tail_streams_every_click_and_conversion_once_per_group: redis cluster);
async fn tail_streams_every_click_and_conversion_once_per_group(backend: Backend) {
    // Arrange: five taps and a purchase.
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let mut clicks = Vec::new();
    for _ in 0..5 {
        clicks.push(app.click_id("amy-serum").await);
    }
    app.webhook_ok(
        "acme",
        &secret,
        &json!({"order_id": "1001", "event": "purchase", "amount": "1280.00", "currency": "TWD",
                "click_id": clicks[0]}),
    )
    .await;
    clicks.sort();

    // Act and assert: the group gets everything once; a later run only what is new.
    let lines = tail(&app, &["--group", "warehouse"]).await;
    assert_eq!(ids_of(&lines, "click", "id"), clicks);
    assert_eq!(ids_of(&lines, "conversion", "order_id"), ["1001"]);
    let click = lines.iter().find(|l| l["type"] == "click").unwrap();
    assert_eq!(click["link"], "amy-serum");
    assert_eq!(click["bot"], false);
    assert!(click["at"].as_str().unwrap().ends_with('Z'));
    let conversion = lines.iter().find(|l| l["type"] == "conversion").unwrap();
    assert_eq!(conversion["link"], "amy-serum");
    assert_eq!(conversion["status"], "attributed");

    assert!(tail(&app, &["--group", "warehouse"]).await.is_empty(), "acknowledged");
    app.create_link(json!({"campaign": "spring-sale", "kol": "amy", "code": "amy-late"}))
        .await;
    let late = vec![app.click_id("amy-serum").await, app.click_id("amy-late").await];
    let lines = tail(&app, &["--group", "warehouse"]).await;
    let mut expected = late.clone();
    expected.sort();
    assert_eq!(
        ids_of(&lines, "click", "id"),
        expected,
        "only the new clicks, of a new link too"
    );

    // Another group has its own place in the streams.
    let lines = tail(&app, &["--group", "bi"]).await;
    assert_eq!(ids_of(&lines, "click", "id").len(), 7);
    assert_eq!(ids_of(&lines, "conversion", "order_id").len(), 1);
}

per_store!(entries_taken_and_not_acknowledged_are_delivered_again: redis cluster);
/// A reader that stopped between taking entries and acknowledging them gets them again.
async fn entries_taken_and_not_acknowledged_are_delivered_again(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let click = app.click_id("amy-serum").await;
    let (target, prefix) = target(&app);
    let store = RedisStore::connect(&target, &prefix, Duration::from_secs(86_400), 0, Arc::new(SystemClock))
        .await
        .unwrap();
    let streams = [TailStream::Clicks {
        code: "amy-serum".into(),
        link_id: 0,
    }];
    store.create_groups("warehouse", &streams).await.unwrap();
    let taken = store.take("warehouse", "reader-1", &streams, 10, false).await.unwrap();
    assert_eq!(
        taken.clicks.len(),
        1,
        "taken, then the reader stops without acknowledging"
    );

    let lines = tail(&app, &["--group", "warehouse", "--consumer", "reader-1"]).await;
    assert_eq!(ids_of(&lines, "click", "id"), [click]);
    assert!(tail(&app, &["--group", "warehouse", "--consumer", "reader-1"])
        .await
        .is_empty());

    // What a reader that never comes back took is claimed by another once idle long enough.
    app.click_id("amy-serum").await;
    let taken = store.take("warehouse", "gone", &streams, 10, false).await.unwrap();
    assert_eq!(taken.clicks.len(), 1);
    store
        .claim_idle("warehouse", "reader-2", &streams, Duration::ZERO, 10)
        .await
        .unwrap();
    let again = store.take("warehouse", "reader-2", &streams, 10, true).await.unwrap();
    assert_eq!(again.clicks.len(), 1, "claimed from the reader that is gone");
}

per_store!(a_group_lost_in_a_failover_is_made_again: redis cluster);
/// A group that did not reach a replica before a failover is gone: the reader makes it again
/// and delivers the stream from its first entry (at least once), instead of failing.
async fn a_group_lost_in_a_failover_is_made_again(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let click = app.click_id("amy-serum").await;
    let first = tail(&app, &["--group", "warehouse"]).await;
    assert_eq!(ids_of(&first, "click", "id"), std::slice::from_ref(&click));
    let (_, prefix) = target(&app);
    let key = format!("{prefix}:{{amy-serum}}:clicks");
    let destroy = redis::cmd("XGROUP").arg("DESTROY").arg(&key).arg("warehouse").clone();
    let destroyed: i64 = match (&app.redis, &app.cluster) {
        (Some(r), _) => destroy.query_async(&mut r.connection().await).await.unwrap(),
        (None, Some(c)) => destroy.query_async(&mut c.connection().await).await.unwrap(),
        (None, None) => unreachable!(),
    };
    assert_eq!(destroyed, 1);
    let lines = tail(&app, &["--group", "warehouse"]).await;
    assert_eq!(ids_of(&lines, "click", "id"), [click]);
}

#[test]
fn tail_needs_redis_and_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kolink"))
            .arg("tail")
            .args(args)
            .env_remove("KOLINK_REDIS_URL")
            .env_remove("KOLINK_REDIS_CLUSTER")
            .env_remove("KOLINK_CONFIG")
            .env("KOLINK_DATA_DIR", dir.path())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--group NAME is required"));
    let out = run(&["--group", "wh", "--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KOLINK_REDIS_URL"));
}

/// A following reader outlives its Redis going away: it waits and goes on where it stopped,
/// rather than leaving the warehouse feed dead after a restart or a failover.
#[tokio::test]
async fn a_following_reader_waits_out_a_redis_restart() {
    let mut app = spawn_app(Backend::Redis).await;
    app.seed().await;
    app.tap("amy-serum").await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kolink"))
        .args(["tail", "--group", "wh"])
        .env_remove("KOLINK_REDIS_URL")
        .env_remove("KOLINK_REDIS_CLUSTER")
        .env_remove("KOLINK_CONFIG")
        .env("KOLINK_LOG", "error")
        .envs(redis_env(&app))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run kolink tail");
    let (lines, read) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let next_click = |within: Duration| -> Option<Value> {
        let until = std::time::Instant::now() + within;
        loop {
            let left = until.checked_duration_since(std::time::Instant::now())?;
            let line: Value = serde_json::from_str(&read.recv_timeout(left).ok()?).unwrap();
            if line["type"] == "click" {
                return Some(line);
            }
        }
    };
    assert!(next_click(Duration::from_secs(20)).is_some(), "the first click");

    app.redis.as_mut().unwrap().kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.redis.as_mut().unwrap().start_again();
    let r = app.tap("amy-serum").await;
    assert_eq!(r.status(), 302);
    let later = next_click(Duration::from_secs(40));
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(still_running, "the reader stopped when Redis went away");
    let later = later.expect("the click after the restart");
    assert_eq!(later["link"], "amy-serum");
}
