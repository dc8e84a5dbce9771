//! The list of stored conversions, newest first, each with its audit trail; as JSON, or as CSV
//! with `Accept: text/csv` (the audit trail in one column).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{Admin, PageQuery, State};
use crate::domain::{Conversion, ConversionStatus};
use crate::error::ApiError;
use crate::lookup::{self, ConversionFilter};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/conversions").get(list));
}

#[derive(Deserialize)]
struct ListQuery {
    campaign: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list(_: Admin, req: HttpRequest, state: State, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let status = q
        .status
        .as_deref()
        .map(|s| {
            ConversionStatus::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "status must be one of attributed, duplicate, unattributed, outside_window, currency_mismatch, pending, over_refund, test.",
                )
            })
        })
        .transpose()?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let filter = ConversionFilter {
        campaign: q.campaign,
        status,
    };
    let result = lookup::conversions(state.store(), &filter, page.cursor()?, page.limit()?).await?;
    let wants_csv = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        return csv(&result.items);
    }
    Ok(super::list("conversions", &result.items, result.next))
}

/// One row per conversion; `audit` holds each candidate as `source method value -> link: result`,
/// separated by ` | `.
fn csv(items: &[Conversion]) -> Result<HttpResponse, ApiError> {
    let text = |v: serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_default();
    let header = [
        "id",
        "shop",
        "order_id",
        "refund_id",
        "event",
        "amount",
        "currency",
        "status",
        "method",
        "link",
        "kol",
        "campaign",
        "occurred_at",
        "received_at",
        "audit",
    ];
    let rows = items.iter().map(|c| {
        let audit: Vec<String> = c
            .audit
            .iter()
            .map(|a| {
                format!(
                    "{} {} {} -> {}: {}",
                    a.source,
                    text(serde_json::json!(a.method)),
                    a.value,
                    a.link.as_deref().unwrap_or("-"),
                    text(serde_json::json!(a.result))
                )
            })
            .collect();
        vec![
            c.id.clone(),
            c.shop.to_string(),
            c.order_id.clone(),
            c.refund_id.clone().unwrap_or_default(),
            c.event.as_str().to_owned(),
            c.amount.map(|a| a.to_string()).unwrap_or_default(),
            c.currency.as_ref().map(|c| c.as_str().to_owned()).unwrap_or_default(),
            text(serde_json::json!(c.status)),
            c.method.map(|m| text(serde_json::json!(m))).unwrap_or_default(),
            c.link.clone().unwrap_or_default(),
            c.kol.clone().unwrap_or_default(),
            c.campaign.clone().unwrap_or_default(),
            c.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            c.received_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            audit.join(" | "),
        ]
    });
    super::csv_response(&header, rows)
}
