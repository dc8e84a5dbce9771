//! KOLs (influencers): create, list, get, patch. The tier follows the follower count.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{created, parse_name, parse_slug, Admin, Body, PageQuery, State};
use crate::domain::{has_control_chars, nullable, Kol, Platform, Tier};
use crate::error::{ApiError, Code};
use crate::lookup;
use crate::store::RecordsExt;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/kols").route(super::get_or_head().to(list)).post(create))
        .service(
            web::resource("/kols/{id}")
                .route(super::get_or_head().to(get))
                .patch(patch),
        );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKol {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) handle: Option<String>,
    pub(super) platform: Platform,
    #[serde(default)]
    pub(super) followers: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchKol {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    handle: Option<Option<String>>,
    platform: Option<Platform>,
    followers: Option<u64>,
}

fn parse_handle(h: &str) -> Result<String, ApiError> {
    let h = h.trim();
    if h.is_empty() || h.chars().count() > 100 || has_control_chars(h) {
        return Err(ApiError::invalid(
            "handle must be 1 to 100 characters without control characters.",
        ));
    }
    if crate::domain::hides_its_text(h) {
        return Err(ApiError::invalid(
            "handle must show what it says: no right-to-left overrides or isolates, and not only invisible characters.",
        ));
    }
    Ok(h.to_owned())
}

async fn create(_: Admin, state: State, body: Body<CreateKol>) -> Result<HttpResponse, ApiError> {
    Ok(created(&new_kol(&state, body.into_inner()).await?))
}

/// Creates a KOL from the API's body (and the dashboard's form).
pub(super) async fn new_kol(state: &State, b: CreateKol) -> Result<Kol, ApiError> {
    let now = state.clock.now_to_second();
    let kol = Kol {
        id: parse_slug("id", &b.id)?,
        name: parse_name("name", &b.name)?,
        handle: b.handle.as_deref().map(parse_handle).transpose()?,
        platform: b.platform,
        followers: b.followers,
        tier: Tier::from_followers(b.followers),
        created_at: now,
        updated_at: now,
    };
    if !state.store().create(&kol).await? {
        return Err(ApiError::new(
            Code::AlreadyExists,
            format!("A KOL with id '{}' exists already.", kol.id),
        ));
    }
    Ok(kol)
}

async fn get(_: Admin, state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(lookup::kol(state.store(), &id).await?))
}

async fn list(_: Admin, state: State, q: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let key = super::ListKey::new("kols", &[]);
    let page = state.store().list::<Kol>(q.cursor(&key)?, q.limit()?).await?;
    Ok(super::list("kols", &page.items, page.next, &key))
}

async fn patch(_: Admin, state: State, id: web::Path<String>, body: Body<PatchKol>) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let name = b.name.as_deref().map(|n| parse_name("name", n)).transpose()?;
    let handle = b
        .handle
        .map(|h| h.as_deref().map(parse_handle).transpose())
        .transpose()?;
    let now = state.clock.now_to_second();
    let k = lookup::update::<Kol>(state.store(), &id, "KOL", |k| {
        if let Some(n) = &name {
            k.name = n.clone();
        }
        if let Some(h) = &handle {
            k.handle = h.clone();
        }
        if let Some(p) = b.platform {
            k.platform = p;
        }
        if let Some(f) = b.followers {
            k.followers = f;
            k.tier = Tier::from_followers(f);
        }
        k.updated_at = now;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().json(k))
}
