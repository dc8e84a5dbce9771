//! Shop platforms' orders in the forms they really come in: amounts with their store's
//! decimals, coupons in any case (WooCommerce lower-cases them), refunds and cancellations that
//! net an order to what the shop kept whatever order they arrive in, refunds in the buyer's
//! currency, and refunds of test orders.

use serde_json::{json, Value};

use crate::helpers::{assert_error, restart_with_store_changed, spawn_app, Backend};
use crate::shops::{conversions, fixture, ok, platform_shop, shopify, with, woo, SHOPIFY_SECRET, WOO_SECRET};

per_store!(platform_amounts_with_three_fraction_digits_are_taken_to_the_cent);
async fn platform_amounts_with_three_fraction_digits_are_taken_to_the_cent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "mall", "woocommerce", WOO_SECRET).await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    // WooCommerce writes totals with the store's own decimals (three for KWD, BHD, OMR …),
    // and gives up on a webhook whose deliveries keep failing: the order is taken, rounded.
    let paid = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let order = with(
        fixture("woocommerce-order"),
        json!({"status": "processing", "date_paid_gmt": paid, "total": "12.345",
               "coupon_lines": [{"id": 1, "code": "amy10"}]}),
    );
    let v = ok(woo(&app, WOO_SECRET, "order.created", &order).await).await;
    assert_eq!(v["status"], "attributed");
    let refunded = with(order, json!({"refunds": [{"id": 9, "total": "-2.000"}]}));
    ok(woo(&app, WOO_SECRET, "order.updated", &refunded).await).await;
    let order = with(
        fixture("shopify-order"),
        json!({"total_price": "7.125", "discount_codes": [{"code": "AMY10"}]}),
    );
    assert_eq!(
        ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &order, false).await).await["status"],
        "attributed"
    );
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["revenue"].as_str(), t["refunds"].as_str()),
        (Some("19.48"), Some("2.00")),
        "12.35 + 7.13"
    );
    let amounts: Vec<String> = conversions(&app)
        .await
        .iter()
        .map(|c| c["amount"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(amounts, ["7.13", "2.00", "12.35"]);
    // Refunds round down, so that each rounded they never pass their order: a 1.010 order
    // (1.01) refunded in two halves of 0.505 takes back 1.00, both counted.
    let order = with(
        fixture("woocommerce-order"),
        json!({"id": 728, "status": "processing", "date_paid_gmt": paid, "total": "1.010",
               "coupon_lines": [{"id": 1, "code": "amy10"}]}),
    );
    ok(woo(&app, WOO_SECRET, "order.created", &order).await).await;
    let halves = with(
        order,
        json!({"refunds": [{"id": 11, "total": "-0.505"}, {"id": 12, "total": "-0.505"}]}),
    );
    let v = ok(woo(&app, WOO_SECRET, "order.updated", &halves).await).await;
    let statuses: Vec<&str> = v["conversions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["duplicate", "attributed", "attributed"], "{v}");
    // The API's own amounts keep to two fraction digits.
    let r = app
        .post(
            "/api/v1/links",
            &json!({"campaign": "spring-sale", "kol": "amy", "cost": "1.005"}),
        )
        .await;
    assert_error(r, 400, "invalid_input").await;
}

/// A Shopify refund of `amount` (a successful refund transaction) of order `order_id`.
fn shopify_refund(id: u64, order_id: u64, amount: &str, currency: &str) -> Value {
    with(
        fixture("shopify-refund"),
        json!({"id": id, "order_id": order_id,
               "transactions": [{"kind": "refund", "status": "success", "amount": amount, "currency": currency}]}),
    )
}

per_store!(a_shopify_cancellation_nets_the_order_to_what_the_shop_kept_whichever_delivery_comes_first);
/// Shopify's cancel dialog refunds what the merchant chooses: all, part (keeping a fee), or
/// nothing; and an order whose payment was only authorized is voided. The order nets to what
/// the shop kept, whichever of orders/cancelled and refunds/create comes first.
async fn a_shopify_cancellation_nets_the_order_to_what_the_shop_kept_whichever_delivery_comes_first(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let mut kept = 0;
    let mut revenue = 0;
    let mut next_order = |app_kept: i64| {
        revenue += 1280;
        kept += app_kept;
        (revenue, kept)
    };
    // Cancelled with 300.00 of 1280.00 refunded (financial_status partially_refunded): the shop
    // kept 980.00. Shopify sends orders/cancelled (listing the refund, or not yet) and
    // refunds/create in no set order.
    for (order_id, refund_first, listed) in [(1, true, true), (2, false, true), (3, false, false)] {
        let order = with(
            fixture("shopify-order"),
            json!({"id": order_id, "discount_codes": [{"code": "AMY10"}]}),
        );
        ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &order, false).await).await;
        let refund = shopify_refund(900 + order_id, order_id, "300.00", "TWD");
        let refunds = if listed { json!([refund.clone()]) } else { json!([]) };
        let cancelled = with(
            order,
            json!({"cancelled_at": "2026-11-21T12:00:00+08:00", "refunds": refunds,
                   "financial_status": "partially_refunded"}),
        );
        if refund_first {
            ok(shopify(&app, SHOPIFY_SECRET, "refunds/create", &refund, false).await).await;
        }
        ok(shopify(&app, SHOPIFY_SECRET, "orders/cancelled", &cancelled, false).await).await;
        if !refund_first {
            ok(shopify(&app, SHOPIFY_SECRET, "refunds/create", &refund, false).await).await;
        }
        let (revenue, kept) = next_order(980);
        let t = app.link_totals("amy-serum").await;
        assert_eq!(
            (t["revenue"].as_str(), t["net_revenue"].as_str()),
            (
                Some(format!("{revenue}.00").as_str()),
                Some(format!("{kept}.00").as_str())
            ),
            "order {order_id}"
        );
    }
    // Refunded in full with the cancellation (refunded), voided before any capture (voided),
    // and cancelled by an older payload that names no financial status: nothing kept. Cancelled
    // without a refund (paid): the shop kept it all, until a refund says otherwise.
    for (order_id, status, refund_with_it, app_kept) in [
        (4, Some("refunded"), true, 0),
        (5, Some("voided"), false, 0),
        (6, None, false, 0),
        (7, Some("paid"), false, 1280),
    ] {
        let order = with(
            fixture("shopify-order"),
            json!({"id": order_id, "discount_codes": [{"code": "AMY10"}]}),
        );
        ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &order, false).await).await;
        let refund = shopify_refund(900 + order_id, order_id, "1280.00", "TWD");
        let mut cancelled = with(
            order,
            json!({"cancelled_at": "2026-11-21T12:00:00+08:00",
                   "refunds": if refund_with_it { json!([refund.clone()]) } else { json!([]) }}),
        );
        match status {
            Some(s) => cancelled["financial_status"] = json!(s),
            None => {
                cancelled.as_object_mut().unwrap().remove("financial_status");
            }
        }
        ok(shopify(&app, SHOPIFY_SECRET, "orders/cancelled", &cancelled, false).await).await;
        if refund_with_it {
            let v = ok(shopify(&app, SHOPIFY_SECRET, "refunds/create", &refund, false).await).await;
            assert_eq!(v["status"], "duplicate", "the refund the cancellation listed: {v}");
        }
        let (revenue, kept) = next_order(app_kept);
        let t = app.link_totals("amy-serum").await;
        assert_eq!(
            (t["revenue"].as_str(), t["net_revenue"].as_str()),
            (
                Some(format!("{revenue}.00").as_str()),
                Some(format!("{kept}.00").as_str())
            ),
            "order {order_id}, {status:?}"
        );
    }
}

per_store!(platform_fields_sent_as_null_are_read_as_empty);
/// A shop that sends `null` where its platform's documents show a list or a flag loses no
/// order: the field reads as empty (as missing ones do).
async fn platform_fields_sent_as_null_are_read_as_empty(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    platform_shop(&app, "mall", "woocommerce", WOO_SECRET).await;
    let order = with(
        fixture("shopify-order"),
        json!({"id": 31, "note_attributes": null, "refunds": null, "test": null,
               "discount_codes": [{"code": "AMY10"}]}),
    );
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &order, false).await).await;
    assert_eq!(v["status"], "attributed", "{v}");
    let order = with(fixture("shopify-order"), json!({"id": 32, "discount_codes": null}));
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &order, false).await).await;
    assert_eq!(v["status"], "unattributed", "{v}");
    let refund = with(
        shopify_refund(933, 31, "100.00", "TWD"),
        json!({"transactions": [{"kind": "refund", "status": "success", "amount": "100.00", "currency": "TWD", "test": null}]}),
    );
    ok(shopify(&app, SHOPIFY_SECRET, "refunds/create", &refund, false).await).await;
    let empty = with(shopify_refund(934, 31, "0", "TWD"), json!({"transactions": null}));
    ok(shopify(&app, SHOPIFY_SECRET, "refunds/create", &empty, false).await).await;
    let paid = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let order = with(
        fixture("woocommerce-order"),
        json!({"id": 741, "status": "processing", "date_paid_gmt": paid, "meta_data": null,
               "coupon_lines": null, "refunds": null}),
    );
    let v = ok(woo(&app, WOO_SECRET, "order.created", &order).await).await;
    assert_eq!(v["status"], "unattributed", "{v}");
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["revenue"].as_str(), t["refunds"].as_str()),
        (Some("1280.00"), Some("100.00"))
    );
}

per_store!(a_woocommerce_cancellation_after_a_partial_refund_takes_back_the_rest);
async fn a_woocommerce_cancellation_after_a_partial_refund_takes_back_the_rest(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "mall", "woocommerce", WOO_SECRET).await;
    let paid = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let order = with(
        fixture("woocommerce-order"),
        json!({"status": "processing", "date_paid_gmt": paid, "coupon_lines": [{"id": 1, "code": "amy10"}]}),
    );
    ok(woo(&app, WOO_SECRET, "order.created", &order).await).await;
    // A refund of items only (no money back) is no refund; one of 280.00 is.
    let partial = with(
        order,
        json!({"refunds": [{"id": 800, "total": "-0.00"}, {"id": 801, "total": "-280.00"}]}),
    );
    ok(woo(&app, WOO_SECRET, "order.updated", &partial).await).await;
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["net_revenue"].as_str(), t["events"]["refund"].as_u64()),
        (Some("1000.00"), Some(1))
    );
    let cancelled = with(partial, json!({"status": "cancelled"}));
    let v = ok(woo(&app, WOO_SECRET, "order.updated", &cancelled).await).await;
    let statuses: Vec<&str> = v["conversions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["duplicate", "duplicate", "attributed"], "{v}");
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["refunds"].as_str(), t["net_revenue"].as_str()),
        (Some("1280.00"), Some("0.00"))
    );
    let rest = conversions(&app)
        .await
        .into_iter()
        .find(|c| c["refund_id"] == "cancelled")
        .unwrap();
    assert_eq!(rest["amount"], "1000.00");
}

per_store!(a_shopify_refund_in_the_buyers_currency_is_taken_in_the_shops);
async fn a_shopify_refund_in_the_buyers_currency_is_taken_in_the_shops(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    // A TWD shop selling in USD (Shopify Markets): the order counts in TWD, its refunds'
    // transactions are in USD, and their line items carry both amounts.
    let set = |shop: &str, buyer: &str| {
        json!({"shop_money": {"amount": shop, "currency_code": "TWD"},
               "presentment_money": {"amount": buyer, "currency_code": "USD"}})
    };
    let order = with(
        fixture("shopify-order"),
        json!({"presentment_currency": "USD", "total_price_set": set("1280.00", "40.00"),
               "discount_codes": [{"code": "AMY10"}]}),
    );
    ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &order, false).await).await;
    let refund = with(
        shopify_refund(901, 5812345678901, "10.00", "USD"),
        json!({"refund_line_items": [{"id": 1, "quantity": 1, "subtotal": 300.0, "total_tax": 20.0,
               "subtotal_set": set("300.00", "9.38"), "total_tax_set": set("20.00", "0.62")}]}),
    );
    let v = ok(shopify(&app, SHOPIFY_SECRET, "refunds/create", &refund, false).await).await;
    assert_eq!(v["status"], "attributed", "{v}");
    let t = app.link_totals("amy-serum").await;
    assert_eq!(t["refunds"], "320.00");
    // Cancelled after it, by a payload that does not say the shop kept anything (no
    // financial_status): the rest, 960.00 TWD, with the USD refund taken at the order's rate.
    let cancelled = with(
        order,
        json!({"cancelled_at": "2026-11-21T12:00:00+08:00", "refunds": [refund], "financial_status": null}),
    );
    assert_eq!(
        ok(shopify(&app, SHOPIFY_SECRET, "orders/cancelled", &cancelled, false).await).await["status"],
        "attributed"
    );
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["refunds"].as_str(), t["net_revenue"].as_str()),
        (Some("1280.00"), Some("0.00"))
    );
    let listed = conversions(&app).await;
    assert!(listed.iter().all(|c| c["currency"] == "TWD"), "{listed:?}");
    // Rates rounded to the cent differ a little between an order and its refunds (1000.00 TWD
    // for 31.25 USD; a line of 333.34 TWD for 10.41 USD): the cancellation takes the refund as
    // refunds/create does, so the two still add up to the order, whichever comes first.
    for (id, refund_first) in [(7001_u64, true), (7002, false)] {
        let order = with(
            fixture("shopify-order"),
            json!({"id": id, "total_price": "1000.00", "presentment_currency": "USD",
                   "total_price_set": set("1000.00", "31.25"), "discount_codes": [{"code": "AMY10"}]}),
        );
        ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &order, false).await).await;
        let refund = with(
            shopify_refund(id + 100, id, "10.41", "USD"),
            json!({"refund_line_items": [{"id": 1, "quantity": 1, "subtotal_set": set("333.34", "10.41")}]}),
        );
        let cancelled = with(
            order,
            json!({"cancelled_at": "2026-11-21T12:00:00+08:00", "refunds": [refund.clone()],
                   "financial_status": null}),
        );
        let mut deliveries = [("refunds/create", &refund), ("orders/cancelled", &cancelled)];
        if !refund_first {
            deliveries.reverse();
        }
        for (topic, body) in deliveries {
            let v = ok(shopify(&app, SHOPIFY_SECRET, topic, body, false).await).await;
            assert_eq!(v["status"], "attributed", "{topic}: {v}");
        }
    }
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (t["revenue"].as_str(), t["net_revenue"].as_str()),
        (Some("3280.00"), Some("0.00"))
    );
}

per_store!(refunds_of_a_test_order_are_tests_too);
async fn refunds_of_a_test_order_are_tests_too(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let order = with(
        fixture("shopify-order"),
        json!({"test": true, "discount_codes": [{"code": "AMY10"}]}),
    );
    assert_eq!(
        ok(shopify(&app, SHOPIFY_SECRET, "orders/create", &order, false).await).await["status"],
        "test"
    );
    // Shopify marks a test order's refund transactions as tests; a refund that does not say
    // so is still one of a test order.
    let mut flagged = shopify_refund(901, 5812345678901, "300.00", "TWD");
    flagged["transactions"][0]["test"] = json!(true);
    let unflagged = shopify_refund(902, 5812345678901, "100.00", "TWD");
    for refund in [flagged, unflagged] {
        let v = ok(shopify(&app, SHOPIFY_SECRET, "refunds/create", &refund, false).await).await;
        // Of the test order's link, as the order is.
        assert_eq!(
            (v["status"].as_str(), v["link"].as_str()),
            (Some("test"), Some("amy-serum")),
            "{v}"
        );
    }
    assert!(
        app.get_ok("/api/v1/conversions?status=unattributed").await["conversions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.link_totals("amy-serum").await["refunds"], "0.00");
}

per_store!(coupons_match_in_any_case_of_any_alphabet);
async fn coupons_match_in_any_case_of_any_alphabet(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    platform_shop(&app, "mall", "woocommerce", WOO_SECRET).await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    for (code, coupon) in [("amy-ete", "ÉTÉ10"), ("amy-zima", "зима5")] {
        app.post_expect(
            "/api/v1/links",
            &json!({"campaign": "spring-sale", "kol": "amy", "code": code, "coupon": coupon}),
            201,
        )
        .await;
    }
    // Another case of a coupon is the same coupon.
    let r = app
        .post(
            "/api/v1/links",
            &json!({"campaign": "spring-sale", "kol": "amy", "coupon": "été10"}),
        )
        .await;
    assert_error(r, 409, "coupon_taken").await;
    // WooCommerce reports every code lower-cased; a Shopify customer types it as they like.
    let paid = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let order = with(
        fixture("woocommerce-order"),
        json!({"status": "processing", "date_paid_gmt": paid, "coupon_lines": [{"id": 1, "code": "été10"}]}),
    );
    let v = ok(woo(&app, WOO_SECRET, "order.created", &order).await).await;
    assert_eq!(
        (v["status"].as_str(), v["link"].as_str()),
        (Some("attributed"), Some("amy-ete"))
    );
    let order = with(fixture("shopify-order"), json!({"discount_codes": [{"code": "ЗИМА5"}]}));
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &order, false).await).await;
    assert_eq!(
        (v["status"].as_str(), v["link"].as_str()),
        (Some("attributed"), Some("amy-zima"))
    );
}

per_store!(a_coupon_kept_under_the_older_key_is_moved_to_the_new_one_at_start);
async fn a_coupon_kept_under_the_older_key_is_moved_to_the_new_one_at_start(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.post_expect(
        "/api/v1/links",
        &json!({"campaign": "spring-sale", "kol": "amy", "code": "amy-ete", "coupon": "été10"}),
        201,
    )
    .await;
    // As a version that folded only ASCII letters kept it: under "éTé10", not "ÉTÉ10".
    let app = with_coupons_rekeyed(app, &[("ÉTÉ10", "éTé10")]).await;
    // Moved at start: minting finds it taken in any case, and a shop's code finds its link.
    let r = app
        .post(
            "/api/v1/links",
            &json!({"campaign": "spring-sale", "kol": "amy", "coupon": "ÉTÉ10"}),
        )
        .await;
    assert_error(r, 409, "coupon_taken").await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let order = with(fixture("shopify-order"), json!({"discount_codes": [{"code": "Été10"}]}));
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &order, false).await).await;
    assert_eq!(
        (v["status"].as_str(), v["link"].as_str()),
        (Some("attributed"), Some("amy-ete"))
    );
    // A change of the coupon takes the moved key away with it.
    app.patch_ok("/api/v1/links/amy-ete", &json!({"coupon": "WINTER5"}))
        .await;
    let order = with(
        fixture("shopify-order"),
        json!({"id": 2, "discount_codes": [{"code": "été10"}]}),
    );
    let v = ok(shopify(&app, SHOPIFY_SECRET, "orders/paid", &order, false).await).await;
    assert_eq!(v["status"], "unattributed", "{v}");
}

per_store!(a_coupon_that_stays_under_its_older_key_still_finds_its_own_link);
/// An older version folded only ASCII letters, so `straße` and `STRASSE` could be two links'
/// coupons. Under today's rule they are one key: the one that cannot move stays under its
/// older key, and a shop's `straße` must still find its own link, not the other's (it went to
/// `STRASSE`'s link after an upgrade).
async fn a_coupon_that_stays_under_its_older_key_still_finds_its_own_link(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.post_expect(
        "/api/v1/links",
        &json!({"campaign": "spring-sale", "kol": "amy", "code": "strasse-a", "coupon": "straße"}),
        201,
    )
    .await;
    app.post_expect(
        "/api/v1/links",
        &json!({"campaign": "spring-sale", "kol": "amy", "code": "strasse-b", "coupon": "x2"}),
        201,
    )
    .await;
    // As an older version kept them: strasse-a's `straße` under "STRAßE", strasse-b's coupon
    // under "STRASSE" (its record still says x2: matching goes by the index). strasse-a's
    // cannot move to "STRASSE" at start.
    let app = with_coupons_rekeyed(app, &[("STRASSE", "STRAßE"), ("X2", "STRASSE")]).await;
    platform_shop(&app, "glow", "shopify", SHOPIFY_SECRET).await;
    let sale = |id: u64, code: &'static str| {
        let order = with(
            fixture("shopify-order"),
            json!({"id": id, "discount_codes": [{"code": code}]}),
        );
        let app = &app;
        async move {
            let v = ok(shopify(app, SHOPIFY_SECRET, "orders/paid", &order, false).await).await;
            (
                v["status"].as_str().map(str::to_owned),
                v["link"].as_str().map(str::to_owned),
            )
        }
    };
    let attributed = |link: &str| (Some("attributed".to_owned()), Some(link.to_owned()));
    for (id, code, link) in [
        (1, "straße", "strasse-a"),
        (2, "Straße", "strasse-a"),
        (3, "STRASSE", "strasse-b"),
    ] {
        assert_eq!(sale(id, code).await, attributed(link), "{code}");
    }
    // strasse-a's coupon changed, as the start's warning advises: `straße` is strasse-b's now
    // (today's rule), no longer the older key's link.
    app.patch_ok("/api/v1/links/strasse-a", &json!({"coupon": "NEWA"}))
        .await;
    assert_eq!(sale(4, "straße").await, attributed("strasse-b"));
    assert_eq!(sale(5, "NEWA").await, attributed("strasse-a"));
}

/// Moves the coupon index's entries (`from`, `to`) in the store, as an older version would have
/// kept them, and starts the app again.
async fn with_coupons_rekeyed(app: crate::helpers::TestApp, moves: &[(&str, &str)]) -> crate::helpers::TestApp {
    let moves: Vec<(String, String)> = moves.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect();
    let in_redb = moves.clone();
    restart_with_store_changed(
        app,
        async move |conn, prefix| {
            let key = format!("{prefix}:{{meta}}:coupons");
            for (from, to) in &moves {
                let code: String = redis::cmd("HGET").arg(&key).arg(from).query_async(conn).await.unwrap();
                let _: () = redis::cmd("HDEL").arg(&key).arg(from).query_async(conn).await.unwrap();
                let _: () = redis::cmd("HSET")
                    .arg(&key)
                    .arg(to)
                    .arg(code)
                    .query_async(conn)
                    .await
                    .unwrap();
            }
        },
        move |txn| {
            let coupons: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("coupons");
            let mut t = txn.open_table(coupons).unwrap();
            for (from, to) in &in_redb {
                let code = t.remove(from.as_str()).unwrap().unwrap().value().to_owned();
                t.insert(to.as_str(), code.as_str()).unwrap();
            }
        },
    )
    .await
}
