//! Liveness and readiness.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, Backend};

per_store!(healthz_and_readyz_answer_when_storage_is_up);
async fn healthz_and_readyz_answer_when_storage_is_up(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.api.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.api.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let expected = match backend {
        crate::helpers::Backend::Redis | crate::helpers::Backend::Cluster => "redis",
        crate::helpers::Backend::Embedded => "embedded",
    };
    assert_eq!(body["storage"], expected);
}

per_store!(uptime_checks_may_ask_with_head);
/// Load balancers and uptime monitors often probe with `HEAD`: the operational paths answer it
/// as `GET`, without a body (they answered 404).
async fn uptime_checks_may_ask_with_head(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.yaml", "/kolink.js"] {
        let get = app.api.get(app.url(path)).send().await.unwrap();
        let head = app.api.head(app.url(path)).send().await.unwrap();
        assert_eq!(
            (head.status(), get.status()),
            (StatusCode::OK, StatusCode::OK),
            "{path}"
        );
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
}

#[tokio::test]
async fn readyz_is_unavailable_when_redis_is_down_and_the_server_keeps_serving() {
    let mut app = spawn_app(crate::helpers::Backend::Redis).await;
    app.redis.take(); // stops redis-server
    let r = app.api.get(app.url("/readyz")).send().await.unwrap();
    assert_error(r, 503, "storage_unavailable").await;
    let r = app.get("/api/v1/campaigns").await;
    assert_error(r, 503, "storage_unavailable").await;
    let r = app.api.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

per_store!(metrics_count_every_other_answer_by_part_of_the_service_and_status);
async fn metrics_count_every_other_answer_by_part_of_the_service_and_status(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await; // two 201s: a campaign, a KOL and a link
    let secret = app.create_shop("acme").await;
    assert_eq!(app.get("/api/v1/links/no-such-link").await.status(), 404);
    let anonymous = app.api.get(app.url("/api/v1/campaigns")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let other = kolink::signature::WebhookSecret::generate();
    let forged = app
        .webhook("acme", &other, &json!({"order_id": "1", "event": "signup"}))
        .await;
    assert_eq!(forged.status(), 401);
    app.webhook_ok("acme", &secret, &json!({"order_id": "2", "event": "signup"}))
        .await;
    assert_eq!(app.api.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    app.tap("amy-serum").await;
    assert_eq!(app.tap("no-such-link").await.status(), 404);

    let text = app.metrics_text().await;
    let value = |line: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
    };
    for (line, n) in [
        (r#"kolink_http_responses_total{scope="api",code="404"}"#, 1),
        (r#"kolink_http_responses_total{scope="api",code="401"}"#, 1),
        (r#"kolink_http_responses_total{scope="webhooks",code="401"}"#, 1),
        (r#"kolink_http_responses_total{scope="webhooks",code="200"}"#, 1),
        (r#"kolink_http_responses_total{scope="operations",code="200"}"#, 1),
    ] {
        assert_eq!(value(line), Some(n), "{line} in\n{text}");
    }
    let created = value(r#"kolink_http_responses_total{scope="api",code="201"}"#);
    assert!(
        created >= Some(4),
        "the seed's campaign, KOL, link and shop: {created:?}\n{text}"
    );
    // Every counted answer was timed.
    let api_answers: u64 = text
        .lines()
        .filter(|l| l.starts_with(r#"kolink_http_responses_total{scope="api","#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(
        value(r#"kolink_http_request_duration_seconds_count{scope="api"}"#),
        Some(api_answers),
        "{text}"
    );
    // Redirects are counted by outcome, not here: neither the one followed nor the one to an
    // unknown code (a 404 that any other path would count under "other").
    assert!(!text.contains(r#"code="302""#), "{text}");
    assert!(!text.contains(r#"scope="other""#), "{text}");
}

per_store!(metrics_count_redirects_and_click_writes);
async fn metrics_count_redirects_and_click_writes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    app.tap("amy-serum").await;
    app.tap("amy-serum").await;
    app.tap_as("amy-serum", "Twitterbot/1.0").await;
    app.tap("no-such-link").await;
    let r = app.api.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    for line in [
        "kolink_redirects_total{outcome=\"redirected\"} 2",
        "kolink_redirects_total{outcome=\"bot\"} 1",
        "kolink_redirects_total{outcome=\"not_found\"} 1",
        "kolink_clicks_written_total 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    // Each group's write, and its oldest click's wait for the writer, as histograms: one
    // observation per group, whatever the number of groups the three clicks made.
    let value = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let groups = value("kolink_click_batches_total ");
    assert!((1.0..=3.0).contains(&groups), "{groups}");
    for histogram in ["kolink_click_write_seconds", "kolink_click_queue_seconds"] {
        assert_eq!(value(&format!("{histogram}_count ")), groups, "{histogram}");
        assert_eq!(
            value(&format!("{histogram}_bucket{{le=\"+Inf\"}} ")),
            groups,
            "{histogram}"
        );
        let sum = value(&format!("{histogram}_sum "));
        assert!((0.0..10.0).contains(&sum), "{histogram}_sum {sum}");
    }
    assert!(
        value("kolink_click_write_seconds_sum ") > 0.0,
        "a write takes some time"
    );
}

per_store!(metrics_ask_for_their_token_when_one_is_set);
/// `/metrics` showed anyone a kolink's figures (its conversions, its answers), on the port whose
/// redirects must be public. With `metrics_token` set it asks for that token; the rest of the
/// operational paths stay open.
async fn metrics_ask_for_their_token_when_one_is_set(backend: Backend) {
    let backing = crate::helpers::Backing::new(backend);
    let mut settings = crate::helpers::settings_for(&backing);
    settings.metrics_token = Some("metrics-token-0123456789".into());
    let app = crate::helpers::start(backing, settings).await;
    let scrape = |token: Option<&'static str>| {
        let mut r = app.api.get(app.url("/metrics"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap() }
    };
    assert_error(scrape(None).await, 401, "unauthorized").await;
    assert_error(scrape(Some("metrics-token-wrong")).await, 401, "unauthorized").await;
    assert_error(scrape(Some(crate::helpers::TOKEN)).await, 401, "unauthorized").await;
    let r = scrape(Some("metrics-token-0123456789")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("kolink_spool_clicks"));
    for open in ["/healthz", "/readyz"] {
        let r = app.api.get(app.url(open)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{open}");
    }
    // A token too short to be one is refused at start.
    let backing = crate::helpers::Backing::new(Backend::Embedded);
    let mut settings = crate::helpers::settings_for(&backing);
    settings.metrics_token = Some("short".into());
    let e = settings.validate().expect_err("a short metrics token is refused");
    assert!(e.to_string().contains("metrics_token"), "{e}");
}

#[tokio::test]
async fn metrics_are_openmetrics_for_prometheus_and_the_classic_format_for_the_rest() {
    let app = spawn_app(Backend::Embedded).await;
    app.seed().await;
    app.tap("amy-serum").await;
    // What Prometheus sends.
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                      version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    for (accept, content_type, eof) in [
        (
            Some(prometheus),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            true,
        ),
        (None, "text/plain; version=0.0.4; charset=utf-8", false),
        (Some("text/plain"), "text/plain; version=0.0.4; charset=utf-8", false),
    ] {
        let mut request = app.api.get(app.url("/metrics"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], content_type, "{accept:?}");
        let text = r.text().await.unwrap();
        assert_eq!(text.ends_with("# EOF\n"), eof, "{accept:?}: {text}");
        let family = if eof {
            "kolink_redirects"
        } else {
            "kolink_redirects_total"
        };
        assert!(
            text.contains(&format!("# TYPE {family} counter\n")),
            "{accept:?}: {text}"
        );
        assert!(
            text.contains("kolink_redirects_total{outcome=\"redirected\"} 1\n"),
            "{accept:?}: {text}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_path() {
    let app = spawn_app(crate::helpers::Backend::Embedded).await;
    let r = app.api.get(app.url("/openapi.yaml")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc = r.text().await.unwrap();
    assert!(doc.starts_with("openapi: 3.1.0"));
    for path in [
        "/api/v1/campaigns:",
        "/api/v1/campaigns/{id}:",
        "/api/v1/campaigns/{id}/links:",
        "/api/v1/campaigns/{id}/stats:",
        "/api/v1/campaigns/{id}/report.csv:",
        "/api/v1/kols:",
        "/api/v1/kols/{id}:",
        "/api/v1/kols/{id}/stats:",
        "/api/v1/kols/{id}/shares:",
        "/api/v1/shares/{id}:",
        "/s/{token}:",
        "/s/{token}.json:",
        "/api/v1/links:",
        "/api/v1/links/{code}:",
        "/api/v1/links/{code}/metrics:",
        "/api/v1/links/{code}/stats:",
        "/api/v1/links/{code}/clicks:",
        "/api/v1/shops:",
        "/api/v1/shops/{id}:",
        "/api/v1/conversions:",
        "/webhooks/conversions/{shop}:",
        "/webhooks/shopify/{shop}:",
        "/webhooks/woocommerce/{shop}:",
        "/api/v1/shops/{id}/secret:",
        "/kolink.js:",
        "/{code}:",
        "/p/{code}.gif:",
        "/{code}/qr.svg:",
        "/{code}/qr.png:",
        "/healthz:",
        "/readyz:",
        "/metrics:",
    ] {
        assert!(
            doc.lines().any(|l| l == format!("  {path}")),
            "{path} is not in the OpenAPI document"
        );
    }
    // A link's code in a path is never one of kolink's own first segments: the fuzz run sent
    // HEAD /app (the dashboard's) as a link's code. The document names them all.
    let reserved = doc
        .lines()
        .find(|l| l.contains("- { not: { enum: ["))
        .expect("the reserved words of LinkCode");
    for word in kolink::domain::reserved_words() {
        assert!(
            reserved.contains(&format!("[{word},"))
                || reserved.contains(&format!(" {word},"))
                || reserved.contains(&format!(" {word}]")),
            "{word} is not in LinkCode's reserved words: {reserved}"
        );
    }
    // Every click dimension is documented in the click export and the breakdowns.
    let click: String = doc
        .lines()
        .skip_while(|l| *l != "    Click:")
        .skip(1)
        .take_while(|l| l.starts_with("      "))
        .collect::<Vec<_>>()
        .join("\n");
    let breakdown = doc
        .lines()
        .find(|l| l.contains("Human clicks by dimension"))
        .expect("the breakdown's description");
    for d in kolink::domain::Dimension::ALL {
        assert!(
            click.contains(&format!("        {}: ", d.name())),
            "Click lacks {}",
            d.name()
        );
        assert!(breakdown.contains(d.name()), "breakdown lacks {}", d.name());
    }
    assert!(doc.contains("storage_unavailable, internal"));
}
