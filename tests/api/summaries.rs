//! Link summaries: what reports read of a campaign's or a KOL's links, kept beside the link
//! indexes. They follow every change of a link, and stores written before they existed get
//! them at the next start.

use redis::AsyncCommands;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, start, Backend, TestApp};

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
    let page = app.get_ok("/api/v1/links?campaign=spring-sale&kol=amy").await;
    let costs: Vec<&str> = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["cost"].as_str().unwrap())
        .collect();
    assert_eq!(
        costs,
        ["250.50", "100.00"],
        "lists still give whole records, newest first"
    );
}
per_store!(a_links_new_cost_shows_in_its_campaign_and_kol_stats);

const OLD_SCHEMA: u64 = 2;

#[tokio::test]
async fn embedded_links_indexed_by_an_older_version_get_summaries_at_the_next_start() {
    let app = spawn_app(Backend::Embedded).await;
    two_kols(&app).await;
    let before = figures(&app).await;
    let (backing, settings) = app.stop().await;
    {
        // What an older version left: codes in the campaign and KOL indexes, layout version 2.
        use redb::{ReadableDatabase, ReadableTable, TableDefinition};
        let db = redb::Database::open(backing.data.as_ref().unwrap().path().join("kolink.redb")).unwrap();
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
            .insert("schema", OLD_SCHEMA)
            .unwrap();
        txn.commit().unwrap();
        drop(db);
        let db = redb::Database::open(backing.data.as_ref().unwrap().path().join("kolink.redb")).unwrap();
        let t = db.begin_read().unwrap();
        let t = t
            .open_table(TableDefinition::<(&str, u64), &str>::new("campaign_links"))
            .unwrap();
        assert!(
            !t.first().unwrap().unwrap().1.value().starts_with('{'),
            "codes, not summaries"
        );
    }

    let app = start(backing, settings).await;

    assert_eq!(figures(&app).await, before);
    let page = app.get_ok("/api/v1/links?campaign=spring-sale").await;
    assert_eq!(page["links"].as_array().unwrap().len(), 3);
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
    assert_eq!(schema, 3);
    assert_eq!(figures(&app).await, before);
}
