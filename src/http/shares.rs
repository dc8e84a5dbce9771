//! Sharing with a KOL: read-only links to their own figures. `POST /api/v1/kols/{id}/shares`
//! hands out a token once (`<id>_<secret>`; only the secret's SHA-256 is kept), the list shows
//! shares without tokens, `DELETE /api/v1/shares/{id}` revokes one, and `/s/{token}.json`
//! answers the KOL's page (`crate::report::KolPage`): their links, clicks, unique clicks, CTR,
//! conversions, conversion rate and a daily chart, and nothing about orders, money or others.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{created, parse_slug, Admin, PageQuery, State};
use crate::domain::{writable_time, Share};
use crate::error::{ApiError, Code};
use crate::lookup;
use crate::store::{fill_page, Kind, RecordsExt};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/kols/{id}/shares")
            .route(super::get_or_head().to(list))
            .post(create),
    )
    .service(web::resource("/shares/{id}").delete(revoke));
}

pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/s/{token}")
            .wrap(actix_web::middleware::from_fn(super::views::remember_lang))
            .route(web::get().to(open))
            .route(web::head().to(open)),
    );
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateShare {
    campaign: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

/// What the API shows of a share; the token only in the answer to its creation.
#[derive(Serialize)]
struct ShareView<'a> {
    id: &'a str,
    kol: &'a str,
    campaign: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

fn view<'a>(s: &'a Share, token: Option<&'a str>, base: &str) -> ShareView<'a> {
    ShareView {
        id: &s.id,
        kol: s.kol.as_str(),
        campaign: s.campaign.as_ref().map(|c| c.as_str()),
        token,
        url: token.map(|t| format!("{base}/s/{t}")),
        created_at: s.created_at,
        expires_at: s.expires_at,
        revoked_at: s.revoked_at,
    }
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

async fn create(
    _: Admin,
    state: State,
    kol: web::Path<String>,
    super::OptionalJson(b): super::OptionalJson<CreateShare>,
) -> Result<HttpResponse, ApiError> {
    let (share, token) = new_share(&state, &kol, b.campaign.as_deref(), b.expires_at).await?;
    Ok(created(&view(&share, Some(&token), &state.public_base)))
}

/// A new share of `kol`'s page (of `campaign` only, when given), and its token, which is shown
/// once: for the API and the dashboard alike.
pub(crate) async fn new_share(
    state: &State,
    kol: &str,
    campaign: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(Share, String), ApiError> {
    let kol = lookup::kol(state.store(), kol).await?;
    let campaign = match campaign {
        Some(c) => Some(
            lookup::named_campaign(state.store(), parse_slug("campaign", c)?.as_str())
                .await?
                .id,
        ),
        None => None,
    };
    let now = state.clock.now_to_second();
    let expires_at = expires_at.map(|t| writable_time("expires_at", t)).transpose()?;
    if expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::invalid("expires_at is in the past."));
    }
    let id = format!(
        "sh{}",
        nanoid::nanoid!(16, &"0123456789abcdefghijklmnopqrstuvwxyz".chars().collect::<Vec<_>>())
    );
    let secret = B64URL.encode(rand::random::<[u8; 32]>());
    let share = Share {
        id: id.clone(),
        kol: kol.id,
        campaign,
        secret_sha256: sha256_hex(&secret),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    if !state.store().create(&share).await? {
        return Err(ApiError::Internal(anyhow::anyhow!("share id {id} was taken")));
    }
    let token = format!("{id}_{secret}");
    Ok((share, token))
}

async fn list(
    _: Admin,
    state: State,
    kol: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let kol = lookup::kol(state.store(), &kol).await?;
    let store = state.store();
    // Each scanned record is decoded once, then filtered by KOL.
    let scan = |c, n| {
        let rows = store.scan_records(Kind::Share, c, n);
        async move {
            rows.await?
                .into_iter()
                .map(|(c, json)| Ok((c, serde_json::from_str::<Share>(&json)?)))
                .collect::<Result<Vec<_>, crate::store::StoreError>>()
        }
    };
    let key = super::ListKey::new("shares", &[Some(kol.id.as_str())]);
    let page = fill_page(q.cursor(&key)?, q.limit()?, |s: &Share| s.kol == kol.id, scan, true).await?;
    let shares = page.items;
    let views: Vec<ShareView> = shares.iter().map(|s| view(s, None, &state.public_base)).collect();
    Ok(super::list("shares", &views, page.next, &key))
}

async fn revoke(_: Admin, state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    end_share(&state, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ends share `id` (its page answers `410` from now on): for the API and the dashboard alike.
pub(crate) async fn end_share(state: &State, id: &str) -> Result<(), ApiError> {
    let now = state.clock.now_to_second();
    lookup::update::<Share>(state.store(), id, "share", |s| {
        s.revoked_at.get_or_insert(now);
        Ok(())
    })
    .await?;
    Ok(())
}

pub(super) const NOT_A_SHARE: &str = "This share link does not exist. Check that it was copied whole.";
pub(super) const SHARE_ENDED: &str = "This share link was revoked or has expired.";

/// The share a token opens: `410` when revoked or expired, `404` when it is no token of ours.
async fn share_of(state: &State, token: &str) -> Result<Share, ApiError> {
    let unknown = || ApiError::not_found(NOT_A_SHARE);
    let (id, secret) = token.split_once('_').ok_or_else(unknown)?;
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(unknown());
    }
    let share = state.store().get::<Share>(id).await?.ok_or_else(unknown)?;
    let given = sha256_hex(secret);
    if !bool::from(given.as_bytes().ct_eq(share.secret_sha256.as_bytes())) {
        return Err(unknown());
    }
    if !share.is_open(state.clock.now()) {
        return Err(ApiError::new(Code::LinkGone, SHARE_ENDED));
    }
    Ok(share)
}

/// `GET /s/{token}`: the KOL's page for people (HTML, in their language); `GET /s/{token}.json`:
/// the same figures as JSON. `HEAD` answers the same headers.
async fn open(req: HttpRequest, state: State, token: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (token, json) = match token.strip_suffix(".json") {
        Some(t) => (t, true),
        None => (token.as_str(), false),
    };
    let share = match share_of(&state, token).await {
        Ok(s) => s,
        // People get a small page for a gone or unknown link; programs the JSON error.
        Err(ApiError::Client { code, message }) if !json => {
            return Ok(super::redirect::page(&req, code, &message));
        }
        Err(e) => return Err(e),
    };
    let page = crate::report::kol_page(
        state.store(),
        &state.link_lists,
        state.clock.as_ref(),
        &state.public_base,
        share.kol.as_str(),
        share.campaign.as_ref().map(|c| c.as_str()),
    )
    .await?;
    if json {
        return Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "private, no-store"))
            .insert_header(super::views::NOSNIFF)
            .json(page));
    }
    let t = super::views::Lang::of(&req).texts();
    let html = super::views::kol_page::KolPageView::new(t, &page)
        .render()
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("Failed to render the KOL page")))?;
    Ok(super::views::html_page(actix_web::http::StatusCode::OK).body(html))
}
