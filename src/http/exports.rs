//! Exports: a link's raw clicks in log order, as JSON or CSV (`Accept: text/csv`).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};

use super::{Admin, State};
use crate::domain::{ClickId, StoredClick};
use crate::error::ApiError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/links/{code}/clicks").get(clicks));
}

#[derive(Deserialize)]
struct ClicksQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// One click as exported; `id` is the `kl_cid` the redirect handed out (bots got none, but
/// their entries carry an id all the same).
#[derive(Serialize)]
struct ClickRow<'a> {
    id: String,
    at: String,
    bot: bool,
    visitor: &'a str,
    referrer: &'a str,
    device: &'a str,
    browser: &'a str,
    os: &'a str,
    country: &'a str,
    source: &'a str,
}

fn row(link_id: u64, c: &StoredClick) -> ClickRow<'_> {
    let at = DateTime::from_timestamp_millis(c.entry.ms as i64).unwrap_or_default();
    ClickRow {
        id: ClickId {
            link_id,
            entry: c.entry,
        }
        .to_string(),
        at: at.to_rfc3339_opts(SecondsFormat::Millis, true),
        bot: c.info.bot,
        visitor: &c.info.visitor,
        referrer: &c.info.referrer,
        device: &c.info.device,
        browser: &c.info.browser,
        os: &c.info.os,
        country: &c.info.country,
        source: &c.info.source,
    }
}

async fn clicks(
    _: Admin,
    req: HttpRequest,
    state: State,
    code: web::Path<String>,
    q: web::Query<ClicksQuery>,
) -> Result<HttpResponse, ApiError> {
    let link = super::links::load(&state, &code).await?;
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
    let clicks = state.store.read_clicks(link.code.as_str(), after, limit).await?;
    let rows: Vec<ClickRow> = clicks.iter().map(|c| row(link.id, c)).collect();
    let wants_csv = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        let mut w = csv::Writer::from_writer(Vec::new());
        if rows.is_empty() {
            w.write_record([
                "id", "at", "bot", "visitor", "referrer", "device", "browser", "os", "country", "source",
            ])
            .map_err(anyhow::Error::from)?;
        }
        for r in &rows {
            w.serialize(r).map_err(anyhow::Error::from)?;
        }
        let body = w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("Failed to write CSV: {e}"))?;
        return Ok(HttpResponse::Ok().content_type("text/csv; charset=utf-8").body(body));
    }
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(serde_json::json!({"clicks": rows, "next_cursor": next})))
}
