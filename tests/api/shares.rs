//! Sharing with a KOL: a revocable, expiring read-only link to their own figures.

use chrono::TimeDelta;
use kolink::clock::ManualClock;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with_clock, Backend, TestApp};

async fn share(app: &TestApp, kol: &str, body: Value) -> Value {
    app.post_expect(&format!("/api/v1/kols/{kol}/shares"), &body, 201).await
}

async fn open(app: &TestApp, url: &str) -> reqwest::Response {
    app.api.get(format!("{url}.json")).send().await.unwrap()
}

per_store!(a_kol_sees_their_own_links_and_figures_and_nothing_else);
async fn a_kol_sees_their_own_links_and_figures_and_nothing_else(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.create_kol("ben", 900).await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "ben", "code": "ben-1", "coupon": "BEN5"}))
        .await;
    app.tap("amy-serum").await;
    app.tap("ben-1").await;
    let secret = app.create_shop("acme").await;
    let order = json!({"order_id": "secret-order-77", "event": "purchase", "amount": "1280", "currency": "TWD", "coupon": "AMY10"});
    app.webhook_ok("acme", &secret, &order).await;

    let s = share(&app, "amy", json!({})).await;
    let (token, url) = (s["token"].as_str().unwrap(), s["url"].as_str().unwrap());
    assert_eq!(url, app.url(&format!("/s/{token}")));
    let r = open(&app, url).await;
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["kol"], "amy");
    assert_eq!(page["links"].as_array().unwrap().len(), 1);
    let link = &page["links"][0];
    assert_eq!(link["code"], "amy-serum");
    assert_eq!(link["short_url"], app.url("/amy-serum"));
    assert_eq!(link["qr_svg"], app.url("/amy-serum/qr.svg"));
    // The campaign by the name the KOL knows it by, on the page too.
    assert_eq!(
        (link["campaign"].as_str(), link["campaign_name"].as_str()),
        (Some("spring-sale"), Some("Campaign spring-sale"))
    );
    let html = app.api.get(url).header("accept", "text/html").send().await.unwrap();
    let html = html.text().await.unwrap();
    assert!(html.contains("Campaign spring-sale · "));
    assert!(
        html.contains(r#"<p class="muted" id="kpi-period">Totals of every day</p>"#),
        "{html}"
    );
    // The coupon the KOL gives their followers, with the link it belongs to.
    assert_eq!(link["coupon"], "AMY10");
    assert!(html.contains(r#"Coupon <b class="coupon">AMY10</b>"#), "{html}");
    // Its chart is drawn for a phone's width, so its text is not shrunk to a few pixels there.
    assert!(html.contains(r#"viewBox="0 0 380 "#), "{html}");
    // On a narrow screen the short URL breaks before its code, never inside it (the KOL reads
    // it out or types it: "…/a" over "my-serum" was read as "my-serum").
    assert!(
        html.contains(&format!(
            r#"<span>{}/</span><wbr><span class="code">amy-serum</span>"#,
            app.url("")
        )),
        "{html}"
    );
    // The figures equal the analyst's.
    let totals = app.link_totals("amy-serum").await;
    for f in ["clicks", "unique_clicks", "conversions", "ctr", "conversion_rate"] {
        assert_eq!(page["totals"][f], totals[f], "{f}");
    }
    assert_eq!(page["series"].as_array().unwrap().len(), 30);
    let text = page.to_string();
    for private in ["secret-order-77", "ben", "1280", "revenue", "cost", "acme"] {
        assert!(!text.contains(private), "the page leaks {private}: {text}");
    }
    // Tokens are shown once: the list has none.
    let listed = app.get_ok("/api/v1/kols/amy/shares").await;
    assert_eq!(listed["shares"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(token));
}

per_store!(a_link_that_no_longer_redirects_is_marked_and_offers_no_copy_on_the_kols_page);
/// A KOL must not hand out a link that leads to a "gone" page: a disabled or expired link says
/// so on their page, without its copy button or QR download, in the page's JSON too.
async fn a_link_that_no_longer_redirects_is_marked_and_offers_no_copy_on_the_kols_page(backend: Backend) {
    let clock = ManualClock::at(chrono::Utc::now());
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    let soon = (kolink::clock::Clock::now(&*clock) + TimeDelta::hours(1)).to_rfc3339();
    app.create_link(json!({"campaign": "spring-sale", "kol": "amy", "code": "amy-live"}))
        .await;
    app.create_link(json!({"campaign": "spring-sale", "kol": "amy", "code": "amy-soon", "expires_at": soon}))
        .await;
    app.patch_ok("/api/v1/links/amy-serum", &json!({"status": "disabled"}))
        .await;
    clock.advance(TimeDelta::hours(2));
    let s = share(&app, "amy", json!({})).await;
    let url = s["url"].as_str().unwrap().to_owned();

    let page: Value = open(&app, &url).await.json().await.unwrap();
    let status = |code: &str| {
        page["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["code"] == code)
            .map(|l| l["status"].clone())
    };
    assert_eq!(status("amy-live"), Some(json!("active")));
    assert_eq!(status("amy-serum"), Some(json!("disabled")));
    assert_eq!(status("amy-soon"), Some(json!("expired")));
    for lang in ["en", "zh-TW"] {
        let html = app.page_text(&format!("{url}?lang={lang}")).await;
        assert!(
            html.contains(&format!(r#"data-copy="{}""#, app.url("/amy-live"))),
            "{html}"
        );
        // Hidden until the page's script shows it: without scripts it would do nothing.
        assert!(
            html.contains(&format!(
                r#"<button type="button" hidden data-copy="{}""#,
                app.url("/amy-live")
            )),
            "{html}"
        );
        // A link without a QR code leaves no empty column beside its text.
        assert!(!html.contains("<span></span>"), "{html}");
        for ended in ["/amy-serum", "/amy-soon"] {
            assert!(
                !html.contains(&format!(r#"data-copy="{}""#, app.url(ended))),
                "{ended}: {html}"
            );
            assert!(
                !html.contains(&format!(r#"href="{}/qr.png""#, app.url(ended))),
                "{ended}: {html}"
            );
            assert!(
                !html.contains(&format!(r#"src="{}/qr.svg""#, app.url(ended))),
                "no QR code to print: {html}"
            );
        }
        let (disabled, expired) = if lang == "en" {
            (
                "Disabled: this link no longer leads anywhere",
                "Expired: this link no longer leads anywhere",
            )
        } else {
            ("已停用：此連結已不再轉址", "已過期：此連結已不再轉址")
        };
        assert!(html.contains(disabled) && html.contains(expired), "{html}");
    }
}

per_store!(a_revoked_or_expired_share_is_gone_and_a_forged_one_unknown);
async fn a_revoked_or_expired_share_is_gone_and_a_forged_one_unknown(backend: Backend) {
    let clock = ManualClock::at(chrono::Utc::now());
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    let s = share(&app, "amy", json!({})).await;
    let url = s["url"].as_str().unwrap().to_owned();
    assert_eq!(open(&app, &url).await.status(), 200);
    // HEAD of the page answers its headers, as a link checker asks.
    let head = app.api.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let r = app
        .api
        .delete(app.url(&format!("/api/v1/shares/{}", s["id"].as_str().unwrap())));
    assert_eq!(r.bearer_auth(crate::helpers::TOKEN).send().await.unwrap().status(), 204);
    assert_error(open(&app, &url).await, 410, "link_gone").await;
    assert_eq!(app.api.head(&url).send().await.unwrap().status(), 410);

    let expires = (kolink::clock::Clock::now(&*clock) + TimeDelta::hours(1)).to_rfc3339();
    let s = share(&app, "amy", json!({"campaign": "spring-sale", "expires_at": expires})).await;
    let url = s["url"].as_str().unwrap().to_owned();
    assert_eq!(open(&app, &url).await.status(), 200);
    clock.advance(TimeDelta::hours(2));
    assert_error(open(&app, &url).await, 410, "link_gone").await;

    // The right id with a wrong secret, and junk.
    let forged = format!("{}_{}", s["id"].as_str().unwrap(), "A".repeat(43));
    assert_error(open(&app, &app.url(&format!("/s/{forged}"))).await, 404, "not_found").await;
    assert_error(open(&app, &app.url("/s/nope")).await, 404, "not_found").await;
    let r = app.post("/api/v1/kols/nobody/shares", &json!({})).await;
    assert_error(r, 404, "not_found").await;
    let r = app
        .post(
            "/api/v1/kols/amy/shares",
            &json!({"expires_at": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_error(r, 400, "invalid_input").await;
}

per_store!(shares_refuse_unknown_campaigns_and_bad_fields);
async fn shares_refuse_unknown_campaigns_and_bad_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let r = app.post("/api/v1/kols/amy/shares", &json!({"campaign": "nope"})).await;
    assert_error(r, 400, "unknown_campaign").await;
    let r = app
        .post("/api/v1/kols/amy/shares", &json!({"campaign": "Not A Slug"}))
        .await;
    assert_error(r, 400, "invalid_input").await;
    let r = app
        .post(
            "/api/v1/kols/amy/shares",
            &json!({"expires_at": "+10000-01-01T00:00:00Z"}),
        )
        .await;
    assert_error(r, 400, "invalid_input").await;
    let r = app.post("/api/v1/kols/amy/shares", &json!({"who": "me"})).await;
    assert_error(r, 400, "invalid_input").await;
    let r = app
        .api
        .delete(app.url("/api/v1/shares/nope"))
        .bearer_auth(crate::helpers::TOKEN);
    assert_error(r.send().await.unwrap(), 404, "not_found").await;
}

per_store!(pages_of_gone_and_unknown_links_speak_the_readers_language);
async fn pages_of_gone_and_unknown_links_speak_the_readers_language(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let s = share(&app, "amy", json!({})).await;
    let url = s["url"].as_str().unwrap().to_owned();
    let r = app
        .api
        .delete(app.url(&format!("/api/v1/shares/{}", s["id"].as_str().unwrap())));
    assert_eq!(r.bearer_auth(crate::helpers::TOKEN).send().await.unwrap().status(), 204);
    let page = |url: String, language: &'static str| {
        let api = app.api.clone();
        async move {
            let r = api
                .get(url)
                .header("accept", "text/html")
                .header("accept-language", language)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for (url, status, zh, en) in [
        (
            url.clone(),
            410,
            "這個分享連結已被撤銷或已過期。",
            "This share link was revoked or has expired.",
        ),
        (
            app.url("/s/nope_x"),
            404,
            "這個分享連結不存在",
            "This share link does not exist.",
        ),
        (
            app.url("/no-such-code"),
            404,
            "這個連結不存在",
            "This link does not exist.",
        ),
    ] {
        let (got, text) = page(url.clone(), "zh-TW,zh;q=0.9").await;
        assert_eq!(got, status, "{url}");
        assert!(
            text.contains(r#"<html lang="zh-Hant-TW""#) && text.contains(zh),
            "{url}: {text}"
        );
        let (_, text) = page(url.clone(), "en-US").await;
        assert!(
            text.contains(r#"<html lang="en""#) && text.contains(en),
            "{url}: {text}"
        );
    }
    // `?lang=` wins over the browser, as on every page.
    let (_, text) = page(format!("{url}?lang=zh-TW"), "en-US").await;
    assert!(text.contains("這個分享連結已被撤銷或已過期。"), "{text}");
}

/// Pages people open (the KOL page, the dashboard, error pages) cannot be framed by another
/// site, and no answer's type is sniffed.
#[tokio::test]
async fn pages_cannot_be_framed_and_no_answer_is_sniffed() {
    let app = spawn_app(Backend::Embedded).await;
    app.seed().await;
    let s = share(&app, "amy", json!({})).await;
    let url = s["url"].as_str().unwrap().to_owned();
    let html = |u: String| {
        let api = app.api.clone();
        async move { api.get(u).header("accept", "text/html").send().await.unwrap() }
    };
    for (what, r) in [
        ("the KOL page", html(url.clone()).await),
        ("a gone share", html(app.url("/s/nope")).await),
        ("an unknown link", html(app.url("/nope-nope")).await),
        ("the sign-in page", html(app.url("/app/login")).await),
    ] {
        let h = r.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["content-security-policy"], "frame-ancestors 'none'", "{what}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    }
    for r in [
        open(&app, &url).await,
        app.get("/api/v1/campaigns").await,
        app.get("/api/v1/nothing").await,
        app.api
            .post(app.url("/webhooks/conversions/acme"))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{}", r.url());
    }
}

per_store!(a_kols_page_with_a_slash_after_it_leads_to_the_page_and_a_missing_page_is_html);
/// A page's address with a slash after it (apps and people add one to an address they share)
/// leads to the page; a page that is not there is an HTML page for a browser. The API stays
/// JSON whatever is asked for.
async fn a_kols_page_with_a_slash_after_it_leads_to_the_page_and_a_missing_page_is_html(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let s = share(&app, "amy", json!({})).await;
    let token = s["token"].as_str().unwrap();
    let get = |path: String| app.api.get(app.url(&path)).header("accept", "text/html").send();
    for (from, to) in [
        (format!("/s/{token}/"), format!("/s/{token}")),
        (format!("/s/{token}/?lang=zh-TW"), format!("/s/{token}?lang=zh-TW")),
        ("/app/".to_owned(), "/app".to_owned()),
        ("/app/login/".to_owned(), "/app/login".to_owned()),
    ] {
        let r = get(from.clone()).await.unwrap();
        assert_eq!(r.status(), 308, "{from}");
        assert_eq!(r.headers()["location"], to.as_str(), "{from}");
    }
    let page = get(format!("/s/{token}")).await.unwrap();
    assert_eq!(page.status(), 200);
    for missing in ["/app/nothing", "/s/", "/app//"] {
        let r = get(missing.to_owned()).await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
        assert!(
            r.headers()["content-type"].to_str().unwrap().starts_with("text/html"),
            "{missing}"
        );
        assert!(r.text().await.unwrap().contains("Nothing is here"), "{missing}");
    }
    let zh = get("/app/nothing?lang=zh-TW".to_owned()).await.unwrap();
    assert!(zh.text().await.unwrap().contains("這裡沒有頁面"));
    // A client that asks for JSON is answered in JSON there too; the API always.
    let r = app.api.get(app.url("/app/nothing")).send().await.unwrap();
    assert_error(r, 404, "not_found").await;
    for path in ["/api/v1/nothing", "/api/v1/campaigns/", "/webhooks/nothing"] {
        let r = get(path.to_owned()).await.unwrap();
        assert_error(r, 404, "not_found").await;
    }
}
