//! Shops on Shopify and WooCommerce: their own webhooks as they send them, signed the way they
//! sign them; shop secrets rotated without downtime; the audit trail of each conversion.

use chrono::TimeDelta;
use kolink::clock::ManualClock;
use kolink::signature::body_hmac;
use reqwest::Response;
use serde_json::{json, Value};

use crate::helpers::{assert_error, restart_with_store_changed, spawn_app, spawn_app_with_clock, Backend, TestApp};

pub(crate) const SHOPIFY_SECRET: &str = "shpss_0123456789abcdef0123456789abcdef";
pub(crate) const WOO_SECRET: &str = "wc-secret-9f8e7d6c5b4a";

pub(crate) fn fixture(name: &str) -> Value {
    let text = match name {
        "shopify-order" => include_str!("../fixtures/shops/shopify-order.json"),
        "shopify-refund" => include_str!("../fixtures/shops/shopify-refund.json"),
        _ => include_str!("../fixtures/shops/woocommerce-order.json"),
    };
    serde_json::from_str(text).unwrap()
}

pub(crate) fn with(mut v: Value, changes: Value) -> Value {
    for (k, x) in changes.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

pub(crate) async fn platform_shop(app: &TestApp, id: &str, platform: &str, secret: &str) {
    let v = app
        .post_expect(
            "/api/v1/shops",
            &json!({"id": id, "name": id, "platform": platform, "secret": secret}),
            201,
        )
        .await;
    assert_eq!(v["webhook_url"], app.url(&format!("/webhooks/{platform}/{id}")));
}

/// Headers as Shopify sends them: `X-Shopify-*`, or `Shopify-*` when `newer`.
pub(crate) async fn shopify(app: &TestApp, secret: &str, topic: &str, body: &Value, newer: bool) -> Response {
    let raw = serde_json::to_vec(body).unwrap();
    let p = if newer { "shopify-" } else { "x-shopify-" };
    app.api
        .post(app.url("/webhooks/shopify/glow"))
        .header("content-type", "application/json")
        .header(format!("{p}topic"), topic)
        .header(format!("{p}hmac-sha256"), body_hmac(secret.as_bytes(), &raw))
        .header(format!("{p}shop-domain"), "glow.myshopify.com")
        .header(format!("{p}webhook-id"), format!("wh-{}", nanoid::nanoid!(8)))
        .header(format!("{p}api-version"), "2026-10")
        .body(raw)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn woo(app: &TestApp, secret: &str, topic: &str, body: &Value) -> Response {
    let raw = serde_json::to_vec(body).unwrap();
    app.api
        .post(app.url("/webhooks/woocommerce/mall"))
        .header("content-type", "application/json")
        .header("x-wc-webhook-source", "https://mall.example/")
        .header("x-wc-webhook-topic", topic)
        .header("x-wc-webhook-resource", "order")
        .header("x-wc-webhook-signature", body_hmac(secret.as_bytes(), &raw))
        .header("x-wc-webhook-id", "12")
        .header("x-wc-webhook-delivery-id", nanoid::nanoid!(10))
        .body(raw)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn ok(r: Response) -> Value {
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub(crate) async fn conversions(app: &TestApp) -> Vec<Value> {
    app.get_ok("/api/v1/conversions").await["conversions"]
        .as_array()
        .unwrap()
        .clone()
}

per_store!(shopify_orders_are_attributed_by_cart_attribute_then_landing_site_then_discount_code);
async fn shopify_orders_are_attributed_by_cart_attribute_then_landing_site_then_discount_code(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let cid = app.click_id("amy-serum").await;
    let now = chrono::Utc::now().to_rfc3339();
    let order = with(
        fixture("shopify-order"),
        json!({"id": 1, "processed_at": now, "note_attributes": [{"name": "kl_cid", "value": cid}],
               "landing_site": "/products/serum?kl_cid=zz-zz-zz", "discount_codes": [{"code": "amy10", "amount": "0.00", "type": "fixed_amount"}]}),
    );
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &order, false).await).await;
    assert_eq!(
        (v["status"].as_str(), v["method"].as_str()),
        (Some("attributed"), Some("click_id"))
    );
    let audit = conversions(&app).await[0]["audit"].clone();
    assert_eq!(
        audit,
        json!([
            {"source": "cart_attribute", "method": "click_id", "value": cid, "link": "amy-serum", "result": "chosen"},
            {"source": "landing_site", "method": "click_id", "value": "zz-zz-zz", "link": null, "result": "no_link"},
            {"source": "discount_code", "method": "coupon", "value": "amy10", "link": "amy-serum", "result": "lower_priority"}
        ])
    );
    let by_landing = with(
        fixture("shopify-order"),
        json!({"id": 2, "processed_at": now, "landing_site": format!("/?utm_source=ig&kl_cid={cid}")}),
    );
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &by_landing, true).await).await;
    assert_eq!(
        (v["status"].as_str(), v["method"].as_str()),
        (Some("attributed"), Some("click_id"))
    );
    let by_code = with(
        fixture("shopify-order"),
        json!({"id": 3, "discount_codes": [{"code": "AMY10"}]}),
    );
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &by_code, false).await).await;
    assert_eq!(
        (v["status"].as_str(), v["method"].as_str()),
        (Some("attributed"), Some("coupon"))
    );
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["conversions"].as_u64(), t["revenue"].as_str()),
        (Some(3), Some("3840.00"))
    );
}

per_store!(shopify_deliveries_are_verified_in_both_header_forms_and_forgeries_store_nothing);
async fn shopify_deliveries_are_verified_in_both_header_forms_and_forgeries_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let order = with(fixture("shopify-order"), json!({"discount_codes": [{"code": "AMY10"}]}));
    assert_error(
        shopify(&app, "not-the-secret", "orders/create", &order, false).await,
        401,
        "invalid_signature",
    )
    .await;
    assert_error(
        shopify(&app, "not-the-secret", "orders/create", &order, true).await,
        401,
        "invalid_signature",
    )
    .await;
    let raw = serde_json::to_vec(&order).unwrap();
    let unsigned = app
        .api
        .post(app.url("/webhooks/shopify/glow"))
        .header("content-type", "application/json")
        .header("x-shopify-topic", "orders/create")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_error(unsigned, 401, "invalid_signature").await;
    // A body changed after signing.
    let tampered = app
        .api
        .post(app.url("/webhooks/shopify/glow"))
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-hmac-sha256", body_hmac(SHOPIFY_SECRET.as_bytes(), &raw))
        .body(String::from_utf8(raw).unwrap().replace("1280.00", "9999.00"))
        .send()
        .await
        .unwrap();
    assert_error(tampered, 401, "invalid_signature").await;
    assert!(conversions(&app).await.is_empty());
    // Signed right, in the newer header form; a topic kolink does not take is a clear 400.
    ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &order, true).await).await;
    assert_error(
        shopify(&app, SHOPIFY_SECRET, "products/update", &order, false).await,
        400,
        "invalid_input",
    )
    .await;
    // A Shopify delivery sent to the generic shops' URL is told where to go; an unsigned one
    // learns nothing of the shop (its platform was named before any signature was checked).
    let raw = serde_json::to_vec(&order).unwrap();
    let misdirected = app
        .api
        .post(app.url("/webhooks/conversions/glow"))
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-hmac-sha256", body_hmac(SHOPIFY_SECRET.as_bytes(), &raw))
        .body(raw)
        .send()
        .await
        .unwrap();
    let e = assert_error(misdirected, 400, "invalid_input").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/webhooks/shopify/glow"),
        "{e}"
    );
    let stranger = app
        .api
        .post(app.url("/webhooks/conversions/glow"))
        .body("{}")
        .send()
        .await
        .unwrap();
    let e = assert_error(stranger, 401, "invalid_signature").await;
    assert!(!e["error"]["message"].as_str().unwrap().contains("Shopify"), "{e}");
    // The words a generic shop gets for the same post: nothing tells the two apart.
    let secret = app.create_shop("acme").await;
    assert!(!secret.is_empty());
    let generic = app
        .api
        .post(app.url("/webhooks/conversions/acme"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error(generic, 401, "invalid_signature").await, e);
    // An unknown shop.
    let r = app
        .api
        .post(app.url("/webhooks/shopify/nope"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "not_found").await;
}

per_store!(shopify_retries_and_later_topics_of_one_order_count_once);
async fn shopify_retries_and_later_topics_of_one_order_count_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let order = with(fixture("shopify-order"), json!({"discount_codes": [{"code": "AMY10"}]}));
    let first = ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &order, false).await).await;
    assert_eq!(first["status"], "attributed");
    for topic in ["orders/create", "orders/paid", "orders/paid"] {
        let again = ok(shopify(&app, SHOPIFY_SECRET, topic, &order, false).await).await;
        assert_eq!(again["status"], "duplicate", "{topic}");
    }
    assert_eq!(app.link_totals("amy-serum").await["conversions"], 1);
    assert_eq!(conversions(&app).await.len(), 1);
}

per_store!(shopify_test_orders_are_stored_as_test_and_never_counted);
async fn shopify_test_orders_are_stored_as_test_and_never_counted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let order = with(
        fixture("shopify-order"),
        json!({"test": true, "discount_codes": [{"code": "AMY10"}]}),
    );
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &order, false).await).await;
    assert_eq!(
        (v["status"].as_str(), v["link"].as_str()),
        (Some("test"), Some("amy-serum"))
    );
    assert_eq!(app.link_totals("amy-serum").await["conversions"], 0);
    let listed = app.get_ok("/api/v1/conversions?status=test").await;
    assert_eq!(listed["conversions"].as_array().unwrap().len(), 1);
    let c = app.get_ok("/api/v1/campaigns/spring-sale").await;
    assert_eq!(c["currency_locked"], false, "a test order locks nothing");
}

per_store!(shopify_refunds_and_cancellations_take_money_back_once);
async fn shopify_refunds_and_cancellations_take_money_back_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    // Shopify may deliver the refund before the order: it waits as pending.
    let refund = fixture("shopify-refund");
    let v = ok(shopify(&app, SHOPIFY_SECRET, "refunds/create", &refund, false).await).await;
    assert_eq!(v["status"], "pending");
    let order = with(fixture("shopify-order"), json!({"discount_codes": [{"code": "AMY10"}]}));
    ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &order, false).await).await;
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["revenue"].as_str(), t["refunds"].as_str()),
        (Some("1280.00"), Some("300.00"))
    );
    // Cancelled with the rest refunded, by a payload that does not say the shop kept anything
    // (no financial_status): the refund of the rest counts, the cancellation's refund of the
    // whole total would pass the purchase and does not.
    let rest = with(
        fixture("shopify-refund"),
        json!({"id": 929361463, "transactions": [{"kind": "refund", "status": "success", "amount": "980.00", "currency": "TWD"}]}),
    );
    assert_eq!(
        ok(shopify(&app, SHOPIFY_SECRET, "refunds/create", &rest, false).await).await["status"],
        "attributed"
    );
    let cancelled = with(
        order,
        json!({"cancelled_at": "2026-11-21T12:00:00+08:00", "cancel_reason": "customer", "financial_status": null}),
    );
    assert_eq!(
        ok(shopify(&app, SHOPIFY_SECRET, "orders/cancelled", &cancelled, false).await).await["status"],
        "over_refund"
    );
    let t = app.link_totals("amy-serum").await;
    assert_eq!(t["net_revenue"], "0.00");
}

per_store!(a_shopify_order_counts_once_paid_and_a_refund_under_way_takes_money_back);
/// An order placed with a manual payment (bank transfer, cash on delivery) arrives by
/// `orders/create` with `financial_status: pending`: it counted at once, revenue that may never
/// come. It counts when paid (`orders/paid`, or a create that says it is paid or authorized),
/// as a WooCommerce order does. A refund whose transaction is still `pending` (money on its way
/// back; Shopify sends `refunds/create` once) was dropped for good; a failed one takes nothing.
async fn a_shopify_order_counts_once_paid_and_a_refund_under_way_takes_money_back(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let order = with(
        fixture("shopify-order"),
        json!({"id": 31, "discount_codes": [{"code": "AMY10"}], "financial_status": "pending"}),
    );
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &order, false).await).await;
    assert_eq!(v["status"], "ok", "an unpaid order is not a conversion yet: {v}");
    assert!(conversions(&app).await.is_empty());
    let paid = with(order.clone(), json!({"financial_status": "paid"}));
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &paid, false).await).await;
    assert_eq!(v["status"], "attributed");
    // A create that says the payment is authorized counts at once.
    let authorized = with(order, json!({"id": 32, "financial_status": "authorized"}));
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &authorized, false).await).await;
    assert_eq!(v["status"], "attributed");
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["conversions"].as_u64(), t["revenue"].as_str()),
        (Some(2), Some("2560.00"))
    );

    let refund = |id: u64, status: &str| {
        with(
            fixture("shopify-refund"),
            json!({"id": id, "order_id": 31,
                   "transactions": [{"kind": "refund", "status": status, "amount": "200.00", "currency": "TWD"}]}),
        )
    };
    let v = ok(shopify(&app, SHOPIFY_SECRET, "refunds/create", &refund(41, "pending"), false).await).await;
    assert_eq!(v["status"], "attributed", "{v}");
    let v = ok(shopify(&app, SHOPIFY_SECRET, "refunds/create", &refund(42, "failure"), false).await).await;
    assert_eq!(v["status"], "ok", "a failed refund gives nothing back: {v}");
    assert_eq!(app.link_totals("amy-serum").await["refunds"], "200.00");
}

per_store!(a_signed_shopify_body_under_another_topic_counts_nothing);
/// Shopify signs the body, not the topic header: whoever holds one signed delivery could send
/// it again under another topic. An unpaid order's body sent as `orders/paid` counted as paid
/// revenue, and a paid order's body sent as `orders/cancelled` (whose `cancelled_at` is null)
/// took the whole order back. Each topic's body must now say what the topic says.
async fn a_signed_shopify_body_under_another_topic_counts_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let unpaid = with(
        fixture("shopify-order"),
        json!({"id": 61, "discount_codes": [{"code": "AMY10"}], "financial_status": "pending"}),
    );
    assert_eq!(
        ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &unpaid, false).await).await["status"],
        "ok"
    );
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &unpaid, false).await).await;
    assert_eq!(
        v["status"], "ok",
        "an order whose body says it is unpaid is not paid: {v}"
    );
    assert!(conversions(&app).await.is_empty());

    let paid = with(
        fixture("shopify-order"),
        json!({"id": 62, "discount_codes": [{"code": "AMY10"}]}),
    );
    assert_eq!(
        ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &paid, false).await).await["status"],
        "attributed"
    );
    assert_error(
        shopify(&app, SHOPIFY_SECRET, "orders/cancelled", &paid, false).await,
        400,
        "invalid_input",
    )
    .await;
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["conversions"].as_u64(), t["revenue"].as_str(), t["refunds"].as_str()),
        (Some(1), Some("1280.00"), Some("0.00"))
    );
    assert_eq!(conversions(&app).await.len(), 1);
}

per_store!(woocommerce_counts_an_order_once_when_it_is_first_paid);
async fn woocommerce_counts_an_order_once_when_it_is_first_paid(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "mall", "woocommerce", WOO_SECRET).await;
    let cid = app.click_id("amy-serum").await;
    let meta = json!([{"id": 1, "key": "kl_cid", "value": cid}, {"id": 2, "key": "_wc_order_attribution_utm_source", "value": "instagram"}]);
    let pending = with(fixture("woocommerce-order"), json!({"meta_data": meta}));
    let v = ok(woo(&app, WOO_SECRET, "order.created", &pending).await).await;
    assert_eq!(v["status"], "ok", "an unpaid order is not a conversion yet");
    assert!(conversions(&app).await.is_empty());
    let paid_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let processing = with(
        pending.clone(),
        json!({"status": "processing", "date_paid_gmt": paid_at}),
    );
    let v = ok(woo(&app, WOO_SECRET, "order.updated", &processing).await).await;
    assert_eq!(
        (v["status"].as_str(), v["method"].as_str()),
        (Some("attributed"), Some("click_id"))
    );
    let completed = with(processing.clone(), json!({"status": "completed"}));
    assert_eq!(
        ok(woo(&app, WOO_SECRET, "order.updated", &completed).await).await["status"],
        "duplicate"
    );
    // A partial refund, then the rest as the order becomes refunded.
    let partial = with(
        completed.clone(),
        json!({"refunds": [{"id": 801, "reason": "", "total": "-280.00"}]}),
    );
    let v = ok(woo(&app, WOO_SECRET, "order.updated", &partial).await).await;
    let statuses: Vec<&str> = v["conversions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["duplicate", "attributed"]);
    let refunded = with(
        completed,
        json!({"status": "refunded", "refunds": [{"id": 801, "total": "-280.00"}, {"id": 802, "total": "-1000.00"}]}),
    );
    ok(woo(&app, WOO_SECRET, "order.updated", &refunded).await).await;
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["conversions"].as_u64(), t["revenue"].as_str(), t["refunds"].as_str()),
        (Some(1), Some("1280.00"), Some("1280.00"))
    );
}

per_store!(woocommerce_pings_are_answered_and_forgeries_refused);
async fn woocommerce_pings_are_answered_and_forgeries_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "mall", "woocommerce", WOO_SECRET).await;
    let ping = app
        .api
        .post(app.url("/webhooks/woocommerce/mall"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-wc-webhook-id", "12")
        .body("webhook_id=12")
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);
    let order = with(
        fixture("woocommerce-order"),
        json!({"status": "processing", "coupon_lines": [{"id": 1, "code": "amy10"}]}),
    );
    assert_error(
        woo(&app, "wrong", "order.created", &order).await,
        401,
        "invalid_signature",
    )
    .await;
    let unsigned = app
        .api
        .post(app.url("/webhooks/woocommerce/mall"))
        .header("content-type", "application/json")
        .header("x-wc-webhook-topic", "order.created")
        .body(serde_json::to_vec(&order).unwrap())
        .send()
        .await
        .unwrap();
    assert_error(unsigned, 401, "invalid_signature").await;
    assert!(conversions(&app).await.is_empty(), "a ping and forgeries store nothing");
    let v = ok(woo(&app, WOO_SECRET, "order.created", &order).await).await;
    assert_eq!(
        (v["status"].as_str(), v["method"].as_str()),
        (Some("attributed"), Some("coupon"))
    );
}

per_store!(woocommerce_order_attribution_names_the_link_when_nothing_else_does);
async fn woocommerce_order_attribution_names_the_link_when_nothing_else_does(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "mall", "woocommerce", WOO_SECRET).await;
    let cid = app.click_id("amy-serum").await;
    let entry = format!("https://mall.example/serum/?utm_source=instagram&kl_cid={cid}");
    let paid_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let order = with(
        fixture("woocommerce-order"),
        json!({"status": "processing", "date_paid_gmt": paid_at,
               "meta_data": [{"id": 9, "key": "_wc_order_attribution_session_entry", "value": entry}]}),
    );
    let v = ok(woo(&app, WOO_SECRET, "order.created", &order).await).await;
    assert_eq!(
        (v["status"].as_str(), v["link"].as_str()),
        (Some("attributed"), Some("amy-serum"))
    );
    let by_utm = with(
        fixture("woocommerce-order"),
        json!({"id": 728, "status": "completed", "meta_data": [{"id": 9, "key": "_wc_order_attribution_utm_content", "value": "amy-serum"}]}),
    );
    let v = ok(woo(&app, WOO_SECRET, "order.created", &by_utm).await).await;
    assert_eq!(
        (v["status"].as_str(), v["method"].as_str()),
        (Some("attributed"), Some("code"))
    );
    let audit = &conversions(&app).await[0]["audit"];
    assert_eq!(audit[0]["source"], "order_attribution");
}

per_store!(a_rotated_secret_keeps_the_old_one_valid_for_its_grace_period);
async fn a_rotated_secret_keeps_the_old_one_valid_for_its_grace_period(backend: Backend) {
    let clock = ManualClock::at(chrono::Utc::now());
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    let old = app.create_shop("acme").await;
    let rotated = app
        .post_expect("/api/v1/shops/acme/secret", &json!({"previous_valid_hours": 2}), 200)
        .await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    assert!(rotated["previous_secret_valid_until"].is_string());
    let order = |id: &str| json!({"order_id": id, "event": "signup", "coupon": "AMY10"});
    let send = |secret: String, body: Value| {
        let app = &app;
        let clock = clock.clone();
        async move {
            let raw = serde_json::to_vec(&body).unwrap();
            app.signed_webhook("acme", &secret, &raw, kolink::clock::Clock::now(&*clock).timestamp())
                .await
        }
    };
    assert_eq!(
        send(old.clone(), order("1")).await.status(),
        200,
        "the old secret, during the grace"
    );
    assert_eq!(send(new.clone(), order("2")).await.status(), 200);
    clock.advance(TimeDelta::hours(3));
    assert_error(send(old, order("3")).await, 401, "invalid_signature").await;
    assert_eq!(send(new, order("4")).await.status(), 200);
    // Platform shops give their platform's new secret.
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let r = app.post("/api/v1/shops/glow/secret", &json!({})).await;
    assert_error(r, 400, "invalid_input").await;
    // A blank secret, or one with spaces pasted around it, would sign nothing the platform sends
    // (or anything anyone sends): refused, on creation and on rotation.
    // One of a few characters, accepted before, is guessed: refused too.
    for secret in [
        " ",
        "\t",
        " shpss_new_0123456789",
        "shpss_new_0123456789\n",
        "a",
        "shpss_short",
    ] {
        let r = app.post("/api/v1/shops/glow/secret", &json!({"secret": secret})).await;
        let body = assert_error(r, 400, "invalid_input").await;
        assert!(body["error"]["message"].as_str().unwrap().contains("secret"), "{body}");
        let r = app
            .post(
                "/api/v1/shops",
                &json!({"id": "blank", "name": "Blank", "platform": "woocommerce", "secret": secret}),
            )
            .await;
        assert_error(r, 400, "invalid_input").await;
    }
    let r = app
        .post_expect(
            "/api/v1/shops/glow/secret",
            &json!({"secret": "shpss_new_0123456789"}),
            200,
        )
        .await;
    assert_eq!(r["secret"], json!(null), "a platform's secret is never echoed");
}

per_store!(conversions_export_as_csv_with_their_audit);
async fn conversions_export_as_csv_with_their_audit(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    app.webhook_ok(
        "acme",
        &secret,
        &json!({"order_id": "9", "event": "signup", "coupon": "AMY10", "code": "nope"}),
    )
    .await;
    let r = app.get_csv("/api/v1/conversions").await;
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = r.text().await.unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().ends_with(",audit"));
    let row = lines.next().unwrap();
    assert!(
        row.contains("coupon coupon AMY10 -> amy-serum: chosen | code code nope -> -: no_link"),
        "{row}"
    );
}

per_store!(a_conversions_csv_without_a_limit_holds_every_conversion_and_pages_link_to_the_next);
async fn a_conversions_csv_without_a_limit_holds_every_conversion_and_pages_link_to_the_next(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    // More than a store read of the download (200), and than the JSON's default page (50).
    for i in 0..230 {
        let coupon = if i % 10 == 0 { "NOPE" } else { "AMY10" };
        app.webhook_ok(
            "acme",
            &secret,
            &json!({"order_id": format!("o{i}"), "event": "purchase", "amount": "10", "currency": "TWD", "coupon": coupon}),
        )
        .await;
    }
    let get = |query: &str| {
        let (app, path) = (&app, format!("/api/v1/conversions{query}"));
        async move { app.get_csv(&path).await }
    };
    let csv = |query: String| {
        let get = &get;
        async move {
            let r = get(&query).await;
            assert_eq!(r.status(), 200, "{query}");
            assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
            let next = r.headers().get("link").map(|l| l.to_str().unwrap().to_owned());
            let text = r.text().await.unwrap();
            let mut lines = text.lines();
            assert!(
                lines.next().unwrap().starts_with("id,shop,order_id,"),
                "a header: {text}"
            );
            let orders: Vec<String> = lines.map(|l| l.split(',').nth(2).unwrap().to_owned()).collect();
            (orders, next)
        }
    };
    let all: std::collections::BTreeSet<String> = (0..230).map(|i| format!("o{i}")).collect();

    // The whole trail, newest first, in one file.
    let (orders, next) = csv(String::new()).await;
    assert_eq!(orders.len(), 230, "every conversion");
    assert_eq!(orders.first().map(String::as_str), Some("o229"));
    assert_eq!(orders.iter().cloned().collect::<std::collections::BTreeSet<_>>(), all);
    assert_eq!(next, None, "nothing follows a whole download");
    // Filters hold over every page of it.
    let (unattributed, _) = csv("?status=unattributed".into()).await;
    assert_eq!(unattributed.len(), 23);
    let (theirs, _) = csv("?campaign=spring-sale&status=attributed".into()).await;
    assert_eq!(theirs.len(), 207);
    let (none, next) = csv("?status=test".into()).await;
    assert_eq!((none.len(), next), (0, None), "nothing matches: the header alone");
    // From a cursor a JSON page handed out: the rest, whole.
    let first: Value = app.get_ok("/api/v1/conversions?limit=50").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (rest, _) = csv(format!("?cursor={cursor}")).await;
    assert_eq!(rest.len(), 180);
    assert_eq!(rest.first().map(String::as_str), Some("o179"));

    // With a limit, a page, and the next one named in a Link header.
    let mut paged = Vec::new();
    let mut query = "?limit=100&status=attributed".to_owned();
    let mut pages = 0;
    loop {
        let (orders, next) = csv(query.clone()).await;
        pages += 1;
        paged.extend(orders);
        let Some(link) = next else { break };
        let target = link
            .strip_prefix("</api/v1/conversions")
            .and_then(|l| l.strip_suffix(">; rel=\"next\""))
            .unwrap_or_else(|| panic!("a Link to the next page: {link}"));
        assert!(
            target.contains("limit=100") && target.contains("status=attributed"),
            "{target}"
        );
        query = target.to_owned();
    }
    assert_eq!(pages, 3);
    assert_eq!(paged, theirs, "the pages of a limit are the whole download, in order");

    // Bad paging gets the API's errors, as JSON does.
    for (query, message) in [("?limit=0", "limit"), ("?cursor=nonsense", "cursor")] {
        let body = assert_error(get(query).await, 400, "invalid_input").await;
        assert!(body["error"]["message"].as_str().unwrap().contains(message), "{body}");
    }
}

per_store!(a_conversions_csv_cut_short_by_the_store_does_not_look_whole);
/// A download whose later page the store cannot give ends without its last chunk, so the
/// client gets an error rather than a shorter file that looks complete; the server keeps
/// serving. (The oldest conversion, on the second page of the download, is made unreadable.)
async fn a_conversions_csv_cut_short_by_the_store_does_not_look_whole(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    for i in 0..205 {
        app.webhook_ok(
            "acme",
            &secret,
            &json!({"order_id": format!("o{i}"), "event": "purchase", "amount": "10", "currency": "TWD", "coupon": "AMY10"}),
        )
        .await;
    }
    let app = unreadable_oldest_conversion(app).await;
    let r = app.get_csv("/api/v1/conversions").await;
    // The first page was read before the answer started.
    assert_eq!(r.status(), 200);
    let read = r.bytes().await;
    assert!(
        read.is_err(),
        "a cut download must not end cleanly: {:?}",
        read.map(|b| b.len())
    );
    // Pages before the damaged record still read, as JSON and as CSV.
    let first = app.get_ok("/api/v1/conversions?limit=100").await;
    assert_eq!(first["conversions"].as_array().unwrap().len(), 100);
    let r = app.get_csv("/api/v1/conversions?limit=100").await;
    assert_eq!(r.text().await.unwrap().lines().count(), 101);
}

/// Replaces the oldest stored conversion with bytes kolink never wrote.
async fn unreadable_oldest_conversion(app: TestApp) -> TestApp {
    restart_with_store_changed(
        app,
        async |conn, prefix| {
            let oldest: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                .arg(format!("{prefix}:{{conv}}:log"))
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .query_async(conn)
                .await
                .unwrap();
            let _: () = redis::cmd("HSET")
                .arg(format!("{prefix}:{{conv}}:recs"))
                .arg(&oldest.ids[0].id)
                .arg("{not json")
                .query_async(conn)
                .await
                .unwrap();
        },
        |txn| {
            let conversions: redb::TableDefinition<u64, &str> = redb::TableDefinition::new("conversions");
            let mut t = txn.open_table(conversions).unwrap();
            let oldest = redb::ReadableTable::first(&t).unwrap().unwrap().0.value();
            t.insert(oldest, "{not json").unwrap();
        },
    )
    .await
}

per_store!(a_big_order_passes_the_apis_64_kib_and_is_still_taken_up_to_1_mib);
async fn a_big_order_passes_the_apis_64_kib_and_is_still_taken_up_to_1_mib(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    // 300 lines, each as Shopify sends it with its tax lines and properties: about 110 KB.
    let line = |i: u64| {
        json!({"id": 14012345678901_u64 + i, "name": format!("Serum sample {i}"), "price": "1.00", "quantity": 1,
               "sku": format!("SER-S-{i}"), "vendor": "Glow Lab", "requires_shipping": true, "taxable": true,
               "tax_lines": [{"title": "VAT", "price": "0.05", "rate": 0.05}],
               "properties": [{"name": "engraving", "value": "for amy's followers"}],
               "discount_allocations": [], "admin_graphql_api_id": format!("gid://shopify/LineItem/{i}")})
    };
    let big = with(
        fixture("shopify-order"),
        json!({"id": 7001, "discount_codes": [{"code": "AMY10"}], "line_items": (0..300).map(line).collect::<Vec<_>>()}),
    );
    let size = serde_json::to_vec(&big).unwrap().len();
    assert!(size > 64 * 1024, "{size} bytes");
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &big, false).await).await;
    assert_eq!(v["status"], "attributed", "{v}");
    assert_eq!(app.link_totals("amy-serum").await["revenue"], "1280.00");
    // Past 1 MiB: refused, in the API's error format, and nothing is stored.
    let huge = with(
        fixture("shopify-order"),
        json!({"id": 7002, "discount_codes": [{"code": "AMY10"}], "line_items": (0..3000).map(line).collect::<Vec<_>>()}),
    );
    assert!(serde_json::to_vec(&huge).unwrap().len() > 1024 * 1024);
    let r = shopify(&app, SHOPIFY_SECRET, "orders/create", &huge, false).await;
    assert_error(r, 413, "payload_too_large").await;
    assert_eq!(conversions(&app).await.len(), 1);
    // The API itself keeps API.md's 64 KiB.
    let r = app
        .post("/api/v1/kols", &json!({"id": "zoe", "name": "x".repeat(70 * 1024)}))
        .await;
    assert_error(r, 413, "payload_too_large").await;
}

per_store!(shopify_orders_meet_the_window_and_the_campaigns_currency);
async fn shopify_orders_meet_the_window_and_the_campaigns_currency(backend: Backend) {
    let now = chrono::Utc::now();
    let clock = ManualClock::at(now - TimeDelta::days(40));
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let old = app.click_id("amy-serum").await;
    clock.set(now);
    let attrs = json!([{"name": "kl_cid", "value": old}]);
    let late = with(
        fixture("shopify-order"),
        json!({"id": 11, "processed_at": now.to_rfc3339(), "note_attributes": attrs}),
    );
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &late, false).await).await;
    assert_eq!(
        (v["status"].as_str(), v["link"].as_str()),
        (Some("outside_window"), Some("amy-serum"))
    );
    let audit = &conversions(&app).await[0]["audit"];
    assert_eq!(audit[0]["result"], "outside_window");
    let usd = with(
        fixture("shopify-order"),
        json!({"id": 12, "currency": "USD", "discount_codes": [{"code": "AMY10"}]}),
    );
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &usd, false).await).await;
    assert_eq!(v["status"], "currency_mismatch");
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["conversions"].as_u64(), t["revenue"].as_str()),
        (Some(0), Some("0.00"))
    );
}

per_store!(what_shoppers_write_into_an_order_reaches_no_audit_unless_it_is_a_claim);
/// A cart attribute and a landing URL are the shopper's to write: a `kl_cid` of formula text
/// or control characters was kept in the conversion's audit, and so in the conversions CSV. The
/// order is still taken, by its coupon; the junk is not kept.
async fn what_shoppers_write_into_an_order_reaches_no_audit_unless_it_is_a_claim(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let attrs = json!([
        {"name": "kl_cid", "value": "x;=HYPERLINK(CHAR(104))"},
        {"name": "kl_cid", "value": "1-abc\t\u{7}"},
    ]);
    let order = with(
        fixture("shopify-order"),
        json!({"id": 21, "note_attributes": attrs, "discount_codes": [{"code": "AMY10"}],
               "landing_site": "/products/serum?kl_cid=a%3B%3Dcmd()"}),
    );
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &order, false).await).await;
    assert_eq!(v["status"], "attributed", "{v}");
    let audit = conversions(&app).await[0]["audit"].clone();
    let methods: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["coupon"], "{audit}");
    let csv = app
        .api
        .get(app.url("/api/v1/conversions?format=csv"))
        .bearer_auth(crate::helpers::TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !csv.to_ascii_uppercase().contains("HYPERLINK") && !csv.contains("cmd()"),
        "{csv}"
    );
}

/// A webhook's body is read whole before its signature can be checked, and its sender has
/// 10 s to send it: slow bodies that never finish held 825 MB from one address in 9 s. An
/// address gets 8 bodies read at once (and everyone 64); past that `429` at once, and a
/// delivery is taken again as soon as the slow ones are gone.
#[tokio::test]
async fn slow_webhook_bodies_from_one_address_are_bounded() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app(Backend::Embedded).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
        let head = "POST /webhooks/shopify/glow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n";
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&[b' '; 4096]).await.unwrap();
        slow.push(s);
    }
    // The server has taken the eight heads once a ninth is refused.
    let order = with(fixture("shopify-order"), json!({"id": 41}));
    let mut refused = None;
    for _ in 0..100 {
        let r = shopify(&app, SHOPIFY_SECRET, "orders/create", &order, false).await;
        if r.status() == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status(), 200, "before the slow bodies are all being read");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let refused = refused.expect("a delivery past the bound is refused");
    assert!(refused.headers().get("retry-after").is_some());
    assert_error(refused, 429, "rate_limited").await;
    drop(slow);
    let mut taken = false;
    for _ in 0..100 {
        let r = shopify(&app, SHOPIFY_SECRET, "orders/create", &order, false).await;
        if r.status() == 200 {
            taken = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(taken, "deliveries are taken again once the slow bodies are gone");
}

per_store!(malformed_platform_deliveries_and_bad_rotations_are_clear_errors);
async fn malformed_platform_deliveries_and_bad_rotations_are_clear_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    platform_shop(&app, "mall", "woocommerce", WOO_SECRET).await;
    // Signed right, but not an order.
    for body in [
        json!({"hello": "world"}),
        json!({"id": 1, "total_price": "abc", "currency": "TWD"}),
    ] {
        assert_error(
            shopify(&app, SHOPIFY_SECRET, "orders/create", &body, false).await,
            400,
            "invalid_input",
        )
        .await;
    }
    let not_json = b"{not json".to_vec();
    let r = app
        .api
        .post(app.url("/webhooks/woocommerce/mall"))
        .header("content-type", "application/json")
        .header("x-wc-webhook-topic", "order.updated")
        .header("x-wc-webhook-signature", body_hmac(WOO_SECRET.as_bytes(), &not_json))
        .body(not_json)
        .send()
        .await
        .unwrap();
    // Text that is not JSON is `invalid_json`, as on every other endpoint.
    assert_error(r, 400, "invalid_json").await;
    let order = with(
        fixture("woocommerce-order"),
        json!({"status": "processing", "currency": "dollars"}),
    );
    assert_error(
        woo(&app, WOO_SECRET, "order.updated", &order).await,
        400,
        "invalid_input",
    )
    .await;
    assert_error(
        woo(&app, WOO_SECRET, "product.created", &order).await,
        400,
        "invalid_input",
    )
    .await;
    assert!(conversions(&app).await.is_empty(), "nothing malformed was stored");
    // A rotation's grace period is bounded; an unknown shop is not found.
    let r = app
        .post(
            "/api/v1/shops/glow/secret",
            &json!({"secret": "shpss_second_0123456789", "previous_valid_hours": 200}),
        )
        .await;
    assert_error(r, 400, "invalid_input").await;
    let r = app.post("/api/v1/shops/nope/secret", &json!({})).await;
    assert_error(r, 404, "not_found").await;
    let r = app
        .post(
            "/api/v1/shops/glow/secret",
            &json!({"secret": "shpss_second_0123456789", "extra": 1}),
        )
        .await;
    assert_error(r, 400, "invalid_input").await;
}

per_store!(a_delivery_without_its_own_time_is_dated_to_the_second);
/// A refund whose delivery carries no time is dated when it arrived, to the second like every
/// other time kolink writes (it carried nanoseconds).
async fn a_delivery_without_its_own_time_is_dated_to_the_second(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let refund = with(
        fixture("shopify-refund"),
        json!({"processed_at": null, "created_at": null}),
    );
    ok(shopify(&app, SHOPIFY_SECRET, "refunds/create", &refund, false).await).await;
    let listed = conversions(&app).await;
    let at = listed[0]["occurred_at"].as_str().unwrap();
    assert!(at.ends_with('Z') && !at.contains('.'), "{at}");
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
}
