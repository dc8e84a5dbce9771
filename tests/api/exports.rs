//! Exports: raw clicks in order, JSON and CSV.

use serde_json::Value;

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
}
