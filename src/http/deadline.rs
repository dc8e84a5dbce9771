//! Every request is answered within 10 s. One that carries a body must arrive in that time: a
//! client that sends a body slowly (or never finishes it) gets `408 request_timeout` and its
//! connection is closed, instead of holding a worker's memory for ever. One without a body can
//! only be slow because the store is (a hung disk, a Redis that accepts connections and never
//! answers): `503 storage_unavailable` with `Retry-After`. Request heads have the same 10 s, set on
//! the server (`client_request_timeout`). Redirects are bounded far tighter: 250 ms, then the
//! spool (`crate::clicks`).

use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;

use super::redirect;
use crate::error::{ApiError, Code};

/// How long a request with a body may take, head to answer.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

pub async fn deadline(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let with_body = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !with_body && redirect::is_redirect(req.method(), req.path()) {
        // Bounded far tighter by itself, and the request kolink answers most: no timer for it.
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let path = req.path().to_owned();
    if !with_body {
        return match tokio::time::timeout(BODY_DEADLINE, next.call(req)).await {
            Ok(res) => Ok(res?.map_into_boxed_body()),
            Err(_) => {
                crate::telemetry::warn_limited!(%path, "request not answered within 10 s: the store is slow");
                Err(ApiError::Unavailable(anyhow::anyhow!("the store did not answer within 10 s")).into())
            }
        };
    }
    match tokio::time::timeout(BODY_DEADLINE, next.call(req)).await {
        Ok(res) => Ok(res?.map_into_boxed_body()),
        Err(_) => {
            crate::telemetry::warn_limited!(%path, "request body not received within 10 s");
            // The request (and its half-read body) went with the dropped call; the error is
            // rendered as API.md's JSON, and the connection is closed.
            Err(ApiError::new(
                Code::RequestTimeout,
                "The request did not arrive within 10 seconds: send it again.",
            )
            .into())
        }
    }
}
