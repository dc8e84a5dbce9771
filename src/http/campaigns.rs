//! Campaigns: create, list, get, patch.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{created, parse_name, parse_slug, Admin, Body, PageQuery, State};
use crate::domain::{nullable, Campaign, Currency, Event, Utm};
use crate::error::{ApiError, Code};
use crate::lookup;
use crate::minting::parse_destination;
use crate::store::RecordsExt;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/campaigns")
            .route(super::get_or_head().to(list))
            .post(create),
    )
    .service(
        web::resource("/campaigns/{id}")
            .route(super::get_or_head().to(get))
            .patch(patch),
    );
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateCampaign {
    pub id: String,
    pub name: String,
    pub destination: Option<String>,
    pub currency: Option<String>,
    pub goal_event: Option<String>,
    pub attribution_window_days: Option<u32>,
    pub utm: Option<Utm>,
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

async fn create(_: Admin, state: State, body: Body<CreateCampaign>) -> Result<HttpResponse, ApiError> {
    Ok(created(&new_campaign(&state, body.into_inner()).await?))
}

/// Creates a campaign from the API's body (and the dashboard's form).
pub(super) async fn new_campaign(state: &State, b: CreateCampaign) -> Result<Campaign, ApiError> {
    let now = state.clock.now_to_second();
    let campaign = Campaign {
        id: parse_slug("id", &b.id)?,
        name: parse_name("name", &b.name)?,
        destination: b.destination.as_deref().map(parse_destination).transpose()?,
        currency: Currency::parse_listed(b.currency.as_deref().unwrap_or(&state.settings.default_currency))?,
        goal_event: b
            .goal_event
            .as_deref()
            .map(parse_goal)
            .transpose()?
            .unwrap_or(Event::Purchase),
        attribution_window_days: parse_window(
            state,
            b.attribution_window_days
                .unwrap_or(state.settings.default_attribution_window_days),
        )?,
        utm: b.utm.unwrap_or_default().validate()?,
        currency_locked: false,
        created_at: now,
        updated_at: now,
    };
    if !state.store().create(&campaign).await? {
        return Err(ApiError::new(
            Code::AlreadyExists,
            format!("A campaign with id '{}' exists already.", campaign.id),
        ));
    }
    Ok(campaign)
}

async fn get(_: Admin, state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(lookup::campaign(state.store(), &id).await?))
}

async fn list(_: Admin, state: State, q: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let key = super::ListKey::new("campaigns", &[]);
    let page = state.store().list::<Campaign>(q.cursor(&key)?, q.limit()?).await?;
    Ok(super::list("campaigns", &page.items, page.next, &key))
}

async fn patch(
    _: Admin,
    state: State,
    id: web::Path<String>,
    body: Body<PatchCampaign>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let name = b.name.as_deref().map(|n| parse_name("name", n)).transpose()?;
    let destination = b
        .destination
        .map(|d| d.as_deref().map(parse_destination).transpose())
        .transpose()?;
    // Checked against the ISO list below, when it changes: a campaign's own currency sent back
    // (one stored before the list was checked) is no error.
    let currency = b.currency.as_deref().map(Currency::parse).transpose()?;
    let goal = b.goal_event.as_deref().map(parse_goal).transpose()?;
    let window = b.attribution_window_days.map(|d| parse_window(&state, d)).transpose()?;
    let utm = b.utm.map(Utm::validate).transpose()?;
    let now = state.clock.now_to_second();
    let c = lookup::update::<Campaign>(state.store(), &id, "campaign", |c| {
        if let Some(cur) = &currency {
            // Sums never mix currencies: once a conversion is attributed to it (in its currency), the
            // currency stays.
            if c.currency_locked && *cur != c.currency {
                return Err(ApiError::new(
                    Code::CurrencyLocked,
                    format!(
                        "The campaign has conversions counted in {}: its currency cannot change.",
                        c.currency.as_str()
                    ),
                ));
            }
            if *cur != c.currency {
                Currency::parse_listed(cur.as_str())?;
            }
            c.currency = cur.clone();
        }
        if let Some(n) = &name {
            c.name = n.clone();
        }
        if let Some(d) = &destination {
            c.destination = d.clone();
        }
        if let Some(g) = goal {
            c.goal_event = g;
        }
        if let Some(w) = window {
            c.attribution_window_days = w;
        }
        if let Some(u) = &utm {
            c.utm = u.clone();
        }
        c.updated_at = now;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().json(c))
}
