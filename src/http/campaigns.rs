//! Campaigns: create, list, get, patch.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{created, parse_name, parse_slug, Admin, PageQuery, State};
use crate::domain::{nullable, Campaign, Currency, Event, Utm};
use crate::error::{ApiError, Code};
use crate::lookup;
use crate::minting::parse_destination;
use crate::store::RecordsExt;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/campaigns").get(list).post(create))
        .service(web::resource("/campaigns/{id}").get(get).patch(patch));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCampaign {
    id: String,
    name: String,
    destination: Option<String>,
    currency: Option<String>,
    goal_event: Option<String>,
    attribution_window_days: Option<u32>,
    utm: Option<Utm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchCampaign {
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    destination: Option<Option<String>>,
    currency: Option<String>,
    goal_event: Option<String>,
    attribution_window_days: Option<u32>,
    utm: Option<Utm>,
}

fn parse_goal(s: &str) -> Result<Event, ApiError> {
    match Event::parse(s) {
        Some(Event::Refund) | None => Err(ApiError::invalid(
            "goal_event must be one of purchase, signup, lead, install, subscribe.",
        )),
        Some(e) => Ok(e),
    }
}

fn parse_window(state: &State, days: u32) -> Result<u32, ApiError> {
    if days == 0 || days > state.settings.click_retention_days {
        return Err(ApiError::invalid(format!(
            "attribution_window_days must be from 1 to {} (the click retention).",
            state.settings.click_retention_days
        )));
    }
    Ok(days)
}

async fn create(_: Admin, state: State, body: web::Json<CreateCampaign>) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let now = state.clock.now_to_second();
    let campaign = Campaign {
        id: parse_slug("id", &b.id)?,
        name: parse_name("name", &b.name)?,
        destination: b.destination.as_deref().map(parse_destination).transpose()?,
        currency: Currency::parse(b.currency.as_deref().unwrap_or(&state.settings.default_currency))?,
        goal_event: b
            .goal_event
            .as_deref()
            .map(parse_goal)
            .transpose()?
            .unwrap_or(Event::Purchase),
        attribution_window_days: parse_window(
            &state,
            b.attribution_window_days
                .unwrap_or(state.settings.default_attribution_window_days),
        )?,
        utm: b.utm.unwrap_or_default().validate()?,
        created_at: now,
        updated_at: now,
    };
    if !state.store().create(&campaign).await? {
        return Err(ApiError::new(
            Code::AlreadyExists,
            format!("A campaign with id '{}' exists already.", campaign.id),
        ));
    }
    Ok(created(&campaign))
}

async fn get(_: Admin, state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(lookup::campaign(state.store(), &id).await?))
}

async fn list(_: Admin, state: State, q: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let page = state.store().list::<Campaign>(q.cursor()?, q.limit()?).await?;
    Ok(super::list("campaigns", &page.items, page.next))
}

async fn patch(
    _: Admin,
    state: State,
    id: web::Path<String>,
    body: web::Json<PatchCampaign>,
) -> Result<HttpResponse, ApiError> {
    let mut c = lookup::campaign(state.store(), &id).await?;
    let b = body.into_inner();
    if let Some(name) = b.name {
        c.name = parse_name("name", &name)?;
    }
    if let Some(dest) = b.destination {
        c.destination = dest.as_deref().map(parse_destination).transpose()?;
    }
    if let Some(cur) = b.currency {
        c.currency = Currency::parse(&cur)?;
    }
    if let Some(goal) = b.goal_event {
        c.goal_event = parse_goal(&goal)?;
    }
    if let Some(days) = b.attribution_window_days {
        c.attribution_window_days = parse_window(&state, days)?;
    }
    if let Some(utm) = b.utm {
        c.utm = utm.validate()?;
    }
    c.updated_at = state.clock.now_to_second();
    state.store().put(&c).await?;
    Ok(HttpResponse::Ok().json(c))
}
