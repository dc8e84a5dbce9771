//! The analyst's session: signing in with the admin token sets an `HttpOnly`, `SameSite=Strict`
//! cookie holding an expiry and a MAC over it (and over the admin token's hash, so that a new
//! token ends every session). No token ever travels in a URL. Forms carry a CSRF token derived
//! from the session; state-changing requests check it.
//!
//! The MAC's key is kept in the store (`session_key`). Signing out replaces it ([`sign_out`]),
//! which ends every session, so that a copied cookie is worth nothing once its owner signed out
//! (one admin: signing out signs out every browser). Every process reads the key again every
//! [`KEY_REFRESH`] ([`keep_key_fresh`]), so a sign-out through one ends sessions in all.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, CookieBuilder, SameSite};
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

/// Reads the store's session key every `KEY_REFRESH`, until the process ends. Not while the
/// spool is `held`: a process started from its link book has not yet found Redis to be its
/// store, and another store's key would end its sessions (and sign the next ones with it).
pub async fn keep_key_fresh(store: Arc<dyn Store>, key: Arc<SessionKey>, spool: Arc<crate::spool::Spool>) {
    loop {
        tokio::time::sleep(KEY_REFRESH).await;
        if spool.held() {
            continue;
        }
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

/// A cookie only kolink's own pages send back and scripts cannot read: `HttpOnly`,
/// `SameSite=Strict`, under `path`, and `Secure` where kolink is served over https.
pub fn private(state: &AppState, name: &'static str, value: String, path: String) -> CookieBuilder<'static> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.public_base.starts_with("https://"))
}

/// A new session cookie for someone who just gave the admin token.
pub fn start(state: &AppState) -> Cookie<'static> {
    let expires = state.clock.now().timestamp() + HOURS * 3600;
    let value = format!("{expires}.{}", mac(state, "session", &expires.to_string()));
    private(state, COOKIE, value, "/".to_owned())
        .max_age(CookieDuration::hours(HOURS))
        .finish()
}

/// The cookie that ends a session.
pub fn end(state: &AppState) -> Cookie<'static> {
    let mut c = private(state, COOKIE, String::new(), "/".to_owned()).finish();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    /// A process started from its link book reads no key from a Redis not yet found to be its
    /// store (another Redis at the address holds another store's key); once the start is
    /// finished (the spool released), it does.
    #[tokio::test(start_paused = true)]
    async fn the_key_is_not_read_again_while_the_start_is_unfinished() {
        let dir = tempfile::tempdir().unwrap();
        let clock: crate::clock::SharedClock = Arc::new(crate::clock::SystemClock);
        let store: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open(dir.path(), std::time::Duration::from_secs(3600), clock)
                .await
                .unwrap(),
        );
        store.init_secret("session_key", "another-store's-key").await.unwrap();
        let spool = Arc::new(crate::spool::Spool::open(&dir.path().join("spool"), 1 << 20).unwrap());
        spool.hold(true);
        let key = Arc::new(SessionKey::new(b"the book's key".to_vec()));
        let refresh = tokio::spawn(keep_key_fresh(store, key.clone(), spool.clone()));
        let read = || key.with(<[u8]>::to_vec) == b"another-store's-key";
        // The store answers on its own threads, in the machine's time: the paused clock runs
        // (each refresh passes at once) for a while of that time.
        assert!(!run_for(std::time::Duration::from_millis(300), read).await);
        spool.hold(false);
        assert!(run_for(std::time::Duration::from_secs(10), read).await);
        refresh.abort();
    }

    /// Lets the paused clock run, a refresh at a time, until `done` or for `real` of the
    /// machine's time; whether `done`.
    async fn run_for(real: std::time::Duration, done: impl Fn() -> bool) -> bool {
        let end = std::time::Instant::now() + real;
        while std::time::Instant::now() < end {
            if done() {
                return true;
            }
            tokio::time::sleep(KEY_REFRESH).await;
        }
        done()
    }
}
