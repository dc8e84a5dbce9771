//! Campaigns.

use serde_json::json;

use crate::helpers::{assert_error, restart_with_store_changed, spawn_app, Backend, TestApp};

per_store!(creating_a_campaign_answers_201_with_defaults_filled_in);
async fn creating_a_campaign_answers_201_with_defaults_filled_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = app
        .post_expect(
            "/api/v1/campaigns",
            &json!({"id": "spring-sale", "name": "Spring Sale 2026"}),
            201,
        )
        .await;
    assert_eq!(c["id"], "spring-sale");
    assert_eq!(c["name"], "Spring Sale 2026");
    assert_eq!(c["goal_event"], "purchase");
    assert_eq!(c["attribution_window_days"], 30);
    assert_eq!(c["currency"], "TWD");
    assert_eq!(c["destination"], json!(null));
    assert_eq!(
        app.get_ok("/api/v1/campaigns/spring-sale").await["name"],
        "Spring Sale 2026"
    );
}

per_store!(the_same_campaign_id_twice_is_a_conflict);
async fn the_same_campaign_id_twice_is_a_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_campaign("spring").await;
    let r = app
        .post("/api/v1/campaigns", &json!({"id": "spring", "name": "Again"}))
        .await;
    assert_error(r, 409, "already_exists").await;
    assert_eq!(app.get_ok("/api/v1/campaigns/spring").await["name"], "Campaign spring");
}

per_store!(invalid_campaign_fields_are_rejected);
async fn invalid_campaign_fields_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    for (body, code) in [
        (json!({"id": "Spring Sale", "name": "x"}), "invalid_input"),
        (json!({"id": "ok", "name": ""}), "invalid_input"),
        (json!({"id": "ok", "name": "x", "currency": "dollars"}), "invalid_input"),
        (
            json!({"id": "ok", "name": "x", "goal_event": "refund"}),
            "invalid_input",
        ),
        (
            json!({"id": "ok", "name": "x", "attribution_window_days": 0}),
            "invalid_input",
        ),
        (
            json!({"id": "ok", "name": "x", "destination": "javascript:alert(1)"}),
            "invalid_destination",
        ),
        (
            json!({"id": "ok", "name": "x", "utm": {"source": "a\r\nb"}}),
            "invalid_input",
        ),
    ] {
        assert_error(app.post("/api/v1/campaigns", &body).await, 400, code).await;
    }
    assert_eq!(app.get_ok("/api/v1/campaigns").await["campaigns"], json!([]));
}

per_store!(campaigns_list_newest_first_with_a_cursor);
async fn campaigns_list_newest_first_with_a_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    for id in ["c1", "c2", "c3"] {
        app.create_campaign(id).await;
    }
    let page = app.get_ok("/api/v1/campaigns?limit=2").await;
    let ids: Vec<&str> = page["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c3", "c2"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let page = app.get_ok(&format!("/api/v1/campaigns?limit=2&cursor={cursor}")).await;
    assert_eq!(page["campaigns"][0]["id"], "c1");
    assert_eq!(page["campaigns"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_cursor"], json!(null));
}

per_store!(patching_a_campaign_changes_only_what_is_sent);
async fn patching_a_campaign_changes_only_what_is_sent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_campaign("spring").await;
    let r = app
        .patch(
            "/api/v1/campaigns/spring",
            &json!({"name": "Spring!", "goal_event": "signup"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let c: serde_json::Value = r.json().await.unwrap();
    assert_eq!(c["name"], "Spring!");
    assert_eq!(c["goal_event"], "signup");
    assert_eq!(c["destination"], "https://shop.example.com/spring");
    let r = app
        .patch("/api/v1/campaigns/spring", &json!({"destination": null}))
        .await;
    let c: serde_json::Value = r.json().await.unwrap();
    assert_eq!(c["destination"], json!(null));
    assert_error(
        app.patch("/api/v1/campaigns/nope", &json!({"name": "x"})).await,
        404,
        "not_found",
    )
    .await;
    assert_error(app.get("/api/v1/campaigns/nope").await, 404, "not_found").await;
}

per_store!(a_campaign_currency_must_be_one_iso_4217_lists);
/// A typo in a campaign's currency ("TWN") is refused where it is typed: taken, it would turn
/// every purchase into a `currency_mismatch`. A shop's delivery in a currency the list lacks is
/// still stored (as a mismatch), never refused: nothing a shop sends is lost.
async fn a_campaign_currency_must_be_one_iso_4217_lists(backend: Backend) {
    let app = spawn_app(backend).await;
    for typo in ["TWN", "ZZZ", "usb"] {
        let r = app
            .post(
                "/api/v1/campaigns",
                &json!({"id": "typo", "name": "Typo", "currency": typo}),
            )
            .await;
        let body = assert_error(r, 400, "invalid_input").await;
        assert!(
            body["error"]["message"].as_str().unwrap().contains("ISO 4217"),
            "{body}"
        );
    }
    let c = app
        .post_expect(
            "/api/v1/campaigns",
            &json!({"id": "yen", "name": "Yen", "currency": "jpy"}),
            201,
        )
        .await;
    assert_eq!(c["currency"], "JPY");
    let r = app.patch("/api/v1/campaigns/yen", &json!({"currency": "TWN"})).await;
    assert_error(r, 400, "invalid_input").await;
    assert_eq!(app.get_ok("/api/v1/campaigns/yen").await["currency"], "JPY");

    app.seed().await;
    let secret = app.create_shop("acme").await;
    let v = app
        .webhook_ok(
            "acme",
            &secret,
            &json!({"order_id": "1", "event": "purchase", "amount": "1", "currency": "XBT", "coupon": "AMY10"}),
        )
        .await;
    assert_eq!(v["status"], "currency_mismatch");
}

per_store!(a_campaign_of_a_currency_off_the_list_can_still_be_changed);
/// A campaign stored with a currency the ISO list lacks (made before the list was checked) can
/// still be changed by a client that sends the whole campaign back, its currency unchanged.
async fn a_campaign_of_a_currency_off_the_list_can_still_be_changed(backend: Backend) {
    let app = spawn_app(backend).await;
    app.post_expect(
        "/api/v1/campaigns",
        &json!({"id": "old", "name": "Old", "currency": "TWD"}),
        201,
    )
    .await;
    let app = with_stored_currency(app, "old", "XBT").await;
    let r = app
        .patch(
            "/api/v1/campaigns/old",
            &json!({"name": "Old, renamed", "currency": "XBT"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let c: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (c["name"].as_str(), c["currency"].as_str()),
        (Some("Old, renamed"), Some("XBT"))
    );
    // A change to another code off the list is still refused.
    let r = app.patch("/api/v1/campaigns/old", &json!({"currency": "XBU"})).await;
    assert_error(r, 400, "invalid_input").await;
}

/// Rewrites campaign `id`'s stored record with `currency`, as an older kolink could have
/// written it.
async fn with_stored_currency(app: TestApp, id: &str, currency: &str) -> TestApp {
    let replaced = |json: &str| json.replace("\"TWD\"", &format!("\"{currency}\""));
    restart_with_store_changed(
        app,
        async |conn, prefix| {
            let key = format!("{prefix}:{{meta}}:campaigns");
            let json: String = redis::cmd("HGET").arg(&key).arg(id).query_async(conn).await.unwrap();
            let _: () = redis::cmd("HSET")
                .arg(&key)
                .arg(id)
                .arg(replaced(&json))
                .query_async(conn)
                .await
                .unwrap();
        },
        |txn| {
            let records: redb::TableDefinition<(&str, &str), &str> = redb::TableDefinition::new("records");
            let mut t = txn.open_table(records).unwrap();
            let json = redb::ReadableTable::get(&t, ("campaigns", id))
                .unwrap()
                .unwrap()
                .value()
                .to_owned();
            t.insert(("campaigns", id), replaced(&json).as_str()).unwrap();
        },
    )
    .await
}
