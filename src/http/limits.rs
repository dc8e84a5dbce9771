//! Per-client-address rate limits of the API, the webhooks and the dashboard's sign-in: a
//! steady rate and a burst (GCRA, the `governor` crate), configurable; past them `429` with
//! `Retry-After`. Redirects and the pixel are never limited (API.md: a click is never refused
//! for rate; floods become suspicious clicks). Sign-in attempts have a far smaller budget of
//! their own (`RateLimits::sign_in`), which the API's wrong admin tokens take from too
//! (`TokenGuesses`). The client address is the peer's, or the one the trusted
//! proxies wrote into their header when one is configured (`redirect::client_ip`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::EitherBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{ApiError, Code};

/// Sign-in attempts an address may make at once, and then a minute: a person mistyping the
/// token is not held up, a guesser gets about 600 guesses an hour.
pub const SIGN_IN_BURST: u32 = 10;
pub const SIGN_IN_PER_MINUTE: u32 = 10;

pub struct RateLimits {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    seen: AtomicU64,
}

impl RateLimits {
    /// `per_second` 0 turns the limit off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        RateLimits {
            limiter,
            seen: AtomicU64::new(0),
        }
    }

    /// The dashboard's sign-in attempts: a burst of `SIGN_IN_BURST`, then `SIGN_IN_PER_MINUTE`
    /// a minute per address, right token or not; off when the API's limit is (`per_second` 0).
    pub fn sign_in(per_second: u32) -> Self {
        let quota = NonZeroU32::new(SIGN_IN_PER_MINUTE)
            .zip(NonZeroU32::new(SIGN_IN_BURST))
            .map(|(rate, burst)| Quota::per_minute(rate).allow_burst(burst));
        RateLimits {
            limiter: quota.filter(|_| per_second > 0).map(RateLimiter::keyed),
            seen: AtomicU64::new(0),
        }
    }

    /// `Err(seconds to wait)` when `client` is past its budget.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        // Forget idle clients now and then, so that the table stays small.
        if self.seen.fetch_add(1, Ordering::Relaxed).is_multiple_of(10_000) {
            limiter.retain_recent();
        }
        limiter.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// Wrong admin tokens sent to the API. Each takes from the address's sign-in budget
/// (`RateLimits::sign_in`), so that the API guesses no faster than the sign-in page; an
/// address past it is refused every bearer token for the wait, the right one too, since a
/// right token that still passed would tell a guess right from wrong at any rate.
#[derive(Default)]
pub struct TokenGuesses {
    blocked: std::sync::Mutex<std::collections::HashMap<IpAddr, std::time::Instant>>,
}

/// Addresses blocked at once before the ones whose wait is over are forgotten.
const BLOCKED_KEPT: usize = 10_000;

impl TokenGuesses {
    /// `Err(seconds to wait)` while `client` is blocked.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(&client) {
            Some(until) => {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    Ok(())
                } else {
                    Err(left.as_secs() + u64::from(left.subsec_nanos() > 0))
                }
            }
            None => Ok(()),
        }
    }

    /// A wrong token from `client`: `Err(seconds to wait)` once past `budget`, and blocked
    /// for that long.
    pub fn wrong(&self, budget: &RateLimits, client: IpAddr) -> Result<(), u64> {
        let wait = budget.check(client).err().map(|w| w.max(1));
        let Some(wait) = wait else { return Ok(()) };
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if blocked.len() >= BLOCKED_KEPT {
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(client, now + std::time::Duration::from_secs(wait));
        Err(wait)
    }
}

/// Webhook bodies being read at once: at most `WEBHOOK_BODIES` in all and
/// `WEBHOOK_BODIES_PER_ADDRESS` from one address. A body is read whole (up to 1 MiB) before its
/// signature can be checked, and a sender has 10 s to send it: without a bound, slow bodies
/// that never finish held as much memory as a sender opened connections (825 MB from one
/// address in 9 s).
pub struct WebhookBodies {
    all: std::sync::Arc<tokio::sync::Semaphore>,
    by_address: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>,
}

/// Webhook bodies read at once, in all (64 MiB at most).
pub const WEBHOOK_BODIES: usize = 64;
/// Webhook bodies read at once from one address: a shop platform's deliveries take
/// milliseconds each.
pub const WEBHOOK_BODIES_PER_ADDRESS: usize = 8;

impl Default for WebhookBodies {
    fn default() -> Self {
        Self {
            all: std::sync::Arc::new(tokio::sync::Semaphore::new(WEBHOOK_BODIES)),
            by_address: Default::default(),
        }
    }
}

/// A webhook body's turn to be read; the turn ends when it is dropped.
pub struct BodyTurn {
    _all: tokio::sync::OwnedSemaphorePermit,
    client: IpAddr,
    by_address: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>,
}

impl Drop for BodyTurn {
    fn drop(&mut self) {
        let mut by_address = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = by_address.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                by_address.remove(&self.client);
            }
        }
    }
}

/// Why a webhook body was not given a turn.
#[derive(Debug, PartialEq, Eq)]
pub enum NoTurn {
    /// Its address has `WEBHOOK_BODIES_PER_ADDRESS` being read.
    Address,
    /// Every sender together has `WEBHOOK_BODIES` being read.
    All,
}

impl NoTurn {
    /// `429` with `Retry-After: 1`, saying which bound it met.
    pub fn answer(&self) -> HttpResponse {
        match self {
            NoTurn::Address => ApiError::RateLimited { wait: 1 }.error_response(),
            NoTurn::All => retry_after(
                ApiError::new(
                    Code::RateLimited,
                    "kolink is reading as many webhook bodies as it takes at once; retry in a moment.",
                ),
                1,
            ),
        }
    }
}

/// The address a sender is counted as: an IPv6 address by its /64 (one host's, usually).
fn sender(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl WebhookBodies {
    /// A turn to read a body from `client`, or why not: that address (an IPv6 one by its /64),
    /// or every sender, has as many being read as it may. Never waits.
    pub fn turn(&self, client: IpAddr) -> Result<BodyTurn, NoTurn> {
        let client = sender(client);
        let all = self.all.clone().try_acquire_owned().map_err(|_| NoTurn::All)?;
        let mut by_address = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        let n = by_address.entry(client).or_insert(0);
        if *n >= WEBHOOK_BODIES_PER_ADDRESS {
            return Err(NoTurn::Address);
        }
        *n += 1;
        Ok(BodyTurn {
            _all: all,
            client,
            by_address: self.by_address.clone(),
        })
    }
}

/// `429 rate_limited` with `Retry-After`: the client may try again in `wait` seconds.
pub fn too_many(wait: u64) -> HttpResponse {
    ApiError::RateLimited { wait }.error_response()
}

/// The answer while a start from the link book is not complete (`limit`).
pub fn not_started() -> HttpResponse {
    retry_after(
        ApiError::new(
            Code::StorageUnavailable,
            "Storage is not ready yet (this process started while it did not answer); retry in a moment.",
        ),
        5,
    )
}

/// `e`'s answer, with `Retry-After: seconds`.
fn retry_after(e: ApiError, seconds: u32) -> HttpResponse {
    let mut res: HttpResponse = e.error_response();
    res.headers_mut().insert(header::RETRY_AFTER, seconds.into());
    res
}

/// The client address of a request, as the budgets count it.
pub fn client_of(req: &actix_web::HttpRequest, state: &super::State) -> IpAddr {
    super::redirect::client_ip(req, state)
        .parse::<IpAddr>()
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// The middleware of the API and the webhooks: answers `429` when the client is past its
/// budget, and `503` while a process started from its link book has not yet found Redis to
/// be its store (`Spool::held`): nothing is read from or written to a Redis that may be
/// another (a shop's delivery is retried later).
pub async fn limit(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl actix_web::body::MessageBody>>, actix_web::Error> {
    let state = req.app_data::<super::State>().cloned();
    if let Some(state) = state {
        if state.spool.held() {
            return Ok(req.into_response(not_started()).map_into_right_body());
        }
        if let Err(wait) = state.limits.check(client_of(req.request(), &state)) {
            return Ok(req.into_response(too_many(wait)).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An address gets `WEBHOOK_BODIES_PER_ADDRESS` turns, an IPv6 host's /64 as one address,
    /// and everyone `WEBHOOK_BODIES`; a turn ended is free again.
    #[test]
    fn webhook_bodies_are_bounded_by_address_and_in_all() {
        let bodies = WebhookBodies::default();
        let v6 = |last: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, last));
        let mut held: Vec<BodyTurn> = (0..WEBHOOK_BODIES_PER_ADDRESS)
            .map(|i| bodies.turn(v6(i as u16)).expect("a turn"))
            .collect();
        assert_eq!(bodies.turn(v6(1000)).err(), Some(NoTurn::Address), "the same /64");
        let other = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        held.push(bodies.turn(other).expect("another /64"));
        held.pop();
        held.pop();
        held.push(bodies.turn(v6(7)).expect("a turn ended is free again"));
        for i in 0..(WEBHOOK_BODIES - WEBHOOK_BODIES_PER_ADDRESS) {
            held.push(
                bodies
                    .turn(IpAddr::from([10, 0, (i / 250) as u8, (i % 250) as u8]))
                    .expect("a turn"),
            );
        }
        assert_eq!(bodies.turn(IpAddr::from([10, 9, 9, 9])).err(), Some(NoTurn::All));
        drop(held);
        assert!(bodies.turn(IpAddr::from([10, 9, 9, 9])).is_ok());
        assert!(
            bodies.by_address.lock().unwrap().len() <= 1,
            "addresses with nothing read are forgotten"
        );
    }
}
