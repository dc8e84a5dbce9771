//! Links: minting (one, and one per KOL), listing, patching.

use kolink::clock::ManualClock;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with_clock, Backend};

per_store!(a_link_carries_merged_utm_in_its_target_url);
async fn a_link_carries_merged_utm_in_its_target_url(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_campaign("spring-sale").await;
    app.create_kol("amy", 42_000).await;
    let l = app
        .create_link(
            json!({"campaign": "spring-sale", "kol": "amy", "destination": "https://shop.example.com/serum?ref=home",
                            "cost": "5000", "coupon": "AMY10", "code": "amy-serum", "tags": ["reel", "A"],
                            "utm": {"content": "amy-reel"}, "expires_at": null}),
        )
        .await;
    assert_eq!(l["code"], "amy-serum");
    assert_eq!(l["short_url"], app.url("/amy-serum"));
    assert_eq!(
        l["target_url"],
        "https://shop.example.com/serum?ref=home&utm_source=instagram&utm_medium=kol&utm_campaign=spring-sale&utm_content=amy-reel"
    );
    assert_eq!(
        l["utm"],
        json!({"source": "instagram", "medium": "kol", "campaign": "spring-sale", "content": "amy-reel", "term": null})
    );
    assert_eq!(l["cost"], "5000.00");
    assert_eq!(l["coupon"], "AMY10");
    assert_eq!(l["tags"], json!(["reel", "A"]));
    assert_eq!(l["status"], "active");
    assert_eq!(l["expires_at"], json!(null));
    assert!(l["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        app.get_ok("/api/v1/links/amy-serum").await["target_url"],
        l["target_url"]
    );
}

per_store!(campaign_utm_overrides_defaults_and_the_destination_defaults_to_the_campaigns);
async fn campaign_utm_overrides_defaults_and_the_destination_defaults_to_the_campaigns(backend: Backend) {
    let app = spawn_app(backend).await;
    app.post_expect(
        "/api/v1/campaigns",
        &json!({"id": "c", "name": "C", "destination": "https://s.example/x#top", "utm": {"medium": "influencer"}}),
        201,
    )
    .await;
    app.create_kol("ben", 800).await;
    let l = app.create_link(json!({"campaign": "c", "kol": "ben"})).await;
    assert_eq!(
        l["target_url"],
        "https://s.example/x?utm_source=instagram&utm_medium=influencer&utm_campaign=c&utm_content=ben#top"
    );
    let code = l["code"].as_str().unwrap();
    assert_eq!(code.len(), 7, "generated codes are 7 characters");
    assert_eq!(l["cost"], "0.00");
}

per_store!(links_need_an_existing_campaign_and_kol);
async fn links_need_an_existing_campaign_and_kol(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_campaign("c").await;
    app.create_kol("amy", 1).await;
    assert_error(
        app.post("/api/v1/links", &json!({"campaign": "nope", "kol": "amy"}))
            .await,
        400,
        "unknown_campaign",
    )
    .await;
    assert_error(
        app.post("/api/v1/links", &json!({"campaign": "c", "kol": "nope"}))
            .await,
        400,
        "unknown_kol",
    )
    .await;
}

per_store!(bad_link_fields_are_rejected);
async fn bad_link_fields_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_campaign("c").await;
    app.create_kol("amy", 1).await;
    let base = json!({"campaign": "c", "kol": "amy"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, status, code) in [
        (
            with("destination", json!("javascript:alert(1)")),
            400,
            "invalid_destination",
        ),
        (
            with("destination", json!("https://user:pw@shop.example.com/")),
            400,
            "invalid_destination",
        ),
        // A slash too many: the URL parser would have sent people to the host "p".
        (with("destination", json!("https:///p")), 400, "invalid_destination"),
        (
            with("destination", json!("https://shop.example.com/a\r\nb")),
            400,
            "invalid_destination",
        ),
        (
            with(
                "destination",
                json!(format!("https://shop.example.com/{}", "a".repeat(2100))),
            ),
            400,
            "invalid_destination",
        ),
        (with("code", json!("ab")), 400, "invalid_code"),
        (with("code", json!("a/b/c")), 400, "invalid_code"),
        (with("code", json!("api")), 400, "reserved_code"),
        (with("code", json!("healthz")), 400, "reserved_code"),
        (with("cost", json!("12.345")), 400, "invalid_input"),
        (with("cost", json!(-5)), 400, "invalid_input"),
        (with("coupon", json!("has space")), 400, "invalid_input"),
        (with("expires_at", json!("2001-01-01T00:00:00Z")), 400, "invalid_input"),
        (with("expires_at", json!("tomorrow")), 400, "invalid_input"),
        (with("utm", json!({"source": "x\ny"})), 400, "invalid_input"),
        (with("destinaton", json!("https://typo.example/")), 400, "invalid_input"),
        (with("campaign", json!(5)), 400, "invalid_input"),
        (json!({"kol": "amy"}), 400, "invalid_input"),
    ] {
        assert_error(app.post("/api/v1/links", &body).await, status, code).await;
    }
    assert_eq!(app.get_ok("/api/v1/links").await["links"], json!([]));
}

per_store!(taken_codes_and_coupons_conflict);
async fn taken_codes_and_coupons_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.create_kol("ben", 1).await;
    let r = app
        .post(
            "/api/v1/links",
            &json!({"campaign": "spring-sale", "kol": "ben", "code": "amy-serum"}),
        )
        .await;
    assert_error(r, 409, "code_taken").await;
    let r = app
        .post(
            "/api/v1/links",
            &json!({"campaign": "spring-sale", "kol": "ben", "coupon": "amy10"}),
        )
        .await;
    assert_error(r, 409, "coupon_taken").await;
    assert_eq!(app.get_ok("/api/v1/links").await["links"].as_array().unwrap().len(), 1);
}

per_store!(bulk_minting_creates_one_link_per_kol);
async fn bulk_minting_creates_one_link_per_kol(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_campaign("spring").await;
    app.create_kol("amy", 42_000).await;
    app.create_kol("ben", 800).await;
    let v = app
        .post_expect(
            "/api/v1/campaigns/spring/links",
            &json!({"destination": "https://shop.example.com/spring",
                    "kols": [{"kol": "amy", "cost": "5000", "coupon": "AMY10"}, {"kol": "ben", "cost": 800}]}),
            201,
        )
        .await;
    let links = v["links"].as_array().unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(links[0]["kol"], "amy");
    assert_eq!(links[0]["cost"], "5000.00");
    assert_eq!(links[1]["kol"], "ben");
    assert_eq!(links[1]["cost"], "800.00");
    assert!(links[1]["target_url"].as_str().unwrap().contains("utm_content=ben"));
    assert_ne!(links[0]["code"], links[1]["code"]);
}

per_store!(bulk_minting_with_one_bad_entry_creates_nothing);
async fn bulk_minting_with_one_bad_entry_creates_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_campaign("spring").await;
    app.create_kol("amy", 42_000).await;
    app.create_kol("ben", 800).await;
    for (kols, status, code) in [
        (json!([{"kol": "amy"}, {"kol": "nobody"}]), 400, "unknown_kol"),
        (
            json!([{"kol": "amy"}, {"kol": "ben", "cost": "1.234"}]),
            400,
            "invalid_input",
        ),
        (
            json!([{"kol": "amy", "coupon": "X1"}, {"kol": "ben", "coupon": "x1"}]),
            400,
            "invalid_input",
        ),
        (
            json!([{"kol": "amy", "code": "same"}, {"kol": "ben", "code": "same"}]),
            400,
            "invalid_input",
        ),
        (
            json!([{"kol": "amy"}, {"kol": "ben", "destination": "ftp://x"}]),
            400,
            "invalid_destination",
        ),
    ] {
        let r = app.post("/api/v1/campaigns/spring/links", &json!({"kols": kols})).await;
        let body = assert_error(r, status, code).await;
        assert!(
            body["error"]["message"].as_str().unwrap().starts_with("kols[1]"),
            "{body}"
        );
    }
    // A conflict with an existing link fails the whole call too.
    app.create_link(json!({"campaign": "spring", "kol": "amy", "code": "taken"}))
        .await;
    let r = app
        .post(
            "/api/v1/campaigns/spring/links",
            &json!({"kols": [{"kol": "amy"}, {"kol": "ben", "code": "taken"}]}),
        )
        .await;
    // A taken code fails the call like any bad entry: 400, naming the entry.
    let body = assert_error(r, 400, "invalid_input").await;
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("kols[1]: "),
        "{body}"
    );
    let links = app.get_ok("/api/v1/links").await;
    assert_eq!(links["links"].as_array().unwrap().len(), 1, "{links}");
}

per_store!(links_list_newest_first_filtered_by_campaign_and_kol);
async fn links_list_newest_first_filtered_by_campaign_and_kol(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_campaign("c1").await;
    app.create_campaign("c2").await;
    app.create_kol("amy", 1).await;
    app.create_kol("ben", 1).await;
    for (c, k, code) in [
        ("c1", "amy", "l-1"),
        ("c1", "ben", "l-2"),
        ("c2", "amy", "l-3"),
        ("c1", "amy", "l-4"),
    ] {
        app.create_link(json!({"campaign": c, "kol": k, "code": code})).await;
    }
    let codes = |v: &Value| -> Vec<String> {
        v["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(codes(&app.get_ok("/api/v1/links").await), ["l-4", "l-3", "l-2", "l-1"]);
    assert_eq!(
        codes(&app.get_ok("/api/v1/links?campaign=c1").await),
        ["l-4", "l-2", "l-1"]
    );
    assert_eq!(codes(&app.get_ok("/api/v1/links?kol=amy").await), ["l-4", "l-3", "l-1"]);
    assert_eq!(
        codes(&app.get_ok("/api/v1/links?campaign=c1&kol=amy").await),
        ["l-4", "l-1"]
    );
    let p1 = app.get_ok("/api/v1/links?campaign=c1&limit=2").await;
    assert_eq!(codes(&p1), ["l-4", "l-2"]);
    let p2 = app
        .get_ok(&format!(
            "/api/v1/links?campaign=c1&limit=2&cursor={}",
            p1["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(codes(&p2), ["l-1"]);
}

per_store!(patching_a_link_updates_target_coupon_and_status);
async fn patching_a_link_updates_target_coupon_and_status(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let r = app
        .patch("/api/v1/links/amy-serum", &json!({"destination": "https://shop.example.com/new", "coupon": "AMY20", "cost": 6000, "status": "disabled"}))
        .await;
    assert_eq!(r.status(), 200);
    let l: Value = r.json().await.unwrap();
    assert!(l["target_url"]
        .as_str()
        .unwrap()
        .starts_with("https://shop.example.com/new?utm_source=instagram"));
    assert_eq!(
        (l["coupon"].as_str(), l["cost"].as_str(), l["status"].as_str()),
        (Some("AMY20"), Some("6000.00"), Some("disabled"))
    );
    assert_eq!(l["live"], false, "a stopped link does not redirect");
    // The old coupon is free again, the new one is taken.
    app.create_kol("ben", 1).await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "ben", "coupon": "AMY10"}))
        .await;
    let r = app
        .post(
            "/api/v1/links",
            &json!({"campaign": "spring-sale", "kol": "ben", "coupon": "AMY20"}),
        )
        .await;
    assert_error(r, 409, "coupon_taken").await;
    let r = app.patch("/api/v1/links/amy-serum", &json!({"coupon": "AMY10"})).await;
    assert_error(r, 409, "coupon_taken").await;
    assert_error(
        app.patch("/api/v1/links/amy-serum", &json!({"status": "deleted"}))
            .await,
        400,
        "invalid_input",
    )
    .await;
    assert_error(
        app.patch("/api/v1/links/nope", &json!({"status": "active"})).await,
        404,
        "not_found",
    )
    .await;
}

per_store!(expiry_times_are_kept_to_the_second_as_every_time_kolink_writes);
/// Every time kolink answers is whole seconds; an expiry sent with a fraction or an offset came
/// back as sent (`…00.123456Z`).
async fn expiry_times_are_kept_to_the_second_as_every_time_kolink_writes(backend: Backend) {
    let clock = ManualClock::at("2026-11-20T10:00:00Z".parse().unwrap());
    let app = spawn_app_with_clock(backend, clock).await;
    app.seed().await;
    let l = app
        .create_link(json!({"campaign": "spring-sale", "kol": "amy", "code": "amy-soon",
                            "expires_at": "2027-01-01T00:00:00.123456Z"}))
        .await;
    assert_eq!(l["expires_at"], "2027-01-01T00:00:00Z");
    let l = app
        .patch_ok(
            "/api/v1/links/amy-soon",
            &json!({"expires_at": "2027-02-01T18:00:00.5+08:00"}),
        )
        .await;
    assert_eq!(l["expires_at"], "2027-02-01T10:00:00Z");
    assert_eq!(
        app.get_ok("/api/v1/links/amy-soon").await["expires_at"],
        "2027-02-01T10:00:00Z"
    );
    let s = app
        .post_expect(
            "/api/v1/kols/amy/shares",
            &json!({"expires_at": "2027-03-01T00:00:00.999Z"}),
            201,
        )
        .await;
    assert_eq!(s["expires_at"], "2027-03-01T00:00:00Z");
}

per_store!(a_patch_cannot_end_a_link_by_a_mistyped_past_expiry);
/// A past `expires_at` in a `PATCH` (2025 typed for 2027) would answer every tap of a live
/// link `410` at once, its clicks lost; it is refused, as when minting (`status: disabled` is
/// the way to stop a link). A link that has expired keeps its expiry through other changes,
/// and can be given a new one.
async fn a_patch_cannot_end_a_link_by_a_mistyped_past_expiry(backend: Backend) {
    let clock = ManualClock::at("2026-11-20T10:00:00Z".parse().unwrap());
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    let r = app
        .patch(
            "/api/v1/links/amy-serum",
            &json!({"expires_at": "2025-12-31T00:00:00Z", "tags": ["x"]}),
        )
        .await;
    let body = assert_error(r, 400, "invalid_input").await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("expires_at"),
        "{body}"
    );
    let link = app.get_ok("/api/v1/links/amy-serum").await;
    assert_eq!((&link["expires_at"], &link["tags"]), (&json!(null), &json!([])));
    assert_eq!(app.tap("amy-serum").await.status(), 302);

    // An expiry still ahead is taken; once passed, the link is gone and the same value may be
    // sent back with other changes (a client that writes the whole link back).
    let end = "2026-11-21T00:00:00Z";
    let link = app
        .patch_ok("/api/v1/links/amy-serum", &json!({"expires_at": end}))
        .await;
    assert_eq!(link["expires_at"], end);
    assert_eq!(link["live"], true);
    clock.set("2026-11-22T00:00:00Z".parse().unwrap());
    assert_eq!(app.tap("amy-serum").await.status(), 410);
    // Still `active` (its status is what a PATCH sets), and no longer live: it says so.
    let link = app.get_ok("/api/v1/links/amy-serum").await;
    assert_eq!((&link["status"], &link["live"]), (&json!("active"), &json!(false)));
    let link = app
        .patch_ok(
            "/api/v1/links/amy-serum",
            &json!({"expires_at": end, "tags": ["ended"]}),
        )
        .await;
    assert_eq!(link["tags"], json!(["ended"]));
    let r = app
        .patch(
            "/api/v1/links/amy-serum",
            &json!({"expires_at": "2026-11-21T12:00:00Z"}),
        )
        .await;
    assert_error(r, 400, "invalid_input").await;
    let link = app
        .patch_ok(
            "/api/v1/links/amy-serum",
            &json!({"expires_at": "2026-12-31T00:00:00Z"}),
        )
        .await;
    assert_eq!(link["status"], "active");
    assert_eq!(app.tap("amy-serum").await.status(), 302);
}
