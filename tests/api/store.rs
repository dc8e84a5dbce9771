//! The store contract below HTTP: writes that are retried count once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use kolink::clock::{ManualClock, SharedClock, SystemClock};
use kolink::counters::{click_fields, is_all_time, visit};
use kolink::domain::{ClickInfo, Dimension, Dimensions, EntryId};
use kolink::store::embedded::EmbeddedStore;
use kolink::store::redis::{RedisStore, Target};
use kolink::store::{ClickLog, Counters, Detail, NewClick, Store};
use redis::AsyncCommands;

use crate::helpers::{Backend, Backing};

/// An open store of `backend` and what keeps it alive.
async fn open(backend: Backend) -> (Arc<dyn Store>, Backing) {
    open_with_clock(backend, Arc::new(SystemClock)).await
}

/// `open`, with the store's "now" from `clock` (what its click retention counts from).
async fn open_with_clock(backend: Backend, clock: SharedClock) -> (Arc<dyn Store>, Backing) {
    let backing = Backing::new(backend);
    (backing.open_store(clock).await, backing)
}

fn click(code: &str, ms: u64, seq: u64, visitor: &str) -> NewClick {
    let at = Utc.timestamp_millis_opt(ms as i64).unwrap();
    let info = ClickInfo {
        visitor: visitor.into(),
        dims: Dimensions::default().with(Dimension::Device, "mobile"),
        ..ClickInfo::default()
    };
    NewClick {
        code: code.into(),
        entry: EntryId { ms, seq },
        at,
        fields: click_fields(at, &info),
        visit: visit(at, &info),
        info,
    }
}

/// Redis's command counts start over (`CONFIG RESETSTAT`).
async fn reset_stats(conn: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(conn).await.unwrap();
}

/// Redis's command counts since they started over (`INFO commandstats`).
async fn command_stats(conn: &mut redis::aio::MultiplexedConnection) -> String {
    redis::cmd("INFO").arg("commandstats").query_async(conn).await.unwrap()
}

/// Removes Redis's note of its last whole prune of hours (`kl:{meta}:hours:pruned`, which a
/// whole pass leaves), so that the next pass reads every link again; the embedded store keeps
/// none.
async fn forget_last_prune(backing: &Backing) {
    let removed: i64 = match (&backing.redis, &backing.cluster) {
        (Some(redis), _) => redis.connection().await.del("kl:{meta}:hours:pruned").await.unwrap(),
        (None, Some(lease)) => {
            let key = format!("{}:{{meta}}:hours:pruned", lease.prefix);
            lease.connection().await.del(key).await.unwrap()
        }
        (None, None) => return,
    };
    assert_eq!(removed, 1, "a whole pass leaves its note");
}

/// Calls of `command` in Redis's command counts (`INFO commandstats`).
fn calls(stats: &str, command: &str) -> u64 {
    stats
        .split(&format!("cmdstat_{command}:calls="))
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Human clicks of each link, from its counters; its rollups must say the same.
async fn clicks_counted(store: &dyn Store, codes: &[&str]) -> Vec<i64> {
    let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    let clicks =
        |fields: &[(String, i64)]| -> i64 { fields.iter().filter(|(k, _)| k.starts_with("c|")).map(|(_, v)| v).sum() };
    let full = store.link_data(&codes, Detail::Full).await.unwrap();
    let counted: Vec<i64> = full.iter().map(|d| clicks(&d.full)).collect();
    let rolled: Vec<i64> = full.iter().map(|d| clicks(&d.rollups)).collect();
    assert_eq!(rolled, counted, "the rollups count the clicks the counters count");
    let rollups = store.link_data(&codes, Detail::Rollups).await.unwrap();
    assert!(rollups.iter().all(|d| d.full.is_empty()), "the rollups alone");
    assert_eq!(rollups.iter().map(|d| clicks(&d.rollups)).collect::<Vec<_>>(), rolled);
    let range = store.link_data(&codes, Detail::Range).await.unwrap();
    let all_time = |d: &kolink::store::LinkData| d.rollups.iter().any(|(f, _)| is_all_time(f.as_bytes()));
    assert!(rollups.iter().any(all_time), "the clicks have breakdowns");
    assert!(!range.iter().any(all_time), "a range reads the rollups' days alone");
    assert_eq!(range.iter().map(|d| clicks(&d.rollups)).collect::<Vec<_>>(), rolled);
    assert_eq!(range.iter().map(|d| clicks(&d.full)).collect::<Vec<_>>(), counted);
    let fields = |ds: &[kolink::store::LinkData]| -> Vec<Vec<(String, i64)>> {
        ds.iter()
            .map(|d| {
                let mut f = d.full.clone();
                f.sort();
                f
            })
            .collect()
    };
    assert_eq!(fields(&range), fields(&full), "the same full maps, in the order asked");
    counted
}

per_store!(writing_the_same_click_batch_again_counts_nothing_twice);
async fn writing_the_same_click_batch_again_counts_nothing_twice(backend: Backend) {
    let (store, _guard) = open(backend).await;
    let now = Utc::now().timestamp_millis() as u64;
    let batch = vec![
        click("a-1", now, 7, "v1"),
        click("a-1", now, 8, "v2"),
        click("b-2", now, 9, "v1"),
    ];
    let first = store.write_clicks(&batch).await.unwrap();
    assert_eq!(first, batch.iter().map(|c| c.entry).collect::<Vec<_>>());
    // A retry after a dropped connection sends the very same batch.
    let again = store.write_clicks(&batch).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(clicks_counted(&*store, &["a-1", "b-2"]).await, [2, 1]);
    assert_eq!(store.read_clicks("a-1", None, 100).await.unwrap().len(), 2);
    let day = batch[0].at.date_naive();
    let uv = store.unique_visitors(&[("a-1".into(), day)]).await.unwrap();
    assert_eq!(uv, [2]);
}

per_store!(a_batch_written_before_in_part_counts_only_its_new_clicks);
async fn a_batch_written_before_in_part_counts_only_its_new_clicks(backend: Backend) {
    let (store, _guard) = open(backend).await;
    let now = Utc::now().timestamp_millis() as u64;
    let batch = vec![
        click("a-1", now, 1, "v1"),
        click("a-1", now, 2, "v2"),
        click("a-1", now + 1, 3, "v1"),
    ];
    store.write_clicks(&batch[..1]).await.unwrap();
    // The whole group again (a retry that got further): its first click is stored already.
    let ids = store.write_clicks(&batch).await.unwrap();
    assert_eq!(ids, batch.iter().map(|c| c.entry).collect::<Vec<_>>());
    assert_eq!(clicks_counted(&*store, &["a-1"]).await, [3]);
    let data = store.link_data(&["a-1".into()], Detail::Rollups).await.unwrap();
    assert_eq!(data[0].rollup("x|dev|mobile"), Some(3), "{:?}", data[0].rollups);
    let day = batch[0].at.date_naive();
    let uv = store.unique_visitors(&[("a-1".into(), day)]).await.unwrap();
    assert_eq!(uv, [2]);
}

// A replayed spool can hold an old process's clicks and then a new one's, whose ids may be
// lower (a new writer, a clock stepped back): every click is still stored and counted once.
per_store!(a_group_whose_ids_go_back_counts_every_click_once);
async fn a_group_whose_ids_go_back_counts_every_click_once(backend: Backend) {
    let (store, _guard) = open(backend).await;
    let now = Utc::now().timestamp_millis() as u64;
    let batch = vec![
        click("a-1", now, 5, "v1"),
        click("a-1", now, 3, "v2"),
        click("b-2", now, 1, "v1"),
    ];
    store.write_clicks(&batch).await.unwrap();
    store.write_clicks(&batch).await.unwrap();
    assert_eq!(clicks_counted(&*store, &["a-1", "b-2"]).await, [2, 1]);
    assert_eq!(store.read_clicks("a-1", None, 100).await.unwrap().len(), 2);
    let day = batch[0].at.date_naive();
    let uv = store.unique_visitors(&[("a-1".into(), day)]).await.unwrap();
    assert_eq!(uv, [2]);
}

/// Another instance wrote a later entry to the stream first: the click still lands, once.
#[tokio::test]
async fn a_click_behind_another_writer_lands_once_even_when_retried() {
    let (store, guard) = open(Backend::Redis).await;
    let redis = guard.redis.as_ref().unwrap();
    let now = Utc::now().timestamp_millis() as u64;
    let mut conn = redis.connection().await;
    let _: String = conn
        .xadd("kl:{a-1}:clicks", format!("{}-0", now + 5_000), &[("v", "other")])
        .await
        .unwrap();
    let batch = vec![click("a-1", now, 1, "v1")];
    let first = store.write_clicks(&batch).await.unwrap();
    assert_eq!(first, [batch[0].entry], "handed out under its own id");
    let raw = raw_entries(&mut conn).await;
    assert_eq!(raw.len(), 2, "{raw:?}");
    assert!(
        parse_ms(&raw[1].0) >= now + 5_000 && raw[1].1.as_deref() == Some(format!("{now}-1").as_str()),
        "stored under a fresh id after the other writer's, its own kept: {raw:?}"
    );
    let again = store.write_clicks(&batch).await.unwrap();
    assert_eq!(again, first, "the retry finds the entry by its proposed id");
    assert_eq!(clicks_counted(&*store, &["a-1"]).await, [1]);
    let stored = store.get_click("a-1", first[0]).await.unwrap().unwrap();
    assert_eq!(stored.info.visitor, "v1");
}

/// Several processes on one link: a whole group lands behind another's later entry, each click
/// re-keyed once, counted once (summed), and a retry of the group counts nothing more.
#[tokio::test]
async fn a_group_behind_another_writer_is_counted_once_and_retried_safely() {
    let (store, guard) = open(Backend::Redis).await;
    let now = Utc::now().timestamp_millis() as u64;
    let mut conn = guard.redis.as_ref().unwrap().connection().await;
    let _: String = conn
        .xadd("kl:{a-1}:clicks", format!("{}-0", now + 5_000), &[("v", "other")])
        .await
        .unwrap();
    let batch = vec![
        click("a-1", now, 1, "v1"),
        click("a-1", now, 2, "v2"),
        click("a-1", now + 1, 3, "v1"),
    ];
    let first = store.write_clicks(&batch).await.unwrap();
    let own: Vec<EntryId> = batch.iter().map(|c| c.entry).collect();
    assert_eq!(first, own, "handed out under their own ids");
    let raw = raw_entries(&mut conn).await;
    assert!(
        raw[1..]
            .iter()
            .all(|(id, rid)| parse_ms(id) >= now + 5_000 && rid.is_some()),
        "behind the other writer's entry: {raw:?}"
    );
    let again = store.write_clicks(&batch).await.unwrap();
    assert_eq!(again, first, "the retry finds each click by its proposed id");
    assert_eq!(clicks_counted(&*store, &["a-1"]).await, [3]);
    let data = store.link_data(&["a-1".into()], Detail::Rollups).await.unwrap();
    assert_eq!(data[0].rollup("x|dev|mobile"), Some(3), "{:?}", data[0].rollups);
    let uv = store
        .unique_visitors(&[("a-1".into(), batch[0].at.date_naive())])
        .await
        .unwrap();
    assert_eq!(uv, [2]);
    assert_eq!(store.read_clicks("a-1", None, 10).await.unwrap().len(), 4);
}

/// Two processes on one link: a click re-keyed behind one process's entry must not take the id
/// that process proposes next (Redis' own next id after `<ms>-<seq>` is `<ms>-<seq+1>`), or that
/// process's next click is taken for a retry of it and neither stored nor counted.
#[tokio::test]
async fn a_re_keyed_click_never_takes_another_writers_next_id() {
    let (store, guard) = open(Backend::Redis).await;
    let now = Utc::now().timestamp_millis() as u64 + 60_000;
    let a = 7u64 << 32;
    let b = 9u64 << 32;
    store.write_clicks(&[click("a-1", now, a | 5, "v1")]).await.unwrap();
    // Process b's click, a little behind: re-keyed.
    let behind = store.write_clicks(&[click("a-1", now - 3, b | 1, "v2")]).await.unwrap();
    // Process a's next click, then a group of three (the summed script).
    let next = store.write_clicks(&[click("a-1", now, a | 6, "v1")]).await.unwrap();
    store.write_clicks(&[click("a-1", now - 2, b | 2, "v2")]).await.unwrap();
    let group = vec![
        click("a-1", now, a | 7, "v1"),
        click("a-1", now, a | 8, "v1"),
        click("a-1", now + 1, a, "v1"),
    ];
    store.write_clicks(&group).await.unwrap();
    assert_ne!(behind[0], next[0]);
    assert_eq!(clicks_counted(&*store, &["a-1"]).await, [7]);
    assert_eq!(store.read_clicks("a-1", None, 100).await.unwrap().len(), 7);

    // A new click behind the others (a replay, say) is known new by its writer's mark: only its
    // own id is looked up (one XRANGE), the stream is not read through for it.
    let mut conn = guard.redis.as_ref().unwrap().connection().await;
    reset_stats(&mut conn).await;
    store.write_clicks(&[click("a-1", now - 1, b | 3, "v2")]).await.unwrap();
    let stats = command_stats(&mut conn).await;
    assert!(stats.contains("cmdstat_xrange:calls=1,"), "{stats}");
    assert_eq!(clicks_counted(&*store, &["a-1"]).await, [8]);
}

per_store!(a_re_keyed_click_is_found_by_the_id_its_visitor_was_given: redis cluster);
/// A click spooled by one process and replayed behind another's later entry is stored under an
/// id Redis chooses; the id its redirect handed out (`kl_cid`, in the purchase that follows) still
/// finds it, at the time it was made (the attribution window and "after the purchase" count from
/// it), in one or two reads rather than through the stream.
async fn a_re_keyed_click_is_found_by_the_id_its_visitor_was_given(backend: Backend) {
    let (store, _guard) = open(backend).await;
    let now = Utc::now().timestamp_millis() as u64;
    let a = 7u64 << 32;
    let b = 9u64 << 32;
    store
        .write_clicks(&[click("a-1", now + 5_000, a | 5, "v1")])
        .await
        .unwrap();
    // Process b's click, made 5 s before: re-keyed (alone, and in a group).
    let own = EntryId { ms: now, seq: b | 1 };
    let written = store.write_clicks(&[click("a-1", now, b | 1, "v2")]).await.unwrap();
    let group = [click("a-1", now + 1, b | 2, "v3"), click("a-1", now + 2, b | 3, "v4")];
    let grouped = store.write_clicks(&group).await.unwrap();
    // Re-keyed in the stream, and still handed out under their own ids: the id a visitor gets
    // does not depend on whether its click went to the spool first.
    assert_eq!(written, [own]);
    assert_eq!(grouped, [group[0].entry, group[1].entry]);
    for (c, visitor) in [(own, "v2"), (group[0].entry, "v3"), (group[1].entry, "v4")] {
        let found = store.get_click("a-1", c).await.unwrap().expect("found by its own id");
        assert_eq!(found.entry, c, "at the time it was made");
        assert_eq!(found.info.visitor, visitor);
    }
    // The log reads them back under those ids too (exports, `kolink tail`), in log order, and a
    // page that ends on one goes on after it, repeating nothing.
    let ids = |clicks: Vec<kolink::domain::StoredClick>| clicks.iter().map(|c| c.entry).collect::<Vec<_>>();
    let a1 = EntryId {
        ms: now + 5_000,
        seq: a | 5,
    };
    let all = ids(store.read_clicks("a-1", None, 10).await.unwrap());
    assert_eq!(all, [a1, own, group[0].entry, group[1].entry]);
    let after_own = ids(store.read_clicks("a-1", Some(own), 10).await.unwrap());
    assert_eq!(after_own, [group[0].entry, group[1].entry]);
    assert_eq!(
        ids(store.read_clicks("a-1", Some(group[1].entry), 10).await.unwrap()),
        []
    );
    assert_eq!(ids(store.read_clicks("a-1", Some(a1), 1).await.unwrap()), [own]);
    // An id never written is still nothing.
    assert!(store
        .get_click("a-1", EntryId { ms: now, seq: b | 9 })
        .await
        .unwrap()
        .is_none());
}

/// Many writers (every restart brings a new one) re-key clicks on one link; a retry of the
/// first one's click still finds it, and counts nothing twice.
#[tokio::test]
async fn a_retry_finds_its_re_keyed_click_after_many_writers() {
    let (store, guard) = open(Backend::Redis).await;
    let now = Utc::now().timestamp_millis() as u64;
    let mut conn = guard.redis.as_ref().unwrap().connection().await;
    let _: String = conn
        .xadd("kl:{a-1}:clicks", format!("{}-0", now + 60_000), &[("v", "other")])
        .await
        .unwrap();
    let clicks: Vec<NewClick> = (1..=20u64)
        .map(|w| click("a-1", now + w, ((0xF0_0000 + w) << 32) | 1, &format!("v{w}")))
        .collect();
    let mut first = Vec::new();
    for c in &clicks {
        first.push(store.write_clicks(std::slice::from_ref(c)).await.unwrap()[0]);
    }
    let again = store.write_clicks(&clicks[..1]).await.unwrap();
    assert_eq!(again[0], first[0], "the retry finds its re-keyed entry");
    assert_eq!(clicks_counted(&*store, &["a-1"]).await, [20]);
    let logged: usize = conn.xlen("kl:{a-1}:clicks").await.unwrap();
    assert_eq!(logged, 21, "the 20 clicks once each, and the other entry");
}

/// A retry finds its re-keyed click however many entries lie between its proposed id and it,
/// reading the stream a page at a time rather than its whole tail at once.
#[tokio::test]
async fn a_retry_finds_its_re_keyed_click_past_pages_of_other_entries() {
    let (store, guard) = open(Backend::Redis).await;
    let now = Utc::now().timestamp_millis() as u64;
    let mut conn = guard.redis.as_ref().unwrap().connection().await;
    for k in 0..250u64 {
        let _: String = conn
            .xadd("kl:{a-1}:clicks", format!("{}-0", now + 10 + k), &[("v", "other")])
            .await
            .unwrap();
    }
    let _: String = conn
        .xadd("kl:{a-1}:clicks", format!("{}-0", now + 60_000), &[("v", "other")])
        .await
        .unwrap();
    let c = click("a-1", now + 1, (0xF1_0000 << 32) | 1, "v1");
    let first = store.write_clicks(std::slice::from_ref(&c)).await.unwrap();
    assert_eq!(first, [c.entry], "handed out under its own id");
    let last: redis::streams::StreamRangeReply = conn.xrevrange_count("kl:{a-1}:clicks", "+", "-", 1).await.unwrap();
    let last = &last.ids[0];
    assert!(
        parse_ms(&last.id) >= now + 60_000 && last.map.contains_key("rid"),
        "re-keyed: {last:?}"
    );

    reset_stats(&mut conn).await;
    let again = store.write_clicks(std::slice::from_ref(&c)).await.unwrap();
    assert_eq!(again, first, "the retry finds its re-keyed entry");
    assert_eq!(clicks_counted(&*store, &["a-1"]).await, [1]);
    let stats = command_stats(&mut conn).await;
    // Its own id looked up twice (once by each script), then three pages of the tail.
    assert!(calls(&stats, "xrange") >= 4, "read in pages: {stats}");
}

/// A click's script writes a link's rollups and its full map together, so a report over a
/// range reads the two in one transaction per link: between two plain reads Redis may run a
/// click, which would then count in one and not the other.
#[tokio::test]
async fn a_links_rollups_and_full_map_are_read_in_one_transaction() {
    let (store, guard) = open(Backend::Redis).await;
    let now = Utc::now().timestamp_millis() as u64;
    let codes = ["a-1", "b-2", "c-3"];
    for (n, code) in codes.iter().enumerate() {
        let clicks: Vec<NewClick> = (0..=n as u64).map(|i| click(code, now, i + 1, "v1")).collect();
        store.write_clicks(&clicks).await.unwrap();
    }
    let mut conn = guard.redis.as_ref().unwrap().connection().await;
    reset_stats(&mut conn).await;
    let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    let range = store.link_data(&codes, Detail::Range).await.unwrap();
    let stats = command_stats(&mut conn).await;
    for command in ["multi", "exec"] {
        assert!(stats.contains(&format!("cmdstat_{command}:calls=3,")), "{stats}");
    }
    assert!(stats.contains("cmdstat_hgetall:calls=6,"), "{stats}");
    let clicks =
        |fields: &[(String, i64)]| -> i64 { fields.iter().filter(|(k, _)| k.starts_with("c|")).map(|(_, v)| v).sum() };
    let read: Vec<(i64, i64)> = range.iter().map(|d| (clicks(&d.rollups), clicks(&d.full))).collect();
    assert_eq!(
        read,
        [(1, 1), (2, 2), (3, 3)],
        "each link's two maps, in the order asked"
    );
    // The rollups alone need no transaction.
    store.link_data(&codes, Detail::Rollups).await.unwrap();
    let stats = command_stats(&mut conn).await;
    assert!(stats.contains("cmdstat_exec:calls=3,"), "{stats}");
}

/// Redis restarted (its script cache is empty): clicks are still written.
#[tokio::test]
async fn clicks_are_written_after_redis_restarts() {
    let (store, mut guard) = open(Backend::Redis).await;
    let now = Utc::now().timestamp_millis() as u64;
    store.write_clicks(&[click("a-1", now, 1, "v1")]).await.unwrap();
    guard.redis.as_mut().unwrap().restart();
    store.write_clicks(&[click("a-1", now, 2, "v2")]).await.unwrap();
    assert_eq!(
        clicks_counted(&*store, &["a-1"]).await,
        [2],
        "AOF kept the first click; the second was written after the restart"
    );
}

/// Clicks past the retention leave the embedded click log; their counts stay.
#[tokio::test]
async fn old_clicks_are_pruned_from_the_embedded_log_but_still_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), Duration::from_secs(86_400), Arc::new(SystemClock))
        .await
        .unwrap();
    let now = Utc::now().timestamp_millis() as u64;
    let old = now - 3 * 86_400_000;
    store
        .write_clicks(&[click("a-1", old, 1, "v1"), click("a-1", now, 2, "v2")])
        .await
        .unwrap();
    let removed = store.prune_clicks_before(now - 86_400_000).await.unwrap();
    assert_eq!(removed, 1);
    let left = store.read_clicks("a-1", None, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].entry, EntryId { ms: now, seq: 2 });
    assert_eq!(clicks_counted(&store, &["a-1"]).await, [2]);
}

// Redis trims a link's click stream as it writes (whole stream nodes of entries older than the
// retention); the counts stay.
per_store!(old_clicks_leave_the_redis_click_stream_but_stay_counted: redis cluster);
async fn old_clicks_leave_the_redis_click_stream_but_stay_counted(backend: Backend) {
    let (store, _guard) = open(backend).await;
    let now = Utc::now().timestamp_millis() as u64;
    let old = now - 500 * 86_400_000;
    let olds: Vec<NewClick> = (0..300).map(|i| click("a-1", old + i, 1, "v1")).collect();
    store.write_clicks(&olds).await.unwrap();
    let left = store.read_clicks("a-1", None, 1_000).await.unwrap().len();
    assert!(left < 300, "old entries were trimmed: {left} left");
    store.write_clicks(&[click("a-1", now, 2, "v2")]).await.unwrap();
    let left = store.read_clicks("a-1", None, 1_000).await.unwrap();
    assert_eq!(left.last().unwrap().entry, EntryId { ms: now, seq: 2 });
    assert_eq!(clicks_counted(&*store, &["a-1"]).await, [301]);
}

// A group written again (a retry, a spool replay) once its clicks are past the retention still
// finds its entries, and counts nothing twice: the stream is trimmed only by a group that
// wrote clicks.
per_store!(a_group_written_again_after_its_clicks_passed_the_retention_counts_once: redis cluster);
async fn a_group_written_again_after_its_clicks_passed_the_retention_counts_once(backend: Backend) {
    let clock = ManualClock::at(Utc::now());
    let (store, _guard) = open_with_clock(backend, clock.clone()).await;
    let now = Utc::now().timestamp_millis() as u64;
    let group: Vec<NewClick> = (0..300).map(|i| click("a-1", now + i, 1, "v1")).collect();
    store.write_clicks(&group).await.unwrap();
    clock.advance(TimeDelta::days(401));
    let ids = store.write_clicks(&group).await.unwrap();
    assert_eq!(clicks_counted(&*store, &["a-1"]).await, [300]);
    assert!(ids.iter().zip(&group).all(|(id, c)| *id == c.entry), "none re-keyed");
}

per_store!(unique_visitors_are_exact_to_ten_thousand_a_day_and_within_one_percent_above);
async fn unique_visitors_are_exact_to_ten_thousand_a_day_and_within_one_percent_above(backend: Backend) {
    let (store, _guard) = open(backend).await;
    let now = Utc::now().timestamp_millis() as u64;
    let day = Utc.timestamp_millis_opt(now as i64).unwrap().date_naive();
    let mut seq = 0;
    let mut write = async |from: usize, to: usize| {
        for chunk in (from..to).collect::<Vec<_>>().chunks(500) {
            let batch: Vec<NewClick> = chunk
                .iter()
                .map(|i| {
                    seq += 1;
                    click("a-1", now, seq, &format!("{i:024x}"))
                })
                .collect();
            store.write_clicks(&batch).await.unwrap();
        }
    };
    write(0, 9_900).await;
    // Visitors coming back count once.
    write(0, 2_000).await;
    let uv = store.unique_visitors(&[("a-1".into(), day)]).await.unwrap();
    assert_eq!(uv, [9_900], "exact up to 10,000");
    let exact = |store: Arc<dyn Store>| async move {
        let rollups = store.link_data(&["a-1".into()], Detail::Rollups).await.unwrap();
        rollups[0].rollup(&format!("u|{day}"))
    };
    assert_eq!(exact(store.clone()).await, Some(9_900), "the rollups count them too");
    // The first group fills the exact visitors (100) and goes past them (400).
    write(9_900, 15_000).await;
    write(5_000, 15_000).await;
    let uv = store.unique_visitors(&[("a-1".into(), day)]).await.unwrap()[0];
    let error = (uv as f64 - 15_000.0).abs() / 15_000.0;
    assert!(error <= 0.01, "{uv} is {:.2} % off 15,000", error * 100.0);
    // Past 10,000 the rollups stop (reports ask the store), on every store.
    assert_eq!(exact(store.clone()).await, Some(10_000));
}

/// A store written before rollups existed (counters only) gets them when this version opens it.
#[tokio::test]
async fn redis_counters_written_before_rollups_get_them_at_the_next_start() {
    let (store, guard) = open(Backend::Redis).await;
    let now = Utc::now().timestamp_millis() as u64;
    store
        .write_clicks(&[click("a-1", now, 1, "v1"), click("a-1", now, 2, "v2")])
        .await
        .unwrap();
    let mut conn = guard.redis.as_ref().unwrap().connection().await;
    // What an older version left: the link's record, counters and metrics, no rollups, no
    // layout version.
    let _: () = conn.hset("kl:{meta}:links", "a-1", "{}").await.unwrap();
    let _: () = conn
        .hset("kl:{a-1}:metrics", "2026-11-20", r#"{"impressions":400}"#)
        .await
        .unwrap();
    let _: () = conn.del(&["kl:{a-1}:rollups", "kl:{meta}:schema"]).await.unwrap();
    let before = store.link_data(&["a-1".into()], Detail::Rollups).await.unwrap();
    assert!(before[0].rollups.is_empty());
    assert!(before[0].insights.is_empty());

    let (store, _guard) = (reopen_redis(&guard).await, guard);

    assert_eq!(clicks_counted(&*store, &["a-1"]).await, [2]);
    let rollups = store.link_data(&["a-1".into()], Detail::Rollups).await.unwrap();
    assert_eq!(rollups[0].rollup("x|dev|mobile"), Some(2));
    let day = Utc.timestamp_millis_opt(now as i64).unwrap().date_naive();
    assert_eq!(rollups[0].rollup(&format!("u|{day}")), Some(2), "both visitors");
    // The metrics' copy in the rollups is read as insights, never as a counter.
    let reported = "2026-11-20".parse().unwrap();
    assert_eq!(rollups[0].insights.get(&reported).map(|m| m.impressions), Some(400));
    assert!(rollups[0].rollups.iter().all(|(f, _)| !f.starts_with("m|")));
    let copy: Option<String> = conn.hget("kl:{a-1}:rollups", "m|2026-11-20").await.unwrap();
    assert!(copy.is_some(), "the copy outlived the rollups' rebuild");
}

async fn reopen_redis(backing: &Backing) -> Arc<dyn Store> {
    let url = backing.redis.as_ref().unwrap().url();
    Arc::new(
        RedisStore::connect(
            &Target::Single(url),
            "kl",
            Duration::from_secs(86_400),
            0,
            Arc::new(SystemClock),
        )
        .await
        .unwrap(),
    )
}

#[tokio::test]
async fn embedded_counters_written_before_rollups_get_them_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Duration::from_secs(86_400);
    let now = Utc::now().timestamp_millis() as u64;
    {
        let store = EmbeddedStore::open(dir.path(), retention, Arc::new(SystemClock))
            .await
            .unwrap();
        store
            .write_clicks(&[click("a-1", now, 1, "v1"), click("a-1", now, 2, "v2")])
            .await
            .unwrap();
        store.close().await;
    }
    {
        // What an older version left: counters, no rollups table, no layout version.
        let db = redb::Database::open(dir.path().join("kolink.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(redb::TableDefinition::<(&str, &str), i64>::new("rollups"))
            .unwrap();
        txn.open_table(redb::TableDefinition::<&str, u64>::new("seqs"))
            .unwrap()
            .remove("schema")
            .unwrap();
        txn.commit().unwrap();
    }

    let store = EmbeddedStore::open(dir.path(), retention, Arc::new(SystemClock))
        .await
        .unwrap();

    assert_eq!(clicks_counted(&store, &["a-1"]).await, [2]);
    let rollups = store.link_data(&["a-1".into()], Detail::Rollups).await.unwrap();
    assert_eq!(rollups[0].rollup("x|dev|mobile"), Some(2));
    let day = Utc.timestamp_millis_opt(now as i64).unwrap().date_naive();
    assert_eq!(rollups[0].rollup(&format!("u|{day}")), Some(2), "both visitors");
}

/// A link record for store-level tests: `code` in campaign `c`, KOL `k`.
fn link(code: &str, id: u64) -> kolink::domain::Link {
    link_of("k", code, id)
}

fn link_of(kol: &str, code: &str, id: u64) -> kolink::domain::Link {
    serde_json::from_value(serde_json::json!({
        "id": id, "code": code, "campaign": "c", "kol": kol,
        "destination": "https://shop.example.com/", "target_url": "https://shop.example.com/",
        "utm": {"source": "instagram", "medium": "kol", "campaign": "c", "content": "k", "term": null},
        "cost": "0.00", "coupon": null, "tags": [], "status": "active",
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "expires_at": null,
    }))
    .unwrap()
}

per_store!(a_link_list_read_whole_comes_in_full_pages_even_when_a_kols_links_are_sparse);
/// Reports count a list a page at a time, a chunk of up to 1,000 links per store call: a KOL's
/// links among a campaign's are gathered into full pages, not handed on a few per page read.
async fn a_link_list_read_whole_comes_in_full_pages_even_when_a_kols_links_are_sparse(backend: Backend) {
    use kolink::lookup::{all_links, LinkFilter, LinkLists};
    let (store, _guard) = open(backend).await;
    let links: Vec<_> = (1..=10_000)
        .map(|i| link_of(if i % 4 == 0 { "k1" } else { "k0" }, &format!("l-{i:05}"), i))
        .collect();
    for batch in links.chunks(2_000) {
        store.create_links(batch).await.unwrap().unwrap();
    }
    let lists = LinkLists::new(100_000, Arc::new(SystemClock));
    let sizes = |filter: LinkFilter| {
        let (store, lists) = (&store, &lists);
        async move {
            let list = all_links(&**store, lists, &filter).await.unwrap();
            let sizes: Vec<usize> = list.pages().iter().map(|p| p.len()).collect();
            let codes: Vec<&str> = list.iter().map(|l| l.code.as_str()).collect();
            (
                sizes,
                codes.first().map(|c| c.to_string()),
                codes.last().map(|c| c.to_string()),
            )
        }
    };
    let of = |kol: Option<&str>| LinkFilter {
        campaign: Some("c".into()),
        kol: kol.map(str::to_owned),
    };
    assert_eq!(
        sizes(of(None)).await,
        (vec![2_000; 5], Some("l-10000".into()), Some("l-00001".into()))
    );
    assert_eq!(
        sizes(of(Some("k1"))).await,
        (vec![2_000, 500], Some("l-10000".into()), Some("l-00004".into())),
        "a quarter of each page read, gathered"
    );
    let k0 = sizes(of(Some("k0"))).await;
    assert_eq!(k0.0.iter().sum::<usize>(), 7_500);
    assert!(k0.0[..k0.0.len() - 1].iter().all(|n| *n >= 2_000), "{:?}", k0.0);
}

/// A whole prune of hours reads every link (seconds of Redis at 100,000 links); Redis
/// remembers the day of the last one, so that a process starting again that day, or another
/// beside it, asks one key instead. A later day's prune reads every link again, and takes the
/// hours a link left meanwhile.
#[tokio::test]
async fn a_whole_prune_of_hours_on_redis_is_not_repeated_for_its_day() {
    let (store, guard) = open(Backend::Redis).await;
    let now = Utc::now();
    let (keep_from, next) = (
        (now - TimeDelta::days(30)).date_naive(),
        (now - TimeDelta::days(29)).date_naive(),
    );
    let links: Vec<_> = (1..=3).map(|i| link(&format!("l-{i}"), i)).collect();
    store.create_links(&links).await.unwrap().unwrap();
    let ms = |t: chrono::DateTime<Utc>| t.timestamp_millis() as u64;
    store.write_clicks(&[click("l-1", ms(now), 1, "v1")]).await.unwrap();
    let mut conn = guard.redis.as_ref().unwrap().connection().await;
    reset_stats(&mut conn).await;
    assert_eq!(store.prune_hours(keep_from).await.unwrap(), 0);
    assert_eq!(
        calls(&command_stats(&mut conn).await, "evalsha"),
        3,
        "one script per link"
    );

    // A link minted after the pass, with an hour of a day before it (a replayed click).
    store.create_links(&[link("l-4", 4)]).await.unwrap().unwrap();
    let old = now - TimeDelta::days(31);
    store.write_clicks(&[click("l-4", ms(old), 1, "v1")]).await.unwrap();
    reset_stats(&mut conn).await;
    for day in [keep_from, keep_from - TimeDelta::days(1)] {
        assert_eq!(store.prune_hours(day).await.unwrap(), 0);
    }
    let stats = command_stats(&mut conn).await;
    assert_eq!(
        calls(&stats, "evalsha") + calls(&stats, "zrevrangebyscore"),
        0,
        "{stats}"
    );

    assert_eq!(
        store.prune_hours(next).await.unwrap(),
        1,
        "the next day's pass takes that hour"
    );
    assert_eq!(calls(&command_stats(&mut conn).await, "evalsha"), 4);
    let full = store
        .link_data(&["l-4".into()], Detail::Full)
        .await
        .unwrap()
        .remove(0)
        .full;
    assert!(!full.iter().any(|(f, _)| f.starts_with("c|")), "{full:?}");
}

per_store!(pruning_hours_leaves_no_hour_of_an_old_day_and_every_day_whole);
/// Clicks and a purchase 100 days ago, a click today, on one link of 1,101: pruning the hours before 30 days ago
/// removes the old day's three hourly fields, keeps its daily breakdown and today's hour, and
/// leaves the rollups as they were. Again, it removes nothing; a refund of the old day counted
/// after it leaves no hour of that day either, once pruned again, and still counts on its day;
/// one of a kept day counts its hour; a later prune takes the hours of the days since.
async fn pruning_hours_leaves_no_hour_of_an_old_day_and_every_day_whole(backend: Backend) {
    let (store, guard) = open(backend).await;
    let now = Utc::now();
    let old = now - TimeDelta::days(100);
    let (old_day, keep_from) = (old.date_naive(), (now - TimeDelta::days(30)).date_naive());
    // The link is the oldest (the Redis store pages its index newest first) and the last by
    // code (the embedded store walks its links by code): the prune reaches it past full pages.
    store.create_links(&[link("zz-9", 1)]).await.unwrap().unwrap();
    let others: Vec<_> = (2..=1_101).map(|i| link(&format!("f-{i:04}"), i)).collect();
    store.create_links(&others).await.unwrap().unwrap();
    let ms = |t: chrono::DateTime<Utc>| t.timestamp_millis() as u64;
    let mid = now - TimeDelta::days(20);
    // A breakdown value that reads like a day is no hour.
    let mut dated = click("zz-9", ms(old), 2, "v2");
    dated.info.dims = dated.info.dims.clone().with(Dimension::Referrer, "2020-01-01");
    dated.fields = click_fields(old, &dated.info);
    store
        .write_clicks(&[
            click("zz-9", ms(old), 1, "v1"),
            dated,
            click("zz-9", ms(mid), 3, "v1"),
            click("zz-9", ms(now), 4, "v1"),
        ])
        .await
        .unwrap();
    let hour = |kind: &str| format!("{kind}{}", old.format("%Y-%m-%d|%H"));
    let purchase = [(hour("e|purchase|"), 1), (hour("r|"), 1280)];
    store.count_conversion("zz-9", "conv-1", &purchase, None).await.unwrap();
    let read = || async { store.link_data(&["zz-9".into()], Detail::Full).await.unwrap().remove(0) };
    let old_hours = |d: &kolink::store::LinkData| -> Vec<String> {
        let mut v: Vec<String> = d
            .full
            .iter()
            .map(|(f, _)| f.clone())
            .filter(|f| f.contains(&format!("{old_day}|")) && !f.starts_with("x|"))
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<(String, i64)>| {
        v.sort();
        v
    };
    let before = read().await;
    assert_eq!(old_hours(&before).len(), 3, "{:?}", before.full);

    assert_eq!(store.prune_hours(keep_from).await.unwrap(), 3);

    let after = read().await;
    assert_eq!(old_hours(&after), Vec::<String>::new());
    assert_eq!(sorted(after.rollups.clone()), sorted(before.rollups.clone()));
    let kept = |d: &kolink::store::LinkData, f: &str| d.full.iter().any(|(k, _)| k == f);
    assert!(
        kept(&after, &format!("x|dev|{old_day}|mobile")),
        "daily breakdowns stay"
    );
    assert!(kept(&after, &format!("x|ref|{old_day}|2020-01-01")));
    assert_eq!(after.rollup("x|ref|2020-01-01"), Some(1));
    assert!(
        kept(&after, &format!("c|{}", now.format("%Y-%m-%d|%H"))),
        "today's hour stays"
    );
    // Redis would answer the same day's pass at once from its note (tested below): forgotten,
    // each link's own mark answers.
    forget_last_prune(&guard).await;
    assert_eq!(store.prune_hours(keep_from).await.unwrap(), 0, "once is enough");

    let refund = [(hour("e|refund|"), 1), (hour("f|"), 280)];
    store.count_conversion("zz-9", "conv-2", &refund, None).await.unwrap();
    forget_last_prune(&guard).await;
    store.prune_hours(keep_from).await.unwrap();
    let late = read().await;
    assert_eq!(old_hours(&late), Vec::<String>::new());
    assert_eq!(late.rollup(&format!("f|{old_day}")), Some(280));
    assert_eq!(late.rollup(&format!("c|{old_day}")), Some(2));

    // A conversion of a kept day still counts its hour.
    let signup = format!("e|signup|{}", now.format("%Y-%m-%d|%H"));
    store
        .count_conversion("zz-9", "conv-3", &[(signup.clone(), 1)], None)
        .await
        .unwrap();
    assert!(kept(&read().await, &signup), "a kept day's hour is written");
    // Days later (each day's prune looks the new old days up): the hours of 20 days ago go.
    let mid_hour = format!("c|{}", mid.format("%Y-%m-%d|%H"));
    assert!(kept(&read().await, &mid_hour));
    let later = (now - TimeDelta::days(18)).date_naive();
    assert_eq!(store.prune_hours(later).await.unwrap(), 1);
    let last = read().await;
    assert!(!kept(&last, &mid_hour));
    assert!(kept(&last, &signup));
    assert_eq!(last.rollup(&format!("c|{}", mid.date_naive())), Some(1));
}

/// The embedded store's file holds the shops' secrets, the session key and the admin token's
/// hash: only kolink's own user may read it, or its directory (umask 022 gave every local user
/// read access).
#[tokio::test]
async fn the_embedded_files_are_readable_by_kolinks_user_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = EmbeddedStore::open(&data, Duration::from_secs(86_400), Arc::new(SystemClock))
        .await
        .unwrap();
    drop(store);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("kolink.redb")), 0o600, "the database");
    assert_eq!(mode(&data.join("kolink.journal")), 0o600, "the click journal");
}

/// The millisecond part of a stream id.
fn parse_ms(id: &str) -> u64 {
    id.split('-').next().unwrap().parse().unwrap()
}

/// Every entry of link `a-1`'s stream: its id, and the id it was proposed under when re-keyed.
async fn raw_entries(conn: &mut redis::aio::MultiplexedConnection) -> Vec<(String, Option<String>)> {
    let all: redis::streams::StreamRangeReply = conn.xrange_all("kl:{a-1}:clicks").await.unwrap();
    all.ids
        .into_iter()
        .map(|e| {
            let rid = e.get::<String>("rid");
            (e.id, rid)
        })
        .collect()
}

/// A process started with a shorter click retention than a campaign another process accepted
/// keeps that campaign's clicks once told of its window, rather than trimming them for every
/// process with its next click.
#[tokio::test]
async fn a_store_told_of_a_longer_window_keeps_clicks_that_long() {
    let backing = Backing::new(Backend::Redis);
    let redis = backing.redis.as_ref().unwrap();
    let now = Utc::now().timestamp_millis() as u64;
    let mut conn = redis.connection().await;
    let forty_days = 40 * 86_400_000;
    for k in 0..300u64 {
        let _: String = conn
            .xadd(
                "kl:{a-1}:clicks",
                format!("{}-0", now - forty_days + k),
                &[("v", "old")],
            )
            .await
            .unwrap();
    }
    // Two processes whose setting keeps clicks 30 days.
    let thirty_day_store = || async {
        let thirty_days = Duration::from_secs(30 * 86_400);
        RedisStore::connect(
            &Target::Single(redis.url()),
            "kl",
            thirty_days,
            0,
            Arc::new(SystemClock),
        )
        .await
        .unwrap()
    };
    let store = thirty_day_store().await;
    store.keep_clicks_for_at_least(90);
    store.keep_clicks_for_at_least(10); // never shortens
    store.write_clicks(&[click("a-1", now, 1, "v1")]).await.unwrap();
    let kept: usize = conn.xlen("kl:{a-1}:clicks").await.unwrap();
    assert_eq!(kept, 301, "the 40-day-old clicks are kept");

    // Not told, the 30-day store trims them.
    let other = thirty_day_store().await;
    other.write_clicks(&[click("a-1", now + 1, 2, "v2")]).await.unwrap();
    let kept: usize = conn.xlen("kl:{a-1}:clicks").await.unwrap();
    assert!(kept < 100, "trimmed past 30 days: {kept}");
}

per_store!(the_links_changed_since_a_change_are_read_while_few_are_kept: redis cluster);
/// A link book (`kolink::link_book`) brought up to date reads the links changed since the
/// change it holds, not every link; when that change is older than the changes kept, or the
/// store's count went back (a restore), it is told to read every link.
async fn the_links_changed_since_a_change_are_read_while_few_are_kept(backend: Backend) {
    let (store, _guard) = open(backend).await;
    let codes = |records: Option<Vec<String>>| {
        records.map(|r| {
            let mut codes: Vec<String> = r
                .iter()
                .map(|j| {
                    serde_json::from_str::<kolink::domain::Link>(j)
                        .unwrap()
                        .code
                        .as_str()
                        .to_owned()
                })
                .collect();
            codes.sort();
            codes
        })
    };
    let start = store.link_changes(None, 0).await.unwrap().unwrap();
    assert_eq!((start.seq, start.links, start.records), (0, 0, None));

    store
        .create_links(&[link("a-1", 1), link("a-2", 2)])
        .await
        .unwrap()
        .unwrap();
    let first = store.link_changes(Some(0), 1000).await.unwrap().unwrap();
    assert_eq!((first.seq, first.links), (1, 2));
    assert_eq!(codes(first.records), Some(vec!["a-1".into(), "a-2".into()]));

    let old = store.get_link_json("a-1").await.unwrap().unwrap();
    let mut changed = link("a-1", 1);
    changed.target_url = "https://shop.example.com/other".into();
    store.update_link(&old, &changed).await.unwrap().unwrap();
    let since = store.link_changes(Some(1), 1000).await.unwrap().unwrap();
    assert_eq!((since.seq, since.links), (2, 2));
    let records = since.records.unwrap();
    assert_eq!(records.len(), 1, "only the link changed");
    assert!(records[0].contains("https://shop.example.com/other"), "{}", records[0]);
    let none = store.link_changes(Some(2), 1000).await.unwrap().unwrap();
    assert_eq!(none.records, Some(vec![]));

    // More changed than asked for, and a change number the store has not reached.
    assert_eq!(store.link_changes(Some(0), 1).await.unwrap().unwrap().records, None);
    assert_eq!(store.link_changes(Some(9), 1000).await.unwrap().unwrap().records, None);

    // 2,000 changes are kept: past them, the changes since the first are not all known.
    let many: Vec<_> = (3..=2_100).map(|i| link(&format!("b-{i:05}"), i)).collect();
    for batch in many.chunks(700) {
        store.create_links(batch).await.unwrap().unwrap();
    }
    // Changes 3, 4 and 5; the 100 oldest of the 2,100 were let go, up to some of change 3.
    let late = store.link_changes(Some(2), 2_000).await.unwrap().unwrap();
    assert_eq!((late.seq, late.links, late.records), (5, 2_100, None));
    let last = store.link_changes(Some(3), 2_000).await.unwrap().unwrap();
    assert_eq!(codes(last.records).map(|c| c.len()), Some(700 + 698));
}
