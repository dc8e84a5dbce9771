//! KOLs (influencers): create, list, get, patch. The tier follows the follower count.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{created, load_record, nullable, parse_name, parse_slug, Admin, PageQuery, State};
use crate::domain::{has_control_chars, Kol, Platform, Tier};
use crate::error::{ApiError, Code};
use crate::store::Kind;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/kols").get(list).post(create))
        .service(web::resource("/kols/{id}").get(get).patch(patch));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKol {
    id: String,
    name: String,
    handle: Option<String>,
    platform: Platform,
    #[serde(default)]
    followers: u64,
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
    Ok(h.to_owned())
}

async fn create(_: Admin, state: State, body: web::Json<CreateKol>) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let now = crate::domain::now();
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
    let json = serde_json::to_string(&kol).map_err(anyhow::Error::from)?;
    if !state.store.create_record(Kind::Kol, kol.id.as_str(), &json).await? {
        return Err(ApiError::new(
            Code::AlreadyExists,
            format!("A KOL with id '{}' exists already.", kol.id),
        ));
    }
    Ok(created(&kol))
}

pub async fn load(state: &State, id: &str) -> Result<Kol, ApiError> {
    load_record(state.store.as_ref(), Kind::Kol, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No KOL has id '{id}'.")))
}

async fn get(_: Admin, state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(load(&state, &id).await?))
}

async fn list(_: Admin, state: State, q: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let (items, next) = super::list_records::<Kol>(state.store.as_ref(), Kind::Kol, &q).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"kols": items, "next_cursor": next})))
}

async fn patch(
    _: Admin,
    state: State,
    id: web::Path<String>,
    body: web::Json<PatchKol>,
) -> Result<HttpResponse, ApiError> {
    let mut k = load(&state, &id).await?;
    let b = body.into_inner();
    if let Some(name) = b.name {
        k.name = parse_name("name", &name)?;
    }
    if let Some(handle) = b.handle {
        k.handle = handle.as_deref().map(parse_handle).transpose()?;
    }
    if let Some(p) = b.platform {
        k.platform = p;
    }
    if let Some(f) = b.followers {
        k.followers = f;
        k.tier = Tier::from_followers(f);
    }
    k.updated_at = crate::domain::now();
    let json = serde_json::to_string(&k).map_err(anyhow::Error::from)?;
    state.store.put_record(Kind::Kol, k.id.as_str(), &json).await?;
    Ok(HttpResponse::Ok().json(k))
}
