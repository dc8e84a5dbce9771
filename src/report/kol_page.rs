//! A KOL's share page: their own links and figures, nothing about orders, customers, money or
//! other KOLs.

use std::collections::HashMap;

use chrono::Days;
use serde::Serialize;

use super::{days_between, each_counts, page_points, pages_of};
use crate::clock::Clock;
use crate::domain::{Campaign, Event, Standing};
use crate::error::ApiError;
use crate::lookup::{self, LinkFilter, LinkLists};
use crate::stats::{add_daily, Counts, Range, Totals};
use crate::store::{RecordsExt, Store};

/// What a KOL's share page shows: their own links and figures, nothing about orders, customers,
/// money or other KOLs.
#[derive(Debug, Serialize)]
pub struct KolPage {
    pub kol: String,
    pub name: String,
    /// The campaign the share is limited to, if it is, and its name.
    pub campaign: Option<String>,
    pub campaign_name: Option<String>,
    pub totals: PageFigures,
    pub links: Vec<PageLink>,
    /// Daily clicks and conversions of the last 30 days (UTC), all links together.
    pub series: Vec<PagePoint>,
}

#[derive(Debug, Serialize)]
pub struct PageFigures {
    pub clicks: u64,
    pub unique_clicks: u64,
    pub impressions: u64,
    pub ctr: Option<f64>,
    pub conversions: u64,
    pub conversion_rate: Option<f64>,
}

impl From<&Totals> for PageFigures {
    fn from(t: &Totals) -> Self {
        PageFigures {
            clicks: t.clicks,
            unique_clicks: t.unique_clicks,
            impressions: t.impressions,
            ctr: t.ctr,
            conversions: t.conversions,
            conversion_rate: t.conversion_rate,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PageLink {
    pub code: String,
    pub campaign: String,
    /// The campaign's name, as the KOL knows it.
    pub campaign_name: String,
    /// The link's coupon, which the KOL gives their followers; `null` when it has none.
    pub coupon: Option<String>,
    /// `active`, or `disabled` or `expired`: a link that no longer redirects, not to be handed
    /// out again.
    pub status: Standing,
    pub short_url: String,
    pub qr_svg: String,
    pub qr_png: String,
    #[serde(flatten)]
    pub figures: PageFigures,
}

#[derive(Debug, Serialize)]
pub struct PagePoint {
    pub t: String,
    pub clicks: u64,
    pub conversions: u64,
}

/// The share page of a KOL: every link of theirs (of `campaign` only, when given).
pub async fn kol_page(
    store: &dyn Store,
    lists: &LinkLists,
    clock: &dyn Clock,
    public_base: &str,
    kol_id: &str,
    campaign: Option<&str>,
) -> Result<KolPage, ApiError> {
    let kol = lookup::kol(store, kol_id).await?;
    let filter = LinkFilter {
        campaign: campaign.map(str::to_owned),
        kol: Some(kol.id.to_string()),
    };
    let links = lookup::all_links(store, lists, &filter).await?;
    // Each campaign's goal (what its conversions count) and name.
    let (mut goals, mut names) = (HashMap::new(), HashMap::new());
    for id in links.iter().map(|l| l.campaign.as_str()).chain(campaign) {
        if !names.contains_key(id) {
            let c = store.get::<Campaign>(id).await?;
            goals.insert(id.to_owned(), c.as_ref().map_or(Event::Purchase, |c| c.goal_event));
            names.insert(id.to_owned(), c.map_or_else(|| id.to_owned(), |c| c.name));
        }
    }
    let to = clock.now().date_naive();
    let from = to.checked_sub_days(Days::new(29)).unwrap_or(to);
    let mut daily = vec![(0, 0); days_between(from, to)];
    let mut total = Counts::default();
    let mut page_links = Vec::with_capacity(links.len());
    // Every day: the rollups alone, whatever hours are kept.
    each_counts(
        store,
        pages_of(links.pages()),
        &goals,
        Range::default(),
        false,
        None,
        |l, c| {
            total.add(&c.counts);
            let goal = goals.get(l.campaign.as_str()).copied().unwrap_or(Event::Purchase);
            add_daily(&mut daily, &c.tally, goal, from);
            let short_url = format!("{public_base}/{}", l.code);
            page_links.push(PageLink {
                code: l.code.to_string(),
                campaign: l.campaign.to_string(),
                campaign_name: names.get(l.campaign.as_str()).cloned().unwrap_or_default(),
                coupon: None,
                status: Standing::Active,
                qr_svg: format!("{short_url}/qr.svg"),
                qr_png: format!("{short_url}/qr.png"),
                short_url,
                figures: PageFigures::from(&c.counts.totals()),
            });
        },
    )
    .await?;
    // Coupons and standing are in the links' records, not their summaries: a KOL has few
    // links.
    let now = clock.now();
    for link in &mut page_links {
        if let Some(record) = store.get_link(&link.code).await? {
            link.status = record.standing(now);
            link.coupon = record.coupon.map(|c| c.to_string());
        }
    }
    Ok(KolPage {
        kol: kol.id.to_string(),
        name: kol.name,
        campaign: campaign.map(str::to_owned),
        campaign_name: campaign.and_then(|c| names.get(c).cloned()),
        totals: PageFigures::from(&total.totals()),
        links: page_links,
        series: page_points(&daily, from, crate::stats::Interval::Day),
    })
}
