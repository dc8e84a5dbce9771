//! The analyst's dashboard (`/app`): sign-in, the campaigns with their totals, and a campaign's
//! page (KPIs, daily chart, the KOL leaderboard sortable by every figure, tiers, breakdowns,
//! links with QR codes, conversions with their audit, downloads, and forms to create a
//! campaign and mint links). Every figure comes from `crate::report`, as the API's do.

use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{amount, count, daily_chart, percent, session, Lang, Texts, AUDIT_SOURCES, BREAKDOWNS, DEVICES};
use crate::domain::{AuditResult, Campaign, Conversion, ConversionStatus, Event, Money, Tier};
use crate::error::{ApiError, Code};
use crate::http::State;
use crate::lookup::{self, ConversionFilter, LinkFilter};
use crate::report::{self, Figure, Order, Sort, SortKey};
use crate::stats::{Range, Totals};
use crate::store::RecordsExt;

mod forms;

use forms::{
    create_campaign, create_kol, edit_link, form_post, mint, share, MintForm, NewCampaignForm, NewKolForm, Sent,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Every page keeps the language it was asked for (`remember_lang`).
    let page = |path: &str| web::resource(path).wrap(from_fn(super::remember_lang));
    cfg.service(page("/app").route(web::get().to(campaigns)))
        .service(
            page("/app/login")
                .wrap(from_fn(crate::http::limits::limit))
                .route(web::get().to(login_form))
                .route(web::post().to(login)),
        )
        .service(page("/app/logout").route(web::post().to(logout)))
        .service(page("/app/campaigns").route(web::post().to(create_campaign)))
        .service(page("/app/kols").route(web::post().to(create_kol)))
        .service(page("/app/campaigns/{id}").route(web::get().to(campaign)))
        .service(page("/app/campaigns/{id}/links").route(web::post().to(mint)))
        .service(page("/app/campaigns/{id}/links/{code}").route(web::post().to(edit_link)))
        .service(page("/app/campaigns/{id}/shares").route(web::post().to(share)));
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

/// A form posted with a CSRF token of another session.
pub(crate) const FORM_EXPIRED: &str = "This form has expired: sign in again.";

/// To the sign-in page, which then leads back to the page asked for (or, for a form, the page
/// the form was on), and says so when the browser's session has ended (signed out elsewhere,
/// or past its life) rather than never begun.
fn to_sign_in(req: &HttpRequest) -> HttpResponse {
    let back = if req.method() == actix_web::http::Method::GET {
        match req.query_string() {
            "" => req.path().to_owned(),
            q => format!("{}?{q}", req.path()),
        }
    } else {
        // The mint form's page is its campaign's; the new-campaign form's, the campaigns'.
        req.path().strip_suffix("/links").unwrap_or("/app").to_owned()
    };
    let mut to = "/app/login".to_owned();
    let mut sep = '?';
    if back != "/app" && local_page(&back).is_some() {
        to.push_str("?next=");
        to.extend(url::form_urlencoded::byte_serialize(back.as_bytes()));
        sep = '&';
    }
    if req.cookie(session::COOKIE).is_some() {
        to.push(sep);
        to.push_str("ended=1");
    }
    see_other(&to)
}

/// `path` when it is a dashboard page of this server to go back to after signing in. The
/// dashboard's paths and queries are slugs, figure names and language tags, so anything else
/// is refused: another site (`//host`, a scheme, `\\`), a dot segment that climbs out of
/// `/app` (`/app/../<code>` would follow a link), an escape that hides one, a control
/// character that would end the header.
fn local_page(path: &str) -> Option<&str> {
    let ok = (path == "/app" || path.starts_with("/app/") || path.starts_with("/app?"))
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'?' | b'=' | b'&'));
    ok.then_some(path)
}

#[derive(Template)]
#[template(path = "app_login.html")]
struct LoginView {
    t: &'static Texts,
    failed: bool,
    /// Seconds to wait when the address is past its sign-in budget.
    wait: Option<u64>,
    /// The page to go back to once signed in (`to_sign_in`).
    next: String,
    /// The browser's session ended: say so.
    ended: bool,
}

impl LoginView {
    /// The sign-in page in `lang`, leading back to `next` (when it is a dashboard page).
    fn new(lang: Lang, next: Option<&str>, ended: bool) -> Self {
        LoginView {
            t: lang.texts(),
            failed: false,
            wait: None,
            next: next.and_then(local_page).unwrap_or_default().to_owned(),
            ended,
        }
    }

    /// The same page in the other language, still leading back and saying what it said.
    fn other_lang_href(&self) -> String {
        let mut href = format!("/app/login?lang={}", self.t.other_lang);
        if !self.next.is_empty() {
            href.push_str("&next=");
            href.extend(url::form_urlencoded::byte_serialize(self.next.as_bytes()));
        }
        if self.ended {
            href.push_str("&ended=1");
        }
        href
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    ended: Option<String>,
}

async fn login_form(req: HttpRequest, q: web::Query<LoginQuery>) -> Result<HttpResponse, ApiError> {
    rendered(LoginView::new(Lang::of(&req), q.next.as_deref(), q.ended.is_some()).render())
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    lang: Option<String>,
    next: Option<String>,
}

async fn login(req: HttpRequest, state: State, form: web::Form<LoginForm>) -> Result<HttpResponse, ApiError> {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    // Every attempt counts, a right token too: past the budget a guess cannot be told right.
    let client = crate::http::limits::client_of(&req, &state);
    // The language of the page the form was on.
    let lang = form.lang.as_deref().map_or_else(|| Lang::of(&req), Lang::parse);
    if let Err(wait) = state.sign_in_limits.check(client) {
        crate::telemetry::warn_limited!(%client, "dashboard sign-in attempts past their budget");
        if !crate::http::accepts(&req, "text/html") {
            return Ok(crate::http::limits::too_many(wait));
        }
        // A browser gets the sign-in page again, saying how long to wait, with the API's
        // status and header.
        let wait = wait.max(1);
        let body = LoginView {
            wait: Some(wait),
            ..LoginView::new(lang, form.next.as_deref(), false)
        }
        .render()
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
        let mut res = html(actix_web::http::StatusCode::TOO_MANY_REQUESTS, body);
        res.headers_mut().insert(header::RETRY_AFTER, wait.into());
        return Ok(res);
    }
    let hash: [u8; 32] = Sha256::digest(form.token.trim().as_bytes()).into();
    if !bool::from(hash.ct_eq(&state.admin_hash)) {
        crate::telemetry::warn_limited!("dashboard sign-in with a wrong token");
        let body = LoginView {
            failed: true,
            ..LoginView::new(lang, form.next.as_deref(), false)
        }
        .render();
        let body = body.map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
        return Ok(html(actix_web::http::StatusCode::UNAUTHORIZED, body));
    }
    Ok(HttpResponse::SeeOther()
        .cookie(session::start(&state))
        .cookie(lang.cookie(&state))
        .insert_header((
            header::LOCATION,
            match form.next.as_deref().and_then(local_page) {
                Some(page) => page.to_owned(),
                None => format!("/app?lang={}", lang.tag()),
            },
        ))
        .finish())
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(req: HttpRequest, state: State, form: web::Form<CsrfForm>) -> HttpResponse {
    if let Err(answer) = form_post(&req, &state, &form.csrf) {
        return *answer;
    }
    // Every session ends, not only this browser's cookie: a copy of it is worth nothing now.
    if let Err(e) = session::sign_out(&state).await {
        tracing::error!(error = %e, "sign-out could not end the sessions: the store did not answer");
        return actix_web::ResponseError::error_response(&ApiError::from(e));
    }
    HttpResponse::SeeOther()
        .cookie(session::end(&state))
        .insert_header((header::LOCATION, "/app/login"))
        .finish()
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
            Range::default(),
            Sort::default(),
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
        by: t.shop,
        empty: t.no_unclaimed,
        rows,
    };
    let kol_added = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("added").cloned())
        .filter(|id| crate::domain::Slug::parse(id).is_ok());
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

struct LinkCard {
    code: String,
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
}

/// A list of conversions: its table's id, the title of its `by` column and what it says when
/// empty (`conversions_table.html`).
struct ConversionList {
    id: &'static str,
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
    range_query: String,
    /// The chart's heading: the last 30 days, or the days asked for.
    daily: String,
    fig: Fig,
    /// The daily chart drawn for a desktop's width, and for a phone's (the page's CSS shows
    /// one, by the screen's width), so that its labels read at the same size on both.
    chart: String,
    phone_chart: String,
    headers: Vec<Header>,
    kols: Vec<TableRow>,
    tiers: Vec<TableRow>,
    breakdowns: Vec<BreakdownCard>,
    links: Vec<LinkCard>,
    /// KOLs' ids and names, offered by the new-link form.
    known_kols: Vec<(String, String)>,
    conversions: ConversionList,
    mint: Sent<MintForm>,
}

fn label(t: &Texts, k: SortKey) -> &'static str {
    match k {
        SortKey::Roi => t.roi,
        SortKey::Roas => t.roas,
        SortKey::Clicks => t.clicks,
        SortKey::UniqueClicks => t.unique_clicks,
        SortKey::Impressions => t.impressions,
        SortKey::Ctr => t.ctr,
        SortKey::Conversions => t.conversions,
        SortKey::ConversionRate => t.conversion_rate,
        SortKey::Revenue => t.revenue,
        SortKey::NetRevenue => t.net_revenue,
        SortKey::Refunds => t.refunds,
        SortKey::Cost => t.cost,
        SortKey::Epc => t.epc,
        SortKey::Cpc => t.cpc,
        SortKey::Cpa => t.cpa,
        SortKey::Aov => t.aov,
        SortKey::Engagements => t.engagements,
        SortKey::EngagementRate => t.engagement_rate,
    }
}

/// Where a shop's data named a link, in the page's language; a source kolink does not know is
/// shown as it is.
fn audit_source<'a>(t: &'a Texts, source: &'a str) -> &'a str {
    AUDIT_SOURCES
        .iter()
        .position(|s| *s == source)
        .map_or(source, |i| t.audit_sources[i])
}

/// A candidate's result in a conversion's audit, in the page's language.
fn audit_result(t: &Texts, result: AuditResult) -> &'static str {
    let [chosen, lower, no_link, bot, after, outside] = t.audit_results;
    match result {
        AuditResult::Chosen => chosen,
        AuditResult::LowerPriority => lower,
        AuditResult::NoLink => no_link,
        AuditResult::BotClick => bot,
        AuditResult::AfterConversion => after,
        AuditResult::OutsideWindow => outside,
    }
}

/// A conversion's status in the page's language.
fn status_name(t: &Texts, status: ConversionStatus) -> &'static str {
    let [attributed, duplicate, unattributed, outside, mismatch, pending, over, test] = t.statuses;
    match status {
        ConversionStatus::Attributed => attributed,
        ConversionStatus::Duplicate => duplicate,
        ConversionStatus::Unattributed => unattributed,
        ConversionStatus::OutsideWindow => outside,
        ConversionStatus::CurrencyMismatch => mismatch,
        ConversionStatus::Pending => pending,
        ConversionStatus::OverRefund => over,
        ConversionStatus::Test => test,
    }
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
        audit: cv
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
    }
}

/// A breakdown slice's name in the page's language: devices and QR scans; apps by their own
/// names (`line` is LINE); referrers, countries and sources as they are.
fn slice_name(t: &Texts, dimension: &str, key: &str) -> String {
    let known = match dimension {
        "device" => DEVICES.iter().position(|d| *d == key).map(|i| t.devices[i]),
        "source" if key == "qr" => Some(t.qr_source),
        "app" | "preview" => APP_NAMES.iter().find(|(k, _)| *k == key).map(|(_, name)| *name),
        _ => None,
    };
    known.map_or_else(|| key.to_owned(), str::to_owned)
}

/// Apps as they write their names, by the keys of the `app` and `preview` breakdowns
/// (`crate::classify`); a key not here is shown as it is.
const APP_NAMES: &[(&str, &str)] = &[
    ("instagram", "Instagram"),
    ("facebook", "Facebook"),
    ("messenger", "Messenger"),
    ("threads", "Threads"),
    ("tiktok", "TikTok"),
    ("x", "X"),
    ("line", "LINE"),
    ("wechat", "WeChat"),
    ("kakaotalk", "KakaoTalk"),
    ("snapchat", "Snapchat"),
    ("pinterest", "Pinterest"),
    ("weibo", "Weibo"),
    ("dingtalk", "DingTalk"),
    ("naver", "NAVER"),
    ("baidu", "Baidu"),
    ("google", "Google"),
    ("linkedin", "LinkedIn"),
    ("viber", "Viber"),
    ("applenews", "Apple News"),
    ("qq", "QQ"),
    ("whatsapp", "WhatsApp"),
    ("telegram", "Telegram"),
    ("slack", "Slack"),
    ("discord", "Discord"),
    ("imessage", "iMessage"),
    ("skype", "Skype"),
    ("microsoft", "Microsoft"),
    ("reddit", "Reddit"),
    ("tumblr", "Tumblr"),
    ("mastodon", "Mastodon"),
    ("bluesky", "Bluesky"),
    ("vk", "VK"),
    ("steam", "Steam"),
    ("chatwork", "Chatwork"),
    ("discourse", "Discourse"),
    ("embedly", "Embedly"),
    ("iframely", "Iframely"),
];

/// An event's name in the page's language.
fn event_name(t: &Texts, event: Event) -> &'static str {
    Event::ALL.iter().position(|e| *e == event).map_or("", |i| t.events[i])
}

/// A KOL's platform as it writes its name (blog and other in the page's language).
fn platform_name(t: &Texts, p: crate::domain::Platform) -> &'static str {
    use crate::domain::Platform::*;
    match p {
        Instagram => "Instagram",
        Youtube => "YouTube",
        Tiktok => "TikTok",
        Facebook => "Facebook",
        Threads => "Threads",
        X => "X",
        Blog => t.platform_blog,
        Line => "LINE",
        Other => t.platform_other,
    }
}

/// A follower tier's name in the page's language.
fn tier_name(t: &Texts, tier: Tier) -> &'static str {
    let [nano, micro, mid, macro_, mega] = t.tier_names;
    match tier {
        Tier::Nano => nano,
        Tier::Micro => micro,
        Tier::Mid => mid,
        Tier::Macro => macro_,
        Tier::Mega => mega,
    }
}

fn enum_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct CampaignQuery {
    sort: Option<String>,
    order: Option<String>,
    /// The UTC days the page's figures cover (both included); every day without them.
    from: Option<String>,
    to: Option<String>,
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
    let asked = Sort::parse(q.sort.as_deref(), q.order.as_deref())
        .and_then(|sort| Ok((sort, crate::http::stats::day_range(q.from.as_deref(), q.to.as_deref())?)));
    let page = match asked {
        Ok((sort, range)) => campaign_page(&req, &state, &s, &id, sort, range, Sent::default()).await,
        Err(e) => Err(e),
    };
    match page {
        Ok(page) => rendered(page),
        // An unknown campaign or sort is a page to a browser, in its reader's language and
        // with the way back to the campaigns (API.md's JSON to other clients).
        Err(ApiError::Client { code, message }) => {
            let lang = Lang::of(&req);
            let said = match (lang, code) {
                (Lang::ZhTw, Code::NotFound) => format!("找不到代號為「{id}」的活動。"),
                (Lang::ZhTw, Code::InvalidInput) if message.starts_with("from") || message.starts_with("to") => {
                    "日期須寫成 YYYY-MM-DD，且開始日期不晚於結束日期。".to_owned()
                }
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

async fn campaign_page(
    req: &HttpRequest,
    state: &State,
    session: &str,
    id: &str,
    sort: Sort,
    range: Range,
    mint: Sent<MintForm>,
) -> Result<Result<String, askama::Error>, ApiError> {
    let t = Lang::of(req).texts();
    let c = lookup::campaign(state.store(), id).await?;
    let r = report::campaign(
        state.store(),
        &state.link_lists,
        state.clock.as_ref(),
        id,
        range,
        sort,
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
    let links = lookup::links(state.store(), &filter, None, 200)
        .await?
        .items
        .into_iter()
        .map(|l| {
            let short_url = format!("{}/{}", state.public_base, l.code);
            LinkCard {
                code: l.code.to_string(),
                kol_id: l.kol.to_string(),
                ended: super::ended(t, l.standing(now)),
                disabled: l.status == crate::domain::LinkStatus::Disabled,
                cost_plain: l.cost.to_string(),
                kol: name_of(l.kol.as_str()),
                coupon: l.coupon.map(|c| c.to_string()).unwrap_or_default(),
                cost: amount(l.cost),
                qr_svg: format!("{short_url}/qr.svg"),
                short_url,
            }
        })
        .collect();
    let rows = lookup::conversions(
        state.store(),
        &ConversionFilter {
            campaign: Some(c.id.to_string()),
            ..ConversionFilter::default()
        },
        None,
        50,
    )
    .await?
    .items
    .into_iter()
    .map(|cv| conversion_row(t, &cv, cv.kol.as_deref().map(&name_of).unwrap_or_default()))
    .collect();
    let conversions = ConversionList {
        id: "conversions",
        by: t.kol,
        empty: t.no_conversions,
        rows,
    };
    Ok(CampaignView {
        t,
        csrf: session::csrf(state, session),
        id: c.id.to_string(),
        name: c.name.clone(),
        currency: c.currency.as_str().to_owned(),
        sort: sort.key.name(),
        order: sort.order.name(),
        from: range.from.map(|d| d.to_string()).unwrap_or_default(),
        to: range.to.map(|d| d.to_string()).unwrap_or_default(),
        range_query: [("from", range.from), ("to", range.to)]
            .iter()
            .filter_map(|(k, d)| d.map(|d| format!("&{k}={d}")))
            .collect(),
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
        chart: daily_chart(&r.series, t.clicks, t.conversions, super::DESK_CHART_WIDTH),
        phone_chart: daily_chart(&r.series, t.clicks, t.conversions, super::PHONE_CHART_WIDTH),
        headers,
        kols,
        tiers,
        breakdowns,
        links,
        known_kols,
        conversions,
        mint,
    }
    .render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::views::{EN, ZH_TW};

    #[test]
    fn apps_are_named_as_they_write_their_names() {
        assert_eq!(slice_name(&ZH_TW, "app", "line"), "LINE");
        assert_eq!(slice_name(&EN, "preview", "whatsapp"), "WhatsApp");
        assert_eq!(slice_name(&EN, "app", "instagram"), "Instagram");
        // One kolink does not know yet, and other breakdowns, as they are.
        assert_eq!(slice_name(&EN, "app", "newapp"), "newapp");
        assert_eq!(slice_name(&EN, "referrer", "line.me"), "line.me");
        let keys: std::collections::HashSet<_> = APP_NAMES.iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), APP_NAMES.len(), "one name per app");
    }

    #[test]
    fn every_column_breakdown_tier_and_status_has_a_name_of_its_own_in_each_language() {
        for t in [&EN, &ZH_TW] {
            let mut names: Vec<&str> = SortKey::ALL.iter().map(|k| label(t, *k)).collect();
            names.extend(t.dimensions);
            let tiers = [Tier::Nano, Tier::Micro, Tier::Mid, Tier::Macro, Tier::Mega];
            names.extend(tiers.iter().map(|tier| tier_name(t, *tier)));
            let statuses = [
                ConversionStatus::Attributed,
                ConversionStatus::Duplicate,
                ConversionStatus::Unattributed,
                ConversionStatus::OutsideWindow,
                ConversionStatus::CurrencyMismatch,
                ConversionStatus::Pending,
                ConversionStatus::OverRefund,
                ConversionStatus::Test,
            ];
            names.extend(statuses.iter().map(|s| status_name(t, *s)));
            names.extend(t.devices);
            names.push(t.qr_source);
            let mut distinct = names.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), names.len(), "{names:?}");
            for name in &names {
                if t.html_lang == "en" {
                    assert!(name.starts_with(|c: char| c.is_ascii_uppercase()), "{name}");
                } else {
                    assert!(!name.is_ascii(), "untranslated: {name}");
                }
            }
        }
        for t in [&EN, &ZH_TW] {
            let mut events: Vec<&str> = Event::ALL.iter().map(|e| event_name(t, *e)).collect();
            events.dedup();
            assert_eq!(events.len(), Event::ALL.len(), "{events:?}");
            assert!(
                events.iter().all(|e| (t.html_lang == "en") == e.is_ascii()),
                "{events:?}"
            );
        }
        assert_eq!(event_name(&ZH_TW, Event::Refund), "退款");
        for t in [&EN, &ZH_TW] {
            assert!(
                t.unclaimed_note.contains(&UNCLAIMED_SCAN.to_string()),
                "the note says how far back"
            );
        }
        assert_eq!(tier_name(&ZH_TW, Tier::Mega), "超大型");
        for t in [&EN, &ZH_TW] {
            let mut audit: Vec<&str> = AUDIT_SOURCES.iter().map(|s| audit_source(t, s)).collect();
            let results = [
                AuditResult::Chosen,
                AuditResult::LowerPriority,
                AuditResult::NoLink,
                AuditResult::BotClick,
                AuditResult::AfterConversion,
                AuditResult::OutsideWindow,
            ];
            audit.extend(results.iter().map(|r| audit_result(t, *r)));
            let mut distinct = audit.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), audit.len(), "{audit:?}");
            assert!(audit.iter().all(|a| !a.contains('_')), "{audit:?}");
            if t.html_lang != "en" {
                assert!(audit.iter().all(|a| !a.is_ascii()), "untranslated: {audit:?}");
            }
            assert_eq!(audit_source(t, "a_new_source"), "a_new_source", "shown as it is");
        }
        assert_eq!(tier_name(&EN, Tier::Nano), "Nano");
    }
}
