//! Every figure exact: what a black-box audit found wrong under races, odd orders, mixed
//! currencies and small counts. Each test ran red before its fix.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use kolink::clock::ManualClock;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with_clock, Backend, TestApp, PHONE, TOKEN};

fn purchase(order: &str, amount: &str, extra: Value) -> Value {
    let mut v = json!({"order_id": order, "event": "purchase", "amount": amount, "currency": "TWD"});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn refund(order: &str, refund_id: &str, amount: &str) -> Value {
    json!({"order_id": order, "refund_id": refund_id, "event": "refund", "amount": amount, "currency": "TWD"})
}

per_store!(racing_deliveries_of_one_order_are_attributed_exactly_once);
/// 40 orders, each delivered 5 times at once (200 deliveries in flight together).
async fn racing_deliveries_of_one_order_are_attributed_exactly_once(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    app.seed().await;
    let secret = Arc::new(app.create_shop("acme").await);
    let mut set = tokio::task::JoinSet::new();
    for order in 0..40 {
        for _ in 0..5 {
            let (app, secret) = (app.clone(), secret.clone());
            set.spawn(async move {
                let body = purchase(&format!("o{order}"), "100", json!({"coupon": "AMY10"}));
                let v = app.webhook_ok("acme", &secret, &body).await;
                (order, v["status"].as_str().unwrap().to_owned())
            });
        }
    }
    let mut attributed = [0; 40];
    while let Some(r) = set.join_next().await {
        let (order, status) = r.unwrap();
        match status.as_str() {
            "attributed" => attributed[order] += 1,
            "duplicate" => {}
            other => panic!("order {order}: {other}"),
        }
    }
    assert_eq!(attributed, [1; 40], "exactly one attributed answer per order");
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["conversions"].as_u64(), t["revenue"].as_str()),
        (Some(40), Some("4000.00"))
    );
}

per_store!(racing_patches_of_one_record_lose_no_change_and_orphan_no_coupon);
/// 200 pairs of PATCHes racing: different fields of one link, of one campaign, and coupon
/// changes of one link.
async fn racing_patches_of_one_record_lose_no_change_and_orphan_no_coupon(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    app.seed().await;
    app.create_kol("ben", 1).await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "ben", "code": "ben-1"}))
        .await;
    for i in 0..70 {
        let (a, b) = (app.clone(), app.clone());
        let (ba, bb) = (json!({"tags": [format!("t{i}")]}), json!({"cost": format!("{i}")}));
        let (x, y) = tokio::join!(
            a.patch("/api/v1/links/amy-serum", &ba),
            b.patch("/api/v1/links/amy-serum", &bb),
        );
        assert_eq!((x.status().as_u16(), y.status().as_u16()), (200, 200));
        let l = app.get_ok("/api/v1/links/amy-serum").await;
        assert_eq!(
            (l["tags"][0].as_str(), l["cost"].as_str()),
            (Some(&*format!("t{i}")), Some(&*format!("{i}.00")))
        );
    }
    for i in 0..70 {
        let (a, b) = (app.clone(), app.clone());
        let (ba, bb) = (
            json!({"name": format!("Name {i}")}),
            json!({"attribution_window_days": 1 + i % 30}),
        );
        let (x, y) = tokio::join!(
            a.patch("/api/v1/campaigns/spring-sale", &ba),
            b.patch("/api/v1/campaigns/spring-sale", &bb),
        );
        assert_eq!((x.status().as_u16(), y.status().as_u16()), (200, 200));
        let c = app.get_ok("/api/v1/campaigns/spring-sale").await;
        assert_eq!(c["name"], format!("Name {i}"));
        assert_eq!(c["attribution_window_days"], 1 + i % 30);
    }
    let secret = app.create_shop("acme").await;
    for i in 0..60 {
        let (a, b) = (app.clone(), app.clone());
        let (ca, cb) = (format!("A{i}"), format!("B{i}"));
        let (ba, bb) = (json!({"coupon": ca}), json!({"coupon": cb}));
        let (x, y) = tokio::join!(
            a.patch("/api/v1/links/amy-serum", &ba),
            b.patch("/api/v1/links/amy-serum", &bb),
        );
        assert_eq!((x.status().as_u16(), y.status().as_u16()), (200, 200));
        let kept = app.get_ok("/api/v1/links/amy-serum").await["coupon"]
            .as_str()
            .unwrap()
            .to_owned();
        let lost = if kept == ca { &cb } else { &ca };
        // The coupon that lost is free: another link may take it, and it attributes nothing here.
        let v = app
            .webhook_ok(
                "acme",
                &secret,
                &purchase(&format!("c{i}"), "1", json!({"coupon": lost})),
            )
            .await;
        assert_eq!(
            v["status"], "unattributed",
            "pair {i}: {lost} still points at amy-serum"
        );
        let r = app.patch("/api/v1/links/ben-1", &json!({"coupon": lost})).await;
        assert_eq!(r.status(), 200, "pair {i}: {lost} is still reserved");
    }
}

per_store!(a_kols_totals_never_add_two_currencies);
async fn a_kols_totals_never_add_two_currencies(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.post_expect(
        "/api/v1/campaigns",
        &json!({"id": "us", "name": "US", "destination": "https://shop.example.com/us", "currency": "USD"}),
        201,
    )
    .await;
    app.create_link(json!({"campaign": "us", "kol": "amy", "code": "amy-us", "cost": "100", "coupon": "AMYUS"}))
        .await;
    let secret = app.create_shop("acme").await;
    app.webhook_ok("acme", &secret, &purchase("1", "1000", json!({"coupon": "AMY10"})))
        .await;
    let mut usd = purchase("2", "30", json!({"coupon": "AMYUS"}));
    usd["currency"] = json!("USD");
    assert_eq!(app.webhook_ok("acme", &secret, &usd).await["status"], "attributed");

    let s = app.get_ok("/api/v1/kols/amy/stats").await;
    for money in [
        "revenue",
        "cost",
        "net_revenue",
        "roi",
        "roas",
        "aov",
        "epc",
        "cpc",
        "cpa",
    ] {
        assert_eq!(
            s["totals"][money],
            json!(null),
            "{money} of mixed currencies: {}",
            s["totals"]
        );
    }
    assert_eq!(s["totals"]["conversions"], 2, "counts still add up");
    assert_eq!(s["totals_by_currency"]["TWD"]["revenue"], "1000.00");
    assert_eq!(s["totals_by_currency"]["TWD"]["cost"], "5000.00");
    assert_eq!(s["totals_by_currency"]["USD"]["revenue"], "30.00");
    assert_eq!(s["totals_by_currency"]["USD"]["roi"], json!(-0.7));
    // Each campaign's row names the currency of its money (it gave "30.00" with no currency).
    let rows = s["campaigns"].as_array().unwrap();
    let of = |revenue: &str| {
        rows.iter()
            .find(|r| r["revenue"] == revenue)
            .map(|r| r["currency"].clone())
    };
    assert_eq!(
        (of("1000.00"), of("30.00")),
        (Some(json!("TWD")), Some(json!("USD"))),
        "{s}"
    );
}

per_store!(a_campaigns_currency_is_locked_once_it_has_a_conversion);
async fn a_campaigns_currency_is_locked_once_it_has_a_conversion(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let r = app
        .patch("/api/v1/campaigns/spring-sale", &json!({"currency": "USD"}))
        .await;
    assert_eq!(r.status(), 200, "no conversion yet: the currency may change");
    let r = app
        .patch("/api/v1/campaigns/spring-sale", &json!({"currency": "TWD"}))
        .await;
    assert_eq!(r.status(), 200);
    let secret = app.create_shop("acme").await;
    app.webhook_ok("acme", &secret, &purchase("1", "10", json!({"coupon": "AMY10"})))
        .await;
    let r = app
        .patch("/api/v1/campaigns/spring-sale", &json!({"currency": "USD"}))
        .await;
    assert_error(r, 409, "currency_locked").await;
    let r = app
        .patch(
            "/api/v1/campaigns/spring-sale",
            &json!({"name": "Renamed", "currency": "TWD"}),
        )
        .await;
    assert_eq!(r.status(), 200, "the same currency is no change");
}

per_store!(a_conversion_that_is_not_counted_leaves_the_currency_free_to_be_corrected);
async fn a_conversion_that_is_not_counted_leaves_the_currency_free_to_be_corrected(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    // The campaign was made in TWD by mistake: the shop sells in USD.
    let secret = app.create_shop("acme").await;
    let first = app
        .webhook_ok(
            "acme",
            &secret,
            &purchase("1", "30", json!({"currency": "USD", "coupon": "AMY10"})),
        )
        .await;
    assert_eq!(first["status"], "currency_mismatch");
    let campaign = app.get_ok("/api/v1/campaigns/spring-sale").await;
    assert_eq!(campaign["currency_locked"], false, "nothing was counted in TWD");
    let r = app
        .patch("/api/v1/campaigns/spring-sale", &json!({"currency": "USD"}))
        .await;
    assert_eq!(r.status(), 200, "the mistake can be corrected");
    // The next order counts, in the corrected currency, and locks it.
    let second = app
        .webhook_ok(
            "acme",
            &secret,
            &purchase("2", "30", json!({"currency": "USD", "coupon": "AMY10"})),
        )
        .await;
    assert_eq!(second["status"], "attributed");
    let r = app
        .patch("/api/v1/campaigns/spring-sale", &json!({"currency": "TWD"}))
        .await;
    let body = assert_error(r, 409, "currency_locked").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("USD"), "{body}");
    let s = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    assert_eq!(
        (s["totals"]["conversions"].as_u64(), s["totals"]["revenue"].as_str()),
        (Some(1), Some("30.00"))
    );
}

per_store!(unique_clicks_are_exact_at_small_counts);
async fn unique_clicks_are_exact_at_small_counts(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    for i in 0..300 {
        app.tap_as("amy-serum", &format!("{PHONE} v{i}")).await;
        if i % 3 == 0 {
            app.tap_as("amy-serum", &format!("{PHONE} v{i}")).await;
        }
    }
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["clicks"].as_u64(), t["unique_clicks"].as_u64()),
        (Some(400), Some(300))
    );
    let c = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    assert_eq!(c["kols"][0]["unique_clicks"], 300);
    assert_eq!(c["tiers"][0]["unique_clicks"], 300);
}

per_store!(refunds_past_the_purchase_are_over_refunds_and_not_counted);
async fn refunds_past_the_purchase_are_over_refunds_and_not_counted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    app.webhook_ok("acme", &secret, &purchase("1", "1000", json!({"coupon": "AMY10"})))
        .await;
    assert_eq!(
        app.webhook_ok("acme", &secret, &refund("1", "r1", "600")).await["status"],
        "attributed"
    );
    assert_eq!(
        app.webhook_ok("acme", &secret, &refund("1", "r2", "500")).await["status"],
        "over_refund"
    );
    assert_eq!(
        app.webhook_ok("acme", &secret, &refund("1", "r3", "400")).await["status"],
        "attributed"
    );
    assert_eq!(
        app.webhook_ok("acme", &secret, &refund("1", "r4", "0.01")).await["status"],
        "over_refund"
    );
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["refunds"].as_str(), t["net_revenue"].as_str()),
        (Some("1000.00"), Some("0.00"))
    );
    let listed = app.get_ok("/api/v1/conversions?status=over_refund").await;
    assert_eq!(listed["conversions"].as_array().unwrap().len(), 2);
}

per_store!(a_refund_before_its_purchase_waits_and_applies_when_the_purchase_comes);
async fn a_refund_before_its_purchase_waits_and_applies_when_the_purchase_comes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    assert_eq!(
        app.webhook_ok("acme", &secret, &refund("9", "r1", "300")).await["status"],
        "pending"
    );
    assert_eq!(app.link_totals("amy-serum").await["refunds"], "0.00");
    app.webhook_ok("acme", &secret, &purchase("9", "1000", json!({"coupon": "AMY10"})))
        .await;
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["revenue"].as_str(), t["refunds"].as_str()),
        (Some("1000.00"), Some("300.00"))
    );
    let listed = app.get_ok("/api/v1/conversions?status=pending").await;
    assert_eq!(listed["conversions"], json!([]), "nothing is left pending");
    let r = app.webhook_ok("acme", &secret, &refund("9", "r1", "300")).await;
    assert_eq!(r["status"], "duplicate");
    assert_eq!(app.link_totals("amy-serum").await["refunds"], "300.00");
}

per_store!(a_purchase_dated_before_its_click_is_not_the_clicks);
async fn a_purchase_dated_before_its_click_is_not_the_clicks(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let cid = app.click_id("amy-serum").await;
    let before = (Utc::now() - TimeDelta::hours(1)).to_rfc3339();
    let v = app
        .webhook_ok(
            "acme",
            &secret,
            &purchase("1", "10", json!({"click_id": cid, "occurred_at": before})),
        )
        .await;
    assert_eq!(v["status"], "unattributed");
    let v = app
        .webhook_ok(
            "acme",
            &secret,
            &purchase(
                "2",
                "10",
                json!({"click_id": cid, "coupon": "AMY10", "occurred_at": before}),
            ),
        )
        .await;
    assert_eq!(
        (v["status"].as_str(), v["method"].as_str()),
        (Some("attributed"), Some("coupon"))
    );
}

per_store!(link_stats_without_a_range_cover_every_day_and_say_so);
async fn link_stats_without_a_range_cover_every_day_and_say_so(backend: Backend) {
    let now: DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
    let clock = ManualClock::at(now);
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    app.post_expect(
        "/api/v1/links/amy-serum/metrics",
        &json!({"date": "2026-11-15", "impressions": 1000}),
        200,
    )
    .await;
    // A purchase the shop dates before the link existed (a coupon shared early), signed at the
    // app's time.
    let body = purchase(
        "1",
        "50",
        json!({"coupon": "AMY10", "occurred_at": "2026-11-17T09:00:00Z"}),
    );
    let raw = serde_json::to_vec(&body).unwrap();
    let r = app.signed_webhook("acme", &secret, &raw, now.timestamp()).await;
    assert_eq!(r.status(), 200);
    app.tap("amy-serum").await;
    clock.advance(TimeDelta::days(2));
    app.tap("amy-serum").await;
    let s = app.get_ok("/api/v1/links/amy-serum/stats").await;
    assert_eq!((s["from"].clone(), s["to"].clone()), (json!(null), json!(null)));
    let series = s["series"].as_array().unwrap();
    let sum = |k: &str| series.iter().map(|p| p[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("clicks"), s["totals"]["clicks"].as_u64().unwrap());
    assert_eq!(sum("conversions"), s["totals"]["conversions"].as_u64().unwrap());
    assert_eq!(series[0]["t"], "2026-11-15T00:00:00Z", "from the first day with data");
    assert_eq!(series.last().unwrap()["t"], "2026-11-22T00:00:00Z", "to today");
}

per_store!(counts_saturate_instead_of_wrapping);
async fn counts_saturate_instead_of_wrapping(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let big = u64::MAX - 1;
    for date in ["2026-11-01", "2026-11-02"] {
        app.post_expect(
            "/api/v1/links/amy-serum/metrics",
            &json!({"date": date, "impressions": big, "likes": big}),
            200,
        )
        .await;
    }
    let t = app.link_totals("amy-serum").await;
    assert_eq!(t["impressions"], json!(u64::MAX));
    assert_eq!(t["engagements"], json!(u64::MAX));
    let c = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    assert_eq!(c["totals"]["impressions"], json!(u64::MAX));
}

per_store!(aov_is_revenue_per_purchase_whatever_the_goal);
async fn aov_is_revenue_per_purchase_whatever_the_goal(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.patch("/api/v1/campaigns/spring-sale", &json!({"goal_event": "signup"}))
        .await;
    let secret = app.create_shop("acme").await;
    for i in 0..4 {
        let signup = json!({"order_id": format!("s{i}"), "event": "signup", "coupon": "AMY10"});
        app.webhook_ok("acme", &secret, &signup).await;
    }
    app.webhook_ok("acme", &secret, &purchase("p1", "300", json!({"coupon": "AMY10"})))
        .await;
    let t = app.link_totals("amy-serum").await;
    assert_eq!(t["conversions"], 4);
    assert_eq!(t["aov"], "300.00", "one purchase of 300, not 300 / 4 signups");
}

per_store!(contract_details_hold);
async fn contract_details_hold(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    // Every error is API.md's JSON, 405 included, on every path.
    for r in [
        app.api.post(app.url("/amy-serum")).send().await.unwrap(),
        app.api.post(app.url("/healthz")).send().await.unwrap(),
        app.api.delete(app.url("/p/amy-serum.gif")).send().await.unwrap(),
    ] {
        assert_error(r, 405, "method_not_allowed").await;
    }
    // The auth scheme is case-insensitive.
    let r = app
        .api
        .get(app.url("/api/v1/campaigns"))
        .header("authorization", format!("BEARER {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Times past year 9999 cannot be written in RFC 3339.
    let r = app
        .patch(
            "/api/v1/links/amy-serum",
            &json!({"expires_at": "+10000-01-01T00:00:00Z"}),
        )
        .await;
    assert_error(r, 400, "invalid_input").await;
    // Coupons fold case in every alphabet (straße is STRASSE), and accents are letters of
    // their own: ETE10 and ÉTÉ10 are two coupons.
    app.create_kol("ben", 1).await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "ben", "coupon": "straße"}))
        .await;
    let r = app
        .post(
            "/api/v1/links",
            &json!({"campaign": "spring-sale", "kol": "ben", "coupon": "STRASSE"}),
        )
        .await;
    assert_error(r, 409, "coupon_taken").await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "ben", "coupon": "ETE10"}))
        .await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "ben", "coupon": "ÉTÉ10"}))
        .await;
    let r = app
        .post(
            "/api/v1/links",
            &json!({"campaign": "spring-sale", "kol": "ben", "coupon": "amy10"}),
        )
        .await;
    assert_error(r, 409, "coupon_taken").await;
    // Bulk minting names the entry whose coupon is taken, with a 400.
    let r = app
        .post(
            "/api/v1/campaigns/spring-sale/links",
            &json!({"kols": [{"kol": "ben", "coupon": "FRESH1"}, {"kol": "ben", "coupon": "Amy10"}]}),
        )
        .await;
    let body = assert_error(r, 400, "invalid_input").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("kols[1]"), "{body}");
}

per_store!(a_webhook_timestamp_is_signed_as_sent);
/// Standard Webhooks signs the header's text: a sender that writes `+1700000000` or a leading
/// zero signed that text, not the number.
async fn a_webhook_timestamp_is_signed_as_sent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let raw = serde_json::to_vec(&purchase("1", "10", json!({"coupon": "AMY10"}))).unwrap();
    let text = format!("0{}", Utc::now().timestamp());
    let r = post_signed(&app, &secret, &raw, &text, &text).await;
    assert_eq!(r.status(), 200);
    // Signed over the number but sent with a leading zero: the text differs, refused.
    let number = text.trim_start_matches('0').to_owned();
    let raw = serde_json::to_vec(&purchase("2", "10", json!({"coupon": "AMY10"}))).unwrap();
    assert_error(
        post_signed(&app, &secret, &raw, &number, &text).await,
        401,
        "invalid_signature",
    )
    .await;
}

async fn post_signed(app: &TestApp, secret: &str, raw: &[u8], signed: &str, sent: &str) -> reqwest::Response {
    let key = kolink::signature::WebhookSecret::parse(secret).unwrap();
    let sig = key.sign("msg_1", signed, raw);
    app.api
        .post(app.url("/webhooks/conversions/acme"))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", sent)
        .header("webhook-signature", sig)
        .body(raw.to_vec())
        .send()
        .await
        .unwrap()
}
