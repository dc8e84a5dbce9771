//! Liveness, readiness, the Prometheus counters and the OpenAPI document.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse};

use super::State;
use crate::error::{body, Code};
use crate::store::StoreError;

/// The process is alive.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The store answers (`ready`), or answers while spooled clicks are being replayed into it
/// (`degraded`, still `200`); when it does not, `503`, and `degraded` while the spool still
/// takes clicks (links keep working), `unavailable` once the spool is full too.
pub async fn readyz(state: State) -> HttpResponse {
    let answered = match tokio::time::timeout(PING_DEADLINE, state.store.ping()).await {
        // It answers a ping but will not take the spooled clicks (a disk with room for a ping
        // but not for a group of clicks): not ready either.
        Ok(Ok(())) if state.spool.store_refuses() => Err(StoreError::Unavailable(anyhow::anyhow!(
            "the store does not take the spooled clicks"
        ))),
        // Started from the link book: the store answers, but is not yet known to be this
        // process's (`startup`).
        Ok(Ok(())) if state.spool.held() => Err(StoreError::Unavailable(anyhow::anyhow!(
            "the start from the link book is not complete"
        ))),
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable(anyhow::anyhow!(
            "the store did not answer within {PING_DEADLINE:?}"
        ))),
    };
    let spool = state.spool.depth();
    let spool_full = state.spool.nearly_full();
    let facts = serde_json::json!({"storage": state.store.backend(), "spool": spool});
    let mut body = match answered {
        Ok(()) => {
            let status = if spool.clicks > 0 { "degraded" } else { "ready" };
            let mut b = serde_json::json!({"status": status});
            merge(&mut b, facts);
            return HttpResponse::Ok().json(b);
        }
        Err(e) => {
            crate::telemetry::warn_limited!(error = %e, "readiness check failed");
            let said = if state.spool.held() {
                "Storage is not yet found to be this process's (it started while storage did not answer)."
            } else {
                "Storage does not answer."
            };
            body(Code::StorageUnavailable, said)
        }
    };
    let status = if spool_full { "unavailable" } else { "degraded" };
    merge(&mut body, serde_json::json!({"status": status}));
    merge(&mut body, facts);
    HttpResponse::ServiceUnavailable().json(body)
}

/// How long `/readyz` waits for the store.
const PING_DEADLINE: Duration = Duration::from_secs(1);

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// The meters in Prometheus' text format: OpenMetrics for a scraper that asks for it (as
/// Prometheus does, in `Accept`), else the classic format (0.0.4), as Prometheus' own client
/// libraries negotiate. With `metrics_token` set, only for a request that brings it as a
/// bearer token (`401` otherwise): a kolink the internet reaches need not show its figures.
pub async fn metrics(req: HttpRequest, state: State) -> HttpResponse {
    if let Some(token) = &state.settings.metrics_token {
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_start().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        let right = given.is_some_and(|g| {
            use sha2::Digest;
            use subtle::ConstantTimeEq;
            // Compared as digests: equal lengths, and no early exit on the first byte that differs.
            let (g, t) = (
                sha2::Sha256::digest(g.as_bytes()),
                sha2::Sha256::digest(token.as_bytes()),
            );
            bool::from(g.ct_eq(&t))
        });
        if !right {
            use actix_web::ResponseError;
            return crate::error::ApiError::new(
                crate::error::Code::Unauthorized,
                "Send the metrics token (setting metrics_token) as 'Authorization: Bearer <token>'.",
            )
            .error_response();
        }
    }
    let spool = state.spool.depth();
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    state.meters.spool_clicks.set(gauge(spool.clicks));
    state.meters.spool_bytes.set(gauge(spool.bytes));
    state.meters.spool_used_bytes.set(gauge(spool.used_bytes));
    state.meters.spool_capacity_bytes.set(gauge(spool.capacity_bytes));
    if super::accepts(&req, "application/openmetrics-text") {
        HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(state.meters.encode())
    } else {
        HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(state.meters.encode_classic())
    }
}

/// The script shops put on their pages (`src/http/kolink.js`, compiled in).
pub async fn kolink_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .insert_header(("access-control-allow-origin", "*"))
        .body(include_str!("kolink.js"))
}

/// The OpenAPI document of this API (`src/http/openapi.yaml`, compiled in).
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(include_str!("openapi.yaml"))
}
