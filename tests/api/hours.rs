//! Hourly counters are kept for `hourly_retention_days` (90 by default); days stay whole.

use std::time::Duration;

use chrono::TimeDelta;
use kolink::clock::ManualClock;
use serde_json::json;

use crate::helpers::{
    assert_error, at, signed, spawn_app_keeping_hours, spawn_app_with_clock, start_with_clock, Backend, TestApp,
};

/// A figure of `/metrics`, once its line is there.
async fn metric(app: &TestApp, name: &str) -> Option<f64> {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until the hourly prune of this start has kept hours from `day` on.
async fn pruned_through(app: &TestApp, day: &str) {
    let want = at(&format!("{day}T00:00:00Z")).timestamp() as f64;
    for _ in 0..200 {
        if metric(app, "kolink_hours_kept_from_seconds").await == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the hourly prune did not finish: hours are not kept from {day}");
}

per_store!(hours_past_their_retention_are_pruned_and_their_days_stay_whole);
/// Two taps and a purchase on 1 August, one tap on 20 November: after the restart of
/// 20 November the hours of August are gone (three fields: clicks, purchases, revenue; and a
/// tap of another link's) and
/// every daily figure of August is still there, breakdowns too (but by hour of day). A refund of the August purchase
/// that comes later still counts on its day.
async fn hours_past_their_retention_are_pruned_and_their_days_stay_whole(backend: Backend) {
    let clock = ManualClock::at(at("2026-08-01T10:00:00Z"));
    // Every hour kept until the restart: this run prunes nothing, whenever it looks.
    let app = spawn_app_keeping_hours(backend, clock.clone(), 0).await;
    app.seed().await;
    // ben-1 is tapped on 1 August only: a range of that day holds every day it has.
    app.create_kol("ben", 800).await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "ben", "code": "ben-1"}))
        .await;
    app.tap("ben-1").await;
    let secret = app.create_shop("acme").await;
    let cid = app.click_id("amy-serum").await;
    app.tap("amy-serum").await;
    let purchase = json!({"order_id": "1001", "event": "purchase", "amount": "1280.00",
        "currency": "TWD", "click_id": cid, "occurred_at": "2026-08-01T10:30:00Z"});
    assert_eq!(signed(&app, &clock, &secret, purchase).await["status"], "attributed");
    let august = "/api/v1/links/amy-serum/stats?from=2026-08-01&to=2026-08-01";
    let before = app.get_ok(august).await;
    let ben_august = "/api/v1/links/ben-1/stats?from=2026-08-01&to=2026-08-01";
    let ben_before = app.get_ok(ben_august).await;

    clock.set(at("2026-11-20T12:00:00Z"));
    app.tap("amy-serum").await;
    assert_eq!(metric(&app, "kolink_hourly_fields_pruned_total").await, Some(0.0));
    let (backing, mut settings) = app.stop().await;
    settings.hourly_retention_days = 90;
    let app = start_with_clock(backing, settings, clock.clone()).await;
    // 90 days, 20 November included, start on 23 August.
    pruned_through(&app, "2026-08-23").await;

    // amy's clicks, purchases and revenue, and ben's clicks.
    assert_eq!(metric(&app, "kolink_hourly_fields_pruned_total").await, Some(4.0));
    let mut after = app.get_ok(august).await;
    // Clicks by hour of day over a range come from the hours: those of August are gone.
    assert_eq!(before["breakdown"]["hour_of_day"], json!([{"key": "10", "clicks": 2}]));
    assert_eq!(after["breakdown"]["hour_of_day"], json!([]));
    after["breakdown"]["hour_of_day"] = before["breakdown"]["hour_of_day"].clone();
    assert_eq!(after, before, "but for them, a range of pruned days reads as it did");
    assert_eq!(after["totals"]["clicks"], 2);
    assert_eq!(after["totals"]["unique_clicks"], 1);
    assert_eq!(after["totals"]["conversions"], 1);
    assert_eq!(after["totals"]["revenue"], "1280.00");
    assert_eq!(after["series"][0]["clicks"], 2);
    assert_eq!(after["breakdown"]["app"][0]["clicks"], 2);
    // ben-1's rollups name August 1 alone, but that day's hours are gone: its range reads the
    // full counters too, and hour_of_day is the same as amy's.
    let ben_after = app.get_ok(ben_august).await;
    assert_eq!(
        ben_before["breakdown"]["hour_of_day"],
        json!([{"key": "10", "clicks": 1}])
    );
    assert_eq!(ben_after["breakdown"]["hour_of_day"], json!([]));
    assert_eq!(ben_after["totals"], ben_before["totals"]);
    let every_day = app.link_totals("amy-serum").await;
    assert_eq!(
        (every_day["clicks"].clone(), every_day["conversions"].clone()),
        (json!(3), json!(1))
    );

    let r = app
        .get("/api/v1/links/amy-serum/stats?interval=hour&from=2026-08-01&to=2026-08-01")
        .await;
    let body = assert_error(r, 400, "hours_not_kept").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("2026-08-23"), "{message}");
    let today = app
        .get_ok("/api/v1/links/amy-serum/stats?interval=hour&from=2026-11-20&to=2026-11-20")
        .await;
    assert_eq!(today["series"][12]["clicks"], 1);
    assert_eq!(today["series"].as_array().unwrap().len(), 24);

    let refund = json!({"order_id": "1001", "refund_id": "r1", "event": "refund", "amount": "280.00",
        "currency": "TWD", "occurred_at": "2026-08-01T11:00:00Z"});
    assert_eq!(signed(&app, &clock, &secret, refund).await["status"], "attributed");
    let refunded = app.get_ok(august).await;
    assert_eq!(refunded["totals"]["refunds"], "280.00");
    assert_eq!(refunded["totals"]["net_revenue"], "1000.00");
}

per_store!(a_campaigns_hourly_chart_without_a_range_keeps_to_the_hours_kept);
/// A campaign's hourly chart without a range covers yesterday and today, or only today when
/// only today keeps its hours (`hourly_retention_days = 1`): it was refused there, every time.
/// The campaign is looked up first: an unknown one is 404 whatever its range.
async fn a_campaigns_hourly_chart_without_a_range_keeps_to_the_hours_kept(backend: Backend) {
    let clock = ManualClock::at(at("2026-08-01T10:00:00Z"));
    let app = spawn_app_keeping_hours(backend, clock.clone(), 1).await;
    app.seed().await;
    app.tap("amy-serum").await;
    let s = app.get_ok("/api/v1/campaigns/spring-sale/stats?interval=hour").await;
    let series = s["series"].as_array().unwrap();
    assert_eq!(series.len(), 24, "{s}");
    assert_eq!(series[10]["clicks"], 1);
    let r = app
        .get("/api/v1/campaigns/spring-sale/stats?interval=hour&from=2026-07-01&to=2026-07-02")
        .await;
    assert_error(r, 400, "hours_not_kept").await;
    let r = app
        .get("/api/v1/campaigns/nope/stats?interval=hour&from=2026-01-01&to=2026-08-01")
        .await;
    assert_error(r, 404, "not_found").await;
}

per_store!(a_links_hourly_chart_without_a_range_is_its_last_31_days_of_kept_hours);
/// A link's hourly chart without a range covered its whole life, and a link with a day of
/// insights reported more than 31 days ago was refused "narrow from and to", though neither
/// was sent. It is now the last 31 days of the link's life, within the hours kept.
async fn a_links_hourly_chart_without_a_range_is_its_last_31_days_of_kept_hours(backend: Backend) {
    let clock = ManualClock::at(at("2026-08-01T10:00:00Z"));
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    app.post_expect(
        "/api/v1/links/amy-serum/metrics",
        &json!({"date": "2026-05-01", "impressions": 500}),
        200,
    )
    .await;
    app.tap("amy-serum").await;
    let s = app.get_ok("/api/v1/links/amy-serum/stats?interval=hour").await;
    let series = s["series"].as_array().unwrap();
    assert_eq!(series.len(), 31 * 24, "{}", series.len());
    assert_eq!(series[0]["t"], "2026-07-02T00:00:00Z");
    assert_eq!(series[30 * 24 + 10]["clicks"], 1);
    assert_eq!((s["from"].clone(), s["to"].clone()), (json!(null), json!(null)));

    let short = spawn_app_keeping_hours(backend, clock.clone(), 1).await;
    short.seed().await;
    short.tap("amy-serum").await;
    let s = short.get_ok("/api/v1/links/amy-serum/stats?interval=hour").await;
    assert_eq!(s["series"].as_array().unwrap().len(), 24, "only today keeps its hours");
}

per_store!(an_hourly_series_of_an_open_range_reaching_past_the_kept_hours_is_refused);
/// Without `from`, an hourly series starts on the link's first day with data: when that day's
/// hours are gone, the answer says from which day they are kept.
async fn an_hourly_series_of_an_open_range_reaching_past_the_kept_hours_is_refused(backend: Backend) {
    let clock = ManualClock::at(at("2026-08-01T10:00:00Z"));
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    app.tap("amy-serum").await;
    clock.advance(TimeDelta::days(100));

    let r = app
        .get("/api/v1/links/amy-serum/stats?interval=hour&to=2026-08-02")
        .await;
    assert_error(r, 400, "hours_not_kept").await;
    // Days are never refused.
    let days = app.get_ok("/api/v1/links/amy-serum/stats?to=2026-08-02").await;
    assert_eq!(days["totals"]["clicks"], 1);
}
