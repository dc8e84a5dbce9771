//! Requests that carry a body must arrive, and be answered, within 10 s: a client that sends a
//! body slowly (or never finishes it) gets `408 request_timeout` and its connection is closed,
//! instead of holding a worker's memory for ever. Request heads have the same 10 s, set on the
//! server (`client_request_timeout`). Store calls are bounded well inside this (a click write
//! gives up at 8 s).

use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;

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
    if !with_body {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let path = req.path().to_owned();
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
