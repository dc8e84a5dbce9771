//! Signing in and out of the dashboard: the sign-in page (in the reader's language, leading
//! back to the page asked for), its budget of attempts, and signing out every session.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::super::{session, Lang, Texts};
use super::{form_post, html, rendered, see_other};
use crate::error::ApiError;
use crate::http::State;

/// A form posted with a CSRF token of another session.
pub(crate) const FORM_EXPIRED: &str = "This form has expired: load its page again and send it from there.";

/// To the sign-in page, which then leads back to the page asked for (or, for a form, the page
/// the form was on), and says so when the browser's session has ended (signed out elsewhere,
/// or past its life) rather than never begun.
pub(super) fn to_sign_in(req: &HttpRequest) -> HttpResponse {
    let back = if matches!(
        *req.method(),
        actix_web::http::Method::GET | actix_web::http::Method::HEAD
    ) {
        match req.query_string() {
            "" => req.path().to_owned(),
            q => format!("{}?{q}", req.path()),
        }
    } else {
        form_page(req.path()).to_owned()
    };
    let mut to = "/app/login".to_owned();
    let mut sep = '?';
    if back != "/app" && local_page(&back).is_some() {
        to.push_str("?next=");
        to.extend(url::form_urlencoded::byte_serialize(back.as_bytes()));
        sep = '&';
    }
    // A form sent without a session was on a page signed in: its session expired (and the
    // browser let its cookie go), which the page says as it does for a session ended.
    if req.cookie(session::COOKIE).is_some() || req.method() == actix_web::http::Method::POST {
        to.push(sep);
        to.push_str("ended=1");
    }
    see_other(&to)
}

/// The page a dashboard form posted to `path` is on: a campaign's forms (minting, a link's
/// card, sharing) are on its page, the others on the campaigns' page.
pub(super) fn form_page(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/app/campaigns/") {
        if let Some(id) = rest.split('/').next().filter(|id| !id.is_empty()) {
            return &path[.."/app/campaigns/".len() + id.len()];
        }
    }
    "/app"
}

/// `path` when it is a dashboard page of this server to go back to after signing in. The
/// dashboard's paths and queries are slugs, figure names and language tags, so anything else
/// is refused: another site (`//host`, a scheme, `\\`), a dot segment that climbs out of
/// `/app` (`/app/../<code>` would follow a link), an escape that hides one, a control
/// character that would end the header.
pub(super) fn local_page(path: &str) -> Option<&str> {
    let ok = (path == "/app" || path.starts_with("/app/") || path.starts_with("/app?"))
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'?' | b'=' | b'&'));
    ok.then_some(path)
}

#[derive(Template)]
#[template(path = "app_login.html")]
struct LoginView {
    t: &'static Texts,
    failed: bool,
    /// Seconds to wait when the address is past its sign-in budget.
    wait: Option<u64>,
    /// The page to go back to once signed in (`to_sign_in`).
    next: String,
    /// The browser's session ended: say so.
    ended: bool,
    /// Just signed out (everywhere): say so.
    signed_out: bool,
}

impl LoginView {
    /// The sign-in page in `lang`, leading back to `next` (when it is a dashboard page).
    fn new(lang: Lang, next: Option<&str>, ended: bool) -> Self {
        LoginView {
            t: lang.texts(),
            failed: false,
            wait: None,
            next: next.and_then(local_page).unwrap_or_default().to_owned(),
            ended,
            signed_out: false,
        }
    }

    /// The same page in the other language, still leading back and saying what it said.
    fn other_lang_href(&self) -> String {
        let mut href = format!("/app/login?lang={}", self.t.other_lang);
        if !self.next.is_empty() {
            href.push_str("&next=");
            href.extend(url::form_urlencoded::byte_serialize(self.next.as_bytes()));
        }
        if self.ended {
            href.push_str("&ended=1");
        }
        href
    }
}

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
    ended: Option<String>,
    signed_out: Option<String>,
}

pub(super) async fn login_form(req: HttpRequest, q: web::Query<LoginQuery>) -> Result<HttpResponse, ApiError> {
    let mut view = LoginView::new(Lang::of(&req), q.next.as_deref(), q.ended.is_some());
    view.signed_out = q.signed_out.is_some();
    rendered(view.render())
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
    lang: Option<String>,
    next: Option<String>,
}

pub(super) async fn login(
    req: HttpRequest,
    state: State,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, ApiError> {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    // Every attempt counts, a right token too: past the budget a guess cannot be told right.
    let client = crate::http::limits::client_of(&req, &state);
    // The language of the page the form was on.
    let lang = form.lang.as_deref().map_or_else(|| Lang::of(&req), Lang::parse);
    if let Err(wait) = state.sign_in_limits.check(client) {
        crate::telemetry::warn_limited!(%client, "dashboard sign-in attempts past their budget");
        if !crate::http::accepts(&req, "text/html") {
            return Ok(crate::http::limits::too_many(wait));
        }
        // A browser gets the sign-in page again, saying how long to wait, with the API's
        // status and header.
        let wait = wait.max(1);
        let body = LoginView {
            wait: Some(wait),
            ..LoginView::new(lang, form.next.as_deref(), false)
        }
        .render()
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
        let mut res = html(actix_web::http::StatusCode::TOO_MANY_REQUESTS, body);
        res.headers_mut().insert(header::RETRY_AFTER, wait.into());
        return Ok(res);
    }
    let hash: [u8; 32] = Sha256::digest(form.token.trim().as_bytes()).into();
    if !bool::from(hash.ct_eq(&state.admin_hash)) {
        crate::telemetry::warn_limited!("dashboard sign-in with a wrong token");
        let body = LoginView {
            failed: true,
            ..LoginView::new(lang, form.next.as_deref(), false)
        }
        .render();
        let body = body.map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
        return Ok(html(actix_web::http::StatusCode::UNAUTHORIZED, body));
    }
    Ok(HttpResponse::SeeOther()
        .cookie(session::start(&state))
        .cookie(lang.cookie(&state))
        .insert_header((
            header::LOCATION,
            match form.next.as_deref().and_then(local_page) {
                Some(page) => page.to_owned(),
                None => format!("/app?lang={}", lang.tag()),
            },
        ))
        .finish())
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    csrf: String,
}

pub(super) async fn logout(req: HttpRequest, state: State, form: web::Form<CsrfForm>) -> HttpResponse {
    if let Err(answer) = form_post(&req, &state, &form.csrf) {
        return *answer;
    }
    // Every session ends, not only this browser's cookie: a copy of it is worth nothing now.
    if let Err(e) = session::sign_out(&state).await {
        tracing::error!(error = %e, "sign-out could not end the sessions: the store did not answer");
        return actix_web::ResponseError::error_response(&ApiError::from(e));
    }
    HttpResponse::SeeOther()
        .cookie(session::end(&state))
        .insert_header((header::LOCATION, "/app/login?signed_out=1"))
        .finish()
}
