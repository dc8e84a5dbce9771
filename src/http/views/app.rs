//! The analyst's dashboard (`/app`): the campaigns with their totals, and a campaign's page
//! (KPIs over every day or the days asked for, daily chart, the KOL leaderboard sortable by
//! every figure either way, tiers, breakdowns, links with QR codes, conversions with their
//! audit, downloads). Every figure comes from `crate::report`, as the API's do.
//!
//! Beside it: `sign_in` (signing in and out), `forms` (creating campaigns and KOLs, minting,
//! changing and sharing links, through the API's own rules), `names` (what the pages call
//! things, in each language).

use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{amount, count, percent, session, Lang, Texts, BREAKDOWNS};
use crate::domain::{Campaign, Conversion, ConversionStatus, Event, Money};
use crate::error::{ApiError, Code};
use crate::http::State;
use crate::lookup::{self, ConversionFilter, LinkFilter};
use crate::report::{self, Figure, Order, Sort, SortKey};
use crate::stats::{Range, Totals};
use crate::store::RecordsExt;

mod forms;
mod names;
mod sign_in;

use forms::{
    create_campaign, create_kol, edit_link, form_post, mint, remove_insights, report_insights, revoke, share, MintForm,
    NewCampaignForm, NewKolForm, Sent,
};
use names::{
    audit_result, audit_source, enum_text, event_name, label, platform_name, slice_name, status_name, tier_name,
};
pub(crate) use sign_in::FORM_EXPIRED;
use sign_in::{login, login_form, logout, to_sign_in};

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Every page keeps the language it was asked for (`remember_lang`).
    let page = |path: &str| web::resource(path).wrap(from_fn(super::remember_lang));
    // A form's address: opened as a page (a reload of a refused form), the form's page.
    let form = |path: &str| page(path).route(crate::http::get_or_head().to(to_form_page));
    cfg.service(page("/app").route(crate::http::get_or_head().to(campaigns)))
        .service(
            page("/app/login")
                .wrap(from_fn(crate::http::limits::limit))
                .route(crate::http::get_or_head().to(login_form))
                .route(web::post().to(login)),
        )
        .service(page("/app/logout").route(web::post().to(logout)))
        .service(form("/app/campaigns").route(web::post().to(create_campaign)))
        .service(form("/app/kols").route(web::post().to(create_kol)))
        .service(page("/app/campaigns/{id}").route(crate::http::get_or_head().to(campaign)))
        .service(form("/app/campaigns/{id}/links").route(web::post().to(mint)))
        .service(form("/app/campaigns/{id}/links/{code}").route(web::post().to(edit_link)))
        .service(form("/app/campaigns/{id}/links/{code}/insights").route(web::post().to(report_insights)))
        .service(form("/app/campaigns/{id}/links/{code}/insights/{day}/remove").route(web::post().to(remove_insights)))
        .service(form("/app/campaigns/{id}/shares").route(web::post().to(share)))
        .service(form("/app/campaigns/{id}/shares/{share}/revoke").route(web::post().to(revoke)));
}

/// A form's address opened as a page (the address bar after a refused form, a reload): the
/// page the form is on.
async fn to_form_page(req: HttpRequest) -> HttpResponse {
    let lang = Lang::of(&req);
    see_other(&format!("{}?lang={}", sign_in::form_page(req.path()), lang.tag()))
}

fn html(status: actix_web::http::StatusCode, body: String) -> HttpResponse {
    super::html_page(status).body(body)
}

fn rendered(t: Result<String, askama::Error>) -> Result<HttpResponse, ApiError> {
    let body = t.map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("Failed to render a page")))?;
    Ok(html(actix_web::http::StatusCode::OK, body))
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
}

/// The signed-in session; `None` sends the person to the sign-in page (`to_sign_in`).
fn signed_in(req: &HttpRequest, state: &State) -> Option<String> {
    session::current(req, state)
}

/// Figures as the dashboard shows them.
struct Fig {
    clicks: String,
    ctr: String,
    conversions: String,
    conversion_rate: String,
    revenue: String,
    /// Revenue less refunds: what ROI is computed from.
    net_revenue: String,
    cost: String,
    roi: String,
}

fn money(m: Option<Money>) -> String {
    m.map_or_else(|| "–".to_owned(), amount)
}

impl Fig {
    fn of(t: &Totals) -> Self {
        Fig {
            clicks: count(t.clicks),
            ctr: percent(t.ctr),
            conversions: count(t.conversions),
            conversion_rate: percent(t.conversion_rate),
            revenue: money(t.revenue),
            net_revenue: money(t.net_revenue),
            cost: money(t.cost),
            roi: percent(t.roi),
        }
    }
}

/// One figure of a row, formatted by its kind.
fn cell(key: SortKey, t: &Totals) -> String {
    match key.figure(t) {
        None => "–".to_owned(),
        Some(Figure::Count(n)) => count(n),
        Some(Figure::Minor(m)) => amount(Money::from_minor(m)),
        Some(Figure::Rate(r)) if key == SortKey::Roas => format!("{r:.2}"),
        Some(Figure::Rate(r)) => percent(Some(r)),
    }
}

struct CampaignRow {
    id: String,
    name: String,
    currency: String,
    fig: Fig,
}

#[derive(Template)]
#[template(path = "app_campaigns.html")]
struct CampaignsView {
    t: &'static Texts,
    csrf: String,
    campaigns: Vec<CampaignRow>,
    /// The latest conversions no campaign claimed, `unattributed` (`UNCLAIMED_SCAN`).
    conversions: ConversionList,
    form: Sent<NewCampaignForm>,
    /// The new-KOL form, and the KOL it just added (`?added=<id>`).
    kol_form: Sent<NewKolForm>,
    kol_added: Option<String>,
    /// Every platform a KOL can be on, as the form's choices: its value, its name.
    platforms: Vec<(&'static str, &'static str)>,
}

/// How many of the newest conversions the campaigns' page looks through for ones no campaign
/// claimed, and how many of those it lists: one bounded read, whatever the log's size.
const UNCLAIMED_SCAN: usize = 500;
const UNCLAIMED_SHOWN: usize = 20;

async fn campaigns(req: HttpRequest, state: State) -> Result<HttpResponse, ApiError> {
    let Some(s) = signed_in(&req, &state) else {
        return Ok(to_sign_in(&req));
    };
    rendered(campaigns_page(&req, &state, &s, Sent::default(), Sent::default()).await?)
}

async fn campaigns_page(
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

struct Header {
    key: &'static str,
    label: String,
    /// The way the rows are sorted by this figure, when they are.
    active: Option<Order>,
    /// The order a click on the header asks for: the other way when the rows are sorted by
    /// it, else largest first.
    next: &'static str,
}

struct TableRow {
    key: String,
    label: String,
    tier: String,
    values: Vec<String>,
}

struct BreakdownCard {
    name: String,
    slices: Vec<(String, String)>,
}

/// A KOL's page of the campaign, shared and open.
struct SharedRow {
    id: String,
    kol: String,
    /// It covers every campaign of the KOL, this one among them (the API's share without a
    /// campaign).
    every_campaign: bool,
    since: String,
    /// When it ends by itself; empty when it does not.
    until: String,
}

struct LinkCard {
    code: String,
    /// Its days of insights, when the page shows them (`?edit=<code>`), and its insights
    /// form's fields and day.
    insights: Option<forms::CardInsights>,
    insight_fields: Vec<forms::InsightField>,
    insight_day: String,
    /// The page showing its days of insights.
    days_href: String,
    /// Why its cost form or its insights form was not taken, and the `name` of the field at
    /// fault ("" for none): shown beside that form (`Refused`).
    cost_error: Option<String>,
    insights_error: Option<String>,
    invalid: &'static str,
    /// What was just done to its link from the card (`Editing::did`).
    done: Option<&'static str>,
    /// The KOL's id (`kol` is their name), for the form that shares their page.
    kol_id: String,
    /// Stopped from the dashboard or the API (`status: disabled`): it can be started again.
    disabled: bool,
    /// Its cost as a form takes it back ("1500.00").
    cost_plain: String,
    /// Why the link no longer redirects (disabled, expired); `None` while it does.
    ended: Option<&'static str>,
    kol: String,
    coupon: String,
    cost: String,
    short_url: String,
    qr_svg: String,
    /// Its own figures, of the days shown.
    fig: Fig,
}

/// A list of conversions: its table's id and name, the title of its `by` column and what it
/// says when empty (`conversions_table.html`).
struct ConversionList {
    id: &'static str,
    label: &'static str,
    by: &'static str,
    empty: &'static str,
    rows: Vec<ConversionRow>,
}

struct ConversionRow {
    /// When it happened (`occurred_at`), to the minute, UTC.
    when: String,
    order: String,
    event: &'static str,
    status: String,
    /// Whose it is: the KOL on a campaign's page, the shop where no campaign claimed it.
    by: String,
    /// With its currency, and a minus for money taken back: a row never reads as a sale in the
    /// campaign's currency when it is not one.
    amount: String,
    audit: String,
}

#[derive(Template)]
#[template(path = "app_campaign.html")]
struct CampaignView {
    t: &'static Texts,
    csrf: String,
    id: String,
    name: String,
    currency: String,
    sort: &'static str,
    order: &'static str,
    /// The days asked for (`YYYY-MM-DD`, empty for open ends), and as a query's tail
    /// (`&from=…&to=…`) for the page's own links.
    from: String,
    to: String,
    /// Days asked for that could not be shown (the page is of every day): whether `from` and
    /// `to` are at fault.
    range_refused: Option<(bool, bool)>,
    range_query: String,
    /// The page's sort and days as a query (`sort=…&order=…&from=…`), which its forms send back
    /// so that the page they lead back to is the one they were on.
    view: String,
    /// The last day the insights forms take, tomorrow (as the API: it is already today east
    /// of UTC). Their first day is yesterday (UTC: insights are read the day after).
    tomorrow: String,
    /// The chart's heading: the last 30 days, or the days asked for.
    daily: String,
    /// The days asked for begin before the chart's first (it draws at most 400).
    chart_cut: bool,
    fig: Fig,
    chart: super::Chart,
    headers: Vec<Header>,
    kols: Vec<TableRow>,
    tiers: Vec<TableRow>,
    breakdowns: Vec<BreakdownCard>,
    links: Vec<LinkCard>,
    /// The KOLs' pages of this campaign that are open, to revoke.
    shared: Vec<SharedRow>,
    /// KOLs' ids and names, offered by the new-link form.
    known_kols: Vec<(String, String)>,
    conversions: ConversionList,
    mint: Sent<MintForm>,
}

/// A conversion as the dashboard's lists show it, in the page's language.
fn conversion_row(t: &Texts, cv: &Conversion, by: String) -> ConversionRow {
    ConversionRow {
        when: cv.occurred_at.format("%Y-%m-%d %H:%M").to_string(),
        order: cv
            .refund_id
            .as_ref()
            .map_or_else(|| cv.order_id.clone(), |r| format!("{} / {r}", cv.order_id)),
        event: event_name(t, cv.event),
        status: status_name(t, cv.status).to_owned(),
        by,
        amount: cv.amount.map_or_else(String::new, |a| {
            let sign = if cv.event == Event::Refund { "−" } else { "" };
            let currency = cv
                .currency
                .as_ref()
                .map(|c| format!(" {}", c.as_str()))
                .unwrap_or_default();
            format!("{sign}{}{currency}", amount(a))
        }),
        audit: match cv.audit.is_empty() {
            true => t.audit_none.to_owned(),
            false => cv
                .audit
                .iter()
                .map(|a| {
                    format!(
                        "{} {} → {}",
                        audit_source(t, &a.source),
                        a.value,
                        audit_result(t, a.result)
                    )
                })
                .collect::<Vec<_>>()
                .join(" · "),
        },
    }
}

#[derive(Deserialize)]
struct CampaignQuery {
    sort: Option<String>,
    order: Option<String>,
    /// The UTC days the page's figures cover (both included); every day without them.
    from: Option<String>,
    to: Option<String>,
    /// The link whose card shows its days of insights (`edit`), the day its form is filled
    /// with (`day`), and whether that day was just saved (`saved`: the card says what).
    edit: Option<String>,
    day: Option<String>,
    saved: Option<String>,
    /// The numbers of the `day` just removed from the `edit` card (`forms::numbers_in_address`):
    /// the card says so, its form filled with them.
    removed: Option<String>,
    /// What was just done to the `edit` card's link from its card: `cost`, `disable`, `enable`
    /// (the card says so).
    did: Option<String>,
}

/// A card whose days of insights are shown (`CampaignQuery::edit`), or whose form was not
/// taken (`refused`).
pub(super) struct Editing<'a> {
    pub(super) code: &'a str,
    pub(super) day: Option<chrono::NaiveDate>,
    pub(super) saved: bool,
    pub(super) removed: Option<crate::domain::DayInsights>,
    pub(super) refused: Option<Refused>,
    /// What was just done to its link (`CampaignQuery::did`): said on the card, whose days of
    /// insights are then not shown.
    pub(super) did: Option<&'static str>,
}

/// A card's form that was not taken (`forms::edit_link`, `forms::report_insights`): the card
/// says why beside the form, which holds what was typed, its field at fault marked (WCAG 3.3.1;
/// it was a page of its own, and the way back lost what was typed).
pub(super) struct Refused {
    pub(super) form: CardForm,
    pub(super) reason: String,
    /// The `name` of the field at fault, if one is.
    pub(super) field: Option<&'static str>,
    /// What the form's fields held, by name.
    pub(super) typed: Vec<(&'static str, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CardForm {
    Cost,
    Insights,
}

impl Refused {
    fn typed(&self, name: &str) -> Option<&str> {
        self.typed.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

async fn campaign(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    q: web::Query<CampaignQuery>,
) -> Result<HttpResponse, ApiError> {
    let Some(s) = signed_in(&req, &state) else {
        return Ok(to_sign_in(&req));
    };
    // Days that cannot be shown are refused as a form's fields are: the page of every day,
    // with the reason beside the days' form.
    let (range, refused) = match crate::http::stats::day_range(q.from.as_deref(), q.to.as_deref()) {
        Ok(range) => (range, None),
        Err(_) => (
            Range::default(),
            Some(RangeRefused::of(q.from.as_deref(), q.to.as_deref())),
        ),
    };
    let days_refused = refused.is_some();
    let page = match Sort::parse(q.sort.as_deref(), q.order.as_deref()) {
        Ok(sort) => {
            let editing = q.edit.as_deref().map(|code| Editing {
                code,
                day: q.day.as_deref().and_then(|d| d.parse().ok()),
                saved: q.saved.is_some(),
                removed: q.removed.as_deref().and_then(forms::numbers_from_address),
                refused: None,
                did: q.did.as_deref().and_then(|d| {
                    let t = Lang::of(&req).texts();
                    match d {
                        "cost" => Some(t.cost_saved),
                        "disable" => Some(t.link_stopped),
                        "enable" => Some(t.link_started),
                        _ => None,
                    }
                }),
            });
            campaign_page(&req, &state, &s, &id, (sort, range, refused), Sent::default(), editing).await
        }
        Err(e) => Err(e),
    };
    match page {
        Ok(page) if days_refused => {
            let mut page = rendered(page)?;
            *page.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
            Ok(page)
        }
        Ok(page) => rendered(page),
        // An unknown campaign or sort is a page to a browser, in its reader's language and
        // with the way back to the campaigns (API.md's JSON to other clients).
        Err(ApiError::Client { code, message }) => {
            let lang = Lang::of(&req);
            let said = match (lang, code) {
                (Lang::ZhTw, Code::NotFound) => format!("找不到代號為「{id}」的活動。"),
                (Lang::ZhTw, Code::InvalidInput) => "無法這樣排序：請點選排行榜的表頭排序。".to_owned(),
                _ => message,
            };
            Ok(crate::http::redirect::page_with_way_back(
                &req,
                code,
                &said,
                Some(("/app", lang.texts().back)),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Days asked for that could not be shown: as typed, and which of the two is at fault.
pub(super) struct RangeRefused {
    from: String,
    to: String,
    from_invalid: bool,
    to_invalid: bool,
}

impl RangeRefused {
    fn of(from: Option<&str>, to: Option<&str>) -> Self {
        let unread = |d: Option<&str>| crate::http::stats::parse_day("", d).is_err();
        let (from_invalid, to_invalid) = match (unread(from), unread(to)) {
            // Both read as days: they run backwards.
            (false, false) => (true, true),
            either => either,
        };
        Self {
            from: from.unwrap_or_default().to_owned(),
            to: to.unwrap_or_default().to_owned(),
            from_invalid,
            to_invalid,
        }
    }
}

async fn campaign_page(
    req: &HttpRequest,
    state: &State,
    session: &str,
    id: &str,
    (sort, range, days_refused): (Sort, Range, Option<RangeRefused>),
    mint: Sent<MintForm>,
    editing: Option<Editing<'_>>,
) -> Result<Result<String, askama::Error>, ApiError> {
    let t = Lang::of(req).texts();
    let c = lookup::campaign(state.store(), id).await?;
    let r = report::campaign(
        state.store(),
        &state.link_lists,
        state.clock.as_ref(),
        id,
        report::CampaignAsk {
            range,
            sort,
            interval: crate::stats::Interval::Day,
            per_link: true,
        },
        state.settings.hourly_retention_days,
    )
    .await?;
    let headers = SortKey::ALL
        .iter()
        .map(|k| Header {
            key: k.name(),
            label: label(t, *k).to_owned(),
            active: (*k == sort.key).then_some(sort.order),
            next: if *k == sort.key {
                sort.order.flipped().name()
            } else {
                Order::Desc.name()
            },
        })
        .collect();
    // Each KOL by name, wherever the page names one (id when the KOL has no name).
    let names: std::collections::HashMap<&str, &str> = r
        .kols
        .iter()
        .map(|row| {
            let name = if row.key.name.is_empty() {
                &row.key.kol
            } else {
                &row.key.name
            };
            (row.key.kol.as_str(), name.as_str())
        })
        .collect();
    let name_of = |kol: &str| names.get(kol).map_or_else(|| kol.to_owned(), |n| (*n).to_owned());
    let kols = r
        .kols
        .iter()
        .map(|row| TableRow {
            key: row.key.kol.clone(),
            label: name_of(&row.key.kol),
            tier: tier_name(t, row.key.tier).to_owned(),
            values: SortKey::ALL.iter().map(|k| cell(*k, &row.totals)).collect(),
        })
        .collect();
    // Tiers in their own order, nano to mega (the API sorts them like the KOLs).
    let mut tier_rows: Vec<_> = r.tiers.iter().collect();
    tier_rows.sort_by_key(|row| row.key.tier);
    let tiers = tier_rows
        .into_iter()
        .map(|row| TableRow {
            key: enum_text(&row.key.tier),
            label: tier_name(t, row.key.tier).to_owned(),
            tier: row.key.kols.to_string(),
            values: SortKey::ALL.iter().map(|k| cell(*k, &row.totals)).collect(),
        })
        .collect();
    let breakdowns = BREAKDOWNS
        .iter()
        .zip(t.dimensions)
        .map(|(dim, name)| BreakdownCard {
            name: name.to_owned(),
            slices: r
                .breakdown
                .get(dim)
                .map(|v| {
                    v.iter()
                        .take(8)
                        .map(|s| (slice_name(t, dim, &s.key), count(s.clicks)))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let filter = LinkFilter {
        campaign: Some(c.id.to_string()),
        kol: None,
    };
    // The KOLs the new-link form offers as it is typed in (the first 500).
    let known_kols = state
        .store()
        .list::<crate::domain::Kol>(None, 500)
        .await?
        .items
        .into_iter()
        .map(|k| (k.id.to_string(), k.name))
        .collect();
    let now = state.clock.now();
    // The KOLs' pages that show this campaign and are open (of the first 500 shares): its
    // own, and those of every campaign of a KOL with a link in it.
    let here: std::collections::HashSet<&str> = r.kols.iter().map(|k| k.key.kol.as_str()).collect();
    let shared = state
        .store()
        .list::<crate::domain::Share>(None, 500)
        .await?
        .items
        .into_iter()
        .filter(|s| {
            s.is_open(now)
                && match &s.campaign {
                    Some(c) => c.as_str() == id,
                    None => here.contains(s.kol.as_str()),
                }
        })
        .map(|s| SharedRow {
            kol: name_of(s.kol.as_str()),
            every_campaign: s.campaign.is_none(),
            since: s.created_at.format("%Y-%m-%d %H:%M").to_string(),
            until: s
                .expires_at
                .map(|e| e.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
            id: s.id,
        })
        .collect();
    let links = lookup::links(state.store(), &filter, None, 200).await?.items;
    // The page's sort and days as a query, which its forms and links send back.
    let view = format!(
        "sort={}&order={}{}",
        sort.key.name(),
        sort.order.name(),
        [("from", range.from), ("to", range.to)]
            .iter()
            .filter_map(|(k, d)| d.map(|d| format!("&{k}={d}")))
            .collect::<String>()
    );
    let yesterday = (now.date_naive() - chrono::Days::new(1)).to_string();
    // The card whose days of insights are shown (read for that link alone), or whose form was
    // not taken.
    let (mut refused, editing) = match editing {
        Some(mut e) => (e.refused.take().map(|r| (e.code.to_owned(), r)), Some(e)),
        None => (None, None),
    };
    let did = editing.as_ref().and_then(|e| e.did.map(|d| (e.code.to_owned(), d)));
    // Its days of insights are shown for the insights form, not for the card's other one.
    let other_form = did.is_some() || refused.as_ref().is_some_and(|(_, r)| r.form == CardForm::Cost);
    let mut shown = match editing {
        Some(e) if !other_form && links.iter().any(|l| l.code.as_str() == e.code) => {
            let days = crate::http::insights::reported_days(state, e.code).await?;
            let page = format!("/app/campaigns/{id}?{view}&lang={}", t.html_lang);
            let day = e.day.or_else(|| yesterday.parse().ok());
            Some((
                e.code.to_owned(),
                forms::card_insights(Lang::of(req), &page, e.code, day, (e.saved, e.removed.as_ref()), &days),
            ))
        }
        _ => None,
    };
    let links = links
        .into_iter()
        .map(|l| {
            let short_url = format!("{}/{}", state.public_base, l.code);
            let insights = match shown.take() {
                Some((code, card)) if code == l.code.as_str() => Some(card),
                other => {
                    shown = other;
                    None
                }
            };
            let refused = match refused.take() {
                Some((code, r)) if code == l.code.as_str() => Some(r),
                other => {
                    refused = other;
                    None
                }
            };
            let mut insight_fields = forms::insight_fields(t, insights.as_ref());
            let mut insight_day = insights.as_ref().map_or_else(|| yesterday.clone(), |c| c.date.clone());
            let mut cost_plain = l.cost.to_string();
            if let Some(r) = &refused {
                for f in &mut insight_fields {
                    f.invalid = r.field == Some(f.name);
                    if let Some(v) = r.typed(f.name) {
                        f.value = v.to_owned();
                    }
                }
                if let Some(v) = r.typed("date") {
                    insight_day = v.to_owned();
                }
                if let Some(v) = r.typed("cost") {
                    cost_plain = v.to_owned();
                }
            }
            LinkCard {
                days_href: format!(
                    "/app/campaigns/{id}?{view}&lang={}&edit={code}#link-{code}",
                    t.html_lang,
                    code = l.code
                ),
                insight_fields,
                insight_day,
                insights,
                invalid: refused.as_ref().and_then(|r| r.field).unwrap_or_default(),
                done: did.as_ref().filter(|(c, _)| c == l.code.as_str()).map(|(_, d)| *d),
                cost_error: refused
                    .as_ref()
                    .filter(|r| r.form == CardForm::Cost)
                    .map(|r| r.reason.clone()),
                insights_error: refused
                    .as_ref()
                    .filter(|r| r.form == CardForm::Insights)
                    .map(|r| r.reason.clone()),
                code: l.code.to_string(),
                kol_id: l.kol.to_string(),
                ended: super::ended(t, l.standing(now)),
                disabled: l.status == crate::domain::LinkStatus::Disabled,
                cost_plain,
                kol: name_of(l.kol.as_str()),
                coupon: l.coupon.map(|c| c.to_string()).unwrap_or_default(),
                cost: amount(l.cost),
                qr_svg: format!("{short_url}/qr.svg"),
                short_url,
                // A link minted while the report was read has none yet: nothing counted.
                fig: r
                    .per_link
                    .get(l.code.as_str())
                    .map_or_else(|| Fig::of(&crate::stats::Counts::default().totals()), Fig::of),
            }
        })
        .collect();
    // The newest 50 of the days shown, in the order of the time the table shows.
    let mut newest = lookup::conversions(
        state.store(),
        &ConversionFilter {
            campaign: Some(c.id.to_string()),
            days: range,
            ..ConversionFilter::default()
        },
        None,
        50,
    )
    .await?
    .items;
    newest.sort_by_key(|c| std::cmp::Reverse(c.occurred_at));
    let rows = newest
        .iter()
        .map(|cv| conversion_row(t, cv, cv.kol.as_deref().map(&name_of).unwrap_or_default()))
        .collect();
    let conversions = ConversionList {
        id: "conversions",
        label: t.conversions_list,
        by: t.kol,
        empty: t.no_conversions,
        rows,
    };
    Ok(CampaignView {
        t,
        csrf: session::csrf(state, session),
        tomorrow: (now.date_naive() + chrono::Days::new(1)).to_string(),
        id: c.id.to_string(),
        name: c.name.clone(),
        currency: c.currency.as_str().to_owned(),
        sort: sort.key.name(),
        order: sort.order.name(),
        from: days_refused.as_ref().map_or_else(
            || range.from.map(|d| d.to_string()).unwrap_or_default(),
            |r| r.from.clone(),
        ),
        to: days_refused
            .as_ref()
            .map_or_else(|| range.to.map(|d| d.to_string()).unwrap_or_default(), |r| r.to.clone()),
        range_refused: days_refused.as_ref().map(|r| (r.from_invalid, r.to_invalid)),
        view,
        range_query: [("from", range.from), ("to", range.to)]
            .iter()
            .filter_map(|(k, d)| d.map(|d| format!("&{k}={d}")))
            .collect(),
        chart_cut: range.from.is_some_and(|f| {
            r.series
                .first()
                .and_then(|p| p.t.get(..10))
                .is_some_and(|first| first > f.to_string().as_str())
        }),
        daily: match (range.from, range.to) {
            (None, None) => t.daily.to_owned(),
            _ => format!(
                "{} – {} (UTC)",
                r.series
                    .first()
                    .map(|p| p.t.get(..10).unwrap_or(&p.t))
                    .unwrap_or_default(),
                r.series
                    .last()
                    .map(|p| p.t.get(..10).unwrap_or(&p.t))
                    .unwrap_or_default()
            ),
        },
        fig: Fig::of(&r.totals),
        chart: super::Chart::of(&r.series, t),
        headers,
        kols,
        tiers,
        breakdowns,
        links,
        shared,
        known_kols,
        conversions,
        mint,
    }
    .render())
}
