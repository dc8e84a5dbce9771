//! The one layer around every request (outermost, so that it sees the answer as sent): a
//! redirect passes untouched (no timer, no clock read, no allocation: the request kolink answers
//! most, bounded by its own 250 ms); every other request is answered within its deadline
//! (`deadline::within`), then counted for `/metrics` by the part of the service that gave it and
//! its status, and timed: an operator's error rates and latencies. Redirects have their own
//! counter by outcome (`kolink_redirects_total`).

use std::future::{ready, Ready};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::Method;
use futures_util::future::{Either, LocalBoxFuture};

use super::redirect;
use crate::telemetry::{Meters, Scope};

/// The middleware: `App::wrap(Meter(meters))`, outermost, so that it sees the answer as sent.
pub struct Meter(pub Arc<Meters>);

impl<S, B> Transform<S, ServiceRequest> for Meter
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = MeterService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(MeterService {
            service: Rc::new(service),
            meters: self.0.clone(),
        }))
    }
}

pub struct MeterService<S> {
    service: Rc<S>,
    meters: Arc<Meters>,
}

type Answer<B> = Result<ServiceResponse<B>, actix_web::Error>;

impl<S, B> Service<ServiceRequest> for MeterService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Either<S::Future, LocalBoxFuture<'static, Answer<B>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if redirect::is_redirect(req.method(), req.path()) {
            return Either::Left(self.service.call(req));
        }
        let scope = scope_of(req.path());
        let with_body = matches!(
            *req.method(),
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        let path = req.path().to_owned();
        let began = Instant::now();
        let answer = self.service.call(req);
        let meters = self.meters.clone();
        Either::Right(Box::pin(async move {
            let answer = super::deadline::within(answer, with_body, &path).await;
            let status = match &answer {
                Ok(res) => res.status(),
                Err(e) => e.as_response_error().status_code(),
            };
            meters.http_answer(scope, status, began.elapsed());
            answer
        }))
    }
}

/// The part of the service a path belongs to: a handful of values, so that the counters stay
/// few whatever paths clients make up.
pub fn scope_of(path: &str) -> Scope {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    match first {
        "api" => Scope::api,
        "webhooks" => Scope::webhooks,
        "app" | "static" => Scope::dashboard,
        "s" => Scope::kol_page,
        "p" => Scope::pixel,
        "healthz" | "readyz" | "metrics" => Scope::operations,
        _ => Scope::other,
    }
}
