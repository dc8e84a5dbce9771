//! kolink.js in a real browser: headless Chromium (Debian's `chromium`, which scripts/test
//! installs) opens a small shop served on loopback that imitates Shopify's cart endpoint and a
//! WooCommerce checkout form.

use std::process::Command;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};

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
    let (profile, url) = (profile.to_owned(), url.to_owned());
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
            .arg("--dump-dom")
            .arg(&url)
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
