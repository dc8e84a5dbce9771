//! Liveness and readiness.

use crate::helpers::{assert_error, spawn_app, BACKENDS};

#[tokio::test]
async fn healthz_and_readyz_answer_when_storage_is_up() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let r = app.api.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = app.api.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["status"], "ready");
        let expected = match backend {
            crate::helpers::Backend::Redis => "redis",
            crate::helpers::Backend::Embedded => "embedded",
        };
        assert_eq!(body["storage"], expected);
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
