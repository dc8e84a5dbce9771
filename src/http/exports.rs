//! Exports: a link's raw clicks in log order, as JSON or CSV (`Accept: text/csv`).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat};
use serde::Deserialize;

use super::{Admin, State};
use crate::domain::{ClickId, Dimension, StoredClick};
use crate::error::ApiError;
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

/// The columns of a click export: id, time, bot, preview, suspicious, visitor, then every
/// dimension.
fn columns() -> Vec<&'static str> {
    let mut c = vec!["id", "at", "bot", "preview", "suspicious", "visitor"];
    c.extend(Dimension::ALL.iter().map(|d| d.name()));
    c
}

/// One click as exported, column by column; `id` is the `kl_cid` the redirect handed out (bots
/// got none, but their entries carry an id all the same).
fn row(link_id: u64, c: &StoredClick) -> Vec<String> {
    let at = DateTime::from_timestamp_millis(c.entry.ms as i64).unwrap_or_default();
    let mut r = vec![
        ClickId {
            link_id,
            entry: c.entry,
        }
        .to_string(),
        at.to_rfc3339_opts(SecondsFormat::Millis, true),
        c.info.bot.to_string(),
        c.info.preview.clone(),
        c.info.suspicious.to_string(),
        c.info.visitor.clone(),
    ];
    r.extend(c.info.dims.iter().map(|(_, v)| v.to_owned()));
    r
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
    let rows: Vec<Vec<String>> = clicks.iter().map(|c| row(link.id, c)).collect();
    let wants_csv = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"))
        || q.format.as_deref() == Some("csv");
    let cols = columns();
    if wants_csv {
        return super::csv_response(&cols, rows);
    }
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r[0].clone()))
        .flatten();
    let objects: Vec<serde_json::Map<String, serde_json::Value>> = clicks
        .iter()
        .zip(&rows)
        .map(|(c, r)| {
            cols.iter()
                .zip(r)
                .map(|(k, v)| {
                    let v = match *k {
                        "bot" => serde_json::Value::Bool(c.info.bot),
                        "suspicious" => serde_json::Value::Bool(c.info.suspicious),
                        _ => serde_json::Value::String(v.clone()),
                    };
                    ((*k).to_owned(), v)
                })
                .collect()
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"clicks": objects, "next_cursor": next})))
}
