//! The list of stored conversions, newest first, each with its audit trail; as JSON, or as CSV
//! with `Accept: text/csv` (the audit trail in one column).
//!
//! JSON comes a page at a time. CSV is a download: without `limit` it holds every conversion
//! that matches (from `cursor` on), read from the store a page at a time while it is sent, so
//! that an export of the whole trail is one file whatever its size; with `limit` it is one page,
//! and a `Link` header (`rel="next"`) names the next one.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{Admin, PageQuery, State};
use crate::domain::{Conversion, ConversionStatus};
use crate::error::ApiError;
use crate::lookup::{self, ConversionFilter};
use crate::store::{Cursor, Page, Store};

/// Conversions read per store call while a whole CSV export is sent.
const CSV_PAGE: usize = 200;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/conversions").route(super::get_or_head().to(list)));
}

/// A parameter this list does not know is refused: ignored, it would hand back more than asked
/// for (every KOL's orders for `kols=amy`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    campaign: Option<String>,
    kol: Option<String>,
    status: Option<String>,
    /// UTC days of `occurred_at`, both included.
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    /// `csv`: the same as `Accept: text/csv`, for download links.
    format: Option<String>,
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
    let whole = q.limit.is_none();
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let days = super::stats::day_range(q.from.as_deref(), q.to.as_deref())?;
    let key = super::ListKey::new(
        "conversions",
        &[
            q.campaign.as_deref(),
            q.status.as_deref(),
            q.kol.as_deref(),
            q.from.as_deref(),
            q.to.as_deref(),
        ],
    );
    let filter = ConversionFilter {
        campaign: q.campaign,
        kol: q.kol,
        status,
        days,
    };
    let (cursor, limit) = (page.cursor(&key)?, page.limit()?);
    let wants_csv = match q.format.as_deref() {
        None => super::accepts(&req, "text/csv"),
        Some("csv") => true,
        Some(_) => return Err(ApiError::invalid("format must be csv.")),
    };
    if wants_csv && whole {
        // The first page is read before the answer starts, so that a store that does not
        // answer is a 503 rather than a cut download.
        let first = lookup::conversions(state.store(), &filter, cursor, CSV_PAGE).await?;
        return Ok(csv_download(state.store.clone(), filter, first));
    }
    let result = lookup::conversions(state.store(), &filter, cursor, limit).await?;
    if wants_csv {
        let mut answer = super::csv_response(&HEADER, result.items.iter().map(row))?;
        if let Some(next) = &result.next {
            let link = header::HeaderValue::from_str(&next_link(&req, &key, next))
                .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("Failed to write the Link header")))?;
            answer.headers_mut().insert(header::LINK, link);
        }
        return Ok(answer);
    }
    Ok(super::list("conversions", &result.items, result.next, &key))
}

const HEADER: [&str; 15] = [
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

/// `<this path>?<the same query, cursor=next>`, as a `Link` header's value.
fn next_link(req: &HttpRequest, key: &super::ListKey, next: &Cursor) -> String {
    let mut query: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| k != "cursor")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    query.push(("cursor".to_owned(), key.write(next)));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&query)
        .finish();
    format!("<{}?{query}>; rel=\"next\"", req.path())
}

/// Every conversion from `first` on, its pages read as the answer is sent (`csv_stream`).
fn csv_download(store: std::sync::Arc<dyn Store>, filter: ConversionFilter, first: Page<Conversion>) -> HttpResponse {
    let page = |p: Page<Conversion>| (p.items.iter().map(row).collect(), p.next);
    let next_page = move |cursor: Cursor| {
        let (store, filter) = (store.clone(), filter.clone());
        async move {
            let next = lookup::conversions(store.as_ref(), &filter, Some(cursor), CSV_PAGE).await?;
            Ok(page(next))
        }
    };
    super::csv_stream(HEADER.to_vec(), page(first), next_page, "conversions")
}

/// One conversion's row; `audit` holds each candidate as `source method value -> link: result`,
/// separated by ` | `.
fn row(c: &Conversion) -> Vec<String> {
    let text = |v: serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_default();
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
}
