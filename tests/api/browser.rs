//! kolink.js in a real browser: headless Chromium (Debian's `chromium`, which scripts/test
//! installs) opens a small shop served on loopback that imitates Shopify's cart endpoint and a
//! WooCommerce checkout form.

use std::process::Command;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};

use serde_json::json;

use crate::helpers::{spawn_app, Backend};

/// What the imitation shop saw: the bodies posted to `/cart/update.js`.
type Posts = Arc<Mutex<Vec<String>>>;

fn page(kolink: &str) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Glow</title>
<script>window.Shopify = {{ shop: "glow.myshopify.com" }};</script>
<script src="{kolink}/kolink.js"></script></head>
<body><h1>Serum</h1><form class="checkout woocommerce-checkout" method="post"></form>
<script>
setTimeout(function () {{
  document.body.setAttribute("data-kl", (window.kolink || {{}}).clickId || "none");
  var f = document.querySelector("form.checkout input[name=kl_cid]");
  document.body.setAttribute("data-field", f ? f.value : "none");
}}, 300);
</script></body></html>"#
    )
}

/// Starts the imitation shop on a free loopback port; returns its base URL.
fn shop(kolink: String, posts: Posts) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let (kolink, posts) = (kolink.clone(), posts.clone());
        App::new()
            .route(
                "/cart/update.js",
                web::post().to(move |body: String| {
                    let posts = posts.clone();
                    async move {
                        posts.lock().unwrap().push(body);
                        HttpResponse::Ok().json(serde_json::json!({"token": "c1"}))
                    }
                }),
            )
            .default_service(web::to(move || {
                let html = page(&kolink);
                async move { HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html) }
            }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    base
}

/// The DOM of `url` after its scripts ran, as headless Chromium with `profile` sees it.
async fn dump_dom(profile: &std::path::Path, url: &str) -> String {
    chromium(profile, &["--dump-dom", url]).await
}

/// A phone-sized screenshot of `url`, kept under `target/screenshots/<name>.png` as a test
/// artifact; returns its path.
async fn screenshot(url: &str, name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&path);
    let profile = tempfile::tempdir().unwrap();
    chromium(
        profile.path(),
        &[
            "--hide-scrollbars",
            "--window-size=412,1100",
            &format!("--screenshot={}", path.display()),
            url,
        ],
    )
    .await;
    path
}

async fn chromium(profile: &std::path::Path, args: &[&str]) -> String {
    let profile = profile.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(&args)
            .output()
            .expect("chromium must be installed (run scripts/test, which installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn kolink_js_keeps_the_click_id_and_hands_it_to_the_cart_and_the_checkout() {
    let app = spawn_app(Backend::Embedded).await;
    app.seed().await;
    let cid = app.click_id("amy-serum").await;
    let posts = Posts::default();
    let shop = shop(app.address.clone(), posts.clone());
    let profile = tempfile::tempdir().unwrap();

    // The landing page, as the redirect leaves the follower on it.
    let dom = dump_dom(
        profile.path(),
        &format!("{shop}/products/serum?utm_source=instagram&kl_cid={cid}"),
    )
    .await;
    assert!(dom.contains(&format!(r#"data-kl="{cid}""#)), "{dom}");
    assert!(
        dom.contains(&format!(r#"data-field="{cid}""#)),
        "the checkout form carries it: {dom}"
    );
    let sent = posts.lock().unwrap().clone();
    let expected = serde_json::json!({"attributes": {"kl_cid": cid}});
    assert!(
        sent.iter()
            .any(|b| serde_json::from_str::<serde_json::Value>(b).ok() == Some(expected.clone())),
        "the cart attribute was set: {sent:?}"
    );

    // Later, another page without kl_cid in its URL: the cookie kept it.
    let dom = dump_dom(profile.path(), &format!("{shop}/cart")).await;
    assert!(dom.contains(&format!(r#"data-kl="{cid}""#)), "{dom}");

    // A visitor who never came through a link has none, and nothing is posted for them.
    let fresh = tempfile::tempdir().unwrap();
    let before = posts.lock().unwrap().len();
    let dom = dump_dom(fresh.path(), &format!("{shop}/products/serum")).await;
    assert!(dom.contains(r#"data-kl="none""#), "{dom}");
    assert_eq!(posts.lock().unwrap().len(), before);
}

#[tokio::test]
async fn kolink_js_is_served_as_a_script() {
    let app = spawn_app(Backend::Embedded).await;
    let r = app.api.get(app.url("/kolink.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/javascript"));
    assert!(r.text().await.unwrap().contains("/cart/update.js"));
}

/// The text of the `<b>` inside the element with `data-figure="<name>"`.
fn figure<'a>(dom: &'a str, name: &str) -> &'a str {
    let at = dom
        .find(&format!(r#"data-figure="{name}""#))
        .unwrap_or_else(|| panic!("{name} on the page"));
    let b = at + dom[at..].find("<b>").unwrap() + 3;
    &dom[b..b + dom[b..].find("</b>").unwrap()]
}

#[tokio::test]
async fn the_kol_page_shows_the_figures_of_the_api_in_the_kols_language() {
    let app = spawn_app(Backend::Embedded).await;
    app.seed().await;
    for i in 0..3 {
        app.tap_as("amy-serum", &format!("{} p{i}", crate::helpers::PHONE))
            .await;
    }
    app.post_expect(
        "/api/v1/links/amy-serum/metrics",
        &serde_json::json!({"date": chrono::Utc::now().date_naive().to_string(), "impressions": 1200}),
        200,
    )
    .await;
    let secret = app.create_shop("acme").await;
    let order = serde_json::json!({"order_id": "1", "event": "purchase", "amount": "1280", "currency": "TWD", "coupon": "AMY10"});
    app.webhook_ok("acme", &secret, &order).await;
    let share = app
        .post_expect("/api/v1/kols/amy/shares", &serde_json::json!({}), 201)
        .await;
    let url = share["url"].as_str().unwrap().to_owned();
    let json = app.json_of(&format!("{url}.json")).await;

    let profile = tempfile::tempdir().unwrap();
    let dom = dump_dom(profile.path(), &url).await;
    let t = &json["totals"];
    assert_eq!(figure(&dom, "clicks"), t["clicks"].to_string());
    assert_eq!(figure(&dom, "unique_clicks"), t["unique_clicks"].to_string());
    assert_eq!(figure(&dom, "conversions"), t["conversions"].to_string());
    assert_eq!(
        figure(&dom, "ctr"),
        format!("{:.2} %", t["ctr"].as_f64().unwrap() * 100.0)
    );
    assert_eq!(
        figure(&dom, "conversion_rate"),
        format!("{:.2} %", t["conversion_rate"].as_f64().unwrap() * 100.0)
    );
    assert!(dom.contains(&app.url("/amy-serum")), "the short URL");
    assert!(dom.contains(&app.url("/amy-serum/qr.svg")), "the QR code");
    assert!(
        !dom.contains("1280") && !dom.contains("acme"),
        "no order or money on the page"
    );

    let zh = dump_dom(profile.path(), &format!("{url}?lang=zh-TW")).await;
    assert!(zh.contains("點擊") && zh.contains("轉換率"), "{zh}");
    assert!(
        zh.contains(r#"<span class="key area"></span>點擊</span>"#),
        "the chart's legend in the KOL's language: {zh}"
    );
    let shot = screenshot(&url, "kol-page").await;
    assert_eq!(&std::fs::read(&shot).unwrap()[1..4], b"PNG");
    screenshot(&format!("{url}?lang=zh-TW"), "kol-page-zh-tw").await;

    // Revoked: the KOL's browser shows a page that says so, in the language they chose last
    // (`?lang=zh-TW` above, kept by the browser).
    let id = share["id"].as_str().unwrap();
    let r = app
        .api
        .delete(app.url(&format!("/api/v1/shares/{id}")))
        .bearer_auth(crate::helpers::TOKEN);
    assert_eq!(r.send().await.unwrap().status(), 204);
    let gone = dump_dom(profile.path(), &url).await;
    assert!(gone.contains("已失效") && gone.contains("已被撤銷"), "{gone}");
    let gone = dump_dom(profile.path(), &format!("{url}?lang=en")).await;
    assert!(
        gone.contains("No longer available") && gone.contains("revoked"),
        "{gone}"
    );
    let r = app.api.get(&url).header("accept", "text/html").send().await.unwrap();
    assert_eq!(r.status(), 410);
}

/// The daily chart's legend names `names` in order, each entry laid out beside the other, not
/// over it (drawn inside the chart, a Chinese legend had its entries written over each other).
async fn assert_legend_reads(browser: &crate::webdriver::Browser, names: [&str; 2]) {
    let source = browser.source().await;
    let legend = source
        .split(r#"<p class="legend""#)
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .expect("a legend above the chart");
    let at = |name: &str| {
        legend
            .find(name)
            .unwrap_or_else(|| panic!("{name} missing from {legend}"))
    };
    assert!(at(names[0]) < at(names[1]), "{legend}");
    let entries = browser.boxes(".legend .entry").await;
    let [first, second] = entries[..] else {
        panic!("two legend entries: {entries:?}")
    };
    assert!(
        first[2] > first[0] && second[2] > second[0],
        "entries with a width: {entries:?}"
    );
    assert!(
        first[2] <= second[0],
        "the second entry starts where the first ends: {entries:?}"
    );
}

/// The tiers of the tiers table's rows, in order.
fn tier_order(html: &str) -> Vec<&str> {
    html.match_indices(r#"data-tier=""#)
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

/// The KOLs of the leaderboard's rows, in order.
fn leaderboard_order(html: &str) -> Vec<String> {
    let table = &html[html.find(r#"id="leaderboard""#).unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    table
        .match_indices(r#"data-kol=""#)
        .map(|(i, m)| {
            let rest = &table[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

/// A browser `width` pixels wide, signed in, on the seed's campaign page.
async fn on_the_campaign_page(app: &crate::helpers::TestApp, width: u32) -> crate::webdriver::Browser {
    let browser = crate::webdriver::Browser::start(width, 900).await;
    browser.open(&app.url("/app/login")).await;
    browser.type_into("#token", crate::helpers::TOKEN).await;
    browser.click("#sign-in").await;
    browser.wait_for(r#"data-campaign="spring-sale""#).await;
    browser.open(&app.url("/app/campaigns/spring-sale")).await;
    browser.wait_for(r#"id="leaderboard""#).await;
    browser
}

/// The widths the daily charts the browser shows were drawn for (their `viewBox`).
async fn shown_chart_widths(browser: &crate::webdriver::Browser) -> Vec<String> {
    let script = "return Array.from(document.querySelectorAll('svg.chart')) \
                  .filter(e => e.getBoundingClientRect().width > 0) \
                  .map(e => e.getAttribute('viewBox').split(' ')[2]);";
    serde_json::from_value(browser.script(script, serde_json::json!([])).await).unwrap()
}

/// A KOL's page, opened on a laptop as well as on a phone, shows its chart drawn for about the
/// screen's width (on a laptop the phone's chart was stretched to twice its text's size).
#[tokio::test]
async fn a_kols_page_draws_its_chart_for_the_screens_width() {
    let app = spawn_app(Backend::Embedded).await;
    app.seed().await;
    app.tap("amy-serum").await;
    let share = app
        .post_expect("/api/v1/kols/amy/shares", &serde_json::json!({}), 201)
        .await;
    let url = share["url"].as_str().unwrap().to_owned();
    // 640: a laptop's 1,280 pixels zoomed to 200 %, where the laptop's chart would shrink its
    // labels as the text around it grows (WCAG 1.4.4).
    for (width, drawn) in [(390, "380"), (640, "380"), (1280, "1000")] {
        let browser = crate::webdriver::Browser::start(width, 900).await;
        browser.open(&url).await;
        browser.wait_for(r#"class="links""#).await;
        assert_eq!(shown_chart_widths(&browser).await, [drawn], "at {width} px");
    }
}

#[tokio::test]
async fn the_dashboard_draws_its_chart_for_the_screens_width() {
    let app = spawn_app(Backend::Embedded).await;
    app.seed().await;
    app.tap("amy-serum").await;
    for (width, drawn) in [(390, "380"), (640, "380"), (1280, "1000")] {
        let browser = on_the_campaign_page(&app, width).await;
        // One chart is shown, drawn for about the screen's width, so that its labels read at
        // the size they were drawn (a 640-wide chart on a phone shrank them to about 8 px).
        assert_eq!(shown_chart_widths(&browser).await, [drawn], "at {width} px");
        let labels = browser.boxes("svg.chart text").await;
        let tallest = labels.iter().map(|b| b[3] - b[1]).fold(0.0, f64::max);
        assert!(tallest >= 11.0, "labels {tallest} px high at {width} px: {labels:?}");
        if width < 500 {
            browser.screenshot("dashboard-campaign-phone").await;
        }
    }
}

/// On a phone, an analyst opens a link card's insights form, types the day's impressions as
/// Instagram shows them ("1,000") and saves: the card says so and CTR counts them. Every field
/// and button is a finger's height.
#[tokio::test]
async fn an_analyst_reports_a_days_insights_from_a_phone() {
    let app = spawn_app(Backend::Embedded).await;
    app.seed().await;
    for i in 0..3 {
        app.tap_as("amy-serum", &format!("{} p{i}", crate::helpers::PHONE))
            .await;
    }
    let browser = on_the_campaign_page(&app, 390).await;
    let card = "#link-amy-serum details.report-day";
    browser.click(&format!("{card} summary")).await;
    browser
        .type_into(&format!("{card} input[name=impressions]"), "1,000")
        .await;
    browser.type_into(&format!("{card} input[name=likes]"), "40").await;
    let controls = browser
        .boxes(&format!(
            "{card} summary, {card} input:not([type=hidden]), {card} button"
        ))
        .await;
    assert!(controls.len() >= 9, "{controls:?}");
    for b in &controls {
        assert!(b[3] - b[1] >= 44.0, "a control {} px high: {controls:?}", b[3] - b[1]);
    }
    browser.screenshot("dashboard-insights-phone").await;
    // A typo: the page again, the reason beside the form, what was typed kept, the field at
    // fault marked and focused.
    browser.type_into(&format!("{card} input[name=reach]"), "12,00").await;
    browser.click(&format!("{card} button")).await;
    browser.wait_for("Not saved: Reach").await;
    let at_fault = browser
        .script(
            "const e = document.activeElement; return [e.name, e.getAttribute('aria-invalid'), \
             document.querySelector('#link-amy-serum input[name=impressions]').value];",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(at_fault, serde_json::json!(["reach", "true", "1,000"]));
    browser.screenshot("dashboard-insights-refused-phone").await;
    browser
        .script(
            "document.querySelector('#link-amy-serum input[name=reach]').value = '';",
            serde_json::json!([]),
        )
        .await;
    browser.click(&format!("{card} button")).await;
    browser.wait_for("Saved for ").await;
    // Back on the card: what was saved, the days reported, the form holding that day.
    browser.wait_for("Days reported, newest first").await;
    browser.screenshot("dashboard-insights-saved-phone").await;
    let totals = app.get_ok("/api/v1/campaigns/spring-sale/stats").await["totals"].clone();
    assert_eq!(
        (totals["impressions"].as_u64(), totals["ctr"].as_f64()),
        (Some(1000), Some(0.003))
    );
}

/// On a phone, every link and control of the campaign page is a finger's size, the page never
/// scrolls sideways, and a link of the leaderboard that takes the keyboard's focus, going back
/// through its headings as Shift+Tab does or forward as Tab does, is scrolled into full view,
/// clear of the sticky KOL column (the accessibility audit found 9 of 17 hidden under it, and
/// some cut by the table's edge: WCAG 2.4.11).
#[tokio::test]
async fn on_a_phone_every_target_is_a_fingers_size_and_focus_is_never_under_the_sticky_column() {
    let app = spawn_app(Backend::Embedded).await;
    app.seed().await;
    app.tap("amy-serum").await;
    app.post_expect(
        "/api/v1/links/amy-serum/metrics",
        &serde_json::json!({"date": "2026-11-20", "impressions": 400}),
        200,
    )
    .await;
    let browser = on_the_campaign_page(&app, 390).await;
    // The card's days reported (a table with a column of buttons) open: its hidden column
    // heading, placed by the page rather than by the table's box, widened the page by 277 px.
    browser
        .open(&app.url("/app/campaigns/spring-sale?edit=amy-serum"))
        .await;
    browser.wait_for("Days reported, newest first").await;
    let widths = browser
        .script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(widths[0], widths[1], "the page scrolls sideways: {widths}");
    let small: Vec<serde_json::Value> = serde_json::from_value(
        browser
            .script(
                "return Array.from(document.querySelectorAll('main a, main button, main input:not([type=hidden]), main select, main summary')) \
                   .filter(e => e.getClientRects().length > 0 && !e.closest('details:not([open]) > :not(summary)')) \
                   .map(e => [e.outerHTML.slice(0, 90), e.getBoundingClientRect()]) \
                   .filter(([_, r]) => r.height < 44 || r.width < 44);",
                serde_json::json!([]),
            )
            .await,
    )
    .unwrap();
    assert!(small.is_empty(), "under 44 px: {small:#?}");
    let links = "#leaderboard thead th:not(:first-child) a";
    let count = browser
        .script(
            &format!("return document.querySelectorAll('{links}').length;"),
            serde_json::json!([]),
        )
        .await
        .as_u64()
        .unwrap();
    assert!(count >= 10, "{count} sort links");
    let mut hidden = Vec::new();
    for i in (0..count).rev().chain(0..count) {
        // A headless window is never the focused one, so it fires no focus events: the one a
        // focused window fires after `focus()` is sent by hand.
        let focus = format!(
            "const a = document.querySelectorAll('{links}')[{i}]; a.focus(); \
             a.dispatchEvent(new FocusEvent('focusin', {{ bubbles: true }}));"
        );
        browser.script(&focus, serde_json::json!([])).await;
        // Measured by the next command, after what the page does on focus.
        let measure = format!(
            "const a = document.querySelectorAll('{links}')[{i}].getBoundingClientRect(); \
             return [{i}, a.left, a.right, \
                     document.querySelector('#leaderboard th').getBoundingClientRect().right, \
                     document.querySelector('#leaderboard').parentElement.getBoundingClientRect().right];"
        );
        let at = browser.script(&measure, serde_json::json!([])).await;
        let x = |k: usize| at[k].as_f64().unwrap();
        if x(1) < x(3) - 1.0 || x(2) > x(4) + 1.0 {
            hidden.push(at);
        }
    }
    assert!(hidden.is_empty(), "focused out of full view: {hidden:?}");

    // A refused new link: its field at fault takes the focus, though the form's address names
    // its place on the page (`#new-link`), where a browser skips `autofocus`.
    browser.type_into("#mint input[name=kol]", "nobody").await;
    browser.click("#mint button").await;
    browser.wait_for("Not created:").await;
    let focused = browser
        .script(
            "return [location.hash, document.activeElement.name, document.activeElement.getAttribute('aria-invalid')];",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(focused, serde_json::json!(["#new-link", "kol", "true"]));
}

#[tokio::test]
async fn an_analyst_signs_in_reads_a_campaign_and_sorts_its_leaderboard() {
    let app = spawn_app(Backend::Embedded).await;
    app.seed().await;
    app.create_kol("ben", 700_000).await;
    app.create_link(serde_json::json!({"campaign": "spring-sale", "kol": "ben", "code": "ben-1", "cost": "100"}))
        .await;
    for i in 0..4 {
        app.tap_as("ben-1", &format!("{} b{i}", crate::helpers::PHONE)).await;
    }
    app.tap("amy-serum").await;
    let secret = app.create_shop("acme").await;
    let order = serde_json::json!({"order_id": "1", "event": "purchase", "amount": "9000", "currency": "TWD", "coupon": "AMY10"});
    app.webhook_ok("acme", &secret, &order).await;

    let browser = crate::webdriver::Browser::start(1280, 2000).await;
    browser.open(&app.url("/app")).await;
    assert!(browser.url().await.ends_with("/app/login"), "sent to sign in");
    browser.type_into("#token", crate::helpers::TOKEN).await;
    browser.click("#sign-in").await;
    browser.wait_for(r#"data-campaign="spring-sale""#).await;
    assert!(!browser.url().await.contains(crate::helpers::TOKEN));

    browser.click(r#"a[href="/app/campaigns/spring-sale"]"#).await;
    let page = browser.wait_for(r#"id="leaderboard""#).await;
    let json = app.get_ok("/api/v1/campaigns/spring-sale/stats").await;
    assert_eq!(figure(&page, "clicks"), json["totals"]["clicks"].to_string());
    assert_eq!(figure(&page, "conversions"), json["totals"]["conversions"].to_string());
    // Money on screen is grouped by thousands (1,280.00): the same amount as the API's.
    assert_eq!(
        figure(&page, "revenue").replace(',', ""),
        json["totals"]["revenue"].as_str().unwrap()
    );
    assert_eq!(
        figure(&page, "cost").replace(',', ""),
        json["totals"]["cost"].as_str().unwrap()
    );
    // ROI is computed from net revenue: its tile is there beside revenue's.
    assert_eq!(
        figure(&page, "net_revenue").replace(',', ""),
        json["totals"]["net_revenue"].as_str().unwrap()
    );
    // Tiers read in their own order, smallest first, with how many KOLs each holds.
    assert_eq!(tier_order(&page), ["micro", "macro"], "{page}");
    assert!(page.contains("<th>KOLs</th>"), "{page}");
    // On a desktop the leaderboard is not squeezed into the phone column's width.
    let board = browser.boxes("#leaderboard").await;
    assert!(board[0][2] - board[0][0] > 1000.0, "{board:?}");
    // Sorted by ROI first (amy's purchase), then by clicks once the header is clicked.
    let by_roi: Vec<String> = json["kols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kol"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(leaderboard_order(&page), by_roi);
    assert_eq!(by_roi, ["amy", "ben"]);
    assert_legend_reads(&browser, ["Clicks", "Conversions"]).await;
    browser.screenshot("dashboard-campaign").await;
    let sorted = sort_by_clicks(&browser, "desc", ("▾", "descending"), "asc").await;
    assert_eq!(leaderboard_order(&sorted), ["ben", "amy"]);
    // Sorted by clicks, the macro KOL leads the board; the tiers keep their own order.
    assert_eq!(tier_order(&sorted), ["micro", "macro"]);
    let by_clicks = app.get_ok("/api/v1/campaigns/spring-sale/stats?sort=clicks").await;
    assert_eq!(by_clicks["kols"][0]["kol"], "ben");
    // A second click on the sorted column turns it: fewest clicks first.
    let fewest = sort_by_clicks(&browser, "asc", ("▴", "ascending"), "desc").await;
    assert_eq!(leaderboard_order(&fewest), ["amy", "ben"]);
    assert!(
        sorted.contains(r#"data-code="ben-1""#) && sorted.contains("/ben-1/qr.svg"),
        "links with QR codes"
    );
    // A copy button copies (or, where the browser allows no copying, selects the link) and
    // says which, for screen readers too.
    browser.click(r#"[data-code="ben-1"] button[data-copy]"#).await;
    let mut said = serde_json::Value::Null;
    for _ in 0..100 {
        said = browser
            .script("return document.getElementById('copied').textContent", json!([]))
            .await;
        if said != "" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(said == "Copied" || said == "Selected: copy it", "{said}");
    let button = browser
        .script(
            r#"return document.querySelector('[data-code="ben-1"] button[data-copy]').textContent"#,
            json!([]),
        )
        .await;
    assert!(button == "✓" || button == said, "{button}");
    // Where nothing copies (an in-app browser without the clipboard), the whole short URL is
    // selected for the reader to copy: the host alone was.
    browser
        .script(
            "Object.defineProperty(navigator, 'clipboard', {value: undefined}); \
             document.execCommand = function () { return false; }; return 0",
            json!([]),
        )
        .await;
    browser.click(r#"[data-code="ben-1"] button[data-copy]"#).await;
    let selected = browser
        .script("return window.getSelection().toString()", json!([]))
        .await;
    assert_eq!(selected, format!("{}/ben-1", app.address), "the link selected by hand");
    // The leaderboard's KOL column stays in view while the table scrolls sideways.
    browser
        .script(
            "document.querySelector('#leaderboard').parentNode.scrollLeft = 600; return 0",
            json!([]),
        )
        .await;
    let name = browser.boxes("#leaderboard tbody td:first-child").await;
    let board = browser.boxes("#leaderboard").await;
    assert!(board[0][0] < -100.0, "the table scrolled: {board:?}");
    assert!(name[0][0] >= 0.0, "the first column did not: {name:?}");
    assert!(
        sorted.contains("discount_code") || sorted.contains("coupon AMY10"),
        "conversions with their audit"
    );

    // A link for a KOL kolink does not know: the page says why, and keeps what was typed.
    browser.type_into(r#"#mint input[name="kol"]"#, "nobody").await;
    browser.type_into(r#"#mint input[name="cost"]"#, "120").await;
    browser.click("#mint button").await;
    let refused = browser.wait_for(r#"role="alert""#).await;
    assert!(
        refused.contains("Not created:") && refused.contains("nobody"),
        "{refused}"
    );
    assert!(refused.contains(r#"value="120""#), "the cost kept");
    assert_eq!(
        app.get_ok("/api/v1/links?campaign=spring-sale").await["links"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // In Traditional Chinese.
    browser.open(&app.url("/app/campaigns/spring-sale?lang=zh-TW")).await;
    let zh = browser.wait_for("KOL 排行榜").await;
    assert!(zh.contains("KOL 排行榜") && zh.contains("轉換率"), "{zh}");
    assert_legend_reads(&browser, ["點擊", "轉換"]).await;
    browser.screenshot("dashboard-campaign-zh-tw").await;
}

/// Clicks the leaderboard's Clicks header (its link asking for `order`) and waits for the page
/// it leads to: the column marked sorted that way (`shown`: its arrow and `aria-sort`), its
/// header now offering `next`.
async fn sort_by_clicks(browser: &crate::webdriver::Browser, order: &str, shown: (&str, &str), next: &str) -> String {
    browser
        .click(&format!(r#"#leaderboard th a[href*="?sort=clicks&order={order}&"]"#))
        .await;
    let (arrow, aria) = shown;
    let page = browser.wait_for(&format!("Clicks {arrow}</a>")).await;
    let header =
        format!(r#"<th aria-sort="{aria}"><a href="/app/campaigns/spring-sale?sort=clicks&amp;order={next}&amp;"#);
    assert!(page.contains(&header), "{header} in {page}");
    page
}
