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
        return Err(ApiError::not_found(super::NOTHING_HERE));
    };
    let shop = lookup::shop(state.store(), &shop).await?;
    // A delivery is verified as the shop's own platform signs it, wherever it was sent: a shop
    // owner who pasted the wrong URL is told where to send it, and a stranger learns nothing
    // of the shop (its platform was named before any signature was checked).
    let own = intake::of_platform(shop.platform).unwrap_or(platform);
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
    let misdirected = own.platform() != platform.platform();
    if let Err(e) = own.verify(&shop, &delivery, now) {
        if !misdirected {
            return Err(e);
        }
        // Answered as a shop of the path's platform would be, by a stand-in of that platform
        // with a secret nobody has: the shop's own platform's words would name it (and so
        // would any answer but the one every such shop gives).
        let stand_in = crate::domain::Shop {
            platform: platform.platform(),
            secret: crate::signature::WebhookSecret::generate(),
            previous_secret: None,
            previous_until: None,
            ..shop.clone()
        };
        platform.verify(&stand_in, &delivery, now)?;
        return Err(e);
    }
    if misdirected {
        return Err(ApiError::invalid(format!(
            "This delivery is signed for shop '{}', whose webhooks go to its webhook_url, {}, not here.",
            shop.id,
            super::shops::webhook_url(&state, &shop)
        )));
    }
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
