//! Stats per link, per campaign and per KOL: the reports of `crate::report`, as JSON.

use actix_web::{web, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;

use super::{Admin, State};
use crate::error::ApiError;
use crate::report::{self, Sort};
use crate::stats::{Interval, Range};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/links/{code}/stats").route(super::get_or_head().to(link_stats)))
        .service(web::resource("/campaigns/{id}/stats").route(super::get_or_head().to(campaign_stats)))
        .service(web::resource("/campaigns/{id}/report.csv").route(super::get_or_head().to(campaign_csv)))
        .service(web::resource("/kols/{id}/stats").route(super::get_or_head().to(kol_stats)));
}

#[derive(Deserialize)]
struct StatsQuery {
    from: Option<String>,
    to: Option<String>,
    interval: Option<String>,
    sort: Option<String>,
    order: Option<String>,
}

/// A day of a query (`YYYY-MM-DD`); none when left out or empty.
pub(crate) fn parse_day(field: &str, s: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    s.filter(|s| !s.is_empty())
        .map(|s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| ApiError::invalid(format!("{field} must be a date as YYYY-MM-DD.")))
        })
        .transpose()
}

/// `from` and `to` of a query, UTC days, both included; `from` not after `to`.
pub(super) fn day_range(from: Option<&str>, to: Option<&str>) -> Result<Range, ApiError> {
    let r = Range {
        from: parse_day("from", from)?,
        to: parse_day("to", to)?,
    };
    if let (Some(f), Some(t)) = (r.from, r.to) {
        if f > t {
            return Err(ApiError::invalid("from must not be after to."));
        }
    }
    Ok(r)
}

impl StatsQuery {
    fn range(&self) -> Result<Range, ApiError> {
        day_range(self.from.as_deref(), self.to.as_deref())
    }

    fn interval(&self) -> Result<Interval, ApiError> {
        match self.interval.as_deref() {
            None | Some("day") => Ok(Interval::Day),
            Some("hour") => Ok(Interval::Hour),
            Some(_) => Err(ApiError::invalid("interval must be day or hour.")),
        }
    }

    fn sort(&self) -> Result<Sort, ApiError> {
        Sort::parse(self.sort.as_deref(), self.order.as_deref())
    }
}

async fn link_stats(
    _: Admin,
    state: State,
    code: web::Path<String>,
    q: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let r = report::link(
        state.store(),
        state.clock.as_ref(),
        &code,
        q.range()?,
        q.interval()?,
        state.settings.hourly_retention_days,
    )
    .await?;
    Ok(HttpResponse::Ok().json(r))
}

async fn campaign_stats(
    _: Admin,
    state: State,
    id: web::Path<String>,
    q: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(campaign_report(&state, &id, &q, q.interval()?).await?))
}

/// The campaign's report that `q` asks for, its series by `interval`: the JSON and the CSV
/// answer the same one.
async fn campaign_report(
    state: &State,
    id: &str,
    q: &StatsQuery,
    interval: Interval,
) -> Result<report::CampaignReport, ApiError> {
    let ask = report::CampaignAsk {
        range: q.range()?,
        sort: q.sort()?,
        interval,
        per_link: false,
    };
    report::campaign(
        state.store(),
        &state.link_lists,
        state.clock.as_ref(),
        id,
        ask,
        state.settings.hourly_retention_days,
    )
    .await
}

/// The campaign's report as CSV: the same report as `/stats`, one row per KOL, then per tier.
async fn campaign_csv(
    _: Admin,
    state: State,
    id: web::Path<String>,
    q: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    // The CSV has no series: an interval is only checked to be one, as `/stats` would.
    q.interval()?;
    let r = campaign_report(&state, &id, &q, Interval::Day).await?;
    let body = report::campaign_csv(&r)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("Failed to write report.csv")))?;
    Ok(HttpResponse::Ok()
        .content_type(super::CSV_TYPE)
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{}-report.csv\"", r.campaign),
        ))
        .body(body))
}

async fn kol_stats(
    _: Admin,
    state: State,
    id: web::Path<String>,
    q: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    // A KOL's stats have no series: an interval is only checked to be one (a query shared
    // with a campaign's stats may carry it).
    q.interval()?;
    Ok(HttpResponse::Ok().json(
        report::kol(
            state.store(),
            &state.link_lists,
            state.clock.as_ref(),
            &id,
            q.range()?,
            state.settings.hourly_retention_days,
        )
        .await?,
    ))
}
