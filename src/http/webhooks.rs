//! Conversion webhooks: `POST /webhooks/<platform path>/<shop>`. The shop platform
//! (`crate::intake::ShopWebhooks`) verifies the delivery and reads it; the one intake takes it.

use actix_web::{web, HttpRequest, HttpResponse};

use super::{read_webhook_body, State};
use crate::error::ApiError;
use crate::intake::{self, Delivery};
use crate::lookup;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/{platform}/{shop}").post(receive));
}

async fn receive(
    req: HttpRequest,
    state: State,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (platform, shop) = path.into_inner();
    let Some(platform) = intake::by_path(&platform) else {
        return Err(ApiError::not_found("Nothing is here: check the path."));
    };
    let shop = lookup::shop(state.store(), &shop).await?;
    if shop.platform != platform.platform() {
        return Err(ApiError::invalid(format!(
            "Shop '{}' is a {:?} shop: its webhooks go to its own webhook_url.",
            shop.id, shop.platform
        )));
    }
    let client = super::limits::client_of(&req, &state);
    let turn = match state.webhook_bodies.turn(client) {
        Ok(turn) => turn,
        Err(bound) => {
            crate::telemetry::warn_limited!(%client, ?bound, "webhook bodies past their bound; refused");
            return Ok(bound.answer());
        }
    };
    let body = read_webhook_body(payload).await?;
    drop(turn);
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let delivery = Delivery {
        header: &header,
        body: &body,
    };
    let now = state.clock.now();
    platform.verify(&shop, &delivery, now)?;
    let mut receipts = Vec::new();
    for incoming in platform.parse(&shop, &delivery, now)? {
        let receipt = intake::accept(state.store(), state.clock.as_ref(), incoming).await?;
        let status = serde_json::to_value(receipt.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        state
            .meters
            .conversions
            .get_or_create(&crate::telemetry::StatusLabel { status })
            .inc();
        receipts.push(receipt);
    }
    // One conversion per delivery is the common case and API.md's answer; a delivery that
    // reports several is answered with all of them, and one that reports none (a ping) plainly.
    Ok(match receipts.len() {
        1 => HttpResponse::Ok().json(&receipts[0]),
        0 => HttpResponse::Ok().json(serde_json::json!({"status": "ok"})),
        _ => HttpResponse::Ok().json(serde_json::json!({"conversions": receipts})),
    })
}
