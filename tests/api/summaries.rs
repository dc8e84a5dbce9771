//! Link summaries: what reports read of a campaign's or a KOL's links, kept beside the link
//! indexes. They follow every change of a link, and stores written before they existed get
//! them at the next start.

use chrono::{TimeDelta, Utc};
use kolink::clock::ManualClock;
use redis::AsyncCommands;
use serde_json::{json, Value};

use crate::helpers::{settings_for, spawn_app, spawn_app_with_clock, start, Backend, Backing, TestApp};

/// A campaign `spring-sale` with two links of KOL `amy` (costs 100 and 200) and one of `ben`
/// (300); `amy-a` tapped twice, `ben-a` once.
async fn two_kols(app: &TestApp) {
    app.create_campaign("spring-sale").await;
    app.create_kol("amy", 42_000).await;
    app.create_kol("ben", 800).await;
    for (code, kol, cost) in [
        ("amy-a", "amy", "100"),
        ("amy-b", "amy", "200"),
        ("ben-a", "ben", "300"),
    ] {
        app.create_link(json!({"campaign": "spring-sale", "kol": kol, "code": code, "cost": cost}))
            .await;
    }
    for code in ["amy-a", "amy-a", "ben-a"] {
        assert_eq!(app.tap(code).await.status(), 302);
    }
}

/// `field` of each of `amy`'s links in `two_kols`' campaign, as the link list gives them.
async fn amys_links(app: &TestApp, field: &str) -> Vec<String> {
    let page = app.get_ok("/api/v1/links?campaign=spring-sale&kol=amy").await;
    page["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[field].as_str().unwrap().to_owned())
        .collect()
}

/// What the reports say of `two_kols`' campaign: (links, clicks, cost) of the campaign, of
/// `amy`'s row, and of `amy`'s own stats.
async fn figures(app: &TestApp) -> [(u64, u64, String); 3] {
    let c = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    let amy = c["kols"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kol"] == "amy")
        .cloned()
        .unwrap();
    let k = app.get_ok("/api/v1/kols/amy/stats").await;
    let row = |links: &Value, t: &Value| {
        (
            links.as_u64().unwrap(),
            t["clicks"].as_u64().unwrap(),
            t["cost"].as_str().unwrap().to_owned(),
        )
    };
    [
        row(&c["links"], &c["totals"]),
        row(&amy["links"], &amy),
        row(&k["links"], &k["totals"]),
    ]
}

async fn a_links_new_cost_shows_in_its_campaign_and_kol_stats(backend: Backend) {
    let app = spawn_app(backend).await;
    two_kols(&app).await;

    let r = app.patch("/api/v1/links/amy-b", &json!({"cost": "250.50"})).await;
    assert_eq!(r.status(), 200);

    let [campaign, amy_row, amy] = figures(&app).await;
    assert_eq!(campaign, (3, 3, "650.50".to_owned()));
    assert_eq!(amy_row, (2, 2, "350.50".to_owned()));
    assert_eq!(amy, (2, 2, "350.50".to_owned()));
    assert_eq!(
        amys_links(&app, "cost").await,
        ["250.50", "100.00"],
        "lists still give whole records, newest first"
    );
}
per_store!(a_links_new_cost_shows_in_its_campaign_and_kol_stats);

/// Reports read a long list in pages of 2,000 (`LIST_PAGE`), each asked for before the one
/// before it is decoded, and a campaign's report counts each page as it arrives: the
/// campaign's 4,999 links (two full pages, then a short one) and amy's 2,000 (a full page,
/// then an empty one) are counted whole, the oldest (tapped) ones on the last page included.
/// amy's share page of the campaign reads the campaign's pages and keeps hers: none of the
/// first.
async fn a_list_of_several_pages_is_counted_whole(backend: Backend) {
    let app = spawn_app(backend).await;
    two_kols(&app).await;
    for start in (0..4_996).step_by(500) {
        let kols: Vec<Value> = (start..(start + 500).min(4_996))
            .map(|i| json!({"kol": if i < 1_998 { "amy" } else { "ben" }, "cost": "1"}))
            .collect();
        let r = app
            .post("/api/v1/campaigns/spring-sale/links", &json!({ "kols": kols }))
            .await;
        assert_eq!(r.status(), 201);
    }
    let [campaign, amy_row, amy] = figures(&app).await;
    assert_eq!(campaign, (4_999, 3, "5596.00".to_owned()));
    assert_eq!(amy_row, (2_000, 2, "2298.00".to_owned()));
    assert_eq!(amy, (2_000, 2, "2298.00".to_owned()));

    // amy's share page of this campaign alone: not her tapped link of another campaign.
    app.create_campaign("autumn").await;
    app.create_link(json!({"campaign": "autumn", "kol": "amy", "code": "amy-autumn"}))
        .await;
    assert_eq!(app.tap("amy-autumn").await.status(), 302);
    let share = app
        .post_expect("/api/v1/kols/amy/shares", &json!({"campaign": "spring-sale"}), 201)
        .await;
    let url = format!("{}.json", share["url"].as_str().unwrap());
    let page: Value = app.api.get(url).send().await.unwrap().json().await.unwrap();
    let links = page["links"].as_array().unwrap();
    assert_eq!(links.len(), 2_000);
    assert!(links.iter().all(|l| l["campaign"] == "spring-sale"));
    assert_eq!(page["totals"]["clicks"], 2, "amy-a's two taps, on the last page");
    let (first, last) = (&links[0]["code"], &links[1_999]["code"]);
    assert_eq!(last, "amy-a", "newest first: {first} … {last}");
}
per_store!(a_list_of_several_pages_is_counted_whole);

/// Reports keep a campaign's and a KOL's link list while no link changes (`LinkLists`): a link
/// minted or changed after a report is in the next one.
async fn reports_after_a_link_is_minted_or_changed_count_it(backend: Backend) {
    let app = spawn_app(backend).await;
    two_kols(&app).await;
    assert_eq!(figures(&app).await[0], (3, 3, "600.00".to_owned()));

    app.create_link(json!({"campaign": "spring-sale", "kol": "amy", "code": "amy-c", "cost": "50"}))
        .await;
    assert_eq!(app.tap("amy-c").await.status(), 302);
    let r = app.patch("/api/v1/links/amy-b", &json!({"cost": "250.50"})).await;
    assert_eq!(r.status(), 200);

    let [campaign, amy_row, amy] = figures(&app).await;
    assert_eq!(campaign, (4, 4, "700.50".to_owned()));
    assert_eq!(amy_row, (3, 3, "400.50".to_owned()));
    assert_eq!(amy, (3, 3, "400.50".to_owned()));
}
per_store!(reports_after_a_link_is_minted_or_changed_count_it);

/// A second kolink on `app`'s Redis.
async fn beside(app: &TestApp) -> TestApp {
    let backing = Backing {
        redis: None,
        cluster: None,
        data: None,
        spool: tempfile::tempdir().unwrap(),
        faults: Default::default(),
    };
    let mut settings = settings_for(&backing);
    settings.redis_url = Some(app.redis.as_ref().unwrap().url());
    start(backing, settings).await
}

#[tokio::test]
async fn redis_reports_count_links_that_another_process_minted_or_changed() {
    let first = spawn_app(Backend::Redis).await;
    two_kols(&first).await;
    let second = beside(&first).await;
    assert_eq!(figures(&first).await[0], (3, 3, "600.00".to_owned()));

    // Minted and changed on the second process, after the first one's report.
    second
        .create_link(json!({"campaign": "spring-sale", "kol": "amy", "code": "amy-c", "cost": "50"}))
        .await;
    let r = second.patch("/api/v1/links/amy-b", &json!({"cost": "250.50"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(figures(&first).await[0], (4, 3, "700.50".to_owned()));

    // A process of an older version mints without leaving a new version number: the number of
    // links still moves the version.
    let mut conn = first.redis.as_ref().unwrap().connection().await;
    let before: String = conn.get("kl:{meta}:links:version").await.unwrap();
    second
        .create_link(json!({"campaign": "spring-sale", "kol": "ben", "code": "ben-b", "cost": "9"}))
        .await;
    let _: () = conn.set("kl:{meta}:links:version", before).await.unwrap();
    assert_eq!(figures(&first).await[0], (5, 3, "709.50".to_owned()));
}

// A process of a version that wrote summaries but no links version changes a link: the kept
// lists miss it until they are a minute old.
#[tokio::test]
async fn redis_reports_read_a_kept_link_list_again_once_it_is_a_minute_old() {
    let clock = ManualClock::at(Utc::now());
    let app = spawn_app_with_clock(Backend::Redis, clock.clone()).await;
    two_kols(&app).await;
    assert_eq!(figures(&app).await[0], (3, 3, "600.00".to_owned()));

    let mut conn = app.redis.as_ref().unwrap().connection().await;
    let json: String = conn.hget("kl:{meta}:summaries", "amy-b").await.unwrap();
    let mut summary: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(summary["cost"], json!("200.00"), "{json}");
    summary["cost"] = json!("250.00");
    let _: () = conn
        .hset("kl:{meta}:summaries", "amy-b", summary.to_string())
        .await
        .unwrap();
    clock.advance(TimeDelta::seconds(59));
    assert_eq!(
        figures(&app).await[0],
        (3, 3, "600.00".to_owned()),
        "the kept list, 59 s old"
    );
    clock.advance(TimeDelta::seconds(2));
    assert_eq!(figures(&app).await[0], (3, 3, "650.00".to_owned()), "read again");
}

const OLD_SCHEMA: u64 = 2;

/// Puts codes back in the embedded file's campaign and KOL indexes, as an older version wrote
/// them, and sets its layout version to `schema`.
fn index_codes(data: &std::path::Path, schema: u64) {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    let path = data.join("kolink.redb");
    let db = redb::Database::open(&path).unwrap();
    let txn = db.begin_write().unwrap();
    for name in ["campaign_links", "kol_links"] {
        let def = TableDefinition::<(&str, u64), &str>::new(name);
        let mut t = txn.open_table(def).unwrap();
        let rows: Vec<((String, u64), String)> = t
            .iter()
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                let summary: Value = serde_json::from_str(v.value()).unwrap();
                (
                    (k.value().0.to_owned(), k.value().1),
                    summary["code"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(rows.len(), 3);
        for ((owner, id), code) in rows {
            t.insert((owner.as_str(), id), code.as_str()).unwrap();
        }
    }
    txn.open_table(TableDefinition::<&str, u64>::new("seqs"))
        .unwrap()
        .insert("schema", schema)
        .unwrap();
    txn.commit().unwrap();
    drop(db);
    let db = redb::Database::open(&path).unwrap();
    let t = db.begin_read().unwrap();
    let t = t
        .open_table(TableDefinition::<(&str, u64), &str>::new("campaign_links"))
        .unwrap();
    assert!(
        !t.first().unwrap().unwrap().1.value().starts_with('{'),
        "codes, not summaries"
    );
}

#[tokio::test]
async fn embedded_links_indexed_by_an_older_version_get_summaries_at_the_next_start() {
    let app = spawn_app(Backend::Embedded).await;
    two_kols(&app).await;
    let before = figures(&app).await;
    let (backing, settings) = app.stop().await;
    index_codes(backing.data.as_ref().unwrap().path(), OLD_SCHEMA);

    let app = start(backing, settings).await;

    assert_eq!(figures(&app).await, before);
    let page = app.get_ok("/api/v1/links?campaign=spring-sale").await;
    assert_eq!(page["links"].as_array().unwrap().len(), 3);
}

/// An older version that ran on the file after it had summaries (a rollback, then this version
/// again) left codes behind at the new layout version: their records stand in.
#[tokio::test]
async fn embedded_index_rows_holding_codes_at_the_new_layout_still_count() {
    let app = spawn_app(Backend::Embedded).await;
    two_kols(&app).await;
    let before = figures(&app).await;
    let (backing, settings) = app.stop().await;
    index_codes(backing.data.as_ref().unwrap().path(), 3);

    let app = start(backing, settings).await;

    assert_eq!(figures(&app).await, before);
    assert_eq!(amys_links(&app, "code").await, ["amy-b", "amy-a"]);
}

#[tokio::test]
async fn redis_links_minted_by_an_older_version_are_in_their_campaign_stats() {
    let app = spawn_app(Backend::Redis).await;
    two_kols(&app).await;
    let before = figures(&app).await;
    let mut conn = app.redis.as_ref().unwrap().connection().await;

    // A link that a process of an older version minted after the upgrade: no summary. Its
    // record stands in.
    let _: () = conn.hdel("kl:{meta}:summaries", "amy-b").await.unwrap();
    assert_eq!(figures(&app).await, before);

    // A store written by an older version: no summaries at all, layout version 2.
    let _: () = conn.del("kl:{meta}:summaries").await.unwrap();
    let _: () = conn.set("kl:{meta}:schema", OLD_SCHEMA).await.unwrap();
    let (backing, settings) = app.stop().await;
    let app = start(backing, settings).await;

    let summaries: u64 = conn.hlen("kl:{meta}:summaries").await.unwrap();
    assert_eq!(summaries, 3, "written at the start");
    let schema: u64 = conn.get("kl:{meta}:schema").await.unwrap();
    assert_eq!(schema, 4);
    assert_eq!(figures(&app).await, before);
}

/// Reports read a big campaign's links a chunk at a time (1,000): every chunk counts.
async fn a_campaign_of_more_links_than_one_read_counts_every_link(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_campaign("big").await;
    app.create_kol("amy", 42_000).await;
    app.create_kol("ben", 800).await;
    let mut codes = Vec::new();
    for start in (0..1_201).step_by(500) {
        let kols: Vec<Value> = (start..(start + 500).min(1_201))
            .map(|i| json!({"kol": if i % 2 == 0 { "amy" } else { "ben" }, "cost": "1.25"}))
            .collect();
        let made = app
            .post_expect("/api/v1/campaigns/big/links", &json!({"kols": kols}), 201)
            .await;
        codes.extend(
            made["links"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["code"].as_str().unwrap().to_owned()),
        );
    }
    // The oldest, one on each side of the first chunk's end (newest first), and the newest.
    for i in [0, 199, 201, 1_200] {
        assert_eq!(app.tap(&codes[i]).await.status(), 302);
    }

    let c = app.get_ok("/api/v1/campaigns/big/stats").await;
    assert_eq!(c["links"], 1_201);
    assert_eq!(c["totals"]["clicks"], 4);
    assert_eq!(c["totals"]["unique_clicks"], 4);
    assert_eq!(c["totals"]["cost"], "1501.25");
    let rows: Vec<(&str, u64, u64)> = c["kols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kol"].as_str().unwrap(),
                r["links"].as_u64().unwrap(),
                r["clicks"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        rows.contains(&("amy", 601, 2)) && rows.contains(&("ben", 600, 2)),
        "{rows:?}"
    );
    let devices = c["breakdown"]["device"].as_array().unwrap();
    assert_eq!(devices.iter().map(|d| d["clicks"].as_u64().unwrap()).sum::<u64>(), 4);
    let k = app.get_ok("/api/v1/kols/amy/stats").await;
    assert_eq!(
        (k["links"].as_u64(), k["totals"]["clicks"].as_u64()),
        (Some(601), Some(2))
    );
}
per_store!(a_campaign_of_more_links_than_one_read_counts_every_link);
