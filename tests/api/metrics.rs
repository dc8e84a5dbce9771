//! Impressions and engagement: reported metrics per day and the pixel.

use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, start, Backend, PHONE};

per_store!(reporting_a_day_twice_replaces_it);
async fn reporting_a_day_twice_replaces_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let day = json!({"date": "2026-11-20", "impressions": 120000, "reach": 90000, "likes": 5300, "comments": 410, "shares": 220, "saves": 380});
    let r = app.post("/api/v1/links/amy-serum/metrics", &day).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (body["code"].as_str(), body["impressions"].as_u64()),
        (Some("amy-serum"), Some(120000))
    );
    assert_eq!(app.post("/api/v1/links/amy-serum/metrics", &day).await.status(), 200);
    let t = app.link_totals("amy-serum").await;
    assert_eq!(t["impressions"], 120000);
    assert_eq!(t["engagements"], 6310);
    let r = app
        .post(
            "/api/v1/links/amy-serum/metrics",
            &json!({"date": "2026-11-20", "impressions": 100000}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["impressions"].as_u64(), t["engagements"].as_u64()),
        (Some(100000), Some(0))
    );
    app.post(
        "/api/v1/links/amy-serum/metrics",
        &json!({"date": "2026-11-21", "impressions": 20000}),
    )
    .await;
    assert_eq!(app.link_totals("amy-serum").await["impressions"], 120000);
}

per_store!(bad_metrics_are_rejected);
async fn bad_metrics_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    for body in [
        json!({"impressions": 5}),
        json!({"date": "20-11-2026", "impressions": 5}),
        json!({"date": "2026-11-20", "impressions": -5}),
        json!({"date": "2026-11-20", "views": 5}),
        json!({"date": "2999-01-01", "impressions": 5}),
        // No number at all: the day's numbers would become zeros (an explicit 0 is taken).
        json!({"date": "2026-11-20"}),
    ] {
        assert_error(
            app.post("/api/v1/links/amy-serum/metrics", &body).await,
            400,
            "invalid_input",
        )
        .await;
    }
    assert!(app.get_ok("/api/v1/links/amy-serum/metrics").await["days"]
        .as_array()
        .unwrap()
        .is_empty());
    let zero = json!({"date": "2026-11-20", "impressions": 0});
    app.post_expect("/api/v1/links/amy-serum/metrics", &zero, 200).await;
    let r = app
        .post("/api/v1/links/nope/metrics", &json!({"date": "2026-11-20", "reach": 1}))
        .await;
    assert_error(r, 404, "not_found").await;
}

per_store!(one_visitor_reloading_the_pixel_counts_ten_a_minute_and_a_mail_proxys_address_six_hundred);
/// Anyone can load a pixel: one client reloading it 50 times gave 50 impressions, driving the
/// link's CTR down at will. A visitor's loads past ten a minute on a link now count nothing,
/// as clicks past ten are suspicious; a mail service's image proxy, which loads for every
/// reader of a newsletter from a few addresses, counts up to 600 a minute from one address.
async fn one_visitor_reloading_the_pixel_counts_ten_a_minute_and_a_mail_proxys_address_six_hundred(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let gmail = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
    for ua in std::iter::repeat_n(PHONE, 15).chain(std::iter::repeat_n(gmail, 15)) {
        let r = app.pixel_as("amy-serum", ua).await;
        assert_eq!(
            (r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()),
            (200, "image/gif")
        );
    }
    let t = app.link_totals("amy-serum").await;
    assert_eq!(t["pixel_impressions"], 10 + 15, "{t}");
    // Anyone can say they are a proxy (Apple Mail's says only "Mozilla/5.0"): an address that
    // does is held to 600 loads a minute on a link.
    let over = kolink::http::PROXY_LOADS_A_MINUTE + 5 - 15;
    for _ in 0..over {
        assert_eq!(app.pixel_as("amy-serum", "Mozilla/5.0").await.status(), 200);
    }
    let t = app.link_totals("amy-serum").await;
    assert_eq!(t["pixel_impressions"], 10 + 600, "{t}");
}

per_store!(the_pixel_is_a_gif_that_counts_impressions);
async fn the_pixel_is_a_gif_that_counts_impressions(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    // Two readers on phones, one who opened a newsletter in Gmail (its image proxy loads the
    // pixel), one in Apple Mail; then a crawler rendering the page, a preview fetcher and a tool, which get the
    // GIF but are nobody's impression.
    let gmail = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    // Apple Mail's privacy proxy says only "Mozilla/5.0".
    for ua in [
        PHONE,
        PHONE,
        gmail,
        "Mozilla/5.0",
        googlebot,
        "facebookexternalhit/1.1",
        "",
    ] {
        let r = app.pixel_as("amy-serum", ua).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/gif");
        assert!(r.bytes().await.unwrap().starts_with(b"GIF89a"));
    }
    // HEAD answers the GIF's headers and counts nothing.
    let head = app
        .api
        .head(app.url("/p/amy-serum.gif"))
        .header("user-agent", PHONE)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (head.status().as_u16(), &head.headers()["content-type"]),
        (200, &"image/gif".parse().unwrap())
    );
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["pixel_impressions"].as_u64(), t["impressions"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(
        app.api.head(app.url("/p/nope-nope.gif")).send().await.unwrap().status(),
        404
    );
    assert_error(
        app.api.get(app.url("/p/nope-nope.gif")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        app.api.get(app.url("/p/amy-serum.png")).send().await.unwrap().status(),
        404
    );
}

per_store!(the_pixel_checks_codes_before_looking_and_counts_only_live_links);
async fn the_pixel_checks_codes_before_looking_and_counts_only_live_links(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    // A 10 KB code: refused by its shape, not echoed, not looked up.
    let long = "a".repeat(10_000);
    let r = app.api.get(app.url(&format!("/p/{long}.gif"))).send().await.unwrap();
    let body = assert_error(r, 404, "not_found").await;
    assert!(body.to_string().len() < 300, "the code is not echoed: {body}");
    for junk in ["a.gif", "ab%20cd.gif", "..%2Fx.gif"] {
        let r = app.api.get(app.url(&format!("/p/{junk}"))).send().await.unwrap();
        assert_eq!(r.status(), 404, "{junk}");
    }
    // A disabled link keeps its GIF (the page must not break) but counts nothing.
    app.patch("/api/v1/links/amy-serum", &serde_json::json!({"status": "disabled"}))
        .await;
    let r = app.api.get(app.url("/p/amy-serum.gif")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.link_totals("amy-serum").await["pixel_impressions"], 0);
}

#[tokio::test]
async fn redis_metrics_reported_under_an_older_version_count_after_the_next_start() {
    let app = spawn_app(Backend::Redis).await;
    app.seed().await;
    app.post_expect(
        "/api/v1/links/amy-serum/metrics",
        &json!({"date": "2026-11-20", "impressions": 400}),
        200,
    )
    .await;
    let impressions = |c: &serde_json::Value| c["totals"]["impressions"].as_u64();
    let c = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    assert_eq!(impressions(&c), Some(400));

    // An older version kept a link's metrics only in their own hash (layout version 3): a day it
    // reported has no copy, and a day reported again through it has a stale one.
    let mut conn = app.redis.as_ref().unwrap().connection().await;
    let day =
        |n: u64| json!({"impressions": n, "reach": 0, "likes": 0, "comments": 0, "shares": 0, "saves": 0}).to_string();
    let _: () = conn
        .hset("kl:{amy-serum}:metrics", "2026-11-20", day(500))
        .await
        .unwrap();
    let _: () = conn
        .hset("kl:{amy-serum}:metrics", "2026-11-21", day(60))
        .await
        .unwrap();
    let _: () = conn.set("kl:{meta}:schema", 3).await.unwrap();
    let c = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    assert_eq!(impressions(&c), Some(400), "reports over every day read the copy");

    let (backing, settings) = app.stop().await;
    let app = start(backing, settings).await;
    let c = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    assert_eq!(impressions(&c), Some(560));
    let c = app
        .get_ok("/api/v1/campaigns/spring-sale/stats?from=2026-11-01&to=2026-11-30")
        .await;
    assert_eq!(impressions(&c), Some(560), "a range reads the metrics themselves");
    let schema: u64 = conn.get("kl:{meta}:schema").await.unwrap();
    assert_eq!(schema, 4);
}
