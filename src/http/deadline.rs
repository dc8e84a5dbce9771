//! Every request is answered within 10 s. One that carries a body must arrive in that time: a
//! client that sends a body slowly (or never finishes it) gets `408 request_timeout` and its
//! connection is closed, instead of holding a worker's memory for ever. One without a body can
//! only be slow because the store is (a hung disk, a Redis that accepts connections and never
//! answers): `503 storage_unavailable` with `Retry-After`. Request heads have the same 10 s, set on
//! the server (`client_request_timeout`). Redirects are bounded far tighter: 250 ms, then the
//! spool (`crate::clicks`); they get no timer (`crate::http::meter`, which applies this one to
//! every other request).

use std::future::Future;
use std::time::Duration;

use actix_web::dev::ServiceResponse;

use crate::error::{ApiError, Code};

/// How long a request with a body may take, head to answer.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// `answer`, the service's answer to a request to `path`, within `BODY_DEADLINE`; past it, a
/// request with a body (`with_body`) is `408`, one without `503`.
pub async fn within<B>(
    answer: impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    with_body: bool,
    path: &str,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    match tokio::time::timeout(BODY_DEADLINE, answer).await {
        Ok(res) => res,
        Err(_) if !with_body => {
            crate::telemetry::warn_limited!(%path, "request not answered within 10 s: the store is slow");
            Err(ApiError::Unavailable(anyhow::anyhow!("the store did not answer within 10 s")).into())
        }
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
