//! The list of stored conversions, newest first.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{Admin, PageQuery, State};
use crate::domain::ConversionStatus;
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

async fn list(_: Admin, state: State, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let status = q
        .status
        .as_deref()
        .map(|s| {
            ConversionStatus::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "status must be one of attributed, duplicate, unattributed, outside_window, currency_mismatch, pending, over_refund.",
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
    Ok(super::list("conversions", &result.items, result.next))
}
