//! Links: mint one (or one per KOL in a single call), list, get, patch. Never hard-deleted.

use std::collections::HashSet;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{created, nullable, parse_destination, Admin, PageQuery, State};
use crate::domain::{
    has_control_chars, target_url, Campaign, Destination, Kol, Link, LinkStatus, Money, ShortCode, Utm,
};
use crate::error::{ApiError, Code};
use crate::store::{LinkConflict, LinkFilter};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/links").get(list).post(create))
        .service(web::resource("/links/{code}").get(get).patch(patch))
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
    coupon: &'a Option<String>,
    tags: &'a [String],
    status: LinkStatus,
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
        created_at: l.created_at,
        updated_at: l.updated_at,
        expires_at: l.expires_at,
    }
}

/// The per-link fields of both the single and the bulk call.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkSpec {
    kol: String,
    destination: Option<String>,
    cost: Option<serde_json::Value>,
    coupon: Option<String>,
    code: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    utm: Option<Utm>,
    expires_at: Option<DateTime<Utc>>,
}

/// The single-link body is a `LinkSpec` plus `campaign`. serde cannot deny unknown fields
/// through `flatten`, so `campaign` is taken off the object and the rest read as a `LinkSpec`.
fn split_create(mut body: serde_json::Map<String, serde_json::Value>) -> Result<(String, LinkSpec), ApiError> {
    let campaign = match body.remove("campaign") {
        Some(serde_json::Value::String(c)) => c,
        Some(_) => return Err(ApiError::invalid("campaign must be a string.")),
        None => return Err(ApiError::invalid("The body is not valid: missing field `campaign`.")),
    };
    let spec = serde_json::from_value(serde_json::Value::Object(body))
        .map_err(|e| ApiError::invalid(format!("The body is not valid: {e}.")))?;
    Ok((campaign, spec))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBulk {
    destination: Option<String>,
    kols: Vec<LinkSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchLink {
    destination: Option<String>,
    cost: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "nullable")]
    coupon: Option<Option<String>>,
    tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    expires_at: Option<Option<DateTime<Utc>>>,
    status: Option<LinkStatus>,
}

#[derive(Deserialize)]
struct ListQuery {
    campaign: Option<String>,
    kol: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

fn parse_coupon(c: &str) -> Result<String, ApiError> {
    if c.is_empty() || c.chars().count() > 64 || has_control_chars(c) || c.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid(
            "coupon must be 1 to 64 characters without spaces or control characters.",
        ));
    }
    Ok(c.to_owned())
}

fn parse_tags(tags: Vec<String>) -> Result<Vec<String>, ApiError> {
    if tags.len() > 20 {
        return Err(ApiError::invalid("A link takes at most 20 tags."));
    }
    for t in &tags {
        if t.is_empty() || t.chars().count() > 64 || has_control_chars(t) {
            return Err(ApiError::invalid(
                "Each tag must be 1 to 64 characters without control characters.",
            ));
        }
    }
    Ok(tags)
}

fn parse_cost(v: Option<&serde_json::Value>) -> Result<Money, ApiError> {
    v.map(|v| Money::from_json(v).map_err(|e| ApiError::invalid(format!("cost: {e}."))))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn parse_code(s: &str) -> Result<ShortCode, ApiError> {
    use crate::domain::CodeError;
    ShortCode::parse(s).map_err(|e| match e {
        CodeError::Malformed(i) => ApiError::new(Code::InvalidCode, format!("{i}.")),
        CodeError::Reserved(i) => ApiError::new(Code::ReservedCode, format!("{i}.")),
    })
}

/// A link ready to store, but for its numeric id; `generated` when kolink chose the code.
struct Draft {
    link: Link,
    generated: bool,
}

/// Builds a link from its spec. The UTM set is the defaults (KOL's platform, `kol`, campaign
/// id, KOL id), overridden by the campaign's, overridden by the link's own.
fn draft(campaign: &Campaign, kol: &Kol, spec: LinkSpec, fallback: Option<&Destination>) -> Result<Draft, ApiError> {
    let now = crate::domain::now();
    let destination = match spec.destination.as_deref() {
        Some(d) => parse_destination(d)?,
        None => fallback.or(campaign.destination.as_ref()).cloned().ok_or_else(|| {
            ApiError::new(
                Code::InvalidDestination,
                "No destination: give one, or set the campaign's destination.",
            )
        })?,
    };
    let link_utm = spec.utm.unwrap_or_default().validate()?;
    let defaults = Utm {
        source: Some(kol.platform.as_str().to_owned()),
        medium: Some("kol".to_owned()),
        campaign: Some(campaign.id.to_string()),
        content: Some(kol.id.to_string()),
        term: None,
    };
    let utm = defaults.overridden_by(&campaign.utm).overridden_by(&link_utm);
    if spec.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::invalid("expires_at is in the past."));
    }
    let (code, generated) = match spec.code.as_deref() {
        Some(c) => (parse_code(c)?, false),
        None => (ShortCode::generate(), true),
    };
    Ok(Draft {
        link: Link {
            id: 0,
            target_url: target_url(&destination, &utm),
            code,
            campaign: campaign.id.clone(),
            kol: kol.id.clone(),
            destination,
            utm,
            cost: parse_cost(spec.cost.as_ref())?,
            coupon: spec.coupon.as_deref().map(parse_coupon).transpose()?,
            tags: parse_tags(spec.tags)?,
            status: LinkStatus::Active,
            created_at: now,
            updated_at: now,
            expires_at: spec.expires_at,
        },
        generated,
    })
}

async fn load_kol_for(state: &State, id: &str) -> Result<Kol, ApiError> {
    match super::kols::load(state, id).await {
        Err(ApiError::Client {
            code: Code::NotFound, ..
        }) => Err(ApiError::new(
            Code::UnknownKol,
            format!("No KOL has id '{id}': create it first."),
        )),
        other => other,
    }
}

/// Stores drafts all together; regenerates kolink-chosen codes that happen to be taken.
async fn store_drafts(state: &State, mut drafts: Vec<Draft>) -> Result<Vec<Link>, ApiError> {
    let first = state.store.reserve_link_ids(drafts.len() as u64).await?;
    for (i, d) in drafts.iter_mut().enumerate() {
        d.link.id = first + i as u64;
    }
    for _ in 0..5 {
        let links: Vec<Link> = drafts.iter().map(|d| d.link.clone()).collect();
        match state.store.create_links(&links).await? {
            Ok(()) => {
                for l in &links {
                    state.links.forget(l.code.as_str());
                }
                return Ok(links);
            }
            Err(LinkConflict::Code(code)) => match drafts.iter_mut().find(|d| d.link.code.as_str() == code) {
                Some(d) if d.generated => d.link.code = ShortCode::generate(),
                _ => {
                    return Err(ApiError::new(
                        Code::CodeTaken,
                        format!("The code '{code}' is taken: choose another."),
                    ))
                }
            },
            Err(LinkConflict::Coupon(c)) => {
                return Err(ApiError::new(
                    Code::CouponTaken,
                    format!("The coupon '{c}' belongs to another link."),
                ))
            }
        }
    }
    Err(ApiError::Store(anyhow::anyhow!(
        "Failed to find a free code after five tries"
    )))
}

async fn create(
    _: Admin,
    state: State,
    body: web::Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, ApiError> {
    let (campaign_id, spec) = split_create(body.into_inner())?;
    let campaign = match super::campaigns::load(&state, &campaign_id).await {
        Err(ApiError::Client {
            code: Code::NotFound, ..
        }) => {
            return Err(ApiError::new(
                Code::UnknownCampaign,
                format!("No campaign has id '{campaign_id}': create it first."),
            ))
        }
        other => other?,
    };
    let kol = load_kol_for(&state, &spec.kol).await?;
    let d = draft(&campaign, &kol, spec, None)?;
    let links = store_drafts(&state, vec![d]).await?;
    Ok(created(&view(&state, &links[0])))
}

async fn create_bulk(
    _: Admin,
    state: State,
    id: web::Path<String>,
    body: web::Json<CreateBulk>,
) -> Result<HttpResponse, ApiError> {
    let campaign = super::campaigns::load(&state, &id).await?;
    let b = body.into_inner();
    if b.kols.is_empty() || b.kols.len() > 500 {
        return Err(ApiError::invalid("kols must hold 1 to 500 entries."));
    }
    let fallback = b.destination.as_deref().map(parse_destination).transpose()?;
    let mut drafts = Vec::with_capacity(b.kols.len());
    let mut codes = HashSet::new();
    let mut coupons = HashSet::new();
    for (i, spec) in b.kols.into_iter().enumerate() {
        let name_entry = |e: ApiError| match e {
            ApiError::Client { code, message } => ApiError::new(code, format!("kols[{i}]: {message}")),
            other => other,
        };
        let kol = load_kol_for(&state, &spec.kol).await.map_err(name_entry)?;
        let d = draft(&campaign, &kol, spec, fallback.as_ref()).map_err(name_entry)?;
        if !d.generated && !codes.insert(d.link.code.to_string()) {
            return Err(ApiError::invalid(format!(
                "kols[{i}]: the code '{}' appears twice in this call.",
                d.link.code
            )));
        }
        if let Some(c) = &d.link.coupon {
            if !coupons.insert(c.to_uppercase()) {
                return Err(ApiError::invalid(format!(
                    "kols[{i}]: the coupon '{c}' appears twice in this call."
                )));
            }
        }
        drafts.push(d);
    }
    let links = store_drafts(&state, drafts).await?;
    let views: Vec<LinkView> = links.iter().map(|l| view(&state, l)).collect();
    Ok(created(&serde_json::json!({ "links": views })))
}

pub async fn load(state: &State, code: &str) -> Result<Link, ApiError> {
    state
        .store
        .get_link(code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No link has the code '{code}'.")))
}

async fn get(_: Admin, state: State, code: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let link = load(&state, &code).await?;
    Ok(HttpResponse::Ok().json(view(&state, &link)))
}

async fn list(_: Admin, state: State, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let filter = LinkFilter {
        campaign: q.campaign.clone(),
        kol: q.kol.clone(),
    };
    let page = state
        .store
        .list_links(&filter, q.page.cursor()?.as_deref(), q.page.limit()?)
        .await?;
    let views: Vec<LinkView> = page.items.iter().map(|l| view(&state, l)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "links": views,
        "next_cursor": super::encode_cursor(page.next),
    })))
}

async fn patch(
    _: Admin,
    state: State,
    code: web::Path<String>,
    body: web::Json<PatchLink>,
) -> Result<HttpResponse, ApiError> {
    let old = load(&state, &code).await?;
    let mut l = old.clone();
    let b = body.into_inner();
    if let Some(d) = b.destination {
        l.destination = parse_destination(&d)?;
        l.target_url = target_url(&l.destination, &l.utm);
    }
    if b.cost.is_some() {
        l.cost = parse_cost(b.cost.as_ref())?;
    }
    if let Some(c) = b.coupon {
        l.coupon = c.as_deref().map(parse_coupon).transpose()?;
    }
    if let Some(t) = b.tags {
        l.tags = parse_tags(t)?;
    }
    if let Some(e) = b.expires_at {
        l.expires_at = e;
    }
    if let Some(s) = b.status {
        l.status = s;
    }
    l.updated_at = crate::domain::now();
    if let Err(LinkConflict::Coupon(c)) | Err(LinkConflict::Code(c)) = state.store.update_link(&old, &l).await? {
        return Err(ApiError::new(
            Code::CouponTaken,
            format!("The coupon '{c}' belongs to another link."),
        ));
    }
    state.links.forget(l.code.as_str());
    Ok(HttpResponse::Ok().json(view(&state, &l)))
}
