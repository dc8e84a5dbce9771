//! Liveness, readiness, the Prometheus counters and the OpenAPI document.

use actix_web::HttpResponse;

use super::State;
use crate::error::{body, Code};

/// The process is alive.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The store answers.
pub async fn readyz(state: State) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "ready", "storage": state.store.backend()})),
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "readiness check failed");
            HttpResponse::ServiceUnavailable().json(body(Code::StorageUnavailable, "Storage does not answer."))
        }
    }
}

/// Counters in the Prometheus text format.
pub async fn metrics(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.meters.encode())
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
