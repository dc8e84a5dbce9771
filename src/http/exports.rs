//! Exports: a link's raw clicks in log order, as JSON or CSV (`Accept: text/csv`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{Admin, State};
use crate::domain::ClickId;
use crate::error::ApiError;
use crate::export::{click_columns, click_object, click_row};
use crate::lookup;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/links/{code}/clicks").get(clicks));
}

#[derive(Deserialize)]
struct ClicksQuery {
    after: Option<String>,
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
    let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(
            ClickId::parse(a)
                .filter(|c| c.link_id == link.id)
                .ok_or_else(|| ApiError::invalid("after must be a click id of this link."))?
                .entry,
        ),
    };
    let clicks = state.store().read_clicks(link.code.as_str(), after, limit).await?;
    let rows: Vec<Vec<String>> = clicks.iter().map(|c| click_row(link.id, c)).collect();
    let wants_csv = super::accepts(&req, "text/csv") || q.format.as_deref() == Some("csv");
    let cols = click_columns();
    if wants_csv {
        return super::csv_response(&cols, rows);
    }
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r[0].clone()))
        .flatten();
    let objects: Vec<serde_json::Map<String, serde_json::Value>> =
        clicks.iter().zip(&rows).map(|(c, r)| click_object(c, r)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"clicks": objects, "next_cursor": next})))
}
