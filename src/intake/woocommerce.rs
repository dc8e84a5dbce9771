//! Shops on WooCommerce: the shop's `order.created` and `order.updated` webhooks as
//! WooCommerce sends them (`X-WC-Webhook-Signature` = base64 HMAC-SHA256 of the raw body).
//!
//! An order counts once, when its status is first paid (`processing` or `completed`); every
//! later delivery of it is a duplicate. Its `refunds` are partial refunds (each by its id); a
//! paid order later `cancelled` or `refunded` is a refund of what its refunds left of its total.
//! The unsigned, form-encoded ping WooCommerce sends when a webhook is saved
//! (`webhook_id=<n>`) is answered `200` and stores nothing.
//!
//! Attribution, in order: a `kl_cid` entry in `meta_data` (kolink.js puts it there), the
//! `kl_cid` of the landing page WooCommerce's order attribution kept
//! (`_wc_order_attribution_session_entry`), each `coupon_lines[].code`, then the
//! `utm_content` and `utm_campaign` of that order attribution when they name a link code.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

use super::shopify::kl_cid_in;
use super::{check_body_signature, id_text, null_as_empty, Claim, Delivery, Incoming, ShopWebhooks};
use crate::domain::{Currency, Event, Method, Money, Round, Shop, ShopPlatform};
use crate::error::ApiError;

pub struct WooCommerce;

#[derive(Deserialize)]
struct Meta {
    key: Option<String>,
    value: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct CouponLine {
    code: Option<String>,
}

#[derive(Deserialize)]
struct RefundLine {
    id: serde_json::Value,
    total: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Order {
    id: serde_json::Value,
    status: String,
    currency: Option<String>,
    total: Option<serde_json::Value>,
    date_created_gmt: Option<String>,
    date_paid_gmt: Option<String>,
    date_modified_gmt: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    meta_data: Vec<Meta>,
    #[serde(default, deserialize_with = "null_as_empty")]
    coupon_lines: Vec<CouponLine>,
    #[serde(default, deserialize_with = "null_as_empty")]
    refunds: Vec<RefundLine>,
}

/// The ping WooCommerce sends when a webhook is saved: `webhook_id=<n>`, form-encoded.
fn is_ping(d: &Delivery<'_>) -> bool {
    let form = (d.header)("content-type").is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let body = std::str::from_utf8(d.body).unwrap_or("");
    form && body
        .strip_prefix("webhook_id=")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl ShopWebhooks for WooCommerce {
    fn platform(&self) -> ShopPlatform {
        ShopPlatform::Woocommerce
    }

    fn path(&self) -> &'static str {
        "woocommerce"
    }

    fn verify(&self, shop: &Shop, d: &Delivery<'_>, now: DateTime<Utc>) -> Result<(), ApiError> {
        let signature = (d.header)("x-wc-webhook-signature");
        // The ping carries no signature and nothing to store.
        if signature.is_none() && is_ping(d) {
            return Ok(());
        }
        check_body_signature(shop, d, now, signature, "X-WC-Webhook-Signature")
    }

    fn parse(&self, shop: &Shop, d: &Delivery<'_>, now: DateTime<Utc>) -> Result<Vec<Incoming>, ApiError> {
        if (d.header)("x-wc-webhook-signature").is_none() && is_ping(d) {
            return Ok(vec![]);
        }
        let topic = (d.header)("x-wc-webhook-topic").unwrap_or("");
        if !matches!(topic, "order.created" | "order.updated") {
            return Err(ApiError::invalid(format!(
                "The topic '{topic}' is not taken: use order.created and order.updated."
            )));
        }
        let order: Order = crate::error::from_json(d.body, "a WooCommerce order")?;
        conversions(shop, order, now)
    }
}

fn gmt(t: Option<&str>) -> Option<DateTime<Utc>> {
    t.and_then(|t| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").ok())
        .map(|t| t.and_utc())
}

/// An amount of the order: its total rounded half up, a refund's down (`Round`).
fn money(field: &str, v: Option<&serde_json::Value>, round: Round) -> Result<Money, ApiError> {
    let v = v.ok_or_else(|| ApiError::invalid(format!("{field} is missing.")))?;
    // Refund totals come negative ("-10.00"): the amount taken back is positive.
    let text = match v {
        serde_json::Value::String(s) => s.trim_start_matches('-').to_owned(),
        other => other.to_string().trim_start_matches('-').to_owned(),
    };
    Money::from_platform_json(&serde_json::Value::String(text), round)
        .map_err(|e| ApiError::invalid(format!("{field}: {e}.")))
}

fn meta<'a>(o: &'a Order, key: &str) -> Option<&'a str> {
    o.meta_data
        .iter()
        .find(|m| m.key.as_deref() == Some(key))
        .and_then(|m| m.value.as_ref())
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty() && v.len() <= 2048)
}

fn conversions(shop: &Shop, o: Order, now: DateTime<Utc>) -> Result<Vec<Incoming>, ApiError> {
    let paid = matches!(o.status.as_str(), "processing" | "completed");
    let was_paid = paid || o.date_paid_gmt.is_some();
    let order_id = id_text(&o.id)?;
    let currency = Currency::parse(o.currency.as_deref().unwrap_or(""))?;
    let total = money("total", o.total.as_ref(), Round::HalfUp)?;
    let mut claims = Vec::new();
    if let Some(v) = meta(&o, "kl_cid") {
        claims.push(Claim::new(Method::ClickId, v, "order_meta"));
    }
    if let Some(v) = meta(&o, "_wc_order_attribution_session_entry").and_then(kl_cid_in) {
        claims.push(Claim::new(Method::ClickId, v, "order_attribution"));
    }
    for c in o.coupon_lines.iter().filter_map(|c| c.code.clone()) {
        claims.push(Claim::new(Method::Coupon, c, "coupon_line"));
    }
    for key in [
        "_wc_order_attribution_utm_content",
        "_wc_order_attribution_utm_campaign",
    ] {
        if let Some(v) = meta(&o, key) {
            claims.push(Claim::new(Method::Code, v, "order_attribution"));
        }
    }
    claims.retain(super::fair_claim);
    let paid_at = gmt(o.date_paid_gmt.as_deref())
        .or_else(|| gmt(o.date_created_gmt.as_deref()))
        .unwrap_or(now)
        .min(now);
    let changed_at = gmt(o.date_modified_gmt.as_deref()).unwrap_or(now).min(now);
    let mut out = Vec::new();
    if was_paid {
        out.push(Incoming {
            shop: shop.id.clone(),
            order_id: order_id.clone(),
            refund_id: None,
            event: Event::Purchase,
            amount: Some(total),
            currency: Some(currency.clone()),
            claims,
            occurred_at: paid_at,
            test: false,
        });
    }
    let mut refunded = Money::ZERO;
    for r in &o.refunds {
        let amount = money("refunds[].total", r.total.as_ref(), Round::Down)?;
        refunded = refunded + amount;
        // A refund of items only (restocked, no money back) takes nothing, as on Shopify.
        if amount == Money::ZERO {
            continue;
        }
        out.push(Incoming {
            shop: shop.id.clone(),
            order_id: order_id.clone(),
            refund_id: Some(id_text(&r.id)?),
            event: Event::Refund,
            amount: Some(amount),
            currency: Some(currency.clone()),
            claims: vec![],
            occurred_at: changed_at,
            test: false,
        });
    }
    // A paid order cancelled or refunded takes back what its refunds left (WooCommerce adds a
    // refund of the rest when an order is marked refunded: then nothing is left).
    let undone = matches!(o.status.as_str(), "cancelled" | "refunded");
    let rest = total - refunded;
    if undone && was_paid && rest > Money::ZERO {
        out.push(Incoming {
            shop: shop.id.clone(),
            order_id,
            refund_id: Some(o.status.clone()),
            event: Event::Refund,
            amount: Some(rest),
            currency: Some(currency),
            claims: vec![],
            occurred_at: changed_at,
            test: false,
        });
    }
    Ok(out)
}
