//! Exports: raw clicks in order, JSON and CSV; CSV cells a spreadsheet opens safely.

use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, Backend};

per_store!(raw_clicks_read_in_order_page_by_page);
async fn raw_clicks_read_in_order_page_by_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.click_id("amy-serum").await);
    }
    app.tap_as("amy-serum", "Twitterbot/1.0").await;
    let page = app.get_ok("/api/v1/links/amy-serum/clicks?limit=3").await;
    let got: Vec<&str> = page["clicks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids[..3]);
    let first = &page["clicks"][0];
    assert_eq!(
        (
            first["bot"].as_bool(),
            first["device"].as_str(),
            first["browser"].as_str()
        ),
        (Some(false), Some("mobile"), Some("Instagram"))
    );
    assert!(first["at"].as_str().unwrap().ends_with('Z'));
    let next = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get_ok(&format!("/api/v1/links/amy-serum/clicks?after={next}"))
        .await;
    let rest: Vec<&Value> = rest["clicks"].as_array().unwrap().iter().collect();
    assert_eq!(rest.len(), 3);
    assert_eq!(rest[1]["id"], ids[4].as_str());
    assert_eq!(rest[2]["bot"], true);
    // `cursor`, as every other list pages, reads the same page as `after` (it read the first
    // page again, and a client paging like the other lists never ended).
    let by_cursor = app
        .get_ok(&format!("/api/v1/links/amy-serum/clicks?cursor={next}"))
        .await;
    assert_eq!(by_cursor["clicks"].as_array().unwrap().len(), 3);
    assert_eq!(by_cursor["clicks"][1]["id"], ids[4].as_str());
}

per_store!(raw_clicks_export_as_csv);
async fn raw_clicks_export_as_csv(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let id = app.click_id("amy-serum").await;
    let r = app.get_csv("/api/v1/links/amy-serum/clicks").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = r.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("id,at,bot,preview,suspicious,visitor,referrer,device,browser,os,country,source,app")
    );
    assert!(lines.next().unwrap().starts_with(&format!("{id},")));
}

per_store!(a_clicks_csv_holds_every_click_past_a_page);
async fn a_clicks_csv_holds_every_click_past_a_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    // More clicks than the store is read for at a time (1,000): the download goes on.
    let clicks = 1_030;
    for _ in 0..clicks / 10 {
        let taps: Vec<_> = (0..10).map(|_| app.tap("amy-serum")).collect();
        for r in futures_util::future::join_all(taps).await {
            assert_eq!(r.status(), 302);
        }
    }
    let r = app.get_csv("/api/v1/links/amy-serum/clicks").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"amy-serum-clicks.csv\""
    );
    assert!(r.headers().get("link").is_none(), "the whole log, not a page");
    let whole = csv_rows(&r.bytes().await.unwrap());
    assert_eq!(whole.len(), clicks);
    let ids: std::collections::HashSet<&str> = whole.iter().map(|c| c["id"].as_str()).collect();
    assert_eq!(ids.len(), clicks, "each click once");
    // From a click on, the rest of the log.
    let after = &whole[99]["id"];
    let rest = app
        .get_csv(&format!("/api/v1/links/amy-serum/clicks?after={after}"))
        .await
        .bytes()
        .await
        .unwrap();
    let rest = csv_rows(&rest);
    assert_eq!(rest.len(), clicks - 100);
    assert_eq!(rest[0]["id"], whole[100]["id"]);
    // With `limit`, a page, and a `Link` to the next one.
    let page = app.get_csv("/api/v1/links/amy-serum/clicks?limit=1000").await;
    let link = page.headers()["link"].to_str().unwrap().to_owned();
    let page = csv_rows(&page.bytes().await.unwrap());
    assert_eq!(page.len(), 1000);
    let next = format!(
        "</api/v1/links/amy-serum/clicks?after={}&limit=1000&format=csv>; rel=\"next\"",
        page[999]["id"]
    );
    assert_eq!(link, next);
    let target = link.trim_start_matches('<').split('>').next().unwrap();
    let last = app.get_csv(target).await;
    assert!(last.headers().get("link").is_none(), "the last page");
    assert_eq!(csv_rows(&last.bytes().await.unwrap()).len(), clicks - 1000);
}

per_store!(bad_export_parameters_are_invalid_input);
async fn bad_export_parameters_are_invalid_input(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    assert_error(
        app.get("/api/v1/links/amy-serum/clicks?after=nonsense").await,
        400,
        "invalid_input",
    )
    .await;
    assert_error(
        app.get("/api/v1/links/amy-serum/clicks?limit=0").await,
        400,
        "invalid_input",
    )
    .await;
    assert_error(app.get("/api/v1/links/nope/clicks").await, 404, "not_found").await;
    // A parameter the export does not take was ignored: the first page came back as if asked.
    assert_error(
        app.get("/api/v1/links/amy-serum/clicks?page=2").await,
        400,
        "invalid_input",
    )
    .await;
    let id = app.click_id("amy-serum").await;
    let other = app.click_id("amy-serum").await;
    assert_error(
        app.get(&format!("/api/v1/links/amy-serum/clicks?after={id}&cursor={other}"))
            .await,
        400,
        "invalid_input",
    )
    .await;
}

per_store!(exports_never_hand_a_spreadsheet_a_formula);
/// Text anyone can put in an export (a KOL's name, a tap's `?src=`, a shop's order id) that a
/// spreadsheet would run as a formula is written with a leading `'`; numbers, a
/// negative ROI among them, stay numbers, and the JSON API keeps the text as it was sent.
async fn exports_never_hand_a_spreadsheet_a_formula(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let name = r#"=HYPERLINK("http://x","a")"#;
    app.post_expect(
        "/api/v1/kols",
        &json!({"id": "eve", "name": name, "platform": "line", "followers": 10}),
        201,
    )
    .await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "eve", "code": "eve-1", "cost": "100", "coupon": "EVE"}))
        .await;
    let r = app
        .api
        .get(app.url("/eve-1?src=-1-1"))
        .header("user-agent", crate::helpers::PHONE)
        .header("referer", "http://=1+2/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let secret = app.create_shop("acme").await;
    app.webhook_ok(
        "acme",
        &secret,
        &json!({"order_id": "@SUM(1+1)", "event": "signup", "coupon": "EVE"}),
    )
    .await;

    let report = app
        .get_csv("/api/v1/campaigns/spring-sale/report.csv")
        .await
        .bytes()
        .await
        .unwrap();
    let eve = csv_rows(&report[3..]).into_iter().find(|r| r["kol"] == "eve").unwrap();
    assert_eq!(eve["name"], format!("'{name}"));
    assert_eq!(eve["roi"].parse::<f64>().unwrap(), -1.0, "{eve:?}");
    let clicks = app.get_csv("/api/v1/links/eve-1/clicks").await.bytes().await.unwrap();
    let click = &csv_rows(&clicks)[0];
    // A referrer's host is a name or an address, or nothing: `=1+2` is not kept at all.
    assert_eq!((click["source"].as_str(), click["referrer"].as_str()), ("'-1-1", ""));
    let conversions = app.get_csv("/api/v1/conversions").await.bytes().await.unwrap();
    assert_eq!(csv_rows(&conversions)[0]["order_id"], "'@SUM(1+1)");
    // The JSON is what was sent.
    assert_eq!(app.get_ok("/api/v1/kols/eve").await["name"], name);
    assert_eq!(app.get_ok("/api/v1/links/eve-1/stats").await["totals"]["clicks"], 1);
}

/// A CSV's rows as maps of column to cell.
fn csv_rows(csv: &[u8]) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(csv);
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .map(str::to_owned)
                .zip(r.unwrap().iter().map(str::to_owned))
                .collect()
        })
        .collect()
}
