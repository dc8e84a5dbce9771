//! The dashboard's first page (`/app`): every campaign with its totals, and the conversions no
//! link claims.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::campaign::{conversion_row, ConversionList};
use super::forms::{NewCampaignForm, NewKolForm, Sent};
use super::names::platform_name;
use super::{rendered, signed_in, to_sign_in, Fig};
use crate::domain::{Campaign, ConversionStatus};
use crate::error::ApiError;
use crate::http::views::{session, Lang, Texts};
use crate::http::State;
use crate::report;
use crate::store::RecordsExt;

pub(super) struct CampaignRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) currency: String,
    pub(super) fig: Fig,
}

#[derive(Template)]
#[template(path = "app_campaigns.html")]
pub(super) struct CampaignsView {
    pub(super) t: &'static Texts,
    pub(super) csrf: String,
    pub(super) campaigns: Vec<CampaignRow>,
    /// The latest conversions no campaign claimed, `unattributed` (`UNCLAIMED_SCAN`).
    pub(super) conversions: ConversionList,
    pub(super) form: Sent<NewCampaignForm>,
    /// The new-KOL form, and the KOL it just added (`?added=<id>`).
    pub(super) kol_form: Sent<NewKolForm>,
    pub(super) kol_added: Option<String>,
    /// Every platform a KOL can be on, as the form's choices: its value, its name.
    pub(super) platforms: Vec<(&'static str, &'static str)>,
}

/// How many of the newest conversions the campaigns' page looks through for ones no campaign
/// claimed, and how many of those it lists: one bounded read, whatever the log's size.
pub(super) const UNCLAIMED_SCAN: usize = 500;
pub(super) const UNCLAIMED_SHOWN: usize = 20;

pub(super) async fn campaigns(req: HttpRequest, state: State) -> Result<HttpResponse, ApiError> {
    let Some(s) = signed_in(&req, &state) else {
        return Ok(to_sign_in(&req));
    };
    rendered(campaigns_page(&req, &state, &s, Sent::default(), Sent::default()).await?)
}

pub(super) async fn campaigns_page(
    req: &HttpRequest,
    state: &State,
    session: &str,
    mut form: Sent<NewCampaignForm>,
    kol_form: Sent<NewKolForm>,
) -> Result<Result<String, askama::Error>, ApiError> {
    // A new form shows the currency a campaign gets when none is typed, so that nobody makes a
    // USD campaign for TWD sales without seeing it (their sales would not count).
    form.fields
        .currency
        .get_or_insert_with(|| state.settings.default_currency.clone());
    let page = state.store().list::<Campaign>(None, 200).await?;
    let mut campaigns = Vec::with_capacity(page.items.len());
    for c in page.items {
        let r = report::campaign(
            state.store(),
            &state.link_lists,
            state.clock.as_ref(),
            c.id.as_str(),
            report::CampaignAsk::default(),
            state.settings.hourly_retention_days,
        )
        .await?;
        campaigns.push(CampaignRow {
            id: c.id.to_string(),
            name: c.name,
            currency: c.currency.as_str().to_owned(),
            fig: Fig::of(&r.totals),
        });
    }
    let t = Lang::of(req).texts();
    let rows = state
        .store()
        .scan_conversions(None, UNCLAIMED_SCAN)
        .await?
        .into_iter()
        .map(|(_, cv)| cv)
        .filter(|cv| cv.status == ConversionStatus::Unattributed)
        .take(UNCLAIMED_SHOWN)
        .map(|cv| conversion_row(t, &cv, cv.shop.to_string()))
        .collect();
    let conversions = ConversionList {
        id: "unclaimed",
        label: t.unclaimed,
        by: t.shop,
        empty: t.no_unclaimed,
        rows,
    };
    let kol_added = match web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("added").cloned())
    {
        // Only a KOL there is: the address can be typed.
        Some(id) if crate::domain::Slug::parse(&id).is_ok() => state
            .store()
            .get::<crate::domain::Kol>(&id)
            .await?
            .map(|k| if k.name.is_empty() { id } else { k.name }),
        _ => None,
    };
    Ok(CampaignsView {
        t,
        csrf: session::csrf(state, session),
        campaigns,
        conversions,
        form,
        kol_form,
        kol_added,
        platforms: crate::domain::Platform::ALL
            .iter()
            .map(|p| (p.as_str(), platform_name(t, *p)))
            .collect(),
    }
    .render())
}
