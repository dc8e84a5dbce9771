//! The analyst's session: signing in with the admin token sets an `HttpOnly`, `SameSite=Strict`
//! cookie holding an expiry and a MAC over it (and over the admin token's hash, so that a new
//! token ends every session). No token ever travels in a URL. Forms carry a CSRF token derived
//! from the session; state-changing requests check it.
//!
//! The MAC's key is kept in the store (`session_key`). Signing out replaces it ([`sign_out`]),
//! which ends every session, so that a copied cookie is worth nothing once its owner signed out
//! (one admin: signing out signs out every browser). Every process reads the key again every
//! [`KEY_REFRESH`] ([`keep_key_fresh`]), so a sign-out through one ends sessions in all.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use std::sync::{Arc, RwLock};

use crate::http::AppState;
use crate::store::{Store, StoreError};

pub const COOKIE: &str = "kolink_session";
/// How long a session lasts.
pub const HOURS: i64 = 12;

/// How often a process reads the session key again (a sign-out through another one).
pub const KEY_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// The key sessions are signed with: the store's `session_key`, as this process last read it.
pub struct SessionKey(RwLock<Vec<u8>>);

impl SessionKey {
    pub fn new(key: Vec<u8>) -> Self {
        Self(RwLock::new(key))
    }

    fn with<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        f(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn set(&self, key: Vec<u8>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = key;
    }
}

/// Ends every session: a new key, in the store first (for every process), then here.
pub async fn sign_out(state: &AppState) -> Result<(), StoreError> {
    let key = hex::encode(rand::random::<[u8; 32]>());
    state.store.replace_secret("session_key", &key).await?;
    state.session_key.set(key.into_bytes());
    Ok(())
}

/// Reads the store's session key every `KEY_REFRESH`, until the process ends.
pub async fn keep_key_fresh(store: Arc<dyn Store>, key: Arc<SessionKey>) {
    loop {
        tokio::time::sleep(KEY_REFRESH).await;
        match store.secret("session_key").await {
            Ok(Some(k)) => key.set(k.into_bytes()),
            Ok(None) => {}
            Err(e) => crate::telemetry::warn_limited!(error = %e, "the session key could not be read again"),
        }
    }
}

fn mac(state: &AppState, purpose: &str, value: &str) -> String {
    let mut m = state
        .session_key
        .with(|key| Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length"));
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
