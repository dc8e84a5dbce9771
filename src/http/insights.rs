//! Impressions and engagement, what CTR is measured against: the numbers a KOL or analyst reads
//! off a platform's insights per day (`POST /api/v1/links/{code}/metrics`, idempotent per day;
//! the days reported listed by `GET`, and one reported by mistake removed by
//! `DELETE …/metrics/{date}`), and a counting pixel. ("metrics" in the path is API.md's word; inside kolink these are
//! insights, and metrics are the Prometheus counters of `crate::telemetry`.)

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Days, NaiveDate};

use super::{Admin, Body, State};
use crate::domain::DayInsights;
use crate::error::ApiError;
use crate::lookup;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/links/{code}/metrics")
            .post(put_insights)
            .route(super::get_or_head().to(list_insights)),
    )
    .service(web::resource("/links/{code}/metrics/{date}").delete(remove_insights));
}

pub fn pixel_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/p/{file}")
            .route(web::get().to(pixel))
            .route(web::head().to(pixel_head)),
    );
}

async fn put_insights(
    _: Admin,
    state: State,
    code: web::Path<String>,
    body: Body<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, ApiError> {
    let link = lookup::link(state.store(), &code).await?;
    // The body is a `DayInsights` plus `date`; serde cannot deny unknown fields through
    // `flatten`, so `date` is taken off and the rest read as `DayInsights`.
    let mut body = body.into_inner();
    let date = match body.remove("date") {
        Some(serde_json::Value::String(d)) => day(&d)?,
        _ => return Err(ApiError::invalid("date is required, as YYYY-MM-DD.")),
    };
    // A day is replaced whole: one sent with no number would become a day of zeros.
    if body.is_empty() {
        return Err(ApiError::invalid(
            "No numbers were given: send at least one of impressions, reach, likes, comments, shares and saves (DELETE …/metrics/{date} removes a day).",
        ));
    }
    let insights: DayInsights = crate::error::from_json_value(serde_json::Value::Object(body))?;
    report_day(&state, &link, date, &insights).await?;
    let mut out = serde_json::to_value(insights).map_err(|e| ApiError::Internal(e.into()))?;
    out["code"] = link.code.as_str().into();
    out["date"] = date.to_string().into();
    Ok(HttpResponse::Ok().json(out))
}

/// `GET /api/v1/links/{code}/metrics`: every day reported for the link, oldest first.
async fn list_insights(_: Admin, state: State, code: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let link = lookup::link(state.store(), &code).await?;
    let days = reported_days(&state, link.code.as_str()).await?;
    let days: Vec<serde_json::Value> = days
        .into_iter()
        .map(|(date, insights)| {
            let mut day = serde_json::to_value(insights).unwrap_or_default();
            day["date"] = date.to_string().into();
            day
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"code": link.code.as_str(), "days": days})))
}

/// `DELETE /api/v1/links/{code}/metrics/{date}`: a day reported by mistake (a mistyped year
/// made the link's series start there) is removed; `204` whether or not it was reported.
async fn remove_insights(_: Admin, state: State, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let (code, date) = path.into_inner();
    let link = lookup::link(state.store(), &code).await?;
    remove_day(&state, &link, day(&date)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Removes `link`'s numbers of `date` (the API's `DELETE …/metrics/{date}` and the dashboard's
/// link cards); whether there were any.
pub(crate) async fn remove_day(state: &State, link: &crate::domain::Link, date: NaiveDate) -> Result<bool, ApiError> {
    Ok(state.store().remove_insights(link.code.as_str(), date).await?)
}

/// How far back a day of insights may be reported (ten years).
const INSIGHTS_DAYS_BACK: u64 = 3650;

/// A reported day, as `YYYY-MM-DD`.
pub(crate) fn day(s: &str) -> Result<NaiveDate, ApiError> {
    s.parse()
        .map_err(|_| ApiError::invalid("date must be a day as YYYY-MM-DD."))
}

/// The days of insights reported for link `code`, by day.
pub(crate) async fn reported_days(
    state: &State,
    code: &str,
) -> Result<std::collections::BTreeMap<NaiveDate, DayInsights>, ApiError> {
    let data = state
        .store()
        .link_data(&[code.to_owned()], crate::store::Detail::Rollups)
        .await?;
    Ok(data.into_iter().next().map(|d| d.insights).unwrap_or_default())
}

/// `link`'s numbers of `date`, replacing any reported before for that day (the API's
/// `POST /api/v1/links/{code}/metrics` and the dashboard's link cards). A day to come is
/// refused; tomorrow is taken, since it is already today somewhere.
pub(crate) async fn report_day(
    state: &State,
    link: &crate::domain::Link,
    date: NaiveDate,
    insights: &DayInsights,
) -> Result<(), ApiError> {
    let tomorrow = state
        .clock
        .now()
        .date_naive()
        .checked_add_days(Days::new(1))
        .unwrap_or(NaiveDate::MAX);
    if date > tomorrow {
        return Err(ApiError::invalid(
            "date is in the future: report a day that has happened (tomorrow in UTC at the latest).",
        ));
    }
    // A link's series reaches back to its first day of data: a typo such as 1926 would make
    // every report of it a century of days.
    if tomorrow
        .checked_sub_days(Days::new(INSIGHTS_DAYS_BACK + 1))
        .is_some_and(|first| date < first)
    {
        return Err(ApiError::invalid(format!(
            "date is more than {INSIGHTS_DAYS_BACK} days ago: report a day of the post's life."
        )));
    }
    state.store().put_insights(link.code.as_str(), date, insights).await?;
    Ok(())
}

/// A 1×1 transparent GIF.
const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Pixel impressions counted at once, at most. Anyone can load a pixel, and each count is a
/// store write of its own: a flood of them filled the embedded store's queue, which clicks,
/// webhooks and the API write through (their writes were refused `503`, clicks spooled until
/// the spool was full). Past this, a pixel waits for its turn as a redirect waits for the
/// store, then is answered `503` uncounted. One writer's queue serves no more than this anyway.
pub const PIXELS_IN_FLIGHT: usize = 8;

/// `GET /p/{code}.gif`: counts one pixel impression of a live link. Codes are checked for
/// their shape before any lookup (so that no junk reaches the store or the link cache, and
/// the error never echoes it); a disabled or expired link still gets its GIF (the page
/// embedding it should not break) but counts nothing, and so does a crawler rendering the
/// page or another bot (`classify::pixel_counts`: a mail service's image proxy counts, for
/// the reader it loads the pixel for), and a visitor's loads past ten a minute (`reloaded`).
/// While `PIXELS_IN_FLIGHT` others are being counted for longer than a redirect waits for the
/// store, `503` and nothing counted.
async fn pixel(req: HttpRequest, state: State, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let link = pixel_link(&state, &file).await?;
    let now = state.clock.now();
    // Not counted on a Redis not yet found to be this process's store (`Spool::held`).
    let user_agent = super::redirect::user_agent(&req);
    if link.is_live(now)
        && !state.spool.held()
        && crate::classify::pixel_counts(&user_agent)
        && !reloaded(&req, &state, link.id, &user_agent, now)
    {
        let Ok(Ok(_turn)) = tokio::time::timeout(crate::clicks::STORE_DEADLINE, state.pixels.acquire()).await else {
            return Err(ApiError::Unavailable(anyhow::anyhow!(
                "pixels are arriving faster than the store takes them; this one was not counted"
            )));
        };
        state
            .store()
            .bump_counter(link.code.as_str(), &crate::counters::pixel_field(now))
            .await?;
    }
    Ok(gif())
}

/// Whether this load is past `suspicion::LIMIT` loads of one visitor on the link within a
/// minute, as a click is suspicious past that many: anyone can load a pixel, and one client
/// reloading it drove a link's impressions up and its CTR down at will. A mail service's image
/// proxy loads for every reader of a mail from a few addresses: it is held to
/// `PROXY_LOADS_A_MINUTE` an address.
fn reloaded(
    req: &HttpRequest,
    state: &State,
    link_id: u64,
    user_agent: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    let ip = super::redirect::client_ip(req, state);
    let day = crate::counters::day_string(now);
    if crate::classify::loads_for_many_readers(user_agent) {
        // Anyone can say so: an address is held to `PROXY_LOADS_A_MINUTE` on a link then.
        let address = state.visitor_key.hash(&day, &ip, "");
        return state.proxy_pixel_windows.click(link_id, &address, now);
    }
    let visitor = state.visitor_key.hash(&day, &ip, user_agent);
    state.pixel_windows.click(link_id, &visitor, now)
}

/// Pixel loads a minute that one address saying it is a mail service's image proxy counts on
/// a link: a proxy loads for every reader who opens the mail, but a client that only says it
/// is one would otherwise count without bound.
pub const PROXY_LOADS_A_MINUTE: usize = 600;

/// `HEAD /p/{code}.gif`: the pixel's headers; counts nothing.
async fn pixel_head(state: State, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    pixel_link(&state, &file).await?;
    Ok(gif())
}

/// The link of a pixel's file name, `<code>.gif`.
async fn pixel_link(state: &State, file: &str) -> Result<std::sync::Arc<crate::domain::Redirect>, ApiError> {
    let code = file
        .strip_suffix(".gif")
        .filter(|c| crate::domain::ShortCode::is_well_formed(c))
        .ok_or_else(|| ApiError::not_found("The pixel lives at /p/<code>.gif, with a link's code."))?;
    state
        .links
        .get(&state.store, code)
        .await?
        .ok_or_else(|| ApiError::not_found("No link has this code."))
}

/// The pixel's answer.
fn gif() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/gif")
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(GIF)
}
