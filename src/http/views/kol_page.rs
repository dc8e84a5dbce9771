//! The KOL's page (`/s/{token}`): their links with QR codes and copy buttons, the figures of
//! `crate::report::KolPage` (the same the `.json` answers), a 30-day chart. Read-only.

use askama::Template;

use super::{count, ended, percent, Chart, Texts};
use crate::report::{KolPage, PageFigures};

/// Figures as the page shows them.
pub struct Figures {
    pub clicks: String,
    pub unique_clicks: String,
    pub ctr: String,
    pub conversions: String,
    pub conversion_rate: String,
}

impl From<&PageFigures> for Figures {
    fn from(f: &PageFigures) -> Self {
        Figures {
            clicks: count(f.clicks),
            unique_clicks: count(f.unique_clicks),
            ctr: percent(f.ctr),
            conversions: count(f.conversions),
            conversion_rate: percent(f.conversion_rate),
        }
    }
}

pub struct LinkRow {
    pub code: String,
    /// Why the link no longer redirects (disabled, expired); `None` while it does.
    pub ended: Option<&'static str>,
    pub campaign_name: String,
    pub coupon: Option<String>,
    pub short_url: String,
    pub qr_svg: String,
    pub qr_png: String,
    pub clicks: String,
    pub unique_clicks: String,
    pub ctr: String,
    pub conversions: String,
    pub conversion_rate: String,
}

#[derive(Template)]
#[template(path = "kol_page.html")]
pub struct KolPageView<'a> {
    pub t: &'a Texts,
    pub page: &'a KolPage,
    pub fig: Figures,
    pub links: Vec<LinkRow>,
    pub chart: Chart,
}

impl<'a> KolPageView<'a> {
    pub fn new(t: &'a Texts, page: &'a KolPage) -> Self {
        let links = page
            .links
            .iter()
            .map(|l| {
                let f = Figures::from(&l.figures);
                LinkRow {
                    code: l.code.clone(),
                    ended: ended(t, l.status),
                    campaign_name: l.campaign_name.clone(),
                    coupon: l.coupon.clone(),
                    short_url: l.short_url.clone(),
                    qr_svg: l.qr_svg.clone(),
                    qr_png: l.qr_png.clone(),
                    clicks: f.clicks,
                    unique_clicks: f.unique_clicks,
                    ctr: f.ctr,
                    conversions: f.conversions,
                    conversion_rate: f.conversion_rate,
                }
            })
            .collect();
        KolPageView {
            t,
            page,
            fig: Figures::from(&page.totals),
            links,
            chart: Chart::of(&page.series, t),
        }
    }
}
