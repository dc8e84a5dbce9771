//! Shops on Shopify: the shop's own `orders/create`, `orders/paid`, `orders/cancelled` and
//! `refunds/create` webhooks, exactly as Shopify sends them.
//!
//! Headers come as `X-Shopify-*` (classic delivery) or `Shopify-*` (newer event delivery):
//! both are read. `…-Hmac-Sha256` is base64 HMAC-SHA256 of the raw body with the app's
//! secret, checked before the body is parsed. Retries of one delivery and several topics of one
//! order (created, then paid) are the same purchase and count once.
//!
//! Attribution, in order: the `kl_cid` cart attribute (`note_attributes`, set by kolink.js),
//! `kl_cid` in the query of `landing_site`, then each `discount_codes[].code`. Amount:
//! `total_price`; currency: `currency`. An order with `"test": true` is stored as `test`. A
//! cancelled order is a refund of its total; `refunds/create` is a refund of its transactions.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{check_body_signature, id_text, Claim, Delivery, Incoming, ShopWebhooks};
use crate::domain::{Currency, Event, Method, Money, Shop, ShopPlatform};
use crate::error::ApiError;

pub struct Shopify;

/// A header in either of Shopify's forms.
fn header<'a>(d: &Delivery<'a>, name: &str) -> Option<&'a str> {
    (d.header)(&format!("x-shopify-{name}")).or_else(|| (d.header)(&format!("shopify-{name}")))
}

#[derive(Deserialize)]
struct NameValue {
    name: Option<String>,
    value: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct DiscountCode {
    code: Option<String>,
}

#[derive(Deserialize)]
struct Order {
    id: serde_json::Value,
    total_price: Option<serde_json::Value>,
    currency: Option<String>,
    #[serde(default)]
    test: bool,
    processed_at: Option<DateTime<chrono::FixedOffset>>,
    created_at: Option<DateTime<chrono::FixedOffset>>,
    cancelled_at: Option<DateTime<chrono::FixedOffset>>,
    landing_site: Option<String>,
    #[serde(default)]
    note_attributes: Vec<NameValue>,
    #[serde(default)]
    discount_codes: Vec<DiscountCode>,
}

#[derive(Deserialize)]
struct Transaction {
    amount: Option<serde_json::Value>,
    currency: Option<String>,
    kind: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct Refund {
    id: serde_json::Value,
    order_id: serde_json::Value,
    created_at: Option<DateTime<chrono::FixedOffset>>,
    processed_at: Option<DateTime<chrono::FixedOffset>>,
    #[serde(default)]
    transactions: Vec<Transaction>,
}

impl ShopWebhooks for Shopify {
    fn platform(&self) -> ShopPlatform {
        ShopPlatform::Shopify
    }

    fn path(&self) -> &'static str {
        "shopify"
    }

    fn verify(&self, shop: &Shop, d: &Delivery<'_>, now: DateTime<Utc>) -> Result<(), ApiError> {
        check_body_signature(shop, d, now, header(d, "hmac-sha256"), "X-Shopify-Hmac-Sha256")
    }

    fn parse(&self, shop: &Shop, d: &Delivery<'_>, now: DateTime<Utc>) -> Result<Vec<Incoming>, ApiError> {
        let topic = header(d, "topic").ok_or_else(|| ApiError::invalid("The X-Shopify-Topic header is missing."))?;
        match topic {
            "orders/create" | "orders/paid" => Ok(vec![purchase(shop, read(d.body)?, now)?]),
            "orders/cancelled" => {
                let order: Order = read(d.body)?;
                let mut refund = purchase(shop, order, now)?;
                refund.event = Event::Refund;
                refund.refund_id = Some("cancelled".to_owned());
                refund.claims.clear();
                Ok(vec![refund])
            }
            "refunds/create" => Ok(refund(shop, read(d.body)?, now)?.into_iter().collect()),
            other => Err(ApiError::invalid(format!(
                "The topic '{other}' is not taken: subscribe orders/create, orders/paid, orders/cancelled and refunds/create."
            ))),
        }
    }
}

fn read<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    crate::error::from_json(body, "a Shopify payload")
}

fn money(field: &str, v: Option<&serde_json::Value>) -> Result<Money, ApiError> {
    let v = v.ok_or_else(|| ApiError::invalid(format!("{field} is missing.")))?;
    Money::from_platform_json(v).map_err(|e| ApiError::invalid(format!("{field}: {e}.")))
}

fn at(t: Option<DateTime<chrono::FixedOffset>>, now: DateTime<Utc>) -> DateTime<Utc> {
    t.map(|t| t.to_utc()).unwrap_or(now).min(now)
}

/// `kl_cid` in the query of a landing URL (often a path: `/products/x?kl_cid=…`).
pub(super) fn kl_cid_in(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url)
        .or_else(|_| url::Url::parse("https://shop.invalid").and_then(|base| base.join(url)))
        .ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == "kl_cid")
        .map(|(_, v)| v.into_owned())
}

fn purchase(shop: &Shop, o: Order, now: DateTime<Utc>) -> Result<Incoming, ApiError> {
    let mut claims = Vec::new();
    for a in &o.note_attributes {
        if a.name.as_deref() == Some("kl_cid") {
            if let Some(serde_json::Value::String(v)) = &a.value {
                claims.push(Claim::new(Method::ClickId, v.clone(), "cart_attribute"));
            }
        }
    }
    if let Some(v) = o.landing_site.as_deref().and_then(kl_cid_in) {
        claims.push(Claim::new(Method::ClickId, v, "landing_site"));
    }
    for c in o.discount_codes.iter().filter_map(|c| c.code.clone()) {
        claims.push(Claim::new(Method::Coupon, c, "discount_code"));
    }
    claims.retain(|c| !c.value.is_empty() && c.value.len() <= 128);
    Ok(Incoming {
        shop: shop.id.clone(),
        order_id: id_text(&o.id)?,
        refund_id: None,
        event: Event::Purchase,
        amount: Some(money("total_price", o.total_price.as_ref())?),
        currency: Some(Currency::parse(o.currency.as_deref().unwrap_or(""))?),
        claims,
        occurred_at: at(o.cancelled_at.or(o.processed_at).or(o.created_at), now),
        test: o.test,
    })
}

/// A refund of the successful refund transactions; none when there are none (a refund of
/// line items only, with no money back).
fn refund(shop: &Shop, r: Refund, now: DateTime<Utc>) -> Result<Option<Incoming>, ApiError> {
    let mut total = Money::ZERO;
    let mut currency = None;
    for t in &r.transactions {
        let refunded = t.kind.as_deref() == Some("refund") && t.status.as_deref().is_none_or(|s| s == "success");
        if refunded {
            total = total + money("transactions[].amount", t.amount.as_ref())?;
            currency = currency.or_else(|| t.currency.clone());
        }
    }
    if total == Money::ZERO {
        return Ok(None);
    }
    Ok(Some(Incoming {
        shop: shop.id.clone(),
        order_id: id_text(&r.order_id)?,
        refund_id: Some(id_text(&r.id)?),
        event: Event::Refund,
        amount: Some(total),
        currency: currency.as_deref().map(Currency::parse).transpose()?,
        claims: vec![],
        occurred_at: at(r.processed_at.or(r.created_at), now),
        test: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landing_sites_give_their_click_id() {
        assert_eq!(
            kl_cid_in("/products/serum?kl_cid=2s-abc-1&x=1").as_deref(),
            Some("2s-abc-1")
        );
        assert_eq!(
            kl_cid_in("https://shop.example/?kl_cid=a-b-c").as_deref(),
            Some("a-b-c")
        );
        assert_eq!(kl_cid_in("/products/serum"), None);
    }
}
