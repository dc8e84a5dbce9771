//! Shops on the `generic` platform: their own backend posts one conversion per delivery, signed
//! per Standard Webhooks (`crate::signature`), with the JSON body of API.md.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::{Claim, Delivery, Incoming, ShopWebhooks};
use crate::domain::{has_control_chars, Currency, Event, Method, Money, Shop, ShopPlatform};
use crate::error::{ApiError, Code};
use crate::signature::WebhookSecret;

pub struct StandardWebhooks;

/// The body of a generic conversion webhook. Unknown fields are ignored: shops send more.
#[derive(Deserialize)]
struct ConversionBody {
    order_id: serde_json::Value,
    event: String,
    amount: Option<serde_json::Value>,
    currency: Option<String>,
    click_id: Option<String>,
    coupon: Option<String>,
    code: Option<String>,
    occurred_at: Option<DateTime<Utc>>,
    refund_id: Option<serde_json::Value>,
    /// A test order (API.md): stored as `test`, never counted.
    #[serde(default, deserialize_with = "test_flag")]
    test: bool,
}

/// `test` as shop backends write it: `true`/`false`, `null`, `"true"`/`"false"` or `1`/`0`.
/// The field was ignored before it meant something, so a backend that always sends it in one
/// of these forms keeps its deliveries taken; anything else is refused, naming the field.
fn test_flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    use serde_json::Value;
    match Value::deserialize(d)? {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        _ => Err(serde::de::Error::custom("use true or false")),
    }
}

impl ShopWebhooks for StandardWebhooks {
    fn platform(&self) -> ShopPlatform {
        ShopPlatform::Generic
    }

    fn path(&self) -> &'static str {
        "conversions"
    }

    fn verify(&self, shop: &Shop, d: &Delivery<'_>, now: DateTime<Utc>) -> Result<(), ApiError> {
        // During a rotation the previous secret is tried too; the first error is the one told.
        let mut first_error = None;
        for stored in shop.secrets_at(now) {
            let secret = WebhookSecret::parse(stored).ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!(
                    "Failed to decode the stored secret of shop {}",
                    shop.id
                ))
            })?;
            match secret.verify(
                (d.header)("webhook-id"),
                (d.header)("webhook-timestamp"),
                (d.header)("webhook-signature"),
                d.body,
                now.timestamp(),
            ) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let e = first_error.map_or_else(String::new, |e| e.to_string());
        Err(ApiError::new(Code::InvalidSignature, format!("{}.", capitalise(&e))))
    }

    fn parse(&self, shop: &Shop, d: &Delivery<'_>, now: DateTime<Utc>) -> Result<Vec<Incoming>, ApiError> {
        let is_json = (d.header)("content-type").is_some_and(|ct| ct.trim_start().starts_with("application/json"));
        if !is_json {
            return Err(ApiError::new(
                Code::UnsupportedMediaType,
                "Send the body as JSON with 'Content-Type: application/json'.",
            ));
        }
        let body: ConversionBody = crate::error::from_json(d.body, "valid")?;
        Ok(vec![incoming(shop, body, now)?])
    }
}

/// An order or refund id: a string or an integer, 1 to 128 characters.
fn text_id(field: &str, v: &serde_json::Value) -> Result<String, ApiError> {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        _ => return Err(ApiError::invalid(format!("{field} must be a string or an integer."))),
    };
    if s.is_empty() || s.len() > 128 || has_control_chars(&s) {
        return Err(ApiError::invalid(format!(
            "{field} must be 1 to 128 characters without control characters."
        )));
    }
    Ok(s)
}

fn incoming(shop: &Shop, b: ConversionBody, now: DateTime<Utc>) -> Result<Incoming, ApiError> {
    let event = Event::parse(&b.event)
        .ok_or_else(|| ApiError::invalid("event must be one of purchase, signup, lead, install, subscribe, refund."))?;
    let amount = b
        .amount
        .as_ref()
        .filter(|v| !v.is_null())
        .map(|v| Money::from_json(v).map_err(|e| ApiError::invalid(format!("amount: {e}."))))
        .transpose()?;
    let currency = b.currency.as_deref().map(Currency::parse).transpose()?;
    if matches!(event, Event::Purchase | Event::Refund) && (amount.is_none() || currency.is_none()) {
        return Err(ApiError::invalid(format!(
            "amount and currency are required for a {}.",
            event.as_str()
        )));
    }
    if event == Event::Refund && amount == Some(Money::ZERO) {
        return Err(ApiError::invalid("A refund's amount must be positive."));
    }
    let occurred_at = b
        .occurred_at
        .map(|t| crate::domain::writable_time("occurred_at", t))
        .transpose()?
        .unwrap_or(now);
    if occurred_at > now + Duration::hours(24) {
        return Err(ApiError::invalid("occurred_at is more than a day in the future."));
    }
    let short = |field: &str, v: Option<String>| -> Result<Option<String>, ApiError> {
        match v {
            Some(s) if s.len() > 128 || has_control_chars(&s) => Err(ApiError::invalid(format!(
                "{field} must be at most 128 characters without control characters."
            ))),
            other => Ok(other.filter(|s| !s.is_empty())),
        }
    };
    Ok(Incoming {
        shop: shop.id.clone(),
        order_id: text_id("order_id", &b.order_id)?,
        refund_id: b
            .refund_id
            .as_ref()
            .filter(|v| !v.is_null())
            .map(|v| text_id("refund_id", v))
            .transpose()?,
        event,
        amount,
        currency,
        claims: [
            (Method::ClickId, short("click_id", b.click_id)?, "click_id"),
            (Method::Coupon, short("coupon", b.coupon)?, "coupon"),
            (Method::Code, short("code", b.code)?, "code"),
        ]
        .into_iter()
        .filter_map(|(m, v, source)| Some(Claim::new(m, v?, source)))
        .collect(),
        occurred_at,
        test: b.test,
    })
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
