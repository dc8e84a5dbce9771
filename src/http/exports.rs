//! Exports: a link's raw clicks in log order, as JSON a page at a time, or as CSV (`Accept:
//! text/csv` or `?format=csv`): without `limit` one download of every click (after `after`, or
//! `cursor` as the other lists name it),
//! read from the store a page at a time while it is sent; with `limit` one page, and a `Link`
//! header (`rel="next"`) names the next one.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{Admin, State};
use crate::domain::{ClickId, EntryId, StoredClick};
use crate::error::ApiError;
use crate::export::{click_columns, click_object, click_row};
use crate::lookup;
use crate::store::Store;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/links/{code}/clicks").route(super::get_or_head().to(clicks)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClicksQuery {
    after: Option<String>,
    /// The same as `after`, as every other list pages (`next_cursor` is a click id).
    cursor: Option<String>,
    limit: Option<String>,
    /// `csv`: the same as `Accept: text/csv`, for download links.
    format: Option<String>,
}

async fn clicks(
    _: Admin,
    req: HttpRequest,
    state: State,
    code: web::Path<String>,
    q: web::Query<ClicksQuery>,
) -> Result<HttpResponse, ApiError> {
    let link = lookup::link(state.store(), &code).await?;
    let limit = match q.limit.as_deref() {
        None => 1000,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| ApiError::invalid("limit must be a whole number from 1 to 10000."))?,
    };
    let after = match (q.after.as_deref(), q.cursor.as_deref()) {
        (Some(a), Some(c)) if a != c => {
            return Err(ApiError::invalid(
                "after and cursor name the same place: give one of them.",
            ));
        }
        (a, c) => a.or(c),
    };
    let after = match after.filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(
            ClickId::parse(a)
                .filter(|c| c.link_id == link.id)
                .ok_or_else(|| ApiError::invalid("after (or cursor) must be a click id of this link."))?
                .entry,
        ),
    };
    let wants_csv = super::accepts(&req, "text/csv") || q.format.as_deref() == Some("csv");
    if wants_csv && q.limit.is_none() {
        return whole_csv(state.store.clone(), link.code.to_string(), link.id, after).await;
    }
    let clicks = state.store().read_clicks(link.code.as_str(), after, limit).await?;
    let rows: Vec<Vec<String>> = clicks.iter().map(|c| click_row(link.id, c)).collect();
    // The click id of the page's last click (its first column), when there may be more.
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r[0].clone()))
        .flatten();
    if wants_csv {
        let mut answer = super::csv_response(&click_columns(), rows)?;
        if let Some(next) = next {
            let value = format!("<{}?after={next}&limit={limit}&format=csv>; rel=\"next\"", req.path());
            let value = header::HeaderValue::from_str(&value)
                .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("Failed to write the Link header")))?;
            answer.headers_mut().insert(header::LINK, value);
        }
        return Ok(answer);
    }
    let objects: Vec<serde_json::Map<String, serde_json::Value>> =
        clicks.iter().zip(&rows).map(|(c, r)| click_object(c, r)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"clicks": objects, "next_cursor": next})))
}

/// Clicks read per store call while a whole CSV export is sent.
const CSV_PAGE: usize = 1000;

/// Every click of the link after `after`, in log order, as one CSV download (`csv_stream`).
async fn whole_csv(
    store: Arc<dyn Store>,
    code: String,
    link_id: u64,
    after: Option<EntryId>,
) -> Result<HttpResponse, ApiError> {
    let file = code.clone();
    let page = move |clicks: Vec<StoredClick>| {
        let next = (clicks.len() == CSV_PAGE)
            .then(|| clicks.last().map(|c| c.entry))
            .flatten();
        (clicks.iter().map(|c| click_row(link_id, c)).collect(), next)
    };
    let first = page(store.read_clicks(&code, after, CSV_PAGE).await?);
    let next_page = move |after: EntryId| {
        let (store, code) = (store.clone(), code.clone());
        async move { Ok(page(store.read_clicks(&code, Some(after), CSV_PAGE).await?)) }
    };
    let mut answer = super::csv_stream(click_columns(), first, next_page, "clicks");
    // Codes are `[A-Za-z0-9_-]`: a file name as they are.
    let disposition = format!("attachment; filename=\"{file}-clicks.csv\"");
    let value = header::HeaderValue::from_str(&disposition)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("Failed to name the download")))?;
    answer.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    Ok(answer)
}
