//! Links: mint one (or one per KOL in a single call), list, get, patch. Never hard-deleted.
//! The minting rules are `crate::minting`'s.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{created, Admin, Body, PageQuery, State};
use crate::domain::{Coupon, Destination, Link, LinkStatus, Money, Utm};
use crate::error::ApiError;
use crate::lookup::{self, LinkFilter};
use crate::minting::{BulkSpec, LinkPatch, LinkSpec};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/links")
            .route(super::get_or_head().to(list))
            .post(create),
    )
    .service(
        web::resource("/links/{code}")
            .route(super::get_or_head().to(get))
            .patch(patch),
    )
    .service(web::resource("/campaigns/{id}/links").post(create_bulk));
}

/// What the API shows of a link.
#[derive(Serialize)]
pub struct LinkView<'a> {
    code: &'a str,
    short_url: String,
    campaign: &'a str,
    kol: &'a str,
    destination: &'a Destination,
    target_url: &'a str,
    utm: &'a Utm,
    cost: Money,
    coupon: &'a Option<Coupon>,
    tags: &'a [String],
    status: LinkStatus,
    /// Whether it redirects people now: `active` and not past `expires_at` (an expired link
    /// keeps `status: active`, which is what a PATCH sets, and answers 410).
    live: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

pub fn view<'a>(state: &State, l: &'a Link) -> LinkView<'a> {
    LinkView {
        code: l.code.as_str(),
        short_url: format!("{}/{}", state.public_base, l.code),
        campaign: l.campaign.as_str(),
        kol: l.kol.as_str(),
        destination: &l.destination,
        target_url: &l.target_url,
        utm: &l.utm,
        cost: l.cost,
        coupon: &l.coupon,
        tags: &l.tags,
        status: l.status,
        live: l.is_live(state.clock.now()),
        created_at: l.created_at,
        updated_at: l.updated_at,
        expires_at: l.expires_at,
    }
}

#[derive(Deserialize)]
struct ListQuery {
    campaign: Option<String>,
    kol: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// The single-link body is a `LinkSpec` plus `campaign`. serde cannot deny unknown fields
/// through `flatten`, so `campaign` is taken off the object and the rest read as a `LinkSpec`.
fn split_create(mut body: serde_json::Map<String, serde_json::Value>) -> Result<(String, LinkSpec), ApiError> {
    let campaign = match body.remove("campaign") {
        Some(serde_json::Value::String(c)) => c,
        Some(_) => return Err(ApiError::invalid("campaign must be a string.")),
        None => return Err(ApiError::invalid("The body is not valid: missing field `campaign`.")),
    };
    let spec = crate::error::from_json_value(serde_json::Value::Object(body))?;
    Ok((campaign, spec))
}

async fn create(
    _: Admin,
    state: State,
    body: Body<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, ApiError> {
    let (campaign, spec) = split_create(body.into_inner())?;
    let link = state.minter().one(&campaign, spec).await?;
    Ok(created(&view(&state, &link)))
}

async fn create_bulk(
    _: Admin,
    state: State,
    id: web::Path<String>,
    body: Body<BulkSpec>,
) -> Result<HttpResponse, ApiError> {
    let links = state.minter().for_kols(&id, body.into_inner()).await?;
    let views: Vec<LinkView> = links.iter().map(|l| view(&state, l)).collect();
    Ok(created(&serde_json::json!({ "links": views })))
}

async fn get(_: Admin, state: State, code: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let link = lookup::link(state.store(), &code).await?;
    Ok(HttpResponse::Ok().json(view(&state, &link)))
}

async fn list(_: Admin, state: State, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let filter = LinkFilter {
        campaign: q.campaign.clone(),
        kol: q.kol.clone(),
    };
    let key = super::ListKey::new("links", &[q.campaign.as_deref(), q.kol.as_deref()]);
    let page = lookup::links(state.store(), &filter, q.page.cursor(&key)?, q.page.limit()?).await?;
    let views: Vec<LinkView> = page.items.iter().map(|l| view(&state, l)).collect();
    Ok(super::list("links", &views, page.next, &key))
}

async fn patch(
    _: Admin,
    state: State,
    code: web::Path<String>,
    body: Body<LinkPatch>,
) -> Result<HttpResponse, ApiError> {
    let link = state.minter().patch(&code, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view(&state, &link)))
}
