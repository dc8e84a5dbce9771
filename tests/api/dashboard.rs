//! The analyst's dashboard over HTTP: sign-in into an HttpOnly, SameSite=Strict session cookie,
//! CSRF-checked forms, no token in URLs, cookie reads only.

use reqwest::StatusCode;
use serde_json::json;

use kolink::clock::ManualClock;

use crate::helpers::{spawn_app, spawn_app_with_clock, Backend, TestApp, TOKEN};

/// Signs in with the admin token; returns the session cookie (`name=value`).
async fn sign_in(app: &TestApp) -> String {
    let r = app
        .api
        .post(app.url("/app/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(!location.contains(TOKEN), "no token in URLs: {location}");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    set.split(';').next().unwrap().to_owned()
}

/// A session signed in on `path`: its cookie, the page, and the page's form token.
async fn signed_in_on(app: &TestApp, path: &str) -> (String, String, String) {
    let cookie = sign_in(app).await;
    let page = signed_in_page(app, &cookie, path).await;
    let csrf = csrf_of(&page);
    (cookie, page, csrf)
}

/// The text of a dashboard page read with the session `cookie`.
async fn signed_in_page(app: &TestApp, cookie: &str, path: &str) -> String {
    get_signed_in(app, cookie, path).await.text().await.unwrap()
}

/// `GET path` with the session cookie.
async fn get_signed_in(app: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    app.api
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// Posts a dashboard form as a browser does: `form` with the session cookie, asking for HTML.
async fn post_signed_in<T: serde::Serialize + ?Sized>(
    app: &TestApp,
    cookie: &str,
    path: &str,
    form: &T,
) -> reqwest::Response {
    app.api
        .post(app.url(path))
        .header("cookie", cookie)
        .header("accept", "text/html")
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Posts the sign-out form with the session cookie and its CSRF token.
async fn sign_out(app: &TestApp, cookie: &str, csrf: &str) -> reqwest::Response {
    let form = [("csrf", csrf)];
    app.api
        .post(app.url("/app/logout"))
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .unwrap()
}

fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + r#"name="csrf" value=""#.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

per_store!(the_dashboard_needs_a_session_and_forms_need_their_csrf_token);
async fn the_dashboard_needs_a_session_and_forms_need_their_csrf_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let r = app.api.get(app.url("/app")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/app/login");
    let wrong = app
        .api
        .post(app.url("/app/login"))
        .form(&[("token", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());

    let cookie = sign_in(&app).await;
    let page = get_signed_in(&app, &cookie, "/app").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"data-campaign="spring-sale""#), "{html}");
    let csrf = csrf_of(&html);

    // Downloads read with the session; changes through the API never do.
    let csv = app
        .api
        .get(app.url("/api/v1/campaigns/spring-sale/report.csv"))
        .header("cookie", &cookie);
    assert_eq!(csv.send().await.unwrap().status(), 200);
    let clicks = app
        .api
        .get(app.url("/api/v1/links/amy-serum/clicks?format=csv"))
        .header("cookie", &cookie);
    let clicks = clicks.send().await.unwrap();
    assert!(clicks.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let change = app
        .api
        .patch(app.url("/api/v1/campaigns/spring-sale"))
        .header("cookie", &cookie)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), 401);

    // A form without its CSRF token does nothing; with it, it creates.
    let form = [
        ("id", "autumn"),
        ("name", "Autumn"),
        ("currency", "twd"),
        ("destination", "https://shop.example.com/a"),
    ];
    let forged = app
        .api
        .post(app.url("/app/campaigns"))
        .header("cookie", &cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_ne!(forged.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get("/api/v1/campaigns/autumn").await.status(), 404);
    let mut with_csrf = form.to_vec();
    with_csrf.push(("csrf", &csrf));
    let ok = app
        .api
        .post(app.url("/app/campaigns"))
        .header("cookie", &cookie)
        .form(&with_csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    // To the new campaign's page, in the language the form was in (it was dropped).
    assert_eq!(ok.headers()["location"], "/app/campaigns/autumn?lang=en");
    assert_eq!(app.get_ok("/api/v1/campaigns/autumn").await["currency"], "TWD");
    let mint = [
        ("csrf", csrf.as_str()),
        ("kol", "amy"),
        ("cost", "300"),
        ("coupon", "AUT1"),
    ];
    let r = app
        .api
        .post(app.url("/app/campaigns/autumn/links"))
        .header("cookie", &cookie)
        .form(&mint)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let minted = app.get_ok("/api/v1/links?campaign=autumn").await["links"][0].clone();
    assert_eq!(minted["coupon"], "AUT1");
    // The page it leads to is at the new link's card, which says it was made (it was listed
    // far above the form with nothing said).
    let code = minted["code"].as_str().unwrap();
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.ends_with(&format!("&edit={code}&did=created#link-{code}")), "{to}");
    let page = signed_in_page(&app, &cookie, &to).await;
    let card = &page[page.find(&format!(r#"id="link-{code}""#)).expect("the card")..];
    assert!(
        card[..card[1..].find(r#"data-code=""#).map_or(card.len(), |e| e + 1)]
            .contains("Link created: copy it for the KOL."),
        "{card}"
    );

    // Signing out ends the cookie, and the sign-in page says so.
    let out = sign_out(&app, &cookie, &csrf).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let to = out.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, "/app/login?signed_out=1");
    let said = app.page_text(&app.url(&to)).await;
    assert!(said.contains("Signed out, in every browser."), "{said}");
    // A form sent once its session is over and its cookie gone (the browser lets an expired
    // one go) says the session ended: the sign-in page said nothing.
    let late = app
        .api
        .post(app.url("/app/campaigns"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("id", "winter"),
            ("name", "Winter"),
            ("currency", "twd"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), StatusCode::SEE_OTHER);
    assert_eq!(late.headers()["location"], "/app/login?ended=1");
}

per_store!(signing_out_ends_every_session_and_a_copied_cookie_with_it);
async fn signing_out_ends_every_session_and_a_copied_cookie_with_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    // Two browsers signed in; one cookie copied away.
    let (first, second) = (sign_in(&app).await, sign_in(&app).await);
    let html = signed_in_page(&app, &first, "/app").await;
    let csrf = csrf_of(&html);
    let report = "/api/v1/campaigns/spring-sale/report.csv";
    assert_eq!(get_signed_in(&app, &second, report).await.status(), StatusCode::OK);
    let out = sign_out(&app, &first, &csrf).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    for cookie in [&first, &second] {
        let page = get_signed_in(&app, cookie, "/app").await;
        assert_eq!(page.status(), StatusCode::SEE_OTHER, "back to the sign-in page");
        assert_eq!(
            page.headers()["location"],
            "/app/login?ended=1",
            "which says the session ended"
        );
        assert_eq!(
            get_signed_in(&app, cookie, report).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // The old form token goes with them; a new sign-in works.
    let again = sign_out(&app, &first, &csrf).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(again.headers()["location"], "/app/login?ended=1");
    let fresh = sign_in(&app).await;
    assert_eq!(get_signed_in(&app, &fresh, "/app").await.status(), StatusCode::OK);
}

per_store!(a_page_asked_for_without_a_session_is_shown_after_signing_in);
/// Signing in leads back to the page that was asked for (a campaign's, sorted; the page a
/// form was on when its session had ended), never to another site; a browser whose session
/// ended is told so.
async fn a_page_asked_for_without_a_session_is_shown_after_signing_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let asked = app
        .api
        .get(app.url("/app/campaigns/spring-sale?sort=clicks"))
        .send()
        .await
        .unwrap();
    let to = asked.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, "/app/login?next=%2Fapp%2Fcampaigns%2Fspring-sale%3Fsort%3Dclicks");
    let form = app.page_text(&app.url(&to)).await;
    assert!(
        form.contains(r#"<input type="hidden" name="next" value="/app/campaigns/spring-sale?sort=clicks">"#),
        "{form}"
    );
    assert!(!form.contains("Your session has ended"), "{form}");
    // Switching its language keeps the way back.
    assert!(
        form.contains(r#"<a href="/app/login?lang=zh-TW&#38;next=%2Fapp%2Fcampaigns%2Fspring-sale%3Fsort%3Dclicks" lang="zh-TW" hreflang="zh-TW">"#),
        "{form}"
    );
    let login = |next: &'static str| {
        let (api, url) = (app.api.clone(), app.url("/app/login"));
        async move {
            let r = api
                .post(url)
                .form(&[("token", TOKEN), ("next", next)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            r.headers()["location"].to_str().unwrap().to_owned()
        }
    };
    assert_eq!(
        login("/app/campaigns/spring-sale?sort=clicks").await,
        "/app/campaigns/spring-sale?sort=clicks"
    );
    for elsewhere in [
        "//evil.example/app",
        "https://evil.example/app",
        "/api/v1/campaigns",
        "/app\\evil",
        "/app/../amy-serum",
        "/app/%2e%2e/amy-serum",
        "/app/./../amy-serum",
        "/app/campaigns/x%0d%0aSet-Cookie:x",
    ] {
        assert!(login(elsewhere).await.starts_with("/app?lang="), "{elsewhere}");
    }

    // A form sent after the session ended (signed out on another device): back to its page.
    let (cookie, _, csrf) = signed_in_on(&app, "/app/campaigns/spring-sale").await;
    sign_out(&app, &cookie, &csrf).await;
    let sent = app
        .api
        .post(app.url("/app/campaigns/spring-sale/links"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("kol", "amy"), ("cost", "100")])
        .send()
        .await
        .unwrap();
    let to = sent.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, "/app/login?next=%2Fapp%2Fcampaigns%2Fspring-sale&ended=1");
    // So do a link card's, and the campaigns' page's forms.
    for (path, back) in [
        (
            "/app/campaigns/spring-sale/links/amy-serum",
            "/app/login?next=%2Fapp%2Fcampaigns%2Fspring-sale&ended=1",
        ),
        (
            "/app/campaigns/spring-sale/shares",
            "/app/login?next=%2Fapp%2Fcampaigns%2Fspring-sale&ended=1",
        ),
        ("/app/kols", "/app/login?ended=1"),
    ] {
        let r = app
            .api
            .post(app.url(path))
            .header("cookie", &cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("kol", "amy"),
                ("id", "x"),
                ("name", "x"),
                ("platform", "x"),
                ("action", "cost"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], back, "{path}");
    }
    let form = app.page_text(&app.url(&format!("{to}&lang=zh-TW"))).await;
    assert!(form.contains("你的登入已結束"), "{form}");
    assert!(
        form.contains(r#"<a href="/app/login?lang=en&#38;next=%2Fapp%2Fcampaigns%2Fspring-sale&#38;ended=1" lang="en" hreflang="en">"#),
        "{form}"
    );
}

per_store!(the_campaign_page_names_every_column_tier_breakdown_and_status_in_the_readers_language);
async fn the_campaign_page_names_every_column_tier_breakdown_and_status_in_the_readers_language(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    assert_eq!(app.tap("amy-serum").await.status(), 302);
    let secret = app.create_shop("acme").await;
    let order =
        json!({"order_id": "1001", "event": "purchase", "amount": "1280", "currency": "TWD", "coupon": "AMY10"});
    app.webhook_ok("acme", &secret, &order).await;
    let refund = json!({"order_id": "1001", "event": "refund", "amount": "300", "currency": "TWD", "refund_id": "r1"});
    app.webhook_ok("acme", &secret, &refund).await;
    let cookie = sign_in(&app).await;
    let page = |lang: &'static str| {
        let app = &app;
        let cookie = cookie.clone();
        async move {
            let r = app
                .api
                .get(app.url(&format!("/app/campaigns/spring-sale?lang={lang}")))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let zh = page("zh-TW").await;
    for name in [
        "廣告投資報酬率（ROAS）",
        "曝光",
        "淨營收",
        "退款",
        "互動率",
        "微型",
        "應用程式",
        "連結預覽",
        "已歸因",
        "折扣碼 AMY10 → 採用",
        // The conversions list: each row's event, and its amount with its currency, money
        // taken back with a minus.
        "<td>購買</td><td>已歸因</td><td>KOL amy</td><td>1,280.00 TWD</td>",
        "<td>1001 / r1</td><td>退款</td><td>已歸因</td><td>KOL amy</td><td>−300.00 TWD</td>",
        // KOLs by name on the links too, as on the leaderboard.
        r#"<div class="muted">KOL amy · "#,
        // A device by its name, not its key.
        "<span>手機</span>",
    ] {
        assert!(zh.contains(name), "{name} missing from the zh-TW page");
    }
    let en = page("en").await;
    for name in [
        "ROAS",
        "Impressions",
        "Net revenue",
        "Refunds",
        "Engagement rate",
        "Micro",
        "Link previews",
        "Attributed",
        "coupon AMY10 → chosen",
        "<td>Purchase</td>",
        "<td>Refund</td>",
        "<span>Phone</span>",
    ] {
        assert!(en.contains(name), "{name} missing from the English page");
    }
    // No column, tier or status is named by its API value any more (those were English on
    // every page).
    for field in [
        "net revenue",
        "engagement rate",
        ">roas<",
        ">micro<",
        ">preview<",
        ">attributed<",
    ] {
        assert!(!zh.contains(field) && !en.contains(field), "{field}");
    }
    assert!(!zh.contains("coupon AMY10"), "the audit in the reader's language");
}

per_store!(dashboard_forms_with_bad_fields_answer_clear_errors_and_change_nothing);
async fn dashboard_forms_with_bad_fields_answer_clear_errors_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let (cookie, _, csrf) = signed_in_on(&app, "/app").await;
    let post =
        |path: &str, form: Vec<(&str, &str)>| app.api.post(app.url(path)).header("cookie", &cookie).form(&form).send();
    let bad_id = post("/app/campaigns", vec![("csrf", &csrf), ("id", "Bad Id"), ("name", "X")])
        .await
        .unwrap();
    crate::helpers::assert_error(bad_id, 400, "invalid_input").await;
    let taken = post(
        "/app/campaigns",
        vec![("csrf", &csrf), ("id", "spring-sale"), ("name", "X")],
    )
    .await
    .unwrap();
    crate::helpers::assert_error(taken, 409, "already_exists").await;
    let nobody = post(
        "/app/campaigns/spring-sale/links",
        vec![("csrf", &csrf), ("kol", "nobody")],
    )
    .await
    .unwrap();
    crate::helpers::assert_error(nobody, 400, "unknown_kol").await;
    let cost = post(
        "/app/campaigns/spring-sale/links",
        vec![("csrf", &csrf), ("kol", "amy"), ("cost", "-3")],
    )
    .await
    .unwrap();
    crate::helpers::assert_error(cost, 400, "invalid_input").await;
    // A browser gets the page again, with the reason above the form and the fields as typed.
    let as_browser = |path: &str, form: Vec<(&str, &str)>| {
        app.api
            .post(app.url(path))
            .header("cookie", &cookie)
            .header("accept", "text/html,application/xhtml+xml")
            .form(&form)
            .send()
    };
    let nobody = as_browser(
        "/app/campaigns/spring-sale/links?lang=zh-TW",
        vec![
            ("csrf", &csrf),
            ("kol", "nobody"),
            ("cost", "12.50"),
            ("coupon", "NOBODY5"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(nobody.status(), 400);
    let page = nobody.text().await.unwrap();
    assert!(page.contains(r#"id="leaderboard""#), "the campaign's page: {page}");
    let alert = page
        .split(r#"<p class="alert" role="alert" id="why-mint">"#)
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .expect("the reason above the form");
    assert!(alert.starts_with("未建立：") && alert.contains("nobody"), "{alert}");
    for kept in [r#"value="nobody""#, r#"value="12.50""#, r#"value="NOBODY5""#] {
        assert!(page.contains(kept), "{kept} kept in the form");
    }
    // The browser now shows the form's address: the page's links must not lean on it.
    assert!(!page.contains(r#"href="?"#), "every link of the page absolute: {page}");
    assert!(
        page.contains(r#"href="/app/campaigns/spring-sale?sort=clicks&amp;order=desc&amp;lang=zh-Hant-TW""#),
        "{page}"
    );
    // The page a failed form answers opens at the form and its reason, not at the top.
    assert!(page.contains(r#"action="/app/campaigns/spring-sale/links?lang=zh-Hant-TW#new-link""#));
    assert!(page.contains(r#"id="new-link""#));
    let taken = as_browser(
        "/app/campaigns",
        vec![
            ("csrf", &csrf),
            ("id", "spring-sale"),
            ("name", "Spring \"<again>"),
            ("currency", "twd"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(taken.status(), 409);
    let page = taken.text().await.unwrap();
    assert!(
        page.contains(r#"role="alert" id="why-new-campaign">Not created:"#),
        "{page}"
    );
    assert!(
        page.contains(r#"value="spring-sale" aria-invalid="true" aria-describedby="why-new-campaign" autofocus>"#),
        "the id at fault: {page}"
    );
    assert!(
        page.contains(r#"value="Spring &#34;&#60;again&#62;""#) && !page.contains("<again>"),
        "the name kept, escaped: {page}"
    );
    assert!(page.contains(r#"data-campaign="spring-sale""#), "the campaigns' page");
    assert!(!page.contains(r#"href="?"#), "every link of the page absolute");
    // A form whose page cannot be shown (its campaign is not there): an error page still.
    let gone = as_browser("/app/campaigns/nope/links", vec![("csrf", &csrf), ("kol", "amy")])
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    assert!(gone.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    // A campaign id from the path is named in that page as text, never as markup.
    let markup = as_browser(
        "/app/campaigns/%3Cimg%20src=x%20onerror=alert(1)%3E/links",
        vec![("csrf", &csrf), ("kol", "amy")],
    )
    .await
    .unwrap();
    assert_eq!(markup.status(), 404);
    let text = markup.text().await.unwrap();
    assert!(
        text.contains("&#60;img src=x onerror=alert(1)&#62;") && !text.contains("<img"),
        "{text}"
    );
    // The page as it normally is has no alert.
    let plain = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale").await;
    assert!(!plain.contains("role=\"alert\""));
    assert_eq!(app.get_ok("/api/v1/links").await["links"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get_ok("/api/v1/campaigns").await["campaigns"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let unknown = get_signed_in(&app, &cookie, "/app/campaigns/nope").await;
    assert_eq!(unknown.status(), 404);
    let bad_sort = app
        .api
        .get(app.url("/app/campaigns/spring-sale?sort=height"))
        .header("cookie", &cookie);
    assert_eq!(bad_sort.send().await.unwrap().status(), 400);
}

per_store!(the_new_campaign_form_shows_the_currency_it_gets_and_the_list_its_net_revenue);
/// A campaign made without a currency gets the configured one: the form shows it, filled in
/// and required, so that nobody makes a campaign in a currency their shop does not sell in
/// without seeing it. The list shows net revenue, which its ROI is computed from. Every field
/// has a label, and an ended link says so on the campaign's page.
async fn the_new_campaign_form_shows_the_currency_it_gets_and_the_list_its_net_revenue(backend: Backend) {
    let app = spawn_app(backend).await; // KOLINK_DEFAULT_CURRENCY=TWD
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let buy = json!({"order_id": "1", "event": "purchase", "amount": "3000", "currency": "TWD", "coupon": "AMY10"});
    app.webhook_ok("acme", &secret, &buy).await;
    let refund = json!({"order_id": "1", "event": "refund", "amount": "500", "currency": "TWD"});
    app.webhook_ok("acme", &secret, &refund).await;
    let cookie = sign_in(&app).await;
    let html = signed_in_page(&app, &cookie, "/app").await;
    assert!(
        html.contains(r#"<input name="currency" required pattern="[A-Za-z]{3}" maxlength="3" size="4" value="TWD">"#),
        "{html}"
    );
    for field in ["id", "name", "destination", "currency"] {
        let at = html.find(&format!(r#"<input name="{field}""#)).unwrap();
        // The input sits inside an open <label class="field">, after its text.
        let label = html[..at].rsplit("<label").next().unwrap();
        assert!(
            label.starts_with(r#" class="field">"#) && !label.contains("</label>") && label.len() > 15,
            "{field} has a label: {label}"
        );
    }
    let row = html.split(r#"data-campaign="spring-sale""#).nth(1).unwrap();
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains("<td>3,000.00</td><td>2,500.00</td><td>5,000.00</td>"),
        "revenue, net revenue, cost: {row}"
    );
    assert!(html.contains("<th>Net revenue</th>"), "{html}");

    app.patch_ok("/api/v1/links/amy-serum", &json!({"status": "disabled"}))
        .await;
    let page = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale").await;
    let card = page.split(r#"data-code="amy-serum""#).nth(1).unwrap();
    assert!(card.contains("Disabled: this link no longer leads anywhere"), "{card}");
    assert!(!card[..card.find("</div>").unwrap()].contains("data-copy"), "{card}");
}

per_store!(a_campaign_page_shows_the_days_asked_for);
/// An analyst reads a campaign over the days they choose: every figure of the page is that of
/// those days, as the API's ranged report gives them, and the page's own links keep them.
async fn a_campaign_page_shows_the_days_asked_for(backend: Backend) {
    let clock = ManualClock::at(chrono::Utc::now() - chrono::TimeDelta::days(3));
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.seed().await;
    let first_day = kolink::clock::Clock::now(&*clock).date_naive();
    app.tap_as("amy-serum", &format!("{} a", crate::helpers::PHONE)).await;
    clock.advance(chrono::TimeDelta::days(2));
    let later = kolink::clock::Clock::now(&*clock).date_naive();
    for who in ["b", "c"] {
        app.tap_as("amy-serum", &format!("{} {who}", crate::helpers::PHONE))
            .await;
    }
    let cookie = sign_in(&app).await;
    let figure = |page: &str, name: &str| -> String {
        let at = page
            .find(&format!(r#"data-figure="{name}"><b>"#))
            .unwrap_or_else(|| panic!("{name}: {page}"));
        let b = at + page[at..].find("<b>").unwrap() + 3;
        page[b..b + page[b..].find("</b>").unwrap()].to_owned()
    };
    let all = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale").await;
    assert_eq!(figure(&all, "clicks"), "3");
    // The totals say what they cover: the chart below them draws only the last 30 days.
    assert!(
        all.contains(r#"<p class="muted" id="kpi-period">Totals of every day</p>"#),
        "{all}"
    );
    // Each link's card has its own figures, of the days shown (an analyst could not tell a
    // KOL's reel from her story on the dashboard).
    let card = |page: &str| -> String {
        let at = page.find(r#"id="link-amy-serum""#).expect("the card");
        let card = &page[at..];
        card[..card.find("<form").unwrap()].to_owned()
    };
    assert!(card(&all).contains("Clicks <b>3</b>"), "{}", card(&all));
    let path = format!("/app/campaigns/spring-sale?from={later}&to={later}&sort=clicks");
    let ranged = signed_in_page(&app, &cookie, &path).await;
    assert!(ranged.contains(">Totals of the days chosen (UTC)</p>"), "{ranged}");
    let api = app
        .get_ok(&format!("/api/v1/campaigns/spring-sale/stats?from={later}&to={later}"))
        .await;
    assert_eq!(api["totals"]["clicks"], 2);
    assert_eq!(figure(&ranged, "clicks"), "2", "{ranged}");
    assert!(card(&ranged).contains("Clicks <b>2</b>"), "{}", card(&ranged));
    assert!(
        ranged.contains(&format!(r#"<input type="date" name="from" value="{later}">"#)),
        "{ranged}"
    );
    assert!(
        ranged.contains(&format!("<h2>{later} – {later} (UTC)</h2>")),
        "{ranged}"
    );
    // Sorting and switching language keep the days.
    assert!(
        ranged.contains(&format!(
            "?sort=roi&amp;order=desc&amp;lang=en&#38;from={later}&#38;to={later}"
        )),
        "{ranged}"
    );
    assert!(ranged.contains("cost and ROI count each link"), "{ranged}");
    let first = get_signed_in(
        &app,
        &cookie,
        &format!("/app/campaigns/spring-sale?from={first_day}&to={first_day}"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(figure(&first, "clicks"), "1");
    // Its conversions too: the table and the download are of the days shown.
    let secret = app.create_shop("acme").await;
    let on = |day: chrono::NaiveDate, order: &str| {
        json!({"order_id": order, "event": "purchase", "amount": "100", "currency": "TWD", "coupon": "AMY10",
               "occurred_at": format!("{day}T12:00:00Z")})
    };
    // Signed at the app's time, which runs a day behind.
    let at = kolink::clock::Clock::now(&*clock).timestamp();
    for body in [on(first_day, "EARLY-1"), on(later, "LATE-2")] {
        let raw = serde_json::to_vec(&body).unwrap();
        assert_eq!(app.signed_webhook("acme", &secret, &raw, at).await.status(), 200);
    }
    let ranged = signed_in_page(&app, &cookie, &path).await;
    assert!(ranged.contains("LATE-2") && !ranged.contains("EARLY-1"), "{ranged}");
    assert!(
        ranged.contains(&format!("format=csv&#38;from={later}&#38;to={later}")),
        "{ranged}"
    );
    // So is report.csv, in the page's order: it was of every day whatever the page showed.
    let at = ranged.find("/report.csv?").expect("the report's download");
    let href = &ranged[at..at + ranged[at..].find('"').unwrap()];
    let href = href.replace("&amp;", "&").replace("&#38;", "&");
    assert_eq!(
        href,
        format!("/report.csv?sort=clicks&order=desc&from={later}&to={later}"),
        "{ranged}"
    );
    let download = get_signed_in(&app, &cookie, &format!("/api/v1/campaigns/spring-sale{href}"))
        .await
        .text()
        .await
        .unwrap();
    let every_day = get_signed_in(&app, &cookie, "/api/v1/campaigns/spring-sale/report.csv")
        .await
        .text()
        .await
        .unwrap();
    assert_ne!(download, every_day, "the range counts fewer clicks");
    let amy = |csv: &str| csv.lines().find(|l| l.contains("amy")).map(str::to_owned);
    assert!(amy(&download).unwrap().contains(",2,"), "{download}");
    // A range longer than the chart draws says so.
    let long = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale?from=1900-01-01").await;
    assert!(long.contains("The chart draws the last 400 days of them"), "{long}");
    // Days that cannot be read, or run backwards, are refused as a form is: the campaign's
    // page over every day, the reason beside the days' form, what was typed kept and the
    // field at fault marked (it was a page of its own with no way back to the campaign).
    for (bad, marked) in [
        ("from=yesterday".to_owned(), vec!["from"]),
        // A day with a space after it is not read as a day: that field is the one marked.
        ("from=2026-01-05%20".to_owned(), vec!["from"]),
        (format!("from={later}&to={first_day}"), vec!["from", "to"]),
    ] {
        for (lang, said) in [
            ("zh-TW", "開始日期不可晚於結束日期"),
            ("en", "the first day must not be after the last"),
        ] {
            let r = app
                .api
                .get(app.url(&format!("/app/campaigns/spring-sale?{bad}&lang={lang}")))
                .header("cookie", &cookie)
                .header("accept", "text/html")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
            let page = r.text().await.unwrap();
            assert!(page.contains(said), "{bad}: {page}");
            assert!(page.contains(r#"id="why-range""#), "{bad}: {page}");
            assert_eq!(figure(&page, "clicks"), "3", "every day's figures: {bad}");
            for name in ["from", "to"] {
                let input = page
                    .split(&format!(r#"name="{name}""#))
                    .nth(1)
                    .and_then(|rest| rest.split('>').next())
                    .unwrap()
                    .to_owned();
                assert_eq!(
                    input.contains(r#"aria-invalid="true""#),
                    marked.contains(&name),
                    "{bad}: {name}: {input}"
                );
            }
        }
    }
    let backwards = signed_in_page(
        &app,
        &cookie,
        &format!("/app/campaigns/spring-sale?from={later}&to={first_day}"),
    )
    .await;
    assert!(
        backwards.contains(&format!(r#"name="from" value="{later}""#)),
        "what was typed is kept: {backwards}"
    );
}

/// The seed, and amy's link `amy-other` of another campaign, `other` (which the campaign page's
/// forms must not reach).
async fn with_another_campaigns_link(backend: Backend) -> crate::helpers::TestApp {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.post_expect(
        "/api/v1/campaigns",
        &json!({"id": "other", "name": "Other", "destination": "https://shop.example.com/"}),
        201,
    )
    .await;
    app.create_link(json!({"campaign": "other", "kol": "amy", "code": "amy-other"}))
        .await;
    app
}

per_store!(a_link_is_stopped_started_and_costed_from_its_card);
/// An analyst stops a link (a KOL broke the brief), starts it again and corrects its cost from
/// the campaign page, as the API's PATCH does; a refusal says why and leads back.
async fn a_link_is_stopped_started_and_costed_from_its_card(backend: Backend) {
    let app = with_another_campaigns_link(backend).await;
    let (cookie, page, csrf) = signed_in_on(&app, "/app/campaigns/spring-sale").await;
    assert!(
        page.contains(r#"value="disable" aria-label="Stop link · amy-serum">Stop link</button>"#),
        "{page}"
    );
    let edit = |code: &'static str, form: Vec<(&'static str, String)>| {
        let (app, cookie) = (&app, &cookie);
        async move {
            let path = format!("/app/campaigns/spring-sale/links/{code}?lang=zh-TW");
            post_signed_in(app, cookie, &path, &form).await
        }
    };
    let with = |action: &str, cost: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("action", action.to_owned()),
            ("cost", cost.to_owned()),
        ]
    };

    let r = edit("amy-serum", with("disable", "")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.ends_with("&edit=amy-serum&did=disable#link-amy-serum"), "{back}");
    let said = signed_in_page(&app, &cookie, &back).await;
    assert!(said.contains("連結已停用，不再轉址。"), "{said}");
    assert_eq!(app.get_ok("/api/v1/links/amy-serum").await["status"], "disabled");
    assert_eq!(app.tap("amy-serum").await.status(), 410);
    let page = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale").await;
    assert!(
        page.contains(r#"aria-label="Start link again · amy-serum">Start link again</button>"#),
        "{page}"
    );
    assert!(
        !page.contains(r#"aria-label="Page for the KOL · KOL amy""#),
        "no page shared for a stopped link"
    );
    edit("amy-serum", with("enable", "")).await;
    assert_eq!(app.tap("amy-serum").await.status(), 302);

    let mut costed = with("cost", "2,500.50");
    // The page it leads back to is the one it was on: its sort and days kept.
    costed.push(("view", "sort=clicks&order=asc&from=2026-12-01&to=2026-12-07".to_owned()));
    let r = edit("amy-serum", costed).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        back,
        "/app/campaigns/spring-sale?sort=clicks&order=asc&from=2026-12-01&to=2026-12-07&lang=zh-TW&edit=amy-serum&did=cost#link-amy-serum"
    );
    assert_eq!(app.get_ok("/api/v1/links/amy-serum").await["cost"], "2500.50");
    // The card says so (the audit found a save that said nothing).
    let page = signed_in_page(&app, &cookie, &back).await;
    let card = &page[page.find(r#"id="link-amy-serum""#).unwrap()..];
    assert!(
        card.contains(r#"<p class="muted" role="status">已儲存成本。</p>"#),
        "{card}"
    );
    let page = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale").await;
    assert!(page.contains(r#"<input name="cost" value="2500.50""#), "{page}");

    // Refused: a cost that is no amount, a link of another campaign, an unknown action, an
    // expired form. Nothing changes.
    // The cost: the campaign page again, the reason beside the card's form (tied to the
    // field, for screen readers), what was typed kept (it was a page of its own, whose way
    // back lost it).
    let r = edit("amy-serum", with("cost", "a lot")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let said = r.text().await.unwrap();
    assert!(
        said.contains(r#"<p class="alert" role="alert" id="why-cost-amy-serum">未儲存： 成本須為金額"#),
        "{said}"
    );
    assert!(
        said.contains(r#"<input name="cost" value="a lot" inputmode="decimal" size="10" aria-label="成本 · TWD · amy-serum" aria-invalid="true" aria-describedby="why-cost-amy-serum" autofocus>"#),
        "{said}"
    );
    assert_eq!(
        said.matches(r#"aria-invalid="true" aria-"#).count(),
        1,
        "one field at fault"
    );
    assert_eq!(
        edit("amy-other", with("disable", "")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        edit("amy-serum", with("delete", "")).await.status(),
        StatusCode::BAD_REQUEST
    );
    let stale = vec![("csrf", "forged".to_owned()), ("action", "disable".to_owned())];
    let expired = edit("amy-serum", stale).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let said = expired.text().await.unwrap();
    assert!(
        said.contains(r#"<a href="/app/campaigns/spring-sale?lang=zh-TW">回到頁面，重新填寫</a>"#),
        "the way back to a fresh form: {said}"
    );
    // Its reader is still signed in: the page says the form expired, not to sign in again.
    assert!(
        said.contains("<h1>表單已過期</h1>") && !said.contains("需要重新登入"),
        "{said}"
    );
    let link = app.get_ok("/api/v1/links/amy-serum").await;
    assert_eq!(
        (link["status"].as_str(), link["cost"].as_str()),
        (Some("active"), Some("2500.50"))
    );
    assert_eq!(app.get_ok("/api/v1/links/amy-other").await["status"], "active");
}

per_store!(a_kol_is_added_on_the_dashboard_and_offered_to_the_new_link_form);
/// An analyst adds a KOL on the campaigns' page, as the API adds one, and finds them offered
/// when minting their link; refusals say why, in the reader's language, keeping what was typed.
async fn a_kol_is_added_on_the_dashboard_and_offered_to_the_new_link_form(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let (cookie, page, csrf) = signed_in_on(&app, "/app").await;
    assert!(
        page.contains(r#"<option value="instagram">Instagram</option>"#),
        "{page}"
    );
    let add = |fields: Vec<(&'static str, &'static str)>| {
        let mut form: Vec<(&str, String)> = vec![("csrf", csrf.clone())];
        form.extend(fields.into_iter().map(|(k, v)| (k, v.to_owned())));
        let (app, cookie) = (&app, &cookie);
        async move { post_signed_in(app, cookie, "/app/kols?lang=zh-TW", &form).await }
    };
    let r = add(vec![
        ("id", "mei"),
        ("name", "美美"),
        ("handle", "@mei.tw"),
        ("platform", "line"),
        ("followers", "52,000"),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, "/app?lang=zh-TW&added=mei#new-kol");
    let kol = app.get_ok("/api/v1/kols/mei").await;
    assert_eq!(
        (
            kol["name"].as_str(),
            kol["platform"].as_str(),
            kol["followers"].as_u64(),
            kol["tier"].as_str()
        ),
        (Some("美美"), Some("line"), Some(52_000), Some("mid"))
    );
    let shown = signed_in_page(&app, &cookie, "/app?lang=zh-TW&added=mei").await;
    assert!(shown.contains("已新增，可以建立連結： 美美"), "{shown}");
    let typed = signed_in_page(&app, &cookie, "/app?added=nobody").await;
    assert!(
        !typed.contains("Added, and ready for links"),
        "only a KOL there is: {typed}"
    );
    let campaign = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale").await;
    assert!(campaign.contains(r#"<option value="mei">美美</option>"#), "{campaign}");

    // Refused, nothing added, the form kept: an id taken, a count that is no number, a
    // platform not on the list.
    // The form's address opened as a page (a reload of a refused form) is the form's page.
    let reload = get_signed_in(&app, &cookie, "/app/kols?lang=zh-TW").await;
    assert_eq!(reload.status(), StatusCode::SEE_OTHER);
    assert_eq!(reload.headers()["location"], "/app?lang=zh-TW");
    let reload = get_signed_in(&app, &cookie, "/app/campaigns/spring-sale/links/amy-serum").await;
    assert_eq!(reload.headers()["location"], "/app/campaigns/spring-sale?lang=en");
    let taken = add(vec![("id", "mei"), ("name", "Another"), ("platform", "x")]).await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    let said = taken.text().await.unwrap();
    assert!(
        said.contains("代號「mei」已屬於另一位 KOL") && said.contains(r#"value="Another""#),
        "{said}"
    );
    for followers in ["lots", "42,00", "1,2,3"] {
        let count = add(vec![
            ("id", "nok"),
            ("name", "N"),
            ("platform", "x"),
            ("followers", followers),
        ])
        .await;
        assert_eq!(count.status(), StatusCode::BAD_REQUEST, "{followers}");
        let said = count.text().await.unwrap();
        assert!(said.contains("粉絲數須為整數"), "{followers}");
        assert!(
            said.contains(&format!(
                r#"value="{followers}" aria-invalid="true" aria-describedby="why-new-kol" autofocus>"#
            )),
            "the field at fault: {said}"
        );
    }
    let platform = add(vec![("id", "nok"), ("name", "N"), ("platform", "myspace")]).await;
    assert_eq!(platform.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/v1/kols/nok").await.status(), 404);
}

per_store!(the_campaigns_conversions_say_when_and_every_one_downloads);
/// The campaign page lists its newest conversions with when they happened, and downloads every
/// one of them as CSV with the session.
async fn the_campaigns_conversions_say_when_and_every_one_downloads(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let buy = json!({"order_id": "W-7", "event": "purchase", "amount": "1280", "currency": "TWD",
                     "coupon": "AMY10", "occurred_at": "2026-11-22T09:05:00Z"});
    app.webhook_ok("acme", &secret, &buy).await;
    let cookie = sign_in(&app).await;
    let page = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale").await;
    assert!(page.contains("<th>When (UTC)</th>"), "{page}");
    assert!(page.contains("<td>2026-11-22 09:05</td><td>W-7</td>"), "{page}");
    let link = "/api/v1/conversions?campaign=spring-sale&format=csv";
    assert!(page.contains(&link.replace('&', "&amp;")), "{page}");
    let csv = get_signed_in(&app, &cookie, link).await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.text().await.unwrap().contains("W-7"));
    crate::helpers::assert_error(app.get("/api/v1/conversions?format=xml").await, 400, "invalid_input").await;
}

per_store!(a_links_day_of_insights_is_reported_from_its_card);
/// CTR needs impressions, which only the platforms know: an analyst types a day's numbers off
/// the KOL's insights into the link's card, and the campaign's figures count them. A day sent
/// again replaces its numbers, as the API's `POST /api/v1/links/{code}/metrics` does.
async fn a_links_day_of_insights_is_reported_from_its_card(backend: Backend) {
    let app = with_another_campaigns_link(backend).await;
    for _ in 0..2 {
        assert_eq!(app.tap("amy-serum").await.status(), 302);
    }
    let (cookie, page, csrf) = signed_in_on(&app, "/app/campaigns/spring-sale").await;
    let form_at = page
        .find(r#"action="/app/campaigns/spring-sale/links/amy-serum/insights?lang=en""#)
        .expect("the card's insights form");
    let offered = page[form_at..]
        .split(r#"name="date" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the day it offers")
        .to_owned();
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    assert_eq!(offered, yesterday, "insights are read the day after");
    let report = |code: &'static str, form: Vec<(&'static str, String)>| {
        let (app, cookie) = (&app, &cookie);
        async move {
            let path = format!("/app/campaigns/spring-sale/links/{code}/insights?lang=zh-TW");
            post_signed_in(app, cookie, &path, &form).await
        }
    };
    let day = |date: &str, impressions: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("view", "sort=clicks&order=asc".to_owned()),
            ("date", date.to_owned()),
            ("impressions", impressions.to_owned()),
            ("likes", "30".to_owned()),
            ("reach", String::new()),
        ]
    };
    let totals = || async { app.get_ok("/api/v1/campaigns/spring-sale/stats").await["totals"].clone() };

    let r = report("amy-serum", day(&offered, "1,000")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        back,
        format!(
            "/app/campaigns/spring-sale?sort=clicks&order=asc&lang=zh-TW&edit=amy-serum&day={offered}&saved=1#link-amy-serum"
        )
    );
    let t = totals().await;
    assert_eq!(
        (t["impressions"].as_u64(), t["engagements"].as_u64()),
        (Some(1000), Some(30))
    );
    assert_eq!(t["ctr"].as_f64(), Some(0.002));
    // The card says which day it saved, with its numbers.
    let page = signed_in_page(&app, &cookie, back.split('#').next().unwrap()).await;
    let note = format!("已儲存 {offered}：曝光次數 1,000、觸及帳號數 0、按讚數 30、留言數 0、分享次數 0、儲存次數 0。");
    assert_eq!(page.matches(&note).count(), 1, "{page}");
    // Its days are listed, and its form holds the day's numbers, to correct them.
    let card = &page[page.find(r#"id="link-amy-serum""#).unwrap()..];
    assert!(
        card.contains(&format!(
            r#"<tr data-day="{offered}"><td>{offered}</td><td>1,000</td><td>0</td><td>30</td>"#
        )),
        "{card}"
    );
    assert!(
        card.contains(r#"<input name="impressions" inputmode="numeric" size="8" value="1000">"#),
        "{card}"
    );
    assert!(card.contains(r#"<details class="report-day" open>"#), "{card}");
    let unasked = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale").await;
    assert!(
        !unasked.contains("data-day=") && unasked.contains("edit=amy-serum#link-amy-serum"),
        "a card lists its days when asked"
    );

    // The same day again: what is typed replaces its number, an empty field keeps the saved
    // one (correcting one number needs no other typed again); full-width digits and commas,
    // as Taiwanese input methods type them, are read.
    let again = vec![
        ("csrf", csrf.clone()),
        ("date", offered.clone()),
        ("impressions", "４００".to_owned()),
        ("saves", " １，２００ ".to_owned()),
    ];
    assert_eq!(report("amy-serum", again).await.status(), StatusCode::SEE_OTHER);
    let t = totals().await;
    assert_eq!(
        (t["impressions"].as_u64(), t["ctr"].as_f64(), t["engagements"].as_u64()),
        (Some(400), Some(0.005), Some(1230))
    );

    // Refused: the campaign page again, in the reader's language, the reason beside the
    // card's form (open), which holds what was typed, its field at fault marked and tied to
    // the reason. Nothing changes.
    for (form, said, fault) in [
        (
            day(&offered, "12,00"),
            "曝光次數須為整數",
            r#"name="impressions" inputmode="numeric" size="8" value="12,00""#,
        ),
        (
            day(&offered, "1.2k"),
            "曝光次數須為整數",
            r#"name="impressions" inputmode="numeric" size="8" value="1.2k""#,
        ),
        (
            day(&offered, "-5"),
            "曝光次數不可為負數",
            r#"name="impressions" inputmode="numeric" size="8" value="-5""#,
        ),
        (
            day("2026-13-01", "1"),
            "日期須寫成 YYYY-MM-DD",
            r#"name="date" value="2026-13-01""#,
        ),
        (day("", "1"), "日期須寫成 YYYY-MM-DD", r#"name="date" value="""#),
        (
            day("2999-01-01", "1"),
            "日期不可晚於明天",
            r#"name="date" value="2999-01-01""#,
        ),
        (
            day("1926-01-01", "1"),
            "日期太久以前",
            r#"name="date" value="1926-01-01""#,
        ),
    ] {
        let r = report("amy-serum", form.clone()).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{form:?}");
        let text = r.text().await.unwrap();
        let card = &text[text.find(r#"id="link-amy-serum""#).expect("the card")..];
        assert!(
            card.contains(&format!(r#"id="why-day-amy-serum">未儲存： {said}"#))
                && card.contains(r#"<details class="report-day" open>"#),
            "{form:?}: {text}"
        );
        let field = &card[card.find(fault).unwrap_or_else(|| panic!("{fault}: {card}"))..];
        assert!(
            field
                .split('>')
                .next()
                .unwrap()
                .contains(r#"aria-invalid="true" aria-describedby="why-day-amy-serum""#),
            "{form:?}: {field}"
        );
        assert!(
            card.contains(r#"name="likes" inputmode="numeric" size="8" value="30""#),
            "{card}"
        );
        assert_eq!(text.matches(r#"aria-invalid="true" aria-"#).count(), 1, "{form:?}");
    }
    assert_eq!(
        report("amy-other", day(&offered, "1")).await.status(),
        StatusCode::NOT_FOUND,
        "a link of another campaign"
    );
    let mut stale = day(&offered, "1");
    stale[0].1 = "forged".to_owned();
    assert_eq!(report("amy-serum", stale).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(totals().await["impressions"].as_u64(), Some(400));
    let other = app.get_ok("/api/v1/links/amy-other/stats").await;
    assert_eq!(other["totals"]["impressions"].as_u64(), Some(0));

    // A day reported by mistake is removed from the card's list of days, which has a button
    // for it; the card says so, and the day's numbers leave the figures.
    let listed = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale?edit=amy-serum").await;
    let remove = format!("/app/campaigns/spring-sale/links/amy-serum/insights/{offered}/remove");
    assert!(
        listed.contains(&format!(r#"action="{remove}?lang=en""#))
            && listed.contains(&format!(r#"aria-label="Remove · {offered}">Remove</button>"#)),
        "{listed}"
    );
    let form = vec![("csrf", csrf.clone()), ("view", "sort=clicks&order=asc".to_owned())];
    let r = post_signed_in(&app, &cookie, &format!("{remove}?lang=zh-TW"), &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        back,
        format!(
            "/app/campaigns/spring-sale?sort=clicks&order=asc&lang=zh-TW&edit=amy-serum&day={offered}&removed=400-0-30-0-0-1200#link-amy-serum"
        )
    );
    assert_eq!(totals().await["impressions"].as_u64(), Some(0));
    // The card says what was removed, its form filled with it: saving it puts it back.
    let page = signed_in_page(&app, &cookie, &back).await;
    assert!(
        page.contains(&format!(
            "已刪除 {offered} 的數字（曝光次數 400、觸及帳號數 0、按讚數 30、留言數 0、分享次數 0、儲存次數 1,200）。"
        )),
        "{page}"
    );
    let card = &page[page.find(r#"id="link-amy-serum""#).unwrap()..];
    for filled in [
        format!(r#"name="date" value="{offered}""#),
        r#"name="impressions" inputmode="numeric" size="8" value="400""#.to_owned(),
        r#"name="saves" inputmode="numeric" size="8" value="1200""#.to_owned(),
    ] {
        assert!(card.contains(&filled), "{filled}: {card}");
    }
    let undo = vec![
        ("csrf", csrf.clone()),
        ("date", offered.clone()),
        ("impressions", "400".to_owned()),
        ("likes", "30".to_owned()),
        ("saves", "1200".to_owned()),
    ];
    assert_eq!(report("amy-serum", undo).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(totals().await["impressions"].as_u64(), Some(400));
    // Refused: another campaign's link, a day that is no date; a forged form.
    let other = "/app/campaigns/spring-sale/links/amy-other/insights/2026-11-20/remove";
    assert_eq!(
        post_signed_in(&app, &cookie, other, &form).await.status(),
        StatusCode::NOT_FOUND
    );
    let bad = "/app/campaigns/spring-sale/links/amy-serum/insights/2026-13-01/remove";
    assert_eq!(
        post_signed_in(&app, &cookie, bad, &form).await.status(),
        StatusCode::BAD_REQUEST
    );
    let forged = vec![("csrf", "forged".to_owned())];
    assert_eq!(
        post_signed_in(&app, &cookie, &format!("{remove}?lang=en"), &forged)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

per_store!(a_kols_page_is_shared_from_a_link_card);
/// An analyst shares a KOL's page of this campaign from a link's card: the address is shown
/// once, opens the KOL's figures of this campaign, and is listed (without its token).
async fn a_kols_page_is_shared_from_a_link_card(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let cookie = sign_in(&app).await;
    let page = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale").await;
    assert!(
        page.contains(
            r#"name="kol" value="amy" formaction="/app/campaigns/spring-sale/shares?lang=en" aria-label="Page for the KOL · KOL amy">Page for the KOL</button>"#
        ),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let post = |kol: &'static str, csrf: String| {
        let form = [("csrf", csrf), ("kol", kol.to_owned()), ("cost", "5000.00".to_owned())];
        let (app, cookie) = (&app, &cookie);
        async move { post_signed_in(app, cookie, "/app/campaigns/spring-sale/shares?lang=en", &form).await }
    };
    let r = post("amy", csrf.clone()).await;
    // The answer leads to the page that shows the address, which it carries in a cookie of
    // that page alone: reloading the form's answer made another live page each time.
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, "/app/campaigns/spring-sale/shares?kol=amy&lang=en");
    let carried = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        carried.contains("HttpOnly")
            && carried.contains("SameSite=Strict")
            && carried.contains("Path=/app/campaigns/spring-sale/shares"),
        "{carried}"
    );
    let carried = carried.split(';').next().unwrap();
    let r = get_signed_in(&app, &format!("{cookie}; {carried}"), &to).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    assert!(
        r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"),
        "shown once"
    );
    let shown = r.text().await.unwrap();
    // Reloaded (the cookie gone), it says the address was shown, and makes no other page.
    let again = signed_in_page(&app, &cookie, &to).await;
    assert!(!again.contains("/s/") && again.contains("was shown once"), "{again}");
    assert_eq!(
        app.get_ok("/api/v1/kols/amy/shares").await["shares"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let from = shown.find(&app.url("/s/")).expect("the address");
    let url = shown[from..from + shown[from..].find('<').unwrap()].to_owned();
    let kol_page = app.json_of(&format!("{url}.json")).await;
    assert_eq!(
        (kol_page["kol"].as_str(), kol_page["campaign"].as_str()),
        (Some("amy"), Some("spring-sale"))
    );
    let listed = app.get_ok("/api/v1/kols/amy/shares").await;
    assert_eq!(listed["shares"][0]["campaign"], "spring-sale");
    // The campaign page lists it, and ends it.
    let share_id = listed["shares"][0]["id"].as_str().unwrap().to_owned();
    let campaign = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale").await;
    assert!(campaign.contains(&format!(r#"data-share="{share_id}""#)), "{campaign}");
    let end = app
        .api
        .post(app.url(&format!("/app/campaigns/spring-sale/shares/{share_id}/revoke?lang=en")))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("view", "sort=clicks&order=desc")])
        .send()
        .await
        .unwrap();
    assert_eq!(end.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        end.headers()["location"],
        "/app/campaigns/spring-sale?sort=clicks&order=desc&lang=en&page_ended=amy#shares"
    );
    assert_eq!(app.api.get(format!("{url}.json")).send().await.unwrap().status(), 410);
    let to = end.headers()["location"].to_str().unwrap().to_owned();
    let campaign = signed_in_page(&app, &cookie, &to).await;
    assert!(
        !campaign.contains(&format!(r#"data-share="{share_id}""#)),
        "ended: {campaign}"
    );
    // It says so (the row went without a word), where the list was.
    assert!(
        campaign.contains(r#"<p role="status" id="shares">Page ended; its address no longer opens: amy</p>"#),
        "{campaign}"
    );
    // Only of a KOL of this campaign: the address can be typed, and other words are not said.
    let typed = "/app/campaigns/spring-sale?page_ended=amy.%20Sign%20in%20at%20evil.example";
    let campaign = signed_in_page(&app, &cookie, typed).await;
    assert!(
        !campaign.contains("Page ended") && !campaign.contains("evil"),
        "{campaign}"
    );
    // A page of all of amy's campaigns (the API's share without a campaign) shows this one's
    // figures too: it is listed here, said to cover all her campaigns, and ended from here (it
    // was on no page of the dashboard).
    let all = app.post_expect("/api/v1/kols/amy/shares", &json!({}), 201).await;
    let all_id = all["id"].as_str().unwrap();
    let campaign = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale").await;
    let row = campaign
        .split(&format!(r#"data-share="{all_id}""#))
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("listed: {campaign}"));
    assert!(row.contains("All their campaigns"), "{row}");
    // Its button says it ends the page of every campaign, not this campaign's alone.
    assert!(row.contains(">End this page (all their campaigns)</button>"), "{row}");
    let end = |id: String| {
        let (app, cookie, csrf) = (&app, &cookie, &csrf);
        async move {
            app.api
                .post(app.url(&format!("/app/campaigns/spring-sale/shares/{id}/revoke")))
                .header("cookie", cookie)
                .header("accept", "text/html")
                .form(&[("csrf", csrf.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(end(all_id.to_owned()).await.status(), StatusCode::SEE_OTHER);
    let gone = all["url"].as_str().unwrap();
    assert_eq!(app.api.get(format!("{gone}.json")).send().await.unwrap().status(), 410);
    // A page of a KOL with no link in this campaign is not this page's to end.
    app.create_kol("cat", 900).await;
    let other = app.post_expect("/api/v1/kols/cat/shares", &json!({}), 201).await;
    let other_id = other["id"].as_str().unwrap();
    let campaign = signed_in_page(&app, &cookie, "/app/campaigns/spring-sale").await;
    assert!(!campaign.contains(&format!(r#"data-share="{other_id}""#)), "{campaign}");
    assert_eq!(end(other_id.to_owned()).await.status(), StatusCode::NOT_FOUND);
    let still = other["url"].as_str().unwrap();
    assert_eq!(app.api.get(format!("{still}.json")).send().await.unwrap().status(), 200);
    assert!(
        !listed.to_string().contains(&url[url.rfind('/').unwrap() + 1..]),
        "no token in the list"
    );

    app.create_kol("ben", 900).await;
    let no_link = post("ben", csrf.clone()).await;
    assert_eq!(
        no_link.status(),
        StatusCode::NOT_FOUND,
        "ben has no link in this campaign"
    );
    assert!(no_link
        .text()
        .await
        .unwrap()
        .contains("This campaign has no link of KOL"));
    let unknown = post("nobody", csrf).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.text().await.unwrap().contains("Back to the campaign"));
    assert_eq!(
        post("amy", "forged".to_owned()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get_ok("/api/v1/kols/amy/shares").await["shares"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "the one ended, and the one made through the API"
    );
}

per_store!(the_chosen_language_holds_on_every_page_the_reader_goes_to);
async fn the_chosen_language_holds_on_every_page_the_reader_goes_to(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let zh = r#"<html lang="zh-Hant-TW""#;
    // A wrong token on the Chinese sign-in page, from an English browser: still Chinese.
    let r = app
        .api
        .post(app.url("/app/login"))
        .header("accept-language", "en-US")
        .form(&[("token", "wrong"), ("lang", "zh-Hant-TW")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let page = r.text().await.unwrap();
    assert!(
        page.contains(zh) && page.contains(r#"name="lang" value="zh-Hant-TW""#),
        "{page}"
    );
    // The token field is marked, and tied to what is wrong with it.
    assert!(
        page.contains(r#"aria-invalid="true" aria-describedby="why-sign-in" autofocus>"#)
            && page.contains(r#"<p role="alert" id="why-sign-in""#),
        "{page}"
    );
    // Signed in from it: the choice is kept for the pages the dashboard's links lead to,
    // which name no language.
    let r = app
        .api
        .post(app.url("/app/login"))
        .header("accept-language", "en-US")
        .form(&[("token", TOKEN), ("lang", "zh-Hant-TW")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    assert!(cookies.contains(&"kolink_lang=zh-TW".to_owned()), "{cookies:?}");
    let get = |path: &str, cookie: String| {
        app.api
            .get(app.url(path))
            .header("cookie", cookie)
            .header("accept-language", "en-US")
            .send()
    };
    let page = get("/app/campaigns/spring-sale", cookies.join("; ")).await.unwrap();
    assert!(
        page.text().await.unwrap().contains(zh),
        "the campaign's page in Chinese"
    );
    // `?lang=` changes the choice, and the new one is kept.
    let session = cookies.iter().find(|c| !c.starts_with("kolink_lang=")).unwrap().clone();
    let r = get("/app?lang=en", cookies.join("; ")).await.unwrap();
    let kept = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(kept.starts_with("kolink_lang=en;") && kept.contains("Path=/"), "{kept}");
    assert!(r.text().await.unwrap().contains(r#"<html lang="en""#));
    // The KOL page keeps a choice the same way.
    let share = app
        .post_expect("/api/v1/kols/amy/shares", &serde_json::json!({}), 201)
        .await;
    let path = share["url"].as_str().unwrap().split_once("/s/").unwrap().1.to_owned();
    let r = get(&format!("/s/{path}?lang=zh-TW"), session.clone()).await.unwrap();
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("kolink_lang=zh-TW;"));
    let page = get(&format!("/s/{path}"), "kolink_lang=zh-TW".to_owned())
        .await
        .unwrap();
    assert!(
        page.text().await.unwrap().contains(zh),
        "the KOL page in the kept language"
    );
}

per_store!(a_page_that_is_not_there_is_a_page_for_a_signed_in_browser);
async fn a_page_that_is_not_there_is_a_page_for_a_signed_in_browser(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let cookie = sign_in(&app).await;
    for (path, status, said) in [
        ("/app/campaigns/nope", StatusCode::NOT_FOUND, "No campaign has id"),
        (
            "/app/campaigns/spring-sale?sort=shoe-size",
            StatusCode::BAD_REQUEST,
            "sort must be one of",
        ),
        (
            "/app/campaigns/spring-sale?order=up",
            StatusCode::BAD_REQUEST,
            "order must be",
        ),
        (
            "/app/campaigns/nope?lang=zh-TW",
            StatusCode::NOT_FOUND,
            "找不到代號為「nope」的活動。",
        ),
        (
            "/app/campaigns/spring-sale?sort=shoe-size&lang=zh-TW",
            StatusCode::BAD_REQUEST,
            "無法這樣排序",
        ),
    ] {
        let r = app
            .api
            .get(app.url(path))
            .header("cookie", &cookie)
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert!(
            r.headers()["content-type"].to_str().unwrap().starts_with("text/html"),
            "{path}"
        );
        let page = r.text().await.unwrap();
        assert!(page.contains("<h1>") && !page.contains(r#"{"error""#), "{path}: {page}");
        // In the reader's language, and with the way back to the campaigns.
        assert!(page.contains(said), "{path}: {page}");
        let back = if path.contains("zh-TW") {
            "所有活動"
        } else {
            "All campaigns"
        };
        assert!(
            page.contains(&format!(r#"<a href="/app">{back}</a>"#)),
            "{path}: {page}"
        );
    }
    // Other clients still get API.md's JSON.
    let r = get_signed_in(&app, &cookie, "/app/campaigns/nope").await;
    crate::helpers::assert_error(r, 404, "not_found").await;
}

per_store!(conversions_no_campaign_claimed_are_listed_with_their_audit);
async fn conversions_no_campaign_claimed_are_listed_with_their_audit(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let lost =
        json!({"order_id": "LOST-1", "event": "purchase", "amount": "99.50", "currency": "USD", "coupon": "NOPE"});
    app.webhook_ok("acme", &secret, &lost).await;
    let found =
        json!({"order_id": "FOUND-1", "event": "purchase", "amount": "10", "currency": "TWD", "coupon": "AMY10"});
    app.webhook_ok("acme", &secret, &found).await;
    // One that names nothing to attribute it by: its audit says so (the cell was empty).
    let bare = json!({"order_id": "BARE-1", "event": "purchase", "amount": "12", "currency": "TWD"});
    app.webhook_ok("acme", &secret, &bare).await;
    // A refund waiting for its purchase is not unclaimed (yet).
    let early = json!({"order_id": "LATER-1", "event": "refund", "amount": "5", "currency": "TWD", "refund_id": "r1"});
    assert_eq!(app.webhook_ok("acme", &secret, &early).await["status"], "pending");
    let cookie = sign_in(&app).await;
    let page = |lang: &'static str| {
        let (app, cookie) = (&app, cookie.clone());
        async move {
            let r = app
                .api
                .get(app.url(&format!("/app?lang={lang}")))
                .header("cookie", cookie)
                .send();
            r.await.unwrap().text().await.unwrap()
        }
    };
    let en = page("en").await;
    let table = &en[en.find(r#"id="unclaimed""#).expect("the list")..];
    let table = &table[..table.find("</table>").unwrap()];
    assert!(
        table.contains("<td>LOST-1</td><td>Purchase</td><td>Unattributed</td><td>acme</td><td>99.50 USD</td>"),
        "{table}"
    );
    assert!(table.contains("coupon NOPE → no link"), "its audit: {table}");
    let bare = &table[table.find("BARE-1").expect("listed")..];
    let bare = &bare[..bare.find("</tr>").unwrap()];
    assert!(bare.contains("No click id, coupon or link code was sent"), "{bare}");
    assert!(
        !table.contains("FOUND-1"),
        "a claimed conversion is on its campaign's page"
    );
    assert!(!table.contains("LATER-1"), "{table}");
    let zh = page("zh-TW").await;
    assert!(
        zh.contains("未歸屬任何活動的轉換") && zh.contains("<td>未歸因</td>"),
        "{zh}"
    );
    assert!(zh.contains("未附點擊編號、折扣碼或連結代碼"), "{zh}");
}

per_store!(a_campaign_without_links_says_so_in_each_part_of_its_page);
async fn a_campaign_without_links_says_so_in_each_part_of_its_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_campaign("quiet").await;
    let cookie = sign_in(&app).await;
    for (lang, no_links, no_conversions) in [
        ("en", "No links yet.", "No conversions yet."),
        ("zh-TW", "還沒有連結。", "還沒有轉換。"),
    ] {
        let page = signed_in_page(&app, &cookie, &format!("/app/campaigns/quiet?lang={lang}")).await;
        let part = |id: &str| {
            let at = page.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("{id}"));
            page[at..at + page[at..].find("</table>").unwrap()].to_owned()
        };
        assert!(part("leaderboard").contains(no_links), "{page}");
        assert!(part("tiers").contains(no_links), "{page}");
        assert!(part("conversions").contains(no_conversions), "{page}");
        assert!(page.matches(no_links).count() >= 3, "the links' list too: {page}");
    }
}

#[tokio::test]
async fn behind_https_every_cookie_of_the_screens_is_secure() {
    let backing = crate::helpers::Backing::new(Backend::Embedded);
    let mut settings = crate::helpers::settings_for(&backing);
    settings.public_url = Some("https://links.example".to_owned());
    let app = crate::helpers::start(backing, settings).await;
    let r = app
        .api
        .post(app.url("/app/login"))
        .form(&[("token", TOKEN), ("lang", "zh-TW")])
        .send()
        .await
        .unwrap();
    let cookies: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 2, "the session and the language: {cookies:?}");
    assert!(cookies.iter().all(|c| c.contains("; Secure")), "{cookies:?}");
    let r = app.api.get(app.url("/app/login?lang=en")).send().await.unwrap();
    let kept = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        kept.starts_with("kolink_lang=en;") && kept.contains("; Secure"),
        "{kept}"
    );
}

/// Sign-in guesses from one address are few: past a small burst, about one every six seconds,
/// whatever the token (a right one included, so that a guess cannot be told right from the
/// answer), with `Retry-After`. The API's own budget, far larger, would allow thousands an hour.
#[tokio::test]
async fn sign_in_guesses_from_one_address_are_few() {
    let backing = crate::helpers::Backing::new(Backend::Embedded);
    let mut settings = crate::helpers::settings_for(&backing);
    settings.rate_limit_per_second = 50;
    settings.rate_limit_burst = 200;
    let app = crate::helpers::start(backing, settings).await;
    let attempt = |token: &'static str| {
        let api = app.api.clone();
        let url = app.url("/app/login");
        async move {
            api.post(url)
                .header("accept", "text/html,*/*;q=0.8")
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(attempt("wrong-token-guess").await.status().as_u16());
    }
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429; 2], "{statuses:?}");
    let right = attempt(TOKEN).await;
    assert_eq!(right.status(), 429, "the right token too, past the budget");
    let wait: u64 = right.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=6).contains(&wait), "{wait}");
    // A browser is shown the sign-in page again, saying how long to wait, in its language.
    assert!(
        right.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        right.headers()
    );
    let page = right.text().await.unwrap();
    assert!(
        page.contains("Too many attempts from this address: try again in") && page.contains(r#"name="token""#),
        "{page}"
    );
    // The token's field names the message, as it names the wrong token's; and the sign-in page
    // has no footer about figures, of which there are none before signing in.
    assert!(
        page.contains(r#"aria-describedby="why-wait""#) && page.contains(r#"id="why-wait""#),
        "{page}"
    );
    assert!(!page.contains("<footer>"), "{page}");
    let zh = app
        .api
        .post(app.url("/app/login"))
        .header("accept", "text/html")
        .form(&[("token", "guess"), ("lang", "zh-Hant-TW")])
        .send()
        .await
        .unwrap();
    assert_eq!(zh.status(), 429);
    let zh = zh.text().await.unwrap();
    assert!(
        zh.contains("此位址嘗試次數過多，請於") && zh.contains("秒後再試。"),
        "{zh}"
    );
    // Other clients get API.md's JSON.
    let script = app
        .api
        .post(app.url("/app/login"))
        .form(&[("token", "guess")])
        .send()
        .await
        .unwrap();
    crate::helpers::assert_error(script, 429, "rate_limited").await;
    // The API is not held up by it.
    assert_eq!(app.get("/api/v1/campaigns").await.status(), 200);
}

per_store!(api_token_guesses_from_one_address_are_as_few_as_sign_in_guesses);
/// The API's bearer check told a wrong admin token with `401` at the API's rate (a burst of
/// 200, then 50 a second: about 180,000 guesses an hour). Wrong tokens now take from the
/// sign-in budget of the address; past it every bearer token from there is refused for the
/// wait, the right one too, so that an answer cannot tell a guess right from wrong.
async fn api_token_guesses_from_one_address_are_as_few_as_sign_in_guesses(backend: Backend) {
    let backing = crate::helpers::Backing::new(backend);
    let mut settings = crate::helpers::settings_for(&backing);
    settings.rate_limit_per_second = 50;
    settings.rate_limit_burst = 200;
    let app = crate::helpers::start(backing, settings).await;
    let call = |token: &'static str| {
        let request = app.api.get(app.url("/api/v1/campaigns")).bearer_auth(token);
        async move { request.send().await.unwrap() }
    };
    assert_eq!(call(TOKEN).await.status(), 200);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(call("wrong-token-guess").await.status().as_u16());
    }
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429; 2], "{statuses:?}");
    let right = call(TOKEN).await;
    let wait: u64 = right.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=6).contains(&wait), "{wait}");
    crate::helpers::assert_error(right, 429, "rate_limited").await;
    // The budget is the sign-in page's too: no more guesses there.
    let page = app
        .api
        .post(app.url("/app/login"))
        .form(&[("token", "another-guess")])
        .send()
        .await
        .unwrap();
    crate::helpers::assert_error(page, 429, "rate_limited").await;
    // Once the wait is over, the right token is taken again.
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    assert_eq!(call(TOKEN).await.status(), 200);
}

per_store!(a_refused_form_says_why_in_the_readers_language_and_what_to_do);
/// The dashboard's forms meet the same refusals as the API; a zh-TW reader is told why in
/// Chinese, and everyone what to type instead. A cost typed as the dashboard shows money
/// ("1,500.50") is taken.
async fn a_refused_form_says_why_in_the_readers_language_and_what_to_do(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.create_kol("ben", 900).await;
    let (cookie, _, csrf) = signed_in_on(&app, "/app").await;
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let (app, cookie) = (&app, &cookie);
        async move { post_signed_in(app, cookie, &path, &form).await.text().await.unwrap() }
    };
    let alert = |page: &str| {
        page.split(r#"<p class="alert" role="alert" id="why-"#)
            .nth(1)
            .and_then(|rest| rest.split_once(r#"">"#))
            .and_then(|(_, rest)| rest.split("</p>").next())
            .unwrap_or_else(|| panic!("a reason above the form: {page}"))
            .to_owned()
    };
    let mint = |lang: &str, kol: &str, cost: &str, coupon: &str| {
        post(
            format!("/app/campaigns/spring-sale/links?lang={lang}"),
            vec![
                ("csrf", csrf.clone()),
                ("kol", kol.into()),
                ("cost", cost.into()),
                ("coupon", coupon.into()),
            ],
        )
    };
    let campaign = |lang: &str, id: &str, destination: &str, currency: &str| {
        post(
            format!("/app/campaigns?lang={lang}"),
            vec![
                ("csrf", csrf.clone()),
                ("id", id.into()),
                ("name", "Winter".into()),
                ("destination", destination.into()),
                ("currency", currency.into()),
            ],
        )
    };
    // The field at fault is marked, and tied to the reason for screen readers.
    for (page, said, field) in [
        (
            mint("zh-TW", "nobody", "", "").await,
            "找不到代號為「nobody」的 KOL",
            "kol",
        ),
        (mint("zh-TW", "ben", "twelve", "").await, "成本", "cost"),
        (
            mint("zh-TW", "ben", "", "amy10").await,
            "折扣碼「amy10」已屬於另一條連結",
            "coupon",
        ),
        (
            campaign("zh-TW", "spring-sale", "", "").await,
            "代號「spring-sale」已被另一個活動使用",
            "id",
        ),
        (campaign("zh-TW", "Winter Sale", "", "").await, "代號只能使用", "id"),
        (
            campaign("zh-TW", "winter", "shop.example.com/x", "").await,
            "https://",
            "destination",
        ),
        (campaign("zh-TW", "winter", "", "TWN").await, "ISO 4217", "currency"),
    ] {
        let reason = alert(&page);
        assert!(reason.starts_with("未建立："), "{reason}");
        assert!(reason.contains(said), "{said:?} in {reason}");
        let marked: Vec<&str> = page
            .split("<input ")
            .skip(1)
            .filter(|i| {
                i.split('>')
                    .next()
                    .unwrap()
                    .contains(r#"aria-invalid="true" aria-describedby="why-"#)
            })
            .map(|i| i.split('"').nth(1).unwrap())
            .collect();
        assert_eq!(marked, [field], "{said}");
    }
    // In English, the destination's fix is named too, and a cost is asked for as money is
    // written (the API's "non-negative decimal" is a developer's word).
    let page = campaign("en", "winter", "shop.example.com/x", "").await;
    assert!(alert(&page).contains("start it with https://"), "{}", alert(&page));
    let page = mint("en", "ben", "twelve", "").await;
    assert_eq!(
        alert(&page),
        "Not created: Cost must be an amount, such as 1500 or 1,500.50."
    );
    // A cost as the dashboard writes money.
    let page = mint("en", "ben", "1,500.50", "").await;
    assert!(!page.contains(r#"role="alert""#), "{page}");
    let links = app.get_ok("/api/v1/links?kol=ben").await;
    assert_eq!(links["links"][0]["cost"], "1500.50", "{links}");
}

per_store!(every_scrolling_table_can_be_scrolled_from_the_keyboard);
/// A table wider than a phone scrolls inside its box; a keyboard reaches what is out of view
/// only if the box takes focus (the campaign list's Revenue, Cost and ROI could not be reached).
async fn every_scrolling_table_can_be_scrolled_from_the_keyboard(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.tap("amy-serum").await;
    app.post_expect(
        "/api/v1/links/amy-serum/metrics",
        &json!({"date": "2026-12-01", "impressions": 100}),
        200,
    )
    .await;
    app.post_expect("/api/v1/kols/amy/shares", &json!({}), 201).await;
    let cookie = sign_in(&app).await;
    // The campaign page with a card's days of insights open, whose table scrolls too.
    for (path, at_least) in [("/app", 1), ("/app/campaigns/spring-sale?edit=amy-serum", 6)] {
        let page = signed_in_page(&app, &cookie, path).await;
        assert!(
            path == "/app" || page.contains("Days reported, newest first"),
            "{path}: {page}"
        );
        let boxes: Vec<&str> = page.split(r#"<div class="scroll""#).skip(1).collect();
        assert!(boxes.len() >= at_least, "{path}: {page}");
        for b in boxes {
            let tag = &b[..b.find('>').unwrap()];
            assert!(
                tag.contains(r#" role="region" aria-label=""#) && tag.contains(r#" tabindex="0""#),
                "{path}: <div class=\"scroll\"{tag}>"
            );
        }
    }
}
