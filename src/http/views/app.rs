//! The analyst's dashboard (`/app`): the campaigns with their totals, and a campaign's page
//! (KPIs over every day or the days asked for, daily chart, the KOL leaderboard sortable by
//! every figure either way, tiers, breakdowns, links with QR codes, conversions with their
//! audit, downloads). Every figure comes from `crate::report`, as the API's do.
//!
//! The pages: `campaigns` (the first page) and `campaign` (a campaign's). Beside them:
//! `sign_in` (signing in and out), `forms` (creating campaigns and KOLs, minting and changing
//! links, through the API's own rules), `insights` (a link card's insights form), `shares`
//! (a KOL's page made and ended), `names` (what the pages call things, in each language).

use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{amount, count, percent, session, Lang};
use crate::domain::Money;
use crate::error::ApiError;
use crate::http::State;
use crate::report::{Figure, SortKey};
use crate::stats::Totals;

mod campaign;
mod campaigns;
mod forms;
mod insights;
mod names;
mod shares;
mod sign_in;

use forms::{create_campaign, create_kol, edit_link, form_post, mint};
use insights::{remove_insights, report_insights};
use shares::{revoke, share};
pub(crate) use sign_in::FORM_EXPIRED;
use sign_in::{login, login_form, logout, to_sign_in};

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Every page keeps the language it was asked for (`remember_lang`).
    let page = |path: &str| web::resource(path).wrap(from_fn(super::remember_lang));
    // A form's address: opened as a page (a reload of a refused form), the form's page.
    let form = |path: &str| page(path).route(crate::http::get_or_head().to(to_form_page));
    cfg.service(page("/app").route(crate::http::get_or_head().to(campaigns::campaigns)))
        .service(
            page("/app/login")
                .wrap(from_fn(crate::http::limits::limit))
                .route(crate::http::get_or_head().to(login_form))
                .route(web::post().to(login)),
        )
        .service(page("/app/logout").route(web::post().to(logout)))
        .service(form("/app/campaigns").route(web::post().to(create_campaign)))
        .service(form("/app/kols").route(web::post().to(create_kol)))
        .service(page("/app/campaigns/{id}").route(crate::http::get_or_head().to(campaign::campaign)))
        .service(form("/app/campaigns/{id}/links").route(web::post().to(mint)))
        .service(form("/app/campaigns/{id}/links/{code}").route(web::post().to(edit_link)))
        .service(form("/app/campaigns/{id}/links/{code}/insights").route(web::post().to(report_insights)))
        .service(form("/app/campaigns/{id}/links/{code}/insights/{day}/remove").route(web::post().to(remove_insights)))
        .service(
            page("/app/campaigns/{id}/shares")
                .route(crate::http::get_or_head().to(shares::shown_share))
                .route(web::post().to(share)),
        )
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
        Some(Figure::Rate(r)) if key == SortKey::Roas => super::signed(r, super::decimal(r.abs(), 0, 2)),
        Some(Figure::Rate(r)) => percent(Some(r)),
    }
}
