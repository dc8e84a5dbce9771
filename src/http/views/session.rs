//! The analyst's session: signing in with the admin token sets an `HttpOnly`, `SameSite=Strict`
//! cookie holding an expiry and a MAC over it (and over the admin token's hash, so that a new
//! token ends every session). No token ever travels in a URL. Forms carry a CSRF token derived
//! from the session; state-changing requests check it.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::http::AppState;

pub const COOKIE: &str = "kolink_session";
/// How long a session lasts.
pub const HOURS: i64 = 12;

fn mac(state: &AppState, purpose: &str, value: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(&state.session_key).expect("HMAC takes keys of any length");
    m.update(purpose.as_bytes());
    m.update(b".");
    m.update(value.as_bytes());
    m.update(b".");
    m.update(&state.admin_hash);
    B64URL.encode(m.finalize().into_bytes())
}

/// A new session cookie for someone who just gave the admin token.
pub fn start(state: &AppState) -> Cookie<'static> {
    let expires = state.clock.now().timestamp() + HOURS * 3600;
    let value = format!("{expires}.{}", mac(state, "session", &expires.to_string()));
    Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.public_base.starts_with("https://"))
        .max_age(CookieDuration::hours(HOURS))
        .finish()
}

/// The cookie that ends a session.
pub fn end(state: &AppState) -> Cookie<'static> {
    let mut c = Cookie::build(COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.public_base.starts_with("https://"))
        .finish();
    c.make_removal();
    c
}

/// The request's session cookie value, when it is a valid, unexpired one.
pub fn current(req: &HttpRequest, state: &AppState) -> Option<String> {
    let cookie = req.cookie(COOKIE)?;
    let value = cookie.value();
    let (expires, given) = value.split_once('.')?;
    let expires_at: i64 = expires.parse().ok()?;
    if expires_at <= state.clock.now().timestamp() {
        return None;
    }
    let expected = mac(state, "session", expires);
    bool::from(given.as_bytes().ct_eq(expected.as_bytes())).then(|| value.to_owned())
}

/// The CSRF token of a session, for its forms.
pub fn csrf(state: &AppState, session: &str) -> String {
    mac(state, "csrf", session)
}

/// True when `given` is the CSRF token of `session`.
pub fn csrf_ok(state: &AppState, session: &str, given: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(csrf(state, session).as_bytes()))
}
