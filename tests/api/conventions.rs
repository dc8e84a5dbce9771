//! API.md's conventions: auth, body limits, media types, error format, unknown paths.

use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, Backend, TOKEN};

per_store!(management_without_a_token_is_unauthorized);
async fn management_without_a_token_is_unauthorized(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.api.get(app.url("/api/v1/campaigns")).send().await.unwrap();
    assert_error(r, 401, "unauthorized").await;
    let r = app
        .api
        .get(app.url("/api/v1/campaigns"))
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthorized").await;
    let r = app
        .api
        .post(app.url("/api/v1/campaigns"))
        .json(&json!({"id": "x", "name": "X"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthorized").await;
    // Nothing was created by the refused call.
    assert_eq!(app.get_ok("/api/v1/campaigns").await["campaigns"], json!([]));
}

per_store!(malformed_json_is_a_bad_request);
async fn malformed_json_is_a_bad_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .post_raw("/api/v1/campaigns", "application/json", "{\"id\": \"x\", ")
        .await;
    assert_error(r, 400, "invalid_json").await;
    // The server keeps serving.
    assert_eq!(app.get_ok("/api/v1/campaigns").await["campaigns"], json!([]));
}

per_store!(a_body_that_is_not_json_is_an_unsupported_media_type);
async fn a_body_that_is_not_json_is_an_unsupported_media_type(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.post_raw("/api/v1/campaigns", "text/plain", "id=x").await;
    assert_error(r, 415, "unsupported_media_type").await;
}

per_store!(a_body_over_64_kib_is_too_large);
async fn a_body_over_64_kib_is_too_large(backend: Backend) {
    let app = spawn_app(backend).await;
    let big = json!({"id": "big", "name": "x".repeat(70 * 1024)});
    assert_error(app.post("/api/v1/campaigns", &big).await, 413, "payload_too_large").await;
    let r = app
        .api
        .post(app.url("/webhooks/conversions/acme"))
        .header("content-type", "application/json")
        .body(vec![b' '; 70 * 1024])
        .send()
        .await
        .unwrap();
    // The shop does not exist: either answer is a clear error, never a 500.
    assert!(matches!(r.status().as_u16(), 404 | 413));
}

per_store!(wrong_types_and_unknown_fields_are_invalid_input);
async fn wrong_types_and_unknown_fields_are_invalid_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.post("/api/v1/campaigns", &json!({"id": "x", "name": 5})).await;
    assert_error(r, 400, "invalid_input").await;
    let r = app
        .post(
            "/api/v1/campaigns",
            &json!({"id": "x", "name": "X", "destinaton": "https://a.example"}),
        )
        .await;
    let body = assert_error(r, 400, "invalid_input").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("destinaton"));
    let r = app.post("/api/v1/campaigns", &json!({"name": "X"})).await;
    assert_error(r, 400, "invalid_input").await;
    // The message speaks of the JSON sent, not of kolink's Rust types ("expected struct
    // CreateCampaign with 7 elements", "expected u64").
    for (path, body, said) in [
        (
            "/api/v1/campaigns",
            json!([]),
            "expected a JSON object ({…}), not an array",
        ),
        (
            "/api/v1/kols",
            json!({"id": "amy", "name": "Amy", "followers": 1.5}),
            "followers: invalid type: floating point `1.5`, expected a whole number, 0 or more",
        ),
    ] {
        let body = assert_error(app.post(path, &body).await, 400, "invalid_input").await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(said), "{message}");
    }
}

per_store!(unknown_paths_and_methods_answer_in_the_error_format);
async fn unknown_paths_and_methods_answer_in_the_error_format(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_error(app.get("/api/v1/nothing-here").await, 404, "not_found").await;
    let r = app
        .api
        .delete(app.url("/api/v1/campaigns"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_error(r, 405, "method_not_allowed").await;
}

per_store!(a_bad_cursor_or_limit_is_invalid_input);
async fn a_bad_cursor_or_limit_is_invalid_input(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_error(app.get("/api/v1/campaigns?cursor=%%%").await, 400, "invalid_input").await;
    assert_error(app.get("/api/v1/campaigns?limit=0").await, 400, "invalid_input").await;
    assert_error(app.get("/api/v1/campaigns?limit=abc").await, 400, "invalid_input").await;
    assert_error(app.get("/api/v1/kols?limit=1000").await, 400, "invalid_input").await;
}

per_store!(a_client_past_its_budget_is_told_to_wait_but_redirects_never_are);
async fn a_client_past_its_budget_is_told_to_wait_but_redirects_never_are(backend: Backend) {
    let backing = crate::helpers::Backing::new(backend);
    let mut settings = crate::helpers::settings_for(&backing);
    settings.rate_limit_per_second = 1;
    settings.rate_limit_burst = 5;
    let app = crate::helpers::start(backing, settings).await;
    app.create_campaign("c").await;
    let mut answers = Vec::new();
    for _ in 0..8 {
        answers.push(app.get("/api/v1/campaigns").await);
    }
    let limited = answers
        .into_iter()
        .find(|r| r.status() == 429)
        .expect("a 429 past the burst");
    let wait: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&wait));
    assert_error(limited, 429, "rate_limited").await;
    // Webhooks share the budget of the address; redirects are never refused for rate.
    let r = app
        .api
        .post(app.url("/webhooks/conversions/x"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // Once the budget refills (1 a second), a link to tap.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    app.create_kol("amy", 1).await;
    app.create_link(serde_json::json!({"campaign": "c", "kol": "amy", "code": "amy-c"}))
        .await;
    for _ in 0..30 {
        assert_eq!(app.tap("amy-c").await.status(), 302);
    }
}

per_store!(the_client_address_is_the_one_the_trusted_proxy_wrote);
/// Behind a proxy that appends the address it saw to `X-Forwarded-For`, what the client wrote
/// into the header before it is the client's to choose: the address is the entry the proxy
/// added (the last, with one proxy), for the rate budget and for telling visitors apart.
async fn the_client_address_is_the_one_the_trusted_proxy_wrote(backend: Backend) {
    let backing = crate::helpers::Backing::new(backend);
    let mut settings = crate::helpers::settings_for(&backing);
    settings.client_ip_header = Some("X-Forwarded-For".into());
    settings.rate_limit_per_second = 1;
    settings.rate_limit_burst = 5;
    let app = crate::helpers::start(backing, settings).await;
    app.seed().await;
    // The statuses of 8 API requests, the i-th with the header lines `lines(i)`.
    let statuses = |lines: &dyn Fn(usize) -> Vec<String>| {
        let requests: Vec<_> = (0..8)
            .map(|i| {
                let mut r = app
                    .api
                    .get(app.url("/api/v1/campaigns"))
                    .bearer_auth(crate::helpers::TOKEN);
                for line in lines(i) {
                    r = r.header("x-forwarded-for", line);
                }
                r
            })
            .collect();
        async move {
            let mut statuses = Vec::new();
            for r in requests {
                statuses.push(r.send().await.unwrap().status().as_u16());
            }
            statuses
        }
    };
    // A fresh address written first on every request: still one client, past its budget.
    let seen = statuses(&|i| vec![format!("198.51.100.{i}, 203.0.113.7")]).await;
    assert!(seen.contains(&429), "{seen:?}");
    // The same when the client sends a header line of its own and the proxy adds another.
    let seen = statuses(&|i| vec![format!("198.51.100.{i}"), "203.0.113.6".to_owned()]).await;
    assert!(seen.contains(&429), "{seen:?}");
    // Another address, claimed first by someone else, is not spent by them.
    let other = app
        .api
        .get(app.url("/api/v1/campaigns"))
        .bearer_auth(crate::helpers::TOKEN)
        .header("x-forwarded-for", "203.0.113.7, 203.0.113.8")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    // Taps from one address and user agent, whatever they claim before it, are one visitor.
    for i in 0..3 {
        let r = app
            .api
            .get(app.url("/amy-serum"))
            .header("user-agent", crate::helpers::PHONE)
            .header("x-forwarded-for", format!("198.51.100.{i}, 203.0.113.9"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
    }
    let totals = app.link_totals("amy-serum").await;
    assert_eq!(
        (totals["clicks"].as_u64(), totals["unique_clicks"].as_u64()),
        (Some(3), Some(1)),
        "{totals}"
    );
}

/// A body sent too slowly is cut off at 10 s with a 408 (not held open for ever).
#[tokio::test]
async fn a_body_that_never_finishes_is_cut_off_after_ten_seconds() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(Backend::Embedded).await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/campaigns HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nAuthorization: Bearer {TOKEN}\r\n\r\n{{\"id\":"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), conn.read_to_end(&mut answer)).await;
    let waited = started.elapsed();
    assert!(read.is_ok(), "the connection was not closed within 20 s");
    assert!(
        waited >= std::time::Duration::from_secs(9),
        "cut off too early: {waited:?}"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

per_store!(an_invalid_field_is_named_in_the_error);
/// A client with a bad field learns which one, however deep: "followers: invalid type…", not
/// "invalid type… at line 1 column 62". Nothing is created or changed by a refused body.
async fn an_invalid_field_is_named_in_the_error(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed().await;
    let secret = app.create_shop("acme").await;
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("POST", "/api/v1/campaigns", json!({"id": "x", "name": 5}), "name"),
        (
            "POST",
            "/api/v1/campaigns",
            json!({"id": "x", "name": "X", "utm": {"medium": 5}}),
            "utm.medium",
        ),
        (
            "POST",
            "/api/v1/kols",
            json!({"id": "ben", "name": "Ben", "followers": "many"}),
            "followers",
        ),
        (
            "POST",
            "/api/v1/links",
            json!({"campaign": "spring-sale", "kol": "amy", "cost": "12.345"}),
            "cost",
        ),
        (
            "POST",
            "/api/v1/campaigns/spring-sale/links",
            json!({"kols": [{"kol": "amy"}, {"kol": "amy", "cost": [1]}]}),
            "kols[1]: cost",
        ),
        ("PATCH", "/api/v1/links/amy-serum", json!({"tags": "reel"}), "tags"),
        ("PATCH", "/api/v1/kols/amy", json!({"followers": -1}), "followers"),
        (
            "POST",
            "/api/v1/links/amy-serum/metrics",
            json!({"date": "2026-11-20", "impressions": -5}),
            "impressions",
        ),
    ];
    for (method, path, body, field) in cases {
        let r = if method == "POST" {
            app.post(path, &body).await
        } else {
            app.patch(path, &body).await
        };
        assert_names(assert_error(r, 400, "invalid_input").await, field);
    }
    let r = app
        .webhook(
            "acme",
            &secret,
            &json!({"order_id": "1", "event": "purchase", "amount": "abc", "currency": "TWD"}),
        )
        .await;
    assert_names(assert_error(r, 400, "invalid_input").await, "amount");
    // Broken JSON is still told apart from a bad field.
    let r = app.post_raw("/api/v1/kols", "application/json", "{\"id\": ").await;
    assert_error(r, 400, "invalid_json").await;
    // Nothing was created or changed.
    assert_eq!(
        app.get_ok("/api/v1/campaigns").await["campaigns"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(app.get_ok("/api/v1/kols").await["kols"].as_array().unwrap().len(), 1);
    assert_eq!(app.get_ok("/api/v1/links").await["links"].as_array().unwrap().len(), 1);
    assert_eq!(app.get_ok("/api/v1/links/amy-serum").await["tags"], json!([]));
    assert_eq!(app.get_ok("/api/v1/kols/amy").await["followers"], 42_000);
    assert_eq!(app.get_ok("/api/v1/conversions").await["conversions"], json!([]));
}

fn assert_names(error: Value, field: &str) {
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{field}: ")),
        "{field} not named in: {message}"
    );
}

per_store!(a_method_a_path_does_not_take_is_405_naming_the_methods_it_takes);
/// Every path of the OpenAPI document answers a method it does not take with `405` and an
/// `Allow` header naming the methods it does take (RFC 9110), those of the document (and `HEAD`
/// where `GET` is).
async fn a_method_a_path_does_not_take_is_405_naming_the_methods_it_takes(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = include_str!("../../src/http/openapi.yaml");
    let mut paths: Vec<(String, Vec<String>)> = Vec::new();
    for line in doc.lines().skip_while(|l| *l != "paths:").skip(1) {
        if !line.is_empty() && !line.starts_with(' ') {
            break;
        }
        if let Some(path) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            paths.push((format!("/{path}"), Vec::new()));
        } else if let Some(method) = line
            .strip_prefix("    ")
            .and_then(|m| m.split_once(':'))
            .map(|(m, _)| m)
        {
            if ["get", "head", "post", "put", "patch", "delete"].contains(&method) {
                paths
                    .last_mut()
                    .expect("a path before its methods")
                    .1
                    .push(method.to_uppercase());
            }
        }
    }
    assert!(paths.len() > 30, "the document's paths were not read: {paths:?}");
    for (path, documented) in paths {
        assert!(!documented.is_empty(), "{path} has no method");
        // Parameters as a real request would fill them.
        let concrete = path
            .replace("{date}", "2026-12-01")
            .replace("{code}", "amy-serum")
            .replace(['{', '}'], "");
        let wrong = ["PATCH", "PUT", "DELETE", "POST"]
            .into_iter()
            .find(|m| !documented.iter().any(|d| d == m))
            .expect("a method the path does not take");
        let r = app
            .api
            .request(wrong.parse().unwrap(), app.url(&concrete))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let allow = r
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{wrong} {concrete}: no Allow header"));
        let mut allowed: Vec<String> = allow.split(',').map(|m| m.trim().to_owned()).collect();
        allowed.sort();
        allowed.dedup();
        let mut expected = documented.clone();
        if expected.iter().any(|m| m == "GET") && !expected.iter().any(|m| m == "HEAD") {
            expected.push("HEAD".to_owned());
        }
        expected.sort();
        assert_eq!(allowed, expected, "{wrong} {concrete}: Allow: {allow}");
        assert_error(r, 405, "method_not_allowed").await;
    }
    // HEAD is GET's answer without its body, behind the same token.
    let r = app
        .api
        .head(app.url("/api/v1/campaigns"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert!(r.bytes().await.unwrap().is_empty());
    let r = app.api.head(app.url("/api/v1/campaigns")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // The dashboard's pages, which the document does not list, alike.
    let r = app.api.head(app.url("/app")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // With the same headers as GET: the way back after signing in, its query too.
    let page = "/app/campaigns/spring-sale?sort=clicks&order=asc";
    let by_head = app.api.head(app.url(page)).send().await.unwrap();
    let by_get = app.api.get(app.url(page)).send().await.unwrap();
    assert_eq!(by_head.headers()["location"], by_get.headers()["location"]);
    assert!(by_get.headers()["location"].to_str().unwrap().contains("order%3Dasc"));
    let r = app.api.put(app.url("/app/login")).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "GET, HEAD, POST");
    assert_eq!(r.status(), 405);
}
