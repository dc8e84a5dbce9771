//! Failures that are not the client's, told apart: a cursor the store never minted is `400`,
//! data the store cannot read is `500` (logged, no details), a store that does not answer is
//! `503` with `Retry-After`.

use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{assert_error, restart_with_store_changed, spawn_app, Backend};

per_store!(a_crafted_cursor_is_invalid_input_on_every_list);
async fn a_crafted_cursor_is_invalid_input_on_every_list(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    // Well-formed text a client could craft: base64url of "1-2", of three bytes, of 21 bytes.
    for cursor in ["MS0y", "AAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "%%%"] {
        for list in [
            "/api/v1/campaigns",
            "/api/v1/kols",
            "/api/v1/shops",
            "/api/v1/links",
            "/api/v1/links?campaign=spring-sale",
            "/api/v1/links?campaign=spring-sale&kol=amy",
            "/api/v1/links?kol=amy",
            "/api/v1/conversions",
            "/api/v1/conversions?status=attributed",
        ] {
            let sep = if list.contains('?') { '&' } else { '?' };
            let r = app.get(&format!("{list}{sep}cursor={cursor}")).await;
            let body = assert_error(r, 400, "invalid_input").await;
            assert!(
                body["error"]["message"].as_str().unwrap().contains("cursor"),
                "{list} {cursor}: {body}"
            );
        }
    }
}

per_store!(a_cursor_handed_out_pages_on);
async fn a_cursor_handed_out_pages_on(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..3 {
        app.create_kol(&format!("k{i}"), 10).await;
    }
    let first = app.get_ok("/api/v1/kols?limit=2").await;
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = app.get_ok(&format!("/api/v1/kols?limit=2&cursor={cursor}")).await;
    assert_eq!(second["kols"][0]["id"], "k0");
    assert_eq!(second["next_cursor"], json!(null));
}

per_store!(a_cursor_of_one_list_is_refused_by_another);
/// A cursor is a position in the list that handed it out: sent to another list, or to the same
/// list with other filters, it would start a page at an unrelated place, so it is `400`. The
/// page size may change between pages.
async fn a_cursor_of_one_list_is_refused_by_another(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    for i in 0..3 {
        app.create_kol(&format!("k{i}"), 10).await;
        app.create_link(json!({"campaign": "spring-sale", "kol": format!("k{i}"), "code": format!("k{i}-1")}))
            .await;
    }
    let kols = app.get_ok("/api/v1/kols?limit=2").await;
    let kols_cursor = kols["next_cursor"].as_str().expect("a next page of KOLs");
    let links = app.get_ok("/api/v1/links?campaign=spring-sale&limit=2").await;
    let links_cursor = links["next_cursor"].as_str().expect("a next page of links");
    for (list, cursor) in [
        ("/api/v1/campaigns?", kols_cursor),
        ("/api/v1/shops?", kols_cursor),
        ("/api/v1/links?", kols_cursor),
        ("/api/v1/conversions?", kols_cursor),
        ("/api/v1/kols?", links_cursor),
        ("/api/v1/links?", links_cursor),
        ("/api/v1/links?kol=k1&", links_cursor),
        ("/api/v1/links?campaign=other&", links_cursor),
        ("/api/v1/links?campaign=spring-sale&kol=k1&", links_cursor),
    ] {
        let r = app.get(&format!("{list}cursor={cursor}")).await;
        let body = assert_error(r, 400, "invalid_input").await;
        assert!(
            body["error"]["message"].as_str().unwrap().contains("cursor"),
            "{list} {cursor}: {body}"
        );
    }
    // The lists that handed them out page on, with another page size too.
    let next = app.get_ok(&format!("/api/v1/kols?limit=10&cursor={kols_cursor}")).await;
    assert!(!next["kols"].as_array().unwrap().is_empty(), "{next}");
    let next = app
        .get_ok(&format!(
            "/api/v1/links?limit=10&campaign=spring-sale&cursor={links_cursor}"
        ))
        .await;
    assert!(!next["links"].as_array().unwrap().is_empty(), "{next}");
}

per_store!(a_stored_record_that_cannot_be_read_is_an_internal_error);
/// The link's stored record is replaced by bytes kolink never wrote: that is a bug or a
/// damaged store, not something to retry, so `500 internal` without details; everything else
/// keeps working.
async fn a_stored_record_that_cannot_be_read_is_an_internal_error(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.create_kol("ben", 1).await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "ben", "code": "ben-ok"}))
        .await;
    let app = restart_with_store_changed(
        app,
        async |conn, prefix| {
            let key = format!("{prefix}:{{meta}}:links");
            let _: () = conn.hset(key, "amy-serum", "{not json").await.unwrap();
        },
        |txn| {
            let links: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("links");
            txn.open_table(links).unwrap().insert("amy-serum", "{not json").unwrap();
        },
    )
    .await;
    let body = assert_error(app.get("/api/v1/links/amy-serum").await, 500, "internal").await;
    assert!(
        !body["error"]["message"].as_str().unwrap().contains("json"),
        "no details: {body}"
    );
    assert_eq!(app.tap("amy-serum").await.status(), 500);
    assert_eq!(app.get("/api/v1/links/ben-ok").await.status(), 200);
    assert_eq!(app.tap("ben-ok").await.status(), 302);
    assert_eq!(app.api.get(app.url("/readyz")).send().await.unwrap().status(), 200);
}

/// Redis stopped: the API, the readiness check and the redirect answer `503` with
/// `Retry-After`; the process stays alive. (The embedded store's outage is a full disk, which
/// the fault tests cover.)
#[tokio::test]
async fn an_unavailable_store_is_503_with_retry_after() {
    let mut app = spawn_app(Backend::Redis).await;
    app.seed().await;
    app.redis.take(); // stops redis-server
    for r in [
        app.get("/api/v1/campaigns").await,
        app.get("/api/v1/links/amy-serum").await,
        app.get("/api/v1/campaigns/spring-sale/stats").await,
        app.tap("not-cached").await,
    ] {
        assert!(r.headers().get("retry-after").is_some(), "{:?}", r.headers());
        assert_error(r, 503, "storage_unavailable").await;
    }
    let r = app.api.get(app.url("/readyz")).send().await.unwrap();
    assert_error(r, 503, "storage_unavailable").await;
    assert_eq!(app.api.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

/// A change sent while Redis is frozen is answered `503` once kolink stops waiting, but Redis
/// has the command and carries it out when it wakes: a retry then finds it (`409`). The `503`
/// says so, rather than only "retry", whose answer would otherwise read as someone else's.
#[tokio::test]
async fn a_change_answered_503_by_a_frozen_redis_may_still_be_saved_and_says_so() {
    let app = spawn_app(Backend::Redis).await;
    app.seed().await;
    let redis = app.redis.as_ref().unwrap();
    redis.pause();
    let kol = json!({"id": "ben", "name": "Ben", "platform": "instagram", "followers": 800});
    let body = assert_error(app.post("/api/v1/kols", &kol).await, 503, "storage_unavailable").await;
    redis.resume();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("409"), "{message}");
    assert_eq!(app.get_ok("/api/v1/kols/ben").await["name"], "Ben");
    assert_error(app.post("/api/v1/kols", &kol).await, 409, "already_exists").await;
}
