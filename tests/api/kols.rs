//! KOLs and their follower tiers.

use serde_json::json;

use crate::helpers::{assert_error, spawn_app, Backend};

per_store!(a_kol_gets_the_tier_of_its_follower_count);
async fn a_kol_gets_the_tier_of_its_follower_count(backend: Backend) {
    let app = spawn_app(backend).await;
    for (id, followers, tier) in [
        ("a", 9_999, "nano"),
        ("b", 10_000, "micro"),
        ("c", 50_000, "mid"),
        ("d", 500_000, "macro"),
        ("e", 1_000_000, "mega"),
    ] {
        assert_eq!(app.create_kol(id, followers).await["tier"], tier);
    }
    let k = app.get_ok("/api/v1/kols/b").await;
    assert_eq!(
        (k["platform"].as_str(), k["handle"].as_str()),
        (Some("instagram"), Some("@b"))
    );
}

per_store!(patching_followers_moves_the_tier);
async fn patching_followers_moves_the_tier(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_kol("amy", 42_000).await;
    let r = app.patch("/api/v1/kols/amy", &json!({"followers": 1_200_000})).await;
    assert_eq!(r.status(), 200);
    let k: serde_json::Value = r.json().await.unwrap();
    assert_eq!(k["tier"], "mega");
    assert_eq!(app.get_ok("/api/v1/kols/amy").await["tier"], "mega");
}

per_store!(invalid_kols_are_rejected_and_duplicates_conflict);
async fn invalid_kols_are_rejected_and_duplicates_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .post(
            "/api/v1/kols",
            &json!({"id": "amy", "name": "Amy", "platform": "myspace"}),
        )
        .await;
    assert_error(r, 400, "invalid_input").await;
    let r = app
        .post(
            "/api/v1/kols",
            &json!({"id": "amy", "name": "Amy", "platform": "tiktok", "followers": -5}),
        )
        .await;
    assert_error(r, 400, "invalid_input").await;
    app.create_kol("amy", 1).await;
    let r = app
        .post(
            "/api/v1/kols",
            &json!({"id": "amy", "name": "Amy", "platform": "tiktok"}),
        )
        .await;
    assert_error(r, 409, "already_exists").await;
    let list = app.get_ok("/api/v1/kols").await;
    assert_eq!(list["kols"].as_array().unwrap().len(), 1);
}

per_store!(names_that_reverse_or_hide_their_text_are_refused);
/// A name with a right-to-left override ("Amy \u{202e}gnp.exe", shown as "Amy exe.png") or
/// made of invisible characters alone was taken, and shown as written on the dashboard and a
/// KOL's page (security audit). Emoji joined by a zero-width joiner are still names.
async fn names_that_reverse_or_hide_their_text_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    for (i, bad) in [
        "Amy \u{202e}gnp.exe\u{202c}",
        "\u{2067}Amy\u{2069}",
        "\u{200b}\u{200b}\u{200b}",
        "\u{feff}",
        "\u{3164}",
    ]
    .into_iter()
    .enumerate()
    {
        let r = app
            .post(
                "/api/v1/kols",
                &json!({"id": format!("k{i}"), "name": bad, "platform": "tiktok"}),
            )
            .await;
        assert_error(r, 400, "invalid_input").await;
        let r = app
            .post(
                "/api/v1/kols",
                &json!({"id": format!("h{i}"), "name": "Amy", "handle": bad, "platform": "tiktok"}),
            )
            .await;
        assert_error(r, 400, "invalid_input").await;
        let r = app
            .post("/api/v1/campaigns", &json!({"id": format!("c{i}"), "name": bad}))
            .await;
        assert_error(r, 400, "invalid_input").await;
    }
    let v = app
        .post_expect(
            "/api/v1/kols",
            &json!({"id": "amy", "name": "Amy \u{1f469}\u{200d}\u{1f4bb}", "platform": "tiktok"}),
            201,
        )
        .await;
    assert_eq!(v["name"], "Amy \u{1f469}\u{200d}\u{1f4bb}");
}
