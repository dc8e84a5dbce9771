//! Time on every store, through the app's clock: UTC day boundaries, expiry.

use chrono::{DateTime, TimeDelta, Utc};
use kolink::clock::ManualClock;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app_with_clock, Backend};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

per_store!(clicks_across_midnight_count_on_their_own_utc_day);
/// One visitor taps twice just before midnight UTC and once just after: two clicks and one
/// unique visitor on the first day, one and one on the second.
async fn clicks_across_midnight_count_on_their_own_utc_day(backend: Backend) {
    let clock = ManualClock::at(at("2026-11-20T23:59:00Z"));
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    app.tap("amy-serum").await;
    clock.advance(TimeDelta::seconds(59));
    app.tap("amy-serum").await;
    clock.advance(TimeDelta::seconds(2));
    app.tap("amy-serum").await;

    let s = app
        .get_ok("/api/v1/links/amy-serum/stats?from=2026-11-20&to=2026-11-21")
        .await;
    let days: Vec<(u64, u64)> = s["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["clicks"].as_u64().unwrap(), p["unique_clicks"].as_u64().unwrap()))
        .collect();
    assert_eq!(days, [(2, 1), (1, 1)]);
    assert_eq!(s["totals"]["clicks"], 3);
    assert_eq!(s["totals"]["unique_clicks"], 2);
    let hours = app
        .get_ok("/api/v1/links/amy-serum/stats?from=2026-11-20&to=2026-11-20&interval=hour")
        .await;
    assert_eq!(hours["series"][23]["clicks"], 2);
    assert_eq!(hours["series"][23]["t"], "2026-11-20T23:00:00Z");
}

per_store!(a_link_expires_when_its_time_comes);
async fn a_link_expires_when_its_time_comes(backend: Backend) {
    let clock = ManualClock::at(at("2026-11-20T12:00:00Z"));
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    let r = app
        .patch(
            "/api/v1/links/amy-serum",
            &json!({"expires_at": "2026-11-21T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.tap("amy-serum").await.status(), 302);
    clock.set(at("2026-11-21T00:00:00Z"));
    // The redirect cache holds the link, not the verdict: expiry applies at once.
    assert_error(app.tap("amy-serum").await, 410, "link_gone").await;
    assert_eq!(app.link_totals("amy-serum").await["clicks"], 1);
}
