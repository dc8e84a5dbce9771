//! Shops on Shopify: the shop's own `orders/create`, `orders/paid`, `orders/cancelled` and
//! `refunds/create` webhooks, exactly as Shopify sends them.
//!
//! Headers come as `X-Shopify-*` (classic delivery) or `Shopify-*` (newer event delivery):
//! both are read. `…-Hmac-Sha256` is base64 HMAC-SHA256 of the raw body with the app's
//! secret, checked before the body is parsed. Retries of one delivery and several topics of one
//! order (created, then paid) are the same purchase and count once.
//!
//! An order counts once it is paid or its payment authorized: at `orders/create` when it says
//! so, else at `orders/paid` (a manual payment's order is created `pending`).
//!
//! Attribution, in order: the `kl_cid` cart attribute (`note_attributes`, set by kolink.js),
//! `kl_cid` in the query of `landing_site`, then each `discount_codes[].code`. Amount:
//! `total_price`; currency: `currency`. An order with `"test": true` is stored as `test`, and
//! so are its refunds. A cancelled order takes back what the shop did not keep (`cancellation`);
//! `refunds/create` is a refund of its transactions, in the shop's currency (`Exchange`).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{check_body_signature, id_text, null_as_empty, Claim, Delivery, Incoming, ShopWebhooks};
use crate::domain::{Currency, Event, Method, Money, Round, Shop, ShopPlatform};
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
    #[serde(default, deserialize_with = "null_as_empty")]
    test: bool,
    processed_at: Option<DateTime<chrono::FixedOffset>>,
    created_at: Option<DateTime<chrono::FixedOffset>>,
    cancelled_at: Option<DateTime<chrono::FixedOffset>>,
    landing_site: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    note_attributes: Vec<NameValue>,
    #[serde(default, deserialize_with = "null_as_empty")]
    discount_codes: Vec<DiscountCode>,
    /// The refunds made so far (`cancellation`).
    #[serde(default, deserialize_with = "null_as_empty")]
    refunds: Vec<Refund>,
    /// Where the order's money stands: `paid`, `partially_refunded`, `refunded` (the shop took
    /// it), or `voided`, `authorized`, `pending` (it never did).
    financial_status: Option<String>,
}

/// An amount in the shop's currency and in the currency the buyer paid in (`*_set`).
#[derive(Deserialize)]
struct MoneySet {
    shop_money: SetAmount,
    presentment_money: SetAmount,
}

#[derive(Deserialize)]
struct SetAmount {
    amount: serde_json::Value,
    currency_code: String,
}

#[derive(Deserialize)]
struct Transaction {
    amount: Option<serde_json::Value>,
    currency: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    test: bool,
}

impl Transaction {
    /// Money given back: a refund that succeeded, or is under way (`pending`: Shopify sends
    /// `refunds/create` once, not again when it succeeds), or whose status is not told; not
    /// one that failed (`failure`, `error`).
    fn refunded(&self) -> bool {
        self.kind.as_deref() == Some("refund")
            && self
                .status
                .as_deref()
                .is_none_or(|s| matches!(s, "success" | "pending"))
    }
}

/// A refund, as `refunds/create` delivers it and as an order lists it (where its `id` and
/// `order_id` may be left out).
#[derive(Deserialize)]
struct Refund {
    #[serde(default)]
    id: serde_json::Value,
    #[serde(default)]
    order_id: serde_json::Value,
    created_at: Option<DateTime<chrono::FixedOffset>>,
    processed_at: Option<DateTime<chrono::FixedOffset>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    transactions: Vec<Transaction>,
    /// Everything else, where its `*_set` amounts are (`Exchange::of_refund`).
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
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
            // The signature covers the body and not the topic header, so each topic's body
            // must say what the topic does: a signed unpaid order sent again as `orders/paid`
            // is still unpaid, and a body without `cancelled_at` cancels nothing.
            "orders/create" | "orders/paid" => {
                let o: Order = read(d.body)?;
                match awaiting_payment(&o) {
                    true => Ok(vec![]),
                    false => Ok(vec![purchase(shop, o, now)?]),
                }
            }
            "orders/cancelled" => {
                let o: Order = read(d.body)?;
                if o.cancelled_at.is_none() {
                    return Err(ApiError::invalid(
                        "An orders/cancelled payload must say when the order was cancelled (cancelled_at).",
                    ));
                }
                cancellation(shop, o, now)
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

/// An amount of the payload: a purchase's rounded half up, a refund's down (`Round`).
fn money(field: &str, v: Option<&serde_json::Value>, round: Round) -> Result<Money, ApiError> {
    let v = v.ok_or_else(|| ApiError::invalid(format!("{field} is missing.")))?;
    Money::from_platform_json(v, round).map_err(|e| ApiError::invalid(format!("{field}: {e}.")))
}

fn at(t: Option<DateTime<chrono::FixedOffset>>, now: DateTime<Utc>) -> DateTime<Utc> {
    t.map(|t| t.to_utc()).unwrap_or(now).min(now)
}

/// Whether an order is not paid yet (`pending`: a manual payment such as a bank transfer or
/// cash on delivery, still to come) or never will be (`voided`, `expired`): it is not a
/// conversion until `orders/paid`. An order whose payment is taken or authorized, or whose
/// payload does not say, counts at its first delivery.
fn awaiting_payment(o: &Order) -> bool {
    matches!(o.financial_status.as_deref(), Some("pending" | "voided" | "expired"))
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
    claims.retain(super::fair_claim);
    Ok(Incoming {
        shop: shop.id.clone(),
        order_id: id_text(&o.id)?,
        refund_id: None,
        event: Event::Purchase,
        amount: Some(money("total_price", o.total_price.as_ref(), Round::HalfUp)?),
        currency: Some(Currency::parse(o.currency.as_deref().unwrap_or(""))?),
        claims,
        occurred_at: at(o.cancelled_at.or(o.processed_at).or(o.created_at), now),
        test: o.test,
    })
}

/// What a cancelled order takes back: what the shop did not keep.
///
/// Where Shopify says the payment was taken (`paid`, `partially_paid`, `partially_refunded`,
/// `refunded`), the merchant chose in the cancel dialog how much to give back, and the refunds
/// the order lists are that: each is taken as `refunds/create` takes it, under its own id, so
/// whichever of the two deliveries comes first counts and the other is a duplicate; the rest
/// was kept (a fee, or a refund still to come as `refunds/create`).
///
/// Otherwise (`voided`, `authorized`, `pending`, or not said) the shop kept nothing: the
/// cancellation takes back what the listed refunds left of the total, so that the order nets
/// to nothing whichever of the cancellation and a refund made with it arrives first (a refund
/// counted after this one passes the purchase and is `over_refund`). A listed refund not in
/// the shop's currency then is not counted there either, and is not taken off.
fn cancellation(shop: &Shop, o: Order, now: DateTime<Utc>) -> Result<Vec<Incoming>, ApiError> {
    let taken_money = matches!(
        o.financial_status.as_deref(),
        Some("paid" | "partially_paid" | "partially_refunded" | "refunded")
    );
    if taken_money {
        let mut refunds = Vec::new();
        for mut r in o.refunds {
            // A listed refund without its id could not be told from its own delivery: that
            // delivery counts it.
            if r.id.is_null() {
                continue;
            }
            r.order_id = o.id.clone();
            refunds.extend(refund(shop, r, now)?);
        }
        return Ok(refunds);
    }
    let mut refunded = Money::ZERO;
    for r in &o.refunds {
        let (amount, currency, _) = taken(&r.transactions, &r.rest)?;
        if currency.is_none_or(|c| Some(c.as_str()) == o.currency.as_deref()) {
            refunded = refunded + amount;
        }
    }
    let mut refund = purchase(shop, o, now)?;
    let rest = refund.amount.unwrap_or(Money::ZERO) - refunded;
    if rest <= Money::ZERO {
        return Ok(vec![]);
    }
    refund.event = Event::Refund;
    refund.refund_id = Some("cancelled".to_owned());
    refund.amount = Some(rest);
    refund.claims.clear();
    Ok(vec![refund])
}

/// A refund of the successful refund transactions; none when there are none (a refund of
/// line items only, with no money back).
fn refund(shop: &Shop, r: Refund, now: DateTime<Utc>) -> Result<Option<Incoming>, ApiError> {
    let (total, currency, test) = taken(&r.transactions, &r.rest)?;
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
        test,
    }))
}

/// What a refund takes back: the sum of its successful refund transactions, its currency, and
/// whether they are tests. Transactions in the buyer's currency, where it is not the shop's
/// (Shopify Markets), are taken in the shop's at the rate of the refund's own `*_set` amounts
/// (`rest`): the order was counted in the shop's currency.
fn taken(
    transactions: &[Transaction],
    rest: &serde_json::Map<String, serde_json::Value>,
) -> Result<(Money, Option<String>, bool), ApiError> {
    let exchange = Exchange::of_refund(rest);
    let mut total = Money::ZERO;
    let mut currency = None;
    for t in transactions.iter().filter(|t| t.refunded()) {
        let amount = money("transactions[].amount", t.amount.as_ref(), Round::Down)?;
        let (amount, code) = exchange.to_shop(amount, t.currency.as_deref())?;
        total = total + amount;
        currency = currency.or(code);
    }
    Ok((total, currency, transactions.iter().any(|t| t.test)))
}

/// The rate between the buyer's currency and the shop's, as Shopify's own `*_set` amounts of
/// a refund give it: the sums of the shop's and the buyer's amounts, for one pair of
/// currencies.
#[derive(Debug, Default, PartialEq)]
enum Exchange {
    /// No amounts in two currencies: nothing to convert.
    #[default]
    None,
    /// The sums, in minor units, of the amounts in one pair of currencies.
    Rate {
        shop: String,
        buyer: String,
        shop_sum: i128,
        buyer_sum: i128,
    },
    /// Amounts in more than one pair of currencies: no single rate.
    Mixed,
}

impl Exchange {
    /// Every `{shop_money, presentment_money}` pair anywhere in a refund's fields (its line
    /// items, tax, shipping, adjustments: where they sit has changed between API versions).
    fn of_refund(fields: &serde_json::Map<String, serde_json::Value>) -> Self {
        fn walk(v: &serde_json::Value, e: &mut Exchange) {
            match v {
                serde_json::Value::Object(map) => match MoneySet::deserialize(v) {
                    Ok(set) => e.add(&set),
                    Err(_) => map.values().for_each(|v| walk(v, e)),
                },
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, e)),
                _ => {}
            }
        }
        let mut e = Self::default();
        fields.values().for_each(|v| walk(v, &mut e));
        e
    }

    fn add(&mut self, set: &MoneySet) {
        let minor = |a: &serde_json::Value| {
            let text = a.as_str().map(str::to_owned).unwrap_or_else(|| a.to_string());
            let text = text.trim_start_matches('-').to_owned();
            Money::from_platform_json(&serde_json::Value::String(text), Round::HalfUp).map(|m| i128::from(m.minor()))
        };
        let (Ok(shop), Ok(buyer)) = (minor(&set.shop_money.amount), minor(&set.presentment_money.amount)) else {
            return;
        };
        let (shop_code, buyer_code) = (&set.shop_money.currency_code, &set.presentment_money.currency_code);
        match self {
            Exchange::None => {
                *self = Exchange::Rate {
                    shop: shop_code.clone(),
                    buyer: buyer_code.clone(),
                    shop_sum: shop,
                    buyer_sum: buyer,
                }
            }
            Exchange::Rate {
                shop: s,
                buyer: b,
                shop_sum,
                buyer_sum,
            } if s == shop_code && b == buyer_code => {
                *shop_sum += shop;
                *buyer_sum += buyer;
            }
            _ => *self = Exchange::Mixed,
        }
    }

    /// An amount taken back in `currency`, in the shop's currency: converted (rounded down, as
    /// refunds are) when it is the buyer's and the rate is known, else as it is.
    fn to_shop(&self, amount: Money, currency: Option<&str>) -> Result<(Money, Option<String>), ApiError> {
        match self {
            Exchange::Rate {
                shop,
                buyer,
                shop_sum,
                buyer_sum,
            } if currency == Some(buyer.as_str()) && shop != buyer && *buyer_sum > 0 => {
                let minor = i128::from(amount.minor()) * shop_sum / buyer_sum;
                let converted = Money::checked_from_minor(minor).ok_or_else(|| {
                    ApiError::invalid("A refund is more than the largest amount once in the shop's currency.")
                })?;
                Ok((converted, Some(shop.clone())))
            }
            _ => Ok((amount, currency.map(str::to_owned))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_the_buyers_currency_are_taken_at_the_rate_of_their_sets() {
        let set = |shop: &str, buyer: &str, codes: (&str, &str)| {
            serde_json::json!({"shop_money": {"amount": shop, "currency_code": codes.0},
                               "presentment_money": {"amount": buyer, "currency_code": codes.1}})
        };
        let fields = |v: serde_json::Value| Exchange::of_refund(v.as_object().unwrap());
        let money = |s: &str| Money::parse(s).unwrap();
        let e = fields(serde_json::json!({"refund_line_items": [
            {"subtotal_set": set("300.00", "9.38", ("TWD", "USD")), "total_tax_set": set("20.00", "0.62", ("TWD", "USD"))}],
            "order_adjustments": [{"amount_set": set("-64.00", "-2.00", ("TWD", "USD"))}]}));
        assert_eq!(
            e.to_shop(money("12.00"), Some("USD")).unwrap(),
            (money("384.00"), Some("TWD".to_owned()))
        );
        // Rounded down to the minor unit, as refunds are: at 100.00 TWD for 3.00 USD, 0.05 USD
        // is 1.666… TWD.
        let third = fields(serde_json::json!({"x": set("100.00", "3.00", ("TWD", "USD"))}));
        assert_eq!(third.to_shop(money("0.05"), Some("USD")).unwrap().0, money("1.66"));
        assert_eq!(third.to_shop(money("0.01"), Some("USD")).unwrap().0, money("0.33"));
        assert_eq!(
            e.to_shop(money("5.00"), Some("TWD")).unwrap(),
            (money("5.00"), Some("TWD".to_owned())),
            "already the shop's"
        );
        assert_eq!(
            e.to_shop(money("5.00"), Some("EUR")).unwrap().0,
            money("5.00"),
            "a currency without a rate"
        );
        // Sets in two pairs of currencies give no rate.
        let mixed = fields(
            serde_json::json!({"a": [set("300.00", "9.38", ("TWD", "USD")), set("300.00", "8.50", ("TWD", "EUR"))]}),
        );
        assert_eq!(mixed.to_shop(money("1.00"), Some("USD")).unwrap().0, money("1.00"));
        assert_eq!(
            Exchange::default().to_shop(money("1.00"), None).unwrap(),
            (money("1.00"), None)
        );
        // A conversion past the largest amount is refused, not wrapped.
        let steep = fields(serde_json::json!({"x": set("100000000.00", "0.01", ("TWD", "USD"))}));
        assert!(steep.to_shop(money("100000.00"), Some("USD")).is_err());
    }

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
