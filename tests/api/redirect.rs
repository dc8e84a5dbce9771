//! The redirect: 302 with a click id, stored before it is answered.

use std::collections::HashSet;

use redis::AsyncCommands;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, Backend, PHONE};

per_store!(a_tap_redirects_with_a_click_id_and_no_caching);
async fn a_tap_redirects_with_a_click_id_and_no_caching(backend: Backend) {
    let app = spawn_app(backend).await;
    let link = app.seed().await;
    let r = app.tap("amy-serum").await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    let loc = r.headers()["location"].to_str().unwrap();
    let target = link["target_url"].as_str().unwrap();
    let (head, cid) = loc.split_once("&kl_cid=").expect("kl_cid appended with &");
    assert_eq!(head, target);
    assert!(!cid.is_empty() && cid.len() <= 64);
    assert!(cid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(app.link_totals("amy-serum").await["clicks"], 1);
}

per_store!(every_click_id_is_unique);
async fn every_click_id_is_unique(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let mut seen = HashSet::new();
    for _ in 0..50 {
        assert!(seen.insert(app.click_id("amy-serum").await));
    }
}

per_store!(the_click_id_goes_before_the_fragment_and_starts_the_query_when_there_is_none);
async fn the_click_id_goes_before_the_fragment_and_starts_the_query_when_there_is_none(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_campaign("c").await;
    app.create_kol("amy", 1).await;
    app.create_link(
        json!({"campaign": "c", "kol": "amy", "code": "frag", "destination": "https://s.example/p#reviews",
                           "utm": {"source": "x"}}),
    )
    .await;
    let r = app.tap("frag").await;
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with("https://s.example/p?utm_source=x&"), "{loc}");
    assert!(loc.contains("&kl_cid="), "{loc}");
    assert!(loc.ends_with("#reviews"), "{loc}");
}

per_store!(head_answers_the_same_headers_and_records_nothing);
async fn head_answers_the_same_headers_and_records_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let link = app.seed().await;
    let r = app
        .api
        .head(app.url("/amy-serum"))
        .header("user-agent", PHONE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], link["target_url"].as_str().unwrap());
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    let t = app.link_totals("amy-serum").await;
    assert_eq!((t["clicks"].as_u64(), t["bot_clicks"].as_u64()), (Some(0), Some(0)));
    let r = app.api.head(app.url("/nope-nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

per_store!(an_unknown_code_is_not_found_with_a_page_for_browsers);
async fn an_unknown_code_is_not_found_with_a_page_for_browsers(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_error(app.tap("no-such-code").await, 404, "not_found").await;
    let r = app
        .api
        .get(app.url("/no-such-code"))
        .header("accept", "text/html,*/*")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains("does not exist"), "{page}");
    // Titled by what happened, not by HTTP's reason ("Not Found", "Bad Request").
    assert!(page.contains("<title>Not found</title>"), "{page}");
    // Malformed codes are unknown too, never an error of the server.
    assert_eq!(app.tap("a.b").await.status(), 404);
    assert_eq!(app.tap(&"a".repeat(65)).await.status(), 404);
    assert_eq!(app.tap("%E4%BD%A0%E5%A5%BD").await.status(), 404);
    assert_eq!(app.tap("amy-serum%0d%0aSet-Cookie:%20x=1").await.status(), 404);
}

per_store!(a_disabled_link_is_gone_and_counts_nothing);
async fn a_disabled_link_is_gone_and_counts_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.tap("amy-serum").await; // warm the link cache
    assert_eq!(
        app.patch("/api/v1/links/amy-serum", &json!({"status": "disabled"}))
            .await
            .status(),
        200
    );
    assert_error(app.tap("amy-serum").await, 410, "link_gone").await;
    let r = app
        .api
        .get(app.url("/amy-serum"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("no longer active") && page.contains("<title>No longer available</title>"),
        "{page}"
    );
    assert_eq!(app.link_totals("amy-serum").await["clicks"], 1);
    assert_eq!(
        app.patch("/api/v1/links/amy-serum", &json!({"status": "active"}))
            .await
            .status(),
        200
    );
    assert_eq!(app.tap("amy-serum").await.status(), 302);
}

per_store!(link_preview_bots_are_redirected_without_a_click_id_and_counted_apart);
async fn link_preview_bots_are_redirected_without_a_click_id_and_counted_apart(backend: Backend) {
    let app = spawn_app(backend).await;
    let link = app.seed().await;
    for ua in [
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "WhatsApp/2.23.20.0 A",
        "TelegramBot (like TwitterBot)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
    ] {
        let r = app.tap_as("amy-serum", ua).await;
        assert_eq!(r.status(), 302, "{ua}");
        assert_eq!(r.headers()["location"], link["target_url"].as_str().unwrap(), "{ua}");
    }
    app.tap("amy-serum").await;
    let t = app.link_totals("amy-serum").await;
    assert_eq!(t["bot_clicks"], 7);
    assert_eq!(t["clicks"], 1);
    assert_eq!(t["unique_clicks"], 1);
}

per_store!(a_qr_scan_is_told_apart_in_the_source_breakdown);
async fn a_qr_scan_is_told_apart_in_the_source_breakdown(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let r = app
        .api
        .get(app.url("/amy-serum?src=qr"))
        .header("user-agent", PHONE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    app.tap("amy-serum").await;
    let s = app.get_ok("/api/v1/links/amy-serum/stats").await;
    assert_eq!(s["breakdown"]["source"], json!([{"key": "qr", "clicks": 1}]));
    assert_eq!(s["breakdown"]["browser"], json!([{"key": "Instagram", "clicks": 2}]));
    assert_eq!(s["breakdown"]["device"], json!([{"key": "mobile", "clicks": 2}]));
}

/// Reads the link's click stream in Redis directly: every answered 302 is there.
#[tokio::test]
async fn every_answered_redirect_is_in_the_redis_stream() {
    let app = spawn_app(Backend::Redis).await;
    app.seed().await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let api = app.api.clone();
        let url = app.url("/amy-serum");
        tasks.push(tokio::spawn(async move {
            // 200 people (one visitor tapping 200 times would be mostly suspicious clicks).
            let ua = format!("{PHONE} p{i}");
            let r = api.get(url).header("user-agent", ua).send().await.unwrap();
            assert_eq!(r.status(), 302);
            let loc = r.headers()["location"].to_str().unwrap().to_owned();
            loc.rsplit_once("kl_cid=").unwrap().1.to_owned()
        }));
    }
    let mut answered = HashSet::new();
    for t in tasks {
        answered.insert(t.await.unwrap());
    }
    assert_eq!(answered.len(), 200);

    let mut conn = app.redis.as_ref().unwrap().connection().await;
    let reply: redis::streams::StreamRangeReply = conn.xrange_all("kl:{amy-serum}:clicks").await.unwrap();
    assert_eq!(reply.ids.len(), 200);
    let stored: HashSet<String> = reply.ids.iter().map(|e| e.id.clone()).collect();
    for cid in &answered {
        let parsed = kolink::domain::ClickId::parse(cid).expect("a kolink click id");
        assert!(
            stored.contains(&format!("{}-{}", parsed.entry.ms, parsed.entry.seq)),
            "click {cid} is not in the stream"
        );
    }
    let clicks: i64 = {
        let stats: std::collections::HashMap<String, i64> = conn.hgetall("kl:{amy-serum}:stats").await.unwrap();
        stats.iter().filter(|(k, _)| k.starts_with("c|")).map(|(_, v)| v).sum()
    };
    assert_eq!(clicks, 200);
    assert_eq!(app.link_totals("amy-serum").await["clicks"], 200);
}

/// A link never read before Redis went down cannot be followed (kolink cannot know where it
/// goes): `503` with `Retry-After`, and no `Location`.
#[tokio::test]
async fn a_link_unknown_to_the_process_during_an_outage_is_unavailable() {
    let mut app = spawn_app(Backend::Redis).await;
    app.seed().await;
    app.redis.as_mut().unwrap().kill();
    let r = app.tap("amy-serum").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.headers().get("location").is_none());
}

/// Redis that stops answering writes: the click goes to the spool after 250 ms and the
/// redirect is answered; when Redis answers again the click is in it.
#[tokio::test]
async fn a_redirect_waits_for_a_stalled_redis_only_so_long() {
    let app = spawn_app(Backend::Redis).await;
    app.seed().await;
    app.tap("amy-serum").await; // the link is cached now
    let mut conn = app.redis.as_ref().unwrap().connection().await;
    // Writes stall for 20 s; kolink's deadline for a click write is 250 ms.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(20_000)
        .arg("WRITE")
        .query_async(&mut conn)
        .await
        .unwrap();
    let began = std::time::Instant::now();
    let cid = app.click_id("amy-serum").await;
    let took = began.elapsed();
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    let parsed = kolink::domain::ClickId::parse(&cid).unwrap();
    let id = format!("{}-{}", parsed.entry.ms, parsed.entry.seq);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply: redis::streams::StreamRangeReply = conn.xrange("kl:{amy-serum}:clicks", &id, &id).await.unwrap();
        if reply.ids.len() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "the spooled click never reached Redis"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

per_store!(link_previews_count_as_bots_and_as_previews_by_app);
async fn link_previews_count_as_bots_and_as_previews_by_app(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    for ua in [
        "WhatsApp/2.24.8.78 A",
        "WhatsApp/2.2413.51 i",
        "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
        "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
        // LINE's card fetcher names Facebook's first.
        "facebookexternalhit/1.1;line-poker/1.0",
    ] {
        let r = app.tap_as("amy-serum", ua).await;
        assert_eq!(r.status(), 302);
        assert!(!r.headers()["location"].to_str().unwrap().contains("kl_cid"), "{ua}");
    }
    let s = app.get_ok("/api/v1/links/amy-serum/stats").await;
    assert_eq!(
        (s["totals"]["clicks"].as_u64(), s["totals"]["bot_clicks"].as_u64()),
        (Some(0), Some(5))
    );
    assert_eq!(s["totals"]["previews"], 4, "the crawler is a bot, not a preview");
    assert_eq!(
        s["breakdown"]["preview"],
        json!([{"key": "whatsapp", "clicks": 2}, {"key": "bluesky", "clicks": 1}, {"key": "line", "clicks": 1}])
    );
}

per_store!(in_app_browsers_are_people_named_in_the_app_breakdown);
async fn in_app_browsers_are_people_named_in_the_app_breakdown(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let line = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/14.3.1";
    let threads = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Barcelona 330.0.3.29.91 (iPhone15,3; iOS 17_4; en_US; en; scale=3.00; 1290x2796; 589104556)";
    for ua in [line, line, threads, PHONE] {
        assert!(app.tap_as("amy-serum", ua).await.headers()["location"]
            .to_str()
            .unwrap()
            .contains("kl_cid"));
    }
    let s = app.get_ok("/api/v1/links/amy-serum/stats").await;
    assert_eq!(s["totals"]["clicks"], 4);
    assert_eq!(
        s["breakdown"]["app"],
        json!([{"key": "line", "clicks": 2}, {"key": "instagram", "clicks": 1}, {"key": "threads", "clicks": 1}])
    );
}

per_store!(more_than_ten_clicks_a_minute_from_one_visitor_are_suspicious);
async fn more_than_ten_clicks_a_minute_from_one_visitor_are_suspicious(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    for _ in 0..13 {
        // Never refused for rate: every tap is redirected.
        assert_eq!(app.tap("amy-serum").await.status(), 302);
    }
    app.tap_as("amy-serum", &format!("{PHONE} other")).await;
    let t = app.link_totals("amy-serum").await;
    assert_eq!(
        (
            t["clicks"].as_u64(),
            t["suspicious_clicks"].as_u64(),
            t["unique_clicks"].as_u64()
        ),
        (Some(11), Some(3), Some(2))
    );
}

per_store!(a_user_agent_with_non_ascii_bytes_is_a_person);
async fn a_user_agent_with_non_ascii_bytes_is_a_person(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let ua = "Mozilla/5.0 (Linux; Android 13; Xiaomi 红米 Note 12) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";
    let r = app
        .api
        .get(app.url("/amy-serum"))
        .header(
            "user-agent",
            reqwest::header::HeaderValue::from_bytes(ua.as_bytes()).unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("kl_cid"));
    let t = app.link_totals("amy-serum").await;
    assert_eq!((t["clicks"].as_u64(), t["bot_clicks"].as_u64()), (Some(1), Some(0)));
}

per_store!(qr_codes_hold_the_short_url_marked_as_a_scan);
async fn qr_codes_hold_the_short_url_marked_as_a_scan(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let svg = app.api.get(app.url("/amy-serum/qr.svg")).send().await.unwrap();
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    let png = app.api.get(app.url("/amy-serum/qr.png")).send().await.unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    let bytes = png.bytes().await.unwrap();
    let mut reader = ::png::Decoder::new(std::io::Cursor::new(bytes.to_vec()))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = img.detect_grids();
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, app.url("/amy-serum?src=qr"));
    // A scan is a click from the QR source.
    let r = app.api.get(&content).header("user-agent", PHONE).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let s = app.get_ok("/api/v1/links/amy-serum/stats").await;
    assert_eq!(s["breakdown"]["source"], json!([{"key": "qr", "clicks": 1}]));
    assert_error(app.get("/nope-nope/qr.svg").await, 404, "not_found").await;
    assert_error(app.get("/amy-serum/qr.gif").await, 404, "not_found").await;
    // HEAD answers the same headers, as for the redirect (a link checker's way to look).
    let head = app.api.head(app.url("/amy-serum/qr.svg")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "image/svg+xml");
    assert!(head.bytes().await.unwrap().is_empty());
}

per_store!(a_short_link_with_a_trailing_slash_still_redirects);
/// Some apps and people add a `/` to a link they share: `/{code}/` is the same redirect, and
/// the same click, as `/{code}`.
async fn a_short_link_with_a_trailing_slash_still_redirects(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let r = app.tap("amy-serum/").await;
    assert_eq!(r.status(), 302);
    assert!(r.headers()["location"].to_str().unwrap().contains("kl_cid="));
    let head = app.api.head(app.url("/amy-serum/")).send().await.unwrap();
    assert_eq!(head.status(), 302);
    assert_eq!(app.link_totals("amy-serum").await["clicks"], 1);
    assert_error(app.tap("nope-nope/").await, 404, "not_found").await;
    // Other paths are not read as codes.
    assert_eq!(app.get("/api/v1/campaigns/").await.status(), 404);
}
