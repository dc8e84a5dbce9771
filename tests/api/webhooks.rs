//! Conversion webhooks (Standard Webhooks signatures) and attribution.

use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with_clock, Backend};
use kolink::clock::ManualClock;

fn purchase(order: &str, extra: Value) -> Value {
    let mut v = json!({"order_id": order, "event": "purchase", "amount": "1280.00", "currency": "TWD"});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

per_store!(a_generic_shop_gets_a_secret_once_and_a_webhook_url);
async fn a_generic_shop_gets_a_secret_once_and_a_webhook_url(backend: Backend) {
    let app = spawn_app(backend).await;
    let v = app
        .post_expect(
            "/api/v1/shops",
            &json!({"id": "acme", "name": "Acme Store", "platform": "generic"}),
            201,
        )
        .await;
    let secret = v["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(v["webhook_url"], app.url("/webhooks/conversions/acme"));
    let again = app.get_ok("/api/v1/shops/acme").await;
    assert_eq!(again["secret"], json!(null));
    let r = app
        .post(
            "/api/v1/shops",
            &json!({"id": "shopi", "name": "S", "platform": "shopify"}),
        )
        .await;
    assert_error(r, 400, "invalid_input").await;
    let r = app
        .post(
            "/api/v1/shops",
            &json!({"id": "acme", "name": "Again", "platform": "generic"}),
        )
        .await;
    assert_error(r, 409, "already_exists").await;
}

per_store!(a_purchase_with_a_click_id_is_attributed_to_that_click);
async fn a_purchase_with_a_click_id_is_attributed_to_that_click(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let cid = app.click_id("amy-serum").await;
    let v = app
        .webhook_ok("acme", &secret, &purchase("1001", json!({"click_id": cid})))
        .await;
    assert_eq!(v["status"], "attributed");
    assert_eq!(v["method"], "click_id");
    assert_eq!(
        (v["link"].as_str(), v["kol"].as_str(), v["campaign"].as_str()),
        (Some("amy-serum"), Some("amy"), Some("spring-sale"))
    );
    assert!(v["conversion_id"].as_str().is_some_and(|s| !s.is_empty()));
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["conversions"].as_u64(), t["revenue"].as_str()),
        (Some(1), Some("1280.00"))
    );
    assert_eq!(t["conversion_rate"], 1.0);
}

per_store!(coupon_then_code_attribute_when_there_is_no_click);
async fn coupon_then_code_attribute_when_there_is_no_click(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let v = app
        .webhook_ok(
            "acme",
            &secret,
            &purchase("1", json!({"coupon": "amy10", "click_id": "1-2-3"})),
        )
        .await;
    assert_eq!(
        (v["status"].as_str(), v["method"].as_str()),
        (Some("attributed"), Some("coupon"))
    );
    let v = app
        .webhook_ok(
            "acme",
            &secret,
            &purchase("2", json!({"code": "amy-serum", "coupon": "NOPE"})),
        )
        .await;
    assert_eq!(
        (v["status"].as_str(), v["method"].as_str()),
        (Some("attributed"), Some("code"))
    );
    let v = app
        .webhook_ok(
            "acme",
            &secret,
            &json!({"order_id": 3, "event": "signup", "code": "amy-serum"}),
        )
        .await;
    assert_eq!(v["status"], "attributed");
    let t = app.link_totals("amy-serum").await;
    assert_eq!(t["conversions"], 2, "signups are not the goal event");
    assert_eq!(t["events"], json!({"purchase": 2, "signup": 1}));
}

per_store!(a_conversion_nobody_can_place_is_stored_unattributed);
async fn a_conversion_nobody_can_place_is_stored_unattributed(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let v = app
        .webhook_ok("acme", &secret, &purchase("9", json!({"coupon": "UNKNOWN"})))
        .await;
    assert_eq!(v["status"], "unattributed");
    assert_eq!(v["link"], json!(null));
    let list = app.get_ok("/api/v1/conversions?status=unattributed").await;
    let c = &list["conversions"][0];
    assert_eq!(
        (c["order_id"].as_str(), c["shop"].as_str(), c["amount"].as_str()),
        (Some("9"), Some("acme"), Some("1280.00"))
    );
    assert_eq!(app.link_totals("amy-serum").await["conversions"], 0);
}

per_store!(the_same_webhook_twice_is_a_duplicate_that_changes_nothing);
async fn the_same_webhook_twice_is_a_duplicate_that_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let body = purchase("1001", json!({"coupon": "AMY10"}));
    let first = app.webhook_ok("acme", &secret, &body).await;
    let second = app.webhook_ok("acme", &secret, &body).await;
    assert_eq!(second["status"], "duplicate");
    assert_eq!(second["conversion_id"], first["conversion_id"]);
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["conversions"].as_u64(), t["revenue"].as_str()),
        (Some(1), Some("1280.00"))
    );
    assert_eq!(
        app.get_ok("/api/v1/conversions").await["conversions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

per_store!(a_refund_lowers_net_revenue_and_follows_its_purchase);
async fn a_refund_lowers_net_revenue_and_follows_its_purchase(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    app.webhook_ok(
        "acme",
        &secret,
        &purchase("1001", json!({"coupon": "AMY10", "amount": "2000.00"})),
    )
    .await;
    let refund = json!({"order_id": "1001", "event": "refund", "amount": "500", "currency": "TWD", "refund_id": "r1"});
    let v = app.webhook_ok("acme", &secret, &refund).await;
    assert_eq!(
        (v["status"].as_str(), v["method"].as_str(), v["link"].as_str()),
        (Some("attributed"), Some("order_id"), Some("amy-serum"))
    );
    assert_eq!(app.webhook_ok("acme", &secret, &refund).await["status"], "duplicate");
    let second = json!({"order_id": "1001", "event": "refund", "amount": "300", "currency": "TWD", "refund_id": "r2"});
    assert_eq!(app.webhook_ok("acme", &secret, &second).await["status"], "attributed");
    let t = app.link_totals("amy-serum").await;
    assert_eq!(t["revenue"], "2000.00");
    assert_eq!(t["refunds"], "800.00");
    assert_eq!(t["net_revenue"], "1200.00");
    // roi = (1200 - 5000) / 5000
    assert_eq!(t["roi"], -0.76);
    // A refund of an order not seen yet waits for its purchase; a purchase that arrives
    // unattributed leaves it unattributed.
    let unknown = json!({"order_id": "777", "event": "refund", "amount": "10", "currency": "TWD"});
    assert_eq!(app.webhook_ok("acme", &secret, &unknown).await["status"], "pending");
    app.webhook_ok("acme", &secret, &purchase("777", json!({}))).await;
    let listed = app.get_ok("/api/v1/conversions?status=unattributed").await;
    let refunds: Vec<&Value> = listed["conversions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["event"] == "refund")
        .collect();
    assert_eq!(refunds.len(), 1, "{listed}");
    assert_eq!(app.link_totals("amy-serum").await["refunds"], "800.00");
}

per_store!(another_currency_is_stored_as_a_mismatch_and_not_summed);
async fn another_currency_is_stored_as_a_mismatch_and_not_summed(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let v = app
        .webhook_ok(
            "acme",
            &secret,
            &purchase("5", json!({"coupon": "AMY10", "currency": "USD"})),
        )
        .await;
    assert_eq!(v["status"], "currency_mismatch");
    assert_eq!(app.link_totals("amy-serum").await["revenue"], "0.00");
    // Its refund is not counted either, and says why, on the same link: it was stored
    // `unattributed`, as if kolink had never seen the order.
    let refund = json!({"order_id": "5", "event": "refund", "amount": "10", "currency": "USD", "refund_id": "r1"});
    let v = app.webhook_ok("acme", &secret, &refund).await;
    assert_eq!(
        (v["status"].as_str(), v["link"].as_str()),
        (Some("currency_mismatch"), Some("amy-serum"))
    );
    assert_eq!(app.link_totals("amy-serum").await["refunds"], "0.00");
    assert_eq!(
        app.get_ok("/api/v1/conversions?status=currency_mismatch").await["conversions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

per_store!(a_click_older_than_the_window_is_outside_window);
/// A click 40 days before the purchase, in a campaign with a 30-day window: the app's clock is
/// set back for the tap, then forward for the purchase.
async fn a_click_older_than_the_window_is_outside_window(backend: Backend) {
    let now = chrono::Utc::now();
    let clock = ManualClock::at(now - chrono::TimeDelta::days(40));
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let old = app.click_id("amy-serum").await;
    clock.set(now - chrono::TimeDelta::days(29));
    let recent = app.click_id("amy-serum").await;
    clock.set(now);

    let v = app
        .webhook_ok("acme", &secret, &purchase("1", json!({"click_id": old})))
        .await;
    assert_eq!(
        (v["status"].as_str(), v["link"].as_str()),
        (Some("outside_window"), Some("amy-serum"))
    );
    let v = app
        .webhook_ok("acme", &secret, &purchase("2", json!({"click_id": recent})))
        .await;
    assert_eq!(v["status"], "attributed", "29 days is inside the window");
    assert_eq!(app.link_totals("amy-serum").await["conversions"], 1);
    // A refund of the purchase outside the window is outside it too, on the same link, and
    // not counted.
    let refund = json!({"order_id": "1", "event": "refund", "amount": "100", "currency": "TWD", "refund_id": "r1"});
    let v = app.webhook_ok("acme", &secret, &refund).await;
    assert_eq!(
        (v["status"].as_str(), v["link"].as_str()),
        (Some("outside_window"), Some("amy-serum"))
    );
    assert_eq!(app.link_totals("amy-serum").await["refunds"], "0.00");
}

per_store!(bad_signatures_are_unauthorized_and_store_nothing);
async fn bad_signatures_are_unauthorized_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let raw = serde_json::to_vec(&purchase("1", json!({"coupon": "AMY10"}))).unwrap();
    let now = chrono::Utc::now().timestamp();
    let other = kolink::signature::WebhookSecret::generate();
    assert_error(
        app.signed_webhook("acme", &other, &raw, now).await,
        401,
        "invalid_signature",
    )
    .await;
    assert_error(
        app.signed_webhook("acme", &secret, &raw, now - 301).await,
        401,
        "invalid_signature",
    )
    .await;
    // Read the clock again: on a loaded machine the requests above can take seconds, and
    // `now + 301` would then be less than 5 minutes ahead when it arrives.
    let ahead = chrono::Utc::now().timestamp() + 305;
    assert_error(
        app.signed_webhook("acme", &secret, &raw, ahead).await,
        401,
        "invalid_signature",
    )
    .await;
    let r = app
        .api
        .post(app.url("/webhooks/conversions/acme"))
        .header("content-type", "application/json")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "invalid_signature").await;
    assert_eq!(app.get_ok("/api/v1/conversions").await["conversions"], json!([]));
    // The real signature still works afterwards.
    assert_eq!(app.signed_webhook("acme", &secret, &raw, now).await.status(), 200);
}

per_store!(malformed_conversions_are_bad_requests);
async fn malformed_conversions_are_bad_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let now = chrono::Utc::now().timestamp();
    let r = app.signed_webhook("acme", &secret, b"{not json", now).await;
    assert_error(r, 400, "invalid_json").await;
    for body in [
        json!({"event": "purchase", "amount": "1", "currency": "TWD"}),
        json!({"order_id": "1", "event": "purchase"}),
        json!({"order_id": "1", "event": "purchase", "amount": "1.234", "currency": "TWD"}),
        json!({"order_id": "1", "event": "buy"}),
        json!({"order_id": "1", "event": "signup", "occurred_at": "yesterday"}),
        json!({"order_id": "", "event": "signup"}),
        json!({"order_id": "1", "event": "refund", "amount": "0", "currency": "TWD"}),
        json!({"order_id": "1", "event": "signup", "occurred_at": "2999-01-01T00:00:00Z"}),
        json!({"order_id": "1", "event": "purchase", "amount": "1", "currency": "NTD$"}),
        json!({"order_id": {"id": 1}, "event": "signup"}),
        json!({"order_id": "1", "event": "signup", "click_id": "x".repeat(200)}),
        json!(["not", "an", "object"]),
    ] {
        let r = app.webhook("acme", &secret, &body).await;
        assert_error(r, 400, "invalid_input").await;
    }
    assert_eq!(app.get_ok("/api/v1/conversions").await["conversions"], json!([]));
}

per_store!(a_signed_body_that_is_not_json_is_an_unsupported_media_type);
async fn a_signed_body_that_is_not_json_is_an_unsupported_media_type(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = app.create_shop("acme").await;
    let raw = b"order_id=1&event=signup";
    let ts = chrono::Utc::now().timestamp();
    let r = app
        .signed_webhook_as("acme", &secret, raw, ts, "application/x-www-form-urlencoded")
        .await;
    assert_error(r, 415, "unsupported_media_type").await;
}

per_store!(an_unknown_shop_is_not_found);
async fn an_unknown_shop_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = kolink::signature::WebhookSecret::generate();
    let r = app.webhook("nobody", &secret, &purchase("1", json!({}))).await;
    assert_error(r, 404, "not_found").await;
}

per_store!(conversions_list_newest_first_filtered_by_campaign);
async fn conversions_list_newest_first_filtered_by_campaign(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    for order in ["1", "2", "3"] {
        app.webhook_ok("acme", &secret, &purchase(order, json!({"coupon": "AMY10"})))
            .await;
    }
    app.webhook_ok("acme", &secret, &purchase("4", json!({}))).await;
    let page = app.get_ok("/api/v1/conversions?campaign=spring-sale&limit=2").await;
    let orders: Vec<&str> = page["conversions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(orders, ["3", "2"]);
    let c = &page["conversions"][0];
    for field in [
        "id",
        "shop",
        "order_id",
        "event",
        "amount",
        "currency",
        "status",
        "method",
        "link",
        "kol",
        "campaign",
        "occurred_at",
        "received_at",
    ] {
        assert!(!c[field].is_null(), "{field} in {c}");
    }
    let next = page["next_cursor"].as_str().unwrap();
    let page = app
        .get_ok(&format!(
            "/api/v1/conversions?campaign=spring-sale&limit=2&cursor={next}"
        ))
        .await;
    assert_eq!(page["conversions"][0]["order_id"], "1");
    assert_eq!(page["conversions"].as_array().unwrap().len(), 1);
    assert_error(app.get("/api/v1/conversions?status=maybe").await, 400, "invalid_input").await;
}

per_store!(a_generic_test_order_is_stored_as_test_and_never_counted);
/// API.md: an order with `"test": true` is stored as `test` and never counted, from a shop's
/// own backend as from Shopify; its refund takes nothing either, and a real order after it
/// counts.
async fn a_generic_test_order_is_stored_as_test_and_never_counted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let v = app
        .webhook_ok(
            "acme",
            &secret,
            &purchase("T-1", json!({"coupon": "AMY10", "test": true})),
        )
        .await;
    assert_eq!(
        (v["status"].as_str(), v["link"].as_str()),
        (Some("test"), Some("amy-serum"))
    );
    let refund = json!({"order_id": "T-1", "event": "refund", "amount": "100", "currency": "TWD", "test": true});
    assert_eq!(app.webhook_ok("acme", &secret, &refund).await["status"], "test");
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["conversions"].as_u64(), t["revenue"].as_str(), t["refunds"].as_str()),
        (Some(0), Some("0.00"), Some("0.00"))
    );
    assert_eq!(
        app.get_ok("/api/v1/conversions?status=test").await["conversions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        app.get_ok("/api/v1/campaigns/spring-sale").await["currency_locked"],
        false
    );
    // `"test": false`, or null, or none, is a real order; the flag's other common forms read
    // as they say.
    for (order, flag) in [("R-1", json!(false)), ("R-2", json!(null)), ("R-3", json!("false"))] {
        let v = app
            .webhook_ok(
                "acme",
                &secret,
                &purchase(order, json!({"coupon": "AMY10", "test": flag})),
            )
            .await;
        assert_eq!(v["status"], "attributed", "{flag}");
    }
    assert_eq!(app.link_totals("amy-serum").await["revenue"], "3840.00");
    for (order, flag) in [("T-3", json!("TRUE")), ("T-4", json!(1))] {
        let v = app
            .webhook_ok(
                "acme",
                &secret,
                &purchase(order, json!({"coupon": "AMY10", "test": flag})),
            )
            .await;
        assert_eq!(v["status"], "test", "{flag}");
    }
    // Anything else is refused, naming the field.
    let r = app
        .webhook("acme", &secret, &purchase("T-2", json!({"test": "yes"})))
        .await;
    let body = assert_error(r, 400, "invalid_input").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("test: "), "{body}");
}

per_store!(conversions_are_listed_by_kol_and_by_day);
/// An analyst paying KOLs per sale lists one KOL's conversions, over the days of a period (UTC
/// days of `occurred_at`, both ends included); a filter kolink does not know is refused rather
/// than ignored, which would hand back every KOL's orders.
async fn conversions_are_listed_by_kol_and_by_day(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.create_kol("ben", 900).await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "ben", "code": "ben-1", "coupon": "BEN5"}))
        .await;
    let secret = app.create_shop("acme").await;
    for (order, coupon, day) in [
        ("a1", "AMY10", "2026-11-20T23:59:59Z"),
        ("a2", "AMY10", "2026-11-21T00:00:00Z"),
        ("b1", "BEN5", "2026-11-21T12:00:00Z"),
        ("a3", "AMY10", "2026-11-23T08:00:00Z"),
    ] {
        let body = json!({"order_id": order, "event": "purchase", "amount": "100", "currency": "TWD",
                          "coupon": coupon, "occurred_at": day});
        app.webhook_ok("acme", &secret, &body).await;
    }
    let orders = |v: Value| -> Vec<String> {
        v["conversions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["order_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        orders(app.get_ok("/api/v1/conversions?kol=amy").await),
        ["a3", "a2", "a1"]
    );
    assert_eq!(orders(app.get_ok("/api/v1/conversions?kol=ben").await), ["b1"]);
    assert_eq!(
        orders(app.get_ok("/api/v1/conversions?from=2026-11-21&to=2026-11-22").await),
        ["b1", "a2"]
    );
    assert_eq!(
        orders(
            app.get_ok("/api/v1/conversions?campaign=spring-sale&kol=amy&from=2026-11-21")
                .await
        ),
        ["a3", "a2"]
    );
    assert_eq!(
        orders(app.get_ok("/api/v1/conversions?kol=amy&to=2026-11-20").await),
        ["a1"]
    );
    // Pages of a filtered list go on with the same filters.
    let first = app.get_ok("/api/v1/conversions?kol=amy&limit=2").await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = app
        .get_ok(&format!("/api/v1/conversions?kol=amy&limit=2&cursor={cursor}"))
        .await;
    assert_eq!(orders(second), ["a1"]);
    for bad in [
        "from=2026-11-31",
        "to=21-11-2026",
        "from=2026-11-22&to=2026-11-21",
        "kols=amy",
        "since=2026-11-21",
    ] {
        let r = app.get(&format!("/api/v1/conversions?{bad}")).await;
        assert_error(r, 400, "invalid_input").await;
    }
}

per_store!(a_conversion_stored_but_not_counted_when_its_process_stopped_is_counted_at_the_next_start);
/// A process killed between storing a conversion and counting it (a fault audit found one in
/// 1,160 under a kill loop) left it listed as attributed and out of the figures until the shop
/// delivered it again; a shop that did not left them apart for good. A start now finishes the
/// conversions of the last day that a stop cut short.
async fn a_conversion_stored_but_not_counted_when_its_process_stopped_is_counted_at_the_next_start(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    app.webhook_ok("acme", &secret, &purchase("1", json!({"coupon": "AMY10"})))
        .await;
    let (backing, settings) = app.stop().await;
    {
        // The second order, stored as the intake stores it and cut short before its count.
        let store = backing
            .open_store(std::sync::Arc::new(kolink::clock::SystemClock))
            .await;
        let key = kolink::domain::Conversion::key_of("acme", kolink::domain::Event::Purchase, "1");
        let first = store.find_conversion(&key).await.unwrap().expect("the first order");
        let mut cut = first.clone();
        cut.id = "cv_cut_short_before_its_count".into();
        cut.order_id = "2".into();
        // Older than a minute: a younger one may be another process's delivery, counting now.
        cut.received_at = chrono::Utc::now() - chrono::TimeDelta::minutes(2);
        store.save_conversion(&cut).await.unwrap();
        store.close().await;
    }
    let app = crate::helpers::start(backing, settings).await;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let t = app.link_totals("amy-serum").await;
        if t["conversions"] == 2 {
            assert_eq!(t["revenue"], "2560.00", "{t}");
            break;
        }
        assert!(std::time::Instant::now() < until, "never counted: {t}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A delivery of it now is a duplicate, counted once.
    let again = app
        .webhook_ok("acme", &secret, &purchase("2", json!({"coupon": "AMY10"})))
        .await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(app.link_totals("amy-serum").await["conversions"], 2);
}
