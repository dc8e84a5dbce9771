//! Stats per link, campaign (rows per KOL and tier) and KOL; they survive a restart.

use kolink::clock::ManualClock;
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, at, settings_for, signed, spawn_app, spawn_app_keeping_hours, start, Backend, Backing, TestApp,
};

const DESKTOP: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

/// The seed (amy-serum, coupon AMY10) and ben-1 (coupon BEN) of spring-sale, shop acme (its
/// secret returned), and taps of every kind: people on a phone (twice) and a desktop on
/// amy-serum, a desktop and a link-preview fetcher on ben-1, and a pixel impression of
/// amy-serum.
async fn people_a_preview_and_a_pixel(app: &TestApp) -> String {
    app.seed().await;
    app.create_kol("ben", 800).await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "ben", "code": "ben-1", "cost": "800", "coupon": "BEN"}))
        .await;
    let secret = app.create_shop("acme").await;
    let phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 309.0";
    for ua in [phone, phone, DESKTOP] {
        assert_eq!(app.tap_as("amy-serum", ua).await.status(), 302);
    }
    app.tap_as("ben-1", DESKTOP).await;
    app.tap_as("ben-1", "facebookexternalhit/1.1").await;
    assert_eq!(app.pixel("amy-serum").await.status(), 200);
    secret
}

per_store!(campaign_stats_have_a_row_per_kol_and_per_tier_sorted_by_roi);
async fn campaign_stats_have_a_row_per_kol_and_per_tier_sorted_by_roi(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await; // amy (micro), amy-serum cost 5000
    app.create_kol("ben", 800).await; // nano
    app.create_link(json!({"campaign": "spring-sale", "kol": "ben", "code": "ben-1", "cost": "800", "coupon": "BEN"}))
        .await;
    let secret = app.create_shop("acme").await;
    for _ in 0..4 {
        app.tap("amy-serum").await;
    }
    app.tap("ben-1").await;
    app.post(
        "/api/v1/links/amy-serum/metrics",
        &json!({"date": "2026-11-20", "impressions": 400}),
    )
    .await;
    app.post(
        "/api/v1/links/ben-1/metrics",
        &json!({"date": "2026-11-20", "impressions": 100}),
    )
    .await;
    let buy = |order: &str, coupon: &str, amount: &str| json!({"order_id": order, "event": "purchase", "amount": amount, "currency": "TWD", "coupon": coupon});
    app.webhook_ok("acme", &secret, &buy("1", "AMY10", "3000")).await;
    app.webhook_ok("acme", &secret, &buy("2", "BEN", "1600")).await;

    let s = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    let t = &s["totals"];
    assert_eq!(
        (
            t["impressions"].as_u64(),
            t["clicks"].as_u64(),
            t["conversions"].as_u64()
        ),
        (Some(500), Some(5), Some(2))
    );
    assert_eq!(t["ctr"], 0.01);
    assert_eq!(t["revenue"], "4600.00");
    assert_eq!(t["cost"], "5800.00");
    let kols = s["kols"].as_array().unwrap();
    // ben: roi (1600-800)/800 = 1.0; amy: (3000-5000)/5000 = -0.4
    assert_eq!(kols[0]["kol"], "ben");
    assert_eq!(kols[0]["tier"], "nano");
    assert_eq!(kols[0]["roi"], 1.0);
    assert_eq!(kols[0]["links"], 1);
    assert_eq!(kols[1]["kol"], "amy");
    assert_eq!(kols[1]["roi"], -0.4);
    assert_eq!(kols[1]["ctr"], 0.01);
    let tiers = s["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 2);
    assert_eq!(
        (tiers[0]["tier"].as_str(), tiers[0]["kols"].as_u64()),
        (Some("nano"), Some(1))
    );
    let by_clicks = app.get_ok("/api/v1/campaigns/spring-sale/stats?sort=clicks").await;
    assert_eq!(by_clicks["kols"][0]["kol"], "amy");
    assert_eq!(
        (by_clicks["sort"].as_str(), by_clicks["order"].as_str()),
        (Some("clicks"), Some("desc"))
    );
    // Smallest first on asking: the worst ROI leads, the tiers follow the same way.
    let worst = app
        .get_ok("/api/v1/campaigns/spring-sale/stats?sort=roi&order=asc")
        .await;
    assert_eq!(
        (worst["kols"][0]["kol"].as_str(), worst["kols"][1]["kol"].as_str()),
        (Some("amy"), Some("ben"))
    );
    assert_eq!(worst["tiers"][0]["tier"], "micro");
    assert_eq!(worst["order"], "asc");
    // Every count of the totals sorts too: the KOL whose link the bots fetch leads by bot
    // clicks (a leaderboard "sortable by every figure" could not show them).
    app.tap_as("ben-1", "facebookexternalhit/1.1").await;
    let by_bots = app.get_ok("/api/v1/campaigns/spring-sale/stats?sort=bot_clicks").await;
    assert_eq!(
        (
            by_bots["kols"][0]["kol"].as_str(),
            by_bots["kols"][0]["bot_clicks"].as_u64()
        ),
        (Some("ben"), Some(1))
    );
    for figure in ["reach", "pixel_impressions", "previews", "suspicious_clicks"] {
        app.get_ok(&format!("/api/v1/campaigns/spring-sale/stats?sort={figure}"))
            .await;
    }
    let csv = app
        .get_csv("/api/v1/campaigns/spring-sale/report.csv?sort=roi&order=asc")
        .await
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).take(2).collect();
    assert!(
        rows[0].starts_with("kol,amy,") && rows[1].starts_with("kol,ben,"),
        "{csv}"
    );
    for bad in ["sort=vibes", "order=up", "sort=roi&order=ASC"] {
        crate::helpers::assert_error(
            app.get(&format!("/api/v1/campaigns/spring-sale/stats?{bad}")).await,
            400,
            "invalid_input",
        )
        .await;
    }

    let k = app.get_ok("/api/v1/kols/amy/stats").await;
    assert_eq!(k["totals"]["clicks"], 4);
    assert_eq!(k["campaigns"][0]["campaign"], "spring-sale");
    assert_eq!(k["campaigns"][0]["revenue"], "3000.00");
}

per_store!(link_stats_have_a_daily_series_and_reject_bad_ranges);
async fn link_stats_have_a_daily_series_and_reject_bad_ranges(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.tap("amy-serum").await;
    app.tap("amy-serum").await;
    let today = chrono::Utc::now().date_naive();
    let s = app.get_ok("/api/v1/links/amy-serum/stats").await;
    let series = s["series"].as_array().unwrap();
    let last = series.last().unwrap();
    assert_eq!(last["t"], format!("{today}T00:00:00Z"));
    assert_eq!(last["clicks"], 2);
    assert_eq!(last["unique_clicks"], 1);
    let h = app
        .get_ok(&format!(
            "/api/v1/links/amy-serum/stats?interval=hour&from={today}&to={today}"
        ))
        .await;
    assert_eq!(h["series"].as_array().unwrap().len(), 24);
    let sum: u64 = h["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["clicks"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, 2);
    for q in [
        "from=2026-13-01",
        "interval=week",
        "from=2026-11-22&to=2026-11-01",
        "interval=hour&from=2026-01-01&to=2026-11-01",
    ] {
        let r = app.get(&format!("/api/v1/links/amy-serum/stats?{q}")).await;
        crate::helpers::assert_error(r, 400, "invalid_input").await;
    }
    crate::helpers::assert_error(app.get("/api/v1/links/nope/stats").await, 404, "not_found").await;
}

per_store!(campaign_stats_give_an_hourly_series_when_asked);
/// A campaign's chart by the hour, for the day a post went live: `interval=hour` was ignored
/// (a daily series came back) and `interval=week` was taken without a word.
async fn campaign_stats_give_an_hourly_series_when_asked(backend: Backend) {
    let clock = ManualClock::at(at("2026-11-19T08:00:00Z"));
    let app = crate::helpers::spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    app.create_kol("ben", 800).await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "ben", "code": "ben-serum"}))
        .await;
    for (when, code) in [
        ("2026-11-19T09:15:00Z", "amy-serum"),
        ("2026-11-20T09:05:00Z", "amy-serum"),
        ("2026-11-20T09:40:00Z", "ben-serum"),
        ("2026-11-20T21:00:00Z", "ben-serum"),
    ] {
        clock.set(at(when));
        assert_eq!(app.tap(code).await.status(), 302);
    }
    let points = |s: &Value| -> Vec<(String, u64)> {
        s["series"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["clicks"] != 0)
            .map(|p| (p["t"].as_str().unwrap().to_owned(), p["clicks"].as_u64().unwrap()))
            .collect()
    };
    let day = app
        .get_ok("/api/v1/campaigns/spring-sale/stats?interval=hour&from=2026-11-20&to=2026-11-20")
        .await;
    assert_eq!(day["series"].as_array().unwrap().len(), 24);
    assert_eq!(
        points(&day),
        [
            ("2026-11-20T09:00:00Z".to_owned(), 2),
            ("2026-11-20T21:00:00Z".to_owned(), 1)
        ]
    );
    assert_eq!(day["totals"]["clicks"], 3);
    // Without a range, the hours of yesterday and today (UTC); the totals stay all-time.
    let open = app.get_ok("/api/v1/campaigns/spring-sale/stats?interval=hour").await;
    assert_eq!(open["series"].as_array().unwrap().len(), 48);
    assert_eq!(open["series"][0]["t"], "2026-11-19T00:00:00Z");
    assert_eq!(points(&open)[0], ("2026-11-19T09:00:00Z".to_owned(), 1));
    assert_eq!(open["totals"]["clicks"], 4);
    // The daily series is as before.
    let daily = app.get_ok("/api/v1/campaigns/spring-sale/stats?interval=day").await;
    assert_eq!(
        points(&daily),
        [
            ("2026-11-19T00:00:00Z".to_owned(), 1),
            ("2026-11-20T00:00:00Z".to_owned(), 3)
        ]
    );
    for q in ["interval=week", "interval=hour&from=2026-09-01&to=2026-11-20"] {
        let r = app.get(&format!("/api/v1/campaigns/spring-sale/stats?{q}")).await;
        crate::helpers::assert_error(r, 400, "invalid_input").await;
    }
    let r = app.get("/api/v1/campaigns/spring-sale/report.csv?interval=week").await;
    crate::helpers::assert_error(r, 400, "invalid_input").await;
    // A KOL's stats have no series: an interval that is not one is refused, not ignored.
    let r = app.get("/api/v1/kols/amy/stats?interval=week").await;
    crate::helpers::assert_error(r, 400, "invalid_input").await;
    for q in ["interval=day", "interval=hour"] {
        app.get_ok(&format!("/api/v1/kols/amy/stats?{q}")).await;
    }
}

per_store!(a_series_with_one_end_open_reaches_no_further_than_the_links_life);
/// An open end of a link's daily series is the link's life; the other end, given, may lie far
/// outside it (`from=0000-01-01`): the series starts where the link's days do, not 740,000 days
/// of zeros earlier (67 MB for one request). A day of insights far in the past is refused, so
/// that no link's life reaches back that far.
async fn a_series_with_one_end_open_reaches_no_further_than_the_links_life(backend: Backend) {
    // A link minted on 10 November, tapped on the 12th and the 15th; today is the 20th.
    let clock = ManualClock::at(at("2026-11-10T10:00:00Z"));
    let app = crate::helpers::spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    for day in ["2026-11-12T10:00:00Z", "2026-11-15T10:00:00Z"] {
        clock.set(at(day));
        app.tap("amy-serum").await;
    }
    clock.set(at("2026-11-20T10:00:00Z"));
    let days = |s: &Value| -> (usize, String, String, u64) {
        let series = s["series"].as_array().unwrap();
        let t = |p: &Value| p["t"].as_str().unwrap()[..10].to_owned();
        let clicks = series.iter().map(|p| p["clicks"].as_u64().unwrap()).sum();
        (series.len(), t(&series[0]), t(&series[series.len() - 1]), clicks)
    };
    let open = app.get_ok("/api/v1/links/amy-serum/stats").await;
    let life = (11, "2026-11-10".to_owned(), "2026-11-20".to_owned(), 2);
    assert_eq!(days(&open), life);
    for q in ["from=0000-01-01", "to=9999-12-31", "from=1970-01-01"] {
        let s = app.get_ok(&format!("/api/v1/links/amy-serum/stats?{q}")).await;
        assert_eq!(days(&s), life, "{q}");
        assert_eq!(s["totals"], open["totals"], "{q}");
    }
    // A given end within the link's life is kept, the open one reaches to the life's end.
    let to = app.get_ok("/api/v1/links/amy-serum/stats?to=2026-11-13").await;
    assert_eq!(days(&to), (4, "2026-11-10".to_owned(), "2026-11-13".to_owned(), 1));
    let from = app.get_ok("/api/v1/links/amy-serum/stats?from=2026-11-14").await;
    assert_eq!(days(&from), (7, "2026-11-14".to_owned(), "2026-11-20".to_owned(), 1));
    assert_eq!((from["from"].as_str(), &from["to"]), (Some("2026-11-14"), &json!(null)));

    // A day of insights is at most 3,650 days back: 1900 would make every report of the link
    // a century of days.
    let r = app
        .post(
            "/api/v1/links/amy-serum/metrics",
            &json!({"date": "1900-01-01", "impressions": 5}),
        )
        .await;
    assert_error(r, 400, "invalid_input").await;
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let oldest = today - chrono::Days::new(3650);
    for (date, status) in [(oldest - chrono::Days::new(1), 400), (oldest, 200)] {
        let r = app
            .post(
                "/api/v1/links/amy-serum/metrics",
                &json!({"date": date.to_string(), "impressions": 5}),
            )
            .await;
        assert_eq!(r.status().as_u16(), status, "{date}");
    }
    let s = app.get_ok("/api/v1/links/amy-serum/stats").await;
    assert_eq!(s["series"].as_array().unwrap().len(), 3651);
    // Tomorrow in UTC is a day that has begun somewhere; the day after is refused, and the
    // refusal says so.
    let r = app
        .post(
            "/api/v1/links/amy-serum/metrics",
            &json!({"date": "2026-11-22", "impressions": 5}),
        )
        .await;
    let body = assert_error(r, 400, "invalid_input").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tomorrow in UTC at the latest"),
        "{body}"
    );

    // A day reported by mistake (a mistyped year) is listed, and removed: the series starts
    // where the link's data does again, and the day's numbers leave the totals.
    let listed = app.get_ok("/api/v1/links/amy-serum/metrics").await;
    assert_eq!(
        (
            listed["code"].as_str(),
            listed["days"][0]["date"].as_str(),
            listed["days"][0]["impressions"].as_u64()
        ),
        (Some("amy-serum"), Some(oldest.to_string().as_str()), Some(5))
    );
    let impressions = s["totals"]["impressions"].as_u64().unwrap();
    for _ in 0..2 {
        let r = app.delete(&format!("/api/v1/links/amy-serum/metrics/{oldest}")).await;
        assert_eq!(r.status().as_u16(), 204, "removed, then already gone");
    }
    let s = app.get_ok("/api/v1/links/amy-serum/stats").await;
    assert_eq!(s["series"][0]["t"].as_str().map(|t| &t[..10]), Some("2026-11-10"));
    assert_eq!(s["totals"]["impressions"].as_u64(), Some(impressions - 5));
    let listed = app.get_ok("/api/v1/links/amy-serum/metrics").await;
    assert!(
        listed["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["date"] != oldest.to_string()),
        "{listed}"
    );
    // Refused: a day that is no date, an unknown link, no token.
    assert_error(
        app.delete("/api/v1/links/amy-serum/metrics/2026-13-01").await,
        400,
        "invalid_input",
    )
    .await;
    assert_error(
        app.delete("/api/v1/links/nobody/metrics/2026-11-20").await,
        404,
        "not_found",
    )
    .await;
    assert_error(app.get("/api/v1/links/nobody/metrics").await, 404, "not_found").await;
    let anonymous = app
        .api
        .delete(app.url("/api/v1/links/amy-serum/metrics/2026-11-20"))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
}

per_store!(stats_survive_a_server_restart);
async fn stats_survive_a_server_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let cid = app.click_id("amy-serum").await;
    app.tap("amy-serum").await;
    let order = json!({"order_id": "1", "event": "purchase", "amount": "100", "currency": "TWD", "click_id": cid});
    app.webhook_ok("acme", &secret, &order).await;
    let before = app.link_totals("amy-serum").await;

    let (backing, settings) = app.stop().await;
    let app = start(backing, settings).await;
    let after = app.link_totals("amy-serum").await;
    assert_eq!(before, after);
    assert_eq!(after["clicks"], 2);
    assert_eq!(after["revenue"], "100.00");
    // The click id minted before the restart still attributes; the order is still known.
    assert_eq!(app.webhook_ok("acme", &secret, &order).await["status"], "duplicate");
    assert_eq!(app.tap("amy-serum").await.status(), 302);
}

per_store!(report_csv_has_the_figures_of_the_stats_per_kol_then_per_tier);
async fn report_csv_has_the_figures_of_the_stats_per_kol_then_per_tier(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.post_expect(
        "/api/v1/kols",
        &json!({"id": "lin", "name": "林艾咪", "platform": "instagram", "followers": 600_000}),
        201,
    )
    .await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "lin", "code": "lin-1", "cost": "800", "coupon": "LIN5"}))
        .await;
    app.tap("amy-serum").await;
    let secret = app.create_shop("acme").await;
    let order = json!({"order_id": "1", "event": "purchase", "amount": "1280", "currency": "TWD", "coupon": "LIN5"});
    app.webhook_ok("acme", &secret, &order).await;
    let stats = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;

    let r = app.get("/api/v1/campaigns/spring-sale/report.csv").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "a byte-order mark for spreadsheets");
    let mut rows = csv::Reader::from_reader(&bytes[3..]);
    let header = rows.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!(records.len(), 4, "two KOLs, then two tiers");
    let kinds: Vec<&str> = records.iter().map(|r| &r[0]).collect();
    assert_eq!(kinds, ["kol", "kol", "tier", "tier"]);
    // The same figures, in the same order, as the JSON report.
    for (i, kol) in stats["kols"].as_array().unwrap().iter().enumerate() {
        let rec = &records[i];
        assert_eq!(&rec[col("kol")], kol["kol"].as_str().unwrap());
        assert_eq!(&rec[col("clicks")], kol["clicks"].to_string());
        assert_eq!(&rec[col("revenue")], kol["revenue"].as_str().unwrap());
        assert_eq!(
            &rec[col("purchase")],
            kol["events"]["purchase"].as_u64().unwrap_or(0).to_string()
        );
        let roi = &rec[col("roi")];
        assert_eq!(roi.is_empty(), kol["roi"].is_null());
    }
    assert!(records.iter().any(|r| &r[col("name")] == "林艾咪"));
    assert_eq!(&records[2][col("tier")], stats["tiers"][0]["tier"].as_str().unwrap());
    assert_error(app.get("/api/v1/campaigns/nope/report.csv").await, 404, "not_found").await;
}

per_store!(stats_over_every_day_read_from_rollups_match_stats_over_a_range_holding_every_day);
async fn stats_over_every_day_read_from_rollups_match_stats_over_a_range_holding_every_day(backend: Backend) {
    // Arrange: people on several devices, a link-preview bot, a pixel impression, a purchase
    // and a partial refund: every kind of counter.
    let app = spawn_app(backend).await;
    let secret = people_a_preview_and_a_pixel(&app).await;
    let buy = json!({"order_id": "1", "event": "purchase", "amount": "3000", "currency": "TWD", "coupon": "AMY10"});
    app.webhook_ok("acme", &secret, &buy).await;
    let refund = json!({"order_id": "1", "event": "refund", "amount": "500", "currency": "TWD", "refund_id": "r1"});
    app.webhook_ok("acme", &secret, &refund).await;

    // Act: every day (the rollups) and a range that holds every day (the full counters).
    let wide = "from=2000-01-01&to=2099-12-31";
    let open = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    let ranged = app.get_ok(&format!("/api/v1/campaigns/spring-sale/stats?{wide}")).await;

    // Assert
    assert_eq!(open["totals"]["clicks"], 4);
    assert_eq!(open["totals"]["bot_clicks"], 1);
    assert_eq!(open["totals"]["previews"], 1);
    assert_eq!(open["totals"]["pixel_impressions"], 1);
    assert_eq!(open["totals"]["net_revenue"], "2500.00");
    let devices: Vec<(&str, u64)> = open["breakdown"]["device"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap(), s["clicks"].as_u64().unwrap()))
        .collect();
    assert_eq!(devices, [("desktop", 2), ("mobile", 2)]);
    for part in ["totals", "kols", "tiers", "breakdown"] {
        assert_eq!(open[part], ranged[part], "{part}");
    }
    let today = chrono::Utc::now().date_naive();
    let last_30 = format!("from={}&to={today}", today - chrono::Days::new(29));
    let ranged_30 = app
        .get_ok(&format!("/api/v1/campaigns/spring-sale/stats?{last_30}"))
        .await;
    assert_eq!(open["series"], ranged_30["series"]);
    // A link's daily series spans at most 400 days.
    let last_300 = format!("from={}&to={today}", today - chrono::Days::new(299));
    for code in ["amy-serum", "ben-1"] {
        let open = app.get_ok(&format!("/api/v1/links/{code}/stats")).await;
        let ranged = app.get_ok(&format!("/api/v1/links/{code}/stats?{last_300}")).await;
        assert_eq!(open["totals"], ranged["totals"], "{code}");
        assert_eq!(open["breakdown"], ranged["breakdown"], "{code}");
        let days = open["series"].as_array().unwrap();
        let (first, last) = (
            &days[0]["t"].as_str().unwrap()[..10],
            &days[days.len() - 1]["t"].as_str().unwrap()[..10],
        );
        let same_days = app
            .get_ok(&format!("/api/v1/links/{code}/stats?from={first}&to={last}"))
            .await;
        assert_eq!(open["series"], same_days["series"], "{code}");
    }
    let kol_open = app.get_ok("/api/v1/kols/amy/stats").await;
    let kol_ranged = app.get_ok(&format!("/api/v1/kols/amy/stats?{wide}")).await;
    assert_eq!(kol_open["totals"], kol_ranged["totals"]);
}

per_store!(a_range_holding_every_day_of_its_links_reads_their_rollups_alone_with_the_same_figures);
/// A link minted in a range whose every count lies in it is read by its rollups alone (its
/// all-time breakdowns are the range's); one with a count outside is read with its full
/// counters. Both reads give the figures the full counters give.
async fn a_range_holding_every_day_of_its_links_reads_their_rollups_alone_with_the_same_figures(backend: Backend) {
    // Arrange: two links minted on 2 November with every kind of counter, a tap of amy's on
    // 3 November, and a purchase by ben's coupon dated 23 October, before ben-1 was minted.
    let clock = ManualClock::at(at("2026-11-02T10:00:00Z"));
    // Hours kept from 6 August on: a range from 1 January reads the full counters.
    let app = spawn_app_keeping_hours(backend, clock.clone(), 90).await;
    let secret = people_a_preview_and_a_pixel(&app).await;
    let buy = json!({"order_id": "1", "event": "purchase", "amount": "3000", "currency": "TWD", "coupon": "AMY10"});
    assert_eq!(signed(&app, &clock, &secret, buy).await["status"], "attributed");
    let old_buy = json!({"order_id": "2", "event": "purchase", "amount": "1000", "currency": "TWD", "coupon": "BEN",
        "occurred_at": "2026-10-23T09:00:00Z"});
    assert_eq!(signed(&app, &clock, &secret, old_buy).await["status"], "attributed");
    clock.set(at("2026-11-03T10:00:00Z"));
    app.tap_as("amy-serum", DESKTOP).await;

    // Act: the last 30 days hold every count and keep their hours (90 days): the rollups
    // answer alone. The year 2026 starts before the hours kept: the full counters. The
    // 2nd of November leaves out amy's tap of the 3rd and ben's purchase: their full counters.
    let get = |q: &'static str| {
        let app = &app;
        async move {
            (
                app.get_ok(&format!("/api/v1/campaigns/spring-sale/stats?{q}")).await,
                app.get_ok(&format!("/api/v1/kols/ben/stats?{q}")).await,
                app.get_ok(&format!("/api/v1/links/ben-1/stats?{q}")).await,
            )
        }
    };
    let recent = get("from=2026-10-05&to=2026-11-03").await;
    let wide = get("from=2026-01-01&to=2026-12-31").await;
    let second = get("from=2026-11-02&to=2026-11-02").await;

    // Assert: the same figures by either read, down to every breakdown.
    for part in ["totals", "kols", "tiers", "breakdown"] {
        assert_eq!(recent.0[part], wide.0[part], "campaign {part}");
    }
    assert_eq!(recent.1["totals"], wide.1["totals"]);
    assert_eq!(recent.1["campaigns"], wide.1["campaigns"]);
    assert_eq!(recent.2["totals"], wide.2["totals"]);
    assert_eq!(recent.2["breakdown"], wide.2["breakdown"]);
    let figures = |r: &Value| {
        let t = &r["totals"];
        (
            t["clicks"].as_u64(),
            t["previews"].as_u64(),
            t["revenue"].as_str().map(str::to_owned),
        )
    };
    let clicks = |r: &Value, dim: &str| -> Vec<(String, u64)> {
        let slices = r["breakdown"][dim].as_array().unwrap().iter();
        slices
            .map(|s| (s["key"].as_str().unwrap().to_owned(), s["clicks"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(figures(&recent.0), (Some(5), Some(1), Some("4000.00".into())));
    assert_eq!(
        clicks(&recent.0, "device"),
        [("desktop".into(), 3), ("mobile".into(), 2)]
    );
    assert_eq!(clicks(&recent.0, "hour_of_day"), [("10".into(), 5)]);
    assert_eq!(clicks(&recent.0, "preview"), [("facebook".into(), 1)]);
    // The 2nd: amy's tap of the 3rd and ben's purchase of October are not in it.
    assert_eq!(figures(&second.0), (Some(4), Some(1), Some("3000.00".into())));
    assert_eq!(
        clicks(&second.0, "device"),
        [("desktop".into(), 2), ("mobile".into(), 2)]
    );
    assert_eq!(clicks(&second.0, "hour_of_day"), [("10".into(), 4)]);
    assert_eq!(second.2["totals"]["revenue"], "0.00");
    assert_eq!(second.2["breakdown"], recent.2["breakdown"]);
    assert_eq!(second.1["totals"]["clicks"], 1);
}

// Reports on one Redis read their links' counters on connections of their own (the store's
// `bulk` reads): these check what those connections must get right beside the figures.

/// Redis restarts under the report's idle connections: the next report reads on new ones, with
/// the same figures.
#[tokio::test]
async fn campaign_stats_are_read_again_right_after_redis_restarts() {
    let mut app = spawn_app(Backend::Redis).await;
    people_a_preview_and_a_pixel(&app).await;
    let before = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    assert_eq!(before["totals"]["clicks"], 4);
    app.redis.as_mut().expect("a redis-server").restart();
    // The store's own connection may fail once before it reconnects: a request that needs it
    // alone brings it back first.
    if app.get("/api/v1/campaigns/spring-sale").await.status() == 503 {
        assert_eq!(app.get("/api/v1/campaigns/spring-sale").await.status(), 200);
    }
    // The report's connections were closed by the restart: found so, and opened again.
    assert_eq!(app.get_ok("/api/v1/campaigns/spring-sale/stats").await, before);
}

/// A Redis that asks for a password, on the database the URL names (3): the report's
/// connections sign in and select it as the store's own connection does.
#[tokio::test]
async fn campaign_stats_read_a_redis_with_a_password_on_the_database_of_the_url() {
    let redis = crate::helpers::RedisServer::start_with_password("open-sesame");
    let url = redis.url_of_db(3);
    let backing = Backing {
        redis: Some(redis),
        ..Backing::new(Backend::Embedded)
    };
    let mut settings = settings_for(&backing);
    settings.redis_url = Some(url);
    let app = start(backing, settings).await;
    people_a_preview_and_a_pixel(&app).await;
    let stats = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    assert_eq!(stats["totals"]["clicks"], 4);
    assert_eq!(stats["totals"]["bot_clicks"], 1);
    assert_eq!(
        stats["breakdown"]["device"],
        json!([{"key": "desktop", "clicks": 2}, {"key": "mobile", "clicks": 2}])
    );
    let mut db0 = app.redis.as_ref().unwrap().connection().await;
    let keys: i64 = redis::cmd("DBSIZE").query_async(&mut db0).await.unwrap();
    assert_eq!(keys, 0, "everything went to database 3");
}

/// A link's counters that Redis cannot read as a hash fail the report (a store fault, `500`),
/// and the next report, once they are right again, reads every link right: the failed read
/// left no replies behind on a connection.
#[tokio::test]
async fn a_counter_hash_of_the_wrong_type_fails_the_report_and_the_next_one_reads_right() {
    let app = spawn_app(Backend::Redis).await;
    people_a_preview_and_a_pixel(&app).await;
    let before = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    a_fault_while_a_hash_is_a_string(&app, "kl:{amy-serum}:rollups", "/api/v1/campaigns/spring-sale/stats").await;
    assert_eq!(app.get_ok("/api/v1/campaigns/spring-sale/stats").await, before);
}

/// While the Redis hash `key` is a string instead, `path` fails as a fault (500 `internal`);
/// then the hash is put back as it was.
async fn a_fault_while_a_hash_is_a_string(app: &TestApp, key: &str, path: &str) {
    let mut conn = app.redis.as_ref().unwrap().connection().await;
    let kept: Vec<(String, String)> = redis::AsyncCommands::hgetall(&mut conn, key).await.unwrap();
    assert!(!kept.is_empty(), "{key} holds fields");
    redis::pipe()
        .del(key)
        .set(key, "not a hash")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert_error(app.get(path).await, 500, "internal").await;
    redis::pipe()
        .del(key)
        .hset_multiple(key, &kept)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
}

/// A link's full map of the wrong type on Redis: its hourly report, which reads the link's
/// rollups and full map in one transaction, fails as a fault (the error inside `EXEC`'s answer
/// is not taken for a hash); once the map is right again, so is the report.
#[tokio::test]
async fn a_full_map_of_the_wrong_type_fails_the_hourly_report_and_the_next_one_reads_right() {
    let app = spawn_app(Backend::Redis).await;
    people_a_preview_and_a_pixel(&app).await;
    let before = app.get_ok("/api/v1/links/amy-serum/stats?interval=hour").await;
    a_fault_while_a_hash_is_a_string(
        &app,
        "kl:{amy-serum}:stats",
        "/api/v1/links/amy-serum/stats?interval=hour",
    )
    .await;
    let after = app.get_ok("/api/v1/links/amy-serum/stats?interval=hour").await;
    assert!(before["totals"]["clicks"].as_u64().unwrap() > 0);
    assert_eq!(after["totals"], before["totals"]);
    assert_eq!(after["series"], before["series"]);
}

/// A link list that Redis answers with something else than a list (the summaries' hash of the
/// wrong type) fails the report as a fault, never as a report without links; once it is right
/// again, the report reads every link (the KOL's list is not kept from before: only the
/// campaign's was read).
#[tokio::test]
async fn a_link_list_of_the_wrong_type_fails_the_report_and_the_next_one_reads_right() {
    let app = spawn_app(Backend::Redis).await;
    people_a_preview_and_a_pixel(&app).await;
    let campaign = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    a_fault_while_a_hash_is_a_string(&app, "kl:{meta}:summaries", "/api/v1/kols/amy/stats").await;
    let kol = app.get_ok("/api/v1/kols/amy/stats").await;
    let amy = campaign["kols"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["kol"] == "amy")
        .expect("amy's row");
    assert!(amy["clicks"].as_u64().unwrap() > 0);
    assert_eq!(kol["totals"]["clicks"], amy["clicks"]);
}
